"""Training sets from your own simulations: a truth catalogue plus event files.

A sky simulated with SIXTE (Dauser et al. 2019, A&A 630, A66) from a
hydrodynamical light-cone, or any other simulation, trains a model through
the same readers as real data: a catalogue with positions, redshifts and
true masses, and eSASS-format event files, any number of clusters per file
and any file names. :func:`read_training_set` cuts each cluster's box out
of every file (a cluster near a file's edge gets its events from all files
that cover it) and returns the sample and target that
:func:`skcluster.models.make_mass_pipeline` trains on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table
from sklearn.utils import Bunch

from .catalog import find_column, read_catalog, read_table
from .events import DR1_FLAG_MASK, EVENT_DTYPE, cutout_events, read_events
from .point_sources import point_sources_around

__all__ = ["MASS_NAMES", "read_training_set"]

#: Mass columns tried, case-insensitively, when none is named.
MASS_NAMES = ("log10_m500", "m500", "m500c", "m500_true", "mass")
#: Exposure columns tried, case-insensitively, when none is named.
EXPOSURE_NAMES = ("exposure", "exposure_s", "texp", "exp_time")
_MASS_UNITS = ("auto", "Msun", "log10Msun", "1e14Msun")


def _log10_mass(values, unit, name):
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v) | (v <= 0)
    if np.any(bad):
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"mass column {name!r} must be finite and > 0; rows {rows} are not")
    if unit == "auto":
        if np.all((v > 10.0) & (v < 17.0)):
            unit = "log10Msun"
        elif np.all(v > 1e10):
            unit = "Msun"
        else:
            raise ValueError(
                f"cannot tell the unit of mass column {name!r} (values {v.min():.3g}..{v.max():.3g}): "
                f"pass mass_unit as one of {_MASS_UNITS[1:]}")
    if unit == "log10Msun":
        return v
    if unit == "Msun":
        return np.log10(v)
    if unit == "1e14Msun":
        return np.log10(v) + 14.0
    raise ValueError(f"mass_unit must be one of {_MASS_UNITS}, got {unit!r}")


def read_training_set(catalog, events, mass_col=None, mass_unit="auto", ra=None, dec=None, z=None,
                      exposure_col=None, exposure_seconds=None, size_arcmin=20.0, point_sources=None,
                      pattern_types=(1, 2, 3, 4), flag_mask=DR1_FLAG_MASK, allow_empty=False):
    """Read a truth catalogue and event files into a training sample.

    Parameters
    ----------
    catalog : path-like or astropy.table.Table
        Positions (deg), redshifts and true masses; columns found by the
        usual names or named below.
    events : path-like or sequence of path-like
        eSASS ``EVENTS`` files (``RA``, ``DEC``, ``PI`` in eV), each covering
        any number of clusters.
    mass_col : str, default=None
        The true-mass column (tried: ``log10_M500``, ``M500``, ``M500c``, ...).
    mass_unit : {"auto", "Msun", "log10Msun", "1e14Msun"}, default="auto"
        ``"auto"``: log10 if every value is in (10, 17), Msun if every value
        exceeds 1e10, else an error asking for the unit.
    ra, dec, z : str, default=None
        Column names (see :func:`skcluster.io.read_catalog`).
    exposure_col : str, default=None
        Vignetted exposure at each cluster, s (tried: ``exposure``, ...).
    exposure_seconds : float, default=None
        One exposure for every cluster instead of a column.
    size_arcmin : float, default=20.0
        Side of each cluster's box, arcmin.
    point_sources : path-like or table, default=None
        A point-source catalogue to mask (:func:`skcluster.io.read_point_sources`);
        adds the ``point_sources`` column.
    pattern_types, flag_mask
        Event filters (:func:`skcluster.io.read_events`); ``pattern_types=None``
        and ``flag_mask=None`` keep every event (simulations often have no
        ``PAT_TYP`` or ``FLAG`` columns).
    allow_empty : bool, default=False
        Keep clusters with no event in any file (otherwise an error names
        them: a box outside every file is almost always a mistake).

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (ClusterSample with ``events``, ``z``, ``exposure``, ``ra``,
        ``dec`` and ``point_sources`` if given; meta ``size_arcmin``), ``y``
        (log10 M500 / Msun), ``catalog`` (the table as read).
    """
    table = catalog if isinstance(catalog, Table) else read_table(catalog)
    sample = read_catalog(table, ra=ra, dec=dec, z=z)
    m_name = find_column(table, MASS_NAMES, mass_col, "true-mass")
    y = _log10_mass(table[m_name], mass_unit, m_name)
    n = len(y)
    if exposure_seconds is not None:
        exposure = np.full(n, float(exposure_seconds))
    else:
        try:
            e_name = find_column(table, EXPOSURE_NAMES, exposure_col, "exposure")
        except KeyError as exc:
            raise KeyError(f"{exc.args[0]}; or pass exposure_seconds") from None
        exposure = np.asarray(table[e_name], dtype=np.float64)
    if not np.all(np.isfinite(exposure) & (exposure > 0)):
        rows = np.flatnonzero(~(np.isfinite(exposure) & (exposure > 0)))[:5].tolist()
        raise ValueError(f"exposure must be finite and > 0 seconds; rows {rows} are not")
    paths = [events] if isinstance(events, (str, Path)) else list(events)
    if not paths:
        raise ValueError("no event files given")
    parts = [[] for _ in range(n)]
    filters = pattern_types is not None or flag_mask is not None
    for path in paths:
        ev = read_events(path, apply_filters=filters, pattern_types=pattern_types, flag_mask=flag_mask)
        for i, box in enumerate(cutout_events(ev, sample["ra"], sample["dec"], size_arcmin)):
            if len(box):
                parts[i].append(box)
    boxes = np.empty(n, dtype=object)
    empty = []
    for i, p in enumerate(parts):
        boxes[i] = np.concatenate(p) if p else np.zeros(0, EVENT_DTYPE)
        if not p:
            empty.append(i)
    if empty and not allow_empty:
        raise ValueError(
            f"{len(empty)} cluster(s) have no event in any of the {len(paths)} event file(s) "
            f"(rows {empty[:5]}{' ...' if len(empty) > 5 else ''}); check the positions and files, "
            "or pass allow_empty=True")
    columns = dict(events=boxes, z=sample["z"], exposure=exposure, ra=sample["ra"], dec=sample["dec"])
    if point_sources is not None:
        columns["point_sources"] = point_sources_around(point_sources, sample["ra"], sample["dec"],
                                                        size_arcmin, exposure=exposure)
    X = type(sample)(meta={"size_arcmin": float(size_arcmin)}, **columns)
    return Bunch(X=X, y=y, catalog=table)
