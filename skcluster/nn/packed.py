"""Packed-Ensembles: M small networks in one, as grouped convolutions.

Packed-Ensembles (Laurent et al. 2023, ICLR, arXiv:2210.09184) build a deep
ensemble of M members into one network whose layers are grouped
convolutions with the members as groups: no operation mixes members, so
the members are independent networks (own initial weights, own gradients)
trained in one pass. Each member is the base network with its widths
multiplied by ``alpha / M``, and each member's convolutions after the first
can be split further into ``gamma`` groups. A convolution of width ``C``
costs ``~C_in C_out``, so the members together cost ``alpha**2 / M`` of the
arithmetic of M independent full-width members (``alpha = 2, M = 4``: one
base network's worth instead of four).

:class:`PackedClusterCNN` is :class:`~skcluster.nn.ClusterCNN` packed that
way; :class:`PackedEnsembleRegressor` trains it with the members' mean
Gaussian NLL and predicts their equally weighted mixture (the deep
ensemble's formula, :func:`skcluster.ensemble.mixture_moments`). Beyond the
paper, each member gets its own augmentation draws of every batch (a
rotation/flip, a Poisson and noise realisation per member and cube): the
first convolution reads each member's copy of the cube with groups = M,
which costs exactly what one ungrouped convolution to M * C channels of the
shared cube costs. The members share the shuffling and the validation
split, and stop training together (early stopping on their mean
validation NLL), unlike independent members.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from skorch.utils import to_tensor
from torch import nn
from torch.nn import functional as F

from .._validation import check_positive_int, check_positive_number
from ..mixture import mixture_components, mixture_moments
from ._data import network_inputs
from .module import (
    _ACTIVATIONS,
    _POOLS,
    ClusterCNN,
    SeededDropout,
    _per_block,
    conv_blocks,
)
from .regressor import CNNRegressor

__all__ = ["PackedClusterCNN", "PackedEnsembleRegressor", "packed_width"]


def packed_width(width, n_members, alpha, gamma=1):
    """A member's width: ``alpha * width / n_members``, at least ``gamma``, rounded to a multiple of ``gamma``."""
    w = max(1.0, alpha * width / n_members)
    return int(max(gamma, gamma * round(w / gamma)))


class _PackedLinear(nn.Module):
    """M ``Linear`` layers as one batched product on (M, n, in); each member initialised as ``nn.Linear``."""

    def __init__(self, n_members, n_in, n_out):
        super().__init__()
        parts = [nn.Linear(n_in, n_out) for _ in range(n_members)]
        self.weight = nn.Parameter(torch.stack([p.weight.detach() for p in parts]))  # (M, out, in)
        self.bias = nn.Parameter(torch.stack([p.bias.detach() for p in parts]))  # (M, out)

    def forward(self, x):
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))

    def extra_repr(self):
        m, out, n_in = self.weight.shape
        return f"members={m}, in_features={n_in}, out_features={out}"


class PackedClusterCNN(nn.Module):
    """``n_members`` ClusterCNNs of width ``alpha / n_members`` as one grouped network.

    Parameters
    ----------
    n_bands, image_size, n_scalars
        As :class:`~skcluster.nn.ClusterCNN` (filled in from the data).
    n_members : int, default=4
        Members M (Laurent et al. 2023 use 4).
    alpha : float, default=2.0
        Width factor: each member has ``alpha / M`` of every width of
        ``channels`` and ``dense`` (:func:`packed_width`); ``alpha = M``
        gives M full-width members.
    gamma : int, default=1
        Groups within each member's convolutions after the first (each
        member's widths are rounded to a multiple of it).
    channels, kernel_sizes, pool, batch_norm, conv_dropout, dense, dropout, global_pool, activation, var_floor
        The base network's settings, as :class:`~skcluster.nn.ClusterCNN`.
    conv_mode : {"auto", "grouped", "loop"}, default="auto"
        How the convolution blocks run; the same weights and arithmetic
        either way (results equal to float rounding). "grouped": one grouped
        convolution per layer. "loop": each member's slice of every layer on
        its own activations, one member after the other (oneDNN's grouped
        convolutions are slow on CPUs, see
        :class:`~skcluster.nn.stacked.StackedClusterCNN`). "auto": "grouped"
        on CUDA, "loop" elsewhere.

    Notes
    -----
    ``forward(images, scalars)`` takes the cubes either shared, (n, B, H, W),
    each member reading the same one, or one per member, (n, M*B, H, W)
    with member m's copy in channels ``m*B:(m+1)*B``. It returns ``(mean,
    var)``, each of shape (n, M), float32 (the heads run outside autocast).
    """

    def __init__(self, n_bands, image_size, n_scalars=1, n_members=4, alpha=2.0, gamma=1,
                 channels=(16, 32, 64), kernel_sizes=3, pool="max", batch_norm=False, conv_dropout=0.0,
                 dense=(64,), dropout=0.1, global_pool=False, activation="relu", var_floor=1e-4,
                 conv_mode="auto"):
        super().__init__()
        where = "PackedClusterCNN"
        if conv_mode not in ("auto", "grouped", "loop"):
            raise ValueError(f"{where}: conv_mode must be 'auto', 'grouped' or 'loop', got {conv_mode!r}")
        self.conv_mode = conv_mode
        m = check_positive_int(n_members, "n_members", where)
        check_positive_number(alpha, "alpha", where)
        g = check_positive_int(gamma, "gamma", where)
        if isinstance(image_size, numbers.Integral):
            image_size = (int(image_size), int(image_size))
        h, w = (int(s) for s in image_size)
        channels = [check_positive_int(c, f"channels[{i}]", where) for i, c in enumerate(channels)]
        if not channels:
            raise ValueError(f"{where}: channels must be a non-empty list of positive integers, got []")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if pool not in _POOLS:
            raise ValueError(f"pool must be 'max', 'avg' or None, got {pool!r}")
        check_positive_number(var_floor, "var_floor", where)
        kernels = _per_block(kernel_sizes, len(channels), "kernel_sizes")
        act = _ACTIVATIONS[activation]
        self.n_members, self.alpha, self.gamma = m, float(alpha), g
        self.n_bands = int(n_bands)
        self.member_channels = [packed_width(c, m, alpha, g) for c in channels]
        self.member_dense = [packed_width(d, m, alpha) for d in dense]

        self.features, c_in, h, w = conv_blocks(self.n_bands, self.member_channels, kernels, (h, w), pool,
                                                batch_norm, conv_dropout, act, members=m, gamma=g)
        self.global_pool = bool(global_pool)
        self.n_scalars = int(n_scalars)
        n_in = (c_in if global_pool else c_in * h * w) + self.n_scalars
        dense_layers = []
        for width in self.member_dense:
            dense_layers += [_PackedLinear(m, n_in, width), act()]
            if dropout:
                dense_layers.append(SeededDropout(dropout))
            n_in = width
        self.dense = nn.Sequential(*dense_layers)
        self.mean_head = _PackedLinear(m, n_in, 1)
        self.var_head = _PackedLinear(m, n_in, 1)
        self.var_floor = float(var_floor)
        nn.init.constant_(self.var_head.bias, math.log(math.e - 1.0))  # unit variance at the start

    def _loop_layer(self, layer, x, i):
        """Member ``i``'s part of ``layer`` on its own activations ``x``."""
        m = self.n_members
        if isinstance(layer, nn.Conv2d):
            c = layer.out_channels // m
            bias = None if layer.bias is None else layer.bias[i * c:(i + 1) * c]
            return F.conv2d(x, layer.weight[i * c:(i + 1) * c], bias, layer.stride, layer.padding, layer.dilation,
                            layer.groups // m)
        if isinstance(layer, nn.BatchNorm2d):
            c = layer.num_features // m
            part = slice(i * c, (i + 1) * c)  # views of the running statistics: updated in place
            return F.batch_norm(x, layer.running_mean[part], layer.running_var[part], layer.weight[part],
                                layer.bias[part], layer.training, layer.momentum, layer.eps)
        return layer(x)  # activations, dropout, pooling: element- or channel-wise

    def _features_loop(self, images):
        m, b = self.n_members, self.n_bands
        shared = images.shape[1] == b
        if self.training:
            for layer in self.features.modules():
                if isinstance(layer, nn.BatchNorm2d):
                    layer.num_batches_tracked.add_(1)  # once per batch, as the grouped layer counts
        out = []
        for i in range(m):
            x = images if shared else images[:, i * b:(i + 1) * b]
            for block in self.features:
                for layer in block:
                    x = self._loop_layer(layer, x, i)
            out.append(x.mean(dim=(2, 3)) if self.global_pool else torch.flatten(x, 1))
        return torch.stack(out)  # (M, n, F)

    def forward(self, images, scalars=None):
        m, b = self.n_members, self.n_bands
        if images.dim() != 4 or images.shape[1] not in (b, m * b):
            raise ValueError(f"images must have shape (n, {b}, H, W) (shared by the members) or "
                             f"(n, {m * b}, H, W) (one copy per member), got {tuple(images.shape)}")
        mode = self.conv_mode
        if mode == "auto":
            mode = "grouped" if images.device.type == "cuda" else "loop"
        if mode == "loop":
            x = self._features_loop(images)
        else:
            if images.shape[1] == b and m > 1:
                images = images.repeat(1, m, 1, 1)
            x = self.features(images)
            n = x.shape[0]
            x = x.mean(dim=(2, 3)) if self.global_pool else x
            x = x.reshape(n, m, -1).transpose(0, 1)  # (M, n, F): member m's channels are the m-th block
        if scalars is not None and scalars.shape[-1] > 0:
            x = torch.cat([x, scalars.to(x.dtype).unsqueeze(0).expand(m, -1, -1)], dim=2)
        elif self.n_scalars:
            raise ValueError(f"the network expects {self.n_scalars} scalars per cluster, got none")
        x = self.dense(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            mean = self.mean_head(x)[..., 0].T  # (n, M)
            var = (F.softplus(self.var_head(x)) + self.var_floor)[..., 0].T
        return mean, var


class PackedEnsembleRegressor(CNNRegressor):
    """A Packed-Ensemble of ``n_members`` CNNs trained and run as one network.

    A :class:`~skcluster.nn.CNNRegressor` whose network is a
    :class:`PackedClusterCNN`: it takes every ``CNNRegressor`` parameter
    (``module__channels``, ``module__dense`` ... describe the base network
    the members are packed from) and predicts the members' equally
    weighted Gaussian mixture (Laurent et al. 2023, arXiv:2210.09184; the
    mixture as a deep ensemble's, Lakshminarayanan et al. 2017).

    Parameters
    ----------
    module : type, default=PackedClusterCNN
    n_members : int, default=4
        Members M.
    alpha : float, default=2.0
        Width factor (each member has ``alpha / M`` of the base widths).
    gamma : int, default=1
        Groups within each member's later convolutions.
    **kwargs
        :class:`~skcluster.nn.CNNRegressor` parameters.

    Notes
    -----
    Training minimises the members' mean Gaussian NLL (each member's
    gradient is its own NLL's over M; Adam's update does not depend on that
    scale), and early stopping watches the mean validation NLL, so all
    members stop at one epoch. Each member sees its own augmentation draws
    of each batch. ``predict(X, return_std=True)`` returns the mixture mean
    ``mean_i mu_i`` and standard deviation ``sqrt(mean_i (sigma_i^2 +
    mu_i^2) - mean^2)``; :meth:`predict_components` splits it into the
    aleatoric and epistemic (members' disagreement) parts and
    :meth:`predict_members` gives each member's Gaussian. As a member of
    :class:`~skcluster.ensemble.DeepEnsembleRegressor` its members join the
    ensemble's mixture one by one. Not trained by the vectorised ensemble
    path (it is one network already).

    Examples
    --------
    >>> from skcluster.nn import make_toy_sample
    >>> from skcluster.nn.packed import PackedEnsembleRegressor
    >>> X, y = make_toy_sample(64, random_state=0)
    >>> net = PackedEnsembleRegressor(n_members=3, alpha=2, input_scaling="log1p", max_epochs=2,
    ...                               random_state=0, module__channels=(4, 8), module__dense=(16,))
    >>> parts = net.fit(X, y).predict_components(X)
    >>> parts.member_means.shape, bool((parts.epistemic_std > 0).all())
    ((3, 64), True)
    """

    def __init__(self, module=PackedClusterCNN, *, n_members=4, alpha=2.0, gamma=1, **kwargs):
        super().__init__(module, **kwargs)
        self.n_members = n_members
        self.alpha = alpha
        self.gamma = gamma

    @classmethod
    def from_regressor(cls, net, n_members=4, alpha=2.0, gamma=1):
        """The Packed-Ensemble of ``net``'s settings (an unfitted ``CNNRegressor`` with ``ClusterCNN``)."""
        params = net.get_params(deep=False)
        params.pop("_params_to_validate", None)
        if params.pop("module", ClusterCNN) is not ClusterCNN:
            raise ValueError(f"{cls.__name__}.from_regressor: the network's module must be ClusterCNN")
        return cls(n_members=n_members, alpha=alpha, gamma=gamma, **params)

    def _check_params(self):
        super()._check_params()
        where = type(self).__name__
        check_positive_int(self.n_members, "n_members", where)
        check_positive_number(self.alpha, "alpha", where)
        check_positive_int(self.gamma, "gamma", where)

    def get_params_for(self, prefix):
        params = super().get_params_for(prefix)
        if prefix == "module" and isinstance(self.module, type):
            for key in ("n_members", "alpha", "gamma"):
                params.setdefault(key, getattr(self, key))
        return params

    def _prepare_images(self, images, training):
        if not (training and (self.augment or self.poisson or self.noise_sigma)):
            return super()._prepare_images(images, training)  # shared: the network copies the cube
        m = self.module_.n_members
        n, b, h, w = images.shape
        # each member's own augmentation draws: augment n * M copies, then one (n, M*B, H, W) cube
        copies = images.unsqueeze(1).expand(n, m, b, h, w).reshape(n * m, b, h, w)
        out = super()._prepare_images(copies, training).reshape(n, m * b, h, w)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def get_loss(self, y_pred, y_true, X=None, training=False):
        mean, var = y_pred  # (n, M)
        y_true = to_tensor(y_true, device=self.device).to(mean.dtype).reshape(-1, 1).expand_as(mean)
        weight = X.get("sample_weight") if isinstance(X, dict) else None
        if weight is None:
            return self.criterion_(mean, var, y_true, weighted=training)
        weight = to_tensor(weight, device=self.device).reshape(-1, 1).expand_as(mean)
        return self.criterion_(mean, var, y_true, weighted=training, sample_weight=weight)

    def predict_members(self, X):
        """Each member's predicted mean and variance of log10 M500c.

        Returns
        -------
        means, variances : ndarray of shape (n_members, n), float64
        """
        self._check_fitted()
        where = f"{type(self).__name__}.predict"
        images, scalars = network_inputs(X, where)
        self._check_shape(images, scalars, where)
        m = self.module_.n_members
        if images.shape[0] == 0:
            return np.zeros((m, 0)), np.zeros((m, 0))
        means, variances = [], []
        for mean, var in self.forward_iter({"images": images, "scalars": scalars}, training=False):
            means.append(mean.numpy())
            variances.append(var.numpy())
        mean = np.concatenate(means).T.astype(np.float64) * self.y_scale_ + self.y_mean_
        var = np.concatenate(variances).T.astype(np.float64) * self.y_scale_**2
        return mean, var

    def predict_gaussian(self, X):
        """Mixture mean and variance of log10 M500c, each of shape (n,), float64."""
        mean, alea, epi = mixture_moments(*self.predict_members(X))
        return mean, alea + epi

    def predict_components(self, X):
        """Mixture mean with the total, aleatoric and epistemic uncertainty.

        As :meth:`skcluster.ensemble.DeepEnsembleRegressor.predict_components`:
        a Bunch with ``mean``, ``std``, ``aleatoric_std`` (sqrt of the mean
        member variance), ``epistemic_std`` (the members' spread, ddof=0),
        ``member_means`` and ``member_stds`` (n_members, n).
        """
        return mixture_components(*self.predict_members(X))

