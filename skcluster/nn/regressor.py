"""``CNNRegressor``: the skorch network with a Gaussian output, the sklearn way."""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import threading
import warnings

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping, EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import ValidSplit, unpack_data
from skorch.utils import TeeGenerator, is_dataset, to_tensor

from .._validation import check_fraction, check_positive_int, check_positive_number
from ..exceptions import SkclusterWarning
from ._data import ArrayDataset, check_sample_weight, check_target, network_inputs, passthrough_collate
from .augment import (
    INPUT_SCALINGS,
    add_gaussian_noise,
    poisson_resample,
    random_dihedral,
    scale_images,
)
from .losses import GaussianNLLLoss
from .module import ClusterCNN, SeededDropout

__all__ = ["CNNRegressor"]

#: Building a module draws its initial weights from torch's global generator;
#: the lock keeps two fits in one process (threads) from interleaving there.
_INIT_LOCK = threading.Lock()
_AUTOCAST = {"bfloat16": torch.bfloat16, "float16": torch.float16}
_SEED_NAMES = ("init", "split", "shuffle", "augment", "dropout")
#: Fitted attributes of our own (besides skorch's ``module_`` & co.).
_OWN_FITTED = ("input_shape_", "n_scalars_", "y_mean_", "y_scale_", "seeds_", "n_epochs_", "best_epoch_")


def _base_dataset(ds):
    while isinstance(ds, torch.utils.data.Subset):
        ds = ds.dataset
    return ds


class CNNRegressor(NeuralNetRegressor):
    """A CNN with a Gaussian output for log10 M500c from band cubes and redshift.

    A :class:`skorch.NeuralNetRegressor` trained with the Gaussian negative
    log likelihood (optionally beta-NLL), Adam, and early stopping on a
    shuffled validation split, returning the loss-best weights. The network
    (by default :class:`~skcluster.nn.ClusterCNN`) is built in ``fit`` from
    the shape of the data, so one estimator serves any number of bands,
    image size and scalars.

    Parameters
    ----------
    module : type or torch.nn.Module, default=ClusterCNN
        The network. A class is built in ``fit`` with ``n_bands``,
        ``image_size`` and ``n_scalars`` from the data (if its ``__init__``
        takes them) and the ``module__*`` parameters (e.g.
        ``module__channels=(8, 16)``). ``forward(images, scalars)`` must
        return ``(mean, var)``, each (n, 1).
    criterion : type, default=GaussianNLLLoss
        Called as ``criterion_(mean, var, y, weighted=training)``.
    optimizer : type, default=torch.optim.Adam
    lr : float, default=1e-3
    lr_schedule : {None, "cosine", "onecycle"}, default=None
        None keeps ``lr`` constant. "cosine" anneals it over ``max_epochs``
        (Loshchilov & Hutter 2017, without restarts): epoch ``e`` (1-based)
        trains at ``lr * (1 + cos(pi * (e - 1) / max_epochs)) / 2``.
        "onecycle" sets it before every training batch (Smith & Topin 2019,
        arXiv:1708.07120; the rates of ``torch.optim.lr_scheduler.OneCycleLR``
        with ``max_lr=lr``, ``epochs=max_epochs``, ``pct_start=0.3``,
        ``div_factor=25``, ``final_div_factor=1e4``, cosine annealing,
        without momentum cycling): from ``lr / 25`` up to ``lr`` over the
        first 30% of the ``max_epochs`` epochs' batches, then down to ``lr
        / 2.5e5``. Both depend on the epoch and batch alone, so every member
        of a vectorised ensemble follows them exactly as a sequential fit
        does; early stopping may end training before the rate reaches its
        minimum. The rate of each epoch (of its first batch for
        "onecycle") is recorded in ``history_`` (key ``"lr"``).
    max_epochs : int, default=80
    batch_size : int, default=32
        The package's recommended training length and batch (also those of
        :func:`skcluster.models.make_cnn` and ``skcluster train``): at batch
        32 the networks of the benchmark mock reach their best epochs at
        31-51, so fewer, larger steps stop them before they have fitted
        (the measurements: the point-source page of the benchmark docs).
    beta : float, default=0.0
        beta-NLL exponent for the training loss (Seitzer et al. 2022); the
        validation loss (early stopping) is always the plain NLL.
    validation_fraction : float, default=0.2
        Fraction of the training clusters held out, shuffled with a seed from
        ``random_state``, to watch for early stopping (``train_split="auto"``).
    early_stopping : bool, default=True
        Stop when the validation NLL has not improved by ``tol`` for
        ``patience`` epochs, and restore the best weights.
    patience : int, default=15
    tol : float, default=1e-3
        Absolute improvement of the NLL (in nats per cluster) that counts as
        an improvement. Absolute because the Gaussian NLL is often negative.
    augment : bool, default=True
        Random 90-degree rotations and flips of each training image (all 8
        symmetries of the square; 4 for non-square images).
    noise_sigma : float, default=0.0
        sigma_N of Gaussian noise added to the (scaled) training images; the
        seed study (Krippendorf et al. 2023) tried 0, 0.01, 0.1 and 0.2 on
        standardised inputs.
    poisson : bool, default=False
        Replace each training image by a Poisson draw with the image as mean
        (a new photon-noise realisation per epoch). Only meaningful when the
        network sees counts: a pipeline without count scaling, with
        ``input_scaling`` doing the scaling inside the network. Refused
        (``ValueError``) when ``X.meta["image_unit"]`` says the images are
        scaled.
    input_scaling : {"log1p", "asinh", "anscombe"} or None, default=None
        Scaling applied to the images inside the network (after Poisson
        resampling, before the noise), at training and prediction time.
        ``None`` when the preprocessing already scaled them.
    channels_last : bool, default=False
        Channels-last memory format for module and batches (faster
        convolutions on CPUs with oneDNN and on GPUs).
    autocast : {"bfloat16", "float16"} or None, default=None
        Mixed precision for the forward pass (``torch.autocast`` on
        ``device``); the output heads and the loss stay float32. bfloat16 is
        fast on CPUs with AVX512-BF16 or AMX and on recent GPUs; on a CPU
        without them (:func:`cpu_bfloat16_fast`) "bfloat16" warns
        (``SkclusterWarning``) and runs in float32. float16 uses a gradient
        scaler.
    random_state : int, RandomState instance or None, default=None
        Seeds of the weight initialisation, the validation split, the
        shuffling, the augmentation and the dropout, drawn once per fit: the
        same int gives the same fitted network (on the same device and
        number of torch threads).
    train_split : "auto", callable or None, default="auto"
        skorch's split; "auto" is ``ValidSplit(validation_fraction,
        random_state=<seed>)``; ``None`` trains on everything (early stopping
        then watches the training loss).
    callbacks : list or None, default=None
        Extra skorch callbacks.
    verbose : int, default=0
        1 prints a line per epoch (skorch's table) and early-stopping notes.
    device : str, default="cpu"
        "cuda" trains on a GPU unchanged.
    **kwargs
        Other skorch parameters (``module__*``, ``optimizer__*``,
        ``iterator_train__*``, ...).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    input_shape_ : tuple of (int, int, int)
        (bands, H, W) seen in fit; prediction requires the same.
    n_scalars_ : int
        K seen in fit.
    y_mean_, y_scale_ : float
        The network is trained on ``(y - y_mean_) / y_scale_``.
    seeds_ : dict
        The seeds drawn from ``random_state`` for this fit.
    n_epochs_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (the last one without early stopping).
    history_ : skorch.History
        Losses per epoch (NLL of the standardised target).

    Examples
    --------
    >>> from skcluster.nn import CNNRegressor, make_toy_sample
    >>> X, y = make_toy_sample(64, random_state=0)
    >>> net = CNNRegressor(input_scaling="log1p", max_epochs=2, random_state=0,
    ...                    module__channels=(4, 8), module__dense=(16,))
    >>> mean, std = net.fit(X, y).predict(X, return_std=True)
    >>> mean.shape, bool((std > 0).all())
    ((64,), True)
    """

    def __init__(
        self,
        module=ClusterCNN,
        *,
        criterion=GaussianNLLLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        lr_schedule=None,
        max_epochs=80,
        batch_size=32,
        beta=0.0,
        validation_fraction=0.2,
        early_stopping=True,
        patience=15,
        tol=1e-3,
        augment=True,
        noise_sigma=0.0,
        poisson=False,
        input_scaling=None,
        channels_last=False,
        autocast=None,
        random_state=None,
        train_split="auto",
        callbacks=None,
        verbose=0,
        device="cpu",
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            verbose=verbose,
            device=device,
            **kwargs,
        )
        self.lr_schedule = lr_schedule
        self.beta = beta
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.augment = augment
        self.noise_sigma = noise_sigma
        self.poisson = poisson
        self.input_scaling = input_scaling
        self.channels_last = channels_last
        self.autocast = autocast
        self.random_state = random_state

    # ------------------------------------------------------------------ setup
    @property
    def _default_callbacks(self):
        cbs = [
            ("epoch_timer", EpochTimer()),
            *([("lr_schedule", _BatchLR() if self.lr_schedule == "onecycle" else _EpochLR())]
              if self.lr_schedule is not None else []),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
        ]
        if self.early_stopping:
            monitor = "valid_loss" if self._resolve_train_split(seed=0) is not None else "train_loss"
            cbs.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor=monitor,
                        patience=self.patience,
                        threshold=self.tol,
                        threshold_mode="abs",
                        load_best=True,
                    ),
                )
            )
        cbs.append(("print_log", PrintLog()))
        return cbs

    def _resolve_train_split(self, seed=None):
        split = self.train_split
        if isinstance(split, str):
            if split != "auto":
                raise ValueError(f"train_split must be 'auto', a callable or None, got {split!r}")
            frac = self.validation_fraction
            if not frac:
                return None
            seed = self._seed("split") if seed is None else seed
            return ValidSplit(frac, random_state=seed)
        return split

    def _check_params(self):
        where = type(self).__name__
        if isinstance(self.train_split, str) and self.train_split != "auto":
            raise ValueError(f"{where}: train_split must be 'auto', a callable or None, got {self.train_split!r}")
        if self.autocast not in (None, *_AUTOCAST):
            raise ValueError(f"{where}: autocast must be None, 'bfloat16' or 'float16', got {self.autocast!r}")
        if self.input_scaling is not None and self.input_scaling not in INPUT_SCALINGS:
            raise ValueError(
                f"{where}: input_scaling must be None or one of {sorted(INPUT_SCALINGS)}, "
                f"got {self.input_scaling!r}"
            )
        if self.validation_fraction is not None and self.validation_fraction != 0:  # None, 0: no split
            check_fraction(self.validation_fraction, "validation_fraction", where)
        check_positive_number(self.noise_sigma, "noise_sigma", where, allow_zero=True)
        check_positive_int(self.max_epochs, "max_epochs", where)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"{where}: lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")

    def _seed(self, name):
        seeds = getattr(self, "seeds_", None)
        if seeds is None:
            raise NotFittedError(f"{type(self).__name__}: seeds are drawn in fit; call fit first")
        return seeds[name]

    def _draw_seeds(self):
        rs = check_random_state(self.random_state)
        values = rs.randint(0, np.iinfo(np.int32).max, size=len(_SEED_NAMES))
        self.seeds_ = {k: int(v) for k, v in zip(_SEED_NAMES, values)}

    def initialize_module(self):
        self.module_ = self._build_module()
        return self

    def _build_module(self):
        """The network from ``module`` and ``module__*`` (and the data's shape: ``input_shape_``)."""
        kwargs = self.get_params_for("module")
        if isinstance(self.module, torch.nn.Module):
            module = type(self.module)(**kwargs) if kwargs else self.module
        else:
            if getattr(self, "input_shape_", None) is None:
                raise NotFittedError(
                    f"{type(self).__name__} builds its network from the shape of the data: "
                    "call fit (or partial_fit) instead of initialize"
                )
            data_kwargs = {
                "n_bands": self.input_shape_[0],
                "image_size": tuple(self.input_shape_[1:]),
                "n_scalars": self.n_scalars_,
            }
            try:
                accepted = inspect.signature(self.module).parameters
            except (TypeError, ValueError):  # pragma: no cover - builtins
                accepted = {}
            for key, value in data_kwargs.items():
                if key not in accepted:
                    continue
                if key in kwargs and _normalise(kwargs[key]) != _normalise(value):
                    raise ValueError(
                        f"module__{key}={kwargs[key]!r} contradicts the data ({key} = {value!r}); "
                        f"leave it out, {type(self).__name__} sets it from the data in fit"
                    )
                kwargs[key] = value
            seed = (getattr(self, "seeds_", None) or {}).get("init")
            with _INIT_LOCK, torch.random.fork_rng(devices=[]):
                if seed is not None:
                    torch.manual_seed(seed)
                module = self.module(**kwargs)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def initialize_criterion(self):
        kwargs = self.get_params_for("criterion")
        crit = self.criterion
        if not isinstance(crit, torch.nn.Module):
            try:
                if "beta" in inspect.signature(crit).parameters:
                    kwargs.setdefault("beta", self.beta)
            except (TypeError, ValueError):  # pragma: no cover
                pass
        self.criterion_ = self.initialized_instance(crit, kwargs)
        return self

    # --------------------------------------------------------------- data flow
    def get_dataset(self, X, y=None):
        if is_dataset(X):
            return X
        return ArrayDataset(X["images"], X["scalars"], y, X.get("sample_weight"))

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset = self.get_dataset(X, y)
        split = self._resolve_train_split()
        if not split:
            return dataset, None
        return split(dataset, y, **fit_params)

    def get_iterator(self, dataset, training=False):
        """skorch's data loader; for validation and prediction, one with fixed, safe settings.

        Validation and prediction batches come in order from this process:
        of the ``iterator_valid__*`` options only ``batch_size`` is used (no
        worker processes, multiprocessing context, sampler, batch sampler,
        shuffling or dropped last batch), so every cluster gets its own
        prediction, whatever the estimator or its model file says.
        """
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        iterator = self.iterator_train if training else self.iterator_valid
        if not training:
            kwargs = {"batch_size": kwargs["batch_size"]} if "batch_size" in kwargs else {}
        kwargs.setdefault("batch_size", self.batch_size)
        kwargs["batch_size"] = check_batch_size(kwargs["batch_size"], len(dataset), f"{type(self).__name__}")
        if isinstance(_base_dataset(dataset), ArrayDataset):
            kwargs.setdefault("collate_fn", passthrough_collate)
        gens = getattr(self, "_generators_", None)
        if training:
            kwargs.setdefault("shuffle", True)
        if training and gens is not None:
            kwargs.setdefault("generator", gens["shuffle"])
        else:
            # A DataLoader draws a base seed for its workers from its generator
            # even when it does not shuffle; give it its own so that validation
            # and prediction leave torch's global generator alone.
            kwargs.setdefault("generator", torch.Generator().manual_seed(0))
        return iterator(dataset, **kwargs)

    # ---------------------------------------------------------------- compute
    def _autocast_context(self):
        if self.autocast is None:
            return contextlib.nullcontext()
        device = torch.device(self.device).type
        if self.autocast == "bfloat16" and device == "cpu" and not cpu_bfloat16_fast():
            warnings.warn(
                f"{type(self).__name__}: autocast='bfloat16' was asked for, but this CPU has neither "
                "AVX512-BF16 nor AMX, where bfloat16 is emulated (slower than float32 and less precise); "
                "running in float32 instead",
                SkclusterWarning,
                stacklevel=3,
            )
            return contextlib.nullcontext()
        return torch.autocast(device_type=device, dtype=_AUTOCAST[self.autocast])

    def _prepare_images(self, images, training):
        gens = getattr(self, "_generators_", None)
        gen = gens["augment"] if gens is not None else None
        if training and self.augment:
            images = random_dihedral(images, gen)
        if training and self.poisson:
            images = poisson_resample(images, gen)
        images = scale_images(images, self.input_scaling)
        if training and self.noise_sigma:
            images = add_gaussian_noise(images, self.noise_sigma, gen)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        if not isinstance(x, dict) or "images" not in x:
            return super().infer(x, **fit_params)
        training = self.module_.training
        images = self._prepare_images(x["images"], training)
        scalars = x.get("scalars")
        with self._autocast_context():
            out = self.module_(images=images, scalars=scalars, **fit_params)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"{type(self).__name__}: the module's forward must return (mean, var); "
                f"got {type(out).__name__}"
            )
        return out[0].float(), out[1].float()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        mean, var = y_pred
        y_true = to_tensor(y_true, device=self.device).to(mean.dtype).reshape(mean.shape)
        weight = X.get("sample_weight") if isinstance(X, dict) else None
        if weight is None:  # the plain call keeps custom criteria without sample_weight working
            return self.criterion_(mean, var, y_true, weighted=training)
        weight = to_tensor(weight, device=self.device)
        return self.criterion_(mean, var, y_true, weighted=training, sample_weight=weight)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        scaler = getattr(self, "_grad_scaler_", None)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        scaler = getattr(self, "_grad_scaler_", None)
        if scaler is None:
            return super().train_step(batch, **fit_params)
        # float16: scale the loss, unscale before callbacks see the gradients.
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        for name in self._optimizers:
            scaler.unscale_(getattr(self, name + "_"))
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()
        return step

    # -------------------------------------------------------------- fit/predict
    def _validate_fit(self, X, y):
        where = f"{type(self).__name__}.fit"
        self._check_params()
        images, scalars = network_inputs(X, where)
        y = check_target(y, images.shape[0], where)
        if images.shape[0] < 2:
            raise ValueError(f"{where}: need at least 2 clusters to train, got {images.shape[0]}")
        if self.poisson:
            unit = getattr(X, "meta", {}).get("image_unit")
            if unit not in (None, "counts"):
                raise ValueError(
                    f"{where}: poisson=True resamples photon counts, but the images are "
                    f"{unit!r} (meta['image_unit']); feed counts and scale them inside the "
                    "network with input_scaling='log1p' (or similar) instead"
                )
            lo = float(images.min()) if images.size else 0.0
            if lo < 0:
                raise ValueError(
                    f"{where}: poisson=True needs non-negative counts, but the images reach {lo!r}"
                )
        return images, scalars, y

    def _start_fit(self, images, scalars, y, reinit, sample_weight=None):
        """Record shapes and target scaling, draw seeds and make generators."""
        self.input_shape_ = tuple(int(s) for s in images.shape[1:])
        self.n_scalars_ = int(scalars.shape[1])
        self._draw_seeds()
        if reinit or getattr(self, "y_mean_", None) is None:
            self.y_mean_ = float(np.mean(y))
            scale = float(np.std(y))
            self.y_scale_ = scale if scale > 0 else 1.0
        dev = torch.device(self.device)
        self._generators_ = {
            name: torch.Generator(device=dev).manual_seed(self.seeds_[name])
            for name in ("shuffle", "augment", "dropout")
        }
        # The DataLoader shuffles on the CPU.
        self._generators_["shuffle"] = torch.Generator().manual_seed(self.seeds_["shuffle"])
        self._grad_scaler_ = (
            torch.amp.GradScaler(dev.type) if self.autocast == "float16" else None
        )
        yt = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)[:, None]
        data = {"images": images, "scalars": scalars}
        if sample_weight is not None:
            data["sample_weight"] = sample_weight
        return data, yt

    def _attach_dropout_generators(self, on):
        gen = self._generators_["dropout"] if on else None
        for m in self.module_.modules():
            if isinstance(m, SeededDropout):
                m.generator = gen

    def _cleanup_fit(self):
        """Drop the generators (not part of the fitted state), also after a failure."""
        if getattr(self, "module_", None) is not None:
            self._attach_dropout_generators(False)
        self.__dict__.pop("_generators_", None)
        self.__dict__.pop("_grad_scaler_", None)

    def _finish_fit(self):
        self.n_epochs_ = len(self.history_)
        es = dict(getattr(self, "callbacks_", [])).get("early_stopping")
        best = getattr(es, "best_epoch_", 0) if es is not None else 0
        self.best_epoch_ = int(best) if best else self.n_epochs_
        if es is not None:
            es.best_model_weights_ = None  # a second copy of the weights, no longer needed

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Train the network on ``X`` (images and scalars) and ``y`` (log10 M500c).

        Parameters
        ----------
        X : ClusterSample
            ``images`` float32 (n, B, H, W) and ``scalars`` float32 (n, K).
        y : array-like of shape (n,)
            log10(M500c / Msun).
        sample_weight : array-like of shape (n,), default=None
            Non-negative weight of each cluster's loss (rescaled to a mean of
            one), in training and in the validation loss early stopping
            watches; e.g. importance weights that reweight the training
            population (:class:`~skcluster.priors.PriorCorrectedRegressor`
            with ``method="weights"``). None: equal weights.
        **fit_params : dict
            Passed to skorch (and the module's forward).

        Returns
        -------
        self : CNNRegressor
        """
        images, scalars, y = self._validate_fit(X, y)
        weight = check_sample_weight(sample_weight, len(y), f"{type(self).__name__}.fit")
        reinit = not (self.warm_start and self.initialized_)
        if not reinit:
            self._check_shape(images, scalars, f"{type(self).__name__}.fit (warm_start)")
        data, yt = self._start_fit(images, scalars, y, reinit, weight)
        try:
            if reinit:
                self.initialize()
            self._attach_dropout_generators(True)
            self.partial_fit(data, yt, _routing_method="fit", **fit_params)
        finally:
            self._cleanup_fit()
        self._finish_fit()
        return self

    def partial_fit(self, X, y=None, classes=None, sample_weight=None, **fit_params):
        """Continue training without re-initialising (see :meth:`fit`)."""
        if "_routing_method" in fit_params:  # called from fit: data already prepared
            return super().partial_fit(X, y, classes=classes, **fit_params)
        images, scalars, y = self._validate_fit(X, y)
        weight = check_sample_weight(sample_weight, len(y), f"{type(self).__name__}.partial_fit")
        reinit = not self.initialized_
        if not reinit:
            self._check_shape(images, scalars, f"{type(self).__name__}.partial_fit")
        data, yt = self._start_fit(images, scalars, y, reinit, weight)
        try:
            if not self.initialized_:
                self.initialize()
            self._attach_dropout_generators(True)
            super().partial_fit(data, yt, classes=classes, **fit_params)
        finally:
            self._cleanup_fit()
        self._finish_fit()
        return self

    def _check_shape(self, images, scalars, where):
        got = tuple(images.shape[1:])
        if got != tuple(self.input_shape_):
            b, h, w = self.input_shape_
            parts = []
            if got[0] != b:
                parts.append(f"{got[0]} bands instead of {b}")
            if got[1:] != (h, w):
                parts.append(f"{got[1]}x{got[2]} pixels instead of {h}x{w}")
            raise ValueError(
                f"{where}: the network was trained on images of shape (n, {b}, {h}, {w}) "
                f"(bands, H, W) but got {images.shape}: {', '.join(parts)}"
            )
        if scalars.shape[1] != self.n_scalars_:
            raise ValueError(
                f"{where}: the network was trained with {self.n_scalars_} scalars per cluster "
                f"but got {scalars.shape[1]} (columns of 'scalars')"
            )

    def _check_fitted(self):
        if not self.initialized_ or getattr(self, "input_shape_", None) is None:
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def predict_gaussian(self, X):
        """Predicted mean and variance of log10 M500c, each of shape (n,), float64."""
        self._check_fitted()
        where = f"{type(self).__name__}.predict"
        images, scalars = network_inputs(X, where)
        self._check_shape(images, scalars, where)
        n = images.shape[0]
        if n == 0:
            return np.zeros(0), np.zeros(0)
        means, variances = [], []
        for mean, var in self.forward_iter({"images": images, "scalars": scalars}, training=False):
            means.append(mean.numpy().reshape(-1))
            variances.append(var.numpy().reshape(-1))
        mean = np.concatenate(means).astype(np.float64) * self.y_scale_ + self.y_mean_
        var = np.concatenate(variances).astype(np.float64) * self.y_scale_**2
        if mean.shape != (n,) or var.shape != (n,):
            raise RuntimeError(f"{where}: the network gave {mean.shape[0]} predictions for {n} clusters")
        return mean, var

    def predict(self, X, return_std=False):
        """Predict log10 M500c (and its standard deviation).

        Parameters
        ----------
        X : ClusterSample
            ``images`` (n, B, H, W) with the bands and size seen in fit, and
            ``scalars`` (n, K).
        return_std : bool, default=False
            Also return the predicted (aleatoric) standard deviation.

        Returns
        -------
        mean : ndarray of shape (n,)
        std : ndarray of shape (n,)
            Only with ``return_std=True``; in dex.
        """
        mean, var = self.predict_gaussian(X)
        if return_std:
            return mean, np.sqrt(var)
        return mean

    @available_if(lambda self: False)
    def predict_proba(self, X):  # pragma: no cover - hidden: a regressor has no probabilities
        """Not available: use ``predict(X, return_std=True)``."""

    # ------------------------------------------------------------- persistence
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_generators_", None)
        state.pop("_grad_scaler_", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # a ClusterSample (or a 4-D cube), not a 2-D matrix
        return tags

    def _persist_params(self):
        """Constructor parameters for :mod:`skcluster.persist` (skorch's bookkeeping left out)."""
        params = self.get_params(deep=False)
        params.pop("_params_to_validate", None)
        return params

    def _persist_state(self):
        """Fitted state for :mod:`skcluster.persist` (tensors, numbers, lists, dicts); None if unfitted."""
        if not self.initialized_ or getattr(self, "input_shape_", None) is None:
            return None
        state = {k: getattr(self, k) for k in _OWN_FITTED if hasattr(self, k)}
        state["history"] = [dict(epoch) for epoch in self.history_]
        state["module_state"] = {k: v.detach().cpu() for k, v in self.module_.state_dict().items()}
        opt = getattr(self, "optimizer_", None)
        if opt is not None:
            state["optimizer_state"] = _tensors_to_cpu(opt.state_dict())
        return state

    @classmethod
    def _persist_restore(cls, params, state, device=None, check=None):
        """Rebuild a fitted net from :meth:`_persist_state` output.

        ``check(net, state)``, when given, runs after the net is made and its
        fitted attributes set, before its network is built (skcluster.persist
        passes its bounds: the network's size against the saved weights).
        """
        from skorch.history import History

        params = dict(params)
        if state is None:
            return cls(**params)
        if device is not None:
            params["device"] = device
        elif torch.device(params.get("device", "cpu")).type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"the saved {cls.__name__} ran on {params['device']!r} but no CUDA device is "
                "available; loading it on the CPU",
                SkclusterWarning,
                stacklevel=3,
            )
            params["device"] = "cpu"
        net = cls(**params)
        for key in _OWN_FITTED:
            if key in state:
                value = state[key]
                setattr(net, key, tuple(value) if key == "input_shape_" else value)
        if check is not None:
            check(net, state)
        net.initialize()
        net.module_.load_state_dict(state["module_state"])
        if "optimizer_state" in state and getattr(net, "optimizer_", None) is not None:
            net.optimizer_.load_state_dict(state["optimizer_state"])
        net.history_ = History(state.get("history", []))
        net._set_training(False)
        return net


@functools.lru_cache(maxsize=1)
def cpu_bfloat16_fast():
    """Whether this CPU computes bfloat16 natively: AVX512-BF16 or AMX (torch's CPU feature checks).

    Elsewhere torch emulates bfloat16 on the CPU, slower than float32.
    Falls back to the ``flags`` of ``/proc/cpuinfo`` (``avx512_bf16``,
    ``amx_bf16``) for a torch without the checks. False where torch's
    kernels are capped below AVX-512 (``ATEN_CPU_CAPABILITY=avx2``, which
    also emulates an AVX2-only CPU for benchmarks).
    """
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "")()
    if capability in ("DEFAULT", "NO AVX", "AVX2"):
        return False
    try:  # private helpers, present in torch >= 2.1
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # pragma: no cover - older torch
        try:
            with open("/proc/cpuinfo") as f:
                flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        except OSError:
            return False
        return bool({"avx512_bf16", "amx_bf16"} & set(flags))


#: Values of ``CNNRegressor(lr_schedule=...)``.
LR_SCHEDULES = (None, "cosine", "onecycle")

#: OneCycleLR's defaults (torch.optim.lr_scheduler.OneCycleLR, Smith & Topin 2019): the share of the steps
#: spent rising, the start rate as a fraction of the peak, and the final rate as a fraction of the start.
ONECYCLE_PCT_START, ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 0.3, 25.0, 1e4


def epoch_lr(net, epoch):
    """The learning rate of 1-based ``epoch`` under ``net.lr_schedule`` (see :class:`CNNRegressor`).

    For "onecycle", which changes the rate every batch, use :func:`batch_lr`.
    """
    if net.lr_schedule is None:
        return net.lr
    if net.lr_schedule == "onecycle":
        raise ValueError("the one-cycle rate changes every batch: use batch_lr")
    return net.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / net.max_epochs))


def batch_lr(net, step, steps_per_epoch):
    """The one-cycle rate of 0-based training batch ``step`` (``steps_per_epoch`` batches an epoch).

    torch's ``OneCycleLR(max_lr=net.lr, epochs=net.max_epochs,
    steps_per_epoch=steps_per_epoch)`` rate after ``step`` scheduler steps
    (two cosine phases, see :class:`CNNRegressor` ``lr_schedule``); steps
    past the last (a ``partial_fit`` beyond ``max_epochs``) keep the final
    rate.
    """
    total = int(net.max_epochs) * int(steps_per_epoch)
    step = min(int(step), total - 1)
    top = float(net.lr)
    start = top / ONECYCLE_DIV
    end_up = float(ONECYCLE_PCT_START * total) - 1
    phases = ((0.0, end_up, start, top), (end_up, total - 1.0, top, start / ONECYCLE_FINAL_DIV))
    for i, (first, last, lr_from, lr_to) in enumerate(phases):
        if step <= last or i == len(phases) - 1:
            pct = (step - first) / (last - first) if last > first else 1.0
            return lr_to + (lr_from - lr_to) / 2.0 * (math.cos(math.pi * pct) + 1.0)
    raise AssertionError("unreachable")  # pragma: no cover


def train_batches(net, n_train):
    """Batches per training epoch of ``n_train`` clusters (the training iterator's batch size and drop_last)."""
    kwargs = net.get_params_for("iterator_train")
    bs = kwargs.get("batch_size", net.batch_size)
    bs = n_train if bs == -1 else max(int(bs), 1)
    n = n_train // bs if kwargs.get("drop_last", False) else math.ceil(n_train / bs)
    return max(1, n)


def set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


class _EpochLR(Callback):
    """Sets the optimizer's learning rate at the start of each epoch from :func:`epoch_lr`."""

    def on_epoch_begin(self, net, **kwargs):
        lr = epoch_lr(net, len(net.history))
        set_lr(net.optimizer_, lr)
        net.history.record("lr", lr)


class _BatchLR(Callback):
    """Sets the optimizer's learning rate before each training batch from :func:`batch_lr` (one-cycle)."""

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self.steps_per_epoch_ = train_batches(net, len(dataset_train))
        self.step_ = (len(net.history) - 1) * self.steps_per_epoch_
        net.history.record("lr", batch_lr(net, self.step_, self.steps_per_epoch_))

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            set_lr(net.optimizer_, batch_lr(net, self.step_, self.steps_per_epoch_))
            self.step_ += 1


def _tensors_to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _tensors_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors_to_cpu(v) for v in obj)
    return obj


def check_batch_size(batch_size, n, where):
    """A positive integer batch size (-1: all ``n`` at once)."""
    if batch_size == -1 and not isinstance(batch_size, bool):
        return max(int(n), 1)
    return check_positive_int(batch_size, "batch_size", where)


def _normalise(v):
    if isinstance(v, (list, tuple)):
        return tuple(_normalise(x) for x in v)
    return v
