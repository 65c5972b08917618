"""Everything at once: attributions of a fitted mass pipeline with their radial, band and origin summaries."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .attribution import integrated_gradients, saliency
from .origins import _from_binning, _linear_steps, _select_origins, origin_images, origin_importance
from .profiles import DEFAULT_R500_BINS, band_importance, core_weight, radial_profile

__all__ = ["explain_predictions"]


def _theta500_column(X, theta500_arcmin):
    if isinstance(theta500_arcmin, str):
        from ..sample import as_sample

        X = as_sample(X, step="explain_predictions")
        X.require(theta500_arcmin, step="explain_predictions")
        return np.asarray(X[theta500_arcmin], dtype=np.float64)
    return theta500_arcmin


def explain_predictions(model, X, theta500_arcmin, *, method="saliency", baseline="zeros", n_steps=32,
                        bins=DEFAULT_R500_BINS, core_bins=(0,), compare_bins=(1, 2, 3), origins=True,
                        batch_size=None, autocast=None, verbose=False):
    """Attributions of a fitted mass pipeline, with their radial, band and origin summaries.

    Parameters
    ----------
    model : Pipeline
        Fitted, with the binning step first (or after a point-source mask
        and the observables step, applied first to ``X``) and ending in a
        network or ensemble (:func:`skcluster.models.make_mass_pipeline`).
    X : ClusterSample
        The pipeline's input (mock: ``events``, ``z``, ``exposure``).
    theta500_arcmin : str or array-like of shape (n,)
        theta500 per cluster in arcmin, or the name of a column of ``X``
        holding it.
    method : {"saliency", "integrated_gradients"}, default="saliency"
    baseline, n_steps : see :func:`integrated_gradients`.
    bins : array-like, default=DEFAULT_R500_BINS
        Radial bin edges, r500.
    core_bins, compare_bins : tuple of int, default=(0,), (1, 2, 3)
        Bins compared in :func:`core_weight` (0-0.25 against 0.25-1 r500).
    origins : bool, default=True
        Also bin the photons by origin (needs ``origin`` in the events) and
        run :func:`origin_importance`; False for real data.
    batch_size : int, default=None
        64 for saliency, 16 for integrated gradients.
    autocast, verbose : see :func:`saliency`.

    Returns
    -------
    sklearn.utils.Bunch
        ``attributions`` (n, B, H, W) float32 (signed for IG, absolute values for
        saliency), ``importance`` (its absolute value summed over bands,
        (n, H, W)), ``counts`` (the counts as the network sees them:
        binned, resized and smoothed, before the stretch) and
        ``counts_raw`` (binned only); ``radial``, ``radial_counts``,
        ``radial_counts_raw`` (and ``radial_icm_counts``, the smoothed
        cluster photons, with origins) from :func:`radial_profile`;
        ``core`` (against the smoothed counts), ``core_raw`` and
        ``core_icm`` from :func:`core_weight`; ``bands``
        (:func:`band_importance`, against the smoothed counts),
        ``origins`` (:func:`origin_importance` or None), ``delta`` (IG
        convergence per cluster or None), ``summary`` (a JSON-able dict).
    """
    if not hasattr(model, "steps"):
        raise TypeError("explain_predictions needs the fitted Pipeline (binning step first), "
                        f"got {type(model).__name__}")
    theta = _theta500_column(X, theta500_arcmin)
    model, X = _from_binning(model, X)   # a point-source mask or the observables step first: applied here
    Xpre = model[:-1].transform(X)
    binned = model[0].transform(X)
    pixel_arcsec = float(binned.meta.get("pixel_arcsec") or Xpre.meta["pixel_arcsec"])
    counts_raw = binned["images"]
    final = model[-1]
    delta = None
    if method == "saliency":
        attr = saliency(final, Xpre, batch_size=batch_size or 64, autocast=autocast, verbose=verbose)
    elif method == "integrated_gradients":
        if isinstance(baseline, str) and baseline == "background":
            Xb = _select_origins(X, (0,), "explain_predictions(baseline='background')")
            base = model[:-1].transform(Xb)["images"]
        else:
            base = baseline
        attr, delta = integrated_gradients(final, Xpre, baseline=base, n_steps=n_steps,
                                           batch_size=batch_size or 16, autocast=autocast,
                                           return_convergence_delta=True, verbose=verbose)
    else:
        raise ValueError(f"method must be 'saliency' or 'integrated_gradients', got {method!r}")
    importance = np.abs(attr).sum(axis=1, dtype=np.float32)
    # (n, 3, B, H, W), smoothed like the network's input; they add up to the counts but for a mask's fill photons
    oc = origin_images(model, X) if origins else None
    counts = binned
    for step in _linear_steps(model):
        counts = step.transform(counts)
    counts = counts["images"]
    if counts.shape[2:] != importance.shape[1:]:
        raise ValueError(
            f"the binning step's grid {counts.shape[2:]} differs from the network input's "
            f"{importance.shape[1:]}: radial count profiles need the same grid"
        )
    radial = radial_profile(importance, theta, pixel_arcsec, bins)
    radial_counts = radial_profile(counts, theta, pixel_arcsec, bins)
    radial_raw = radial_profile(counts_raw, theta, pixel_arcsec, bins)
    res = Bunch(attributions=attr, importance=importance, counts=counts, counts_raw=counts_raw, radial=radial,
                radial_counts=radial_counts, radial_counts_raw=radial_raw,
                core=core_weight(radial, radial_counts, core_bins, compare_bins),
                core_raw=core_weight(radial, radial_raw, core_bins, compare_bins),
                bands=band_importance(attr, counts), origins=None, delta=delta,
                radial_icm_counts=None, core_icm=None, pixel_arcsec=pixel_arcsec)
    if oc is not None:
        res.origins = origin_importance(importance, oc)
        res.radial_icm_counts = radial_profile(oc[:, 1], theta, pixel_arcsec, bins)
        res.core_icm = core_weight(radial, res.radial_icm_counts, core_bins, compare_bins)
    res.summary = _summary(res, method, baseline, bins, core_bins, compare_bins)
    return res


def _verdict(core):
    lo, hi = core["ci95"]
    if not np.isfinite(core["ratio"]):
        return "undetermined (no cluster with every bin defined)"
    if hi < 1:
        return "down-weighted"
    if lo > 1:
        return "up-weighted"
    return "consistent with the count profile"


def _summary(res, method, baseline, bins, core_bins, compare_bins):
    edges = np.asarray(bins)

    def rng(idx):
        return f"{edges[min(idx)]:g}-{edges[max(idx) + 1]:g} r500"

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple, np.ndarray)):
            return [clean(x) for x in np.asarray(v).tolist()]
        if isinstance(v, (float, np.floating)):
            return float(v) if np.isfinite(v) else None
        if isinstance(v, np.integer):
            return int(v)
        return v

    s = {
        "method": method,
        "baseline": baseline if isinstance(baseline, str) else "array",
        "n_clusters": int(res.importance.shape[0]),
        "pixel_arcsec": res.pixel_arcsec,
        "bins_r500": edges.tolist(),
        "importance_profile": res.radial.mean, "importance_profile_sem": res.radial.sem,
        "count_profile": res.radial_counts.mean, "count_profile_sem": res.radial_counts.sem,
        "raw_count_profile": res.radial_counts_raw.mean,
        "profile_n_clusters": res.radial.n_clusters,
        "core_bins": rng(core_bins), "compare_bins": rng(compare_bins),
        "core_weight_vs_counts": res.core,
        "core_verdict_vs_counts": _verdict(res.core),
        "core_weight_vs_raw_counts": res.core_raw,
        "core_verdict_vs_raw_counts": _verdict(res.core_raw),
        "band_importance": res.bands.mean,
        "band_count_share": res.bands.get("count_share"),
    }
    if res.core_icm is not None:
        s["icm_count_profile"] = res.radial_icm_counts.mean
        s["core_weight_vs_icm_counts"] = res.core_icm
        s["core_verdict_vs_icm_counts"] = _verdict(res.core_icm)
    if res.origins is not None:
        s["origins"] = res.origins
        agn, icm = res.origins.get("AGN", {}), res.origins.get("ICM", {})
        if agn.get("n_pixels") and icm.get("n_pixels"):
            s["agn_vs_icm_importance_per_count"] = agn["importance_per_count"] / icm["importance_per_count"]
            s["agn_vs_icm_share_per_count"] = agn["share_per_count"] / icm["share_per_count"]
    if res.delta is not None:
        s["ig_delta_abs_median_dex"] = float(np.median(np.abs(res.delta)))
    return clean(s)
