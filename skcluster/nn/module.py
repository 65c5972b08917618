"""The torch module: a small CNN for band cubes with scalars in the dense part.

The architecture follows the seed study (Krippendorf et al. 2023,
arXiv:2305.00016, Sect. 3): convolution blocks on the (bands, H, W) cube,
flatten, the scalars (redshift) concatenated into the input of the first
dense layer, and a Gaussian output (a mean and a variance) trained with the
negative log likelihood so that every network of the deep ensemble predicts
its own aleatoric uncertainty (Lakshminarayanan et al. 2017,
arXiv:1612.01474).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from .._validation import check_positive_int, check_positive_number

__all__ = ["ClusterCNN", "SeededDropout"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}
_POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d, None: None}


class SeededDropout(nn.Module):
    """Dropout that draws its mask from an explicit :class:`torch.Generator`.

    ``torch.nn.Dropout`` draws from the global torch generator, so two
    networks trained at the same time in one process (threads, a Dask worker
    with several threads) would disturb each other's random streams.
    :class:`~skcluster.nn.CNNRegressor` sets ``generator`` for the length of
    a fit and resets it to ``None`` afterwards (a generator is not part of
    the saved state); with ``generator=None`` this is ordinary dropout.

    Parameters
    ----------
    p : float, default=0.5
        Probability of zeroing an element.
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.generator = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.generator is None:
            return F.dropout(x, self.p, training=True)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self):
        return f"p={self.p}"


def _per_block(value, n, name):
    """Broadcast an int (or None) to ``n`` blocks, or check a sequence has ``n``."""
    if value is None or isinstance(value, numbers.Integral):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(
            f"{name} has {len(value)} entries but there are {n} convolution blocks "
            "(one per entry of `channels`)"
        )
    return value


def conv_blocks(n_bands, channels, kernels, image_size, pool, batch_norm, conv_dropout, act, members=1, gamma=1):
    """The convolution blocks of :class:`ClusterCNN` (``members`` > 1: grouped, as in a Packed-Ensemble).

    Block i is ``conv (same padding) -> [batch norm] -> act -> [dropout] ->
    [pool 2x2]`` from ``members * channels[i-1]`` to ``members *
    channels[i]`` channels, in ``members`` groups for the first block (each
    member reads its own copy of the ``n_bands`` bands) and ``members *
    gamma`` groups after it.

    Returns
    -------
    (torch.nn.Sequential, int, int, int)
        The blocks, the last block's channels per member, and the output H, W.
    """
    h, w = image_size
    blocks = []
    c_in = int(n_bands)
    for i, (c_out, k) in enumerate(zip(channels, kernels)):
        groups = members if i == 0 else members * gamma
        layers = [nn.Conv2d(members * c_in, members * c_out, int(k), padding="same", groups=groups,
                            bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(members * c_out))  # per channel, hence per member
        layers.append(act())
        if conv_dropout:
            layers.append(SeededDropout(conv_dropout))
        if pool is not None:
            if min(h, w) < 2:
                raise ValueError(
                    f"image of {image_size[0]}x{image_size[1]} pixels is too small "
                    f"for {len(channels)} pooling blocks (block {i + 1} would see "
                    f"{h}x{w}); use fewer channels entries or pool=None"
                )
            layers.append(_POOLS[pool](2))
            h, w = h // 2, w // 2
        blocks.append(nn.Sequential(*layers))
        c_in = c_out
    return nn.Sequential(*blocks), c_in, h, w


class ClusterCNN(nn.Module):
    """CNN on (n, bands, H, W) cubes plus K scalars, with a Gaussian output.

    Each convolution block is ``conv (same padding) -> [batch norm] ->
    activation -> [dropout] -> [pool 2x2]``. After the last block the feature
    maps are flattened (or averaged, ``global_pool=True``), the scalars are
    concatenated, and dense layers lead to two heads: the mean and the
    variance, ``softplus(raw) + var_floor``.

    ``n_bands``, ``image_size`` and ``n_scalars`` come from the data: the
    regressor fills them in when it builds the module in ``fit``.

    Parameters
    ----------
    n_bands : int
        Number of energy bands (input channels) B.
    image_size : tuple of (int, int)
        (H, W) in pixels.
    n_scalars : int, default=1
        Number K of scalars per cluster (1 for the redshift; 0 for the
        no-redshift ablation).
    channels : sequence of int, default=(16, 32, 64)
        Output channels of each convolution block; its length is the depth.
    kernel_sizes : int or sequence of int, default=3
        Kernel size of each block (odd sizes keep the image centred).
    pool : {"max", "avg"} or None, default="max"
        2x2 pooling after each block (halving H and W); ``None`` for none.
    batch_norm : bool, default=False
        Batch normalisation after each convolution.
    conv_dropout : float, default=0.0
        Dropout after each convolution block.
    dense : sequence of int, default=(64,)
        Widths of the dense layers; the scalars enter the first one. Empty:
        the heads read the flattened features and the scalars directly.
    dropout : float, default=0.1
        Dropout after each dense layer.
    global_pool : bool, default=False
        Average each feature map to one number instead of flattening.
    activation : {"relu", "elu", "gelu", "leaky_relu", "silu"}, default="relu"
    var_floor : float, default=1e-4
        Added to the softplus of the variance head so the predicted variance
        (in units of the training target squared) never reaches zero.

    Notes
    -----
    ``forward(images, scalars)`` returns ``(mean, var)``, each of shape (n, 1)
    and float32 (the heads run outside autocast, in full precision).
    """

    def __init__(
        self,
        n_bands,
        image_size,
        n_scalars=1,
        channels=(16, 32, 64),
        kernel_sizes=3,
        pool="max",
        batch_norm=False,
        conv_dropout=0.0,
        dense=(64,),
        dropout=0.1,
        global_pool=False,
        activation="relu",
        var_floor=1e-4,
    ):
        super().__init__()
        if isinstance(image_size, numbers.Integral):
            image_size = (int(image_size), int(image_size))
        h, w = (int(s) for s in image_size)
        channels = [check_positive_int(c, f"channels[{i}]", "ClusterCNN") for i, c in enumerate(channels)]
        if not channels:
            raise ValueError("ClusterCNN: channels must be a non-empty list of positive integers, got []")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if pool not in _POOLS:
            raise ValueError(f"pool must be 'max', 'avg' or None, got {pool!r}")
        check_positive_number(var_floor, "var_floor", "ClusterCNN")
        kernels = _per_block(kernel_sizes, len(channels), "kernel_sizes")
        act = _ACTIVATIONS[activation]

        self.features, c_in, h, w = conv_blocks(int(n_bands), channels, kernels, (h, w), pool, batch_norm,
                                                conv_dropout, act)
        self.global_pool = bool(global_pool)
        n_flat = c_in if global_pool else c_in * h * w
        self.n_scalars = int(n_scalars)

        dense_layers = []
        n_in = n_flat + self.n_scalars
        for width in dense:
            dense_layers += [nn.Linear(n_in, int(width)), act()]
            if dropout:
                dense_layers.append(SeededDropout(dropout))
            n_in = int(width)
        self.dense = nn.Sequential(*dense_layers)
        self.mean_head = nn.Linear(n_in, 1)
        self.var_head = nn.Linear(n_in, 1)
        self.var_floor = float(var_floor)
        # Start with a unit variance (the regressor standardises y): softplus(x) = 1
        # at x = log(e - 1).
        nn.init.constant_(self.var_head.bias, math.log(math.e - 1.0))

    def forward(self, images, scalars=None):
        x = self.features(images)
        x = x.mean(dim=(2, 3)) if self.global_pool else torch.flatten(x, 1)
        if scalars is not None and scalars.shape[-1] > 0:
            x = torch.cat([x, scalars.to(x.dtype)], dim=1)
        elif self.n_scalars:
            raise ValueError(f"the network expects {self.n_scalars} scalars per cluster, got none")
        x = self.dense(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            mean = self.mean_head(x)
            var = F.softplus(self.var_head(x)) + self.var_floor
        return mean, var

