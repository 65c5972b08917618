"""Input checks shared by the baseline estimators.

ClusterSample-or-array dispatch, the regression target, positive columns
and column-name wildcards, with messages that name the step, the column,
the row and the value.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

import numpy as np
from scipy import sparse
from sklearn.utils.validation import check_array, column_or_1d

from .._validation import rows_text


def is_sample(X):
    """A ClusterSample-like mapping (not a sparse matrix, whose dok format is a dict)."""
    return not sparse.issparse(X) and (isinstance(X, Mapping) or hasattr(X, "colnames"))


def check_target(y, n, step):
    """y as a finite float64 1-D array of length n (a column vector warns and is raveled)."""
    if y is None:
        raise ValueError(f"{step} requires y to be passed, but the target y is None")
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64, input_name="y"), warn=True)
    if y.shape[0] != n:
        raise ValueError(
            f"{step}: y has {y.shape[0]} values but X has {n} clusters (inconsistent numbers of samples)"
        )
    return y


def check_positive_column(X, name, step, allow_zero=False):
    """Column ``name`` of ``X`` as float64, after checking it is 1-D, finite and positive."""
    v = np.asarray(X[name], dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{step}: column {name!r} must be 1-D, got shape {v.shape}")
    bad = ~np.isfinite(v) | ((v < 0) if allow_zero else (v <= 0))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{step}: column {name!r} must be finite and {'>= 0' if allow_zero else 'positive'}; "
            f"{rows.size} bad value(s): {rows_text(rows, v.tolist())}"
        )
    return v


def expand_columns(X, patterns, step):
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


def observable_columns(X, step):
    """``X.meta["observable_columns"]`` (written by ScalarObservables), or an error naming the fix."""
    cols = X.meta.get("observable_columns")
    if cols is None:
        raise ValueError(
            f"{step}: columns=None takes meta['observable_columns'] from "
            "ScalarObservables, which this sample lacks; name the columns"
        )
    return list(cols)
