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
   ``det_like > det_like_min`` are candidates, brightest first (6 is the
   threshold of the eFEDS main catalogue, Brunner et al. 2022);
4. *position*: the centroid of the photons within the cell (so positions
   carry the statistical error of a real centroid);
5. *point-like test*: a candidate whose counts in the ring from the cell
   radius to ``extent_ring_arcsec`` exceed the PSF's expectation with
   ``-ln P > extent_like_max`` is extended (a cluster core or clump) and is
   not listed; candidates within ``exclude_radius_arcsec`` of the cluster
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

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve
from scipy.special import gammainc

from ..physics.instrument import PSF_ALPHA, PSF_CORE_ARCSEC, king_enclosed_fraction

__all__ = ["POINT_SOURCE_DTYPE", "detect_point_sources", "king_surface_density", "mask_radius_arcsec"]

#: One detected point source: position (arcsec offsets from the cluster
#: position, the axes of the event offsets), PSF-corrected source counts in
#: the detection band, the detection likelihood and the local background
#: density it was detected against (counts / arcsec^2).
POINT_SOURCE_DTYPE = np.dtype([
    ("x_arcsec", "<f4"), ("y_arcsec", "<f4"), ("counts", "<f4"), ("det_like", "<f4"),
    ("bkg_per_arcsec2", "<f4"),
])

#: Largest -ln P reported (P underflows double precision beyond ~745).
_MAX_LIKE = 700.0


def king_surface_density(r_arcsec, rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA):
    """Surface density (per arcsec^2) of a unit-flux King profile at radius r."""
    x = (np.asarray(r_arcsec, dtype=np.float64) / rc_arcsec) ** 2
    return (alpha - 1.0) / (np.pi * rc_arcsec**2) * (1.0 + x) ** (-alpha)


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


def _disc(radius_px, inner_px=None):
    n = int(np.ceil(radius_px))
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    rr = np.hypot(xx, yy)
    k = rr <= radius_px
    if inner_px is not None:
        k &= rr > inner_px
    return k.astype(np.float64)


def _conv(image, kernel):
    return np.rint(fftconvolve(image, kernel, mode="same")).clip(min=0.0)


def _poisson_like(n, mu):
    """-ln P(N >= n | mu), 0 for n = 0."""
    n = np.asarray(n, dtype=np.float64)
    mu = np.maximum(np.asarray(mu, dtype=np.float64), 1e-12)
    p = np.where(n > 0, gammainc(np.maximum(n, 1.0), mu), 1.0)
    return np.minimum(-np.log(np.maximum(p, np.exp(-_MAX_LIKE))), _MAX_LIKE)


def detect_point_sources(x_arcsec, y_arcsec, half_arcsec, bkg_per_arcsec2, rc_arcsec=PSF_CORE_ARCSEC,
                         alpha=PSF_ALPHA, *, det_like_min=8.0, pixel_arcsec=4.0, cell_radius_arcsec=16.0,
                         annulus_arcsec=(48.0, 96.0), extent_ring_arcsec=40.0, extent_like_max=9.0,
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
    det_like_min : float, default=6.0
        Detection threshold on ``det_like`` (the eFEDS main catalogue's
        DET_LIKE > 6, Brunner et al. 2022).
    pixel_arcsec, cell_radius_arcsec : float
        Pixel of the detection image and radius of the source cell.
    annulus_arcsec : (float, float)
        Inner and outer radius of the local-background annulus.
    extent_ring_arcsec, extent_like_max : float
        The point-like test (module notes).
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

    cell_k = _disc(cell_radius_arcsec / pix)
    ann_k = _disc(annulus_arcsec[1] / pix, annulus_arcsec[0] / pix)
    a_cell = cell_k.sum() * pix**2
    cell = _conv(image, cell_k)
    ann_n = _conv(image, ann_k)
    ann_area = _conv(np.ones_like(image), ann_k) * pix**2  # the part of the annulus in the box
    floor = float(bkg_per_arcsec2)
    bkg = np.maximum(ann_n / np.maximum(ann_area, pix**2), floor)
    like = _poisson_like(cell, bkg * a_cell)
    size = 2 * int(np.ceil(cell_radius_arcsec / pix)) + 1
    peak = (cell == ndimage.maximum_filter(cell, size=size, mode="constant")) & (like > det_like_min)
    rr, cc = np.nonzero(peak)
    order = np.argsort(-cell[rr, cc], kind="stable")[:max_sources]
    rr, cc = rr[order], cc[order]

    f_cell = float(king_enclosed_fraction(cell_radius_arcsec, rc_arcsec, alpha))
    f_ring = float(king_enclosed_fraction(extent_ring_arcsec, rc_arcsec, alpha)) - f_cell
    a_ring = np.pi * (extent_ring_arcsec**2 - cell_radius_arcsec**2)
    accepted = []  # (x, y, total source counts)
    out = []
    for r_i, c_i in zip(rr, cc):
        px, py = -half + (c_i + 0.5) * pix, -half + (r_i + 0.5) * pix
        d = np.hypot(x - px, y - py)
        near = d < cell_radius_arcsec
        if not np.any(near):
            continue
        sx, sy = float(x[near].mean()), float(y[near].mean())  # centroid
        if np.hypot(sx, sy) < exclude_radius_arcsec:
            continue
        d = np.hypot(x - sx, y - sy)
        n_cell = int(np.sum(d < cell_radius_arcsec))
        n_ring = int(np.sum((d >= cell_radius_arcsec) & (d < extent_ring_arcsec)))
        b = float(bkg[r_i, c_i])
        wings_cell = wings_ring = 0.0
        for ax, ay, s in accepted:
            dd = np.hypot(sx - ax, sy - ay)
            wings_cell += s * king_surface_density(dd, rc_arcsec, alpha) * a_cell
            wings_ring += s * king_surface_density(dd, rc_arcsec, alpha) * a_ring
        mu_cell = b * a_cell + wings_cell
        det_like = float(_poisson_like(n_cell, mu_cell))
        if det_like <= det_like_min:
            continue
        total = max(n_cell - mu_cell, 0.0) / f_cell
        mu_ring = b * a_ring + wings_ring + total * f_ring
        if float(_poisson_like(n_ring, mu_ring)) > extent_like_max:
            continue  # more photons around it than a point source spreads: extended
        accepted.append((sx, sy, total))
        out.append((sx, sy, total, det_like, b))
    return np.array(out, dtype=POINT_SOURCE_DTYPE)
