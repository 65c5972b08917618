"""Aperture photometry on counts cubes and event lists.

Cumulative radial profiles around the box centre on a grid of thin rings
(each pixel split among the rings it overlaps, so that apertures smaller
than a pixel stay accurate; exact photon radii for event lists), the area
of a circle clipped to the box, a background annulus and background-
subtracted counts with their Poisson variance (:class:`NetCounts`), and the
PSF correction of aperture counts for a beta = 2/3 profile.

Geometry of docs/architecture.md: pixel (row r, col c) of a box of side S
with N pixels of side p = S / N covers x in [-S/2 + c p, -S/2 + (c+1) p),
y likewise with r; the cluster is at the centre of the box.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import sparse

__all__ = [
    "CHUNK_ELEMENTS",
    "NetCounts",
    "area_in_box",
    "cumulative_profiles_events",
    "cumulative_profiles_images",
    "interp_cumulative",
    "n_rings",
    "psf_aperture_correction",
    "ring_matrix",
    "ring_width_arcsec",
]

#: Image elements per chunk of work (32 MB of float32).
CHUNK_ELEMENTS = 1 << 23


def ring_width_arcsec(pixel_arcsec):
    """Width of the radial rings: a quarter pixel, at most 1 arcsec."""
    return min(pixel_arcsec / 4.0, 1.0)


def n_rings(size_arcsec, dr):
    """Number of rings of width ``dr`` that reach the corners of a box of side ``size_arcsec``."""
    return int(np.ceil(0.5 * size_arcsec * np.sqrt(2.0) / dr)) + 1


@lru_cache(maxsize=4)
def ring_matrix(npix, pixel_arcsec, dr):
    """Sparse (n_rings, npix*npix) float32: fraction of each pixel's area in each ring.

    Pixels are split into s x s sub-pixels (s = ceil(pixel/dr)) whose
    centres are assigned to rings [k dr, (k+1) dr) around the box centre.
    """
    s = max(1, int(np.ceil(pixel_arcsec / dr)))
    half = 0.5 * npix * pixel_arcsec
    sub = (np.arange(s) + 0.5) / s
    coord = (-half + (np.arange(npix)[:, None] + sub[None, :]) * pixel_arcsec).ravel()  # (npix*s,)
    pix = np.repeat(np.arange(npix), s)
    rr = np.hypot(coord[:, None], coord[None, :])  # (row sub, col sub)
    ring = np.floor(rr / dr).astype(np.int64).ravel()
    pix_index = (pix[:, None] * npix + pix[None, :]).ravel()
    m = sparse.coo_matrix(
        (np.full(ring.size, 1.0 / s**2, dtype=np.float32), (ring, pix_index)),
        shape=(n_rings(npix * pixel_arcsec, dr), npix * npix),
    ).tocsr()
    m.sum_duplicates()
    return m


def area_in_box(r, half):
    """Area of a circle of radius r centred in a square of half-side ``half``.

    Same units squared; pi r^2 inside, the square's area beyond its corner,
    and in between pi r^2 less the four circular segments beyond the sides.
    """
    r = np.asarray(r, dtype=np.float64)
    rs = np.maximum(r, half)
    seg = rs**2 * np.arccos(np.minimum(half / rs, 1.0)) - half * np.sqrt(np.maximum(rs**2 - half**2, 0.0))
    area = np.where(r > half, np.pi * r**2 - 4.0 * seg, np.pi * r**2)
    return np.where(r >= half * np.sqrt(2.0), 4.0 * half**2, area)


def interp_cumulative(C, radius, dr, rows=None):
    """Cumulative counts C (m, B, K+1) on radii k dr, at radii (arcsec) of ``rows``: (len(rows), B)."""
    rows = np.arange(C.shape[0]) if rows is None else rows
    kmax = C.shape[2] - 1
    x = np.clip(np.asarray(radius, dtype=np.float64) / dr, 0.0, kmax)
    x = np.broadcast_to(x, rows.shape)
    k = np.minimum(np.floor(x).astype(np.int64), kmax - 1)
    f = (x - k)[:, None]
    lo = C[rows, :, k]
    hi = C[rows, :, k + 1]
    return lo + f * (hi - lo)


def _cumulate(rings):
    C = np.zeros((rings.shape[0], rings.shape[1], rings.shape[2] + 1))
    np.cumsum(rings, axis=2, out=C[:, :, 1:])
    return C


def cumulative_profiles_images(images, sl, pixel_arcsec, dr, step):
    """Counts within radius k dr of a counts cube, (m, B, n_rings + 1) float64, rows ``sl``.

    ``images`` is the (n, B, N, N) cube; NaN, inf or negative pixels raise
    a ``ValueError`` naming the row.
    """
    n_total, B, npix = images.shape[0], images.shape[1], images.shape[2]
    m = len(range(*sl.indices(n_total)))
    D = ring_matrix(npix, pixel_arcsec, dr)
    K = D.shape[0]
    rings = np.empty((m, B, K))
    size = npix * images.shape[3]
    sub = max(1, CHUNK_ELEMENTS // (B * size))  # images per matrix product (32 MB)
    for a in range(0, m, sub):
        b = min(a + sub, m)
        flat = np.asarray(images[sl.start + a:sl.start + b]).reshape((b - a) * B, size)
        if not (np.isfinite(flat.sum(dtype=np.float64)) and flat.min() >= 0):  # cheap check first
            bad = ~np.isfinite(flat) | (flat < 0)
            row = sl.start + a + int(np.flatnonzero(bad.any(axis=1))[0]) // B
            raise ValueError(
                f"{step}: images must be finite, non-negative counts; row {row} "
                "has NaN, inf or negative pixels"
            )
        rings[a:b] = np.asarray(D @ flat.T, dtype=np.float64).T.reshape(b - a, B, K)
    return _cumulate(rings)


def cumulative_profiles_events(events, start, bands_keV, size_arcmin, dr, n_ring, step):
    """Counts within radius k dr from event lists, (m, B, n_ring + 1) float64.

    Photons outside the box or outside every band are dropped; ``start`` is
    the row number of ``events[0]`` for error messages.
    """
    B = len(bands_keV)
    half = 30.0 * size_arcmin
    edges = np.array([b[0] for b in bands_keV] + [bands_keV[-1][1]])
    lows = np.array([b[0] for b in bands_keV])
    highs = np.array([b[1] for b in bands_keV])
    rings = np.zeros((len(events), B, n_ring))
    for i, ev in enumerate(events):
        try:
            x = np.asarray(ev["x_arcsec"], dtype=np.float64)
            y = np.asarray(ev["y_arcsec"], dtype=np.float64)
            e = np.asarray(ev["energy_keV"], dtype=np.float64)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(
                f"{step}: events of row {start + i} are not an EVENT_DTYPE "
                f"array with x_arcsec, y_arcsec, energy_keV ({exc})"
            ) from None
        b = np.clip(np.searchsorted(edges, e, side="right") - 1, 0, B - 1)
        keep = (np.abs(x) < half) & (np.abs(y) < half) & (e >= lows[b]) & (e < highs[b])
        ring = np.floor(np.hypot(x[keep], y[keep]) / dr).astype(np.int64)
        rings[i] = np.bincount(b[keep] * n_ring + ring, minlength=B * n_ring).reshape(B, n_ring)
    return _cumulate(rings)


class NetCounts:
    """Background-subtracted counts within any radius, from cumulative profiles.

    The background per band is the mean surface density of counts in the
    annulus ``annulus_arcsec`` (inner, outer), clipped to the box.

    Parameters
    ----------
    C : ndarray of shape (m, B, K + 1)
        Cumulative counts on radii k ``dr``.
    dr : float
        Ring width, arcsec.
    half_arcsec : float
        Half side of the box, arcsec.
    annulus_arcsec : (float, float)

    Attributes
    ----------
    background : ndarray of shape (m, B)
        Counts per arcsec^2.
    """

    def __init__(self, C, dr, half_arcsec, annulus_arcsec):
        self.C, self.dr, self.half = C, dr, half_arcsec
        m = C.shape[0]
        r_in, r_out = annulus_arcsec
        self.annulus_area = float(area_in_box(r_out, half_arcsec) - area_in_box(r_in, half_arcsec))
        self.annulus_counts = (interp_cumulative(C, np.full(m, r_out), dr)
                               - interp_cumulative(C, np.full(m, r_in), dr))  # (m, B)
        self.background = self.annulus_counts / self.annulus_area
        self.every = np.arange(m)

    def __call__(self, radius, rows=None):
        """Net counts and their Poisson variance per band within ``radius`` (arcsec): two (len(rows), B)."""
        rows = self.every if rows is None else rows
        radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), rows.shape)
        area = area_in_box(radius, self.half)
        tot = interp_cumulative(self.C, radius, self.dr, rows)
        var = tot + (area / self.annulus_area)[:, None] ** 2 * self.annulus_counts[rows]
        return tot - self.background[rows] * area[:, None], var


def psf_aperture_correction(radius, rc, psf_rc):
    """Intrinsic / observed counts within ``radius`` of a beta = 2/3 model.

    The projected beta = 2/3 profile (1 + r^2/rc^2)^-1.5 convolved with a
    King PSF (1 + r^2/a^2)^-1.5 is the same profile with core rc + a (both
    are 2-D Poisson kernels, Fourier transform exp(-2 pi rc k)); the
    fraction within R of such a profile is 1 - (1 + R^2/rc^2)^-1/2. All
    radii in the same units.
    """
    def frac(c):
        return 1.0 - 1.0 / np.sqrt(1.0 + (radius / c) ** 2)

    return frac(rc) / frac(rc + psf_rc)
