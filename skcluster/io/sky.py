"""Sky projection: eSASS's SIN offsets in arcsec, and checks of sky positions."""

from __future__ import annotations

import numpy as np

from .._validation import rows_text

__all__ = ["ARCSEC_PER_DEG", "check_sky_position", "sin_offsets_arcsec", "sin_offsets_to_radec"]

ARCSEC_PER_DEG = 3600.0


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
            raise ValueError(
                f"{where}: {name} must be finite and within {rng}; got {rows_text(rows, vals.tolist())}"
            )
