"""Input checks, the batched torch dataset, and a toy sample for tests."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch

from .._validation import rows_text
from ..exceptions import SkclusterWarning
from ..sample import ClusterSample

__all__ = ["ArrayDataset", "check_finite", "check_sample_weight", "check_target", "make_toy_sample", "network_inputs"]

#: Rows per chunk are chosen so a chunk holds about this many elements.
_CHUNK_ELEMENTS = 1 << 24


def check_finite(arr, name, where):
    """Raise ``ValueError`` naming the first rows of ``arr`` with NaN or inf.

    Works chunk by chunk with two reductions (min, max) per chunk, so no
    boolean copy of a large cube is made unless a bad value exists.
    """
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.floating):
        return
    row = int(np.prod(arr.shape[1:], dtype=np.int64)) or 1
    step = max(1, _CHUNK_ELEMENTS // row)
    for start in range(0, arr.shape[0], step):
        chunk = arr[start : start + step]
        if np.isfinite(chunk.min()) and np.isfinite(chunk.max()):
            continue
        # the error path: one more pass from here on to name (and count) every bad row
        bad_rows = np.concatenate([
            s + np.flatnonzero(~np.isfinite(arr[s : s + step].reshape(-1, row)).all(axis=1))
            for s in range(start, arr.shape[0], step)
        ])
        first = int(bad_rows[0])
        idx = np.unravel_index(int(np.flatnonzero(~np.isfinite(arr[first].ravel()))[0]), arr.shape[1:])
        raise ValueError(
            f"{where}: column {name!r} contains NaN or infinite values in {rows_text(bad_rows, limit=10)} "
            f"(first: row {first}, index {tuple(int(i) for i in idx)} = {arr[first][idx]!r}); "
            "the network needs finite inputs"
        )


def _as_float32(arr, name, where):
    arr = np.asarray(arr) if not isinstance(arr, np.ndarray) else arr
    if arr.dtype == np.float32:
        return arr
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{where}: column {name!r} must be numeric (float32), got dtype {arr.dtype}")
    warnings.warn(
        f"{where}: column {name!r} has dtype {arr.dtype}; converting to float32 (a copy). "
        "Cast at the last preprocessing step to avoid it.",
        SkclusterWarning,
        stacklevel=4,
    )
    return arr.astype(np.float32)


def network_inputs(X, where="CNNRegressor"):
    """Return ``(images, scalars)`` float32 arrays from a sample or a 4-D array.

    ``X`` is a mapping (``ClusterSample``) with ``images`` (n, B, H, W) and
    ``scalars`` (n, K), as produced by ``RedshiftJoiner``; other columns are
    ignored. A bare 4-D array is taken as ``images`` with K = 0 scalars.
    Non-finite values raise ``ValueError``; other float dtypes are converted
    to float32 with a :class:`~skcluster.exceptions.SkclusterWarning`.
    """
    if isinstance(X, Mapping):
        if "images" not in X or "scalars" not in X:
            missing = [c for c in ("images", "scalars") if c not in X]
            hint = (
                " (the 'scalars' column is made by RedshiftJoiner, the last preprocessing "
                "step; use a (n, 0) array for no scalars)"
                if "scalars" in missing
                else ""
            )
            raise KeyError(
                f"{where} needs column(s) {missing} but the sample has only {sorted(X.keys())}{hint}"
            )
        images, scalars = X["images"], X["scalars"]
    elif hasattr(X, "shape") and len(X.shape) == 4:
        images, scalars = X, None
    else:
        shape = getattr(X, "shape", None)
        raise TypeError(
            f"{where} expects a ClusterSample with columns 'images' (n, bands, H, W) and "
            f"'scalars' (n, K), or a 4-D image array; got {type(X).__name__}"
            + (f" with shape {tuple(shape)}" if shape is not None else "")
        )
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    images = _as_float32(images, "images", where)
    if images.ndim != 4:
        raise ValueError(
            f"{where}: column 'images' must have shape (n, bands, H, W), got {images.shape}"
        )
    n = images.shape[0]
    if scalars is None:
        scalars = np.zeros((n, 0), dtype=np.float32)
    else:
        if isinstance(scalars, torch.Tensor):
            scalars = scalars.detach().cpu().numpy()
        scalars = _as_float32(scalars, "scalars", where)
        if scalars.ndim != 2 or scalars.shape[0] != n:
            raise ValueError(
                f"{where}: column 'scalars' must have shape (n, K) = ({n}, K), got {scalars.shape}"
            )
    check_finite(images, "images", where)
    check_finite(scalars, "scalars", where)
    return images, scalars


def check_target(y, n, where):
    """Return ``y`` as a finite 1-D float64 array of length ``n`` (or raise)."""
    if y is None:
        raise ValueError(
            f"{where} requires y to be passed, but the target y is None "
            "(y is log10(M500c / Msun), one value per cluster)"
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{where}: y must be 1-D (one log10 M500c per cluster), got shape {y.shape}")
    if y.dtype.kind not in "fiub":
        raise TypeError(f"{where}: y must be numeric, got dtype {y.dtype}")
    y = y.astype(np.float64)
    if y.shape[0] != n:
        raise ValueError(f"{where}: X has {n} clusters but y has {y.shape[0]} values")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"{where}: y contains NaN or infinite values ({rows_text(bad, y.tolist())})")
    return y


def check_sample_weight(sample_weight, n, where):
    """``sample_weight`` as float32 of length ``n`` with mean one (None stays None).

    Weights must be finite and non-negative with a positive sum; they are
    rescaled to a mean of one, so the weighted loss keeps the scale of the
    unweighted one (and the learning rate its meaning).
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{where}: sample_weight must have one value per cluster, shape ({n},), got {w.shape}")
    if w.dtype.kind not in "fiub":
        raise TypeError(f"{where}: sample_weight must be numeric, got dtype {w.dtype}")
    w = w.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(f"{where}: sample_weight must be finite and >= 0 ({rows_text(bad, w.tolist())})")
    total = w.sum()
    if not total > 0:
        raise ValueError(f"{where}: sample_weight sums to zero; at least one cluster needs a positive weight")
    return (w * (n / total)).astype(np.float32)


class ArrayDataset(torch.utils.data.Dataset):
    """Images, scalars, targets (and sample weights) as tensors sharing the numpy memory.

    ``__getitems__`` returns a whole batch with one fancy-index per array
    (instead of one tiny tensor per sample and a collate), which keeps
    skorch's data loading overhead small. Use it with
    ``collate_fn=passthrough_collate``. With ``sample_weight`` the batch's
    input dict carries a ``sample_weight`` entry, which the regressor's
    loss reads (and the network never sees).
    """

    def __init__(self, images, scalars, y=None, sample_weight=None):
        with warnings.catch_warnings():
            # read-only arrays (memory maps) are never written to
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            self.images = torch.from_numpy(np.ascontiguousarray(images))
            self.scalars = torch.from_numpy(np.ascontiguousarray(scalars))
            self.y = None if y is None else torch.from_numpy(np.ascontiguousarray(y))
            self.sample_weight = (None if sample_weight is None
                                  else torch.from_numpy(np.ascontiguousarray(sample_weight, dtype=np.float32)))

    def __len__(self):
        return self.images.shape[0]

    def _take(self, idx):
        xb = {"images": self.images[idx], "scalars": self.scalars[idx]}
        if self.sample_weight is not None:
            xb["sample_weight"] = self.sample_weight[idx]
        yb = self.y[idx] if self.y is not None else torch.zeros(len(xb["images"]))
        return xb, yb

    def __getitem__(self, i):
        return self._take(slice(int(i), int(i) + 1))

    def __getitems__(self, indices):
        return self._take(torch.as_tensor(indices, dtype=torch.long))


def passthrough_collate(batch):
    """``collate_fn`` for :class:`ArrayDataset`: the batch is already stacked."""
    return batch


def make_toy_sample(n_samples=256, n_bands=2, image_size=16, n_scalars=1, random_state=None):
    """A toy sample whose images depend on the target, for tests and benchmarks.

    Not physics: a round Poisson blob on a flat background whose amplitude
    grows with ``y`` and dims as (1 + z)^-2 with the first scalar ``z``, and
    whose radius grows as 10^(y/3), so a network must read both the image
    and the scalar. ``images`` are counts (``meta["image_unit"] ==
    "counts"``): use ``CNNRegressor(input_scaling="log1p")`` or similar.

    Parameters
    ----------
    n_samples : int, default=256
    n_bands : int, default=2
    image_size : int, default=16
        H = W in pixels.
    n_scalars : int, default=1
        0 drops the scalar (and the (1 + z) dimming); more than 1 adds
        uninformative uniform scalars.
    random_state : int, RandomState or None, default=None

    Returns
    -------
    X : ClusterSample
        ``images`` float32 (n, n_bands, image_size, image_size) and
        ``scalars`` float32 (n, n_scalars).
    y : ndarray of shape (n,)
        Toy "log10 M500c", uniform in [13.5, 15].
    """
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    y = rng.uniform(13.5, 15.0, n_samples)
    z = rng.uniform(0.1, 0.8, n_samples) if n_scalars else np.zeros(n_samples)
    ax = np.arange(image_size) - (image_size - 1) / 2.0
    r2 = ax[None, :] ** 2 + ax[:, None] ** 2
    radius = 1.5 * 10 ** ((y - 14.0) / 3.0)  # pixels
    amp = 30.0 * 10 ** (y - 14.0) / (1.0 + z) ** 2  # counts per band at the centre
    band_weight = np.linspace(1.0, 0.4, n_bands)
    images = np.empty((n_samples, n_bands, image_size, image_size), dtype=np.float32)
    for start in range(0, n_samples, 256):  # chunks keep the float64 temporaries small
        sl = slice(start, start + 256)
        expect = amp[sl, None, None, None] * band_weight[None, :, None, None] * np.exp(
            -0.5 * r2[None, None] / radius[sl, None, None, None] ** 2
        )
        images[sl] = rng.poisson(expect + 0.3)
    scal = [z] + [rng.uniform(0, 1, n_samples) for _ in range(max(0, n_scalars - 1))]
    scalars = np.stack(scal[:n_scalars], axis=1).astype(np.float32) if n_scalars else np.zeros(
        (n_samples, 0), np.float32
    )
    X = ClusterSample(
        images=images,
        scalars=scalars,
        meta={"image_unit": "counts", "scalar_names": ["z", *[f"u{i}" for i in range(1, n_scalars)]][:n_scalars]},
    )
    return X, y
