"""Checks of input files: present, readable as FITS, in native byte order."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["existing_file", "fits_errors", "native"]


def existing_file(path, what="file"):
    """Return ``Path(path)``, raising ``FileNotFoundError`` that names it if absent."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {str(p)!r}")
    return p


@contextmanager
def fits_errors(path, what):
    """Re-raise errors of reading a FITS file (truncated, not FITS at all) as DataFormatError naming it."""
    from ..exceptions import DataFormatError

    try:
        yield
    except (DataFormatError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, AttributeError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise DataFormatError(f"cannot read {str(path)!r} as {what}: {why}") from exc


def native(arr):
    """Return ``arr`` in native byte order (FITS data are big-endian)."""
    arr = np.asarray(arr)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr
