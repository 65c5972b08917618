"""Cross-validated benchmark: the CNN ensemble against scalar-observable baselines.

:func:`run_benchmark` tests the package's claim the way the seed studies did:
on an eFEDS-like mock survey (:func:`skcluster.datasets.make_survey`), K-fold
cross-validation (each cluster is one row, so it lies in exactly one test
fold), every model fitted on the training folds only and scored on the
held-out fold; the out-of-fold predictions of all folds are pooled into one
row of the table.

Rows (:data:`ROWS`):

* scalar baselines (:mod:`skcluster.baselines`): photon counts in a fixed
  aperture, counts within r500, core-excised counts, L_X, the count rate
  within r500, hardness ratios + counts (gradient boosting), gradient
  boosting on every scalar (all measured on the events with the detected
  point sources masked, the list the networks and the detection fit
  mask), and ``count_rate``, the *traditional method* of
  the seed study: the count rate of the detection likelihood fit (eSASS
  ``ML_RATE``; the mock's ``ML_CTS / exposure``) through the Chiu et al.
  2022 scaling-relation form;
* the CNN: a single network (member 0 of the 10-band ensemble), deep
  ensembles on 1 band (0.2-2.3 keV), 3 bands (Ho et al. 2023) and 10 bands
  (Krippendorf et al. 2023), and the 10-band ensemble without redshift;
* the seed study's ablations: Gaussian input noise sigma_N (train and test
  scatter), the high-likelihood subset (DET_LIKE > 60 and EXT_LIKE > 60,
  scored on that subset of the same out-of-fold predictions), and training
  on a sample resampled to be uniform in mass.

The band binning and the measurement of scalar observables learn nothing
from the data (they are stateless transforms), so they run once on the whole
sample; everything that learns (scaling, standardisation, networks,
regressions) is fitted inside the folds.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold

from ._paths import check_output_folder
from ._validation import check_positive_int
from .baselines.features import catalog_scalars
from .baselines.observables import OBSERVABLE_BANDS_KEV
from .datasets.parameters import DEFAULT_SKY
from .io.atomic import atomic_output
from .metrics import binned_mass_metrics, mass_report, mass_scatter
from .models import DEFAULT_NPIX

__all__ = ["BenchmarkConfig", "PRESETS", "ROWS", "catalog_scalars", "format_table", "run_benchmark"]

#: Bands for the baselines' hardness ratios and counts, keV (those of the
#: networks' ``observables`` step).
BASELINE_BANDS_KEV = OBSERVABLE_BANDS_KEV

#: eFEDS high-likelihood subset of Krippendorf et al. 2023.
HIGH_LIKELIHOOD = 60.0


@dataclass(frozen=True)
class BenchmarkConfig:
    """Sizes of a benchmark run (see :data:`PRESETS`)."""

    n_clusters: int = 8000
    n_folds: int = 5
    n_estimators: int = 5
    max_epochs: int = 80
    patience: int = 15
    batch_size: int = 32
    noise_levels: tuple = (0.01, 0.1, 0.2)
    survey: str = "efeds"
    size_arcmin: float = 20.0
    npix: int = DEFAULT_NPIX
    random_state: int = 0
    device: str = "cpu"
    rows: tuple = field(default=())

    def __post_init__(self):
        for name in ("n_clusters", "n_folds", "n_estimators", "max_epochs", "patience", "batch_size", "npix"):
            check_positive_int(getattr(self, name), name)
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be at least 2, got {self.n_folds}")
        unknown = [r for r in self.rows if r not in ROWS]
        if unknown:
            raise ValueError(f"unknown benchmark rows {unknown}; choose from {list(ROWS)}")


#: ``quick`` is the same code path with fewer clusters, folds, members and
#: epochs; ``full``, the default, is the seed study's scale (8000 clusters,
#: 30 members, 5 folds: 2.2 h per ensemble row on a 2-core CPU with
#: bfloat16, so every row wants a GPU, ``device="cuda"``); ``standard``
#: is a mid-size run (5 members). The README quotes measured run times.
PRESETS = {
    "quick": BenchmarkConfig(n_clusters=1200, n_folds=3, n_estimators=2, max_epochs=12, patience=4),
    "standard": BenchmarkConfig(n_clusters=8000, n_folds=5, n_estimators=5, max_epochs=80, patience=15),
    "full": BenchmarkConfig(n_clusters=8000, n_folds=5, n_estimators=30, max_epochs=100, patience=15),
}

#: Files :func:`run_benchmark` writes into its results folder.
BENCHMARK_FILES = ("results.json", "results.md", "predictions.npz", "performance.png")

#: Written after every finished fold while a run goes on, removed when it ends: what a stopped run has measured
#: (the layout of ``predictions.npz``, NaN where a row's fold has not finished, and each cluster's ``fold``).
PARTIAL_FILE = "predictions_partial.npz"


@dataclass(frozen=True)
class BenchmarkRow:
    """One row of the benchmark table, declared as data.

    Exactly one of ``baseline``, ``pipeline``, ``member_of``, ``of`` or
    ``permuted_of`` says where the row's predictions come from.

    Attributes
    ----------
    name, description : str
    baseline : callable, default=None
        ``baseline(observable_columns)`` -> an unfitted regressor on the
        output of :class:`~skcluster.baselines.ScalarObservables` (plus the
        detection-catalogue scalars of :func:`catalog_scalars`).
    measures_observables : bool, default=True
        Whether predicting needs the image observables (their measuring
        time is added to the row's predict time).
    pipeline : dict, default=None
        Keyword arguments of :func:`~skcluster.models.make_mass_pipeline`
        for a CNN row (the benchmark's sizes are added).
    uniform_mass : bool, default=False
        Train each fold on a resample flat in log mass.
    train_scatter : bool, default=False
        Also report the scatter on the training folds.
    member_of : str, default=None
        The row is member 0 of this ensemble row (trained with it).
    of, subset : str, default=None
        The row scores the predictions of row ``of`` on a subset of the
        clusters (``"high_likelihood"``: DET_LIKE and EXT_LIKE > 60).
    permuted_of : str, default=None
        The row scores the fitted pipelines of ensemble row ``permuted_of``
        on each test fold with the images permuted among the clusters (the
        scalars, e.g. the redshift, kept): how much the network reads the
        image.
    default : bool, default=True
        Part of a run that names no rows (False: a lever measured on
        request, ``rows=(...)``).
    plotted : bool, default=False
        Draw the row's predictions in ``performance.png``.
    """

    name: str
    description: str
    baseline: object = None
    measures_observables: bool = True
    pipeline: dict = None
    uniform_mass: bool = False
    train_scatter: bool = False
    member_of: str = None
    of: str = None
    subset: str = None
    permuted_of: str = None
    default: bool = True
    plotted: bool = False


def _baseline_by_name(name, observables):
    """The regressor of :func:`~skcluster.baselines.make_baseline` ``(name)``."""
    from .baselines import make_baseline

    return make_baseline(name, random_state=0).named_steps["regressor"]


def _baseline_named(name):
    return partial(_baseline_by_name, name)


def _count_rate_method(observables):
    from .baselines import count_rate_method

    return count_rate_method()


def _count_rate_truth_mask(observables):
    from .baselines import ScalingRelationRegressor

    return ScalingRelationRegressor(observable="ml_rate_truthmask", redshift_terms=("E", "DL", "1+z"))


def _count_rate_r500(observables):
    from .baselines import make_baseline

    return make_baseline("count_rate").named_steps["regressor"]


def _gbm_scalars(observables):
    from .baselines import GradientBoostingMassRegressor

    cols = list(observables) + ["ml_rate", "ext_arcsec", "det_like", "ext_like", "z", "exposure"]
    return GradientBoostingMassRegressor(columns=cols, random_state=0)


def _masked_observables(X, cfg):
    """:class:`~skcluster.baselines.ScalarObservables` measured on the events with the detected point
    sources masked: the same list, masks and fill as the networks' ``mask`` step, so that no baseline
    reads the AGN photons that the networks and the count-rate fit are spared: the networks' own
    ``mask`` and ``observables`` steps (:func:`~skcluster.models.make_preprocessing`)."""
    from .models import make_preprocessing

    steps = make_preprocessing(size_arcmin=cfg.size_arcmin, mask_point_sources=True, observables=True)
    return steps[:2].fit_transform(X).drop("events")


#: The detection catalogue's scalars of the ``hybrid`` row, joined beside the
#: redshift (:func:`catalog_scalars`; extents can be zero, so linear).
HYBRID_SCALARS = ("ml_rate", "det_like", "ext_like", ("ext_arcsec", "linear"), "exposure")


def _seed(**settings):
    """A row's pipeline settings with the seed study's input: images and z, no RadialProfile, no mask (unless asked)."""
    return dict(profile=False, **{"mask_point_sources": False, **settings})


def _noise_row(sigma):
    return BenchmarkRow(f"ensemble_10band_noise_{sigma}", f"deep ensemble, 10 bands, input noise sigma_N = {sigma}",
                        pipeline=_seed(bands="krippendorf10", noise_sigma=float(sigma)),
                        train_scatter=True)


def _subset_row(of):
    base = next(r for r in BENCHMARK_ROWS if r.name == of)
    return BenchmarkRow(f"{of}@high_likelihood",
                        f"{of} scored on the high-likelihood subset (DET_LIKE, EXT_LIKE > 60)",
                        of=of, subset="high_likelihood", default=base.default)


#: The rows of the table, in order (noise rows come from ``noise_levels``).
BENCHMARK_ROWS = (
    BenchmarkRow("counts", "photon counts in a 2' aperture (scaling relation)", baseline=_baseline_named("counts")),
    BenchmarkRow("counts_r500", "counts within r500, iterated with the mass", baseline=_baseline_named("counts_r500")),
    BenchmarkRow("counts_ce", "core-excised counts, 0.15-1 r500", baseline=_baseline_named("counts_ce")),
    BenchmarkRow("lx", "L_X (0.5-2 keV) within r500, K-corrected", baseline=_baseline_named("lx")),
    BenchmarkRow("count_rate_r500", "count rate eta within r500 (measured on the image)", baseline=_count_rate_r500),
    BenchmarkRow("count_rate", "traditional: detection-fit count rate (ML_CTS / exposure), Chiu+22 form; "
                 "the fit masks the detected point sources", baseline=_count_rate_method, measures_observables=False,
                 plotted=True),
    BenchmarkRow("count_rate_truth_mask", "reference only: the same fit leaving out the simulation's own labels "
                 "of bright AGN photons (no real pipeline has them)", baseline=_count_rate_truth_mask,
                 measures_observables=False),
    BenchmarkRow("hardness_counts", "gradient boosting on counts + hardness ratios + z",
                 baseline=_baseline_named("hardness_counts")),
    BenchmarkRow("gbm_scalars", "gradient boosting on every image observable (detected point sources masked) + "
                 "detection-catalogue scalars + z + exposure", baseline=_gbm_scalars, plotted=True),
    BenchmarkRow("cnn_single", "single CNN (member 0 of ensemble_10band)", member_of="ensemble_10band"),
    BenchmarkRow("ensemble_1band", "deep ensemble, 1 band (0.2-2.3 keV)", pipeline=_seed(bands="broad")),
    BenchmarkRow("ensemble_3band", "deep ensemble, 3 bands (Ho+23)", pipeline=_seed(bands="ho3")),
    BenchmarkRow("ensemble_10band", "deep ensemble, 10 bands (Krippendorf+23)",
                 pipeline=_seed(bands="krippendorf10"), train_scatter=True, plotted=True),
    BenchmarkRow("ensemble_10band_no_z", "deep ensemble, 10 bands, without redshift",
                 pipeline=_seed(bands="krippendorf10", use_redshift=False)),
    BenchmarkRow("ensemble_10band_uniform_mass", "deep ensemble, 10 bands, trained on a uniform-in-mass resample",
                 pipeline=_seed(bands="krippendorf10"), uniform_mass=True),
    BenchmarkRow("ensemble_10band_masked", "deep ensemble, 10 bands, the detected point sources masked "
                 "(the same list as count_rate's fit)",
                 pipeline=_seed(bands="krippendorf10", mask_point_sources=True)),
    BenchmarkRow("ensemble_10band_masked_permuted", "ensemble_10band_masked scored with the test images permuted "
                 "among clusters (redshift kept)", permuted_of="ensemble_10band_masked"),
    BenchmarkRow("hybrid", "ensemble_10band_masked with the detection catalogue's scalars (count rate, DET_LIKE, "
                 "EXT_LIKE, extent, exposure) joined beside z",
                 pipeline=_seed(bands="krippendorf10", mask_point_sources=True, extra_scalars=HYBRID_SCALARS)),
    BenchmarkRow("hybrid_observables", "lever: hybrid with the radial profile and gbm_scalars' image "
                 "observables (aperture counts, L_X, background, hardness ratios; point sources masked) also "
                 "joined beside z: every input of the standard model, hybrid and gbm_scalars at once",
                 pipeline=dict(bands="krippendorf10", mask_point_sources=True, profile=True,
                               extra_scalars=HYBRID_SCALARS, observables=True), default=False),
    BenchmarkRow("ensemble_10band_masked_profile_observables", "lever: the standard model with gbm_scalars' "
                 "image observables (point sources masked) also joined beside z; from the image alone, no "
                 "catalogue scalars", pipeline=dict(bands="krippendorf10", mask_point_sources=True, profile=True,
                                                    observables=True), default=False),
    BenchmarkRow("ensemble_10band_masked_asinh", "lever: ensemble_10band_masked with an asinh stretch",
                 pipeline=_seed(bands="krippendorf10", mask_point_sources=True, stretch="asinh"),
                 default=False),
    BenchmarkRow("ensemble_10band_masked_linear", "lever: ensemble_10band_masked without a stretch (linear "
                 "counts/s, standardised)", pipeline=_seed(bands="krippendorf10", mask_point_sources=True,
                                                          stretch=None), default=False),
    BenchmarkRow("ensemble_10band_masked_exposure", "lever: ensemble_10band_masked with log exposure joined "
                 "beside z", pipeline=_seed(bands="krippendorf10", mask_point_sources=True,
                                           extra_scalars=("exposure",)), default=False),
    BenchmarkRow("ensemble_10band_masked_avgpool", "lever: ensemble_10band_masked with average (sum-preserving) "
                 "pooling", pipeline=_seed(bands="krippendorf10", mask_point_sources=True, pool="avg"),
                 default=False),
    BenchmarkRow("ensemble_10band_masked_profile", "the standard model (make_mass_pipeline): "
                 "ensemble_10band_masked with the radial profile of summed counts (RadialProfile) joined beside z",
                 pipeline=dict(bands="krippendorf10", mask_point_sources=True, profile=True), plotted=True),
    BenchmarkRow("ensemble_1band_masked_profile", "the standard model on 1 band (0.2-2.3 keV)",
                 pipeline=dict(bands="broad", mask_point_sources=True, profile=True), default=False),
    BenchmarkRow("ensemble_3band_masked_profile", "the standard model on 3 bands (Ho+23)",
                 pipeline=dict(bands="ho3", mask_point_sources=True, profile=True), default=False),
)
_DEFAULT_NOISE_ROWS = tuple(_noise_row(s) for s in BenchmarkConfig.noise_levels)
_SUBSET_ROWS = tuple(_subset_row(r) for r in ("count_rate", "gbm_scalars", "ensemble_10band",
                                                 "ensemble_10band_masked", "ensemble_10band_masked_profile",
                                                 "hybrid"))
_ALL_ROWS = {r.name: r for r in BENCHMARK_ROWS + _DEFAULT_NOISE_ROWS + _SUBSET_ROWS}

#: Every row name with its description (noise rows for the default levels).
ROWS = {name: r.description for name, r in _ALL_ROWS.items()}


class _Log:
    def __init__(self, verbose):
        self.verbose = verbose
        self.t0 = time.perf_counter()

    def __call__(self, msg):
        if self.verbose:
            print(f"[{time.perf_counter() - self.t0:7.0f} s] {msg}", flush=True)


def _resolve(preset, quick, overrides):
    if quick and preset not in (None, "quick"):
        raise ValueError(f"quick=True contradicts preset={preset!r}")
    name = "quick" if quick else (preset or "full")
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {list(PRESETS)}")
    valid = {f.name for f in fields(BenchmarkConfig)}
    bad = [k for k in overrides if k not in valid]
    if bad:
        raise TypeError(f"unknown benchmark settings {bad}; valid: {sorted(valid)}")
    overrides = {k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if v is not None}
    return name, replace(PRESETS[name], **overrides)


def _selected_rows(cfg):
    """The rows to run, as :class:`BenchmarkRow` (all, with ``cfg.noise_levels``, unless ``cfg.rows``)."""
    if cfg.rows:
        named = [_ALL_ROWS[n] for n in cfg.rows]
        # a row that reuses another row's fitted models brings that row along
        implied = [r.member_of or r.permuted_of for r in named if r.member_of or r.permuted_of]
        return [_ALL_ROWS[n] for n in dict.fromkeys(implied) if n not in cfg.rows] + named
    noise = tuple(_noise_row(s) for s in cfg.noise_levels)
    return [r for r in BENCHMARK_ROWS + _SUBSET_ROWS + noise if r.default]


def plan(preset=None, quick=False, **overrides):
    """What :func:`run_benchmark` would run, and an upper bound of its time here.

    The bound is the CNN training, which dominates: every ensemble row trains
    ``n_estimators`` members on each fold's training clusters for up to
    ``max_epochs`` epochs (early stopping usually ends sooner). Its rate,
    cubes per second, is measured on the spot by training two standard
    members, vectorised, for one epoch on random cubes of the preset's size
    (a few seconds).

    Returns
    -------
    dict
        ``preset``, ``config`` (a :class:`BenchmarkConfig`), ``n_ensemble_rows``,
        ``cube_epochs`` (cubes times epochs of training, at most),
        ``cubes_per_second`` (measured) and ``seconds_max``.
    """
    name, cfg = _resolve(preset, quick, overrides)
    rows = _selected_rows(cfg)
    n_ens = sum(1 for r in rows if r.pipeline is not None)
    n_train = cfg.n_clusters * (cfg.n_folds - 1) / cfg.n_folds
    cube_epochs = n_ens * cfg.n_folds * cfg.n_estimators * n_train * cfg.max_epochs
    rate = _training_rate(cfg)
    return {"preset": name, "config": cfg, "n_ensemble_rows": n_ens, "cube_epochs": float(cube_epochs),
            "cubes_per_second": rate, "seconds_max": float(cube_epochs / rate)}


def _training_rate(cfg, n=256):
    """Training cubes per second of two standard members (vectorised), measured here.

    A small fit first (torch's one-time start-up), then one epoch on ``n``
    cubes, timed whole: the fixed cost of a fit counts, so the rate errs low
    and the time estimate high.
    """
    import time

    import torch

    from .ensemble import DeepEnsembleRegressor
    from .models import make_cnn
    from .nn import make_toy_sample

    threads = torch.get_num_threads()
    seconds = 0.0
    for size in (32, n):
        X, y = make_toy_sample(size, n_bands=10, image_size=cfg.npix, random_state=0)
        ens = DeepEnsembleRegressor(make_cnn(max_epochs=1, device=cfg.device), n_estimators=2, random_state=0)
        start = time.perf_counter()
        ens.fit(X, y)
        seconds = time.perf_counter() - start
    torch.set_num_threads(threads)
    return 2 * 0.8 * n / max(seconds, 1e-3)  # two members; 80% of the cubes train, the rest validate


def _simulate(cfg, n_jobs, log):
    from .datasets import make_survey

    log(f"simulating {cfg.n_clusters} {cfg.survey} clusters (seed {cfg.random_state})")
    data = make_survey(cfg.survey, n_clusters=cfg.n_clusters, random_state=cfg.random_state,
                       n_jobs=n_jobs, verbose=bool(log.verbose))
    X = data.X.assign(**catalog_scalars(data.catalog))
    high = (X["det_like"] > HIGH_LIKELIHOOD) & (X["ext_like"] > HIGH_LIKELIHOOD)
    return X, np.asarray(data.y, dtype=np.float64), high, data


def _uniform_mass_resample(y, seed, n_bins=20):
    """Indices of a resample of ``y`` with a flat distribution in log mass."""
    counts, edges = np.histogram(y, bins=n_bins)
    which = np.clip(np.digitize(y, edges[1:-1]), 0, n_bins - 1)
    w = 1.0 / counts[which]
    rng = np.random.default_rng(seed)
    return rng.choice(y.size, size=y.size, replace=True, p=w / w.sum())


def _cnn_pipeline(cfg, row):
    """The standard pipeline of a CNN row split after its stateless steps (masking, binning)."""
    from .models import make_mass_pipeline

    pipe = make_mass_pipeline(
        size_arcmin=cfg.size_arcmin, npix=cfg.npix, n_estimators=cfg.n_estimators,
        random_state=cfg.random_state, verbose=0, max_epochs=cfg.max_epochs, batch_size=cfg.batch_size,
        patience=cfg.patience, device=cfg.device, **row.pipeline,
    )
    cut = [name for name, _ in pipe.steps].index("bin") + 1
    return pipe[:cut], pipe[cut:]


def _row_result(name, y, mean, std, extra):
    res = {"model": name, "description": ROWS.get(name, name), "n_test": int(y.size)}
    res.update(mass_report(y, mean, std))
    b = binned_mass_metrics(y, mean, bins=4)
    res["scatter_mass_bins"] = [
        {"log10_m_lo": float(lo), "log10_m_hi": float(hi), "count": int(n),
         "scatter": float(sc), "bias": float(bi)}
        for lo, hi, n, sc, bi in zip(b["edges"][:-1], b["edges"][1:], b["count"], b["scatter"], b["bias"])
    ]
    res.update(extra)
    return res


def run_benchmark(out, quick=False, preset=None, n_folds=None, random_state=None, n_jobs=None,
                  verbose=1, overwrite=False, **settings):
    """Run the cross-validated benchmark and write its results folder.

    Parameters
    ----------
    out : path-like
        Results folder (created). Refuses, before any work, to replace any
        of :data:`BENCHMARK_FILES` there unless ``overwrite=True``.
    quick : bool, default=False
        The ``quick`` preset (small and fast; see :data:`PRESETS`).
    preset : {"quick", "standard", "full"}, default=None
        Sizes (:data:`PRESETS`); ``full`` (the seed study's scale) when
        neither is given.
    n_folds : int, default=None
        Overrides the preset's folds (5 for standard and full).
    random_state : int, default=None
        Seed of the mock survey, the folds and the networks (preset's 0).
    n_jobs : int, default=None
        Workers for the simulation (ensemble members train one after the
        other on torch's own threads, see ``benchmarks/bench_model.py``).
    verbose : int, default=1
        Progress lines (0: silent).
    overwrite : bool, default=False
    **settings
        Further :class:`BenchmarkConfig` fields (``n_clusters``,
        ``n_estimators``, ``max_epochs``, ``rows``, ``device``, ...).

    Returns
    -------
    dict
        What ``results.json`` holds: ``config``, ``rows`` (one dict per
        model with ``model``, ``scatter``, ``bias``, ``nll``,
        ``coverage_68``, ``coverage_95``, ``mean_std``, ``fit_seconds``,
        ``predict_seconds``, ... as fractions, not percent; paired
        bootstrap ratios ``scatter_ratio_to_count_rate``,
        ``bright_scatter_ratio_to_count_rate`` (DET_LIKE, EXT_LIKE > 60)
        and ``scatter_ratio_to_gbm_scalars`` where those rows ran, each
        ``{"ratio", "ci95"}``), ``timing``. ``predictions.npz`` holds
        every row's out-of-fold ``{row}__mean``, ``{row}__std``, the true
        masses ``y_true``, ``z`` and the bright mask ``high_likelihood``.
        While the run goes on, :data:`PARTIAL_FILE` holds the same for the
        rows and folds finished so far (NaN for the rest, ``fold`` says
        which fold each cluster is tested in), so a stopped run leaves what
        it measured; it is removed when the run ends.
    """
    name, cfg = _resolve(preset, quick, dict(settings, n_folds=n_folds, random_state=random_state))
    out = check_output_folder(out, BENCHMARK_FILES + (PARTIAL_FILE,), overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    log = _Log(verbose)
    t_start = time.perf_counter()
    rows = _selected_rows(cfg)
    log(f"benchmark preset {name!r}: {cfg.n_clusters} clusters, {cfg.n_folds} folds, "
        f"{cfg.n_estimators} members, <= {cfg.max_epochs} epochs; rows: {', '.join(r.name for r in rows)}")

    X, y, high, data = _simulate(cfg, n_jobs, log)
    folds = list(KFold(cfg.n_folds, shuffle=True, random_state=cfg.random_state).split(y))
    fold_of = np.empty(len(y), dtype=np.int64)
    for k, (_, te) in enumerate(folds):
        fold_of[te] = k
    preds = {}    # row -> (mean, std) out of fold
    timing = {}   # row -> dict(fit_seconds, predict_seconds)
    extra = {}    # row -> extra numbers

    def save_partial(running=None):
        """``PARTIAL_FILE``: the finished rows and the finished folds of the ``running`` (name, mean, std)."""
        with atomic_output(out / PARTIAL_FILE, overwrite=True) as tmp:
            arrays = _prediction_arrays(y, data, high, preds)
            if running is not None:
                arrays[f"{running[0]}__mean"], arrays[f"{running[0]}__std"] = running[1], running[2]
            np.savez_compressed(tmp, fold=fold_of, **arrays)

    # ---- scalar baselines -------------------------------------------------
    base_rows = [r for r in rows if r.baseline is not None]
    if base_rows:
        t = time.perf_counter()
        O = _masked_observables(X, cfg)  # noqa: E741 (O: the observables table)
        t_obs = time.perf_counter() - t
        log(f"measured scalar observables of {len(y)} clusters (detected point sources masked) in {t_obs:.1f} s")
        for row in base_rows:
            reg0 = row.baseline(O.meta["observable_columns"])
            mean, std = np.empty_like(y), np.empty_like(y)
            tf = tp = 0.0
            for tr, te in folds:
                reg = clone(reg0)
                t = time.perf_counter()
                reg.fit(O[tr], y[tr])
                tf += time.perf_counter() - t
                t = time.perf_counter()
                mean[te], std[te] = reg.predict(O[te], return_std=True)
                tp += time.perf_counter() - t
            preds[row.name] = (mean, std)
            # measuring the observables is part of predicting (shared by all baselines)
            timing[row.name] = {"fit_seconds": tf, "predict_seconds": tp + t_obs * row.measures_observables}
            log(f"{row.name:32s} scatter {mass_scatter(y, mean):.3f}")
        save_partial()

    # ---- CNN ensembles ----------------------------------------------------
    cnn_rows = [r for r in rows if r.pipeline is not None]
    for member_row in (r for r in rows if r.member_of is not None):
        if all(r.name != member_row.member_of for r in cnn_rows):
            cnn_rows.append(_ALL_ROWS[member_row.member_of])
    members = {r.member_of: r for r in rows if r.member_of is not None}
    permuted = {r.permuted_of: r for r in rows if r.permuted_of is not None}
    for of in permuted:
        if all(r.name != of for r in cnn_rows):
            cnn_rows.append(_ALL_ROWS[of])
    binned = {}
    for row in cnn_rows:
        binner, pipe0 = _cnn_pipeline(cfg, row)
        key = repr(binner.get_params())
        if key not in binned:
            t = time.perf_counter()
            binned.clear()  # keep one band set in memory at a time
            binned[key] = (binner.fit_transform(X).drop("events"), time.perf_counter() - t)
            log(f"binned {len(y)} clusters into {binned[key][0]['images'].shape[1:]} in {binned[key][1]:.1f} s")
        Z, t_bin = binned[key]
        mean, std = np.full_like(y, np.nan), np.full_like(y, np.nan)
        m0, s0 = np.empty_like(y), np.empty_like(y)
        pm, ps = np.empty_like(y), np.empty_like(y)
        train_scatter = []
        tf = tp = 0.0
        for k, (tr, te) in enumerate(folds):
            pipe = clone(pipe0)
            tr_fit = tr[_uniform_mass_resample(y[tr], cfg.random_state + k)] if row.uniform_mass else tr
            t = time.perf_counter()
            pipe.fit(Z[tr_fit], y[tr_fit])
            tf += time.perf_counter() - t
            t = time.perf_counter()
            Zte = pipe[:-1].transform(Z[te])
            comp = pipe[-1].predict_components(Zte)
            tp += time.perf_counter() - t
            mean[te], std[te] = comp.mean, comp.std
            m0[te], s0[te] = comp.member_means[0], comp.member_stds[0]
            if row.name in permuted:  # the same fitted model, each image given to another cluster
                order = np.random.default_rng(cfg.random_state + k).permutation(len(te))
                shuffled = Zte.assign(images=np.ascontiguousarray(Zte["images"][order]))
                pm[te], ps[te] = pipe[-1].predict(shuffled, return_std=True)
            if row.train_scatter:
                train_scatter.append(mass_scatter(y[tr], pipe.predict(Z[tr])))
            log(f"{row.name:32s} fold {k + 1}/{cfg.n_folds}: scatter {mass_scatter(y[te], mean[te]):.3f} "
                f"({tf:.0f} s fitting so far)")
            save_partial((row.name, mean, std))
        preds[row.name] = (mean, std)
        timing[row.name] = {"fit_seconds": tf, "predict_seconds": tp + t_bin * len(te) / len(y) * cfg.n_folds}
        if train_scatter:
            extra[row.name] = {"train_scatter": float(np.mean(train_scatter))}
        if row.name in members:
            single = members[row.name].name
            preds[single] = (m0, s0)
            timing[single] = {"fit_seconds": tf / cfg.n_estimators, "predict_seconds": tp / cfg.n_estimators}
            extra[single] = {"note": f"member 0 of {row.name}; fit time is the ensemble's / n_estimators"}
        if row.name in permuted:
            shuffled_row = permuted[row.name].name
            preds[shuffled_row] = (pm, ps)
            timing[shuffled_row] = {"fit_seconds": 0.0, "predict_seconds": tp}
            extra[shuffled_row] = {"note": f"the fitted folds of {row.name}, test images permuted among clusters"}
        log(f"{row.name:32s} scatter {mass_scatter(y, mean):.3f}")

    # ---- assemble -----------------------------------------------------------
    subsets = {"high_likelihood": high}
    reference = preds.get("count_rate")
    results_rows = []
    for row in rows:
        if row.subset is not None:
            if row.of not in preds:
                continue
            mean, std = preds[row.of]
            keep = subsets[row.subset]
            more = {"fit_seconds": timing[row.of]["fit_seconds"],
                    "predict_seconds": timing[row.of]["predict_seconds"]}
        elif row.name in preds:
            mean, std = preds[row.name]
            keep = np.ones(y.size, dtype=bool)
            more = {**timing[row.name], **extra.get(row.name, {}),
                    "scatter_high_likelihood": mass_scatter(y[high], mean[high]) if high.sum() > 1 else None}
        else:
            continue
        # paired ratios on the same clusters: to the count rate (on the row's clusters and, for a whole
        # row, on the bright ones) and to the strong scalar baseline
        against = [("scatter_ratio_to_count_rate", reference, keep)]
        if row.subset is None:
            against += [("bright_scatter_ratio_to_count_rate", reference, high if high.sum() > 1 else None),
                        ("scatter_ratio_to_gbm_scalars", preds.get("gbm_scalars"), keep)]
        for key, ref, where in against:
            if ref is not None and where is not None:
                ratio, lo, hi = paired_scatter_ratio(y[where], mean[where], ref[0][where],
                                                     random_state=cfg.random_state)
                more[key] = {"ratio": ratio, "ci95": [lo, hi]}
        results_rows.append(_row_result(row.name, y[keep], mean[keep], std[keep], more))
    elapsed = time.perf_counter() - t_start
    results = {
        "config": {"preset": name, **asdict(cfg), "rows": [r.name for r in rows]},
        "survey": {"n_clusters": int(len(y)), "mock_version": DEFAULT_SKY, "area_deg2": float(data.area_deg2),
                   "n_high_likelihood": int(high.sum()),
                   "median_counts": float(np.median(data.catalog["counts"])),
                   "median_z": float(np.median(data.catalog["z"]))},
        "folds": "KFold(n_splits={}, shuffle=True, random_state={}); each cluster is one row".format(
            cfg.n_folds, cfg.random_state),
        "rows": results_rows,
        "timing": {"elapsed_seconds": elapsed},
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                        "cpu_count": os.cpu_count()},
        "command": _command(name, cfg, out),
    }
    _write(out, results, y, preds, data, high, [r.name for r in rows if r.plotted], log)
    (out / PARTIAL_FILE).unlink(missing_ok=True)   # predictions.npz holds it all now
    log(f"done in {elapsed / 60:.1f} min; results in {out}")
    return results


def paired_scatter_ratio(y, a, b, n_boot=2000, random_state=0):
    """Scatter of ``a`` over that of ``b`` on the same clusters, with a paired bootstrap.

    The clusters are resampled with replacement (the same draw for both
    models, so what they share cancels; Efron & Tibshirani 1993, *An
    Introduction to the Bootstrap*, ch. 13), ``n_boot`` times.

    Returns
    -------
    (float, float, float)
        The ratio on all clusters and the 2.5% and 97.5% bootstrap quantiles.
    """
    y, a, b = (np.asarray(v, dtype=np.float64) for v in (y, a, b))
    ra, rb = a - y, b - y
    rng = np.random.default_rng(random_state)
    ratios = np.empty(n_boot)
    step = max(1, 2**22 // max(y.size, 1))  # resamples per block: a few tens of MB at a time, not n_boot x n
    for start in range(0, n_boot, step):
        idx = rng.integers(0, y.size, (min(step, n_boot - start), y.size))
        ratios[start:start + idx.shape[0]] = ra[idx].std(axis=1) / rb[idx].std(axis=1)
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return float(np.std(ra) / np.std(rb)), float(lo), float(hi)


def _command(name, cfg, out):
    parts = ["skcluster benchmark", f"--preset {name}", f"--folds {cfg.n_folds}", f"--seed {cfg.random_state}"]
    base = PRESETS[name]
    for key in ("n_clusters", "n_estimators", "max_epochs", "patience", "batch_size", "device"):
        if getattr(cfg, key) != getattr(base, key):
            parts.append(f"--{key.replace('_', '-')} {getattr(cfg, key)}")
    if cfg.rows:
        parts.append("--rows " + ",".join(cfg.rows))
    parts.append(f"--out {out}")
    return " ".join(parts)


def format_table(results):
    """The results as a Markdown table (percent, as the papers quote them)."""
    head = ("| model | scatter | / count_rate [95%] | bright (/ count_rate [95%]) | bias | NLL | 68% cov. | 95% cov. "
            "| mean std | scatter by mass bin | fit s | predict s |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in results["rows"]:
        bins = " / ".join(f"{100 * b['scatter']:.0f}" for b in r["scatter_mass_bins"])
        q = r.get("scatter_ratio_to_count_rate")
        ratio = f"{q['ratio']:.2f} [{q['ci95'][0]:.2f}, {q['ci95'][1]:.2f}]" if q else "-"
        bright = r.get("scatter_high_likelihood")
        bright = f"{100 * bright:.1f}%" if bright is not None else "-"
        qb = r.get("bright_scatter_ratio_to_count_rate")
        if qb and r["model"] != "count_rate":
            bright += f" ({qb['ratio']:.2f} [{qb['ci95'][0]:.2f}, {qb['ci95'][1]:.2f}])"
        lines.append(
            f"| {r['model']} | {100 * r['scatter']:.1f}% | {ratio} | {bright} | {100 * r['bias']:+.1f}% "
            f"| {r['nll']:.2f} "
            f"| {r['coverage_68']:.2f} | {r['coverage_95']:.2f} | {100 * r['mean_std']:.1f}% | {bins} "
            f"| {r['fit_seconds']:.0f} | {r['predict_seconds']:.1f} |"
        )
    return "\n".join(lines)


def _prediction_arrays(y, data, high, preds):
    """The arrays of ``predictions.npz``: ``y_true``, ``z``, ``high_likelihood`` and each row's mean and std."""
    arrays = {"y_true": y, "z": np.asarray(data.catalog["z"]), "high_likelihood": high}
    for k, (m, s) in preds.items():
        arrays[f"{k}__mean"], arrays[f"{k}__std"] = m, s
    return arrays


def _write(out, results, y, preds, data, high, plotted, log):
    import matplotlib

    matplotlib.use("Agg")
    from .plotting import plot_performance

    with atomic_output(out / "results.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    md = [f"# skcluster benchmark ({results['config']['preset']})", "",
          f"`{results['command']}`", "",
          f"{results['survey']['n_clusters']} mock eFEDS clusters after the cuts, "
          f"{results['config']['n_folds']}-fold cross-validation, out-of-fold predictions pooled. "
          "Scatter = ln 10 x std of the log10 residuals; bias = ln 10 x mean residual; "
          "mean std = ln 10 x mean predicted std; NLL per dex.", "",
          format_table(results), "",
          f"Elapsed: {results['timing']['elapsed_seconds'] / 60:.1f} min.", ""]
    with atomic_output(out / "results.md", overwrite=True) as tmp:
        tmp.write_text("\n".join(md))
    with atomic_output(out / "predictions.npz", overwrite=True) as tmp:
        np.savez_compressed(tmp, **_prediction_arrays(y, data, high, preds))
    shown = {k: preds[k] for k in plotted if k in preds}
    if shown:
        fig = plot_performance(y, shown, z=np.asarray(data.catalog["z"]),
                               title="Out-of-fold predictions (mock eFEDS)")
        with atomic_output(out / "performance.png", overwrite=True) as tmp:
            fig.savefig(tmp, dpi=120)
    log(f"wrote results.json, results.md, predictions.npz, performance.png to {out}")
