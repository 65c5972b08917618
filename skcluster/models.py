"""The standard mass model in one line: preprocessing + a deep ensemble of CNNs.

:func:`make_mass_pipeline` is what the demo, ``skcluster train``, the
benchmarks and the examples use, so that they all train the same model:

    bin -> resize -> profile -> smooth -> scale -> join -> model

(:func:`make_preprocessing` for the preprocessing
steps; ``profile`` (:class:`~skcluster.preprocessing.RadialProfile`) hands
the summed counts in annuli to the network beside the redshift; ``model``
is a :class:`~skcluster.ensemble.DeepEnsembleRegressor` of
:class:`~skcluster.nn.CNNRegressor`). Every setting stays reachable with
``set_params`` (``model__n_estimators``, ``model__estimator__max_epochs``,
``smooth__sigma``, ...), so ``GridSearchCV`` can tune it.
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

__all__ = ["DEFAULT_NPIX", "STEP_NAMES", "fast_autocast", "make_cnn", "make_mass_pipeline", "make_preprocessing"]

#: Names of the steps of :func:`make_preprocessing`, in order.
STEP_NAMES = ("bin", "resize", "smooth", "scale", "join")


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


#: Pixels per side of the network input over the 20 arcmin box (37.5 arcsec pixels). The seed study
#: (Krippendorf et al. 2023) used 50; 32 gives the same accuracy on the benchmark mock (scatter 1.006
#: [0.992, 1.021] and NLL +0.006 [-0.006, +0.019] against 50, paired over 2400 clusters in 3 folds) for
#: 0.42x the training arithmetic and 1.56x the training speed on a 2-core CPU
#: (``benchmarks/accuracy_per_flop.py``, issue 38; the benchmark page of the docs).
DEFAULT_NPIX = 32


def make_cnn(max_epochs=80, patience=15, batch_size=32, lr=1e-3, channels=(16, 32, 64),
             dense=(64,), dropout=0.1, noise_sigma=0.0, fast=True, device="cpu",
             random_state=None, verbose=0, pool="max", lr_schedule=None, beta=0.0):
    """A :class:`~skcluster.nn.CNNRegressor` with the package's default settings.

    Parameters
    ----------
    max_epochs, patience : int, default=80, 15
        Training length and early-stopping patience (on a shuffled 20%
        validation split): :class:`~skcluster.nn.CNNRegressor`'s defaults.
    batch_size : int, default=32
        :class:`~skcluster.nn.CNNRegressor`'s default (why 32: its
        docstring, and the benchmark page of the docs for the measurement).
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


def make_preprocessing(bands="krippendorf10", size_arcmin=20.0, npix=DEFAULT_NPIX, shape=(DEFAULT_NPIX, DEFAULT_NPIX),
                       sigma=1.0, sigma_bands=0.0, stretch="log", use_redshift=True,
                       extra=(), source=None, mask_point_sources=False, profile=False, observables=False,
                       nh_column=None, verbose=True):
    """The standard chain from events (or images) to the network's input.

    ``bin`` (:class:`~skcluster.preprocessing.BandBinner`, or ``source``) ->
    ``resize`` (:class:`~skcluster.preprocessing.Resizer`) -> ``smooth``
    (:class:`~skcluster.preprocessing.GaussianSmoother`) -> ``scale``
    (:class:`~skcluster.preprocessing.CountScaler`) -> ``join``
    (:class:`~skcluster.preprocessing.RedshiftJoiner`), as in the seed study
    (Krippendorf et al. 2023: 10 bands over a 20 arcmin box, 50 x 50 pixels,
    Gaussian smoothing, redshift joined to the network), at
    :data:`DEFAULT_NPIX` (32) pixels per side by default, which gives the
    seed study's accuracy with 0.42x the arithmetic. The events are binned
    straight to ``npix``: binning to 300 first would need 29 GB for 8000
    clusters in 10 bands, and gives the same cube after the resize.

    Parameters
    ----------
    bands : str or sequence of (float, float), default="krippendorf10"
        Band preset or explicit bands, keV (:class:`~skcluster.preprocessing.BandBinner`).
    size_arcmin : float, default=20.0
        Box side, arcmin.
    npix : int, default=DEFAULT_NPIX (32)
        Pixels per side of the binned cube (50 in the seed study).
    shape : int or (int, int), default=(32, 32)
        Network input size (the resize is a no-op when it equals ``npix``).
    sigma : float or (float, float), default=1.0
        Gaussian smoothing, output pixels (37.5 arcsec at 32 pixels over 20 arcmin).
    sigma_bands : float, default=0.0
        Smoothing across bands, in bands.
    stretch : {"log", "asinh"} or None, default="log"
        :class:`~skcluster.preprocessing.CountScaler` stretch (after exposure correction).
    use_redshift : bool, default=True
        Join ``log(1 + z)`` as a scalar.
    extra : sequence, default=()
        Extra scalar columns (:class:`~skcluster.preprocessing.RedshiftJoiner`).
    source : estimator or None, default=None
        First step instead of a :class:`~skcluster.preprocessing.BandBinner`, e.g. an
        :class:`~skcluster.preprocessing.ImageCutout` for real images.
    mask_point_sources : bool, default=False
        Put a :class:`~skcluster.preprocessing.PointSourceMasker` step ``mask`` before ``bin``: the
        detected point sources of the ``point_sources`` column (the mock
        writes them; :func:`skcluster.io.point_sources_around` makes them
        from a published catalogue) are masked in the events and refilled at
        the local level. Event input only.
    profile : bool, default=False
        Put a :class:`~skcluster.preprocessing.RadialProfile` step ``profile`` right after
        ``resize`` (on the network's pixel grid, whatever the source's
        pixels) and join its ``profile`` column (log10 surface brightness of all
        bands in annuli out to the box edge) beside the redshift: the
        summed flux a CNN on stretched, max-pooled images cannot add up
        itself.
    observables : bool, default=False
        Put a :class:`~skcluster.baselines.ScalarObservables` step
        ``observables`` before ``bin`` (after ``mask``) that measures the
        image observables of :data:`~skcluster.baselines.OBSERVABLE_SCALARS` on each cluster's
        events (bands :data:`~skcluster.baselines.OBSERVABLE_BANDS_KEV`), and join them beside
        the redshift: what the boosted trees read, from the same photons.
        Event input only.
    nh_column : str, default=None
        With ``observables``: the column of each cluster's Galactic N_H
        (cm^-2) that converts its count rate to L_X
        (:class:`~skcluster.baselines.ScalarObservables` ``nh_column``);
        None assumes eFEDS's 3e20 for every cluster. Add the name to
        ``extra`` to join it beside the redshift too.
    verbose : bool, default=True
        Progress bars of the binning step (long runs only).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps named ``bin``, ``resize``, ``smooth``, ``scale``, ``join``
        (after ``mask`` with ``mask_point_sources`` and ``observables``
        with ``observables``; ``profile`` after ``resize`` with
        ``profile``), so
        that ``GridSearchCV`` can tune e.g. ``smooth__sigma`` or
        ``bin__bands`` and ``pipe.set_params(bin=ImageCutout(...))`` swaps in
        real data (with the bands and pixel grid the rest was fitted on).

    Examples
    --------
    >>> from skcluster.models import make_preprocessing
    >>> pipe = make_preprocessing(bands="ho3", sigma=1.5)
    >>> [name for name, _ in pipe.steps]
    ['bin', 'resize', 'smooth', 'scale', 'join']
    """
    from .baselines import OBSERVABLE_BANDS_KEV, OBSERVABLE_SCALARS, ScalarObservables
    from .preprocessing import (
        BandBinner,
        CountScaler,
        GaussianSmoother,
        PointSourceMasker,
        RadialProfile,
        RedshiftJoiner,
        Resizer,
    )

    first = source if source is not None else BandBinner(
        bands=bands, size_arcmin=size_arcmin, npix=npix, verbose=verbose)
    mask = [("mask", PointSourceMasker(size_arcmin=size_arcmin))] if mask_point_sources else []
    obs = []
    if observables:
        obs = [("observables", ScalarObservables(source="events", bands_keV=OBSERVABLE_BANDS_KEV,
                                                 size_arcmin=size_arcmin, nh_column=nh_column))]
    elif nh_column is not None:
        raise ValueError("nh_column sets the N_H of the observables step: pass observables=True too")
    prof = [("profile", RadialProfile())] if profile else []
    extra = ((tuple(extra) if not isinstance(extra, str) else (extra,))
             + (OBSERVABLE_SCALARS if observables else ()) + ((("profile", "linear"),) if profile else ()))
    return Pipeline(mask + obs + [("bin", first), ("resize", Resizer(shape=shape))] + prof + [
        ("smooth", GaussianSmoother(sigma=sigma, sigma_bands=sigma_bands)),
        ("scale", CountScaler(stretch=stretch)),
        ("join", RedshiftJoiner(use_redshift=use_redshift, extra=extra)),
    ])


def make_mass_pipeline(bands="krippendorf10", size_arcmin=20.0, npix=DEFAULT_NPIX, sigma=1.0,
                       sigma_bands=0.0, stretch="log", use_redshift=True, n_estimators=5,
                       n_jobs=None, random_state=None, verbose=0, mask_point_sources=True, extra_scalars=(),
                       flag_domain=False, profile=True, observables=False, nh_column=None, member_groups=None,
                       **cnn_params):
    """Preprocessing plus a deep ensemble of CNNs, as one sklearn Pipeline.

    Parameters
    ----------
    bands : str or sequence of (float, float), default="krippendorf10"
        Energy bands (a preset of :mod:`skcluster.preprocessing.bands` or
        explicit (lo, hi) keV pairs).
    size_arcmin : float, default=20.0
        Side of the cut-out box (20 arcmin: 300 pixels of 4 arcsec, as the
        seed study).
    npix : int, default=DEFAULT_NPIX (32)
        Pixels per side of the network input (37.5 arcsec pixels over the
        20 arcmin box; the seed study used 50, which gives the same
        accuracy on the benchmark mock for 2.4x the training arithmetic:
        :data:`DEFAULT_NPIX`).
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
    mask_point_sources : bool, default=True
        Mask the detected point sources (``point_sources`` column) in the
        events first (:class:`~skcluster.preprocessing.PointSourceMasker`),
        as ``skcluster train`` does and as the benchmark's standard model
        was measured. The built-in mock and :func:`~skcluster.datasets.read_survey`
        folders carry the column (:func:`skcluster.io.point_sources_around`
        makes it from a published catalogue); for data without a detected
        source list (band images, your own simulation) pass False.
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
        stretched, max-pooled images does not add up itself (what it gains
        on the benchmark mock: the point-source page of the benchmark docs,
        ``docs/_includes/benchmark_point_sources.md``). False gives the seed
        study's input (images and z).
    observables : bool, default=False
        Measure the image observables the boosted trees read
        (:data:`~skcluster.baselines.OBSERVABLE_SCALARS`: net
        counts, L_X, background, hardness ratios) on each cluster's events
        after the point-source mask (step ``observables`` before ``bin``)
        and join them beside the redshift (what they gain on the benchmark
        mock: ``skcluster benchmark --rows
        ensemble_10band_masked_profile_observables``, and the models page of
        the user guide). Event input only.
    nh_column : str, default=None
        With ``observables``: the column of each cluster's Galactic N_H
        (cm^-2) for the observables' count-rate-to-L_X conversion (None:
        eFEDS's 3e20 for all); put it in ``extra_scalars`` to join it too
        (``skcluster train --survey erosita`` does both).
    member_groups : None or str, default=None
        ``"physics_draw"``: a physics-marginalised ensemble, each member
        trained on one physics draw of a
        :func:`~skcluster.datasets.make_marginalised_survey` sample
        (``n_estimators`` a multiple of its draws; see
        :class:`~skcluster.ensemble.DeepEnsembleRegressor`); None: every
        member on all clusters.
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
                                  random_state=random_state, verbose=verbose, member_groups=member_groups)
    return Pipeline(steps + [("model", model)])
