"""The fitted networks behind a model, the input they see, and differentiable forward passes."""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["network_input", "network_members"]

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

    from ..nn import CNNRegressor

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
    from ..nn._data import network_inputs

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

    from ..nn.augment import scale_images

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
