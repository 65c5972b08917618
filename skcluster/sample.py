"""The data container that flows through every skcluster pipeline.

:class:`ClusterSample` is a mapping of equal-length columns, one row per
cluster. It behaves like :class:`skorch.helper.SliceDict` (a ``dict`` that
slices all its values at once) without importing skorch, whose import pulls
in torch (seconds and ~400 MB per process, paid by every joblib worker that
only simulates or bins). So

* scikit-learn can index it: ``X.shape == (n_samples,)``, and ``X[idx]`` with
  an index array, a boolean mask or a slice returns a new sample with every
  column sliced the same way (``cross_validate``, ``GridSearchCV`` and
  ``train_test_split`` work unchanged);
* skorch unpacks it into ``module.forward(**X)`` when it reaches a network;
* it converts from and to :class:`astropy.table.Table`.

Columns used by the package (each step reads what it needs and passes the
rest through):

``events``
    object array, one structured event array per cluster (see
    :data:`skcluster.io.EVENT_DTYPE`): sky offsets in arcsec and energy in keV.
``images``
    float32, shape (n, n_bands, H, W): counts (or scaled counts) per pixel.
``z``
    redshift.
``exposure``
    vignetted exposure at the cluster position, seconds.
``ra``, ``dec``
    sky position, degrees (ICRS/FK5).
``physics_draw``
    integer: which physics draw of a physics-marginalised mock the cluster
    comes from (:func:`skcluster.datasets.make_marginalised_survey`); one of
    the :data:`LABEL_COLUMNS`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["ClusterSample", "LABEL_COLUMNS", "as_sample"]

#: Per-cluster labels that travel with the rows through every step to the
#: final estimator (the last preprocessing step, ``RedshiftJoiner``, keeps
#: them beside the network input, which the networks ignore):
#: ``DeepEnsembleRegressor(member_groups="physics_draw")`` reads them in fit.
LABEL_COLUMNS = ("physics_draw",)


def _as_column(name, value):
    """Turn ``value`` into an array-like column with at least one dimension."""
    if hasattr(value, "shape") and hasattr(value, "__getitem__"):
        arr = value
    elif isinstance(value, (list, tuple)):
        arrays = [v for v in value if isinstance(v, np.ndarray)]
        ragged = len(arrays) == len(value) and len(value) > 0 and (
            any(a.dtype.names for a in arrays) or len({a.shape for a in arrays}) > 1
        )
        if ragged:
            # One table per row (event lists): keep one object per row, never
            # let numpy stack them into a 2-D (structured) array.
            arr = np.empty(len(value), dtype=object)
            for i, a in enumerate(arrays):
                arr[i] = a
        else:
            arr = np.asarray(value)
    else:
        raise TypeError(
            f"column {name!r} must be an array with one row per cluster, "
            f"got {type(value).__name__}"
        )
    if len(arr.shape) == 0:
        raise ValueError(
            f"column {name!r} is a scalar; every column needs one value per "
            "cluster (shape (n_samples, ...))"
        )
    return arr


class ClusterSample(dict):
    """Columns of equal length, one row per cluster, indexable by scikit-learn.

    Parameters
    ----------
    meta : dict, default=None
        Metadata of the sample as a whole (not per row), kept through
        slicing, ``assign`` and pickling. Keys used by the package:
        ``bands_keV`` (list of (lo, hi) energy bands of ``images``, keV),
        ``pixel_arcsec`` (pixel side of ``images``, arcsec), ``size_arcmin``
        (side of the cut-out box, arcmin), ``image_unit`` ("counts",
        "counts/s", ...).
    **columns : array-like
        Each value has the number of clusters as its first dimension. Lists
        are converted to arrays (a list of ragged arrays becomes an object
        array).

    Raises
    ------
    ValueError
        If the columns do not all have the same length (the message names
        each column and its length).

    Examples
    --------
    >>> import numpy as np
    >>> from skcluster import ClusterSample
    >>> X = ClusterSample(z=np.array([0.1, 0.2, 0.3]), exposure=np.ones(3))
    >>> X.shape
    (3,)
    >>> X[np.array([True, False, True])]["z"]
    array([0.1, 0.3])
    """

    def __init__(self, meta=None, **columns):
        self.meta = dict(meta or {})
        columns = {name: _as_column(name, value) for name, value in columns.items()}
        lengths = {name: value.shape[0] for name, value in columns.items()}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k!r}: {v}" for k, v in lengths.items())
            raise ValueError(
                "all columns of a ClusterSample must have the same length "
                f"(one row per cluster); got {detail}"
            )
        self._len = next(iter(lengths.values()), 0)
        super().__init__(**columns)

    # -- indexing -----------------------------------------------------------
    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return dict.__getitem__(self, key)
            except KeyError:
                raise KeyError(
                    f"ClusterSample has no column {key!r}; columns are "
                    f"{sorted(self.keys())}"
                ) from None
        if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(
            key, (bool, np.bool_)
        ):
            raise TypeError(
                "a ClusterSample cannot be indexed by a single integer (that "
                "would drop the row dimension); use a slice such as "
                f"X[{int(key)}:{int(key) + 1}] or an index array"
            )
        if isinstance(key, tuple):
            # scikit-learn's _safe_indexing calls X[key, ...]
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise TypeError(
                    "a ClusterSample indexes rows only; got a multi-axis key "
                    f"{key!r}"
                )
        if isinstance(key, list):
            key = np.asarray(key)
        if isinstance(key, np.ndarray) and key.dtype == bool and key.shape != (len(self),):
            raise IndexError(
                f"boolean mask of shape {key.shape} does not match a "
                f"ClusterSample of {len(self)} rows"
            )
        return self._new({k: v[key] for k, v in self.items()})

    def _new(self, columns):
        """A sample of the same type and metadata with other columns."""
        return type(self)(meta=self.meta, **columns)

    def copy(self):
        """Shallow copy: the same column arrays, a copy of ``meta``."""
        return self._new(dict(self))

    def __setitem__(self, key, value):
        if not isinstance(key, str):
            raise TypeError(f"column names must be str, not {type(key).__name__}")
        value = _as_column(key, value)
        others = [k for k in self.keys() if k != key]
        if others and value.shape[0] != len(self):
            raise ValueError(
                f"column {key!r} has {value.shape[0]} rows but the sample has "
                f"{len(self)}"
            )
        if not others:
            self._len = value.shape[0]
        dict.__setitem__(self, key, value)

    def __len__(self):
        return self._len

    @property
    def shape(self):
        """``(n_samples,)``: what scikit-learn reads to count rows."""
        return (self._len,)

    def update(self, other=(), **columns):
        """Add or replace columns in place, checking their lengths."""
        for key, value in dict(other, **columns).items():
            self[key] = value

    def setdefault(self, key, default=None):
        raise TypeError("ClusterSample does not support setdefault; use X[key] = value")

    @classmethod
    def fromkeys(cls, *args, **kwargs):
        raise TypeError("ClusterSample does not support fromkeys")

    def __eq__(self, other):
        if not isinstance(other, Mapping) or set(self.keys()) != set(other.keys()):
            return False
        for key, val in self.items():
            other_val = other[key]
            if getattr(val, "shape", None) != getattr(other_val, "shape", None):
                return False
            if not np.all(np.asarray(val == other_val)):
                return False
        return True

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None

    def __repr__(self):
        parts = []
        for k, v in self.items():
            dtype = getattr(v, "dtype", type(v).__name__)
            parts.append(f"{k}: {dtype}{tuple(v.shape)}")
        meta = f"; meta keys {sorted(self.meta)}" if self.meta else ""
        return f"ClusterSample(n={len(self)}; " + ", ".join(parts) + meta + ")"

    # -- convenience --------------------------------------------------------
    @property
    def n_samples(self):
        """Number of clusters (rows)."""
        return len(self)

    @property
    def columns(self):
        """Column names, in insertion order."""
        return list(self.keys())

    def assign(self, meta=None, **columns):
        """Return a new sample with columns added or replaced.

        The input is not modified; untouched columns are shared, not copied.
        ``meta`` entries, if given, update a copy of the metadata.
        """
        new = dict(self)
        new.update(columns)
        out = self._new(new)
        if meta:
            out.meta.update(meta)
        return out

    def drop(self, *names):
        """Return a new sample without the named columns (missing names raise)."""
        missing = [n for n in names if n not in self]
        if missing:
            raise KeyError(f"cannot drop missing columns {missing}; columns are {self.columns}")
        return self._new({k: v for k, v in self.items() if k not in names})

    def select(self, *names):
        """Return a new sample with only the named columns."""
        self.require(*names)
        return self._new({k: self[k] for k in names})

    def require(self, *names, step=None):
        """Raise a clear ``KeyError`` if any of ``names`` is not a column."""
        missing = [n for n in names if n not in self]
        if missing:
            who = f"{step} needs" if step else "needs"
            raise KeyError(
                f"{who} column(s) {missing} but the ClusterSample has only "
                f"{self.columns}"
            )

    @classmethod
    def concat(cls, samples: Iterable[ClusterSample]):
        """Stack samples with the same columns row-wise (metadata of the first).

        A ``meta["physics"]`` record (the mock physics the rows were simulated
        under, :func:`~skcluster.datasets.make_survey`) that the samples do
        not all share is dropped: no record says what a mix of physics is.
        """
        samples = list(samples)
        if not samples:
            raise ValueError("need at least one ClusterSample to concatenate")
        keys = samples[0].columns
        for s in samples[1:]:
            if set(s.columns) != set(keys):
                raise ValueError(
                    f"cannot concatenate samples with different columns: {keys} vs {s.columns}"
                )
        meta = dict(samples[0].meta)
        if "physics" in meta and any(s.meta.get("physics") != meta["physics"] for s in samples[1:]):
            del meta["physics"]
        return cls(
            meta=meta,
            **{k: np.concatenate([np.asarray(s[k]) for s in samples]) for k in keys},
        )

    # -- astropy ------------------------------------------------------------
    def to_table(self):
        """Convert to an :class:`astropy.table.Table` (one row per cluster).

        Multi-dimensional columns (images) become multi-dimensional table
        columns; object columns (event lists) stay object columns, which
        astropy keeps in memory but cannot write to FITS. ``meta`` becomes
        the table's ``meta``.
        """
        from astropy.table import Table

        return Table({k: np.asarray(v) for k, v in self.items()}, meta=dict(self.meta))

    @classmethod
    def from_table(cls, table, columns=None):
        """Build a sample from an :class:`astropy.table.Table` or a mapping.

        Parameters
        ----------
        table : astropy.table.Table or Mapping
        columns : list of str, default=None
            Columns to take; all of them by default. Masked values become NaN
            for float columns (and raise for other dtypes).
        """
        names = list(table.colnames if hasattr(table, "colnames") else table.keys())
        if columns is not None:
            missing = [c for c in columns if c not in names]
            if missing:
                raise KeyError(f"table has no column(s) {missing}; columns are {names}")
            names = list(columns)
        out = {}
        for name in names:
            col = table[name]
            if getattr(col, "mask", None) is not None and np.any(col.mask):
                if np.issubdtype(col.dtype, np.floating):
                    col = col.filled(np.nan)
                else:
                    raise ValueError(f"column {name!r} has masked (missing) values")
            arr = np.asarray(col)
            if arr.dtype.byteorder not in ("=", "|"):
                arr = arr.astype(arr.dtype.newbyteorder("="))
            out[name] = arr
        return cls(meta=dict(getattr(table, "meta", {}) or {}), **out)


def as_sample(X, step=None):
    """Return ``X`` as a :class:`ClusterSample` (mappings and Tables are converted).

    Parameters
    ----------
    X : ClusterSample, Mapping or astropy.table.Table
    step : str, default=None
        Name of the calling step, used in the error message.
    """
    if isinstance(X, ClusterSample):
        return X
    if isinstance(X, Mapping):
        return ClusterSample(**X)
    if hasattr(X, "colnames"):
        return ClusterSample.from_table(X)
    who = f"{step} expects" if step else "expected"
    raise TypeError(
        f"{who} a ClusterSample (a mapping of columns such as 'events', "
        f"'images', 'z'), got {type(X).__name__}"
        + (f" with shape {X.shape}" if hasattr(X, "shape") else "")
    )
