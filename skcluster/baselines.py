"""Scalar-observable baselines: the mass proxies astronomers use today.

The CNN ensemble must beat these on the same held-out clusters (issue 6):

* :class:`ScalarObservables` measures scalar X-ray observables from the
  counts cube (or the event lists): net photon counts in a fixed aperture,
  counts within an r500 estimated iteratively with an L_X-M relation,
  core-excised counts (0.15-1 r500), count rates, the rest-frame 0.5-2 keV
  luminosity L_X (K-corrected, through the eROSITA response), the observed
  flux, and hardness ratios between bands. They are added as columns to the
  :class:`~skcluster.ClusterSample`.
* :class:`ColumnsToArray` turns chosen columns (and redshift terms) into a
  float64 2-D array for any scikit-learn regressor.
* :class:`ScalingRelationRegressor`: a power law in log space with redshift
  terms, fitted as the observable against mass and inverted (the
  "traditional" count-rate method of the seed study, Krippendorf et al.
  2023, arXiv:2305.00016, with the relation form of Chiu et al. 2022, A&A
  661, A11), with ``predict(X, return_std=True)``.
* :class:`GradientBoostingMassRegressor`: gradient-boosted trees on all
  scalar observables plus redshift, the strong non-linear baseline, also
  with a predictive std.
* :func:`make_baseline` builds the standard baseline pipelines by name.

Typical use::

    pipe = make_baseline("count_rate")         # ScalarObservables -> scaling relation
    pipe.fit(X_train, y_train)                 # X: ClusterSample with images, z, exposure
    mean, std = pipe.predict(X_test, return_std=True)   # log10 M500c / Msun, dex
"""

from __future__ import annotations

import fnmatch
import numbers
import warnings
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data
from threadpoolctl import threadpool_limits

from .exceptions import SkclusterWarning
from .physics import cosmology
from .physics.emission import bremsstrahlung_photon_spectrum
from .physics.instrument import PSF_ALPHA, PSF_CORE_ARCSEC
from .physics.rates import NH_EFEDS_CM2, BandRateTable, check_bands
from .sample import as_sample

__all__ = [
    "LM_RELATION_EFEDS",
    "MT_RELATION_ARNAUD05",
    "MASS_PIVOT_MSUN",
    "FLAGS",
    "ScalarObservables",
    "ColumnsToArray",
    "ScalingRelationRegressor",
    "GradientBoostingMassRegressor",
    "redshift_terms",
    "make_baseline",
    "count_rate_method",
    "BASELINE_NAMES",
]

#: Pivot mass of the scaling relations, Msun (PHYSICS.md; Chiu et al. 2022 use 1.4e14/h).
MASS_PIVOT_MSUN = 2e14
#: eFEDS L_X(0.5-2 keV, < r500)-M relation, fitted to the Liu et al. 2022
#: luminosities against the Chiu et al. 2022 weak-lensing-calibrated masses
#: (PHYSICS.md [measured]): log10 L/(erg/s) = 43.395 + 1.58 log10(M/2e14 Msun)
#: + 2.00 log10 E(z). Tuple: (log10 L at the pivot, mass slope, E(z) exponent).
LM_RELATION_EFEDS = (43.395, 1.58, 2.00)
#: Arnaud et al. 2005 M-T relation, E(z) M500 = 3.84e14 Msun (T / 5 keV)^1.71
#: (PHYSICS.md). Tuple: (normalisation in Msun at 5 keV, slope).
MT_RELATION_ARNAUD05 = (3.84e14, 1.71)

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

_MASS_BOUNDS_MSUN = (1e12, 1e16)
_ONE_SIGMA = 0.6826894921370859  # Gaussian probability within +-1 sigma
_CHUNK_ELEMENTS = 1 << 23  # image elements per chunk (32 MB of float32)


# ---------------------------------------------------------------------------
# geometry: cumulative radial profiles on a grid of rings
# ---------------------------------------------------------------------------
def _ring_width_arcsec(pixel_arcsec):
    """Width of the radial rings: a quarter pixel, at most 1 arcsec."""
    return min(pixel_arcsec / 4.0, 1.0)


def _n_rings(size_arcsec, dr):
    return int(np.ceil(0.5 * size_arcsec * np.sqrt(2.0) / dr)) + 1


@lru_cache(maxsize=4)
def _ring_matrix(npix, pixel_arcsec, dr):
    """Sparse (n_rings, npix*npix) float32: fraction of each pixel's area in each ring.

    Pixels are split into s x s sub-pixels (s = ceil(pixel/dr)) whose
    centres are assigned to rings [k dr, (k+1) dr) around the box centre
    (the geometry of docs/architecture.md: pixel (row r, col c) covers
    x in [-S/2 + c p, -S/2 + (c+1) p), y likewise).
    """
    s = max(1, int(np.ceil(pixel_arcsec / dr)))
    half = 0.5 * npix * pixel_arcsec
    sub = (np.arange(s) + 0.5) / s
    coord = (-half + (np.arange(npix)[:, None] + sub[None, :]) * pixel_arcsec).ravel()  # (npix*s,)
    pix = np.repeat(np.arange(npix), s)
    rr = np.hypot(coord[:, None], coord[None, :])  # (row sub, col sub)
    ring = np.floor(rr / dr).astype(np.int64).ravel()
    pix_index = (pix[:, None] * npix + pix[None, :]).ravel()
    n_rings = _n_rings(npix * pixel_arcsec, dr)
    m = sparse.coo_matrix(
        (np.full(ring.size, 1.0 / s**2, dtype=np.float32), (ring, pix_index)),
        shape=(n_rings, npix * npix),
    ).tocsr()
    m.sum_duplicates()
    return m


def _area_in_box(r, half):
    """Area of a circle of radius r centred in a square of half-side ``half``.

    Same units squared; pi r^2 inside, the square's area beyond its corner,
    and in between pi r^2 less the four circular segments beyond the sides.
    """
    r = np.asarray(r, dtype=np.float64)
    rs = np.maximum(r, half)
    seg = rs**2 * np.arccos(np.minimum(half / rs, 1.0)) - half * np.sqrt(np.maximum(rs**2 - half**2, 0.0))
    area = np.where(r > half, np.pi * r**2 - 4.0 * seg, np.pi * r**2)
    return np.where(r >= half * np.sqrt(2.0), 4.0 * half**2, area)


def _interp_cum(C, radius, dr, rows=None):
    """Cumulative counts C (m, B, K+1) on radii k dr, at radii (arcsec) of ``rows``: (len(rows), B)."""
    rows = np.arange(C.shape[0]) if rows is None else rows
    kmax = C.shape[2] - 1
    x = np.clip(np.asarray(radius, dtype=np.float64) / dr, 0.0, kmax)
    x = np.broadcast_to(x, rows.shape)
    k = np.minimum(np.floor(x).astype(np.int64), kmax - 1)
    f = (x - k)[:, None]
    lo = C[rows, :, k]
    hi = C[rows, :, k + 1]
    return lo + f * (hi - lo)


@lru_cache(maxsize=8)
def _rate_table(bands, nH_cm2, lum_band_keV):
    """Shared :class:`BandRateTable` (built once per band set: ~2 s)."""
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


def _psf_aperture_correction(radius, rc, psf_rc):
    """Intrinsic / observed counts within ``radius`` of a beta = 2/3 model.

    The projected beta = 2/3 profile (1 + r^2/rc^2)^-1.5 convolved with a
    King PSF (1 + r^2/a^2)^-1.5 is the same profile with core rc + a (both
    are 2-D Poisson kernels, Fourier transform exp(-2 pi rc k)); the
    fraction within R of such a profile is 1 - (1 + R^2/rc^2)^-1/2. All
    radii in the same units.
    """
    def frac(c):
        return 1.0 - 1.0 / np.sqrt(1.0 + (radius / c) ** 2)

    return frac(rc) / frac(rc + psf_rc)


def _is_sample(X):
    """A ClusterSample-like mapping (not a sparse matrix, whose dok format is a dict)."""
    return not sparse.issparse(X) and (isinstance(X, Mapping) or hasattr(X, "colnames"))


def _check_target(y, n, step):
    """y as a finite float64 1-D array of length n (a column vector warns and is raveled)."""
    if y is None:
        raise ValueError(f"{step} requires y to be passed, but the target y is None")
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64, input_name="y"), warn=True)
    if y.shape[0] != n:
        raise ValueError(
            f"{step}: y has {y.shape[0]} values but X has {n} clusters (inconsistent numbers of samples)"
        )
    return y


def _check_positive_column(X, name, step, allow_zero=False):
    v = np.asarray(X[name], dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{step}: column {name!r} must be 1-D, got shape {v.shape}")
    bad = ~np.isfinite(v) | ((v < 0) if allow_zero else (v <= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{step}: column {name!r} must be finite and {'>= 0' if allow_zero else 'positive'}; "
            f"{int(bad.sum())} bad value(s), first at row {i}: {float(v[i])!r}"
        )
    return v


# ---------------------------------------------------------------------------
# ScalarObservables
# ---------------------------------------------------------------------------
class ScalarObservables(TransformerMixin, BaseEstimator):
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
        theta500 of 2.36 arcmin, PHYSICS.md).
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
        (PHYSICS.md: eFEDS, 43.395, 1.58, 2.00).
    mt_relation : (float, float), default=MT_RELATION_ARNAUD05
        (M at 5 keV in Msun, slope) of E(z) M = M5 (T / 5 keV)^slope
        (Arnaud et al. 2005: 3.84e14, 1.71).
    kT_column : str, default=None
        Column of known temperatures (keV) to use instead of the M-T
        relation (e.g. spectroscopic T).
    nH_cm2 : float, default=3e20
        Galactic hydrogen column, cm^-2 (eFEDS, PHYSICS.md).
    psf_correction : bool, default=True
        Correct L_X and the flux for the counts the PSF scatters out of
        (and into) the r500 aperture, assuming a beta model with beta = 2/3
        (the eSASS extent model, PHYSICS.md) and core radius
        ``core_radius_r500`` r500. With the survey-averaged King PSF of
        slope 1.5 the correction is exact for that model: both profiles are
        (1 + r^2/a^2)^-1.5, whose 2-D Fourier transform is exp(-2 pi a k),
        so their convolution is the same profile with a = rc + rc_PSF. The
        factor [1 - (1 + R^2/rc^2)^-1/2] / [1 - (1 + R^2/(rc + rc_PSF)^2)^-1/2]
        is 1.05 for theta500 = 3.3 arcmin and 1.15 for 1.3 arcmin. Counts
        and count rates are left as measured.
    core_radius_r500 : float, default=0.185
        Core radius of the beta model in units of r500 (eFEDS median,
        PHYSICS.md).
    psf_core_arcsec : float, default=8.64
        King core radius of the PSF, arcsec (survey average, PHYSICS.md;
        slope 1.5).
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
                 kT_column=None, nH_cm2=NH_EFEDS_CM2, psf_correction=True, core_radius_r500=0.185,
                 psf_core_arcsec=PSF_CORE_ARCSEC, count_floor=1.0, max_iter=50, tol=1e-4,
                 source="auto", bands_keV=None, size_arcmin=None, verbose=0):
        self.aperture_arcmin = aperture_arcmin
        self.background_annulus_arcmin = background_annulus_arcmin
        self.count_band_keV = count_band_keV
        self.lum_band_keV = lum_band_keV
        self.lm_relation = lm_relation
        self.mt_relation = mt_relation
        self.kT_column = kT_column
        self.nH_cm2 = nH_cm2
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
        source = self._resolve_source(X)
        bands, size, pixel, shape = self._geometry(X, source)
        for name, val in (("aperture_arcmin", self.aperture_arcmin), ("count_floor", self.count_floor),
                          ("tol", self.tol), ("core_radius_r500", self.core_radius_r500)):
            if not (isinstance(val, numbers.Real) and np.isfinite(val) and val > 0):
                raise ValueError(f"{self._step}: {name} must be a positive number, got {val!r}")
        if not (isinstance(self.psf_core_arcsec, numbers.Real) and self.psf_core_arcsec >= 0):
            raise ValueError(f"{self._step}: psf_core_arcsec must be >= 0, got {self.psf_core_arcsec!r}")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"{self._step}: max_iter must be a positive integer, got {self.max_iter!r}")
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
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{self._step}: redshift must be within [{zlo}, {zhi}] for the K-correction "
                f"table; {int(bad.sum())} bad value(s), first at row {i}: z = {float(z[i])!r}"
            )
        exposure = _check_positive_column(X, "exposure", self._step)
        kT_given = None
        if self.kT_column is not None:
            kT_given = _check_positive_column(X, self.kT_column, self._step)

        pixel_for_rings = pixel if pixel is not None else 4.0
        dr = _ring_width_arcsec(pixel_for_rings)
        n_rings = _n_rings(size * 60.0, dr)
        # clusters per chunk: the cumulative profiles (m, B, n_rings) stay ~32 MB
        chunk = max(1, _CHUNK_ELEMENTS // (2 * self.n_bands_ * (n_rings + 1)))
        starts = range(0, n, chunk)
        if self.verbose:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="ScalarObservables", unit="chunk")
        table = _rate_table(tuple(map(tuple, self.bands_keV_)), float(self.nH_cm2), tuple(self.lum_band_keV))
        parts = []
        for s in starts:
            sl = slice(s, min(s + chunk, n))
            C = self._cumulative_profiles(X, sl, dr, n_rings)
            parts.append(self._measure(C, dr, z[sl], exposure[sl],
                                       None if kT_given is None else kT_given[sl], table))
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if "complete" in X:
            incomplete = ~np.asarray(X["complete"], dtype=bool)
            if incomplete.any():
                cols["obs_flags"][incomplete] |= FLAGS["incomplete_cutout"]
                rows = np.flatnonzero(incomplete)
                warnings.warn(
                    f"{self._step}: {rows.size} cut-out(s) ran off the image (rows {rows[:10].tolist()}); "
                    "their zero padding lowers the background estimate and hides cluster flux, so their "
                    "observables are biased (flagged 'incomplete_cutout' in obs_flags)",
                    SkclusterWarning,
                    stacklevel=2,
                )
        return X.assign(meta={"observable_columns": list(self.observable_columns_)}, **cols)

    def _cumulative_profiles(self, X, sl, dr, n_rings):
        """Counts within radius k dr, (m, B, n_rings + 1) float64, for rows ``sl``."""
        B = self.n_bands_
        if self.source_ == "images":
            images = X["images"]
            m = len(range(*sl.indices(len(images))))
            D = _ring_matrix(self.image_shape_[0], self.pixel_arcsec_, dr)
            rings = np.empty((m, B, n_rings))
            npix = self.image_shape_[0] * self.image_shape_[1]
            sub = max(1, _CHUNK_ELEMENTS // (B * npix))  # images per matrix product (32 MB)
            for a in range(0, m, sub):
                b = min(a + sub, m)
                flat = np.asarray(images[sl.start + a:sl.start + b]).reshape((b - a) * B, npix)
                if not (np.isfinite(flat.sum(dtype=np.float64)) and flat.min() >= 0):  # cheap check first
                    bad = ~np.isfinite(flat) | (flat < 0)
                    row = sl.start + a + int(np.flatnonzero(bad.any(axis=1))[0]) // B
                    raise ValueError(
                        f"{self._step}: images must be finite, non-negative counts; row {row} "
                        "has NaN, inf or negative pixels"
                    )
                rings[a:b] = np.asarray(D @ flat.T, dtype=np.float64).T.reshape(b - a, B, n_rings)
        else:
            events = X["events"][sl]
            m = len(events)
            half = 30.0 * self.size_arcmin_
            edges = np.array([b[0] for b in self.bands_keV_] + [self.bands_keV_[-1][1]])
            lows = np.array([b[0] for b in self.bands_keV_])
            highs = np.array([b[1] for b in self.bands_keV_])
            rings = np.zeros((m, B, n_rings))
            for i, ev in enumerate(events):
                try:
                    x = np.asarray(ev["x_arcsec"], dtype=np.float64)
                    y = np.asarray(ev["y_arcsec"], dtype=np.float64)
                    e = np.asarray(ev["energy_keV"], dtype=np.float64)
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    raise ValueError(
                        f"{self._step}: events of row {sl.start + i} are not an EVENT_DTYPE "
                        f"array with x_arcsec, y_arcsec, energy_keV ({exc})"
                    ) from None
                b = np.searchsorted(edges, e, side="right") - 1
                b = np.clip(b, 0, B - 1)
                keep = (np.abs(x) < half) & (np.abs(y) < half) & (e >= lows[b]) & (e < highs[b])
                ring = np.floor(np.hypot(x[keep], y[keep]) / dr).astype(np.int64)
                rings[i] = np.bincount(b[keep] * n_rings + ring, minlength=B * n_rings).reshape(B, n_rings)
        C = np.zeros((rings.shape[0], B, n_rings + 1))
        np.cumsum(rings, axis=2, out=C[:, :, 1:])
        return C

    def _measure(self, C, dr, z, exposure, kT_given, table):
        m = C.shape[0]
        every = np.arange(m)
        half = 30.0 * self.size_arcmin_  # arcsec
        sel = np.asarray(self.count_bands_)
        floor = float(self.count_floor)
        flags = np.zeros(m, dtype=np.int32)

        # background per band: counts per arcsec^2 in the outer annulus
        r_in, r_out = (60.0 * r for r in self.background_annulus_arcmin_)
        a_ann = float(_area_in_box(r_out, half) - _area_in_box(r_in, half))
        n_ann = _interp_cum(C, np.full(m, r_out), dr) - _interp_cum(C, np.full(m, r_in), dr)  # (m, B)
        bkg = n_ann / a_ann

        def net(radius, rows=every):
            """Net counts (and their Poisson variance) per band within radius (arcsec)."""
            radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), rows.shape)
            area = _area_in_box(radius, half)
            tot = _interp_cum(C, radius, dr, rows)
            var = tot + (area / a_ann)[:, None] ** 2 * n_ann[rows]
            return tot - bkg[rows] * area[:, None], var

        def floored(counts, bit):
            low = counts <= floor
            flags[low] |= FLAGS[bit]
            return np.where(low, floor, counts)

        # fixed aperture
        n_ap, v_ap = net(60.0 * self.aperture_arcmin)
        counts_ap = floored(n_ap[:, sel].sum(1), "aperture_floored")
        counts_ap_err = np.sqrt(v_ap[:, sel].sum(1))

        # r500 from the L_X-M relation, iterated
        a_lm, b_lm, c_lm = map(float, self.lm_relation)
        m5, s_mt = map(float, self.mt_relation)
        ez = cosmology.efunc(z)
        kpc_arcmin = cosmology.kpc_per_arcmin(z)
        rho_c = cosmology.rho_crit_msun_mpc3(z)
        kT_lo, kT_hi = table.kT_range_keV

        def theta500_arcsec(M, rows=every):
            r_kpc = 1e3 * (3.0 * M / (4.0 * np.pi * 500.0 * rho_c[rows])) ** (1.0 / 3.0)
            return 60.0 * r_kpc / kpc_arcmin[rows]

        def temperature(M, rows=every):
            kT = kT_given[rows] if kT_given is not None else 5.0 * (ez[rows] * M / m5) ** (1.0 / s_mt)
            clipped = (kT < kT_lo) | (kT > kT_hi)
            return np.clip(kT, kT_lo, kT_hi), clipped

        def psf_corr(th, radius):
            if not self.psf_correction:
                return 1.0
            return _psf_aperture_correction(radius, self.core_radius_r500 * th, self.psf_core_arcsec)

        def next_mass(M, rows=every):
            """M -> theta500 -> net count rate -> L_X -> M of the L-M relation (unclipped)."""
            th = theta500_arcsec(M, rows)
            radius = np.minimum(th, r_in)
            counts = net(radius, rows)[0][:, sel].sum(1)
            kT, _ = temperature(M, rows)
            per_lum = table(kT, z[rows])[:, sel].sum(1)  # counts/s per erg/s of rest-frame L
            L = np.maximum(counts, floor) * psf_corr(th, radius) / exposure[rows] / per_lum
            return MASS_PIVOT_MSUN * (L / (10.0**a_lm * ez[rows] ** c_lm)) ** (1.0 / b_lm)

        lo_m, hi_m = _MASS_BOUNDS_MSUN
        M = np.full(m, MASS_PIVOT_MSUN)
        active = np.ones(m, dtype=bool)
        iters = np.zeros(m, dtype=np.int32)
        for _ in range(int(self.max_iter)):
            rows = np.flatnonzero(active)
            M_new = np.clip(next_mass(M[rows], rows), lo_m, hi_m)
            step = np.abs(np.log10(M_new) - np.log10(M[rows]))
            M[rows] = M_new
            iters[rows] += 1
            active[rows] = step >= self.tol
            if not active.any():
                break
        # noisy profiles of faint clusters can make the iteration cycle: solve the same fixed-point
        # equation h(M) = log10 next_mass(M) - log10 M = 0 by bisection on a bracket from a mass grid
        # (the highest stable root, where h goes from + to -; bounds if there is none)
        rows = np.flatnonzero(active)
        if rows.size:
            flags[rows] |= FLAGS["r500_bisection"]
            grid = np.linspace(np.log10(lo_m), np.log10(hi_m), 81)
            H = np.stack([np.log10(next_mass(np.full(rows.size, 10**g), rows)) - g for g in grid], axis=1)
            stable = (H[:, :-1] > 0) & (H[:, 1:] <= 0)
            has = stable.any(axis=1)
            j = np.where(has, stable.shape[1] - 1 - np.argmax(stable[:, ::-1], axis=1), 0)
            a, b = grid[j], grid[j + 1]
            for _ in range(40):
                mid = 0.5 * (a + b)
                up = np.log10(next_mass(10**mid, rows)) - mid > 0
                a, b = np.where(up, mid, a), np.where(up, b, mid)
            logm = 0.5 * (a + b)
            logm = np.where(has, logm, np.where(H[:, 0] <= 0, grid[0], grid[-1]))
            M[rows] = 10**logm
        flags[(M <= lo_m * (1 + 1e-9)) | (M >= hi_m * (1 - 1e-9))] |= FLAGS["mass_clipped"]

        # everything at the final estimate
        th = theta500_arcsec(M)
        truncated = th > r_in
        flags[truncated] |= FLAGS["r500_truncated"]
        radius = np.minimum(th, r_in)
        n500, v500 = net(radius)
        counts_r500 = floored(n500[:, sel].sum(1), "r500_floored")
        counts_r500_err = np.sqrt(v500[:, sel].sum(1))
        n_core = net(0.15 * radius)[0][:, sel].sum(1)
        counts_ce = floored(n500[:, sel].sum(1) - n_core, "core_excised_floored")
        kT, kT_clip = temperature(M)
        flags[kT_clip] |= FLAGS["kT_clipped"]
        per_lum = table(kT, z)[:, sel].sum(1)
        count_rate = counts_r500 / exposure
        lx = count_rate * psf_corr(th, radius) / per_lum
        kcorr = _k_correction(kT, z, self.lum_band_keV)
        flux = lx / (4.0 * np.pi * cosmology.luminosity_distance_cm(z) ** 2 * kcorr)

        out = {
            "counts_ap": counts_ap,
            "counts_ap_err": counts_ap_err,
            "count_rate_ap": counts_ap / exposure,
            "counts_r500": counts_r500,
            "counts_r500_err": counts_r500_err,
            "count_rate": count_rate,
            "counts_ce": counts_ce,
            "theta500_arcmin": radius / 60.0,
            "log10_m500_lx": np.log10(M),
            "kT_keV": kT,
            "lx_erg_s": lx,
            "flux_erg_s_cm2": flux,
            "kcorr": kcorr,
            "bkg_arcmin2": bkg[:, sel].sum(1) * 3600.0,
        }
        for i, j in self.hardness_pairs_:
            s_, h_ = n500[:, i], n500[:, j]
            tot = s_ + h_
            undefined = tot <= 0
            flags[undefined] |= FLAGS["hardness_undefined"]
            hr = np.where(undefined, 0.0, (h_ - s_) / np.where(undefined, 1.0, tot))
            out[f"hr_{i}_{j}"] = np.clip(hr, -1.0, 1.0)
        out["obs_flags"] = flags
        out["r500_iterations"] = iters
        return out


# ---------------------------------------------------------------------------
# redshift terms and ColumnsToArray
# ---------------------------------------------------------------------------
_Z_TERMS = ("z", "1+z", "E", "DL")


def redshift_terms(z, terms, z_pivot=None):
    """Redshift features, one column per term.

    Parameters
    ----------
    z : array-like of shape (n_samples,)
    terms : sequence of {"z", "1+z", "E", "DL"}
        "z": z itself; "1+z": log10(1+z); "E": log10 E(z); "DL": log10 of the
        luminosity distance in Mpc (flat LambdaCDM, H0 = 70, Om0 = 0.3,
        :mod:`skcluster.physics.cosmology`).
    z_pivot : float, default=None
        If given, the logarithmic terms are taken relative to their value at
        ``z_pivot`` (log10 E(z)/E(z_pivot), ...) and "z" becomes z - z_pivot.

    Returns
    -------
    numpy.ndarray of float64, shape (n_samples, len(terms))
    """
    z = np.asarray(z, dtype=np.float64)
    bad = ~np.isfinite(z) | (z < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"redshift must be finite and >= 0; first bad value at row {i}: {float(z[i])!r}")
    unknown = [t for t in terms if t not in _Z_TERMS]
    if unknown:
        raise ValueError(f"unknown redshift term(s) {unknown}; choose from {list(_Z_TERMS)}")
    if "DL" in terms and np.any(z <= 0):
        i = int(np.flatnonzero(z <= 0)[0])
        raise ValueError(f"the 'DL' term needs z > 0; row {i} has z = {float(z[i])!r}")

    def one(term, zz):
        if term == "z":
            return zz
        if term == "1+z":
            return np.log10(1.0 + zz)
        if term == "E":
            return np.log10(cosmology.efunc(zz))
        return np.log10(cosmology.luminosity_distance_cm(zz) / 3.0856775814913673e24)  # cm per Mpc

    cols = []
    for t in terms:
        v = one(t, z)
        if z_pivot is not None:
            v = v - one(t, np.asarray([float(z_pivot)]))[0]
        cols.append(v)
    return np.stack(cols, axis=1) if cols else np.empty((z.size, 0))


def _expand_columns(X, patterns, step):
    """Column names matching ``patterns`` (shell-style wildcards), in order, no duplicates."""
    names = []
    for p in patterns:
        if any(ch in p for ch in "*?["):
            hits = [c for c in X.columns if fnmatch.fnmatchcase(c, p)]
            if not hits:
                raise KeyError(f"{step}: no column matches {p!r}; columns are {X.columns}")
        else:
            X.require(p, step=step)
            hits = [p]
        names += [h for h in hits if h not in names]
    return names


class ColumnsToArray(TransformerMixin, BaseEstimator):
    """Turn chosen columns of a ClusterSample (and redshift terms) into a 2-D array.

    Parameters
    ----------
    columns : sequence of str, default=None
        Columns to take, in order; shell-style wildcards (``"hr_*"``) expand
        to the matching columns. 2-D columns contribute one feature per
        column of theirs. ``None`` takes ``X.meta["observable_columns"]``
        (written by :class:`ScalarObservables`).
    log : bool or sequence of str, default=False
        Take log10 of all the columns (True) or of the named ones; values
        <= 0 then raise an error naming the column, row and value.
    z_terms : sequence of {"z", "1+z", "E", "DL"}, default=()
        Redshift features appended after the columns (see
        :func:`redshift_terms`); needs a ``z`` column.

    Attributes
    ----------
    columns_ : list of str
        Expanded column names.
    feature_names_out_ : list of str
    n_features_out_ : int
    """

    def __init__(self, columns=None, log=False, z_terms=()):
        self.columns = columns
        self.log = log
        self.z_terms = z_terms

    _step = "ColumnsToArray"

    def _columns(self, X):
        if self.columns is None:
            cols = X.meta.get("observable_columns")
            if cols is None:
                raise ValueError(
                    f"{self._step}: columns=None takes meta['observable_columns'] from "
                    "ScalarObservables, which this sample lacks; name the columns"
                )
            return list(cols)
        if isinstance(self.columns, str):
            raise TypeError(f"{self._step}: columns must be a list of names, got the string {self.columns!r}")
        return _expand_columns(X, self.columns, self._step)

    def fit(self, X, y=None):
        """Record the columns and their widths.

        Parameters
        ----------
        X : ClusterSample
        y : ignored
        """
        X = as_sample(X, step=self._step)
        cols = self._columns(X)
        X.require(*cols, step=self._step)
        unknown = [t for t in self.z_terms if t not in _Z_TERMS]
        if unknown:
            raise ValueError(f"{self._step}: unknown z_terms {unknown}; choose from {list(_Z_TERMS)}")
        if self.z_terms:
            X.require("z", step=self._step)
        logged = self._logged(cols)
        names = []
        for c in cols:
            v = np.asarray(X[c])
            if v.ndim > 2:
                raise ValueError(f"{self._step}: column {c!r} has shape {v.shape}; only 1-D or 2-D columns")
            base = f"log10_{c}" if c in logged else c
            names += [base] if v.ndim == 1 else [f"{base}[{k}]" for k in range(v.shape[1])]
        names += [{"z": "z", "1+z": "log10_1pz", "E": "log10_E", "DL": "log10_DL_Mpc"}[t] for t in self.z_terms]
        self.columns_ = cols
        self.feature_names_out_ = names
        self.n_features_out_ = len(names)
        return self

    def _logged(self, cols):
        if self.log is True:
            return set(cols)
        if self.log is False or self.log is None:
            return set()
        logged = set(self.log)
        missing = logged - set(cols)
        if missing:
            raise ValueError(f"{self._step}: log names columns {sorted(missing)} that are not in columns {cols}")
        return logged

    def transform(self, X):
        """Return the float64 array of shape (n_samples, n_features_out_)."""
        check_is_fitted(self, "columns_")
        X = as_sample(X, step=self._step)
        X.require(*self.columns_, step=self._step)
        logged = self._logged(self.columns_)
        parts = []
        for c in self.columns_:
            v = np.asarray(X[c], dtype=np.float64)
            v = v[:, None] if v.ndim == 1 else v
            bad = ~np.isfinite(v)
            if c in logged:
                bad |= v <= 0
            if bad.any():
                i, k = np.argwhere(bad)[0]
                need = "finite and positive (log=True)" if c in logged else "finite"
                raise ValueError(
                    f"{self._step}: column {c!r} must be {need}; {int(bad.sum())} bad value(s), "
                    f"first at row {i}: {float(v[i, k])!r}"
                )
            parts.append(np.log10(v) if c in logged else v)
        if self.z_terms:
            parts.append(redshift_terms(X["z"], self.z_terms))
        out = np.concatenate(parts, axis=1) if parts else np.empty((len(X), 0))
        if out.shape[1] != self.n_features_out_:
            raise ValueError(
                f"{self._step} was fitted with {self.n_features_out_} features but this sample "
                f"gives {out.shape[1]} (a 2-D column changed width)"
            )
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)


# ---------------------------------------------------------------------------
# ScalingRelationRegressor
# ---------------------------------------------------------------------------
_DISTANCE_OBSERVABLES = ("counts", "count_rate", "flux")
_AUTO_TERMS_DISTANCE = ("E", "DL", "1+z")
_AUTO_TERMS_LUMINOSITY = ("E",)
_INTERACTION = "mass*1+z"


def _auto_terms(observable):
    name = observable.lower()
    if any(name.startswith(p) for p in _DISTANCE_OBSERVABLES):
        return _AUTO_TERMS_DISTANCE
    return _AUTO_TERMS_LUMINOSITY


class ScalingRelationRegressor(RegressorMixin, BaseEstimator):
    """Power-law mass-observable relation with redshift terms, in log space.

    With ``direction="inverse"`` (default) it is fitted as astronomers fit
    scaling relations, the observable O as a function of mass and redshift,

        log10 O = a + (b + d t_1+z) (y - y_p) + sum_k c_k t_k(z) + eps,
        eps ~ N(0, sigma_O),

    (y = log10 M500c/Msun, y_p = log10 ``mass_pivot``, t_k the redshift
    terms relative to ``z_pivot``) by ordinary least squares, and inverted
    to predict: y = y_p + (log10 O - a - sum c_k t_k) / (b + d t_1+z), with
    std sigma_O / |b + d t_1+z| (dex; times ln 10 for the scatter in ln M).
    Inverting the relation is unbiased at fixed true mass whatever the mass
    function, which is why the literature calibrates O(M) and inverts it;
    ``direction="forward"`` instead regresses y on log10 O and the redshift
    terms (the least-squares predictor for the training distribution,
    smaller total scatter but biased at the extremes of mass).

    Parameters
    ----------
    observable : str, default="count_rate"
        Column of the ClusterSample (from :class:`ScalarObservables`);
        positive values.
    redshift_terms : "auto" or sequence of str, default="auto"
        Terms among "E" (log10 E(z)/E(z_p)), "1+z" (log10 (1+z)/(1+z_p)),
        "DL" (log10 D_L(z)/D_L(z_p)) and "mass*1+z" (a mass slope changing
        with log10 (1+z), inverse direction only), each with a fitted
        coefficient. "auto" picks the form of Chiu et al. 2022 (A&A 661,
        A11; also the eRASS1 form) for distance-dependent observables,
        eta ~ M^b E(z)^c1 D_L(z)^c2 (1+z)^c3, i.e. ("E", "DL", "1+z") for
        names starting with "counts", "count_rate" or "flux", and the
        self-similar ("E",) for luminosities (PHYSICS.md L-M forms). An
        observed rate or flux falls as D_L^-2, which E(z) alone cannot
        follow over 0.01 < z < 1.5.
    direction : {"inverse", "forward"}, default="inverse"
    mass_pivot : float, default=2e14
        Msun (PHYSICS.md).
    z_pivot : float, default=0.35
        Pivot redshift of the terms (Chiu et al. 2022).

    Attributes
    ----------
    terms_ : list of str
        Redshift terms used (excluding the interaction).
    intercept_ : float
        a (inverse: log10 O at the pivots) or the intercept of y (forward).
    slope_ : float
        b: mass slope of log10 O (inverse) or slope of y on log10 O (forward).
    redshift_coef_ : numpy.ndarray of shape (n_terms,)
    mass_z_slope_ : float
        d, the coefficient of the "mass*1+z" interaction (0 without it).
    scatter_ : float
        Residual standard deviation of the fitted relation (dex of O for
        inverse, dex of M for forward), the intrinsic plus measurement
        scatter; ddof = number of coefficients.
    mass_scatter_ : float
        Scatter in log10 M at the pivot redshift (dex): scatter_ / |b| for
        inverse.
    n_features_in_ : int
        Only when fitted on a 2-D array: column 0 is log10 O, the others
        additive covariates (the redshift terms).

    Notes
    -----
    A 2-D numeric array is accepted instead of a ClusterSample: its first
    column is taken as log10 O and the others as the (already computed)
    redshift terms, so the regressor also works behind
    :class:`ColumnsToArray` and in scikit-learn's estimator checks.
    """

    def __init__(self, observable="count_rate", redshift_terms="auto", direction="inverse",
                 mass_pivot=MASS_PIVOT_MSUN, z_pivot=0.35):
        self.observable = observable
        self.redshift_terms = redshift_terms
        self.direction = direction
        self.mass_pivot = mass_pivot
        self.z_pivot = z_pivot

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # one observable: not a general-purpose regressor
        return tags

    def _terms(self):
        terms = _auto_terms(self.observable) if self.redshift_terms == "auto" else tuple(self.redshift_terms)
        if isinstance(self.redshift_terms, str) and self.redshift_terms != "auto":
            raise ValueError(f"redshift_terms must be 'auto' or a sequence of names, got {self.redshift_terms!r}")
        interaction = _INTERACTION in terms
        return [t for t in terms if t != _INTERACTION], interaction

    def _features(self, X, y=None, fitting=False):
        """log10 O (n,), redshift terms (n, k), the log10(1+z) term of the interaction, y."""
        step = "ScalingRelationRegressor"
        if _is_sample(X):
            X = as_sample(X, step="ScalingRelationRegressor")
            X.require(self.observable, "z", step="ScalingRelationRegressor")
            o = _check_positive_column(X, self.observable, "ScalingRelationRegressor")
            terms, inter = self._terms()
            T = redshift_terms(X["z"], terms, z_pivot=self.z_pivot)
            t1z = redshift_terms(X["z"], ["1+z"], z_pivot=self.z_pivot)[:, 0] if inter else None
            if fitting:
                y = _check_target(y, len(X), step)
                self.terms_ = terms
                self.input_kind_ = "sample"
            elif self.input_kind_ != "sample":
                raise ValueError(f"{step} was fitted on an array; predict needs an array too")
            return np.log10(o), T, t1z, y
        if fitting:
            A, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
            self.terms_ = [f"x{k}" for k in range(1, A.shape[1])]
            self.input_kind_ = "array"
        else:
            if self.input_kind_ != "array":
                raise ValueError(f"{step} was fitted on a ClusterSample; predict needs one too")
            A = validate_data(self, X, reset=False, dtype=np.float64)
        return A[:, 0], A[:, 1:], None, y

    def fit(self, X, y):
        """Fit the relation.

        Parameters
        ----------
        X : ClusterSample or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            log10(M500c / Msun).

        Returns
        -------
        self
        """
        if self.direction not in ("inverse", "forward"):
            raise ValueError(f"direction must be 'inverse' or 'forward', got {self.direction!r}")
        if not (isinstance(self.mass_pivot, numbers.Real) and self.mass_pivot > 0):
            raise ValueError(f"mass_pivot must be a positive mass in Msun, got {self.mass_pivot!r}")
        lo, T, t1z, y = self._features(X, y, fitting=True)
        yp = np.log10(self.mass_pivot)
        if self.direction == "inverse":
            cols = [np.ones_like(y), y - yp, T]
            if t1z is not None:
                cols.append(((y - yp) * t1z)[:, None])
            A = np.column_stack(cols)
            target = lo
        else:
            if t1z is not None:
                raise ValueError("the 'mass*1+z' term needs direction='inverse'")
            A = np.column_stack([np.ones_like(y), lo, T])
            target = y
        if A.shape[0] <= A.shape[1]:
            raise ValueError(
                f"need more clusters (n_samples = {A.shape[0]}) than coefficients ({A.shape[1]}) "
                "to fit the relation and its scatter"
            )
        coef, *_ = np.linalg.lstsq(A, target, rcond=None)
        resid = target - A @ coef
        k = T.shape[1]
        self.intercept_ = float(coef[0])
        self.slope_ = float(coef[1])
        self.redshift_coef_ = np.asarray(coef[2:2 + k], dtype=np.float64)
        self.mass_z_slope_ = float(coef[2 + k]) if t1z is not None else 0.0
        self.scatter_ = float(np.sqrt(np.sum(resid**2) / (A.shape[0] - A.shape[1])))
        if self.direction == "inverse":
            if self.slope_ == 0 or not np.isfinite(self.slope_):
                raise ValueError(
                    f"the fitted mass slope is {self.slope_}: observable {self.observable!r} does not "
                    "change with mass, the relation cannot be inverted"
                )
            self.mass_scatter_ = self.scatter_ / abs(self.slope_)
        else:
            self.mass_scatter_ = self.scatter_
        self.scatter_ = max(self.scatter_, np.finfo(float).tiny)
        self.mass_scatter_ = max(self.mass_scatter_, np.finfo(float).tiny)
        return self

    def predict(self, X, return_std=False):
        """Predict log10(M500c / Msun).

        Parameters
        ----------
        X : ClusterSample or array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the predictive std (dex): the relation's scatter
            propagated through the inversion.

        Returns
        -------
        y_mean : numpy.ndarray of shape (n_samples,)
        y_std : numpy.ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        check_is_fitted(self, "slope_")
        lo, T, t1z, _ = self._features(X, fitting=False)
        yp = np.log10(self.mass_pivot)
        zpart = T @ self.redshift_coef_
        if self.direction == "inverse":
            slope = self.slope_ + (self.mass_z_slope_ * t1z if t1z is not None else 0.0)
            slope = np.broadcast_to(slope, lo.shape)
            if np.any(slope == 0):
                raise ValueError("the mass slope vanishes at some redshift; the relation cannot be inverted there")
            mean = yp + (lo - self.intercept_ - zpart) / slope
            std = self.scatter_ / np.abs(slope)
        else:
            mean = self.intercept_ + self.slope_ * lo + zpart
            std = np.full_like(mean, self.scatter_)
        if return_std:
            return mean, np.asarray(std, dtype=np.float64)
        return mean


# ---------------------------------------------------------------------------
# gradient boosting
# ---------------------------------------------------------------------------
def _export_trees(model):
    """Plain arrays of a fitted HistGradientBoostingRegressor (numerical features).

    Returns a dict of numpy arrays: node fields concatenated over trees,
    ``offsets`` of each tree's root, the ``baseline`` raw prediction and the
    ``link`` ("identity" or "log"), so that predictions need no pickled
    sklearn objects (see :func:`_predict_trees`).
    """
    trees = [p[0] for p in model._predictors]
    nodes = [t.nodes for t in trees]
    sizes = np.array([len(nd) for nd in nodes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    allnodes = np.concatenate(nodes) if nodes else np.zeros(0, dtype=[("value", "f8")])
    if len(allnodes) and np.any(allnodes["is_categorical"]):
        raise ValueError("categorical features are not supported by the exported trees")
    link = "log" if model.loss in ("gamma", "poisson") else "identity"
    out = {
        "offsets": offsets,
        "baseline": np.asarray(model._baseline_prediction, dtype=np.float64).ravel()[:1],
        "link": link,
    }
    for f in ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf"):
        out[f] = np.asarray(allnodes[f]) if len(allnodes) else np.zeros(0)
    out["left"] = out["left"].astype(np.int64)
    out["right"] = out["right"].astype(np.int64)
    out["feature_idx"] = out["feature_idx"].astype(np.int64)
    out["is_leaf"] = out["is_leaf"].astype(bool)
    out["missing_go_to_left"] = out["missing_go_to_left"].astype(bool)
    return out


def _predict_trees(t, X):
    """Prediction of exported trees (vectorised descent of every tree)."""
    raw = np.full(X.shape[0], t["baseline"][0])
    rows = np.arange(X.shape[0])
    for off in t["offsets"]:
        node = np.zeros(X.shape[0], dtype=np.int64)
        while True:
            g = node + off
            inner = ~t["is_leaf"][g]
            if not inner.any():
                break
            gi = g[inner]
            x = X[rows[inner], t["feature_idx"][gi]]
            left = np.where(np.isnan(x), t["missing_go_to_left"][gi], x <= t["num_threshold"][gi])
            node[inner] = np.where(left, t["left"][gi], t["right"][gi])
        raw += t["value"][node + off]
    return np.exp(raw) if t["link"] == "log" else raw


class GradientBoostingMassRegressor(RegressorMixin, BaseEstimator):
    """Gradient-boosted trees on scalar observables plus redshift, with a std.

    The strong non-linear baseline: scikit-learn's
    :class:`~sklearn.ensemble.HistGradientBoostingRegressor` on all the
    columns of :class:`ScalarObservables` (trees need no logs), the
    redshift and the exposure.

    The predictive std (``std_method``):

    * ``"oof"`` (default): out-of-fold residuals r of the mean model from
      an inner ``n_splits``-fold split of the training set (honest, unlike
      in-sample residuals, which boosting drives toward zero); a second,
      shallow boosted model with a gamma loss (log link) learns E[r^2 | x],
      so the std varies with the cluster (heteroscedastic: faint clusters
      get larger errors). Its scale is then calibrated so that 68.3% of the
      out-of-fold residuals fall within +-1 std of cross-fitted variance
      models (residuals have heavier tails than a Gaussian of the same
      variance, so the raw sqrt(E[r^2|x]) gives intervals that cover too
      much at 95% and too little at 68%). Costs 2 n_splits + 2 fits
      (the variance models are small).
    * ``"constant"``: the rms of those out-of-fold residuals for every
      cluster.
    * ``"quantile"``: two more models with the quantile loss at 15.87% and
      84.13%; std = half their distance (clipped at 1e-3 dex).

    Parameters
    ----------
    columns : sequence of str, default=None
        Columns of the ClusterSample (wildcards allowed, e.g. "hr_*"); None
        takes ``meta["observable_columns"]`` plus "z" and "exposure". A 2-D
        array input is used as it is.
    std_method : {"oof", "constant", "quantile"}, default="oof"
    n_splits : int, default=5
        Inner folds for the out-of-fold residuals.
    max_iter : int, default=300
    learning_rate : float, default=0.05
    max_leaf_nodes : int, default=31
    min_samples_leaf : int, default=20
    l2_regularization : float, default=0.0
    n_threads : int or None, default=1
        OpenMP threads of the boosting fits (None: all). One by default:
        on a shared 2-core machine the OpenMP threads of small fits spin
        against other processes (a 1600 x 4 fit of 150 iterations took
        0.4 s on one thread and 7-22 s on two under load); parallelise over
        folds or models instead.
    random_state : int, RandomState instance or None, default=None
        Seeds of every model and of the inner split, drawn once in fit.

    Attributes
    ----------
    columns_ : list of str or None
        Expanded column names (None for array input).
    trees_ : dict
        The mean model as plain arrays (node fields, tree offsets, baseline).
    std_trees_ : dict or list of dict or None
        The variance model ("oof"), the two quantile models ("quantile"),
        or None ("constant").
    oof_rms_ : float
        rms of the out-of-fold residuals, dex (NaN for "quantile").
    std_scale_ : float
        Calibration factor of the "oof" std (1 otherwise).
    n_iter_ : int
        Boosting iterations of the mean model.
    n_features_in_ : int
    """

    def __init__(self, columns=None, std_method="oof", n_splits=5, max_iter=300, learning_rate=0.05,
                 max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0.0, n_threads=1,
                 random_state=None):
        self.columns = columns
        self.std_method = std_method
        self.n_splits = n_splits
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_threads = n_threads
        self.random_state = random_state

    _step = "GradientBoostingMassRegressor"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # the trees route missing values
        return tags

    def _array(self, X, y=None, fitting=False):
        if _is_sample(X):
            X = as_sample(X, step=self._step)
            if fitting:
                if self.columns is None:
                    obs = X.meta.get("observable_columns")
                    if obs is None:
                        raise ValueError(
                            f"{self._step}: columns=None takes meta['observable_columns'] from "
                            "ScalarObservables, which this sample lacks; name the columns"
                        )
                    cols = list(obs) + [c for c in ("z", "exposure") if c in X and c not in obs]
                else:
                    cols = _expand_columns(X, self.columns, self._step)
                self.columns_ = cols
            elif self.columns_ is None:
                raise ValueError(f"{self._step} was fitted on an array; predict needs an array too")
            conv = ColumnsToArray(columns=self.columns_).fit(X)
            A = conv.transform(X)
            if fitting:
                self.n_features_in_ = A.shape[1]
                y = _check_target(y, A.shape[0], self._step)
            elif A.shape[1] != self.n_features_in_:
                raise ValueError(f"{self._step} expects {self.n_features_in_} features, got {A.shape[1]}")
            return A, y
        if fitting:
            self.columns_ = None
            return validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True)
        if self.columns_ is not None:
            raise ValueError(f"{self._step} was fitted on a ClusterSample; predict needs one too")
        return validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan"), None

    def _model(self, seed, **kw):
        params = dict(max_iter=self.max_iter, learning_rate=self.learning_rate,
                      max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                      l2_regularization=self.l2_regularization, random_state=seed)
        params.update(kw)
        return HistGradientBoostingRegressor(**params)

    def fit(self, X, y):
        """Fit the mean model and the std model.

        The boosting fits run with ``n_threads`` OpenMP threads.

        Parameters
        ----------
        X : ClusterSample or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            log10(M500c / Msun).

        Returns
        -------
        self
        """
        with threadpool_limits(self.n_threads, user_api="openmp"):
            return self._fit(X, y)

    def _fit(self, X, y):
        if self.std_method not in ("oof", "constant", "quantile"):
            raise ValueError(f"std_method must be 'oof', 'constant' or 'quantile', got {self.std_method!r}")
        A, y = self._array(X, y, fitting=True)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=self.n_splits + 4)  # drawn once, up front
        mean_model = self._model(int(seeds[0])).fit(A, y)
        self.trees_ = _export_trees(mean_model)
        self.n_iter_ = int(mean_model.n_iter_)
        self.oof_rms_ = float("nan")
        self.std_trees_ = None
        self.std_scale_ = 1.0
        if self.std_method == "quantile":
            self.std_trees_ = [
                _export_trees(self._model(int(seeds[1 + k]), loss="quantile", quantile=q).fit(A, y))
                for k, q in enumerate((0.15865525, 0.84134475))
            ]
            return self
        n_splits = int(self.n_splits)
        if n_splits < 2 or A.shape[0] < 2 * n_splits:
            raise ValueError(
                f"{self._step}: std_method={self.std_method!r} needs n_splits >= 2 and at least "
                f"2 * n_splits clusters; got n_splits={self.n_splits}, n_samples = {A.shape[0]}"
            )
        oof = np.empty_like(y)
        kf = KFold(n_splits=n_splits, shuffle=True, random_state=int(seeds[1]))
        for k, (tr, te) in enumerate(kf.split(A)):
            oof[te] = self._model(int(seeds[2 + k])).fit(A[tr], y[tr]).predict(A[te])
        r2 = (y - oof) ** 2
        self.oof_rms_ = float(np.sqrt(np.mean(r2)))
        if self.std_method == "oof":
            floor = max(1e-6, 1e-4 * float(np.mean(r2)))

            def var_model(seed):
                return self._model(seed, loss="gamma", max_iter=min(100, self.max_iter), max_leaf_nodes=8,
                                   min_samples_leaf=max(self.min_samples_leaf, 50))

            # cross-fitted std of each residual, to calibrate the scale of the std honestly
            sigma_oof = np.empty_like(y)
            for k, (tr, te) in enumerate(kf.split(A)):
                sigma_oof[te] = np.sqrt(var_model(int(seeds[2 + k])).fit(A[tr], r2[tr] + floor).predict(A[te]))
            self.std_scale_ = float(np.quantile(np.abs(y - oof) / sigma_oof, _ONE_SIGMA))
            self.std_trees_ = _export_trees(var_model(int(seeds[-1])).fit(A, r2 + floor))
        return self

    def predict(self, X, return_std=False):
        """Predict log10(M500c / Msun) (and the std, dex).

        Parameters
        ----------
        X : ClusterSample or array-like of shape (n_samples, n_features)
        return_std : bool, default=False

        Returns
        -------
        y_mean : numpy.ndarray of shape (n_samples,)
        y_std : numpy.ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        check_is_fitted(self, "trees_")
        A, _ = self._array(X, fitting=False)
        mean = _predict_trees(self.trees_, A)
        if not return_std:
            return mean
        if self.std_method == "quantile":
            lo, hi = (_predict_trees(t, A) for t in self.std_trees_)
            std = np.maximum(0.5 * (hi - lo), 1e-3)
        elif self.std_method == "oof":
            std = self.std_scale_ * np.sqrt(_predict_trees(self.std_trees_, A))
        else:
            std = np.full_like(mean, self.oof_rms_)
        return mean, std


# ---------------------------------------------------------------------------
# the standard baselines
# ---------------------------------------------------------------------------
_SCALING = {
    "counts": "counts_ap",
    "counts_r500": "counts_r500",
    "counts_ce": "counts_ce",
    "lx": "lx_erg_s",
    "count_rate": "count_rate",
}

#: Names accepted by :func:`make_baseline`.
BASELINE_NAMES = tuple(_SCALING) + ("hardness_counts", "gbm_scalars")


def count_rate_method():
    """The traditional method of Krippendorf et al. 2023 (unfitted).

    The Chiu et al. 2022 count-rate relation form (E(z), D_L, (1+z) terms)
    on the column ``ml_rate``: the detection fit's count rate, counts/s in
    0.2-2.3 keV (eSASS ML_RATE; for the mock,
    ``skcluster.benchmark.catalog_scalars(catalog)["ml_rate"]``).
    """
    return ScalingRelationRegressor(observable="ml_rate", redshift_terms=("E", "DL", "1+z"))


def make_baseline(name, *, observables=None, random_state=None, **regressor_params):
    """A standard baseline pipeline by name: ScalarObservables -> regressor.

    ========================  ===================================================
    ``counts``                scaling relation on net counts in the fixed aperture
                              (photon counts, Ho et al. 2023)
    ``counts_r500``           ... on net counts within the r500 estimate
    ``counts_ce``             ... on core-excised counts (0.15-1 r500)
    ``lx``                    ... on L_X (0.5-2 keV, rest frame), E(z) term
    ``count_rate``            ... on the count rate eta within r500, the
                              "traditional method" (Chiu et al. 2022 form)
    ``hardness_counts``       gradient boosting on counts, hardness ratios and z
    ``gbm_scalars``           gradient boosting on every observable, z, exposure
    ========================  ===================================================

    Parameters
    ----------
    name : str
        One of :data:`BASELINE_NAMES`.
    observables : ScalarObservables, default=None
        The measuring step (default settings when None); it is cloned.
    random_state : int or None, default=None
        For the gradient-boosting baselines.
    **regressor_params
        Passed to the regressor.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``observables`` and ``regressor``.
    """
    obs = clone(observables) if observables is not None else ScalarObservables()
    if name in _SCALING:
        reg = ScalingRelationRegressor(observable=_SCALING[name], **regressor_params)
    elif name == "hardness_counts":
        reg = GradientBoostingMassRegressor(columns=("counts_ap", "hr_*", "z"), random_state=random_state,
                                            **regressor_params)
    elif name == "gbm_scalars":
        reg = GradientBoostingMassRegressor(random_state=random_state, **regressor_params)
    else:
        raise ValueError(f"unknown baseline {name!r}; choose one of {list(BASELINE_NAMES)}")
    return Pipeline([("observables", obs), ("regressor", reg)])
