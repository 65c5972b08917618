"""Arithmetic of a network per training cube, counted by torch's own FLOP counter.

:func:`training_flops` runs one forward and one backward pass of a network
on a small batch under :class:`torch.utils.flop_counter.FlopCounterMode`
and divides by the batch size: the floating-point operations one cube costs
when it is predicted (forward) and when it is trained on (forward and
backward). The counter counts a multiply-add as two operations and counts
the matrix products and convolutions only (element-wise operations, pooling,
activations and the optimizer step are left out: a few percent of a CNN's
arithmetic), so the numbers are comparable between architectures, not a
full operation count.
"""

from __future__ import annotations

import copy
import numbers

import torch

__all__ = ["training_flops"]


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                         output_padding, groups, output_mask, out_shape, **kwargs):
    """torch's count of a convolution's backward, with the weight gradient of a grouped one divided by groups.

    torch 2.x's ``conv_backward_flop`` counts the weight gradient of a
    convolution with ``groups`` groups as if every input channel met every
    output channel (``groups`` times too much; its input-gradient count is
    right). A grouped convolution's weight gradient costs what its forward
    does, as an ungrouped one's does.
    """
    from torch.utils.flop_counter import conv_backward_flop

    conv_backward_flop = getattr(conv_backward_flop, "__wrapped__", conv_backward_flop)  # shapes given

    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding, groups)
    grad_input = conv_backward_flop(*args, [output_mask[0], False, False], out_shape)
    grad_weight = conv_backward_flop(*args, [False, output_mask[1], False], out_shape)
    return grad_input + grad_weight // max(1, int(groups))


def _shape(input_shape):
    if isinstance(input_shape, numbers.Integral) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (bands, H, W), got {input_shape!r}")
    shape = tuple(int(s) for s in input_shape)
    if min(shape) < 1:
        raise ValueError(f"input_shape must be positive (bands, H, W), got {input_shape!r}")
    return shape


def training_flops(module, input_shape=None, n_scalars=None, batch_size=4, **module_params):
    """Forward and forward+backward FLOPs of a network per cube.

    Parameters
    ----------
    module : torch.nn.Module, type, or fitted CNNRegressor
        A built network (``forward(images, scalars)`` returning ``(mean,
        var)``), a network class (built here with ``n_bands``,
        ``image_size``, ``n_scalars`` and ``module_params``, e.g.
        :class:`~skcluster.nn.ClusterCNN`), or a fitted regressor (its
        ``module_`` and ``input_shape_``).
    input_shape : tuple of (int, int, int), default=None
        (bands, H, W) of one cube; required unless ``module`` is a fitted
        regressor.
    n_scalars : int, default=None
        Scalars per cube (the redshift: 1); default: the module's own
        ``n_scalars`` attribute, or 1.
    batch_size : int, default=4
        Cubes in the counted batch (the count is per cube, independent of
        it except through batch-norm statistics, which the counter ignores).
    **module_params
        Passed to the class when ``module`` is one (``channels=(16, 32)``).

    Returns
    -------
    dict
        ``forward`` (FLOPs of predicting one cube), ``backward`` (of its
        gradient) and ``training`` (``forward + backward``, one cube-pass of
        training), each an int; ``by_module``: forward+backward FLOPs of each
        submodule per cube (torch's own names, e.g. ``"ClusterCNN.features.0"``).

    Notes
    -----
    The first convolution's input needs no gradient, so its backward pass
    costs one forward's worth (the weight gradient) and every other layer's
    about two (weight and input gradients): ``training`` is a little under
    three times ``forward``. The count runs on a copy of the module, so its
    weights, batch-norm statistics, gradients and torch's global random
    generator are left as they were.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = {"display": False, "custom_mapping": {torch.ops.aten.convolution_backward: _conv_backward_flops}}

    net = module
    if hasattr(module, "module_") and hasattr(module, "input_shape_"):  # a fitted CNNRegressor
        net = module.module_
        input_shape = module.input_shape_ if input_shape is None else input_shape
        n_scalars = getattr(module, "n_scalars_", n_scalars) if n_scalars is None else n_scalars
    if input_shape is None:
        raise ValueError("training_flops: input_shape (bands, H, W) is required for a module or class")
    bands, h, w = _shape(input_shape)
    if n_scalars is None:
        n_scalars = int(getattr(net, "n_scalars", 1)) if not isinstance(net, type) else 1
    if isinstance(net, type):
        net = net(n_bands=bands, image_size=(h, w), n_scalars=int(n_scalars), **module_params)
    elif module_params:
        raise TypeError(f"training_flops: module parameters {sorted(module_params)} given for a built module")
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"training_flops: module must be a torch module, its class or a fitted regressor, "
                        f"got {type(module).__name__}")
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"training_flops: batch_size must be positive, got {batch_size}")
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    gen = torch.Generator(device="cpu").manual_seed(0)
    images = torch.rand((batch_size, bands, h, w), generator=gen).to(device)
    scalars = torch.rand((batch_size, int(n_scalars)), generator=gen).to(device)
    # a copy: the training-mode pass must not move batch-norm statistics or
    # leave gradients, and dropout must not draw from torch's global generator
    net = copy.deepcopy(net)
    with torch.random.fork_rng(devices=[]):
        net.eval()
        with torch.no_grad(), FlopCounterMode(**counter) as fwd:
            net(images, scalars)
        net.train()
        with FlopCounterMode(**counter) as full:
            mean, var = net(images, scalars)
            (mean.float().sum() + var.float().sum()).backward()
    forward = fwd.get_total_flops()
    total = full.get_total_flops()
    by_module = {name: sum(counts.values()) // batch_size
                 for name, counts in full.get_flop_counts().items() if name != "Global"}
    return {"forward": forward // batch_size, "backward": (total - forward) // batch_size,
            "training": total // batch_size, "by_module": by_module}
