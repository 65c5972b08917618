"""A radial surface-brightness profile of each cut-out, for the network's dense part.

A convolutional network on stretched images has to un-stretch and sum pixels
to learn the total flux, the main mass proxy, and max-pooling keeps maxima,
not sums. :class:`RadialProfile` hands it the sums directly: the counts of
all bands in concentric annuli around the box centre, per arcmin^2 and per
second of exposure, as log10. The outermost annulus (everything beyond the
last radius, corners included) measures the local background. Joined beside
the redshift (:class:`~skcluster.preprocessing.RedshiftJoiner` takes the
2-D ``profile`` column as one scalar per annulus), it is the global-sum
branch the images themselves do not give a CNN.

The step runs on counts cubes (the output of
:class:`~skcluster.preprocessing.BandBinner` or
:class:`~skcluster.preprocessing.ImageCutout`, ``meta["image_unit"] ==
"counts"``) and passes the images through unchanged.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._validation import check_positive_number, rows_text
from ._base import ImageStepMixin, iter_chunks, rows_per_chunk
from .scaling import check_exposure

__all__ = ["DEFAULT_RADII_ARCMIN", "RadialProfile", "annulus_index"]

#: Outer radii (arcmin) of the inner annuli of :class:`RadialProfile` by
#: default (those inside the box are used).
DEFAULT_RADII_ARCMIN = (0.5, 1.0, 2.0, 4.0, 8.0)


def annulus_index(shape, pixel_arcsec, radii_arcmin):
    """Annulus of each pixel of an (H, W) box centred on the cluster.

    Parameters
    ----------
    shape : (int, int)
        Box size in pixels.
    pixel_arcsec : float
        Pixel side, arcsec.
    radii_arcmin : sequence of float
        Increasing outer radii of the inner annuli, arcmin.

    Returns
    -------
    index : numpy.ndarray of int, shape (H, W)
        0 for the innermost disc, ..., ``len(radii_arcmin)`` for everything
        beyond the last radius.
    area_arcmin2 : numpy.ndarray of float64, shape (len(radii_arcmin) + 1,)
        Area of each annulus within the box (pixel count x pixel area).
    """
    h, w = shape
    pix_arcmin = float(pixel_arcsec) / 60.0
    yy = (np.arange(h) + 0.5 - h / 2.0) * pix_arcmin
    xx = (np.arange(w) + 0.5 - w / 2.0) * pix_arcmin
    # to 1e-6 arcmin: a pixel centre on an annulus edge (4' at 48" pixels) must not change annulus
    # with the last bits of a pixel size that went through a resize
    r = np.round(np.hypot(yy[:, None], xx[None, :]), 6)
    index = np.searchsorted(np.asarray(radii_arcmin, dtype=np.float64), r, side="right")
    area = np.bincount(index.ravel(), minlength=len(radii_arcmin) + 1) * pix_arcmin**2
    return index, area


class RadialProfile(ImageStepMixin, TransformerMixin, BaseEstimator):
    """Add a ``profile`` column: log10 surface brightness in annuli (all bands).

    For each cluster and annulus ``k`` (``[0, r_0)``, ``[r_0, r_1)``, ...,
    beyond ``r_{K-1}`` to the box edge):
    ``profile[:, k] = log10((N_k + 1) / (A_k t))``, with ``N_k`` the counts
    of all bands, ``A_k`` the annulus area within the box (arcmin^2) and
    ``t`` the exposure (s, column ``exposure``). The one count added keeps
    empty annuli finite and sits below the eROSITA background in every
    annulus of the default radii at eFEDS depth (about 5 counts arcmin^-2
    in 0.2-2.3 keV over ~1.2 ks; Brunner et al. 2022, A&A 661, A1).

    Parameters
    ----------
    radii_arcmin : sequence of float or None, default=None
        Outer radii of the inner annuli, arcmin (increasing, > 0). None
        takes those of :data:`DEFAULT_RADII_ARCMIN` (0.5, 1, 2, 4, 8) that
        lie inside the fitted box (below half its side) and leave no
        annulus without a pixel centre: they span the
        eROSITA PSF (HEW ~ 0.5', Merloni et al. 2024, A&A 682, A34) to
        about r500 of a 10^14 Msun cluster at z ~ 0.1.

    Attributes
    ----------
    radii_arcmin_ : list of float
        The radii used.
    n_bands_, image_shape_, bands_keV_ :
        The image contract (see :class:`ImageStepMixin`).
    area_arcmin2_ : numpy.ndarray of float64, shape (K + 1,)
        Area of each annulus in the fitted box.
    box_arcmin_ : (float, float)
        Box size (H, W) in ``fit``, arcmin. ``transform`` takes any pixel
        size (real cut-outs come at the image's native pixels, the
        mock's at the binned ones) but refuses another box size, since the
        outer annulus would then cover another area of sky.

    Examples
    --------
    >>> import numpy as np
    >>> from skcluster import ClusterSample
    >>> from skcluster.preprocessing import RadialProfile
    >>> X = ClusterSample(images=np.ones((2, 1, 30, 30), np.float32), exposure=np.array([1000.0, 2000.0]),
    ...                   meta={"image_unit": "counts", "pixel_arcsec": 20.0})
    >>> RadialProfile(radii_arcmin=(2.0, 4.0)).fit_transform(X)["profile"].shape
    (2, 3)
    >>> RadialProfile().fit(X).radii_arcmin_   # a 10 arcmin box: the default radii below 5'
    [0.5, 1.0, 2.0, 4.0]
    """

    _keeps_images = True

    def __init__(self, radii_arcmin=None):
        self.radii_arcmin = radii_arcmin

    def _radii(self, box):
        step = self._step
        if self.radii_arcmin is None:
            radii = [r for r in DEFAULT_RADII_ARCMIN if r < min(box) / 2.0]
            if not radii:
                raise ValueError(f"{step}: the box of {box[0]:g} x {box[1]:g} arcmin is smaller than the "
                                 f"smallest default annulus ({DEFAULT_RADII_ARCMIN[0]:g} arcmin radius); "
                                 "give radii_arcmin")
            return radii
        try:
            radii = [float(r) for r in self.radii_arcmin]
        except (TypeError, ValueError):
            raise ValueError(f"{step}: radii_arcmin must be a sequence of numbers, got {self.radii_arcmin!r}") from None
        if not radii:
            raise ValueError(f"{step}: radii_arcmin must not be empty")
        for i, r in enumerate(radii):
            check_positive_number(r, f"radii_arcmin[{i}]", step)
        if any(b <= a for a, b in zip(radii, radii[1:])):
            raise ValueError(f"{step}: radii_arcmin must increase, got {radii}")
        return radii

    def _geometry(self, X, images, fitting):
        """Annulus of each pixel, annulus areas, box (arcmin) and radii; checks the box in ``transform``."""
        step = self._step
        unit = X.meta.get("image_unit")
        if unit != "counts":
            raise ValueError(
                f"{step}: needs images in counts (meta['image_unit'] == 'counts', as BandBinner and "
                f"ImageCutout write them), got {unit!r}; put the step before scaling"
            )
        pixel = X.meta.get("pixel_arcsec")
        if pixel is None:
            raise ValueError(f"{step}: the sample's meta has no 'pixel_arcsec' (written by BandBinner/ImageCutout)")
        box = tuple(float(n) * float(pixel) / 60.0 for n in images.shape[2:])
        fitted = None if fitting else self.box_arcmin_
        if not fitting and not np.allclose(box, fitted, rtol=0.02):
            raise ValueError(
                f"{step} was fitted on boxes of {fitted[0]:g} x {fitted[1]:g} arcmin, got "
                f"{box[0]:g} x {box[1]:g} arcmin ({images.shape[2]} x {images.shape[3]} pixels of "
                f"{float(pixel):g} arcsec); cut the boxes the model was trained on"
            )
        radii = self._radii(box) if fitting else self.radii_arcmin_
        index, area = annulus_index(images.shape[2:], pixel, radii)
        if fitting and self.radii_arcmin is None and np.any(area[:-1] == 0):
            # coarse pixels: drop the default radii that would leave an annulus without a pixel
            radii = [r for r, a in zip(radii, area[:-1]) if a > 0]
            index, area = annulus_index(images.shape[2:], pixel, radii)
        empty = np.flatnonzero(area == 0)
        if empty.size:
            raise ValueError(
                f"{step}: annulus {int(empty[0])} of radii_arcmin {radii} holds no pixel of the "
                f"{images.shape[2]}x{images.shape[3]} box of {float(pixel):g} arcsec pixels"
            )
        return index, area, box, radii

    def fit(self, X, y=None):
        """Record the image contract and the annulus areas.

        Parameters
        ----------
        X : ClusterSample
            ``images`` in counts (n, B, H, W) and ``exposure`` (s).
        y : ignored
        """
        X, images = self._images_of(X)
        self._record_images(X, images)
        _, self.area_arcmin2_, self.box_arcmin_, self.radii_arcmin_ = self._geometry(X, images, fitting=True)
        return self

    def transform(self, X):
        """Add the ``profile`` column (float64, (n, K + 1)).

        Parameters
        ----------
        X : ClusterSample

        Returns
        -------
        ClusterSample
            ``X`` with ``profile``.
        """
        X, images = self._images_of(X)
        self._check_images(X, images, check_shape=False)
        index, area, _, _ = self._geometry(X, images, fitting=False)
        X.require("exposure", step=self._step)
        t = check_exposure(X["exposure"], self._step, len(X), purpose="for counts per second in the profile",
                           remedy=None)
        onehot = np.zeros((index.size, area.size))  # pixel -> annulus
        onehot[np.arange(index.size), index.ravel()] = 1.0
        counts = np.empty((len(X), area.size))
        # the band sum accumulates in float64 without a float64 copy of the cube
        chunk = rows_per_chunk(8 * int(np.prod(images.shape[2:])))
        for sl in iter_chunks(len(X), chunk):
            counts[sl] = images[sl].sum(axis=1, dtype=np.float64).reshape(sl.stop - sl.start, -1) @ onehot
        if np.any(counts < 0):
            rows = np.flatnonzero((counts < 0).any(axis=1))
            raise ValueError(f"{self._step}: negative counts in the images of {rows_text(rows)}")
        profile = np.log10((counts + 1.0) / (area[None, :] * t[:, None]))
        return X.assign(profile=profile)
