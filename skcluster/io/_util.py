"""Small helpers shared by the readers and writers."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ARCSEC_PER_DEG = 3600.0


def existing_file(path, what="file"):
    """Return ``Path(path)``, raising ``FileNotFoundError`` that names it if absent."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {str(p)!r}")
    return p


@contextmanager
def atomic_output(path, overwrite=False):
    """Yield a temporary path next to ``path``; move it into place on success.

    Nothing is left behind when the body raises, and an existing file is only
    replaced when ``overwrite`` is true (a ``FileExistsError`` names it
    otherwise). The temporary file keeps the suffixes of ``path`` so that
    writers which infer the format from the name (astropy) still work.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} exists; pass overwrite=True (--overwrite on the "
            "command line) to replace it"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {str(parent)!r}")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"output folder is not writable: {str(parent)!r}")
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=parent)
    os.close(fd)
    os.unlink(tmp)  # writers refuse to write over an existing file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def native(arr):
    """Return ``arr`` in native byte order (FITS data are big-endian)."""
    arr = np.asarray(arr)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def sin_offsets_arcsec(ra_deg, dec_deg, ra0_deg, dec0_deg):
    """Offsets of (ra, dec) from (ra0, dec0) in the SIN (orthographic) projection.

    Returns ``(x, y)`` in arcsec with ``x`` along the sky-pixel X axis of
    eROSITA products (increasing toward *decreasing* RA, i.e. west, as for a
    negative CDELT1/TCDLT) and ``y`` toward north. This is the projection of
    eSASS images and event X/Y (``RA---SIN``/``DEC--SIN``, Brunner et al.
    2022, A&A 661, A1), so offsets agree with image pixels.
    """
    ra = np.deg2rad(np.asarray(ra_deg, dtype=np.float64))
    dec = np.deg2rad(np.asarray(dec_deg, dtype=np.float64))
    ra0 = np.deg2rad(ra0_deg)
    dec0 = np.deg2rad(dec0_deg)
    dra = ra - ra0
    cos_dec = np.cos(dec)
    xi = cos_dec * np.sin(dra)  # toward east
    eta = np.sin(dec) * np.cos(dec0) - cos_dec * np.sin(dec0) * np.cos(dra)
    scale = np.rad2deg(1.0) * ARCSEC_PER_DEG
    return -xi * scale, eta * scale


def sin_offsets_to_radec(x_arcsec, y_arcsec, ra0_deg, dec0_deg):
    """Inverse of :func:`sin_offsets_arcsec`: sky-pixel offsets -> (ra, dec) deg."""
    scale = np.deg2rad(1.0) / ARCSEC_PER_DEG
    xi = -np.asarray(x_arcsec, dtype=np.float64) * scale
    eta = np.asarray(y_arcsec, dtype=np.float64) * scale
    dec0 = np.deg2rad(dec0_deg)
    rho2 = xi**2 + eta**2
    if np.any(rho2 > 1):
        raise ValueError("offsets beyond 90 degrees cannot be deprojected (SIN)")
    cosc = np.sqrt(1.0 - rho2)
    dec = np.arcsin(cosc * np.sin(dec0) + eta * np.cos(dec0))
    ra = np.deg2rad(ra0_deg) + np.arctan2(xi, cosc * np.cos(dec0) - eta * np.sin(dec0))
    return np.mod(np.rad2deg(ra), 360.0), np.rad2deg(dec)


def check_sky_position(ra, dec, where="position"):
    """Raise ``ValueError`` naming the rows whose ra/dec are NaN or out of range."""
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    bad_ra = ~np.isfinite(ra) | (ra < -360) | (ra > 360)
    bad_dec = ~np.isfinite(dec) | (dec < -90) | (dec > 90)
    for name, bad, vals, rng in (
        ("ra", bad_ra, ra, "[0, 360) deg"),
        ("dec", bad_dec, dec, "[-90, 90] deg"),
    ):
        if np.any(bad):
            rows = np.flatnonzero(bad)
            shown = ", ".join(f"row {i}: {float(vals[i])!r}" for i in rows[:5])
            more = f" and {rows.size - 5} more" if rows.size > 5 else ""
            raise ValueError(
                f"{where}: {name} must be finite and within {rng}; got {shown}{more}"
            )
