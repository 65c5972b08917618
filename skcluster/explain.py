"""What the mass networks look at: saliency, integrated gradients, and their summaries.

Attributions are computed with respect to the *network input*: the
``images`` cube that :class:`~skcluster.preprocessing.RedshiftJoiner` hands
to ``forward(images, scalars)`` (binned, resized, smoothed, exposure
corrected, log-stretched and standardised by the standard pipeline), for
the network's predicted mean of y = log10 M500c / Msun in dex. For a
fitted :class:`~sklearn.pipeline.Pipeline` ending in a network, ``X`` is the
pipeline's input and ``pipeline[:-1].transform(X)`` is explained.

* :func:`saliency`: abs(d mean / d pixel), the saliency map of Simonyan et al.
  2014 (arXiv:1312.6034) that Ho et al. 2023 (arXiv:2303.00005, Sect. 5)
  used to show that their CNNs ignore cluster cores and AGN. For a deep
  ensemble the members' saliency maps are averaged (``absolute=False``
  gives the signed gradient of the ensemble mean instead).
* :func:`integrated_gradients`: Sundararajan et al. 2017 (arXiv:1703.01365),
  (x - x0) times the path integral of the gradient from a baseline x0 to
  x. Attributions add up to f(x) - f(x0) (completeness), and are linear in
  the model, so the ensemble's attribution is the mean of the members'.
  Baselines: ``"zeros"`` (the all-zero standardised cube: every pixel at
  its band's training mean of the stretched count rate, a featureless
  image at about the background level), ``"background"`` (the cube the
  pipeline makes from the background photons alone, ``origin == 0``: the
  same sky without the cluster and its AGN; needs the mock's event lists
  and a pipeline), or an explicit array.
* :func:`radial_profile`: azimuthal averages in units of r500, stacked over
  clusters; :func:`band_importance`; :func:`origin_images` and
  :func:`origin_importance` (pixels dominated by AGN, cluster or
  background photons, compared at the same radius);
  :func:`explain_predictions` runs all of them and states whether the core
  and the AGN are down-weighted relative to their photons.

Everything runs in batches on float32 tensors (no float64 copy of a cube)
and in float32 arithmetic by default (``autocast="bfloat16"`` is faster on
AMX CPUs but makes the gradients coarse).
"""

from __future__ import annotations

import contextlib

import numpy as np
from sklearn.utils import Bunch

from ._validation import check_positive_int, rows_text

__all__ = [
    "DEFAULT_R500_BINS",
    "ORIGIN_NAMES",
    "band_importance",
    "core_weight",
    "explain_predictions",
    "integrated_gradients",
    "network_members",
    "network_input",
    "origin_images",
    "origin_importance",
    "pixel_radius",
    "radial_profile",
    "saliency",
]

#: Default radial bins, in units of r500 (theta500 on the sky). The inner
#: edge 0.25 r500 keeps at least the four central 24-arcsec pixels in the
#: first bin for theta500 >= 2.8 pixels (1.1 arcmin), i.e. for ~97% of the
#: eFEDS-like mock, whose median theta500 is 2.4 arcmin (README, mock
#: validation); the cool-core region (~0.15 r500, Pratt et al. 2009) is
#: smaller than one pixel for most clusters at this resolution.
DEFAULT_R500_BINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)

#: Values of the events' ``origin`` field (skcluster.datasets.make_survey).
ORIGIN_NAMES = {0: "background", 1: "ICM", 2: "AGN"}


# ---------------------------------------------------------------------------
# the model and its input
# ---------------------------------------------------------------------------
def _final(model):
    return model[-1] if hasattr(model, "steps") else model


def network_members(model):
    """The fitted :class:`~skcluster.nn.CNNRegressor` networks behind ``model``.

    Parameters
    ----------
    model : CNNRegressor, DeepEnsembleRegressor or Pipeline
        Fitted; an ensemble's members must be CNNRegressors; a Pipeline must
        end in one of these.

    Returns
    -------
    list of CNNRegressor
    """
    from sklearn.exceptions import NotFittedError

    from .nn import CNNRegressor

    final = _final(model)
    if isinstance(final, CNNRegressor):
        members = [final]
    elif hasattr(final, "estimators_") or hasattr(final, "n_estimators"):
        members = getattr(final, "estimators_", None)
        if members is None:
            raise NotFittedError(f"{type(final).__name__} is not fitted; call fit before explaining it")
    else:
        raise TypeError(
            "explain needs a CNNRegressor, a DeepEnsembleRegressor of CNNRegressors, or a Pipeline "
            f"ending in one; got {type(final).__name__}"
        )
    for i, m in enumerate(members):
        if not isinstance(m, CNNRegressor):
            raise TypeError(
                f"ensemble member {i} is a {type(m).__name__}; explain needs CNNRegressor members "
                "(gradients of the network with respect to its input)"
            )
        m._check_fitted()
    return list(members)


def network_input(model, X):
    """``(images, scalars)``, float32, that the network of ``model`` sees for ``X``.

    For a Pipeline, ``pipeline[:-1].transform(X)``; otherwise ``X`` itself
    (a ClusterSample with ``images`` (n, B, H, W) and ``scalars`` (n, K), or a
    bare 4-D cube).
    """
    from .nn._data import network_inputs

    if hasattr(model, "steps"):
        X = model[:-1].transform(X)
    images, scalars = network_inputs(X, "skcluster.explain")
    members = network_members(model)
    members[0]._check_shape(images, scalars, "skcluster.explain")
    return images, scalars


@contextlib.contextmanager
def _eval_mode(nets):
    """Evaluation mode (no dropout) for the length of the block, restored afterwards."""
    flags = [net.module_.training for net in nets]
    try:
        for net in nets:
            net.module_.eval()
        yield
    finally:
        for net, flag in zip(nets, flags):
            net.module_.train(flag)


def _autocast(net, autocast):
    import torch

    if autocast is None:
        return contextlib.nullcontext()
    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16}
    if autocast not in dtypes:
        raise ValueError(f"autocast must be None, 'bfloat16' or 'float16', got {autocast!r}")
    return torch.autocast(device_type=torch.device(net.device).type, dtype=dtypes[autocast])


def _forward_mean(net, images, scalars, autocast):
    """Member's predicted mean in dex (n,), differentiable with respect to ``images``."""
    import torch

    from .nn.augment import scale_images

    x = scale_images(images, net.input_scaling)
    if net.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(net, autocast):
        mean, _ = net.module_(images=x, scalars=scalars)
    return mean.float().reshape(-1) * float(net.y_scale_) + float(net.y_mean_)


def _grad(net, images, scalars, autocast):
    """d mean(dex) / d images for a batch (the sum over the batch separates per cluster)."""
    import torch

    x = images.detach().requires_grad_(True)
    out = _forward_mean(net, x, scalars, autocast)
    (g,) = torch.autograd.grad(out.sum(), x)
    return g.float()


def _progress(iterable, verbose, desc, total):
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit="batch")


def _tensor(arr, net):
    import torch

    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(net.device)


# ---------------------------------------------------------------------------
# attributions
# ---------------------------------------------------------------------------
def saliency(model, X, *, absolute=True, batch_size=64, autocast=None, verbose=False):
    """Saliency maps abs(d mean / d pixel) of the network input (Ho et al. 2023).

    Parameters
    ----------
    model : CNNRegressor, DeepEnsembleRegressor or Pipeline
        Fitted. For a Pipeline, ``X`` is its input and the output of
        ``model[:-1].transform(X)`` is explained.
    X : ClusterSample
        Clusters to explain.
    absolute : bool, default=True
        True: the mean over ensemble members of abs(d mu_i / d x) (the saliency
        of each member, averaged). False: the signed gradient of the
        ensemble mean, mean_i d mu_i / d x.
    batch_size : int, default=64
        Clusters per forward/backward pass.
    autocast : {"bfloat16", "float16"} or None, default=None
        Mixed precision for the forward pass (faster, coarser gradients).
    verbose : bool, default=False
        Progress bar over batches.

    Returns
    -------
    numpy.ndarray of float32, shape (n_clusters, n_bands, H, W)
        In dex of predicted log10 M500c per unit of the (standardised)
        network input.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    members = network_members(model)
    images, scalars = network_input(model, X)
    n = images.shape[0]
    out = np.zeros(images.shape, dtype=np.float32)
    starts = range(0, n, batch_size)
    with _eval_mode(members):
        for s in _progress(starts, verbose, "saliency", len(starts)):
            sl = slice(s, s + batch_size)
            acc = None
            for net in members:
                g = _grad(net, _tensor(images[sl], net), _tensor(scalars[sl], net), autocast)
                g = g.abs() if absolute else g
                acc = g if acc is None else acc + g
            out[sl] = (acc / len(members)).detach().cpu().numpy()
    return out


def _path_nodes(n_steps, method):
    """Points alpha in (0, 1] and weights of the path integral's quadrature."""
    check_positive_int(n_steps, "n_steps")
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(int(n_steps))
        return 0.5 * (x + 1.0), 0.5 * w
    if method == "midpoint":
        return (np.arange(n_steps) + 0.5) / n_steps, np.full(n_steps, 1.0 / n_steps)
    raise ValueError(f"method must be 'gausslegendre' or 'midpoint', got {method!r}")


def _baseline_images(model, X, baseline, images):
    """Baseline cube(s), float32, broadcastable to ``images``."""
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros((1,) + images.shape[1:], dtype=np.float32)
        if baseline == "background":
            if not hasattr(model, "steps"):
                raise ValueError(
                    "baseline='background' builds the network input from the background photons "
                    "(events with origin == 0) through the pipeline's preprocessing: pass the "
                    "fitted Pipeline and its input X (with an 'events' column), not the network alone"
                )
            Xb = _select_origins(X, (0,), "integrated_gradients(baseline='background')")
            return network_input(model, Xb)[0]
        raise ValueError(f"baseline must be 'zeros', 'background' or an array, got {baseline!r}")
    base = np.asarray(baseline)
    if base.dtype != np.float32:
        base = base.astype(np.float32)
    if base.shape == images.shape[1:]:
        base = base[None]
    if base.ndim != 4 or base.shape[1:] != images.shape[1:] or base.shape[0] not in (1, images.shape[0]):
        raise ValueError(
            f"baseline array must have shape {images.shape[1:]} (one for all clusters) or "
            f"{images.shape} (one per cluster), in the units of the network input; got {base.shape}"
        )
    return base


def integrated_gradients(model, X, *, baseline="zeros", n_steps=32, method="gausslegendre",
                         batch_size=16, autocast=None, return_convergence_delta=False,
                         verbose=False):
    """Integrated gradients of the predicted mean (Sundararajan et al. 2017).

    IG_j(x) = (x_j - x0_j) * integral_0^1 d f(x0 + a (x - x0)) / d x_j da,
    with f the (ensemble) mean of log10 M500c in dex. The attributions of a
    cluster add up to f(x) - f(x0) up to the quadrature error
    (completeness); for an ensemble they are the mean of the members'.

    Parameters
    ----------
    model : CNNRegressor, DeepEnsembleRegressor or Pipeline
        Fitted (a Pipeline: ``X`` is its input).
    X : ClusterSample
    baseline : {"zeros", "background"} or array-like, default="zeros"
        ``"zeros"``: the all-zero standardised input, i.e. every pixel at
        its band's training mean (a flat, featureless cube near the
        background level). ``"background"``: the network input made by the
        pipeline from the background photons only (events with
        ``origin == 0``, as the mock survey labels them): the same field
        without the cluster and its AGN, so that attributions measure what
        the cluster's photons add; needs a Pipeline and an ``events``
        column with ``origin``. An array in network-input units of shape
        (B, H, W) or (n, B, H, W). The scalars (redshift) are kept at their
        values for x and x0.
    n_steps : int, default=32
        Quadrature points on the path.
    method : {"gausslegendre", "midpoint"}, default="gausslegendre"
        Quadrature rule (Gauss-Legendre as Captum's default).
    batch_size : int, default=16
        Clusters per pass; each pass evaluates ``batch_size * n_steps``
        images, in chunks of at most 256.
    autocast : {"bfloat16", "float16"} or None, default=None
    return_convergence_delta : bool, default=False
        Also return, per cluster, sum(attributions) - (f(x) - f(x0)) in dex.
    verbose : bool, default=False

    Returns
    -------
    attributions : numpy.ndarray of float32, shape (n_clusters, n_bands, H, W)
        In dex.
    delta : numpy.ndarray of float64, shape (n_clusters,)
        Only with ``return_convergence_delta=True``.
    """
    import torch

    batch_size = check_positive_int(batch_size, "batch_size")
    alphas, weights = _path_nodes(n_steps, method)
    members = network_members(model)
    images, scalars = network_input(model, X)
    base_all = _baseline_images(model, X, baseline, images)
    n = images.shape[0]
    out = np.zeros(images.shape, dtype=np.float32)
    delta = np.zeros(n)
    chunk_images = 256
    starts = range(0, n, batch_size)
    with _eval_mode(members):
        for s in _progress(starts, verbose, "integrated gradients", len(starts)):
            sl = slice(s, s + batch_size)
            m = images[sl].shape[0]
            base_np = base_all if base_all.shape[0] == 1 else base_all[sl]
            gsum = None
            f_diff = np.zeros(m)
            for net in members:
                x = _tensor(images[sl], net)
                x0 = _tensor(base_np, net).expand_as(x)
                sc = _tensor(scalars[sl], net)
                diff = x - x0
                acc = torch.zeros_like(x)
                steps_per_chunk = max(1, chunk_images // m)
                for k0 in range(0, len(alphas), steps_per_chunk):
                    a = torch.as_tensor(alphas[k0:k0 + steps_per_chunk], dtype=torch.float32,
                                        device=x.device)
                    w = torch.as_tensor(weights[k0:k0 + steps_per_chunk], dtype=torch.float32,
                                        device=x.device)
                    k = a.shape[0]
                    path = (x0.unsqueeze(0) + a.view(k, 1, 1, 1, 1) * diff.unsqueeze(0)).reshape(
                        (k * m,) + tuple(x.shape[1:]))
                    g = _grad(net, path, sc.repeat(k, 1), autocast).reshape((k,) + tuple(x.shape))
                    acc += torch.einsum("k,k...->...", w, g)
                attr = diff * acc
                gsum = attr if gsum is None else gsum + attr
                if return_convergence_delta:
                    with torch.no_grad():
                        f_diff += (_forward_mean(net, x, sc, autocast)
                                   - _forward_mean(net, x0.contiguous(), sc, autocast)).double().cpu().numpy()
            attr = (gsum / len(members)).detach().cpu().numpy()
            out[sl] = attr
            if return_convergence_delta:
                delta[sl] = attr.reshape(m, -1).sum(axis=1, dtype=np.float64) - f_diff / len(members)
    if return_convergence_delta:
        return out, delta
    return out


# ---------------------------------------------------------------------------
# geometry and radial profiles
# ---------------------------------------------------------------------------
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
    p = float(pixel_arcsec)
    if not (np.isfinite(p) and p > 0):
        raise ValueError(f"pixel_arcsec must be a positive number of arcsec, got {pixel_arcsec!r}")
    return 60.0 * t / p


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
        Pixel side of the maps, arcsec (``X.meta["pixel_arcsec"]``; 24 in
        the standard 50 x 50 chain over 20 arcmin).
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


# ---------------------------------------------------------------------------
# bands and photon origins
# ---------------------------------------------------------------------------
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


def _select_origins(X, origins, where):
    """``X`` with each cluster's events restricted to the given ``origin`` values."""
    from .sample import as_sample

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


def _linear_steps(pipeline):
    """The steps right after the binning that are linear in the counts (resize, smooth)."""
    from .preprocessing import GaussianSmoother, Resizer

    steps = []
    for _, step in pipeline.steps[1:]:
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
        Fitted, starting with the binning step.
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


# ---------------------------------------------------------------------------
# everything at once
# ---------------------------------------------------------------------------
def _theta500_column(X, theta500_arcmin):
    if isinstance(theta500_arcmin, str):
        from .sample import as_sample

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
        Fitted, starting with the binning step and ending in a network or
        ensemble (the standard :func:`skcluster.models.make_mass_pipeline`).
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
    if origins:
        oc = origin_images(model, X)  # (n, 3, B, H, W), smoothed like the network's input
        counts = oc.sum(axis=1)
    else:
        oc = None
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
