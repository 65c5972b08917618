"""The eRASS1 cluster catalogue as published (Bulbul et al. 2024, A&A 685, A106).

The first eROSITA all-sky survey's cluster catalogue (DR1: 12,247 clusters
over 13,116 deg^2 of the western Galactic hemisphere; Bulbul et al. 2024;
optical identification and redshifts by Kluge et al. 2024, A&A 688, A210)
is distributed as a FITS table (``erass1cl_primary_v3.2.fits`` in DR1) with,
among others, these columns, which :func:`read_erass1_catalog` reads:

==================  ====================================================
``RA``, ``DEC``     position, deg (``RA_XFIT``, ``DEC_XFIT``: the X-ray
                    fit's position, with ``position="xfit"``)
``BEST_Z``          best redshift; ``BEST_Z_TYPE`` says whether it is
                    spectroscopic or photometric
``EXT_LIKE``        extent likelihood; ``DET_LIKE_0``: detection likelihood
``EXP``             exposure at the position, s
``CR300kpc``        count rate within 300 kpc, counts/s (0.2-2.3 keV)
``NAME``            the 1eRASS name
``M500``            the catalogue's own mass (units in the file's header,
                    10^13 Msun in DR1), from its count rate: kept for
                    comparison only, never as a target
==================  ====================================================

Everything is read through :func:`skcluster.io.read_catalog`, so a file
with other spellings still works with explicit column names; the point
sources to mask come from the DR1 main catalogue (Merloni et al. 2024, A&A
682, A34) through :func:`skcluster.io.read_point_sources`.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.table import Table

from .catalog import find_column, read_catalog, read_table

__all__ = ["ERASS1_COLUMNS", "read_erass1_catalog"]

#: Column of the eRASS1 DR1 cluster catalogue -> name in the sample.
ERASS1_COLUMNS = {
    "EXP": "exposure",
    "EXT_LIKE": "EXT_LIKE",
    "DET_LIKE_0": "DET_LIKE",
    "CR300kpc": "count_rate_300kpc",
    "BEST_Z_TYPE": "z_type",
    "NAME": "name",
}


def read_erass1_catalog(path_or_table, position="optical", hdu=1, require=("EXP",)):
    """Read the eRASS1 DR1 cluster catalogue into a ClusterSample.

    Parameters
    ----------
    path_or_table : path-like or astropy.table.Table
    position : {"optical", "xfit"}, default="optical"
        ``RA``/``DEC`` of the catalogue, or the X-ray fit's ``RA_XFIT``,
        ``DEC_XFIT``.
    hdu : int or str, default=1
    require : sequence of str, default=("EXP",)
        Catalogue columns that must be present (the exposure gives the
        model its depth); the other columns of :data:`ERASS1_COLUMNS` are
        carried when present.

    Returns
    -------
    ClusterSample
        ``ra``, ``dec`` (deg), ``z`` (``BEST_Z``), and ``exposure`` (s),
        ``EXT_LIKE``, ``DET_LIKE``, ``count_rate_300kpc``, ``z_type``,
        ``name`` where present; with ``M500`` in the file,
        ``log10_M500_catalog`` (log10 Msun, from the column's unit).
    """
    table = path_or_table if isinstance(path_or_table, Table) else read_table(path_or_table, hdu)
    if position not in ("optical", "xfit"):
        raise ValueError(f"position must be 'optical' or 'xfit', got {position!r}")
    ra, dec = ("RA", "DEC") if position == "optical" else ("RA_XFIT", "DEC_XFIT")
    for name in require:
        find_column(table, (), name, name)
    present = [c for c in ERASS1_COLUMNS if c.lower() in {n.lower() for n in table.colnames}]
    sample = read_catalog(table, ra=ra, dec=dec, z="BEST_Z", columns=present)
    columns = {}
    for c in present:
        v = np.asarray(sample[c])
        columns[ERASS1_COLUMNS[c]] = np.char.strip(v.astype(str)) if v.dtype.kind in "SU" else v
    if "exposure" in columns:
        columns["exposure"] = columns["exposure"].astype(np.float64)
    out = sample.assign(**columns)
    for c in present:
        if ERASS1_COLUMNS[c] != c:
            del out[c]
    if "m500" in {n.lower() for n in table.colnames}:
        col = table[find_column(table, (), "M500", "M500")]
        unit = col.unit if col.unit is not None else u.Unit("1e13 solMass")
        mass = np.asarray(col, dtype=np.float64) * unit.to(u.solMass)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["log10_M500_catalog"] = np.where(mass > 0, np.log10(mass), np.nan)
    return out
