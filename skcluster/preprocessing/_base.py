"""Shared machinery of the preprocessing transformers.

* :class:`ImageStepMixin`: the image contract of docs/architecture.md. A step
  that sees ``images`` records ``n_bands_``, ``image_shape_`` and
  ``bands_keV_`` in ``fit`` and refuses, with a message naming both sides,
  a sample of other bands or size in ``transform``.
* chunked iteration with an optional progress bar (tqdm, shown only when the
  work lasts longer than a second, so that small samples stay quiet).
* parameter checks with messages that name the step, the parameter and the
  value.
"""

from __future__ import annotations

import numbers

import numpy as np
from tqdm.auto import tqdm

from .._validation import check_positive_int, rows_text
from ..sample import as_sample
from .bands import format_bands, same_bands

__all__ = ["ImageStepMixin", "SampleInputMixin", "iter_chunks", "rows_text", "rows_per_chunk"]

#: Memory budget for the temporaries of one chunk of clusters, bytes. Steps
#: that allocate scratch arrays per chunk size their chunks to stay within it.
CHUNK_BYTES = 64 * 2**20

#: A progress bar appears only once a loop has run this long, seconds.
PROGRESS_DELAY_S = 1.0


def rows_per_chunk(bytes_per_row, budget=CHUNK_BYTES):
    """Number of clusters per chunk so that a chunk needs at most ``budget`` bytes."""
    return max(1, int(budget // max(int(bytes_per_row), 1)))


def iter_chunks(n, chunk, verbose=False, desc=None):
    """Yield ``slice`` objects covering ``range(n)`` in steps of ``chunk``.

    With ``verbose`` a tqdm progress bar (in clusters) is shown when the loop
    takes longer than :data:`PROGRESS_DELAY_S`.
    """
    chunk = max(1, int(chunk))
    bar = tqdm(total=n, desc=desc, unit="cluster", disable=not verbose or n == 0,
               delay=PROGRESS_DELAY_S, leave=False)
    try:
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            yield slice(start, stop)
            bar.update(stop - start)
    finally:
        bar.close()


def check_shape2(shape, name, step):
    """``int`` or ``(int, int)`` -> ``(H, W)`` of positive Python ints."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape, shape)
    try:
        h, w = shape
    except (TypeError, ValueError):
        raise ValueError(f"{step}: {name} must be an int or an (H, W) pair, got {shape!r}") from None
    return (
        check_positive_int(h, f"{name}[0]", step),
        check_positive_int(w, f"{name}[1]", step),
    )


def check_flag(value, name, step):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{step}: {name} must be True or False, got {value!r}")
    return bool(value)


class SampleInputMixin:
    """sklearn tags of a step whose input is a :class:`ClusterSample` (a dict
    of columns), not a 2-D array; ``_requires_fit = False`` marks a stateless
    step (binning, cut-outs) that may transform without ``fit``."""

    _requires_fit = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = self._requires_fit
        tags.input_tags.two_d_array = False
        tags.input_tags.dict = True
        return tags


class ImageStepMixin(SampleInputMixin):
    """The image contract: record the cube in ``fit``, check it in ``transform``."""

    #: True for a step that passes ``images`` through unchanged (it only adds
    #: columns), so that image-level tools (``skcluster.explain``) can skip it.
    _keeps_images = False

    @property
    def _step(self):
        return type(self).__name__

    def _images_of(self, X):
        """``(sample, images)`` after checking that ``images`` is an (n, B, H, W) cube."""
        X = as_sample(X, step=self._step)
        X.require("images", step=self._step)
        images = X["images"]
        if not hasattr(images, "ndim") or images.ndim != 4:
            shape = getattr(images, "shape", None)
            raise ValueError(
                f"{self._step}: column 'images' must have shape (n_clusters, "
                f"n_bands, H, W), got shape {shape}"
            )
        if images.dtype.kind not in "fiu":
            raise ValueError(
                f"{self._step}: column 'images' must hold numbers, got dtype {images.dtype}"
            )
        return X, images

    def _record_images(self, X, images):
        """Store the fitted image contract (``fit``)."""
        if images.shape[0] == 0:
            raise ValueError(f"{self._step}: cannot fit on an empty sample (0 clusters)")
        self.n_bands_ = int(images.shape[1])
        self.image_shape_ = (int(images.shape[2]), int(images.shape[3]))
        bands = X.meta.get("bands_keV")
        self.bands_keV_ = None if bands is None else [(float(lo), float(hi)) for lo, hi in bands]

    def _check_images(self, X, images, check_shape=True):
        """Refuse a cube of other bands or (``check_shape``) size than in ``fit`` (``transform``)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "n_bands_")
        n_bands = images.shape[1]
        bands = X.meta.get("bands_keV")
        if n_bands != self.n_bands_:
            raise ValueError(
                f"{self._step} was fitted on {self.n_bands_} bands "
                f"({format_bands(self.bands_keV_)}), got {n_bands} "
                f"({format_bands(bands)}); bin the sample in the bands the model "
                "was trained on"
            )
        if not same_bands(self.bands_keV_, bands):
            raise ValueError(
                f"{self._step} was fitted on the bands {format_bands(self.bands_keV_)}, "
                f"got {format_bands(bands)}"
            )
        if not check_shape:
            return
        shape = (int(images.shape[2]), int(images.shape[3]))
        if shape != self.image_shape_:
            raise ValueError(
                f"{self._step} was fitted on images of {self.image_shape_[0]} x "
                f"{self.image_shape_[1]} pixels, got {shape[0]} x {shape[1]}"
            )
