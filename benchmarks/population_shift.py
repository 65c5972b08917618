"""Masses that transfer: the mass model on populations it was not trained on.

1. Train the standard pipeline (:func:`skcluster.models.make_mass_pipeline`)
   and the count-rate method (:func:`skcluster.baselines.count_rate_method`)
   on one default eFEDS mock.
2. Wrap the fitted ensemble twice with
   :class:`skcluster.priors.PriorCorrectedRegressor`: ``target="training"``
   (the training-population posterior, what a Gaussian-likelihood network
   returns) and ``target="flat"`` (the training prior divided out: flat in
   log M, approximately the likelihood's masses). Train a second ensemble
   (same seeds) with ``target="flat", method="weights"``: importance
   weights flat in log M at each z in the loss, nothing divided at
   prediction. And calibrate the first ensemble at fixed true mass
   (:class:`skcluster.calibration.MassCalibratedRegressor`: its mean
   response to the true mass, linear in log M with redshift-dependent
   coefficients, inverted) on a fresh calibration mock of the training
   population (seed 2000, as many clusters as a test mock). Three times more on
   that mock pooled with one whose lowest mass is raised to
   ``HIGH_MASS_MIN`` (seed 2500; the response at fixed true mass does not
   depend on the mass function, so pooling is allowed): with the same
   straight response (``ensemble_fixed_mass_pooled``) and with a response
   that may bend at ``HINGE`` (``ensemble_fixed_mass_hinge``), and with a
   bend that changes linearly with log(1 + z) (``..._hinge_z``). Both
   hinged ones again on a calibration set ``CALIBRATION_SCALE`` times as
   large (the same two mocks plus fresh ones of each kind, seeds 2100 and
   2600; ``..._large``), since the response's redshift terms rest on the
   few hundred calibration clusters at high z. And with a second hinge at
   ``LOW_HINGE`` (``ensemble_fixed_mass_knots_z``), where the flux limit
   flattens the faintest groups' response. A calibration that refuses
   its response (a slope below ``min_slope``) gives no row; the report
   says why.
3. Test all three on fresh mocks: the reference (default physics) and
   populations shifted one thing at a time with ``SurveyParameters``
   overrides: the mass function (sigma_8 and Omega_m both +10%), the L_X-M
   normalisation (+-0.1 dex), the selection thresholds (DET_LIKE and
   EXT_LIKE cuts x2) and the redshift distribution (z >= 0.35 only). The
   shifted mocks use the reference's seed (paired skies).
4. For each model and mock: scatter, bias, slope and intercept of predicted
   against true log M (:func:`skcluster.metrics.transfer_diagnostics`),
   bias per mass bin and per redshift bin (bins of at least 50 clusters),
   raw 68% / 95% coverage, mean predicted std. Paired bootstraps over
   clusters give 95% intervals for the flat models' scatter ratios to the
   training-population model on the reference.

Writes ``population_shift.json``, ``population_shift.md``,
``predictions.npz`` (every model's mean and std on every mock, and the raw
ensemble's on every calibration cluster with its true mass, redshift and
source mock: ``calibration__*``) and
``transfer_*.png`` to ``--out`` (default
``benchmarks/results/population_shift``) and prints the command.

``--refit DIR`` fits the fixed-mass calibrations (``CALIBRATIONS``) again on
the saved predictions of a finished run in ``DIR``, with no training or
simulation (seconds): for trying another response on the same ensemble,
calibration clusters and test mocks. Settings chosen by looking at the test
mocks' rows are tuned on them; confirm them on a run with another
``--seed``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from _stored import Stored  # noqa: E402  (benchmarks/_stored.py, beside this script)
from sklearn.frozen import FrozenEstimator  # noqa: E402

from skcluster import ClusterSample  # noqa: E402
from skcluster.baselines import count_rate_method  # noqa: E402
from skcluster.benchmark import catalog_scalars, paired_scatter_ratio  # noqa: E402
from skcluster.calibration import (  # noqa: E402
    MOCK_CALIBRATION_HIGH_MASS_MIN,
    MOCK_CALIBRATION_HINGE,
    MOCK_CALIBRATION_RESPONSE,
    MassCalibratedRegressor,
)
from skcluster.datasets import make_survey  # noqa: E402
from skcluster.metrics import (  # noqa: E402
    interval_coverage,
    mass_bias,
    mass_scatter,
    mean_predicted_scatter,
    predict_mean_std,
    transfer_diagnostics,
)
from skcluster.models import make_mass_pipeline  # noqa: E402
from skcluster.plotting import plot_transfer  # noqa: E402
from skcluster.priors import PriorCorrectedRegressor, mixture_components  # noqa: E402

HERE = Path(__file__).resolve().parent

#: The test populations: name, what changed, make_survey overrides.
MOCKS = [
    ("reference", "fresh default eFEDS mock", {}),
    ("cosmology_+10%", "sigma_8 0.81 -> 0.89 and Omega_m 0.30 -> 0.33", {"sigma8": 0.8912, "Om0": 0.33}),
    ("lx_norm_+0.1dex", "L_X-M normalisation +0.1 dex", {"lx_log10_norm": "+0.1"}),
    ("lx_norm_-0.1dex", "L_X-M normalisation -0.1 dex", {"lx_log10_norm": "-0.1"}),
    ("selection_x2", "DET_LIKE > 10 and EXT_LIKE > 12 (cuts x2)", {"det_like_min": "*2", "ext_like_min": "*2"}),
    ("high_z", "only z >= 0.35", {"z_min": 0.35}),
]

SIZES = {
    # min_slope: the fixed-mass calibrations' floor on the response slope; a 4-epoch network barely
    # responds to mass, so the smoke run inverts whatever it gets (meaningless numbers, working code)
    "quick": dict(n_train=300, n_test=120, n_members=2, max_epochs=4, patience=3, min_count=10,
                  min_slope=-np.inf),
    "default": dict(n_train=3000, n_test=1000, n_members=3, max_epochs=80, patience=15, min_count=50,
                    min_slope=0.2),
}

MODELS = ("ensemble_training_prior", "ensemble_flat_prior", "ensemble_flat_weights", "ensemble_fixed_mass",
          "ensemble_fixed_mass_pooled", "ensemble_fixed_mass_hinge", "ensemble_fixed_mass_hinge_z",
          "ensemble_fixed_mass_hinge_large", "ensemble_fixed_mass_hinge_z_large", "ensemble_fixed_mass_knots_z",
          "count_rate")

#: log10 M500c/Msun: the lowest mass of the second calibration mock (the
#: training population has few clusters above it), and where the hinged
#: response may bend (the fixed-mass residuals of the straight response rose
#: above it in an earlier run of this benchmark); ``skcluster train``'s too.
HIGH_MASS_MIN, HINGE = MOCK_CALIBRATION_HIGH_MASS_MIN, MOCK_CALIBRATION_HINGE
#: log10 M500c/Msun: ``ensemble_fixed_mass_knots_z``'s lower hinge.
LOW_HINGE = 13.5

#: ``ensemble_fixed_mass_hinge_large`` calibrates on this many times the
#: pooled calibration set (each of its two mocks scaled alike).
CALIBRATION_SCALE = 4

#: The fixed-mass calibrations: name -> (the calibration mocks it pools, by
#: ``calibration__source``: 0 the training population, 1 the high-mass mock,
#: 2 and 3 more of each; its ``MassCalibratedRegressor`` settings).
CALIBRATIONS = {
    "ensemble_fixed_mass": ((0,), {}),
    "ensemble_fixed_mass_pooled": ((0, 1), {}),
    "ensemble_fixed_mass_hinge": ((0, 1), {"hinge": HINGE}),
    "ensemble_fixed_mass_hinge_z": ((0, 1), MOCK_CALIBRATION_RESPONSE),  # skcluster train's
    "ensemble_fixed_mass_hinge_large": ((0, 1, 2, 3), {"hinge": HINGE}),
    "ensemble_fixed_mass_hinge_z_large": ((0, 1, 2, 3), MOCK_CALIBRATION_RESPONSE),
    # a second hinge where the calibration clusters' residuals curve up at low mass (the flux limit keeps only
    # the brightest groups there), chosen from the calibration clusters of seeds 0-2, not the test mocks
    "ensemble_fixed_mass_knots_z": ((0, 1), {"hinge": (LOW_HINGE, HINGE), "bend_degree": 1}),
}


def _log(msg):
    print(f"[population_shift {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _overrides(kw):
    """Resolve relative overrides ("+0.1", "*2") against the default parameters."""
    from skcluster.datasets import SurveyParameters

    base = SurveyParameters()
    out = {}
    for k, v in kw.items():
        if isinstance(v, str) and v[:1] in "+-":
            out[k] = getattr(base, k) + float(v)
        elif isinstance(v, str) and v[:1] == "*":
            out[k] = getattr(base, k) * float(v[1:])
        else:
            out[k] = v
    return out


def simulate(kw, n, seed, n_jobs):
    t0 = time.perf_counter()
    data = make_survey("efeds", n_clusters=n, random_state=seed, n_jobs=n_jobs, verbose=False,
                       **_overrides(kw))
    X = data.X.assign(ml_rate=catalog_scalars(data.catalog)["ml_rate"])
    return X, np.asarray(data.y, dtype=np.float64), time.perf_counter() - t0


def fit_calibrations(saved, min_slope):
    """Every fixed-mass calibration of ``CALIBRATIONS``, fitted on the raw ensemble's saved predictions.

    ``saved`` holds ``calibration__{mean,std,y_true,z,source}``. Returns
    (fitted models, {name: why} for the refused ones).
    """
    X = ClusterSample(mean=saved["calibration__mean"], std=saved["calibration__std"], z=saved["calibration__z"])
    y, source = saved["calibration__y_true"], saved["calibration__source"]
    models, refused = {}, {}
    for name, (mocks, kw) in CALIBRATIONS.items():
        rows = np.flatnonzero(np.isin(source, mocks))
        try:
            models[name] = MassCalibratedRegressor(FrozenEstimator(Stored()), min_slope=min_slope,
                                                   **kw).fit(X[rows], y[rows])
        except ValueError as exc:  # a response it will not invert: reported, the other rows go on
            refused[name] = str(exc)
            _log(f"{name} refused: {exc}")
    return models, refused


def predict_all(models, frozen, X, z):
    """Every model's (mean, std) on ``X``, running the frozen ensemble once.

    The wrappers of ``frozen`` only transform its mixture: the prior
    corrections through ``correct``, the fixed-mass calibrations through
    ``calibrate`` of the mixture's mean and std; any other model predicts.
    """
    comps = mixture_components(frozen.estimator, X)
    raw = models["ensemble_training_prior"].correct(*comps, z)
    out = {}
    for name, model in models.items():
        if isinstance(model, MassCalibratedRegressor):
            out[name] = model.calibrate(*raw, z)
        elif isinstance(model, PriorCorrectedRegressor) and model.estimator is frozen:
            out[name] = model.correct(*comps, z)
        else:
            out[name] = model.predict(X, return_std=True)
    return out


def evaluate(y, z, mean, std, min_count):
    d = transfer_diagnostics(y, mean, z, min_count=min_count)
    return {
        "n": int(y.size),
        "scatter": mass_scatter(y, mean),
        "bias": mass_bias(y, mean),
        "slope": d["slope"], "slope_err": d["slope_err"], "intercept": d["intercept"], "pivot": d["pivot"],
        "max_abs_mass_bin_bias_dex": d["mass_bins"]["max_abs_bias_dex"],
        "max_abs_z_bin_bias_dex": d["z_bins"]["max_abs_bias_dex"],
        "mass_bins": {k: np.asarray(v).tolist() for k, v in d["mass_bins"].items() if k != "max_abs_bias_dex"},
        "z_bins": {k: np.asarray(v).tolist() for k, v in d["z_bins"].items() if k != "max_abs_bias_dex"},
        "coverage_68": interval_coverage(y, mean, std, 0.68),
        "coverage_95": interval_coverage(y, mean, std, 0.95),
        "mean_pred_std": mean_predicted_scatter(std),
    }, d


def _ratio(y, a, b):
    ratio, lo, hi = paired_scatter_ratio(y, a, b)
    return ratio, [lo, hi]


def markdown(report):
    lines = [f"Command: `{report['command']}`", "",
             f"Mock version: {report.get('mock_version', 'v1')} (skcluster {report['version']}, git {report['git']}); CPU: {report['cpu']}", "",
             *([f"Fixed-mass calibrations fitted again (git {report['git_calibration']}) on the saved predictions "
                f"of `{report['refit_of']}`", ""] if "refit_of" in report else []),
             "| population | model | scatter | bias | slope | max abs bin bias (dex) | cov68 | cov95 | mean std |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, res in report["results"].items():
        for model in report["models"]:
            r = res[model]
            lines.append(
                f"| {name} | {model} | {100 * r['scatter']:.1f}% | {100 * r['bias']:+.1f}% | "
                f"{r['slope']:.3f} +- {r['slope_err']:.3f} | {r['max_abs_mass_bin_bias_dex']:.3f} | "
                f"{r['coverage_68']:.2f} | {r['coverage_95']:.2f} | {100 * r['mean_pred_std']:.1f}% |")
    lines.append("")
    for name, (ratio, ci) in report["scatter_ratios_reference"].items():
        lines.append(f"Reference mock: scatter {name} = {ratio:.3f} (paired bootstrap 95%: {ci[0]:.3f}-{ci[1]:.3f}).")
    for name, why in report["refused"].items():
        lines.append(f"{name}: no row, the calibration refused: {why}")
    lines.append(f"Importance weights: effective sample size {report['weights_effective_sample_size']:.0f} "
                 f"of {report['config']['n_train']} training clusters.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small version (minutes)")
    ap.add_argument("--out", default=str(HERE / "results" / "population_shift"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=None)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--n-members", type=int, default=None)
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--refit", metavar="DIR", default=None,
                    help="fit the fixed-mass calibrations again on the saved predictions of a finished run in DIR "
                         "(its ensemble, calibration clusters and test mocks; no training) and write to --out")
    args = ap.parse_args(argv)
    cfg = dict(SIZES["quick" if args.quick else "default"])
    for k in ("n_train", "n_test", "n_members", "max_epochs", "patience"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/population_shift.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    if args.refit is not None:
        if Path(args.refit).resolve() == out.resolve():
            ap.error("--refit reads DIR's predictions: give another --out")
        return refit(Path(args.refit), out, command)
    t_start = time.perf_counter()
    seeds = {"train": 1000 + args.seed, "calibration": 2000 + args.seed,
             "calibration_high_mass": 2500 + args.seed, "calibration_extra": 2100 + args.seed,
             "calibration_high_mass_extra": 2600 + args.seed, "test": 3000 + args.seed}

    _log(f"config {cfg}; simulating the training mock")
    X_tr, y_tr, t_sim = simulate({}, cfg["n_train"], seeds["train"], args.n_jobs)
    _log(f"training mock: {len(y_tr)} clusters in {t_sim:.0f} s; training")
    baseline = count_rate_method().fit(X_tr, y_tr)
    pipe = make_mass_pipeline(mask_point_sources=False, n_estimators=cfg["n_members"], random_state=args.seed,
                              max_epochs=cfg["max_epochs"], patience=cfg["patience"], verbose=1)
    t0 = time.perf_counter()
    pipe.fit(X_tr, y_tr)
    t_train = time.perf_counter() - t0
    _log(f"ensemble trained in {t_train:.0f} s")
    frozen = FrozenEstimator(pipe)
    t0 = time.perf_counter()
    weighted = PriorCorrectedRegressor(
        make_mass_pipeline(mask_point_sources=False, n_estimators=cfg["n_members"], random_state=args.seed, max_epochs=cfg["max_epochs"],
                           patience=cfg["patience"], verbose=1),
        target="flat", method="weights").fit(X_tr, y_tr)
    _log(f"importance-weighted ensemble trained in {time.perf_counter() - t0:.0f} s "
         f"(effective sample size {weighted.effective_sample_size_:.0f} of {len(y_tr)})")
    X_cal, y_cal, _ = simulate({}, cfg["n_test"], seeds["calibration"], args.n_jobs)
    X_hi, y_hi, _ = simulate({"log10_m500_min": HIGH_MASS_MIN}, cfg["n_test"], seeds["calibration_high_mass"],
                             args.n_jobs)
    n_more = (CALIBRATION_SCALE - 1) * cfg["n_test"]
    X_cal2, y_cal2, _ = simulate({}, n_more, seeds["calibration_extra"], args.n_jobs)
    X_hi2, y_hi2, _ = simulate({"log10_m500_min": HIGH_MASS_MIN}, n_more, seeds["calibration_high_mass_extra"],
                               args.n_jobs)
    X_large = ClusterSample.concat([X_cal, X_hi, X_cal2, X_hi2])
    y_large = np.concatenate([y_cal, y_hi, y_cal2, y_hi2])
    del X_cal, X_hi, X_cal2, X_hi2
    # the raw ensemble on every calibration cluster, saved, so other responses can be fitted without retraining
    # (--refit); which mock each came from is in the order of the seeds above (see CALIBRATIONS)
    saved = dict(zip(("calibration__mean", "calibration__std"), predict_mean_std(frozen, X_large, "population_shift")))
    saved.update(calibration__y_true=y_large, calibration__z=np.asarray(X_large["z"], dtype=np.float64),
                 calibration__source=np.repeat(np.arange(4), [len(y_cal), len(y_hi), len(y_cal2), len(y_hi2)]))
    del X_large
    pooled = np.isin(saved["calibration__source"], (0, 1))
    _log(f"calibration mocks: {len(y_cal)} clusters of the training population, {len(y_hi)} above "
         f"10^{HIGH_MASS_MIN} ({int(np.sum(y_large[pooled] > HINGE))} of the pooled set above the hinge); "
         f"large set {len(y_large)} ({int(np.sum(y_large > HINGE))} above the hinge)")
    models = {
        "ensemble_training_prior": PriorCorrectedRegressor(frozen, target="training").fit(X_tr, y_tr),
        "ensemble_flat_prior": PriorCorrectedRegressor(frozen, target="flat").fit(X_tr, y_tr),
        "ensemble_flat_weights": weighted,
    }
    calibrated, refused = fit_calibrations(saved, cfg["min_slope"])
    models.update(calibrated)
    models["count_rate"] = baseline
    del X_tr

    for name, _desc, kw in MOCKS:
        X, y, _ = simulate(kw, cfg["n_test"], seeds["test"], args.n_jobs)
        z = np.asarray(X["z"], dtype=np.float64)
        for model_name, (mean, std) in predict_all(models, frozen, X, z).items():
            saved[f"{name}__{model_name}__mean"], saved[f"{name}__{model_name}__std"] = mean, std
        saved[f"{name}__y_true"], saved[f"{name}__z"] = y, z

    import platform

    from _provenance import git_revision

    from skcluster import __version__
    from skcluster.datasets import DEFAULT_SKY

    report = {
        "command": command, "config": cfg, "seeds": seeds, "mock_version": DEFAULT_SKY, "version": __version__, "git": git_revision(),
        "cpu": platform.processor() or platform.machine(),
        "train_seconds": t_train, "weights_effective_sample_size": weighted.effective_sample_size_,
        "total_seconds": time.perf_counter() - t_start,
    }
    write_report(out, report, saved, models, refused)
    _log(f"done in {time.perf_counter() - t_start:.0f} s; results in {out}")


def write_report(out, report, saved, calibrations, refused):
    """Score every model on every test mock from ``saved`` predictions; write the JSON, markdown, npz and figures.

    ``report`` carries the run's provenance; ``calibrations`` (the fitted
    models, of which the fixed-mass calibrations give their coefficients)
    and ``refused`` (name: why) say which calibration rows exist.
    """
    cfg = report["config"]
    active = [m for m in MODELS if f"reference__{m}__mean" in saved]
    results, diags = {}, {}
    for name, desc, kw in MOCKS:
        y, z = saved[f"{name}__y_true"], saved[f"{name}__z"]
        results[name] = {"description": desc, "overrides": _overrides(kw)}
        for m in active:
            mean, std = saved[f"{name}__{m}__mean"], saved[f"{name}__{m}__std"]
            results[name][m], diags[(name, m)] = evaluate(y, z, mean, std, cfg["min_count"])
        _log(f"{name}: " + ", ".join(
            f"{m} scatter {100 * results[name][m]['scatter']:.1f}% slope {results[name][m]['slope']:.2f}"
            for m in active))
    y_ref = saved["reference__y_true"]
    ref = {m: saved[f"reference__{m}__mean"] for m in active}
    hinged = [k for k in active if getattr(calibrations.get(k), "hinge", None) is not None]
    bends = {k: calibrations[k].coef_[6:].tolist() for k in hinged}
    _log(f"hinged responses, slope change above each hinge (c + c' log(1+z), ascending hinges): {bends}")
    report = dict(report, results=results, models=active, refused=refused, hinge_slope_change=bends,
                  slope_redshift_ranges={k: calibrations[k].slope_redshift_ranges_ for k in hinged})
    report["scatter_ratios_reference"] = {
        f"{a} / {b}": _ratio(y_ref, ref[a], ref[b])
        for a, b in (("ensemble_flat_prior", "ensemble_training_prior"),
                     ("ensemble_flat_weights", "ensemble_training_prior"),
                     ("ensemble_flat_weights", "ensemble_flat_prior"),
                     ("ensemble_fixed_mass", "ensemble_training_prior"),
                     ("ensemble_fixed_mass", "ensemble_flat_prior"),
                     ("ensemble_fixed_mass_hinge", "ensemble_training_prior"),
                     ("ensemble_fixed_mass_hinge", "ensemble_fixed_mass"),
                     ("ensemble_fixed_mass_hinge_z", "ensemble_training_prior"),
                     ("ensemble_fixed_mass_hinge_z", "ensemble_fixed_mass_hinge"),
                     ("ensemble_fixed_mass_hinge_z_large", "ensemble_training_prior"),
                     ("ensemble_fixed_mass_hinge_z_large", "ensemble_fixed_mass_hinge"),
                     ("ensemble_fixed_mass_knots_z", "ensemble_fixed_mass_hinge_z"))
        if a in ref and b in ref}
    np.savez_compressed(out / "predictions.npz", **saved)
    (out / "population_shift.json").write_text(json.dumps(report, indent=1, default=float))
    md = markdown(report)
    (out / "population_shift.md").write_text(md)
    for model_name in active:
        fig = plot_transfer({name: diags[(name, model_name)] for name, _, _ in MOCKS},
                            title=model_name.replace("_", " "), min_count=cfg["min_count"])
        fig.savefig(out / f"transfer_{model_name}.png", dpi=130)
    print(md)


def refit(source, out, command):
    """The fixed-mass calibrations fitted again on a finished run's saved predictions; the other rows as they were.

    Seconds instead of the run's half hour: for trying another response
    (``CALIBRATIONS``, ``MassCalibratedRegressor``) on the same fitted
    ensemble, calibration clusters and test mocks.
    """
    saved = dict(np.load(source / "predictions.npz"))
    base = json.loads((source / "population_shift.json").read_text())
    for key in [k for k in saved if any(f"__{c}__" in k for c in CALIBRATIONS)]:
        del saved[key]
    models, refused = fit_calibrations(saved, base["config"]["min_slope"])
    for name, _, _ in MOCKS:
        raw = saved[f"{name}__ensemble_training_prior__mean"], saved[f"{name}__ensemble_training_prior__std"]
        for m, model in models.items():
            saved[f"{name}__{m}__mean"], saved[f"{name}__{m}__std"] = model.calibrate(*raw, saved[f"{name}__z"])
    from _provenance import git_revision

    report = {k: base[k] for k in ("config", "seeds", "version", "git", "cpu", "train_seconds",
                                   "weights_effective_sample_size")}
    report.update(command=command, git_calibration=git_revision(), refit_of=base["command"])
    write_report(out, report, saved, models, refused)


if __name__ == "__main__":
    main()
