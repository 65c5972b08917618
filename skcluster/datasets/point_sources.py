"""Point-source detection on a cluster's photons: the list every method masks.

Real pipelines mask the point sources of a *detected* catalogue (eSASS
``erbox`` + ``ermldet``; Brunner et al. 2022, A&A 661, A1, for eFEDS;
Merloni et al. 2024, A&A 682, A34, for eRASS1), not the simulation's
knowledge of which photons came from AGN. :func:`detect_point_sources` is a
simplified stand-in for that chain, run on the simulated photons of one box:

1. *sliding cell*: detection-band photons binned in ``pixel_arcsec`` pixels
   are summed in a circular cell of radius ``cell_radius_arcsec`` (16": about
   the half-energy radius of the survey PSF, HEW ~ 30", Merloni et al.
   2024) around every pixel;
2. *local background*: the mean surface density in an annulus
   (``annulus_arcsec``, 48-96") around the cell, never below the background
   map's level ``bkg_per_arcsec2``; the annulus holds the cluster's own
   extended emission, so a point source must stand out above the cluster as
   well as above the sky;
3. *likelihood*: ``det_like = -ln P(N >= n | mu)`` for the ``n`` counts of
   the cell against ``mu`` expected from the local background plus the PSF
   wings of brighter sources already accepted (the Poisson tail is the
   likelihood form of ``erbox``'s box detection); local maxima with
   ``det_like > det_like_min`` are candidates, brightest first;
4. *position*: the centroid of the photons within the cell (so positions
   carry the statistical error of a real centroid);
5. *point-like test*: around the centroid, a point source (PSF) over a
   flat level is fitted to the counts of the cell and of the ring out to
   ``extent_ring_arcsec`` (two equations, two unknowns); the level, if
   above the annulus background, replaces it in the likelihood, so that
   extended emission (a cluster core or clump), which raises the ring with
   the cell, is not listed; nor is a candidate whose ring holds more
   counts than the PSF spreads over the annulus level (``-ln P >
   extent_like_max``); candidates within ``exclude_radius_arcsec`` of the cluster
   position are the cluster's own detection (the eROSITA catalogues list a
   source either as extended or as point-like, Brunner et al. 2022), not a
   point source.

Missed faint sources and chance detections follow from the photon noise;
their rates on the mock are measured by ``benchmarks/validate_mock.py``
rather than put in by hand.

:func:`mask_radius_arcsec` gives the radius out to which a detected
source is masked: where its PSF surface brightness falls to
``mask_fraction`` times the local background, between a floor and a
ceiling.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage
from scipy.special import gammainc

from ..io.point_sources import POINT_SOURCE_DTYPE
from ..physics.instrument import PSF_ALPHA, PSF_CORE_ARCSEC, king_enclosed_fraction

__all__ = ["POINT_SOURCE_DTYPE", "detect_point_sources", "in_any_disc", "king_surface_density",
           "mask_radius_arcsec"]


#: Largest -ln P reported (P underflows double precision beyond ~745).
_MAX_LIKE = 700.0


def king_surface_density(r_arcsec, rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA):
    """Surface density (per arcsec^2) of a unit-flux King profile at radius r."""
    x = (np.asarray(r_arcsec, dtype=np.float64) / rc_arcsec) ** 2
    return (alpha - 1.0) / (np.pi * rc_arcsec**2) * (1.0 + x) ** (-alpha)


def in_any_disc(x, y, cx, cy, r):
    """Whether each point (x, y) lies strictly inside any disc (cx, cy, r); arcsec."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    inside = np.zeros(x.shape, bool)
    for x0, y0, r0 in zip(np.ravel(cx), np.ravel(cy), np.ravel(r)):
        inside |= (x - x0) ** 2 + (y - y0) ** 2 < r0 * r0
    return inside


def mask_radius_arcsec(counts, bkg_per_arcsec2, rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA,
                       mask_fraction=0.25, min_radius_arcsec=20.0, max_radius_arcsec=120.0):
    """Radius (arcsec) within which a point source of ``counts`` photons is masked.

    The radius where the source's PSF surface brightness equals
    ``mask_fraction`` times the background density, clipped to
    [``min_radius_arcsec``, ``max_radius_arcsec``]: brighter sources get
    larger masks, as in the eSASS source masks (Brunner et al. 2022).
    """
    counts = np.asarray(counts, dtype=np.float64)
    bkg = np.maximum(np.asarray(bkg_per_arcsec2, dtype=np.float64), 1e-12)
    peak = counts * king_surface_density(0.0, rc_arcsec, alpha)
    ratio = np.maximum(peak / (mask_fraction * bkg), 1.0)
    r = rc_arcsec * np.sqrt(np.maximum(ratio ** (1.0 / alpha) - 1.0, 0.0))
    return np.clip(r, min_radius_arcsec, max_radius_arcsec)


def _disc(radius_px, inner_px=None, n=None):
    """A disc (or annulus) of pixel centres within ``radius_px``, on a (2n+1)^2 grid."""
    n = int(np.ceil(radius_px)) if n is None else n
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    rr = np.hypot(xx, yy)
    k = rr <= radius_px
    if inner_px is not None:
        k &= rr > inner_px
    return k.astype(np.float64)


@lru_cache(maxsize=8)
def _filters(npix, pix, cell_radius, ann_inner, ann_outer):
    """FFTs of the cell and annulus kernels for an npix^2 image, and the
    in-box area of the annulus around every pixel (arcsec^2): cached, since
    every box of a survey has the same geometry."""
    n = int(np.ceil(ann_outer / pix))
    shape = (npix + 2 * n,) * 2
    cell_k = _disc(cell_radius / pix, n=n)
    ann_k = _disc(ann_outer / pix, ann_inner / pix, n=n)
    fc, fa = sp_fft.rfft2(cell_k, shape), sp_fft.rfft2(ann_k, shape)
    ann_area = _apply(np.ones((npix, npix)), fa, shape, n) * pix**2
    return shape, n, fc, fa, float(cell_k.sum() * pix**2), ann_area


def _apply(image, kernel_fft, shape, n):
    """``image`` convolved with a kernel ('same' size), rounded to whole counts."""
    full = sp_fft.irfft2(sp_fft.rfft2(image, shape) * kernel_fft, shape)
    npix = image.shape[0]
    return np.rint(full[n:n + npix, n:n + npix]).clip(min=0.0)


def _poisson_like(n, mu):
    """-ln P(N >= n | mu), 0 for n = 0."""
    n = np.asarray(n, dtype=np.float64)
    mu = np.maximum(np.asarray(mu, dtype=np.float64), 1e-12)
    p = np.where(n > 0, gammainc(np.maximum(n, 1.0), mu), 1.0)
    return np.minimum(-np.log(np.maximum(p, np.exp(-_MAX_LIKE))), _MAX_LIKE)


def detect_point_sources(x_arcsec, y_arcsec, half_arcsec, bkg_per_arcsec2, rc_arcsec=PSF_CORE_ARCSEC,
                         alpha=PSF_ALPHA, *, det_like_min=7.0, pixel_arcsec=8.0, cell_radius_arcsec=16.0,
                         annulus_arcsec=(48.0, 96.0), extent_ring_arcsec=40.0, extent_like_max=6.0,
                         exclude_radius_arcsec=30.0, max_sources=500):
    """Detect point sources among the detection-band photons of one box.

    Parameters
    ----------
    x_arcsec, y_arcsec : array-like of shape (n_photons,)
        Offsets of the detection-band photons from the cluster position,
        arcsec (photons outside the box are ignored).
    half_arcsec : float
        Half the side of the box, arcsec.
    bkg_per_arcsec2 : float
        Background-map level (diffuse background and unresolved sources),
        counts per arcsec^2 in the detection band: the floor of the local
        background.
    rc_arcsec, alpha : float
        King PSF core radius (arcsec) and slope.
    det_like_min : float, default=7.0
        Detection threshold on ``det_like``. This cell statistic is not
        ermldet's PSF-fit DET_LIKE (whose catalogue threshold is 6, Brunner
        et al. 2022); with 8" pixels, 7 gives ~13 chance detections per
        deg^2 on source-free eFEDS-depth fields and 50% completeness at ~12
        source counts (measured on simulated fields like those of
        ``tests/test_point_sources.py``), about the depth of the eFEDS
        point-source catalogue (flux limit ~6.5e-15 erg/s/cm^2 in 0.5-2 keV,
        Brunner et al. 2022, i.e. ~9 counts at the median eFEDS exposure).
    pixel_arcsec, cell_radius_arcsec : float, default=8.0, 16.0
        Pixel of the detection image (8": 4x faster than the 4" of evtool
        images, with positions from the photons' centroid either way) and
        radius of the source cell.
    annulus_arcsec : (float, float)
        Inner and outer radius of the local-background annulus.
    extent_ring_arcsec, extent_like_max : float
        Outer radius of the ring of the point-like test, and the largest
        -ln P of the ring's counts under a point source over the annulus
        level (module notes).
    exclude_radius_arcsec : float
        Candidates this close to the cluster position are the cluster's own
        detection.
    max_sources : int
        At most this many candidates are examined (brightest first).

    Returns
    -------
    ndarray of :data:`POINT_SOURCE_DTYPE`
        The detected sources, brightest (in cell counts) first.
    """
    x = np.asarray(x_arcsec, dtype=np.float64).ravel()
    y = np.asarray(y_arcsec, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x_arcsec and y_arcsec differ in length: {x.size} vs {y.size}")
    half = float(half_arcsec)
    inside = (np.abs(x) < half) & (np.abs(y) < half)
    x, y = x[inside], y[inside]
    npix = max(1, int(round(2.0 * half / pixel_arcsec)))
    pix = 2.0 * half / npix
    if x.size == 0:
        return np.zeros(0, POINT_SOURCE_DTYPE)
    col = np.minimum(((x + half) / pix).astype(np.intp), npix - 1)
    row = np.minimum(((y + half) / pix).astype(np.intp), npix - 1)
    image = np.bincount(row * npix + col, minlength=npix * npix).reshape(npix, npix).astype(np.float64)

    shape, n, fc, fa, a_cell, ann_area = _filters(npix, pix, float(cell_radius_arcsec),
                                                  float(annulus_arcsec[0]), float(annulus_arcsec[1]))
    f_img = sp_fft.rfft2(image, shape)
    cell = np.rint(sp_fft.irfft2(f_img * fc, shape)[n:n + npix, n:n + npix]).clip(min=0.0)
    floor = float(bkg_per_arcsec2)
    # the local background is never below the floor, so a cell with fewer
    # counts than pass against the floor cannot pass: skip the rest
    n_min = 1
    while _poisson_like(n_min, floor * a_cell) <= det_like_min:
        n_min *= 2
    lo = n_min // 2
    while n_min - lo > 1:
        mid = (lo + n_min) // 2
        lo, n_min = (mid, n_min) if _poisson_like(mid, floor * a_cell) <= det_like_min else (lo, mid)
    size = 2 * int(np.ceil(cell_radius_arcsec / pix)) + 1
    peak = (cell >= n_min) & (cell == ndimage.maximum_filter(cell, size=size, mode="constant"))
    rr, cc = np.nonzero(peak)
    ann_n = np.rint(sp_fft.irfft2(f_img * fa, shape)[n:n + npix, n:n + npix]).clip(min=0.0)
    bkg = np.maximum(ann_n / np.maximum(ann_area, pix**2), floor)
    like = _poisson_like(cell[rr, cc], bkg[rr, cc] * a_cell)
    rr, cc = rr[like > det_like_min], cc[like > det_like_min]
    order = np.argsort(-cell[rr, cc], kind="stable")[:max_sources]
    rr, cc = rr[order], cc[order]

    a_disc = np.pi * cell_radius_arcsec**2  # photons are counted within the exact circle below
    f_cell = float(king_enclosed_fraction(cell_radius_arcsec, rc_arcsec, alpha))
    f_ring = float(king_enclosed_fraction(extent_ring_arcsec, rc_arcsec, alpha)) - f_cell
    a_ring = np.pi * (extent_ring_arcsec**2 - cell_radius_arcsec**2)
    order_x = np.argsort(x, kind="stable")
    xs_, ys_ = x[order_x], y[order_x]
    acc_x, acc_y, acc_s = [], [], []  # accepted sources: position, total source counts
    out = []
    for r_i, c_i in zip(rr, cc):
        px, py = -half + (c_i + 0.5) * pix, -half + (r_i + 0.5) * pix
        # the photons within extent_ring (+ a cell for the centroid shift) of
        # the pixel: a slice of the x-sorted photons, then a cut in y
        reach = extent_ring_arcsec + cell_radius_arcsec
        j0, j1 = np.searchsorted(xs_, [px - reach, px + reach])
        lx, ly = xs_[j0:j1], ys_[j0:j1]
        sel = np.abs(ly - py) < reach
        lx, ly = lx[sel], ly[sel]
        near = (lx - px) ** 2 + (ly - py) ** 2 < cell_radius_arcsec**2
        if not np.any(near):
            continue
        sx, sy = float(lx[near].mean()), float(ly[near].mean())  # centroid
        if np.hypot(sx, sy) < exclude_radius_arcsec:
            continue
        d2 = (lx - sx) ** 2 + (ly - sy) ** 2
        n_cell = int(np.sum(d2 < cell_radius_arcsec**2))
        n_ring = int(np.sum((d2 >= cell_radius_arcsec**2) & (d2 < extent_ring_arcsec**2)))
        if acc_s:
            dens = np.dot(acc_s, king_surface_density(np.hypot(sx - np.asarray(acc_x), sy - np.asarray(acc_y)),
                                                      rc_arcsec, alpha))
        else:
            dens = 0.0
        # local fit of a point source over a flat level to the cell and the
        # ring: n_cell = B a_disc + T f_cell, n_ring = B a_ring + T f_ring.
        # Extended emission raises B with the cell, so it is not significant.
        b_ring = (n_ring - n_cell * f_ring / f_cell) / (a_ring - a_disc * f_ring / f_cell)
        b = max(float(bkg[r_i, c_i]), b_ring - dens)
        mu_cell = (b + dens) * a_disc
        det_like = float(_poisson_like(n_cell, mu_cell))
        if det_like <= det_like_min:
            continue
        total = max(n_cell - mu_cell, 0.0) / f_cell
        # and the ring must not hold more than the PSF spreads over the
        # annulus level: a peaked extended source fails one of the two
        b_out = float(bkg[r_i, c_i])
        t_out = max(n_cell - (b_out + dens) * a_disc, 0.0) / f_cell
        if float(_poisson_like(n_ring, (b_out + dens) * a_ring + t_out * f_ring)) > extent_like_max:
            continue
        acc_x.append(sx)
        acc_y.append(sy)
        acc_s.append(total)
        out.append((sx, sy, total, det_like, b))
    return np.array(out, dtype=POINT_SOURCE_DTYPE)
