"""Cluster catalogues: read (FITS, CSV, ECSV) into a ClusterSample, write back.

Column names differ between catalogues (``RA``/``DEC``/``BEST_Z`` in the eFEDS
cluster catalogue of Liu et al. 2022, ``RA_CORR``/``DEC_CORR``, ``z`` in
many others); :func:`read_catalog` finds the usual spellings or takes them as
parameters.
"""

from __future__ import annotations

import codecs
import gzip
import io
import warnings
import zlib
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table

from .._validation import rows_text
from ..exceptions import DataFormatError, SkclusterWarning
from ..sample import ClusterSample
from .atomic import atomic_output
from .fitsfiles import existing_file, fits_errors, native
from .sky import check_sky_position

__all__ = ["read_catalog", "read_table", "write_table", "find_column", "check_redshift"]

RA_NAMES = ("ra", "ra_corr", "raj2000", "_raj2000", "ra_deg", "ra_icrs", "ra_fk5")
DEC_NAMES = ("dec", "dec_corr", "dej2000", "decj2000", "_dej2000", "dec_deg", "de_icrs", "dec_icrs", "dec_fk5")
Z_NAMES = ("z", "redshift", "best_z", "z_best", "zbest", "z_spec", "z_lambda", "photoz", "z_phot")

#: Redshift range accepted for predictions (the mock and seed studies span
#: 0.01 <= z <= 1.5, Krippendorf et al. 2023; beyond z = 6 no X-ray cluster
#: is known).
Z_RANGE = (0.0, 6.0)


def format_for(path):
    name = Path(path).name.lower()
    for suf in (".gz", ".fz"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    if name.endswith((".fits", ".fit", ".fts")):
        return "fits"
    if name.endswith(".ecsv"):
        return "ascii.ecsv"
    if name.endswith(".csv"):
        return "ascii.csv"
    raise DataFormatError(
        f"cannot tell the table format of {str(path)!r}: use .fits, .fits.gz, .ecsv or .csv"
    )


def _text_lines(path):
    """The lines of a text table: gzip if the name says so, UTF-8 (a byte-order mark is dropped)."""
    raw = Path(path).read_bytes()
    if str(path).lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(f"cannot read {str(path)!r}: not a complete gzip file ({exc})") from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"cannot read {str(path)!r}: it is not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
            f"{exc.start}); save the catalogue as UTF-8") from None
    if "\x00" in text:
        raise DataFormatError(f"cannot read {str(path)!r}: it holds NUL characters, not a text table")
    return text.splitlines()


def _table_hdu(path, hdu):
    """The FITS extension to read: ``hdu`` when it holds a table; else the file's only table, said in a warning.

    (astropy would read the first table elsewhere with a deprecation warning
    that this will become an error.) Several tables and none at ``hdu``: a
    DataFormatError listing them.
    """
    from astropy.io import fits

    with fits.open(path) as hdus:
        tables = [i for i, h in enumerate(hdus) if isinstance(h, (fits.BinTableHDU, fits.TableHDU))]
        names = {i: hdus[i].name for i in tables}
        try:
            wanted = hdus.index_of(hdu)
        except (KeyError, IndexError):
            wanted = None
    if wanted in tables or not tables:
        return hdu  # (astropy says what is wrong when there is no table at all)
    found = ", ".join(f"HDU {i}" + (f" ({names[i]})" if names[i] else "") for i in tables)
    if len(tables) > 1:
        raise DataFormatError(f"{str(path)!r} has no table in HDU {hdu!r} but several elsewhere ({found}); "
                              "say which to read")
    warnings.warn(f"{str(path)!r} has no table in HDU {hdu!r}; reading its only table, {found}",
                  SkclusterWarning, stacklevel=3)
    return tables[0]


def read_table(path, hdu=1):
    """Read a FITS/ECSV/CSV table (format from the file name).

    Text tables (``.csv``, ``.ecsv``, also gzipped) are read as UTF-8; a
    byte-order mark (as spreadsheet programs write) is dropped, and UTF-16
    with its mark is recognised.
    """
    path = existing_file(path, "catalogue")
    fmt = format_for(path)
    try:
        if fmt == "fits":
            with fits_errors(path, "a FITS table"):
                table = Table.read(path, format=fmt, hdu=_table_hdu(path, hdu))
        else:
            lines = _text_lines(path)
            if not any(line.strip() for line in lines):
                raise DataFormatError(f"{str(path)!r} is empty")
            table = Table.read(lines, format=fmt)
    except DataFormatError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OSError) as exc:
        raise DataFormatError(f"cannot read {str(path)!r} as {fmt}: {' '.join(str(exc).split())}") from exc
    for name in list(table.colnames):  # a mark inside a column name (a file edited twice)
        clean = name.replace("\ufeff", "").strip()
        if clean != name and clean and clean not in table.colnames:
            table.rename_column(name, clean)
    return table


def find_column(table, candidates, given=None, what="column"):
    """Name of the column matching ``given`` or the first of ``candidates``.

    Matching is case-insensitive; a ``KeyError`` lists the columns present.
    """
    lower = {c.lower(): c for c in table.colnames}
    if given is not None:
        if given in table.colnames:
            return given
        if given.lower() in lower:
            return lower[given.lower()]
        raise KeyError(f"no {what} column {given!r}; columns are {table.colnames}")
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    raise KeyError(
        f"no {what} column found (tried {list(candidates)}, case-insensitive); "
        f"columns are {table.colnames}; name it with a parameter"
    )


def column_numbers(col, name):
    """A column as float64 (masked entries NaN); a column of text raises naming it."""
    try:
        values = np.asarray(native(col), dtype=np.float64)
    except (ValueError, TypeError):
        shown = [str(v) for v in np.asarray(col)[:3]]
        raise DataFormatError(f"column {name!r} must hold numbers; it holds {col.dtype} values such as "
                              f"{shown}") from None
    if getattr(col, "mask", None) is not None:
        values = np.where(np.asarray(col.mask), np.nan, values)
    return values


def _degrees(col, name):
    unit = getattr(col, "unit", None)
    values = column_numbers(col, name)
    if unit is not None and unit != u.dimensionless_unscaled:
        try:
            values = (values * unit).to_value(u.deg)
        except u.UnitConversionError:
            raise DataFormatError(f"column {name!r} has unit {unit}, not an angle") from None
    return values


def check_redshift(z, where="redshift"):
    """Raise ``ValueError`` naming rows whose redshift is NaN or out of range."""
    z = np.asarray(z, dtype=np.float64)
    bad = ~np.isfinite(z) | (z <= Z_RANGE[0]) | (z > Z_RANGE[1])
    if np.any(bad):
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{where}: z must be finite and in ({Z_RANGE[0]}, {Z_RANGE[1]}]; "
            f"got {rows_text(rows, z.tolist())}"
        )


def read_catalog(path_or_table, ra=None, dec=None, z=None, columns=(), hdu=1):
    """Read a cluster catalogue into a :class:`~skcluster.ClusterSample`.

    Parameters
    ----------
    path_or_table : path-like or astropy.table.Table
        FITS, ECSV or CSV file, or a table in memory.
    ra, dec, z : str, default=None
        Column names; by default the usual spellings are tried
        (``RA``/``RA_CORR``/``RAJ2000``, ``DEC``/``DEC_CORR``/``DEJ2000``,
        ``z``/``Z``/``REDSHIFT``/``BEST_Z`` ...), case-insensitively.
    columns : sequence of str, default=()
        Further columns to carry along under their own names.
    hdu : int or str, default=1
        FITS extension.

    Returns
    -------
    ClusterSample
        With ``ra``, ``dec`` (deg, float64), ``z`` and the extra columns.

    Raises
    ------
    KeyError
        A column is missing (the message lists the columns present).
    ValueError
        NaN or out-of-range ra, dec or z (the message names the rows).
    """
    if isinstance(path_or_table, Table):
        table, where = path_or_table, "catalogue"
    else:
        table, where = read_table(path_or_table, hdu), str(path_or_table)
    ra_name = find_column(table, RA_NAMES, ra, "ra")
    dec_name = find_column(table, DEC_NAMES, dec, "dec")
    z_name = find_column(table, Z_NAMES, z, "redshift")
    ra_v = _degrees(table[ra_name], ra_name)
    dec_v = _degrees(table[dec_name], dec_name)
    z_v = column_numbers(table[z_name], z_name)
    check_sky_position(ra_v, dec_v, where=f"{where} ({ra_name}, {dec_name})")
    check_redshift(z_v, where=f"{where} ({z_name})")
    out = {"ra": np.mod(ra_v, 360.0), "dec": dec_v, "z": z_v}
    for name in columns:
        col = find_column(table, (), name, name)
        out[name] = native(table[col])
    return ClusterSample(**out)


def write_table(table, path, overwrite=False):
    """Write a table as FITS or ECSV/CSV (from the suffix), atomically.

    An existing file is kept unless ``overwrite=True``; a failed write leaves
    no partial file.
    """
    fmt = format_for(path)
    gz = str(path).lower().endswith(".gz")
    if fmt == "fits":
        # FITS keeps column names as TTYPE keywords, read back without trailing blanks and case-blind:
        # a blank name, or two names equal that way ("ra" and "RA "), write a file nothing can read
        seen, bad = {}, []
        for name in table.colnames:
            key = str(name).rstrip().upper()
            if not key.strip() or key in seen:
                bad.append(name if not key.strip() else (seen[key], name))
            seen.setdefault(key, name)
        if bad:
            raise ValueError(f"column name(s) {bad} cannot be written to FITS (blank, or equal once "
                             "trailing blanks and case are ignored, which makes an unreadable file); "
                             "rename them or write .ecsv or .csv")
    with atomic_output(path, overwrite=overwrite) as tmp:
        if fmt != "fits" and gz:  # astropy writes text tables uncompressed whatever the name
            buf = io.StringIO()
            table.write(buf, format=fmt)
            Path(tmp).write_bytes(gzip.compress(buf.getvalue().encode("utf-8")))
        else:
            table.write(tmp, format=fmt)
