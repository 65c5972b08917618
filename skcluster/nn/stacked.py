"""M copies of :class:`~skcluster.nn.ClusterCNN` as one module (a vectorised deep ensemble).

:class:`StackedClusterCNN` holds the weights of M networks of identical
architecture, every parameter with a leading member axis, and runs all of
them in one forward pass:

* convolutions are either grouped convolutions with the members as groups
  (``conv_mode="grouped"``: activations of shape (n, M*C, H, W), channels
  ``m*C:(m+1)*C`` belonging to member m; when all members read the same
  images the first convolution is an ordinary one with M*C output
  channels), or each member's own convolution on its own activations
  (``conv_mode="loop"``, faster on CPUs, where grouped convolutions are
  slow and the members' activations together do not fit in cache);
* batch normalisation normalises each of the M*C channels on its own, which
  is exactly each member's own batch normalisation;
* dense layers and the two heads are batched matrix products over the
  member axis (``torch.baddbmm``);
* dropout draws each member's mask from that member's own generator.

No operation mixes members, so the gradient of the sum of the members'
losses with respect to member m's weights is member m's own gradient, and an
elementwise optimizer (Adam, AdamW, SGD) updates each member exactly as it
would alone. :meth:`StackedClusterCNN.member_state_dicts` gives back one
ordinary ``ClusterCNN`` state dict per member.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from .module import ClusterCNN, SeededDropout

__all__ = ["StackedClusterCNN", "stackable"]


def _stack(tensors):
    return torch.stack([t.detach() for t in tensors]).clone()


class _StackedConv2d(nn.Module):
    """M ``Conv2d`` (same architecture) as one grouped convolution."""

    def __init__(self, convs):
        super().__init__()
        c = convs[0]
        if c.groups != 1 or c.padding_mode != "zeros":
            raise ValueError("only ungrouped, zero-padded convolutions can be stacked")
        self.n_members = len(convs)
        self.out_channels = c.out_channels
        self.stride, self.padding, self.dilation = c.stride, c.padding, c.dilation
        # (M*Cout, Cin, k, k): a 4-D weight, so channels_last applies to it
        self.weight = nn.Parameter(torch.cat([m.weight.detach() for m in convs]).clone())
        self.bias = None if c.bias is None else nn.Parameter(_stack([m.bias for m in convs]))

    def forward(self, x, shared=False):
        bias = None if self.bias is None else self.bias.reshape(-1)
        groups = 1 if shared else self.n_members
        return F.conv2d(x, self.weight, bias, self.stride, self.padding, self.dilation, groups)

    def member_forward(self, x, m):
        c = self.out_channels
        bias = None if self.bias is None else self.bias[m]
        return F.conv2d(x, self.weight[m * c : (m + 1) * c], bias, self.stride, self.padding, self.dilation)


class _StackedBatchNorm2d(nn.Module):
    """M ``BatchNorm2d`` as one over M*C channels (statistics per member and channel)."""

    def __init__(self, bns):
        super().__init__()
        b = bns[0]
        if b.momentum is None or not b.track_running_stats:
            raise ValueError("batch norm with momentum=None or without running stats cannot be stacked")
        self.n_members = len(bns)
        self.eps, self.momentum = b.eps, b.momentum
        self.weight = None if b.weight is None else nn.Parameter(_stack([m.weight for m in bns]))
        self.bias = None if b.bias is None else nn.Parameter(_stack([m.bias for m in bns]))
        self.register_buffer("running_mean", _stack([m.running_mean for m in bns]))
        self.register_buffer("running_var", _stack([m.running_var for m in bns]))
        self.register_buffer("num_batches_tracked", _stack([m.num_batches_tracked for m in bns]))

    def member_forward(self, x, m):
        if self.training:
            self.num_batches_tracked[m].add_(1)
        return F.batch_norm(
            x,
            self.running_mean[m],
            self.running_var[m],
            None if self.weight is None else self.weight[m],
            None if self.bias is None else self.bias[m],
            self.training,
            self.momentum,
            self.eps,
        )

    def forward(self, x):
        if self.training:
            self.num_batches_tracked.add_(1)
        # views of the buffers: F.batch_norm updates them in place
        return F.batch_norm(
            x,
            self.running_mean.view(-1),
            self.running_var.view(-1),
            None if self.weight is None else self.weight.reshape(-1),
            None if self.bias is None else self.bias.reshape(-1),
            self.training,
            self.momentum,
            self.eps,
        )


class _StackedLinear(nn.Module):
    """M ``Linear`` layers as one batched matrix product on (M, n, in)."""

    def __init__(self, linears):
        super().__init__()
        self.n_members = len(linears)
        self.weight = nn.Parameter(_stack([m.weight for m in linears]))  # (M, out, in)
        self.bias = nn.Parameter(_stack([m.bias for m in linears]))  # (M, out)

    def forward(self, x):
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class _StackedDropout(nn.Module):
    """Dropout whose mask for member m comes from ``generators[m]`` (as :class:`SeededDropout`).

    ``member_axis`` is 1 for (n, M*C, H, W) activations and 0 for (M, n, F).
    """

    def __init__(self, p, n_members, member_axis):
        super().__init__()
        self.p = float(p)
        self.n_members = n_members
        self.member_axis = member_axis
        self.generators = None

    def member_forward(self, x, m):
        if not self.training or self.p == 0.0:
            return x
        if self.generators is None:
            return F.dropout(x, self.p, training=True)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generators[m])
        return x * keep / (1.0 - self.p)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.generators is None:
            return F.dropout(x, self.p, training=True)
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        parts = x.chunk(self.n_members, dim=1) if self.member_axis else x.unbind(0)
        masks = [
            torch.empty(part.shape, dtype=x.dtype, device=x.device)
            .contiguous(memory_format=fmt)
            .bernoulli_(1.0 - self.p, generator=g)
            for part, g in zip(parts, self.generators)
        ]
        keep = torch.cat(masks, dim=1) if self.member_axis else torch.stack(masks)
        return x * keep / (1.0 - self.p)


def _by_member(mod, name, t):
    """``t`` (a parameter, buffer or optimizer state of ``mod.name``) with a leading member axis."""
    if isinstance(mod, _StackedConv2d) and name == "weight":
        return t.reshape(mod.n_members, -1, *t.shape[1:])
    return t


def _take(mod, name, t, index):
    """The members ``index`` (a long tensor) of ``t``, in the stored layout of ``mod.name``."""
    out = _by_member(mod, name, t)[index.to(t.device)]
    if isinstance(mod, _StackedConv2d) and name == "weight":
        cl = t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
        out = out.reshape(-1, *t.shape[1:])
        return out.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
    return out.clone()


def stackable(modules):
    """Why ``modules`` cannot be stacked into one :class:`StackedClusterCNN`, or None if they can.

    They must all be :class:`ClusterCNN` (exactly, not subclasses) with the
    same parameter and buffer shapes and the same layer types.
    """
    modules = list(modules)
    if not modules:
        return "no members"
    for m in modules:
        if type(m) is not ClusterCNN:
            return f"member module is {type(m).__name__}, not ClusterCNN"
    ref = modules[0]
    shapes = [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    layers = [type(x).__name__ for x in ref.modules()]
    for m in modules[1:]:
        if [(k, tuple(v.shape)) for k, v in m.state_dict().items()] != shapes:
            return "member modules have different architectures"
        if [type(x).__name__ for x in m.modules()] != layers:
            return "member modules have different layers"
        if (m.global_pool, m.n_scalars, m.var_floor) != (ref.global_pool, ref.n_scalars, ref.var_floor):
            return "member modules differ in global_pool, n_scalars or var_floor"
    for x in ref.modules():
        if isinstance(x, nn.Conv2d) and (x.groups != 1 or x.padding_mode != "zeros"):
            return "grouped or non-zero-padded convolutions"
        if isinstance(x, nn.BatchNorm2d) and (x.momentum is None or not x.track_running_stats):
            return "batch norm with momentum=None or without running statistics"
    return None


class StackedClusterCNN(nn.Module):
    """M :class:`ClusterCNN` of identical architecture as one module.

    Parameters
    ----------
    modules : sequence of ClusterCNN
        The members; their weights (and batch-norm statistics) are copied.
    conv_mode : {"auto", "grouped", "loop"}, default="auto"
        How the convolution blocks run. "grouped": one grouped convolution
        (members as groups) per layer on (n, M*C, H, W) activations, so every
        layer is one operation (few, large kernels: good on GPUs). "loop":
        each member's convolution blocks run on its own (n, C, H, W)
        activations, one after the other, while everything after the
        convolutions (dense layers, heads, loss, optimizer step) stays one
        batched operation; on CPUs the per-member convolutions keep each
        member's activations in cache and oneDNN's grouped convolutions are
        slower than M ordinary ones. "auto": "grouped" on CUDA, "loop"
        elsewhere (decided at each forward from the input's device).

    Notes
    -----
    ``forward(images, scalars)`` takes either shared inputs, ``images`` of
    shape (n, B, H, W) and ``scalars`` (n, K), which every member reads (for
    prediction), or per-member inputs, ``images`` a sequence of M tensors
    (n, B, H, W) or one tensor (M, n, B, H, W) and ``scalars`` (M, n, K)
    (for training: member m sees its own batch). It returns ``(mean, var)``,
    each of shape (M, n, 1) and float32 (the heads run outside autocast, as
    in ``ClusterCNN``). No operation mixes members.
    """

    def __init__(self, modules, conv_mode="auto"):
        super().__init__()
        modules = list(modules)
        why = stackable(modules)
        if why:
            raise ValueError(f"cannot stack these networks: {why}")
        if conv_mode not in ("auto", "grouped", "loop"):
            raise ValueError(f"conv_mode must be 'auto', 'grouped' or 'loop', got {conv_mode!r}")
        ref = modules[0]
        self.conv_mode = conv_mode
        self.n_members = len(modules)
        self.n_bands = ref.features[0][0].in_channels
        self.global_pool = ref.global_pool
        self.n_scalars = ref.n_scalars
        self.var_floor = ref.var_floor
        # (key in a member's state dict) -> (stacked submodule, attribute)
        self._keys = []
        blocks = []
        for i, block in enumerate(ref.features):
            layers = []
            for j, layer in enumerate(block):
                group = [m.features[i][j] for m in modules]
                prefix = f"features.{i}.{j}"
                layers.append(self._stack_layer(layer, group, prefix, member_axis=1))
            blocks.append(nn.ModuleList(layers))
        self.features = nn.ModuleList(blocks)
        self.dense = nn.ModuleList(
            [
                self._stack_layer(layer, [m.dense[j] for m in modules], f"dense.{j}", member_axis=0)
                for j, layer in enumerate(ref.dense)
            ]
        )
        self.mean_head = self._stack_layer(ref.mean_head, [m.mean_head for m in modules], "mean_head", 0)
        self.var_head = self._stack_layer(ref.var_head, [m.var_head for m in modules], "var_head", 0)

    def _stack_layer(self, layer, group, prefix, member_axis):
        if isinstance(layer, nn.Conv2d):
            out = _StackedConv2d(group)
            names = ["weight", "bias"]
        elif isinstance(layer, nn.BatchNorm2d):
            out = _StackedBatchNorm2d(group)
            names = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
        elif isinstance(layer, nn.Linear):
            out = _StackedLinear(group)
            names = ["weight", "bias"]
        elif isinstance(layer, SeededDropout):
            return _StackedDropout(layer.p, len(group), member_axis)
        else:  # activations and pooling act on each channel / element alone
            return copy.deepcopy(layer)
        for name in names:
            if getattr(out, name, None) is not None:
                self._keys.append((f"{prefix}.{name}", out, name))
        return out

    # ----------------------------------------------------------------- forward
    def _resolved_mode(self, device):
        if self.conv_mode != "auto":
            return self.conv_mode
        return "grouped" if device.type == "cuda" else "loop"

    def _features_grouped(self, x, shared):
        first = True
        for block in self.features:
            for layer in block:
                if isinstance(layer, _StackedConv2d):
                    x = layer(x, shared=shared and first)
                    first = False
                else:
                    x = layer(x)
        n = x.shape[0]
        x = x.mean(dim=(2, 3)) if self.global_pool else x
        return x.reshape(n, self.n_members, -1).transpose(0, 1)  # (M, n, F)

    def _features_loop(self, xs):
        out = []
        for m, x in enumerate(xs):
            for block in self.features:
                for layer in block:
                    x = layer.member_forward(x, m) if hasattr(layer, "member_forward") else layer(x)
            out.append(x.mean(dim=(2, 3)) if self.global_pool else torch.flatten(x, 1))
        return torch.stack(out)  # (M, n, F)

    def forward(self, images, scalars=None):
        m = self.n_members
        b = self.n_bands
        if isinstance(images, (list, tuple)):
            if len(images) != m:
                raise ValueError(f"got {len(images)} image batches for {m} members")
            per_member, device = True, images[0].device
        elif images.dim() == 5 and images.shape[0] == m and images.shape[2] == b:
            per_member, device = True, images.device
        elif images.dim() == 4 and images.shape[1] == b:
            per_member, device = False, images.device
        else:
            raise ValueError(
                f"images must have shape (n, {b}, H, W) (shared by all members) or "
                f"({m}, n, {b}, H, W) (one batch per member), got {tuple(images.shape)}"
            )
        if self._resolved_mode(device) == "loop":
            x = self._features_loop(list(images) if per_member else [images] * m)
        elif per_member:
            imgs = torch.stack(list(images)) if isinstance(images, (list, tuple)) else images
            n = imgs.shape[1]
            x = imgs.transpose(0, 1).reshape(n, m * b, *imgs.shape[3:])
            if images[0].is_contiguous(memory_format=torch.channels_last) and not images[0].is_contiguous():
                x = x.contiguous(memory_format=torch.channels_last)
            x = self._features_grouped(x, shared=False)
        else:
            x = self._features_grouped(images, shared=True)
        if scalars is not None and scalars.shape[-1] > 0:
            if scalars.dim() == 2:
                scalars = scalars.unsqueeze(0).expand(m, -1, -1)
            x = torch.cat([x, scalars.to(x.dtype)], dim=2)
        elif self.n_scalars:
            raise ValueError(f"the network expects {self.n_scalars} scalars per cluster, got none")
        for layer in self.dense:
            x = layer(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            mean = self.mean_head(x)
            var = F.softplus(self.var_head(x)) + self.var_floor
        return mean, var

    # ------------------------------------------------------------ bookkeeping
    def set_dropout_generators(self, generators):
        """Give member m's dropout masks to ``generators[m]`` (None: global generator)."""
        if generators is not None and len(generators) != self.n_members:
            raise ValueError(f"need {self.n_members} generators, got {len(generators)}")
        for mod in self.modules():
            if isinstance(mod, _StackedDropout):
                mod.generators = None if generators is None else list(generators)

    def member_state_dicts(self):
        """One ``ClusterCNN`` state dict per member (copies, on the module's device)."""
        out = [{} for _ in range(self.n_members)]
        for key, mod, name in self._keys:
            value = _by_member(mod, name, getattr(mod, name).detach())
            for i in range(self.n_members):
                out[i][key] = value[i].contiguous().clone()
        return out

    def member_state_dict(self, i):
        """Member ``i``'s ``ClusterCNN`` state dict (copies)."""
        return {
            key: _by_member(mod, name, getattr(mod, name).detach())[i].contiguous().clone()
            for key, mod, name in self._keys
        }

    def member_tensors(self, tensors):
        """Split per-parameter tensors (e.g. optimizer states) into per-member ones.

        ``tensors`` maps a stacked parameter (by identity) to a tensor of its
        shape; returns, for each member, a dict from the member's state-dict
        key to its slice.
        """
        out = [{} for _ in range(self.n_members)]
        for key, mod, name in self._keys:
            p = getattr(mod, name)
            if id(p) in tensors:
                value = _by_member(mod, name, tensors[id(p)].detach())
                for i in range(self.n_members):
                    out[i][key] = value[i].contiguous().clone()
        return out

    def select_(self, index, tensors=None):
        """Keep only the members ``index`` (a list of positions), in place.

        ``tensors`` (optional) maps stacked parameters (by identity) to
        tensors of their shape, e.g. optimizer states; the members ``index``
        of each are returned in a dict keyed by the new parameters' identity.
        """
        index = list(index)
        idx = torch.as_tensor(index, dtype=torch.long)
        tensors = tensors or {}
        moved = {}
        for mod in self.modules():
            if mod is self:
                continue
            for name, p in list(mod._parameters.items()):
                if p is not None:
                    new = nn.Parameter(_take(mod, name, p.detach(), idx), requires_grad=p.requires_grad)
                    if id(p) in tensors:
                        moved[id(new)] = {
                            k: (_take(mod, name, v, idx) if torch.is_tensor(v) and v.shape == p.shape else v)
                            for k, v in tensors[id(p)].items()
                        }
                    mod._parameters[name] = new
            for name, b in list(mod._buffers.items()):
                if b is not None:
                    mod._buffers[name] = _take(mod, name, b, idx)
            if isinstance(mod, _StackedDropout) and mod.generators is not None:
                mod.generators = [mod.generators[i] for i in index]
        for mod in self.modules():
            if hasattr(mod, "n_members"):
                mod.n_members = len(index)
        return moved
