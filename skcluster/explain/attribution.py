"""Attributions of the predicted mean to the network input: saliency and integrated gradients."""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_int
from ._network import _eval_mode, _forward_mean, _grad, _progress, _tensor, network_input, network_members
from .origins import _select_origins

__all__ = ["integrated_gradients", "saliency"]


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
