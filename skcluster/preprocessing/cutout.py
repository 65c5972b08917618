"""Real data: cut clusters out of evtool band images (:class:`ImageCutout`).

The band images (one FITS file per band) and exposure maps are read with
:class:`skcluster.io.BandImageStack`, each cluster is cut out at its ``ra``,
``dec`` into a box aligned to the image grid (within half a pixel of the
cluster, :mod:`skcluster.io.images`), and the result has the cube layout of
:class:`~skcluster.preprocessing.BandBinner`: ``images[i, b, row, col]``
with rows along north and columns toward decreasing RA (the FITS
``data[y, x]`` layout of images with CDELT1 < 0).

Padding
-------
A box that runs off the image (or over pixels without exposure) has no data
there. Filling such pixels with zeros would show the network a sharp drop
to an empty sky that it never saw in training; filling them with a copy of
the data could repeat the cluster. The default ``fill="background"`` puts
in the expected background instead: per band, the count rate per pixel
measured in the observed part of the box *outside* ``background_inner_arcmin``
of the cluster (5 arcmin, about twice the median eFEDS theta500 of 2.36
arcmin, Liu et al. 2022, so the cluster's own emission barely enters), times the
median exposure of the observed pixels. The fill is a flat level with no
structure, so it cannot create a source; the cut-out is flagged
(``complete=False``, ``coverage`` < 1) and an
:class:`~skcluster.exceptions.IncompleteCutoutWarning` names the rows, so
predictions there can be set aside. ``fill="zeros"`` or a number (counts
per native pixel) are available too.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm.auto import tqdm

from .._validation import check_positive_int, check_positive_number, rows_text
from ..exceptions import CutoutError, IncompleteCutoutWarning, SkclusterWarning
from ..io import BandImageStack
from ..io.exposure import exposure_source, resolve_exposure
from ..io.sky import check_sky_position
from ..physics.instrument import vignetting_factor
from ..sample import as_sample
from ._base import PROGRESS_DELAY_S, SampleInputMixin, check_flag
from .bands import resolve_bands
from .resize import overlap_matrix

__all__ = ["ImageCutout"]

_MODES = ("pad", "strict")


class ImageCutout(SampleInputMixin, TransformerMixin, BaseEstimator):
    """Cut clusters out of band images into counts cubes (the real-data path).

    Reads ``ra`` and ``dec`` (deg) of each row, and adds ``images`` (float32,
    (n, n_bands, npix, npix), counts), ``exposure`` (s), ``complete`` (bool)
    and ``coverage`` (float); other columns (``z``) pass through. The files
    are parameters and are read in ``transform`` (the fitted object holds no
    image data). Stateless: ``transform`` works without ``fit``, so this step
    can replace the :class:`BandBinner` of a fitted pipeline
    (``pipe.set_params(bin=ImageCutout(...))``).

    Parameters
    ----------
    images : sequence of path-like
        One evtool counts image per band, all on one pixel grid with a
        celestial WCS (``RA---SIN``/``DEC--SIN``). Bands are parsed from
        names like ``img_0300_0600.fits.gz`` unless ``bands_keV`` is given.
    exposures : sequence of path-like or None, default=None
        Exposure maps (s), one per band (or one for all); see
        ``exposure_vignetting`` for what they must contain.
    exposure_vignetting : {"vignetted", "unvignetted"} or float, default="vignetted"
        What the exposure maps hold. skcluster's physics folds spectra with
        the *on-axis* effective area, so the exposure it needs is the
        vignetted one (eSASS ``expmap`` with ``withvignetting=yes``).
        ``"unvignetted"`` multiplies the maps by the survey-averaged
        vignetting factor at ``reference_keV``
        (:func:`skcluster.physics.instrument.vignetting_factor`, 0.54 at
        1 keV): use it for unvignetted maps and for maps normalised to an ARF
        that already includes the vignetting (srctool ARFs with CORRVIGN, as
        the ``expmap_norm_*`` maps of the mbproj2d eFEDS example, which are
        within 5% of the unvignetted maps). A float is used as the factor.
    exposure_seconds : float or None, default=None
        Vignetted exposure (s) to use for every cluster when there are no
        exposure maps. Without either, the input's ``exposure`` column is
        kept (NaN with a warning if there is none).
    size_arcmin : float, default=20.0
        Box side, arcmin; the box has ``round(60 size_arcmin / pixel)``
        native pixels (300 of 4 arcsec for 20 arcmin).
    npix : int or None, default=None
        Output pixels per side. None keeps the native pixels; otherwise each
        cut-out is rebinned on the fly with the
        :class:`~skcluster.preprocessing.Resizer`'s flux-conserving weights,
        so that many clusters never need native-resolution cubes in memory.
    mode : {"pad", "strict"}, default="pad"
        A box running off the image is padded (and flagged) or refused
        (:class:`~skcluster.exceptions.CutoutError`). A box wholly off the
        image is always an error naming the row.
    fill : {"background", "zeros"} or float, default="background"
        What padded pixels get (see the module docstring); a float is counts
        per native pixel.
    bands_keV : sequence of (float, float) or str or None, default=None
        Bands of ``images`` (a list or a preset name) when the file names do
        not carry them.
    background_inner_arcmin : float, default=5.0
        Pixels closer than this to the cluster are left out of the background
        estimate of ``fill="background"`` (all observed pixels are used when
        none is farther).
    reference_keV : float, default=1.0
        The band containing this energy gives the scalar ``exposure`` (median
        of the exposure map within 1 arcmin of the cluster).
    verbose : bool, default=True
        Progress bar when cutting takes longer than a second.

    Attributes
    ----------
    bands_keV_ : list of (float, float) or None
    n_bands_ : int
    image_shape_ : (int, int)
    pixel_arcsec_ : float
        Output pixel side, arcsec.
    native_npix_ : int
        Native pixels per side of the box.

    Notes
    -----
    The output ``meta`` gets ``bands_keV``, ``size_arcmin`` (the actual box,
    native pixels times pixel size), ``pixel_arcsec`` and
    ``image_unit="counts"``. The ``complete`` and ``coverage`` columns do
    not reach the network (the :class:`RedshiftJoiner` keeps only images and
    scalars): take them from this step's output to flag predictions.
    """

    _requires_fit = False  # stateless: transform works without fit

    def __init__(self, images, exposures=None, exposure_seconds=None, size_arcmin=20.0,
                 npix=None, mode="pad", fill="background", bands_keV=None,
                 background_inner_arcmin=5.0, reference_keV=1.0, verbose=True,
                 exposure_vignetting="vignetted"):
        self.images = images
        self.exposures = exposures
        self.exposure_vignetting = exposure_vignetting
        self.exposure_seconds = exposure_seconds
        self.size_arcmin = size_arcmin
        self.npix = npix
        self.mode = mode
        self.fill = fill
        self.bands_keV = bands_keV
        self.background_inner_arcmin = background_inner_arcmin
        self.reference_keV = reference_keV
        self.verbose = verbose

    # -- parameters -----------------------------------------------------------
    def _check_params(self):
        step = type(self).__name__
        if isinstance(self.images, (str, bytes)) or not hasattr(self.images, "__len__"):
            raise ValueError(
                f"{step}: images must be a list of FITS files, one per band, got {self.images!r}"
            )
        if len(self.images) == 0:
            raise ValueError(f"{step}: images is empty; give one FITS file per band")
        try:  # the one exposure rule (skcluster.io.exposure): maps, seconds or the sample's column
            exposure_source(self.exposures, self.exposure_seconds)
        except ValueError as exc:
            raise ValueError(f"{step}: {exc}") from None
        if self.exposure_seconds is not None:
            check_positive_number(self.exposure_seconds, "exposure_seconds", step, unit="s")
        check_positive_number(self.size_arcmin, "size_arcmin", step)
        if self.npix is not None:
            check_positive_int(self.npix, "npix", step)
        if self.mode not in _MODES:
            raise ValueError(f"{step}: mode must be 'pad' or 'strict', got {self.mode!r}")
        fill = self.fill
        if not (fill in ("background", "zeros") or (
                isinstance(fill, numbers.Real) and not isinstance(fill, bool)
                and np.isfinite(fill) and fill >= 0)):
            raise ValueError(
                f"{step}: fill must be 'background', 'zeros' or a number >= 0 "
                f"(counts per native pixel), got {fill!r}"
            )
        check_positive_number(self.background_inner_arcmin, "background_inner_arcmin", step)
        self._vignetting_factor()
        check_positive_number(self.reference_keV, "reference_keV", step)
        check_flag(self.verbose, "verbose", step)
        bands = None
        if self.bands_keV is not None:
            bands = resolve_bands(self.bands_keV, step=step)
            if len(bands) != len(self.images):
                raise ValueError(
                    f"{step}: {len(self.images)} images but {len(bands)} bands in bands_keV"
                )
        return bands

    def _read(self):
        bands = self._check_params()
        return BandImageStack.from_files(list(self.images), exposures=(
            None if self.exposures is None else list(self.exposures)), bands_keV=bands)

    def _geometry(self, stack):
        native = stack.npix_for(self.size_arcmin)
        npix = native if self.npix is None else int(self.npix)
        return native, npix

    def _record(self, stack):
        native, npix = self._geometry(stack)
        self.bands_keV_ = None if stack.bands_keV is None else [tuple(b) for b in stack.bands_keV]
        self.n_bands_ = int(stack.n_bands)
        self.image_shape_ = (npix, npix)
        self.native_npix_ = int(native)
        self.pixel_arcsec_ = float(native * stack.pixel_arcsec / npix)

    def fit(self, X=None, y=None):
        """Check the parameters and read the files' bands and pixel grid.

        Parameters
        ----------
        X : ClusterSample, default=None
            Ignored apart from a check of the ``ra``/``dec`` columns.
        y : ignored

        Returns
        -------
        self : ImageCutout
        """
        stack = self._read()
        if X is not None:
            self._positions(X)
        self._record(stack)
        return self

    # -- transform ------------------------------------------------------------
    def _positions(self, X):
        step = type(self).__name__
        X = as_sample(X, step=step)
        X.require("ra", "dec", step=step)
        ra = np.asarray(X["ra"], dtype=np.float64)
        dec = np.asarray(X["dec"], dtype=np.float64)
        check_sky_position(ra, dec, where=f"{step} (columns 'ra', 'dec')")
        return X, ra, dec

    def _fill_values(self, cut, valid, r_arcsec):
        """Counts per native pixel for the padded pixels of each band."""
        b = cut.counts.shape[0]
        if self.fill == "zeros":
            return np.zeros(b, dtype=np.float32)
        if self.fill != "background":
            return np.full(b, float(self.fill), dtype=np.float32)
        outer = r_arcsec >= 60.0 * float(self.background_inner_arcmin)
        values = np.zeros(b, dtype=np.float32)
        for k in range(b):
            region = valid[k] & outer
            if not region.any():
                region = valid[k]
            if not region.any():
                continue
            counts = float(cut.counts[k][region].sum(dtype=np.float64))
            if cut.exposure_map is None:
                values[k] = counts / np.count_nonzero(region)
            else:
                expo = cut.exposure_map[k]
                rate = counts / float(expo[region].sum(dtype=np.float64))  # counts/s/pixel
                values[k] = rate * float(np.median(expo[valid[k]]))
        return values

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``, reading the files once.

        Parameters
        ----------
        X : ClusterSample
            With ``ra`` and ``dec`` (deg).
        y : ignored

        Returns
        -------
        ClusterSample
        """
        stack = self._read()
        self._record(stack)
        return self._transform(X, stack)

    def transform(self, X):
        """Cut every cluster out of the band images.

        Parameters
        ----------
        X : ClusterSample
            With ``ra`` and ``dec`` (deg).

        Returns
        -------
        ClusterSample
            ``X`` plus ``images`` float32 (n, n_bands, npix, npix) in counts,
            ``exposure`` (s), ``complete`` (bool) and ``coverage`` (fraction
            of the box with data in every band).
        """
        return self._transform(X, self._read())

    def _transform(self, X, stack):
        step = type(self).__name__
        X, ra, dec = self._positions(X)
        native, npix = self._geometry(stack)
        n, b = len(X), stack.n_bands
        w = None if npix == native else overlap_matrix(native, npix)
        images = np.empty((n, b, npix, npix), dtype=np.float32)
        exposure = np.full(n, np.nan)
        complete = np.empty(n, dtype=bool)
        coverage = np.empty(n)
        yy, xx = np.mgrid[:native, :native]
        c = (native - 1) / 2.0
        # distance of each native pixel centre from the box centre, arcsec
        r_arcsec = np.hypot(xx - c, yy - c) * stack.pixel_arcsec
        for i in tqdm(range(n), desc=step, unit="cluster", disable=not self.verbose,
                      delay=PROGRESS_DELAY_S, leave=False):
            try:
                cut = stack.cutout(ra[i], dec[i], self.size_arcmin, self.mode,
                                   self.reference_keV)
            except CutoutError as exc:
                raise CutoutError(f"{step}, row {i}: {exc}") from None
            complete[i], coverage[i] = cut.complete, cut.coverage
            counts = cut.counts
            if not cut.complete or cut.coverage < 1:
                if cut.exposure_map is not None:
                    valid = cut.exposure_map > 0
                else:
                    inside = np.zeros((native, native), dtype=bool)
                    inside[_dst_slices(stack, ra[i], dec[i], native)] = True
                    valid = np.broadcast_to(inside, counts.shape)
                fill = self._fill_values(cut, valid, r_arcsec)
                counts = np.where(valid, counts, fill[:, None, None]).astype(np.float32)
            if w is None:
                images[i] = counts
            else:
                images[i] = w @ counts @ w.T
            if cut.exposure_map is not None:
                exposure[i] = cut.exposure * self._vignetting_factor()
        got = resolve_exposure(
            n, maps=exposure if self.exposures is not None else None, seconds=self.exposure_seconds,
            column=X["exposure"] if "exposure" in X else None, where=f"{step}: column 'exposure'")
        if got is not None:
            exposure = got
        else:
            warnings.warn(
                f"{step}: no exposure maps, no exposure_seconds and no 'exposure' "
                "column: the exposure column is NaN, so CountScaler(exposure_correct="
                "True) will refuse these clusters",
                SkclusterWarning,
                stacklevel=3,
            )
        if not complete.all() or np.any(coverage < 1):
            bad = np.flatnonzero(~complete | (coverage < 1))
            warnings.warn(
                f"{step}: {bad.size} cut-out(s) ran off the image or over unexposed "
                f"pixels (coverage of {rows_text(bad, np.round(coverage, 3).tolist())}); "
                f"padded with fill={self.fill!r}; see the 'complete' and 'coverage' columns",
                IncompleteCutoutWarning,
                stacklevel=3,
            )
        meta = dict(
            bands_keV=None if stack.bands_keV is None else [tuple(x) for x in stack.bands_keV],
            size_arcmin=native * stack.pixel_arcsec / 60.0,
            pixel_arcsec=native * stack.pixel_arcsec / npix,
            image_unit="counts",
        )
        return X.assign(images=images, exposure=exposure, complete=complete,
                        coverage=coverage, meta=meta)


    def _vignetting_factor(self):
        """Factor turning the exposure maps into vignetted exposure at reference_keV."""
        v = self.exposure_vignetting
        if v == "vignetted":
            return 1.0
        if v == "unvignetted":
            return float(vignetting_factor(self.reference_keV))
        if isinstance(v, numbers.Real) and 0 < v <= 1:
            return float(v)
        raise ValueError(
            f"{type(self).__name__}: exposure_vignetting must be 'vignetted', "
            f"'unvignetted' or a factor in (0, 1], got {v!r}"
        )


def _dst_slices(stack, ra, dec, native):
    """The part of the box that lies on the image (for stacks without exposure maps)."""
    from ..io.images import cutout_slices

    x, y = stack.world_to_pixel(ra, dec)
    return cutout_slices((float(x[0]), float(y[0])), native, stack.shape)["dst"]
