"""The standard mass model in one line: preprocessing + a deep ensemble of CNNs.

:func:`make_mass_pipeline` is what the demo, ``skcluster train``, the
benchmarks and the examples use, so that they all train the same model:

    bin -> resize -> profile -> smooth -> scale -> join -> model

(:func:`skcluster.preprocessing.make_preprocessing` for the preprocessing
steps; ``profile`` (:class:`~skcluster.preprocessing.RadialProfile`) hands
the summed counts in annuli to the network beside the redshift; ``model``
is a :class:`~skcluster.ensemble.DeepEnsembleRegressor` of
:class:`~skcluster.nn.CNNRegressor`). Every setting stays reachable with
``set_params`` (``model__n_estimators``, ``model__estimator__max_epochs``,
``smooth__sigma``, ...), so ``GridSearchCV`` can tune it.
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from .preprocessing import make_preprocessing

__all__ = ["make_cnn", "make_mass_pipeline", "fast_autocast"]


def fast_autocast(device="cpu"):
    """The autocast dtype that speeds up training on ``device``, or None.

    bfloat16 on CPUs with AVX512-BF16 or AMX (2.7x faster training and
    inference on the development machine, ``benchmarks/bench_model.py``) and
    on CUDA devices that support it; float16 on older CUDA devices; None
    (float32) elsewhere, where bfloat16 would be emulated and slow.
    """
    import torch

    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            return None
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    from .nn.regressor import cpu_bfloat16_fast

    return "bfloat16" if cpu_bfloat16_fast() else None


def make_cnn(max_epochs=80, patience=15, batch_size=32, lr=1e-3, channels=(16, 32, 64),
             dense=(64,), dropout=0.1, noise_sigma=0.0, fast=True, device="cpu",
             random_state=None, verbose=0, pool="max", lr_schedule=None, beta=0.0):
    """A :class:`~skcluster.nn.CNNRegressor` with the package's default settings.

    Parameters
    ----------
    max_epochs, patience : int, default=80, 15
        Training length and early-stopping patience (on a shuffled 20%
        validation split).
    batch_size : int, default=32
        With 32 instead of 64, and 80/15 epochs instead of 60/10 (or the
        20/5 of earlier benchmark runs), the masked 10-band ensemble went
        from 29.6% (20/5, batch 64) and 27.2% (60/10, batch 64) to 26.2%
        scatter on the 2400-cluster, 3-fold benchmark mock (0.88x [0.87,
        0.90], paired bootstrap on the same folds): their best epochs at
        batch 32 are 31-51, so fewer, larger steps stopped them before they
        had fitted (``benchmarks/README.md``).
    lr : float, default=1e-3
        Adam learning rate.
    channels : tuple of int, default=(16, 32, 64)
        Convolution blocks (3x3, max-pooled).
    dense : tuple of int, default=(64,)
        Dense layers; the scalars (redshift) enter the first.
    dropout : float, default=0.1
    noise_sigma : float, default=0.0
        Gaussian input noise on the standardised images during training
        (sigma_N of Krippendorf et al. 2023).
    fast : bool, default=True
        channels_last memory layout and the autocast dtype of
        :func:`fast_autocast` for ``device``.
    device : str, default="cpu"
        ``"cuda"`` trains on a GPU unchanged.
    random_state : int or None, default=None
    verbose : int, default=0
        1 prints one line per epoch.
    pool : {"max", "avg"}, default="max"
        2x2 pooling after each convolution block ("avg" keeps sums of
        flux up to a constant factor, "max" keeps maxima).
    lr_schedule : {None, "cosine", "onecycle"}, default=None
        Learning-rate schedule over ``max_epochs`` (see
        :class:`~skcluster.nn.CNNRegressor`).
    beta : float, default=0.0
        beta-NLL exponent of the training loss (Seitzer et al. 2022); 0 is
        the plain Gaussian NLL.
    """
    from .nn import CNNRegressor

    return CNNRegressor(
        max_epochs=max_epochs,
        patience=patience,
        batch_size=batch_size,
        lr=lr,
        lr_schedule=lr_schedule,
        beta=beta,
        noise_sigma=noise_sigma,
        channels_last=bool(fast),
        autocast=fast_autocast(device) if fast else None,
        device=device,
        random_state=random_state,
        verbose=verbose,
        module__channels=tuple(channels),
        module__dense=tuple(dense),
        module__dropout=dropout,
        module__pool=pool,
    )


def make_mass_pipeline(bands="krippendorf10", size_arcmin=20.0, npix=50, sigma=1.0,
                       sigma_bands=0.0, stretch="log", use_redshift=True, n_estimators=5,
                       n_jobs=None, random_state=None, verbose=0, mask_point_sources=False, extra_scalars=(),
                       flag_domain=False, profile=True, observables=False, nh_column=None, **cnn_params):
    """Preprocessing plus a deep ensemble of CNNs, as one sklearn Pipeline.

    Parameters
    ----------
    bands : str or sequence of (float, float), default="krippendorf10"
        Energy bands (a preset of :mod:`skcluster.preprocessing.bands` or
        explicit (lo, hi) keV pairs).
    size_arcmin : float, default=20.0
        Side of the cut-out box (20 arcmin: 300 pixels of 4 arcsec, as the
        seed study).
    npix : int, default=50
        Pixels per side of the network input (50, as the seed study).
    sigma, sigma_bands : float, default=1.0, 0.0
        Gaussian smoothing in pixels, and across bands.
    stretch : {"log", "asinh"} or None, default="log"
    use_redshift : bool, default=True
        Join log(1 + z) into the first dense layer.
    n_estimators : int, default=5
        Ensemble members (30 in the seed study: pass 30 on a GPU).
    n_jobs : int or None, default=None
        Members trained in parallel (joblib; a dask backend scales out).
    random_state : int or None, default=None
        Seeds every member (drawn once, so the seeds do not depend on
        n_jobs; with n_jobs 1 or None the members train vectorised, whose
        float rounding differs from separate processes': see
        :class:`~skcluster.ensemble.DeepEnsembleRegressor` ``vectorize``).
    verbose : int, default=0
        Progress over ensemble members (and per epoch with ``verbose=2``).
    mask_point_sources : bool, default=False
        Mask the detected point sources (``point_sources`` column) in the
        events first (:class:`~skcluster.preprocessing.PointSourceMasker`).
    extra_scalars : sequence, default=()
        Further scalar columns joined beside the redshift into the first
        dense layer (:class:`~skcluster.preprocessing.RedshiftJoiner`
        ``extra``: a name is taken as ``log(value)``, ``(name, "linear")``
        as it is), e.g. ``("exposure",)`` or the detection catalogue's
        ``ml_rate``, ``det_like``, ``ext_like`` (the benchmark's ``hybrid``
        row).
    flag_domain : bool, default=False
        Put a :class:`~skcluster.preprocessing.DomainFlagger` step
        ``domain`` right after ``bin``: it records the training ranges of
        redshift, exposure, counts, background and cut-out coverage, which
        :func:`skcluster.predict_catalog` then uses to flag (and give no
        mass to) clusters outside them. ``skcluster train`` sets it.
    profile : bool, default=True
        Join a radial surface-brightness profile of each cut-out
        (:class:`~skcluster.preprocessing.RadialProfile`, step ``profile``,
        right after ``resize``) beside the redshift: the summed counts a CNN on
        stretched, max-pooled images does not add up itself. On the
        benchmark mock (2400 clusters, 3 folds, point sources masked) it
        took the ensemble from 26.2% to 24.4% scatter (0.933x [0.916, 0.949])
        and to 0.91x [0.88, 0.94] the count-rate method's 26.8% (paired
        bootstrap on the same folds). False gives the seed study's input (images and z).
    observables : bool, default=False
        Measure the image observables the boosted trees read
        (:data:`~skcluster.preprocessing.pipeline.OBSERVABLE_SCALARS`: net
        counts, L_X, background, hardness ratios) on each cluster's events
        after the point-source mask (step ``observables`` before ``bin``)
        and join them beside the redshift. On the benchmark mock (6000
        clusters, 3 folds, 5 members, point sources masked) they took the
        standard model from 23.4% to 22.9% scatter (0.977x [0.968, 0.985];
        on the DET_LIKE, EXT_LIKE > 60 clusters 0.778x [0.734, 0.823]),
        paired bootstrap on the same folds (``skcluster benchmark --rows
        ensemble_10band_masked_profile_observables``). Event input only.
    nh_column : str, default=None
        With ``observables``: the column of each cluster's Galactic N_H
        (cm^-2) for the observables' count-rate-to-L_X conversion (None:
        eFEDS's 3e20 for all); put it in ``extra_scalars`` to join it too
        (``skcluster train --survey erosita`` does both).
    **cnn_params
        Passed to :func:`make_cnn` (``max_epochs``, ``channels``,
        ``noise_sigma``, ``device``, ...).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``bin``, ``resize``, ``smooth``, ``scale``, ``join``, ``model``
        (with ``mask`` and ``observables`` before ``bin``, ``domain`` after
        it and ``profile`` after ``resize``, where asked for).
    """
    from .ensemble import DeepEnsembleRegressor

    pre = make_preprocessing(bands=bands, size_arcmin=size_arcmin, npix=npix, shape=(npix, npix),
                             sigma=sigma, sigma_bands=sigma_bands, stretch=stretch,
                             use_redshift=use_redshift, mask_point_sources=mask_point_sources,
                             extra=extra_scalars, profile=profile, observables=observables,
                             nh_column=nh_column, verbose=bool(verbose))
    steps = list(pre.steps)
    if flag_domain:
        from .preprocessing import DomainFlagger

        at = [name for name, _ in steps].index("bin") + 1
        steps.insert(at, ("domain", DomainFlagger()))
    cnn = make_cnn(verbose=1 if verbose and verbose > 1 else 0, **cnn_params)
    model = DeepEnsembleRegressor(cnn, n_estimators=n_estimators, n_jobs=n_jobs,
                                  random_state=random_state, verbose=verbose)
    return Pipeline(steps + [("model", model)])
