"""Flux-conserving resizing of image cubes (:class:`Resizer`).

Each output pixel collects the input pixels it overlaps, weighted by the
fraction of each input pixel's area that falls inside it (area-overlap, or
"drizzle with pixfrac 1" weights). The weights are separable: an
(H_out, H_in) matrix for rows and a (W_out, W_in) matrix for columns, each
of whose columns sums to one, so every input count ends up in the output and
the total is kept up to float32 rounding. For an integer factor the weights
are 0 or 1 and the resize is an exact block sum; any other factor (down or
up) works too. Both matrices are applied with float32 matrix products in
chunks of clusters; no float64 copy of a cube is made.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._base import CHUNK_BYTES, ImageStepMixin, check_shape2, iter_chunks, rows_per_chunk

__all__ = ["Resizer", "overlap_matrix", "resize_images"]


def overlap_matrix(n_in, n_out):
    """Area-overlap weights between two pixel grids spanning the same length.

    Parameters
    ----------
    n_in, n_out : int
        Number of input and output pixels along one axis.

    Returns
    -------
    numpy.ndarray of float32, shape (n_out, n_in)
        ``W[i, j]`` is the fraction of input pixel ``j`` inside output pixel
        ``i``; every column sums to 1 (to float32 rounding).
    """
    edges_in = np.arange(n_in + 1, dtype=np.float64)
    edges_out = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    edges_out[-1] = n_in
    lo = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    hi = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    w = np.clip(hi - lo, 0.0, None)
    w /= w.sum(axis=0, keepdims=True)
    return w.astype(np.float32)


def resize_images(images, wy, wx, out=None, chunk_size=None):
    """Apply row and column weights to a cube: ``out = wy @ images @ wx.T``.

    Parameters
    ----------
    images : numpy.ndarray, shape (n, B, H, W)
        Cast to float32 chunk by chunk when it is not float32.
    wy : numpy.ndarray of float32, shape (H_out, H)
    wx : numpy.ndarray of float32, shape (W_out, W)
    out : numpy.ndarray of float32, shape (n, B, H_out, W_out), default=None
    chunk_size : int, default=None
        Clusters per chunk (default: scratch within 64 MB).

    Returns
    -------
    numpy.ndarray of float32, shape (n, B, H_out, W_out)
    """
    n, b, h, w = images.shape
    ho, wo = wy.shape[0], wx.shape[0]
    if out is None:
        out = np.empty((n, b, ho, wo), dtype=np.float32)
    if chunk_size is None:
        chunk_size = rows_per_chunk(4 * b * (h * w + h * wo + ho * wo), CHUNK_BYTES)
    wxt = np.ascontiguousarray(wx.T)
    for sl in iter_chunks(n, chunk_size):
        chunk = np.asarray(images[sl], dtype=np.float32)
        m = chunk.shape[0]
        # columns first, as one large (m*B*H, W) @ (W, W_out) product
        tmp = (chunk.reshape(m * b * h, w) @ wxt).reshape(m, b, h, wo)
        np.matmul(wy, tmp, out=out[sl])
    return out


class Resizer(ImageStepMixin, TransformerMixin, BaseEstimator):
    """Resize image cubes to (H, W) pixels, conserving counts.

    Area-overlap weights (see the module docstring): the sum of every image
    is kept up to float32 rounding, for any integer or non-integer factor,
    downsampling or upsampling. A no-op (the same array, no copy) when the
    images already have the target shape.

    Parameters
    ----------
    shape : int or (int, int), default=(50, 50)
        Output (H, W) in pixels; an int means a square. 50 x 50 is the seed
        study's network input (Krippendorf et al. 2023).

    Attributes
    ----------
    n_bands_ : int
        Bands of the images seen in ``fit``.
    image_shape_ : (int, int)
        Input (H, W) seen in ``fit``; ``transform`` refuses other sizes.
    bands_keV_ : list of (float, float) or None
        ``meta["bands_keV"]`` of the sample seen in ``fit``.
    output_shape_ : (int, int)

    Notes
    -----
    ``meta["pixel_arcsec"]`` becomes ``60 size_arcmin / W`` (or the old
    pixel scaled by ``W_in / W`` when ``size_arcmin`` is unknown).

    Examples
    --------
    >>> import numpy as np
    >>> from skcluster import ClusterSample
    >>> from skcluster.preprocessing import Resizer
    >>> X = ClusterSample(images=np.ones((2, 3, 300, 300), np.float32))
    >>> Xt = Resizer((50, 50)).fit_transform(X)
    >>> Xt["images"].shape, float(Xt["images"][0, 0, 0, 0])
    ((2, 3, 50, 50), 36.0)
    """

    def __init__(self, shape=(50, 50)):
        self.shape = shape

    def fit(self, X, y=None):
        """Record the input cube's bands and size and check ``shape``.

        Parameters
        ----------
        X : ClusterSample
            With ``images`` of shape (n, B, H, W).
        y : ignored

        Returns
        -------
        self : Resizer
        """
        shape = check_shape2(self.shape, "shape", self._step)
        X, images = self._images_of(X)
        self._record_images(X, images)
        self.output_shape_ = shape
        return self

    def transform(self, X):
        """Resize ``images`` to ``output_shape_``.

        Parameters
        ----------
        X : ClusterSample

        Returns
        -------
        ClusterSample
            ``images`` float32 (n, B, H_out, W_out); other columns shared.
        """
        X, images = self._images_of(X)
        self._check_images(X, images)
        h, w = self.image_shape_
        ho, wo = self.output_shape_
        meta = {}
        if "size_arcmin" in X.meta:
            meta["pixel_arcsec"] = 60.0 * float(X.meta["size_arcmin"]) / wo
        elif "pixel_arcsec" in X.meta:
            meta["pixel_arcsec"] = float(X.meta["pixel_arcsec"]) * w / wo
        if (h, w) == (ho, wo):
            out = images.astype(np.float32, copy=False)
        else:
            out = resize_images(images, overlap_matrix(h, ho), overlap_matrix(w, wo))
        return X.assign(images=out, meta=meta)
