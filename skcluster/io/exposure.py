"""The one exposure rule: each cluster's exposure from maps, seconds or a column.

Training (:func:`skcluster.workflow.read_training_set`), prediction
(:func:`skcluster.predict_catalog`) and the image cut-out
(:class:`skcluster.preprocessing.ImageCutout`) all take each cluster's
vignetted exposure (s, quoted at 1 keV) through :func:`resolve_exposure`, so
they accept and refuse the same values: finite and >= 0, where 0 means an
unexposed cluster (it has no data: prediction gives it no mass, training
leaves it out).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_number, rows_text

__all__ = ["EXPOSURE_NAMES", "resolve_exposure", "exposure_source"]

#: Exposure columns tried, case-insensitively, when none is named.
EXPOSURE_NAMES = ("exposure", "exposure_s", "texp", "exp_time")


def exposure_source(exposures=None, exposure_seconds=None, exposure_col=None):
    """Which one source of exposure the caller gave: "maps", "seconds", "column" or None.

    Raises
    ------
    ValueError
        More than one was given.
    """
    given = [n for n, v in (("exposures=", exposures), ("exposure_seconds=", exposure_seconds),
                            ("exposure_col=", exposure_col)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give one source of exposure, not {' and '.join(given)}")
    if exposures is not None:
        return "maps"
    if exposure_seconds is not None:
        return "seconds"
    return "column" if exposure_col is not None else None


def resolve_exposure(n, *, maps=None, seconds=None, column=None, where="exposure"):
    """Each cluster's exposure (s): from maps, else ``seconds`` for all, else a column.

    Parameters
    ----------
    n : int
        Number of clusters.
    maps : array-like of shape (n,), default=None
        The exposure each cluster's box has in the exposure maps.
    seconds : float, default=None
        One exposure for every cluster (> 0).
    column : array-like of shape (n,), default=None
        A catalogue column; used only without maps and seconds.
    where : str, default="exposure"
        What the values are called in error messages (e.g. the column name).

    Returns
    -------
    ndarray of float64, shape (n,), or None
        The exposures (0: unexposed), or None where no source was given.

    Raises
    ------
    ValueError
        A value that is not finite or is negative, naming its rows.
    """
    if maps is not None:
        values, where = np.asarray(maps, dtype=np.float64).reshape(-1), "the exposure maps"
    elif seconds is not None:
        return np.full(n, check_positive_number(seconds, "exposure_seconds", unit="s"))
    elif column is not None:
        values = np.asarray(column, dtype=np.float64).reshape(-1)
    else:
        return None
    if values.shape[0] != n:
        raise ValueError(f"{where}: {values.shape[0]} exposures for {n} clusters")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise ValueError(f"{where} must hold exposures >= 0 (s; 0: unexposed); got "
                         f"{rows_text(np.flatnonzero(bad), values.tolist())}")
    return values
