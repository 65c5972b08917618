"""Scalar X-ray observables measured on each cluster's counts cube or events.

:class:`ScalarObservables` adds one column per observable to a
:class:`~skcluster.ClusterSample`: net photon counts in a fixed aperture,
counts within an r500 estimated from the cluster's own luminosity
(:mod:`skcluster.baselines.r500`), core-excised counts (0.15-1 r500), count
rates, the rest-frame 0.5-2 keV luminosity L_X (K-corrected, through the
eROSITA response), the observed flux, and hardness ratios between bands.
The photometry itself lives in :mod:`skcluster.baselines.apertures`.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_positive_int, check_positive_number, rows_text
from ..exceptions import SkclusterWarning
from ..physics import cosmology
from ..physics.emission import bremsstrahlung_photon_spectrum
from ..physics.instrument import PSF_ALPHA, PSF_CORE_ARCSEC
from ..physics.rates import NH_EFEDS_CM2, BandRateTable, NHRateTables, check_bands
from ..physics.relations import LM_RELATION_EFEDS, MT_RELATION_ARNAUD05, RC_R500_EFEDS
from ..preprocessing._base import SampleInputMixin
from ..sample import as_sample
from ._checks import check_positive_column
from .apertures import (
    CHUNK_ELEMENTS,
    NetCounts,
    cumulative_profiles_events,
    cumulative_profiles_images,
    n_rings,
    ring_width_arcsec,
)
from .r500 import MASS_BOUNDS_MSUN, LuminosityMassMap, solve_fixed_point

__all__ = ["OBSERVABLE_BANDS_KEV", "OBSERVABLE_SCALARS", "FLAGS", "ScalarObservables"]

#: Bits of the ``obs_flags`` column written by :class:`ScalarObservables`.
FLAGS = {
    "aperture_floored": 1,   # net counts in the fixed aperture <= count_floor: set to the floor
    "r500_floored": 2,       # net counts within the r500 estimate <= count_floor: floored
    "core_excised_floored": 4,  # net counts in 0.15-1 r500 <= count_floor: floored
    "r500_bisection": 8,     # the r500 iteration cycled (noisy faint profile): solved by bisection
    "r500_truncated": 16,    # r500 estimate beyond the background annulus: capped at its inner radius
    "mass_clipped": 32,      # the r500 mass estimate ended on the bounds 1e12 or 1e16 Msun
    "hardness_undefined": 64,  # some band pair had net counts H + S <= 0: hardness set to 0
    "kT_clipped": 128,       # temperature outside the rate table (0.3-25 keV): clipped
    "incomplete_cutout": 256,  # the sample's 'complete' column is False: zero padding biases the background
}

#: Bands of the image observables' hardness ratios (and of the baselines'
#: counts), keV: 0.2-2.3 keV covers the eFEDS detection band (Brunner et al.
#: 2022, A&A 661, A1) in three parts, 2.3-7 keV is the hard band.
OBSERVABLE_BANDS_KEV = ((0.2, 0.5), (0.5, 1.2), (1.2, 2.3), (2.3, 7.0))

#: The image observables that ``make_preprocessing(observables=True)``
#: measures (:class:`~skcluster.baselines.ScalarObservables` on the events,
#: after the point-source mask) and joins beside z: the net counts in the
#: 2 arcmin aperture, within the r500 estimate and core-excised, L_X, the
#: background (floored at 1 count, so logged) and the hardness ratios in
#: [-1, 1] (linear); the columns the ``gbm_scalars`` baseline reads.
OBSERVABLE_SCALARS = ("counts_ap", "counts_r500", "counts_ce", "lx_erg_s", "bkg_arcmin2",
                      ("hr_0_1", "linear"), ("hr_1_2", "linear"), ("hr_2_3", "linear"))

#: Galactic N_H accepted in ``nh_column``, cm^-2: 1e19 lies below the lowest column on the sky
#: (~4e19 in the Lockman Hole), 3e22 deep in the Galactic plane (HI4PI Collaboration 2016).
NH_RANGE_CM2 = (1e19, 3e22)


def check_nh(nh, what, step=None):
    """``nh`` as float64 after checking every value is a Galactic N_H in :data:`NH_RANGE_CM2` (cm^-2)."""
    nh = np.asarray(nh, dtype=np.float64)
    lo, hi = NH_RANGE_CM2
    bad = ~np.isfinite(nh) | (nh < lo) | (nh > hi)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{step + ': ' if step else ''}Galactic N_H ({what!r}) must be within [{lo:g}, {hi:g}] "
                         f"cm^-2 (is it in cm^-2?); {rows.size} bad value(s): {rows_text(rows, nh.tolist())}")
    return nh


@lru_cache(maxsize=64)
def _rate_table(bands, nH_cm2, lum_band_keV):
    """Shared :class:`BandRateTable`, built once per band set."""
    return BandRateTable([list(b) for b in bands], nH_cm2=nH_cm2, lum_band_keV=lum_band_keV)


def _k_correction(kT_keV, z, band_keV, n_grid=256):
    """K = L_rest(band) / L_rest(band * (1+z)) for bremsstrahlung at kT (keV).

    The observed-frame flux in ``band`` is L_rest(band) / (4 pi D_L^2 K)
    (energy-weighted integrals of the photon spectrum of
    :func:`skcluster.physics.emission.bremsstrahlung_photon_spectrum`).
    """
    lo, hi = band_keV
    u = (np.arange(n_grid) + 0.5) / n_grid  # midpoint rule on a log grid
    kT = np.asarray(kT_keV, dtype=np.float64)[:, None]
    zz = np.asarray(z, dtype=np.float64)[:, None]

    def energy_integral(a, b):
        e = a * (b / a) ** u  # (m, n)
        return np.sum(e * e * bremsstrahlung_photon_spectrum(e, kT), axis=1) * np.log(b / a)[:, 0] / n_grid

    ones = np.ones_like(zz)
    return energy_integral(lo * ones, hi * ones) / energy_integral(lo * (1 + zz), hi * (1 + zz))


class _Flags:
    """The ``obs_flags`` bit mask of a chunk, and counts floored at ``count_floor``."""

    def __init__(self, m, floor):
        self.bits = np.zeros(m, dtype=np.int32)
        self.floor = floor

    def set(self, mask, name):
        self.bits[mask] |= FLAGS[name]

    def floored(self, counts, name):
        low = counts <= self.floor
        self.set(low, name)
        return np.where(low, self.floor, counts)


def _hardness_ratios(n500, pairs, flags):
    """(H - S) / (H + S) within theta500 for band pairs (S, H), clipped to [-1, 1]."""
    out = {}
    for i, j in pairs:
        s_, h_ = n500[:, i], n500[:, j]
        tot = s_ + h_
        undefined = tot <= 0
        flags.set(undefined, "hardness_undefined")
        hr = np.where(undefined, 0.0, (h_ - s_) / np.where(undefined, 1.0, tot))
        out[f"hr_{i}_{j}"] = np.clip(hr, -1.0, 1.0)
    return out


class ScalarObservables(SampleInputMixin, TransformerMixin, BaseEstimator):
    """Measure scalar X-ray observables of each cluster from its counts cube.

    For each cluster (at the centre of its box) the background per band is
    the mean surface density of counts in an outer annulus of the box; it is
    subtracted from the counts within each radius. Cumulative radial
    profiles are computed on 1-arcsec rings (quarter-pixel for pixels under
    4 arcsec) with each pixel split among the rings it overlaps, so that
    apertures smaller than a pixel's size remain accurate; with
    ``source="events"`` the photons' exact radii are used instead.

    r500 is estimated iteratively: starting from 2e14 Msun, the net
    count rate in ``count_band_keV`` within theta500(M, z)
    (:func:`skcluster.physics.cosmology.theta500_arcmin`) is turned into the
    rest-frame luminosity L_X(``lum_band_keV``) by folding a bremsstrahlung
    spectrum of temperature T(M, z) (``mt_relation``, or a known ``kT_column``)
    at redshift z through the eROSITA response
    (:class:`skcluster.physics.rates.BandRateTable`: effective area, Galactic
    absorption, vignetting, K-correction and luminosity distance); the L_X-M
    relation ``lm_relation`` then gives the next M, until log10 M changes
    by less than ``tol``. The map changes M by a small power of itself
    (the counts grow slowly with the aperture), so for clusters with a
    clear signal it converges in a few steps; for faint, noisy profiles it
    can cycle, and then the same fixed-point equation is solved by
    bisection (the highest root where the map crosses from above to
    below, bracketed on a 0.05 dex grid of 1e12-1e16 Msun) and the row is
    flagged.

    Parameters
    ----------
    aperture_arcmin : float, default=2.0
        Radius of the fixed aperture, arcmin (about the eFEDS median
        theta500 of 2.36 arcmin, measured from the public eFEDS products,
        Liu et al. 2022, A&A 661, A2).
    background_annulus_arcmin : (float, float or None) or None, default=None
        Inner and outer radius of the background annulus, arcmin; an outer
        radius of None reaches the corners of the box. ``None`` uses
        (0.4 x box side, None): 8 arcmin to the corners for the 20 arcmin
        box of the seed study.
    count_band_keV : (float, float), default=(0.2, 2.3)
        The bands of the cube that lie inside this range are summed for
        counts, rates and L_X (0.2-2.3 keV is the eFEDS detection band,
        Brunner et al. 2022).
    lum_band_keV : (float, float), default=(0.5, 2.0)
        Rest-frame band of L_X and observed-frame band of the flux, keV
        (the band of the L-M relation).
    lm_relation : (float, float, float), default=LM_RELATION_EFEDS
        (log10 L at 2e14 Msun, mass slope, E(z) exponent) of
        log10 L = a + b log10(M / 2e14 Msun) + c log10 E(z), L in erg/s
        (eFEDS: 43.395, 1.58, 2.00, Liu et al. 2022 luminosities against
        Chiu et al. 2022 masses; :mod:`skcluster.physics.relations`).
    mt_relation : (float, float), default=MT_RELATION_ARNAUD05
        (M at 5 keV in Msun, slope) of E(z) M = M5 (T / 5 keV)^slope
        (Arnaud et al. 2005: 3.84e14, 1.71).
    kT_column : str, default=None
        Column of known temperatures (keV) to use instead of the M-T
        relation (e.g. spectroscopic T).
    nH_cm2 : float, default=3e20
        Galactic hydrogen column, cm^-2 (3-3.5e20 toward eFEDS, Brunner et
        al. 2022, A&A 661, A1), for every cluster.
    nh_column : str, default=None
        Column of each cluster's own Galactic N_H, cm^-2 (e.g. from the
        HI4PI survey, HI4PI Collaboration 2016, A&A 594, A116; the mock's
        ``nh``), used instead of ``nH_cm2`` for the count-rate-to-L_X
        conversion (:class:`~skcluster.physics.rates.NHRateTables`). Across
        the extragalactic sky N_H spans 1e20-1e21; at 1e21 a 5 keV cluster
        gives ~26% fewer 0.2-2.3 keV counts per erg/s than at 3e20, so a
        single N_H biases L_X (and the r500 estimate) by that much.
        (Spelled ``nh_column`` as in :func:`~skcluster.models.make_mass_pipeline`;
        the old ``nH_column`` still works, with a ``FutureWarning`` in
        ``fit``, and model files that saved it load unchanged.)
    psf_correction : bool, default=True
        Correct L_X and the flux for the counts the PSF scatters out of
        (and into) the r500 aperture, assuming a beta model with beta = 2/3
        (the eSASS extent model, Brunner et al. 2022) and core radius
        ``core_radius_r500`` r500. With the survey-averaged King PSF of
        slope 1.5 the correction is exact for that model: both profiles are
        (1 + r^2/a^2)^-1.5, whose 2-D Fourier transform is exp(-2 pi a k),
        so their convolution is the same profile with a = rc + rc_PSF. The
        factor [1 - (1 + R^2/rc^2)^-1/2] / [1 - (1 + R^2/(rc + rc_PSF)^2)^-1/2]
        is 1.05 for theta500 = 3.3 arcmin and 1.15 for 1.3 arcmin. Counts
        and count rates are left as measured.
    core_radius_r500 : float, default=0.185
        Core radius of the beta model in units of r500 (eFEDS median,
        measured from the public eFEDS products, Liu et al. 2022).
    psf_core_arcsec : float, default=8.64
        King core radius of the PSF, arcsec (survey average, slope 1.5;
        :data:`skcluster.physics.instrument.PSF_CORE_ARCSEC`).
    count_floor : float, default=1.0
        Net counts below this are set to it (and flagged in ``obs_flags``)
        so that counts, rates, L_X and flux stay positive and log-able.
    max_iter : int, default=50
    tol : float, default=1e-4
        Convergence of the r500 iteration, dex in M.
    source : {"auto", "images", "events"}, default="auto"
        Measure from the ``images`` counts cube or from the ``events``
        lists; "auto" takes images when present.
    bands_keV : list of (float, float), default=None
        Energy bands of the cube / for binning events; taken from
        ``X.meta["bands_keV"]`` when None.
    size_arcmin : float, default=None
        Side of the box, arcmin; ``X.meta["size_arcmin"]`` when None.
    verbose : int, default=0
        Show a progress bar over chunks of clusters when > 0.

    Attributes
    ----------
    bands_keV_ : list of (float, float)
    n_bands_ : int
    source_ : str
    image_shape_ : tuple of int or None
        (H, W) of the cube (images source).
    pixel_arcsec_ : float or None
    size_arcmin_ : float
    count_bands_ : list of int
        Indices of the bands summed for counts and L_X.
    hardness_pairs_ : list of (int, int)
        Band index pairs (soft, hard) of the hardness ratios.
    background_annulus_arcmin_ : (float, float)
    observable_columns_ : list of str
        Names of the observable columns (also written to
        ``meta["observable_columns"]`` of the output).

    Notes
    -----
    Columns added by :meth:`transform` (counts are background-subtracted,
    in the count band unless said otherwise; "r500" is the iterated
    estimate):

    ============================  ==============================================
    ``counts_ap``                 net counts within ``aperture_arcmin``
    ``counts_ap_err``             its Poisson error (source + background)
    ``count_rate_ap``             ``counts_ap`` / exposure, counts/s
    ``counts_r500``               net counts within theta500
    ``counts_r500_err``           its Poisson error
    ``count_rate``                eta = ``counts_r500`` / exposure, counts/s
    ``counts_ce``                 net counts within 0.15-1 theta500 (core-excised)
    ``theta500_arcmin``           estimated theta500, arcmin
    ``log10_m500_lx``             mass of the converged iteration, log10 Msun
    ``kT_keV``                    temperature used for the K-correction, keV
    ``lx_erg_s``                  rest-frame L_X in ``lum_band_keV`` within r500, erg/s
                                  (PSF-corrected, see ``psf_correction``)
    ``flux_erg_s_cm2``            observed-frame, unabsorbed flux in
                                  ``lum_band_keV`` within r500, erg/s/cm^2
    ``kcorr``                     K = L_rest(band) / L_rest(band (1+z))
    ``bkg_arcmin2``               background, counts/arcmin^2
    ``hr_<i>_<j>``                hardness (H - S) / (H + S) of bands i (S), j (H)
                                  within theta500, clipped to [-1, 1]
    ``obs_flags``                 bit mask, see :data:`FLAGS`
    ``r500_iterations``           fixed-point iterations used (``max_iter`` where
                                  bisection took over)
    ============================  ==============================================

    Faint clusters can have negative net counts: counts (and the rates,
    L_X and flux computed from them) are floored at ``count_floor`` and the
    row is flagged in ``obs_flags``; nothing is set to NaN. The L_X-M
    inversion for r500 is only a way to choose the aperture; mass
    predictions come from the regressors fitted on these columns.
    """

    def __init__(self, aperture_arcmin=2.0, background_annulus_arcmin=None, count_band_keV=(0.2, 2.3),
                 lum_band_keV=(0.5, 2.0), lm_relation=LM_RELATION_EFEDS, mt_relation=MT_RELATION_ARNAUD05,
                 kT_column=None, nH_cm2=NH_EFEDS_CM2, nh_column=None, psf_correction=True,
                 core_radius_r500=RC_R500_EFEDS, psf_core_arcsec=PSF_CORE_ARCSEC, count_floor=1.0, max_iter=50,
                 tol=1e-4,
                 source="auto", bands_keV=None, size_arcmin=None, verbose=0, nH_column="deprecated"):
        self.aperture_arcmin = aperture_arcmin
        self.background_annulus_arcmin = background_annulus_arcmin
        self.count_band_keV = count_band_keV
        self.lum_band_keV = lum_band_keV
        self.lm_relation = lm_relation
        self.mt_relation = mt_relation
        self.kT_column = kT_column
        self.nH_cm2 = nH_cm2
        self.nh_column = nh_column
        self.nH_column = nH_column  # the old name of nh_column ("deprecated": not given)
        self.psf_correction = psf_correction
        self.core_radius_r500 = core_radius_r500
        self.psf_core_arcsec = psf_core_arcsec
        self.count_floor = count_floor
        self.max_iter = max_iter
        self.tol = tol
        self.source = source
        self.bands_keV = bands_keV
        self.size_arcmin = size_arcmin
        self.verbose = verbose

    _step = "ScalarObservables"

    def _nh_column(self):
        """The N_H column: ``nh_column``, or the old ``nH_column`` where given (a loaded older model)."""
        if isinstance(self.nH_column, str) and self.nH_column == "deprecated":
            return self.nh_column
        if self.nh_column is not None:
            raise TypeError(f"{self._step}: nH_column is the old name of nh_column; give nh_column only")
        return self.nH_column

    # -- validation ---------------------------------------------------------
    def _resolve_source(self, X):
        if self.source not in ("auto", "images", "events"):
            raise ValueError(f"source must be 'auto', 'images' or 'events', got {self.source!r}")
        if self.source == "auto":
            if "images" in X:
                return "images"
            if "events" in X:
                return "events"
            raise KeyError(
                f"{self._step} needs an 'images' counts cube or 'events' lists; the "
                f"ClusterSample has only {X.columns}"
            )
        X.require(self.source, step=self._step)
        return self.source

    def _geometry(self, X, source):
        bands = self.bands_keV if self.bands_keV is not None else X.meta.get("bands_keV")
        if bands is None:
            raise ValueError(
                f"{self._step}: the energy bands are unknown; set X.meta['bands_keV'] "
                "or pass bands_keV=[(lo, hi), ...] (keV)"
            )
        bands = check_bands(bands)
        size = self.size_arcmin if self.size_arcmin is not None else X.meta.get("size_arcmin")
        pixel, shape = None, None
        if source == "images":
            img = X["images"]
            if img.ndim != 4:
                raise ValueError(
                    f"{self._step}: 'images' must be (n, n_bands, H, W), got shape {img.shape}"
                )
            if img.shape[1] != len(bands):
                raise ValueError(
                    f"{self._step}: 'images' has {img.shape[1]} bands but bands_keV lists "
                    f"{len(bands)}: {bands.tolist()}"
                )
            if img.shape[2] != img.shape[3]:
                raise ValueError(f"{self._step}: images must be square, got H x W = {img.shape[2:]}")
            unit = X.meta.get("image_unit", "counts")
            if unit != "counts":
                raise ValueError(
                    f"{self._step} measures photon counts and needs image_unit='counts', got "
                    f"{unit!r}; place it right after the band binning / cut-out step"
                )
            shape = tuple(int(s) for s in img.shape[2:])
            pixel = X.meta.get("pixel_arcsec")
            if size is None and pixel is not None:
                size = pixel * shape[1] / 60.0
            if size is None:
                raise ValueError(
                    f"{self._step}: the box size is unknown; set X.meta['size_arcmin'] "
                    "(or 'pixel_arcsec') or pass size_arcmin"
                )
            pixel = 60.0 * float(size) / shape[1]
            if "pixel_arcsec" in X.meta and not np.isclose(X.meta["pixel_arcsec"], pixel, rtol=1e-3):
                raise ValueError(
                    f"{self._step}: meta pixel_arcsec={X.meta['pixel_arcsec']} disagrees with "
                    f"size_arcmin={size} over {shape[1]} pixels ({pixel:.4g} arcsec)"
                )
        elif size is None:
            raise ValueError(
                f"{self._step}: the box size of the event lists is unknown; set "
                "X.meta['size_arcmin'] or pass size_arcmin"
            )
        return [tuple(map(float, b)) for b in bands], float(size), pixel, shape

    def fit(self, X, y=None):
        """Check the sample and record its bands and geometry.

        Parameters
        ----------
        X : ClusterSample
            With ``images`` (counts, (n, B, H, W)) or ``events``, ``z`` and
            ``exposure`` (s).
        y : ignored

        Returns
        -------
        self
        """
        X = as_sample(X, step=self._step)
        X.require("z", "exposure", step=self._step)
        if self.kT_column is not None:
            X.require(self.kT_column, step=self._step)
        if not (isinstance(self.nH_column, str) and self.nH_column == "deprecated"):
            import warnings

            warnings.warn(f"{self._step}(nH_column=...) is renamed nh_column=; nH_column= will stop working in a "
                          "future release", FutureWarning, stacklevel=2)
        if self._nh_column() is not None:
            X.require(self._nh_column(), step=self._step)
        source = self._resolve_source(X)
        bands, size, pixel, shape = self._geometry(X, source)
        for name in ("aperture_arcmin", "count_floor", "tol", "core_radius_r500"):
            check_positive_number(getattr(self, name), name, self._step)
        check_positive_number(self.psf_core_arcsec, "psf_core_arcsec", self._step, allow_zero=True)
        check_positive_int(self.max_iter, "max_iter", self._step)
        half = 0.5 * size
        ann = self.background_annulus_arcmin
        if ann is None:
            ann = (0.8 * half, None)
        if len(ann) != 2:
            raise ValueError(f"background_annulus_arcmin must be (inner, outer), got {ann!r}")
        r_in = float(ann[0])
        r_out = float(half * np.sqrt(2.0)) if ann[1] is None else float(ann[1])
        if not (0 < r_in < r_out):
            raise ValueError(f"background annulus needs 0 < inner < outer arcmin, got {ann!r}")
        if r_in >= half * np.sqrt(2.0):
            raise ValueError(
                f"background annulus inner radius {r_in} arcmin lies outside the box "
                f"(side {size} arcmin)"
            )
        if self.psf_correction and PSF_ALPHA != 1.5:  # the closed form needs the King slope 1.5
            raise ValueError(f"psf_correction assumes a King PSF slope of 1.5, the instrument has {PSF_ALPHA}")
        if self.aperture_arcmin >= r_in:
            raise ValueError(
                f"aperture_arcmin={self.aperture_arcmin} must be smaller than the background "
                f"annulus' inner radius {r_in} arcmin"
            )
        lo, hi = self.count_band_keV
        sel = [i for i, (a, b) in enumerate(bands) if a >= lo - 1e-6 and b <= hi + 1e-6]
        if not sel:
            raise ValueError(
                f"{self._step}: no band of {bands} lies within count_band_keV={self.count_band_keV}"
            )
        self.bands_keV_ = bands
        self.n_bands_ = len(bands)
        self.source_ = source
        self.image_shape_ = shape
        self.pixel_arcsec_ = pixel
        self.size_arcmin_ = size
        self.count_bands_ = sel
        self.hardness_pairs_ = [(i, i + 1) for i in range(len(bands) - 1)]
        self.background_annulus_arcmin_ = (r_in, min(r_out, float(half * np.sqrt(2.0))))
        self.observable_columns_ = [
            "counts_ap", "count_rate_ap", "counts_r500", "count_rate", "counts_ce",
            "theta500_arcmin", "log10_m500_lx", "kT_keV", "lx_erg_s", "flux_erg_s_cm2",
            "bkg_arcmin2",
        ] + [f"hr_{i}_{j}" for i, j in self.hardness_pairs_]
        return self

    # -- transform ----------------------------------------------------------
    def transform(self, X):
        """Add the observable columns (see Notes) to a copy of ``X``.

        Parameters
        ----------
        X : ClusterSample

        Returns
        -------
        ClusterSample
            ``X`` with the observable columns added and
            ``meta["observable_columns"]`` listing them.
        """
        check_is_fitted(self, "observable_columns_")
        X = as_sample(X, step=self._step)
        X.require("z", "exposure", self.source_, step=self._step)
        bands, size, pixel, shape = self._geometry(X, self.source_)
        if [tuple(b) for b in bands] != [tuple(b) for b in self.bands_keV_]:
            raise ValueError(
                f"{self._step} was fitted on bands {self.bands_keV_} keV but got {bands}"
            )
        if shape != self.image_shape_ or not np.isclose(size, self.size_arcmin_):
            raise ValueError(
                f"{self._step} was fitted on boxes of {self.size_arcmin_} arcmin "
                f"({self.image_shape_} pixels) but got {size} arcmin ({shape})"
            )
        n = len(X)
        z = np.asarray(X["z"], dtype=np.float64)
        zlo, zhi = 0.001, 2.0  # range of the rate table (BandRateTable default)
        bad = ~np.isfinite(z) | (z < zlo) | (z > zhi)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{self._step}: redshift must be within [{zlo}, {zhi}] for the K-correction "
                f"table; {rows.size} bad value(s): {rows_text(rows, z.tolist())}"
            )
        exposure = check_positive_column(X, "exposure", self._step)
        kT_given = None
        if self.kT_column is not None:
            kT_given = check_positive_column(X, self.kT_column, self._step)

        pixel_for_rings = pixel if pixel is not None else 4.0
        dr = ring_width_arcsec(pixel_for_rings)
        n_ring = n_rings(size * 60.0, dr)
        # clusters per chunk: the cumulative profiles (m, B, n_ring) stay ~32 MB
        chunk = max(1, CHUNK_ELEMENTS // (2 * self.n_bands_ * (n_ring + 1)))
        starts = range(0, n, chunk)
        if self.verbose:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="ScalarObservables", unit="chunk")
        table = self._rate_tables(X)
        parts = []
        for s in starts:
            sl = slice(s, min(s + chunk, n))
            C = self._cumulative_profiles(X, sl, dr, n_ring)
            parts.append(self._measure(C, dr, z[sl], exposure[sl], None if kT_given is None else kT_given[sl],
                                       table if isinstance(table, BandRateTable) else table.subset(sl)))
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if "complete" in X:
            incomplete = ~np.asarray(X["complete"], dtype=bool)
            if incomplete.any():
                cols["obs_flags"][incomplete] |= FLAGS["incomplete_cutout"]
                rows = np.flatnonzero(incomplete)
                warnings.warn(
                    f"{self._step}: {rows.size} cut-out(s) ran off the image ({rows_text(rows)}); "
                    "their zero padding lowers the background estimate and hides cluster flux, so their "
                    "observables are biased (flagged 'incomplete_cutout' in obs_flags)",
                    SkclusterWarning,
                    stacklevel=2,
                )
        return X.assign(meta={"observable_columns": list(self.observable_columns_)}, **cols)

    def _rate_tables(self, X):
        """The count-rate-per-luminosity table: one N_H for all, or each cluster's ``nh_column``."""
        key = tuple(map(tuple, self.bands_keV_)), tuple(self.lum_band_keV)
        column = self._nh_column()
        if column is None:
            return _rate_table(key[0], float(self.nH_cm2), key[1])
        nh = check_nh(check_positive_column(X, column, self._step), column, self._step)
        return NHRateTables(lambda v: _rate_table(key[0], v, key[1]), nh)

    def _cumulative_profiles(self, X, sl, dr, n_ring):
        """Counts within radius k dr, (m, B, n_ring + 1) float64, for rows ``sl``."""
        if self.source_ == "images":
            return cumulative_profiles_images(X["images"], sl, self.pixel_arcsec_, dr, self._step)
        return cumulative_profiles_events(X["events"][sl], sl.start, self.bands_keV_, self.size_arcmin_,
                                          dr, n_ring, self._step)

    def _measure(self, C, dr, z, exposure, kT_given, table):
        """Observable columns of one chunk from its cumulative profiles ``C``."""
        m = C.shape[0]
        sel = np.asarray(self.count_bands_)
        flags = _Flags(m, float(self.count_floor))
        r_in, r_out = (60.0 * r for r in self.background_annulus_arcmin_)
        net = NetCounts(C, dr, 30.0 * self.size_arcmin_, (r_in, r_out))

        n_ap, v_ap = net(60.0 * self.aperture_arcmin)
        counts_ap = flags.floored(n_ap[:, sel].sum(1), "aperture_floored")

        lmap = LuminosityMassMap(
            net, z, exposure, table, sel, self.lm_relation, self.mt_relation, kT_given, r_in,
            self.count_floor,
            (self.core_radius_r500, self.psf_core_arcsec) if self.psf_correction else None,
        )
        M, iters, bisected = solve_fixed_point(lmap, m, self.tol, self.max_iter, MASS_BOUNDS_MSUN)
        flags.set(bisected, "r500_bisection")
        lo_m, hi_m = MASS_BOUNDS_MSUN
        flags.set((M <= lo_m * (1 + 1e-9)) | (M >= hi_m * (1 - 1e-9)), "mass_clipped")

        out = {"counts_ap": counts_ap, "counts_ap_err": np.sqrt(v_ap[:, sel].sum(1)),
               "count_rate_ap": counts_ap / exposure}
        at_r500, n500 = self._at_r500(M, lmap, net, sel, flags, z, exposure)
        out.update(at_r500)
        out["bkg_arcmin2"] = net.background[:, sel].sum(1) * 3600.0
        out.update(_hardness_ratios(n500, self.hardness_pairs_, flags))
        out["obs_flags"] = flags.bits
        out["r500_iterations"] = iters
        return out

    def _at_r500(self, M, lmap, net, sel, flags, z, exposure):
        """Counts, rate, L_X, flux and temperature within the final theta500 estimate.

        Returns the columns and the net counts per band within theta500.
        """
        th = lmap.theta500_arcsec(M)
        flags.set(th > lmap.r_max, "r500_truncated")
        radius = np.minimum(th, lmap.r_max)
        n500, v500 = net(radius)
        counts_r500 = flags.floored(n500[:, sel].sum(1), "r500_floored")
        n_core = net(0.15 * radius)[0][:, sel].sum(1)
        counts_ce = flags.floored(n500[:, sel].sum(1) - n_core, "core_excised_floored")
        kT, kT_clip = lmap.temperature(M)
        flags.set(kT_clip, "kT_clipped")
        per_lum = lmap.per_luminosity(kT)
        count_rate = counts_r500 / exposure
        lx = count_rate * lmap.psf_correction(th, radius) / per_lum
        kcorr = _k_correction(kT, z, self.lum_band_keV)
        return {
            "counts_r500": counts_r500,
            "counts_r500_err": np.sqrt(v500[:, sel].sum(1)),
            "count_rate": count_rate,
            "counts_ce": counts_ce,
            "theta500_arcmin": radius / 60.0,
            "log10_m500_lx": np.log10(M),
            "kT_keV": kT,
            "lx_erg_s": lx,
            "flux_erg_s_cm2": lx / (4.0 * np.pi * cosmology.luminosity_distance_cm(z) ** 2 * kcorr),
            "kcorr": kcorr,
        }, n500
