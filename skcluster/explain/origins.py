"""Photon origins (background, ICM, AGN) of the mock survey, on the network's grid, and their importance."""

from __future__ import annotations

import numpy as np

from .profiles import _spatial, pixel_radius

__all__ = ["ORIGIN_NAMES", "origin_images", "origin_importance"]

#: Values of the events' ``origin`` field (skcluster.datasets.make_survey).
ORIGIN_NAMES = {0: "background", 1: "ICM", 2: "AGN"}


def _select_origins(X, origins, where):
    """``X`` with each cluster's events restricted to the given ``origin`` values."""
    from ..sample import as_sample

    X = as_sample(X, step=where)
    X.require("events", step=where)
    events = X["events"]
    out = np.empty(len(events), dtype=object)
    for i, ev in enumerate(events):
        names = getattr(getattr(ev, "dtype", None), "names", None) or ()
        if "origin" not in names:
            raise ValueError(
                f"{where}: the events of row {i} have no 'origin' field (fields: {list(names)}); "
                "the photon origin (0 background, 1 ICM, 2 AGN) is known only for the mock survey "
                "(skcluster.datasets.make_survey)"
            )
        out[i] = ev[np.isin(ev["origin"], origins)]
    return X.assign(events=out)


def _from_binning(pipeline, X):
    """``(pipeline from its binning step on, X through the steps before it)``.

    Steps before the binning (a :class:`~skcluster.preprocessing.PointSourceMasker`, the
    observables step of ``make_mass_pipeline(observables=True)``) work on the events; they are
    applied here, so that what follows starts at the counts cube. The mask's fill photons carry
    the origin "unknown" (255), in no origin's map.
    """
    from ..preprocessing import BandBinner, ImageCutout

    k = next((i for i, (_, step) in enumerate(pipeline.steps) if isinstance(step, (BandBinner, ImageCutout))), 0)
    return (pipeline[k:], pipeline[:k].transform(X)) if k else (pipeline, X)


def _linear_steps(pipeline):
    """The steps right after the binning that are linear in the counts (resize, smooth).

    Steps that leave the images as they are (``_keeps_images``: DomainFlagger,
    RadialProfile) are passed over.
    """
    from ..preprocessing import GaussianSmoother, Resizer

    steps = []
    for _, step in pipeline.steps[1:]:
        if getattr(step, "_keeps_images", False):
            continue
        if not isinstance(step, (Resizer, GaussianSmoother)):
            break
        steps.append(step)
    return steps


def origin_images(pipeline, X, origins=(0, 1, 2), *, linear_steps=True):
    """Photon counts per origin on the grid of the network input.

    Bins the events of each origin (0 background, 1 ICM, 2 AGN) with the
    pipeline's first step (the :class:`~skcluster.preprocessing.BandBinner`
    that made the network's cube, so the bands and pixels are the same)
    and, with ``linear_steps``, passes them through the following steps that
    are linear in the counts (:class:`~skcluster.preprocessing.Resizer`,
    :class:`~skcluster.preprocessing.GaussianSmoother`), so that each pixel
    holds how many of the photons the network sees there came from each
    origin. The origins' maps add up to the pipeline's counts cube.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted, with the binning step first or after steps on the events
        (a point-source mask: its fill photons are in no origin's map).
    X : ClusterSample
        With ``events`` carrying the ``origin`` field (the mock survey).
    origins : sequence of int, default=(0, 1, 2)
    linear_steps : bool, default=True

    Returns
    -------
    numpy.ndarray of float32, shape (n, n_origins, B, H, W)
    """
    if not hasattr(pipeline, "steps"):
        raise TypeError(f"origin_images needs the fitted Pipeline (its binning step), got {type(pipeline).__name__}")
    pipeline, X = _from_binning(pipeline, X)
    steps = [pipeline[0]] + (_linear_steps(pipeline) if linear_steps else [])
    out = None
    for k, o in enumerate(origins):
        Xo = _select_origins(X, (o,), "origin_images")
        for step in steps:
            Xo = step.transform(Xo)
        img = Xo["images"]
        if out is None:
            out = np.empty((img.shape[0], len(origins)) + img.shape[1:], dtype=np.float32)
        out[:, k] = img
    return out


def origin_importance(importance, origin_counts, *, names=None, dominance=0.5, min_counts=0.0):
    """Importance of pixels dominated by each photon origin, compared at the same radius.

    Each pixel (band-summed) is assigned to the origin that contributes
    more than ``dominance`` of its photons (``"mixed"`` otherwise,
    ``"empty"`` at or below ``min_counts``). Because importance and counts
    both fall with radius, each pixel's importance and counts are divided
    by the mean over its ring (pixels of the same cluster at the same
    distance from the centre, rings one pixel wide): a ratio above 1 means
    more than the surroundings at that radius. An origin whose pixels hold
    many more photons than their ring (``rel_counts`` >> 1) but no more
    importance (``rel_importance`` ~ 1) is down-weighted by the network.

    Parameters
    ----------
    importance : array-like of shape (n, H, W) or (n, B, H, W)
        Non-negative importance (abs(saliency) or abs(IG)); summed over bands.
    origin_counts : array-like of shape (n, n_origins, H, W) or (n, n_origins, B, H, W)
        From :func:`origin_images`.
    names : sequence of str, default=None
        One per origin; by default :data:`ORIGIN_NAMES` for origins 0, 1, 2.
    dominance : float, default=0.5
        Fraction of a pixel's photons an origin needs to claim it.
    min_counts : float, default=0.0

    Returns
    -------
    dict
        Per class name: ``n_pixels``, ``pixel_share`` (of all pixels),
        ``importance_share``, ``count_share``, ``rel_importance``,
        ``rel_counts`` (means over the class's pixels),
        ``importance_per_count`` = rel_importance / rel_counts (radius
        matched), and ``share_per_count`` = importance_share / count_share
        (not radius matched). The ring normalisation suits gradients
        (saliency); for integrated gradients with the background baseline
        pixels of pure background get ~0 attribution by construction, which
        inflates the ring-relative value of any pixel with extra photons:
        read ``share_per_count`` there.
    """
    imp = _spatial(importance, "importance").astype(np.float64)
    oc = np.asarray(origin_counts)
    if oc.ndim == 5:
        oc = oc.sum(axis=2, dtype=np.float32)
    if oc.ndim != 4 or oc.shape[0] != imp.shape[0] or oc.shape[2:] != imp.shape[1:]:
        raise ValueError(
            f"origin_counts must have shape (n, n_origins, H, W) matching importance {imp.shape}, got {oc.shape}"
        )
    if np.any(imp < 0):
        raise ValueError("importance must be non-negative (take np.abs of signed attributions)")
    n, n_or, h, w = oc.shape
    if names is None:
        names = [ORIGIN_NAMES.get(k, f"origin{k}") for k in range(n_or)]
    if len(names) != n_or:
        raise ValueError(f"names has {len(names)} entries for {n_or} origins")
    total = oc.sum(axis=1, dtype=np.float64)  # (n, H, W)
    ring = np.floor(pixel_radius((h, w))).astype(np.int64).ravel()
    n_rings = ring.max() + 1

    def rel(v):
        flat = v.reshape(n, -1)
        out = np.empty_like(flat)
        for i in range(n):
            s = np.bincount(ring, weights=flat[i], minlength=n_rings)
            c = np.bincount(ring, minlength=n_rings)
            m = s / c
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i] = np.where(m[ring] > 0, flat[i] / m[ring], np.nan)
        return out.reshape(v.shape)

    rel_imp, rel_cnt = rel(imp), rel(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = oc / np.where(total > 0, total, np.nan)[:, None]
    labels = np.full(total.shape, "mixed", dtype=object)
    for k, name in enumerate(names):
        labels[frac[:, k] > dominance] = name
    labels[total <= min_counts] = "empty"
    result = {}
    imp_sum, cnt_sum = imp.sum(), total.sum()
    for name in list(names) + ["mixed", "empty"]:
        sel = labels == name
        k = int(sel.sum())
        if k == 0:
            result[name] = {"n_pixels": 0}
            continue
        ri, rc = np.nanmean(rel_imp[sel]) if np.isfinite(rel_imp[sel]).any() else np.nan, \
            np.nanmean(rel_cnt[sel]) if np.isfinite(rel_cnt[sel]).any() else np.nan
        result[name] = {
            "n_pixels": k,
            "pixel_share": k / labels.size,
            "importance_share": float(imp[sel].sum() / imp_sum) if imp_sum > 0 else np.nan,
            "count_share": float(total[sel].sum() / cnt_sum) if cnt_sum > 0 else np.nan,
            "rel_importance": float(ri),
            "rel_counts": float(rc),
            "importance_per_count": float(ri / rc) if rc and np.isfinite(rc) else np.nan,
        }
        ishare, cshare = result[name]["importance_share"], result[name]["count_share"]
        result[name]["share_per_count"] = float(ishare / cshare) if cshare and np.isfinite(cshare) else np.nan
    return result
