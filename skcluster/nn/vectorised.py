"""Train and run M :class:`~skcluster.nn.CNNRegressor` members as one stacked network.

:func:`fit_vectorised` trains the members of a deep ensemble at the same time
in one :class:`~skcluster.nn.stacked.StackedClusterCNN` and leaves each
member an ordinary fitted ``CNNRegressor`` (its own ``ClusterCNN`` weights,
history, seeds, optimizer state), as if it had been fitted on its own.
Each member keeps everything a sequential fit would give it:

* its initial weights (built by the member itself, from its own seed);
* its validation split (the member's own ``ValidSplit`` and seed);
* its shuffling (the member's own ``DataLoader`` and shuffle generator);
* its augmentation draws (rotations/flips, Poisson resampling, input noise
  from the member's own generator, in the same order) and dropout masks;
* its learning-rate schedule (a function of the epoch, and for one-cycle
  of the batch, alone);
* its loss (the Gaussian NLL of its own batch; the members' losses are
  summed, so each member's gradient is its own) and its optimizer update
  (Adam, AdamW and SGD act elementwise);
* its early stopping: patience, absolute threshold ``tol`` and restoring
  the loss-best weights exactly as skorch's ``EarlyStopping`` does; a
  member that stops is removed from the stacked network (frozen) while the
  others go on.

The arithmetic differs from a sequential fit only in the order of float
operations. :func:`stacked_predict` runs all members in one forward.
"""

from __future__ import annotations

import time
import weakref

import numpy as np
import torch
from skorch.history import History

from ._data import ArrayDataset, check_sample_weight, network_inputs
from .augment import _apply_dihedral, _draw_dihedral, add_gaussian_noise, poisson_resample, scale_images
from .losses import GaussianNLLLoss, gaussian_nll
from .module import ClusterCNN
from .regressor import CNNRegressor, batch_lr, check_batch_size, epoch_lr, set_lr, train_batches
from .stacked import StackedClusterCNN, stackable

__all__ = ["fit_vectorised", "stacked_predict", "vectorise_unsupported"]

_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)

#: Callbacks that only show progress: the vectorised path does not run them
#: (its own progress bar, ``verbose``, replaces them), so they do not force the
#: sequential path. Every other callback (schedulers, gradient clipping,
#: checkpoints, ...) does.
_PROGRESS_CALLBACKS = {
    "skorch.callbacks.logging.PrintLog",
    "skorch.callbacks.logging.ProgressBar",
    "skorch.callbacks.training.EpochTimer",
    "skcluster.nn.progress.EpochProgress",
}

#: ``conv_mode`` of :class:`~skcluster.nn.stacked.StackedClusterCNN` used by
#: the ensemble (training and prediction); "auto" is "grouped" on CUDA and
#: "loop" on CPUs. Set it to compare the two (``benchmarks/bench_model.py``).
DEFAULT_CONV_MODE = "auto"


def vectorise_unsupported(member, fit_params=None):
    """Why ``member`` (an unfitted template) cannot be trained vectorised, or None.

    Supported: a :class:`CNNRegressor` (exactly, not a subclass) with the
    :class:`ClusterCNN` module (any ``module__*`` parameters), the
    :class:`GaussianNLLLoss` criterion, Adam, AdamW or SGD (without
    parameter groups), ``train_split`` "auto" or None, no callbacks other
    than progress displays (which are not run),
    default iterators, autocast None or "bfloat16", no ``warm_start``, no
    ``compile`` and no fit parameters other than ``sample_weight``. Everything else trains
    sequentially.
    """
    if type(member) is not CNNRegressor:
        return f"the member is a {type(member).__name__}, not a CNNRegressor"
    if member.module is not ClusterCNN:
        return "the member's module is not the ClusterCNN class"
    if member.criterion is not GaussianNLLLoss or set(member.get_params_for("criterion")) - {"beta", "full"}:
        return "the member's criterion is not GaussianNLLLoss"
    if member.optimizer not in _OPTIMIZERS:
        return f"the optimizer {getattr(member.optimizer, '__name__', member.optimizer)!r} is not Adam, AdamW or SGD"
    if "param_groups" in member.get_params_for("optimizer"):
        return "optimizer parameter groups"
    for cb in member.callbacks or ():
        cb = cb[1] if isinstance(cb, tuple) else cb
        name = f"{type(cb).__module__}.{type(cb).__qualname__}"
        if name not in _PROGRESS_CALLBACKS:
            return f"a callback ({type(cb).__name__}) other than progress display"
    if member.autocast == "float16":
        return "float16 autocast (gradient scaler)"
    if member.warm_start:
        return "warm_start"
    if getattr(member, "compile", False):
        return "compile=True (torch.compile wraps each member's own network)"
    if not (member.train_split is None or member.train_split == "auto"):
        return "a custom train_split"
    for prefix in ("iterator_train", "iterator_valid"):
        if getattr(member, prefix) is not torch.utils.data.DataLoader:
            return f"a custom {prefix}"
        if set(member.get_params_for(prefix)) - {"batch_size"}:
            return f"{prefix}__* parameters"
    if set(fit_params or ()) - {"sample_weight"}:
        return f"fit parameters {sorted(set(fit_params) - {'sample_weight'})}"
    return None


# ------------------------------------------------------------------- training
def _augment(members, images, training):
    """Each member's ``_prepare_images`` on its batch, with the same random draws.

    ``images``: list of M tensors (n, B, H, W) on the device. The flips and
    rotations of all members are applied together (8 operations instead of
    8 per member); each member's symmetries are drawn from its own
    generator exactly as :func:`~skcluster.nn.augment.random_dihedral`
    draws them.
    """
    ref = members[0]
    m = len(images)
    if training and ref.augment:
        ks = torch.cat([_draw_dihedral(x.shape, mem._generators_["augment"], x.device)
                        for x, mem in zip(images, members)])
        images = list(_apply_dihedral(torch.cat(images), ks).chunk(m))
    if training and ref.poisson:
        images = [poisson_resample(x, mem._generators_["augment"]) for x, mem in zip(images, members)]
    if ref.input_scaling is not None:
        images = list(scale_images(torch.cat(images), ref.input_scaling).chunk(m))
    if training and ref.noise_sigma:
        images = [
            add_gaussian_noise(x, ref.noise_sigma, mem._generators_["augment"])
            for x, mem in zip(images, members)
        ]
    if ref.channels_last:
        images = [x.contiguous(memory_format=torch.channels_last) for x in images]
    return images


def _zip_loaders(loaders):
    """Batches of all loaders together, running every loader to its end.

    Unlike ``zip``, every iterator is advanced until it is exhausted: a
    ``RandomSampler`` draws from its generator when it is asked for the
    element after its last one, and a member must see the same draws as in
    a sequential fit.
    """
    iters = [iter(loader) for loader in loaders]
    while True:
        batches, ended = [], 0
        for it in iters:
            try:
                batches.append(next(it))
            except StopIteration:
                ended += 1
        if ended:
            if ended != len(iters):  # pragma: no cover - equal sizes by construction
                raise RuntimeError("the members' data loaders have different numbers of batches")
            return
        yield batches


def _stack_batches(batches, device):
    images = [b[0]["images"].to(device, non_blocking=True) for b in batches]
    scalars = torch.stack([b[0]["scalars"] for b in batches]).to(device)
    y = torch.stack([b[1].reshape(-1, 1) for b in batches]).to(device, torch.float32)
    weight = None
    if "sample_weight" in batches[0][0]:
        weight = torch.stack([b[0]["sample_weight"].reshape(-1, 1) for b in batches]).to(device, torch.float32)
    return images, scalars, y, weight


def _member_losses(members, mean, var, y, weighted, sample_weight=None):
    crit = members[0].criterion_
    beta = crit.beta if weighted else 0.0
    nll = gaussian_nll(mean, var, y.to(mean.dtype), beta=beta, full=crit.full)
    if sample_weight is not None:  # as GaussianNLLLoss: each sample's NLL times its weight
        nll = nll * sample_weight.to(nll.dtype)
    return nll.mean(dim=(1, 2))


def _optimizer_kwargs(member):
    _, kwargs = member.get_params_for_optimizer("optimizer", [])
    kwargs.pop("params", None)
    return kwargs


def _member_optimizer_state(stacked, optimizer, i):
    """Member ``i``'s optimizer state, keyed by its parameter names."""
    keys = set()
    step = None
    for state in optimizer.state.values():
        keys |= {k for k, v in state.items() if torch.is_tensor(v) and v.dim() > 0}
        step = state.get("step", step)
    out = {}
    for k in keys:
        tensors = {id(p): optimizer.state[p][k] for p in stacked.parameters() if k in optimizer.state.get(p, {})}
        for name, value in stacked.member_tensors(tensors)[i].items():
            out.setdefault(name, {})[k] = value
    if step is not None:
        for name in out:
            out[name]["step"] = step.clone() if torch.is_tensor(step) else step
    return out


def _load_member_optimizer_state(member, states):
    opt = getattr(member, "optimizer_", None)
    if opt is None or not states:
        return
    names = [n for n, _ in member.module_.named_parameters()]
    sd = opt.state_dict()
    sd["state"] = {i: states[n] for i, n in enumerate(names) if n in states}
    opt.load_state_dict(sd)


class _EarlyStopping:
    """skorch's ``EarlyStopping(threshold_mode="abs", load_best=True)`` for one member."""

    def __init__(self, patience, threshold):
        self.patience = patience
        self.threshold = threshold
        self.misses = 0
        self.dynamic_threshold = np.inf
        self.best_epoch = 0
        self.best_state = None

    def update(self, score, epoch, snapshot):
        """Record an epoch's score; True when the member must stop."""
        if not score < self.dynamic_threshold:
            self.misses += 1
        else:
            self.misses = 0
            self.dynamic_threshold = score - self.threshold
            self.best_epoch = epoch
            self.best_state = snapshot()
        return self.misses == self.patience


def fit_vectorised(members, X, y, index_sets=None, verbose=0, conv_mode=None, sample_weight=None):
    """Fit unfitted ``CNNRegressor`` clones (seeds already set) as one stacked network.

    Parameters
    ----------
    members : list of CNNRegressor
        Unfitted clones of one template, each with its own ``random_state``
        (:func:`vectorise_unsupported` must return None for them).
    X : ClusterSample or ndarray of shape (n, B, H, W)
    y : ndarray of shape (n,)
    index_sets : list of (ndarray or None), default=None
        Rows of each member (bootstrap resamples); None: all rows.
    verbose : int, default=0
        > 0: a progress bar over epochs with the members still training and
        the best validation loss so far.
    conv_mode : {"auto", "grouped", "loop"} or None, default=None
        See :class:`~skcluster.nn.stacked.StackedClusterCNN`; None:
        :data:`DEFAULT_CONV_MODE`.
    sample_weight : array-like of shape (n,) or None, default=None
        Each cluster's loss weight, as :meth:`CNNRegressor.fit`'s (rescaled
        to a mean of one over the rows of each member).

    Returns
    -------
    members : list of CNNRegressor
        The same objects, fitted.
    seconds : ndarray of shape (M,)
        Wall time from the start until each member stopped training.
    """
    start = time.perf_counter()
    conv_mode = conv_mode or DEFAULT_CONV_MODE
    m_total = len(members)
    index_sets = index_sets or [None] * m_total
    ref = members[0]
    images, scalars, y = ref._validate_fit(X, y)
    where = f"{type(ref).__name__}.fit (vectorised ensemble)"
    weight = check_sample_weight(sample_weight, len(y), where)
    device = torch.device(ref.device)
    train_sets, valid_sets = [], []
    try:
        for mem, idx in zip(members, index_sets):
            ym = y if idx is None else y[idx]
            mem._check_params()
            _, yt = mem._start_fit(images, scalars, ym, reinit=True)
            mem.initialize()
            if idx is None:
                dataset = ArrayDataset(images, scalars, yt, weight)
            else:
                y_full = ((y - mem.y_mean_) / mem.y_scale_).astype(np.float32)[:, None]
                w_full = None
                if weight is not None:  # a mean of one over the member's rows, as in a sequential fit
                    check_sample_weight(weight[idx], len(idx), where)
                    w_full = weight * np.float32(len(idx) / weight[idx].sum(dtype=np.float64))
                dataset = torch.utils.data.Subset(ArrayDataset(images, scalars, y_full, w_full), np.asarray(idx))
            train_ds, valid_ds = mem.get_split_datasets(dataset, yt)
            train_sets.append(train_ds)
            valid_sets.append(valid_ds)
        sizes = {(len(t), None if v is None else len(v)) for t, v in zip(train_sets, valid_sets)}
        if len(sizes) != 1:  # pragma: no cover - equal lengths by construction
            raise RuntimeError(f"members got training/validation sets of different sizes {sorted(sizes)}")
        has_valid = valid_sets[0] is not None and len(valid_sets[0]) > 0
        monitor = "valid_loss" if has_valid else "train_loss"
        train_loaders = [mem.get_iterator(ds, training=True) for mem, ds in zip(members, train_sets)]
        valid_loaders = (
            [mem.get_iterator(ds, training=False) for mem, ds in zip(members, valid_sets)] if has_valid else None
        )

        why = stackable([mem.module_ for mem in members])
        if why:  # pragma: no cover - clones of one template
            raise RuntimeError(f"cannot stack the members: {why}")
        stacked = StackedClusterCNN([mem.module_ for mem in members], conv_mode=conv_mode).to(device)
        if ref.channels_last:
            stacked = stacked.to(memory_format=torch.channels_last)
        opt_cls, opt_kwargs = ref.optimizer, _optimizer_kwargs(ref)
        optimizer = opt_cls(stacked.parameters(), **opt_kwargs)

        active = list(range(m_total))  # positions in `members` of the stacked members
        stoppers = [
            _EarlyStopping(mem.patience, mem.tol) if mem.early_stopping else None for mem in members
        ]
        histories = [[] for _ in members]
        best_scores = [{"train_loss": np.inf, "valid_loss": np.inf} for _ in members]
        final_states = [None] * m_total
        final_lr = [ref.lr] * m_total  # the rate each member's optimizer is left at
        opt_states = [None] * m_total
        seconds = np.zeros(m_total)
        max_epochs = int(ref.max_epochs)

        bar = None
        if verbose > 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_epochs, desc=f"CNN epochs ({m_total} ensemble members, vectorised)", unit="epoch")

        for epoch in range(1, max_epochs + 1):
            t_epoch = time.perf_counter()
            act = [members[i] for i in active]
            onecycle = ref.lr_schedule == "onecycle"
            lr = last_lr = ref.lr
            if onecycle:  # the rate of each batch (batch_lr), as the sequential fit's _BatchLR callback
                steps = train_batches(ref, len(train_sets[0]))
                step = (epoch - 1) * steps
                lr = batch_lr(ref, step, steps)
            elif ref.lr_schedule is not None:
                lr = epoch_lr(ref, epoch)
                set_lr(optimizer, lr)
            stacked.train()
            stacked.set_dropout_generators([mem._generators_["dropout"] for mem in act])
            train_losses, train_sizes = [], []
            for batches in _zip_loaders([train_loaders[i] for i in active]):
                imgs, scal, yb, wb = _stack_batches(batches, device)
                imgs = _augment(act, imgs, training=True)
                if onecycle:
                    last_lr = batch_lr(ref, step, steps)
                    set_lr(optimizer, last_lr)
                    step += 1
                with ref._autocast_context():
                    mean, var = stacked(imgs, scal)
                losses = _member_losses(act, mean.float(), var.float(), yb, weighted=True, sample_weight=wb)
                optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                optimizer.step()
                train_losses.append(losses.detach())
                train_sizes.append(yb.shape[1])
            stacked.set_dropout_generators(None)
            train_losses = torch.stack(train_losses).cpu().numpy() if train_losses else np.zeros((0, len(act)))

            valid_losses, valid_sizes = None, []
            if has_valid:
                stacked.eval()
                valid_losses = []
                with torch.no_grad():
                    for batches in _zip_loaders([valid_loaders[i] for i in active]):
                        imgs, scal, yb, wb = _stack_batches(batches, device)
                        imgs = _augment(act, imgs, training=False)
                        with ref._autocast_context():
                            mean, var = stacked(imgs, scal)
                        valid_losses.append(_member_losses(act, mean.float(), var.float(), yb, weighted=False,
                                                           sample_weight=wb))
                        valid_sizes.append(yb.shape[1])
                valid_losses = torch.stack(valid_losses).cpu().numpy()
            dur = time.perf_counter() - t_epoch

            stopping = []
            for j, i in enumerate(active):
                batches = [{"train_loss": float(v), "train_batch_size": int(s)}
                           for v, s in zip(train_losses[:, j], train_sizes)]
                row = {"epoch": epoch, "batches": batches}
                if ref.lr_schedule is not None:
                    row["lr"] = lr
                row["train_loss"] = float(np.average(train_losses[:, j], weights=train_sizes))
                if has_valid:
                    batches += [
                        {"valid_loss": float(v), "valid_batch_size": int(s)}
                        for v, s in zip(valid_losses[:, j], valid_sizes)
                    ]
                    row["valid_loss"] = float(np.average(valid_losses[:, j], weights=valid_sizes))
                for key in ("train_loss", "valid_loss") if has_valid else ("train_loss",):
                    is_best = row[key] < best_scores[i][key]
                    if is_best:
                        best_scores[i][key] = row[key]
                    row[f"{key}_best"] = bool(is_best)
                row["dur"] = dur
                histories[i].append(row)
                es = stoppers[i]
                if es is not None and es.update(row[monitor], epoch, lambda j=j: stacked.member_state_dict(j)):
                    stopping.append(j)
            if epoch == max_epochs:
                stopping = list(range(len(active)))
            if stopping:
                for j in stopping:
                    i = active[j]
                    es = stoppers[i]
                    if es is not None and es.best_state is not None and es.best_epoch != epoch:
                        final_states[i] = es.best_state
                    else:
                        final_states[i] = stacked.member_state_dict(j)
                    opt_states[i] = _member_optimizer_state(stacked, optimizer, j)
                    final_lr[i] = last_lr if onecycle else lr
                    seconds[i] = time.perf_counter() - start
                keep = [j for j in range(len(active)) if j not in set(stopping)]
                active = [active[j] for j in keep]
                if active:
                    state = {id(p): optimizer.state[p] for p in stacked.parameters() if p in optimizer.state}
                    moved = stacked.select_(keep, state)
                    optimizer = opt_cls(stacked.parameters(), **opt_kwargs)
                    for p in stacked.parameters():
                        if id(p) in moved:
                            optimizer.state[p] = moved[id(p)]
            if bar is not None:
                best = min(b[monitor] for b in best_scores)
                bar.set_postfix({"training": len(active), f"best_{monitor.replace('valid', 'val')}": f"{best:.4f}"})
                bar.update(1)
            if not active:
                break
        if bar is not None:
            bar.close()

        for i, mem in enumerate(members):
            mem.module_.load_state_dict(final_states[i])
            _load_member_optimizer_state(mem, opt_states[i])
            if mem.lr_schedule is not None and getattr(mem, "optimizer_", None) is not None:
                set_lr(mem.optimizer_, final_lr[i])  # where a sequential fit leaves it
            mem.history_ = History(histories[i])
            mem.n_epochs_ = len(histories[i])
            es = stoppers[i]
            mem.best_epoch_ = int(es.best_epoch) if es is not None and es.best_epoch else mem.n_epochs_
    except Exception as exc:
        if hasattr(exc, "add_note"):
            exc.add_note("(while training the ensemble members vectorised)")
        raise
    finally:
        for mem in members:
            mem._cleanup_fit()
    return members, seconds


# ----------------------------------------------------------------- prediction
_CACHE = weakref.WeakKeyDictionary()


def _predict_unsupported(members):
    if not members:
        return "no members"
    if any(type(m) is not CNNRegressor for m in members):
        return "members are not all CNNRegressor"
    for attr in ("input_scaling", "autocast", "channels_last", "device", "input_shape_", "n_scalars_"):
        values = {repr(getattr(m, attr, None)) for m in members}
        if len(values) != 1:
            return f"members differ in {attr}"
    return stackable([m.module_ for m in members])


def _cache_key(members):
    key = []
    for m in members:
        key.append(id(m.module_))
        for t in (*m.module_.parameters(), *m.module_.buffers()):
            key.append((id(t), t._version))
    return tuple(key)


def stacked_module(owner, members, conv_mode=None):
    """The members' :class:`StackedClusterCNN` (eval mode), built once and cached per ``owner``.

    The cache lives outside ``owner`` (a weak reference), so it is never
    pickled or saved, and is rebuilt when any member's weights change.
    """
    conv_mode = conv_mode or DEFAULT_CONV_MODE
    key = (_cache_key(members), conv_mode)
    hit = _CACHE.get(owner)
    if hit is not None and hit[0] == key:
        return hit[1]
    ref = members[0]
    stacked = StackedClusterCNN([m.module_ for m in members], conv_mode=conv_mode).to(ref.device)
    if ref.channels_last:
        stacked = stacked.to(memory_format=torch.channels_last)
    stacked.eval()
    _CACHE[owner] = (key, stacked)
    return stacked


def stacked_predict(owner, members, X, conv_mode=None, batch_size=None):
    """All members' predicted means and variances in one stacked forward per batch.

    Returns ``(means, variances)``, each of shape (M, n) and float64, equal
    (to float32 rounding) to stacking ``m.predict_gaussian(X)`` over the
    members; ``None`` if the members cannot be stacked.
    """
    if _predict_unsupported(members):
        return None
    ref = members[0]
    where = f"{type(ref).__name__}.predict"
    images, scalars = network_inputs(X, where)
    ref._check_shape(images, scalars, where)
    m, n = len(members), images.shape[0]
    if n == 0:
        return np.zeros((m, 0)), np.zeros((m, 0))
    stacked = stacked_module(owner, members, conv_mode)
    bs = batch_size or ref.get_params_for("iterator_valid").get("batch_size", ref.batch_size)
    bs = check_batch_size(bs, n, where)
    device = torch.device(ref.device)
    means = np.full((m, n), np.nan, np.float32)  # (a cluster no batch reached stays NaN, and is refused below)
    variances = np.full((m, n), np.nan, np.float32)
    filled = np.zeros(n, dtype=bool)
    imgs_all = torch.from_numpy(np.ascontiguousarray(images))
    scal_all = torch.from_numpy(np.ascontiguousarray(scalars))
    with torch.no_grad():
        for s in range(0, n, bs):
            x = scale_images(imgs_all[s : s + bs].to(device), ref.input_scaling)
            if ref.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with ref._autocast_context():
                mu, var = stacked(x, scal_all[s : s + bs].to(device))
            means[:, s : s + bs] = mu.float().reshape(m, -1).cpu().numpy()
            variances[:, s : s + bs] = var.float().reshape(m, -1).cpu().numpy()
            filled[s : s + bs] = True
    if not filled.all():
        raise RuntimeError(f"{where}: the stacked forward left {int((~filled).sum())} clusters without a prediction")
    y_mean = np.array([mm.y_mean_ for mm in members])[:, None]
    y_scale = np.array([mm.y_scale_ for mm in members])[:, None]
    return means.astype(np.float64) * y_scale + y_mean, variances.astype(np.float64) * y_scale**2
