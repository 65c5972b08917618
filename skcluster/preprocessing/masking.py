"""Masking detected point sources in event lists and images (:class:`PointSourceMasker`).

Every method of the package sees the same point sources removed: those of a
*detected* list (the mock's own detection,
:func:`skcluster.datasets.point_sources.detect_point_sources`, or a published
point-source catalogue on real data), never the simulation's labels of which
photons came from AGN.

The events within a disc around each source are removed. The disc's radius
grows with the source's brightness
(:func:`~skcluster.datasets.point_sources.mask_radius_arcsec`: where the PSF
surface brightness falls to a fraction of the local background). With
``fill="background"`` the hole is refilled with a Poisson draw of photons at
the local surface density measured in a ring around the disc (outside every
mask), positions uniform in the disc and energies resampled from that ring's
photons, so that the image keeps the cluster's and the sky's level there
rather than a hole that a network or an aperture would read as missing flux.
With ``fill="none"`` the events are only removed; the ``masked_fraction``
column says how much of the box was masked either way.

Cut-out images (:class:`~skcluster.preprocessing.ImageCutout`, real data)
get the same masks (:func:`mask_images`): a pixel that a disc covers in part
keeps its counts times the uncovered fraction, and with
``fill="background"`` gains a Poisson draw of the local level (the ring's
counts per unit area, per band, times the covered area). That is what the
event fill gives in distribution: the fill photons are a Poisson process of
the ring's density in the discs, so a pixel's share is Poisson with mean
density times covered area.
"""

from __future__ import annotations

import zlib

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._validation import check_positive_number
from ..datasets.point_sources import in_any_disc, mask_radius_arcsec
from ..io.events import ORIGIN_UNKNOWN, make_events
from ..physics.instrument import PSF_ALPHA, PSF_CORE_ARCSEC
from ..sample import as_sample
from ._base import SampleInputMixin

__all__ = ["PointSourceMasker", "mask_events", "mask_images"]

_FILLS = ("background", "none")


def _discs(sources, half_arcsec, total_counts, rc_arcsec, alpha, mask_fraction, min_radius_arcsec,
           max_radius_arcsec):
    """Centres and radii (arcsec) of the masks of the sources that reach into the box.

    The masks are sized against the detection's background level where the
    sources carry it, else (a published catalogue) against the mean density
    of the box, ``total_counts`` over its area.
    """
    names = sources.dtype.names or ()
    for f in ("x_arcsec", "y_arcsec"):
        if f not in names:
            raise ValueError(f"point sources need a field {f!r}; got fields {names}")
    cx = np.asarray(sources["x_arcsec"], dtype=np.float64)
    cy = np.asarray(sources["y_arcsec"], dtype=np.float64)
    keep = (np.abs(cx) < half_arcsec + max_radius_arcsec) & (np.abs(cy) < half_arcsec + max_radius_arcsec)
    sources, cx, cy = sources[keep], cx[keep], cy[keep]
    mean_level = max(float(total_counts), 1.0) / (2.0 * half_arcsec) ** 2
    bkg = np.full(cx.size, mean_level)
    if "bkg_per_arcsec2" in names:
        given = np.asarray(sources["bkg_per_arcsec2"], dtype=np.float64)
        bkg = np.where(np.isfinite(given) & (given > 0), given, mean_level)
    if "counts" in names:
        radius = mask_radius_arcsec(sources["counts"], bkg, rc_arcsec, alpha, mask_fraction,
                                    min_radius_arcsec, max_radius_arcsec)
    else:
        radius = np.full(cx.size, float(min_radius_arcsec))
    return cx, cy, np.asarray(radius, dtype=np.float64)


def mask_events(events, sources, half_arcsec, *, fill="background", ring_arcsec=60.0,
                rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA, mask_fraction=0.25,
                min_radius_arcsec=20.0, max_radius_arcsec=120.0, rng=None):
    """Remove (and optionally refill) the events around point sources of one cluster.

    Parameters
    ----------
    events : ndarray with fields ``x_arcsec``, ``y_arcsec``, ``energy_keV``
        The cluster's events (offsets from the cluster position).
    sources : ndarray with fields ``x_arcsec``, ``y_arcsec`` (and optionally
        ``counts`` and ``bkg_per_arcsec2``)
        The detected point sources, offsets in arcsec
        (:data:`skcluster.io.POINT_SOURCE_DTYPE`). Without ``counts`` every
        mask has ``min_radius_arcsec``; without a finite
        ``bkg_per_arcsec2`` the masks are sized against the box's mean
        event density.
    half_arcsec : float
        Half the side of the box (events and fill photons stay within it).
    fill : {"background", "none"}
        Refill the masked discs with local-background photons, or not.
    ring_arcsec : float
        Width of the ring around each disc whose photons give the local
        density and spectrum of the fill.
    rc_arcsec, alpha, mask_fraction, min_radius_arcsec, max_radius_arcsec
        The mask radius (:func:`~skcluster.datasets.point_sources.mask_radius_arcsec`).
    rng : numpy.random.Generator

    Returns
    -------
    events : ndarray of the input dtype
    masked_fraction : float
        Fraction of the box area within a mask (Monte Carlo, 1% precision).
    """
    rng = np.random.default_rng() if rng is None else rng
    x = events["x_arcsec"].astype(np.float64)
    y = events["y_arcsec"].astype(np.float64)
    cx, cy, radius = _discs(sources, half_arcsec, x.size, rc_arcsec, alpha, mask_fraction,
                            min_radius_arcsec, max_radius_arcsec)
    if cx.size == 0:
        return events, 0.0
    masked = in_any_disc(x, y, cx, cy, radius)
    kept = events[~masked]
    probe = rng.uniform(-half_arcsec, half_arcsec, size=(4096, 2))
    masked_fraction = float(in_any_disc(probe[:, 0], probe[:, 1], cx, cy, radius).mean())
    if fill == "none" or not np.any(masked) and masked_fraction == 0.0:
        return kept, masked_fraction
    kx, ky = x[~masked], y[~masked]
    parts = [kept]
    for k in range(cx.size):
        d = np.hypot(kx - cx[k], ky - cy[k])
        ring = (d >= radius[k]) & (d < radius[k] + ring_arcsec)
        # area of the ring inside the box and outside all masks (Monte Carlo)
        rr = np.sqrt(rng.uniform(radius[k] ** 2, (radius[k] + ring_arcsec) ** 2, 2048))
        phi = rng.uniform(0.0, 2.0 * np.pi, rr.size)
        px, py = cx[k] + rr * np.cos(phi), cy[k] + rr * np.sin(phi)
        ok = (np.abs(px) < half_arcsec) & (np.abs(py) < half_arcsec) & ~in_any_disc(px, py, cx, cy, radius)
        ring_area = np.pi * ((radius[k] + ring_arcsec) ** 2 - radius[k] ** 2) * ok.mean()
        n_ring = int(ring.sum())
        if n_ring == 0 or ring_area <= 0:
            continue
        # fill photons: uniform in the disc, inside the box, outside the earlier discs
        n_fill = rng.poisson(n_ring / ring_area * np.pi * radius[k] ** 2)
        rr = radius[k] * np.sqrt(rng.random(n_fill))
        phi = rng.uniform(0.0, 2.0 * np.pi, n_fill)
        fx, fy = cx[k] + rr * np.cos(phi), cy[k] + rr * np.sin(phi)
        ok = (np.abs(fx) < half_arcsec) & (np.abs(fy) < half_arcsec)
        ok &= ~in_any_disc(fx, fy, cx[:k], cy[:k], radius[:k])
        energies = kept["energy_keV"][ring][rng.integers(0, n_ring, int(ok.sum()))]
        fill_events = make_events(fx[ok], fy[ok], energies, ORIGIN_UNKNOWN)
        parts.append(fill_events.astype(events.dtype, copy=False) if fill_events.dtype != events.dtype
                     else fill_events)
    return np.concatenate(parts), masked_fraction


def _block_mean(a, o):
    """Mean over o x o blocks of a (H*o, W*o) array -> (H, W)."""
    h, w = a.shape[0] // o, a.shape[1] // o
    return a.reshape(h, o, w, o).mean(axis=(1, 3))


def mask_images(images, sources, size_arcmin, *, fill="background", ring_arcsec=60.0,
                rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA, mask_fraction=0.25,
                min_radius_arcsec=20.0, max_radius_arcsec=120.0, oversample=4, rng=None):
    """Mask the point sources in one cluster's counts cube (module notes).

    Parameters
    ----------
    images : ndarray of shape (n_bands, H, W)
        Counts of the box: rows along y (north), columns along x (toward
        decreasing RA), the cluster at the centre, as the event offsets.
    sources : ndarray with fields ``x_arcsec``, ``y_arcsec`` (and optionally
        ``counts`` and ``bkg_per_arcsec2``)
        As for :func:`mask_events`.
    size_arcmin : float
        Side of the box, arcmin.
    fill : {"background", "none"}
        Refill the masked area with a Poisson draw of the local level, or
        only remove the covered part of each pixel's counts.
    ring_arcsec, rc_arcsec, alpha, mask_fraction, min_radius_arcsec, max_radius_arcsec
        As for :func:`mask_events`.
    oversample : int, default=4
        Sub-pixels per pixel side used to measure the part of each pixel
        inside a disc or a ring.
    rng : numpy.random.Generator

    Returns
    -------
    images : ndarray of float32, shape (n_bands, H, W)
    masked_fraction : float
        Fraction of the box area within a mask.
    """
    rng = np.random.default_rng() if rng is None else rng
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (n_bands, H, W), got shape {images.shape}")
    _, h, w = images.shape
    half = 30.0 * float(size_arcmin)
    cx, cy, radius = _discs(sources, half, float(images.sum(dtype=np.float64)), rc_arcsec, alpha,
                            mask_fraction, min_radius_arcsec, max_radius_arcsec)
    if cx.size == 0:
        return images.astype(np.float32, copy=False), 0.0
    o = int(oversample)
    px, py = 2.0 * half / w, 2.0 * half / h
    xs = -half + (np.arange(w * o) + 0.5) * px / o
    ys = -half + (np.arange(h * o) + 0.5) * py / o
    sx, sy = np.meshgrid(xs, ys)
    inside = in_any_disc(sx, sy, cx, cy, radius)
    covered = _block_mean(inside.astype(np.float64), o)
    kept = images.astype(np.float64) * (1.0 - covered)
    masked_fraction = float(covered.mean())
    if fill == "none" or masked_fraction == 0.0:
        return kept.astype(np.float32), masked_fraction
    expected = np.zeros(images.shape)
    earlier = np.zeros(sx.shape, dtype=bool)
    for k in range(cx.size):
        d2 = (sx - cx[k]) ** 2 + (sy - cy[k]) ** 2
        ring = (d2 >= radius[k] ** 2) & (d2 < (radius[k] + ring_arcsec) ** 2) & ~inside
        disc = (d2 < radius[k] ** 2) & ~earlier
        earlier |= disc
        ring_w = _block_mean(ring.astype(np.float64), o)  # part of each pixel in the ring
        area = ring_w.sum() * px * py
        if area <= 0:
            continue
        # counts per arcsec^2 in each band, from the part of each pixel in the ring
        density = (images * ring_w).sum(axis=(1, 2), dtype=np.float64) / area
        expected += density[:, None, None] * _block_mean(disc.astype(np.float64), o)[None] * px * py
    return (kept + rng.poisson(expected)).astype(np.float32), masked_fraction


class PointSourceMasker(SampleInputMixin, TransformerMixin, BaseEstimator):
    """Mask detected point sources in each cluster's events or cut-out images.

    Reads the ``events`` column (or, without one, the ``images`` counts
    cube) and a column of detected point sources (``sources``: one
    structured array per cluster, fields ``x_arcsec``, ``y_arcsec`` offsets
    from the cluster position, and optionally ``counts`` and
    ``bkg_per_arcsec2`` as the mock's detection writes them); replaces
    ``events`` (or ``images``) and adds ``masked_fraction`` (fraction of the
    box area masked). Place it before :class:`BandBinner`, or after
    :class:`ImageCutout` for real images (:func:`mask_images`).

    Parameters
    ----------
    size_arcmin : float, default=20.0
        Side of the event box, arcmin (as the binner's). For images the box
        of the sample's ``meta["size_arcmin"]`` is used where it is set.
    sources : str, default="point_sources"
        The column of detected point sources.
    fill : {"background", "none"}, default="background"
        Refill masked discs with photons at the local level (module notes)
        or only remove the events.
    mask_fraction : float, default=0.25
        A source is masked out to where its PSF surface brightness falls to
        this fraction of the local background.
    min_radius_arcsec, max_radius_arcsec : float, default=20.0, 120.0
        Floor and ceiling of the mask radius, arcsec (20": beyond the
        survey PSF's half-energy radius, HEW ~ 30", Merloni et al. 2024).
    psf_rc_arcsec, psf_alpha : float
        King PSF of the survey (Merloni et al. 2024).
    random_state : int or None, default=0
        Seed of the fill; each cluster's draw also depends on its events or
        image (a checksum), not on its row or batch, so streaming gives the
        same result as one call.
    """

    _requires_fit = False

    def __init__(self, size_arcmin=20.0, sources="point_sources", fill="background", mask_fraction=0.25,
                 min_radius_arcsec=20.0, max_radius_arcsec=120.0, psf_rc_arcsec=PSF_CORE_ARCSEC,
                 psf_alpha=PSF_ALPHA, random_state=0):
        self.size_arcmin = size_arcmin
        self.sources = sources
        self.fill = fill
        self.mask_fraction = mask_fraction
        self.min_radius_arcsec = min_radius_arcsec
        self.max_radius_arcsec = max_radius_arcsec
        self.psf_rc_arcsec = psf_rc_arcsec
        self.psf_alpha = psf_alpha
        self.random_state = random_state

    def _check(self):
        step = type(self).__name__
        check_positive_number(self.size_arcmin, "size_arcmin", step)
        for name in ("mask_fraction", "min_radius_arcsec", "max_radius_arcsec", "psf_rc_arcsec"):
            check_positive_number(getattr(self, name), name, step)
        if self.fill not in _FILLS:
            raise ValueError(f"{step}: fill must be one of {_FILLS}, got {self.fill!r}")
        if self.max_radius_arcsec < self.min_radius_arcsec:
            raise ValueError(f"{step}: max_radius_arcsec={self.max_radius_arcsec!r} is below "
                             f"min_radius_arcsec={self.min_radius_arcsec!r}")
        if not isinstance(self.sources, str):
            raise ValueError(f"{step}: sources must be a column name, got {self.sources!r}")
        if self.psf_alpha <= 1:
            raise ValueError(f"{step}: psf_alpha must exceed 1, got {self.psf_alpha!r}")

    def _data_column(self, X, step):
        """``"events"``, else ``"images"`` (a counts cube); the sources column is required too."""
        column = "events" if "events" in X or "images" not in X else "images"
        if self.sources not in X:
            raise KeyError(f"{step}: the sample has no {self.sources!r} column (the detected point sources to "
                           f"mask); columns are {X.columns}. Add one (skcluster.io.point_sources_around), or "
                           "build the model without the mask: make_mass_pipeline(mask_point_sources=False)")
        X.require(column, self.sources, step=step)
        if column == "images":
            unit = X.meta.get("image_unit", "counts")
            shape = np.shape(X["images"])
            if unit != "counts" or len(shape) != 4:
                raise ValueError(f"{step}: images must be a counts cube (n, bands, H, W) with "
                                 f"image_unit 'counts'; got shape {shape}, image_unit {unit!r}")
        return column

    def fit(self, X, y=None):
        """Check the parameters (nothing is learned)."""
        self._check()
        step = type(self).__name__
        X = as_sample(X, step=step)
        self._data_column(X, step)
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        """Events (or images) with the point sources masked, and ``masked_fraction``."""
        self._check()
        step = type(self).__name__
        X = as_sample(X, step=step)
        column = self._data_column(X, step)
        data_in, sources_in = X[column], X[self.sources]
        if column == "events":
            out = np.empty(len(data_in), dtype=object)
            size = float(self.size_arcmin)
        else:
            out = np.array(data_in, dtype=np.float32, copy=True)
            size = float(X.meta.get("size_arcmin") or self.size_arcmin)
        frac = np.zeros(len(data_in), dtype=np.float32)
        base = 0 if self.random_state is None else int(self.random_state)
        params = dict(fill=self.fill, rc_arcsec=self.psf_rc_arcsec, alpha=self.psf_alpha,
                      mask_fraction=self.mask_fraction, min_radius_arcsec=self.min_radius_arcsec,
                      max_radius_arcsec=self.max_radius_arcsec)
        for i, (data, src) in enumerate(zip(data_in, sources_in)):
            if src is None or len(src) == 0:
                out[i] = data
                continue
            if not hasattr(src, "dtype") or src.dtype.names is None:
                raise ValueError(f"{step}: row {i} of column {self.sources!r} must be a structured "
                                 f"array of sources, got {type(src).__name__}")
            seed = [base, len(data), zlib.crc32(np.ascontiguousarray(data).tobytes())]
            rng = np.random.default_rng(seed if self.random_state is not None else None)
            if column == "events":
                out[i], frac[i] = mask_events(data, src, 30.0 * size, rng=rng, **params)
            else:
                out[i], frac[i] = mask_images(data, src, size, rng=rng, **params)
        return X.assign(**{column: out}, masked_fraction=frac)
