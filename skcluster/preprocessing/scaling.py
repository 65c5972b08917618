"""Counts -> network-ready pixel values (:class:`CountScaler`).

Three steps, each optional:

1. exposure correction: counts / exposure (s) of each cluster -> counts/s,
   so that clusters observed to different depths look alike (eFEDS
   vignetted exposures span 785-1941 s at the 5-95% level, Brunner et al. 2022);
2. a stretch that compresses the dynamic range of the cluster cores,
   ``log1p(v / s)`` or ``asinh(v / s)``, with a softening ``s`` per band
   (by default learned in ``fit``: the mean pixel value of the band in the
   training sample, a background-dominated level for survey cut-outs);
3. standardisation, per band or over all bands, with the mean and standard
   deviation of the stretched pixels learned in ``fit``.

All arithmetic on the cube is float32, chunk by chunk, into one new output
array; statistics are accumulated in float64 without copying the cube.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._validation import check_positive_number, rows_text
from ..exceptions import SkclusterWarning
from ._base import ImageStepMixin, check_flag, iter_chunks, rows_per_chunk

__all__ = ["CountScaler"]

_STRETCHES = ("log", "asinh", None)


def check_exposure(exposure, step, n, purpose="to convert counts to counts/s",
                   remedy="use exposure_correct=False"):
    """float64 exposures (s) after checking there is one per row, finite and > 0.

    ``purpose`` and ``remedy`` (None for none) complete the error message.
    """
    exposure = np.asarray(exposure)
    if exposure.shape != (n,):
        raise ValueError(
            f"{step}: column 'exposure' must have one value (seconds) per cluster, "
            f"got shape {exposure.shape}"
        )
    e64 = exposure.astype(np.float64)
    bad = ~np.isfinite(e64) | (e64 <= 0)
    if np.any(bad):
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{step}: exposure must be finite and > 0 seconds {purpose}; got "
            f"{rows_text(rows, e64.tolist())}. Drop these clusters"
            + (", give exposure maps (ImageCutout(exposures=...)), or " + remedy if remedy
               else " or give exposure maps (ImageCutout(exposures=...))")
        )
    return e64


class CountScaler(ImageStepMixin, TransformerMixin, BaseEstimator):
    """Exposure-correct, stretch and standardise image cubes.

    Parameters
    ----------
    exposure_correct : bool, default=True
        Divide each cluster's images by its ``exposure`` column (seconds),
        giving counts/s. Zero, negative or non-finite exposures raise an
        error naming the rows.
    stretch : {"log", "asinh"} or None, default="log"
        ``"log"``: ``log1p(v / s)``; ``"asinh"``: ``arcsinh(v / s)``; None:
        no stretch. ``v`` is the (exposure-corrected) pixel value, ``s`` the
        softening.
    per_band : bool, default=True
        Learn the softening and the standardisation per band (True) or one
        for all bands (False).
    softening : float or None, default=None
        ``s`` in the stretch, in the unit of ``v`` (counts/s per pixel with
        exposure correction, else counts per pixel). None learns it in
        ``fit``: the mean pixel value (per band when ``per_band``) of the
        training sample. Ignored when ``stretch`` is None.

    Attributes
    ----------
    n_bands_ : int
    image_shape_ : (int, int)
    bands_keV_ : list of (float, float) or None
    softening_ : numpy.ndarray of float64, shape (n_bands,)
        Softening used per band (ones when ``stretch`` is None).
    mean_ : numpy.ndarray of float64, shape (n_bands,)
        Mean of the stretched pixels per band (equal entries when not
        ``per_band``).
    scale_ : numpy.ndarray of float64, shape (n_bands,)
        Standard deviation of the stretched pixels (1 where it is 0).

    Notes
    -----
    The output ``meta["image_unit"]`` is ``"scaled"``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcluster import ClusterSample
    >>> from skcluster.preprocessing import CountScaler
    >>> rng = np.random.default_rng(0)
    >>> X = ClusterSample(images=rng.poisson(1.0, (8, 2, 5, 5)).astype(np.float32),
    ...                   exposure=np.full(8, 1000.0))
    >>> out = CountScaler().fit_transform(X)["images"]
    >>> out.dtype, np.allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    (dtype('float32'), True)
    """

    def __init__(self, exposure_correct=True, stretch="log", per_band=True, softening=None):
        self.exposure_correct = exposure_correct
        self.stretch = stretch
        self.per_band = per_band
        self.softening = softening

    # -- parameters and input ---------------------------------------------
    def _check_params(self):
        step = self._step
        check_flag(self.exposure_correct, "exposure_correct", step)
        check_flag(self.per_band, "per_band", step)
        if self.stretch not in _STRETCHES:
            raise ValueError(f"{step}: stretch must be 'log', 'asinh' or None, got {self.stretch!r}")
        check_positive_number(self.softening, "softening", step, allow_none=True)

    def _inputs(self, X):
        X, images = self._images_of(X)
        if self.exposure_correct:
            X.require("exposure", step=self._step)
            exposure = check_exposure(X["exposure"], self._step, images.shape[0]).astype(np.float32)
        else:
            exposure = None
        return X, images, exposure

    def _chunk_size(self, images):
        return rows_per_chunk(8 * int(np.prod(images.shape[1:])))

    def _rate(self, images, exposure, sl):
        """Float32 (exposure-corrected) values of one chunk, in a new array."""
        chunk = np.array(images[sl], dtype=np.float32)  # always a copy
        if exposure is not None:
            chunk /= exposure[sl, None, None, None]
        return chunk

    def _stretch_inplace(self, v, softening32):
        if self.stretch is None:
            return v
        v /= softening32[None, :, None, None]
        if self.stretch == "log":
            np.log1p(v, out=v)
        else:
            np.arcsinh(v, out=v)
        return v

    # -- fit ----------------------------------------------------------------
    def _learn_softening(self, images, exposure):
        n, b = images.shape[:2]
        npix = images.shape[2] * images.shape[3]
        if self.stretch is None:
            return np.ones(b)
        if self.softening is not None:
            return np.full(b, float(self.softening))
        sums = np.zeros(b)
        for sl in iter_chunks(n, self._chunk_size(images)):
            per_cluster = np.sum(images[sl], axis=(2, 3), dtype=np.float64)  # (m, B)
            if exposure is not None:
                per_cluster = per_cluster / exposure[sl, None].astype(np.float64)
            sums += per_cluster.sum(axis=0)
        mean_band = sums / (n * npix)
        overall = sums.sum() / (n * npix * b)
        if not np.isfinite(overall):
            return np.ones(b)  # the pass below names the rows with NaN/inf
        if not self.per_band:
            mean_band = np.full(b, overall)
        if overall <= 0:
            warnings.warn(
                f"{self._step}: the training images are empty (all pixels 0); the "
                "softening of the stretch falls back to 1",
                SkclusterWarning,
                stacklevel=3,
            )
            return np.ones(b)
        # a band without any count in training borrows the all-band level
        return np.where(mean_band > 0, mean_band, overall)

    def _accumulate(self, v, acc):
        """Add the sums of one stretched chunk (shifted for precision) to ``acc``."""
        if acc["shift"] is None:
            acc["shift"] = np.mean(v, axis=(0, 2, 3), dtype=np.float64)
        d = v - acc["shift"].astype(np.float32)[None, :, None, None]
        acc["s1"] += np.sum(d, axis=(0, 2, 3), dtype=np.float64)
        d *= d
        acc["s2"] += np.sum(d, axis=(0, 2, 3), dtype=np.float64)
        acc["count"] += v.shape[0] * v.shape[2] * v.shape[3]

    def _finish_stats(self, acc, b):
        count = acc["count"]
        s1, s2, shift = acc["s1"], acc["s2"], acc["shift"]
        if self.per_band:
            mean_d = s1 / count
            mean = shift + mean_d
            var = np.maximum(s2 / count - mean_d**2, 0.0)
        else:
            # combine the per-band shifted sums into one mean and variance
            total = count * b
            mean = (s1 + shift * count).sum() / total
            sum_v2 = (s2 + 2 * shift * s1 + shift**2 * count).sum()
            var = max(sum_v2 / total - mean**2, 0.0)
            mean, var = np.full(b, mean), np.full(b, var)
        scale = np.sqrt(var)
        scale[scale == 0] = 1.0
        return mean, scale

    def _check_finite(self, v, sl):
        """Name the rows whose stretched values are NaN or infinite."""
        bad = ~np.isfinite(v).all(axis=(1, 2, 3))
        if np.any(bad):
            rows = np.flatnonzero(bad) + sl.start
            raise ValueError(
                f"{self._step}: images of {rows_text(rows)} are NaN or infinite after "
                f"exposure correction and the {self.stretch!r} stretch (NaN/inf pixels, "
                "or values below -softening for the log stretch)"
            )

    def _fit(self, X, keep_output):
        self._check_params()
        X, images, exposure = self._inputs(X)
        self._record_images(X, images)
        b = images.shape[1]
        self.softening_ = self._learn_softening(images, exposure)
        soft32 = self.softening_.astype(np.float32)
        out = np.empty(images.shape, dtype=np.float32) if keep_output else None
        acc = dict(shift=None, s1=np.zeros(b), s2=np.zeros(b), count=0)
        for sl in iter_chunks(images.shape[0], self._chunk_size(images)):
            v = self._stretch_inplace(self._rate(images, exposure, sl), soft32)
            self._check_finite(v, sl)
            self._accumulate(v, acc)
            if keep_output:
                out[sl] = v
        self.mean_, self.scale_ = self._finish_stats(acc, b)
        return X, out

    def fit(self, X, y=None):
        """Learn the softening and the standardisation.

        Parameters
        ----------
        X : ClusterSample
            With ``images`` (n, B, H, W) and, when ``exposure_correct``, an
            ``exposure`` column in seconds.
        y : ignored

        Returns
        -------
        self : CountScaler
        """
        self._fit(X, keep_output=False)
        return self

    def _standardise_inplace(self, out):
        mean32 = self.mean_.astype(np.float32)[None, :, None, None]
        inv32 = (1.0 / self.scale_).astype(np.float32)[None, :, None, None]
        for sl in iter_chunks(out.shape[0], self._chunk_size(out)):
            v = out[sl]
            v -= mean32
            v *= inv32

    def fit_transform(self, X, y=None):
        """Fit and transform in one pass over the cube (same result as
        ``fit(X).transform(X)``).

        Parameters
        ----------
        X : ClusterSample
        y : ignored

        Returns
        -------
        ClusterSample
        """
        X, out = self._fit(X, keep_output=True)
        self._standardise_inplace(out)
        return X.assign(images=out, meta={"image_unit": "scaled"})

    def transform(self, X):
        """Exposure-correct, stretch and standardise ``images``.

        Parameters
        ----------
        X : ClusterSample

        Returns
        -------
        ClusterSample
            ``images`` float32 of the same shape, ``meta["image_unit"] =
            "scaled"``.
        """
        X, images, exposure = self._inputs(X)
        self._check_images(X, images)
        soft32 = self.softening_.astype(np.float32)
        out = np.empty(images.shape, dtype=np.float32)
        for sl in iter_chunks(images.shape[0], self._chunk_size(images)):
            v = self._stretch_inplace(self._rate(images, exposure, sl), soft32)
            self._check_finite(v, sl)
            out[sl] = v
        self._standardise_inplace(out)
        return X.assign(images=out, meta={"image_unit": "scaled"})
