"""Summaries of attribution (or count) maps by radius in units of r500 and by energy band."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .._validation import check_positive_number, rows_text

__all__ = ["DEFAULT_R500_BINS", "band_importance", "core_weight", "pixel_radius", "radial_profile"]

#: Default radial bins, in units of r500 (theta500 on the sky). The inner
#: edge 0.25 r500 keeps at least the four central 24-arcsec pixels in the
#: first bin for theta500 >= 2.8 pixels (1.1 arcmin), i.e. for ~97% of the
#: eFEDS-like mock, whose median theta500 is 2.4 arcmin (README, mock
#: validation); the cool-core region (~0.15 r500, Pratt et al. 2009) is
#: smaller than one pixel for most clusters at this resolution.
DEFAULT_R500_BINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


def pixel_radius(shape):
    """Distance of each pixel centre from the box centre, in pixels.

    The cluster sits at the centre of the box (docs/architecture.md): for
    an even number of pixels, the corner shared by the four central pixels.

    Parameters
    ----------
    shape : (int, int)
        (H, W).

    Returns
    -------
    numpy.ndarray of float64, shape (H, W)
    """
    h, w = (int(s) for s in shape)
    yy = np.arange(h) + 0.5 - h / 2.0
    xx = np.arange(w) + 0.5 - w / 2.0
    return np.hypot(yy[:, None], xx[None, :])


def _spatial(maps, name):
    maps = np.asarray(maps)
    if maps.ndim == 4:
        maps = maps.sum(axis=1, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"{name} must have shape (n, H, W) or (n, B, H, W) (summed over B), got {maps.shape}")
    return maps


def _theta500_pixels(theta500_arcmin, pixel_arcsec, n):
    t = np.asarray(theta500_arcmin, dtype=np.float64)
    if t.ndim == 0:
        t = np.full(n, float(t))
    if t.shape != (n,):
        raise ValueError(f"theta500_arcmin must have one value per cluster ({n}), got shape {t.shape}")
    bad = ~np.isfinite(t) | (t <= 0)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"theta500_arcmin must be finite and > 0 arcmin; {rows.size} value(s) are not: "
            f"{rows_text(rows, t.tolist())}"
        )
    return 60.0 * t / check_positive_number(pixel_arcsec, "pixel_arcsec", unit="arcsec")


def _check_bins(bins):
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0) \
            or edges[0] < 0:
        raise ValueError(f"bins must be increasing, non-negative edges in units of r500, got {bins!r}")
    return edges


def radial_profile(maps, theta500_arcmin, pixel_arcsec, bins=DEFAULT_R500_BINS, *, normalize=True):
    """Azimuthally averaged profiles in units of r500, per cluster and stacked.

    Each cluster's profile is the mean map value of the pixels whose centres
    lie in each annulus r/r500 in [edge_k, edge_k+1) (r500 projected:
    theta500 on the sky). Stacking averages the clusters' profiles, so
    every cluster counts once whatever its brightness.

    Parameters
    ----------
    maps : array-like of shape (n, H, W) or (n, B, H, W)
        Attributions (take the absolute value first for importance) or
        counts; 4-D maps are summed over bands.
    theta500_arcmin : float or array-like of shape (n,)
        theta500 of each cluster, arcmin (the mock catalogue's
        ``theta500_arcmin``, or a measured one such as
        :class:`~skcluster.baselines.ScalarObservables`' column).
    pixel_arcsec : float
        Pixel side of the maps, arcsec (``X.meta["pixel_arcsec"]``; 37.5 in
        the standard 32 x 32 chain over 20 arcmin, 24 at 50 x 50).
    bins : array-like of float, default=DEFAULT_R500_BINS
        Annulus edges in units of r500.
    normalize : bool, default=True
        Divide each cluster's profile by its mean value over all pixels
        within the last edge (so importance and count profiles, in
        different units, become shapes that can be compared). Clusters
        whose map is zero there get NaN profiles.

    Returns
    -------
    sklearn.utils.Bunch
        ``edges`` (n_bins + 1,), ``centers`` (n_bins,); ``profiles`` (n,
        n_bins), NaN where an annulus holds no pixel centre (small
        clusters in the inner bins, large ones beyond the box);
        ``n_pixels`` (n, n_bins); ``mean``, ``sem`` (standard error over
        clusters) and ``n_clusters`` (n_bins,) of the stack.
    """
    maps = _spatial(maps, "maps")
    n, h, w = maps.shape
    edges = _check_bins(bins)
    nb = edges.size - 1
    tpix = _theta500_pixels(theta500_arcmin, pixel_arcsec, n)
    r = pixel_radius((h, w)).ravel()
    profiles = np.full((n, nb), np.nan)
    npix = np.zeros((n, nb), dtype=np.int64)
    for i in range(n):
        x = r / tpix[i]
        idx = np.searchsorted(edges, x, side="right") - 1
        inside = (idx >= 0) & (idx < nb)
        v = maps[i].ravel().astype(np.float64)
        counts = np.bincount(idx[inside], minlength=nb)
        sums = np.bincount(idx[inside], weights=v[inside], minlength=nb)
        npix[i] = counts
        with np.errstate(invalid="ignore", divide="ignore"):
            prof = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        if normalize:
            total = sums.sum() / max(counts.sum(), 1)
            prof = prof / total if total > 0 else np.full(nb, np.nan)
        profiles[i] = prof
    ok = np.isfinite(profiles)
    n_cl = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_cl > 0, np.nansum(profiles, axis=0) / np.maximum(n_cl, 1), np.nan)
        dev = np.where(ok, profiles - mean, 0.0)
        sem = np.where(n_cl > 1, np.sqrt((dev**2).sum(axis=0) / np.maximum(n_cl - 1, 1) / np.maximum(n_cl, 1)),
                       np.nan)
    return Bunch(edges=edges, centers=0.5 * (edges[1:] + edges[:-1]), profiles=profiles, n_pixels=npix,
                 mean=mean, sem=sem, n_clusters=n_cl)


def _stack_ratio(num_profiles, den_profiles, sel, inner, outer):
    """Ratio of stacked means: (num/den in bins ``inner``) / (num/den in bins ``outer``)."""
    num, den = num_profiles[sel], den_profiles[sel]
    ok = np.isfinite(num).all(axis=1) & np.isfinite(den).all(axis=1)
    if not ok.any():
        return np.nan
    num, den = num[ok], den[ok]
    a = num[:, inner].mean() / den[:, inner].mean()
    b = num[:, outer].mean() / den[:, outer].mean()
    return float(a / b)


def core_weight(importance, counts, inner=(0,), outer=(1, 2, 3), n_boot=500, random_state=0):
    """Importance per count in the core relative to the rest of r500, with a bootstrap interval.

    ``(I_core / C_core) / (I_out / C_out)``, with I and C the stacked
    normalised importance and count profiles (:func:`radial_profile`) over
    the clusters whose profiles are defined in every bin used, ``inner``
    the core bins (default the first, 0-0.25 r500) and ``outer`` the bins
    it is compared with (default 0.25-1 r500). Below 1: the network gives
    the core less weight than its share of the photons, as Ho et al. 2023
    found.

    Returns
    -------
    dict
        ``ratio``, ``ci68`` and ``ci95`` (percentile bootstrap over
        clusters), ``n_clusters``.
    """
    ip, cp = importance.profiles, counts.profiles
    inner, outer = list(inner), list(outer)
    used = inner + outer
    ok = np.isfinite(ip[:, used]).all(axis=1) & np.isfinite(cp[:, used]).all(axis=1)
    idx = np.flatnonzero(ok)
    ratio = _stack_ratio(ip[:, used], cp[:, used], idx, list(range(len(inner))),
                         list(range(len(inner), len(used))))
    rng = np.random.default_rng(random_state)
    boots = []
    for _ in range(int(n_boot)):
        if idx.size == 0:
            break
        b = rng.choice(idx, idx.size, replace=True)
        boots.append(_stack_ratio(ip[:, used], cp[:, used], b, list(range(len(inner))),
                                  list(range(len(inner), len(used)))))
    boots = np.asarray(boots)
    q = (lambda lo, hi: [float(np.nanquantile(boots, lo)), float(np.nanquantile(boots, hi))]) \
        if boots.size else (lambda lo, hi: [np.nan, np.nan])
    return {"ratio": ratio, "ci68": q(0.16, 0.84), "ci95": q(0.025, 0.975), "n_clusters": int(idx.size)}


def band_importance(attributions, counts=None):
    """Share of the total abs(attribution) in each energy band, averaged over clusters.

    Parameters
    ----------
    attributions : array-like of shape (n, B, H, W)
        Saliency or integrated gradients (absolute values are taken).
    counts : array-like of shape (n, B, H, W), default=None
        Photon counts per band on the same grid (e.g. the binning step's
        output), for the matching share of the photons.

    Returns
    -------
    sklearn.utils.Bunch
        ``share`` (n, B): each cluster's fractions (sum 1); ``mean``,
        ``sem`` (B,); with ``counts`` also ``count_share`` (B,), the mean
        over clusters of each band's share of the photons.
    """
    a = np.asarray(attributions)
    if a.ndim != 4:
        raise ValueError(f"attributions must have shape (n, B, H, W), got {a.shape}")
    per = np.abs(a).sum(axis=(2, 3), dtype=np.float64)
    tot = per.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tot > 0, per / tot, np.nan)
    ok = np.isfinite(share).all(axis=1)
    out = Bunch(share=share, mean=share[ok].mean(axis=0),
                sem=share[ok].std(axis=0, ddof=1) / np.sqrt(max(ok.sum(), 1)) if ok.sum() > 1
                else np.full(a.shape[1], np.nan))
    if counts is not None:
        c = np.asarray(counts)
        if c.shape != a.shape:
            raise ValueError(f"counts must have the shape of attributions {a.shape}, got {c.shape}")
        cper = c.sum(axis=(2, 3), dtype=np.float64)
        ctot = cper.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            cshare = np.where(ctot > 0, cper / ctot, np.nan)
        out["count_share"] = np.nanmean(cshare, axis=0)
    return out
