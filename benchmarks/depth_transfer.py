"""One model for every depth: trained on the mixed-depth ``erosita`` mock, tested at fixed depths.

1. Train the standard pipeline with the exposure joined beside the redshift
   (``make_mass_pipeline(extra_scalars=("exposure",), flag_domain=True)``)
   and the count-rate method on one mixed-depth mock of the ``erosita``
   preset (exposures 80-5000 s, background level and Galactic N_H varying
   per cluster). By default (``--balance-depth 5``) the training mock has
   the same number of *selected* clusters in each of 5 bins of log
   exposure (:func:`skcluster.datasets.make_depth_balanced_survey`);
   ``--balance-depth 0`` draws it as ``make_survey("erosita")`` does
   (exposure log-uniform before the selection, so few shallow clusters).
2. Test both on fresh ``erosita`` mocks restricted to one depth each:
   eRASS1-like (80-135 s), eFEDS-like (785-1941 s), deep (3000-5000 s), and
   eFEDS-like with the background doubled.
3. Report per depth: scatter, bias, raw 68% / 95% coverage and the mean
   predicted std of both, and the ensemble's scatter ratio to the count-rate
   method with a paired bootstrap interval (:func:`skcluster.benchmark.paired_scatter_ratio`).
4. With ``--fixed-mass``: also calibrate the mixed-depth model at fixed
   true mass as ``skcluster train`` does by default
   (:class:`skcluster.calibration.MassCalibratedRegressor` on a fresh mock
   of the training population pooled with as many clusters above
   ``MOCK_CALIBRATION_HIGH_MASS_MIN``), with one response for every depth
   (``MOCK_CALIBRATION_RESPONSE``, ``fixed_mass``) and with one that
   depends on the exposure too (``MOCK_CALIBRATION_RESPONSE_DEPTHS``,
   ``fixed_mass_depth``, what ``train --survey erosita`` uses)
   and report per depth its scatter, bias and coverage and, for it, the raw
   model and the count rate, the slope of predicted against true log M and
   the largest bias over the 50-cluster mass bins
   (:func:`skcluster.metrics.transfer_diagnostics`); and the same for the
   selection's own floor, ``true_lx_inverted``: each cluster's true L_X
   turned into a mass by the mock's mean L_X-M relation, with no prior
   and no photon noise, which is unbiased at fixed mass but for the
   selection (near the detection limit only the clusters scattered bright
   are kept; this row shows how far that alone lifts a mass read from the
   luminosity).
5. With ``--single-depth``: also train the same pipeline on a mock of each
   test depth alone (same size, its own seed) and report the mixed-depth
   model's scatter ratio to it on the same test clusters (paired bootstrap).

Writes ``depth_transfer.json``, ``depth_transfer.md`` and
``predictions.npz`` (every model's mean and std, the truth, z and exposure
per test depth; with ``--fixed-mass`` also the calibration clusters'
truth, z, exposure and raw predictions, ``calibration__*``) to ``--out``
(default ``benchmarks/results/depth_transfer``).

``--refit DIR`` fits the fixed-mass calibrations again on a finished
``--fixed-mass`` run's saved predictions, in seconds, and writes the same
report into ``--out`` (the other rows as they were); ``--hinge 13.4,14.4``
tries other hinges there.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from skcluster.baselines import count_rate_method
from skcluster.benchmark import HYBRID_SCALARS, catalog_scalars, paired_scatter_ratio
from skcluster.datasets import make_depth_balanced_survey, make_survey
from skcluster.metrics import interval_coverage, mass_bias, mass_scatter, mean_predicted_scatter, transfer_diagnostics
from skcluster.models import make_mass_pipeline

HERE = Path(__file__).resolve().parent

#: name, description, make_survey overrides of the ``erosita`` preset.
DEPTHS = [
    ("erass1_depth", "exposure 80-135 s (eRASS1 near the ecliptic)", {"exposure_min_s": 80.0, "exposure_max_s": 135.0}),
    ("efeds_depth", "exposure 785-1941 s (eFEDS 5-95%)", {"exposure_min_s": 785.0, "exposure_max_s": 1941.0}),
    ("deep", "exposure 3000-5000 s (eRASS:5 near the poles)", {"exposure_min_s": 3000.0, "exposure_max_s": 5000.0}),
    ("efeds_depth_background_x2", "eFEDS depth, background x2",
     {"exposure_min_s": 785.0, "exposure_max_s": 1941.0, "background_scale": 2.0}),
]

SIZES = {
    "quick": dict(n_train=300, n_test=60, n_members=2, max_epochs=3, patience=2),
    "default": dict(n_train=2400, n_test=300, n_members=3, max_epochs=60, patience=10),
}


def _log(msg):
    print(f"[depth_transfer {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def true_lx_inverted(data):
    """log10 M500 from each cluster's true L_X through the mock's mean L_X-M relation (no prior, no noise)."""
    from skcluster.datasets.scaling import mean_log_lx

    p, cat = data.params, data.catalog
    z = np.asarray(cat["z"], dtype=np.float64)
    log_pivot = np.full_like(z, np.log10(p.lx_pivot_msun))
    return log_pivot + (np.log10(np.asarray(cat["L_X"], dtype=np.float64)) - mean_log_lx(log_pivot, z, p)) / p.lx_slope


def simulate(kw, n, seed, n_jobs, balance=0, floor=False):
    if balance:
        data = make_depth_balanced_survey(n, n_strata=balance, random_state=seed, n_jobs=n_jobs, verbose=False,
                                          **kw)
    else:
        data = make_survey("erosita", n_clusters=n, random_state=seed, n_jobs=n_jobs, verbose=False, **kw)
    X = data.X.assign(**catalog_scalars(data.catalog))
    y = np.asarray(data.y, dtype=np.float64)
    return (X, y, true_lx_inverted(data)) if floor else (X, y)


def calibration_set(pipe, n_train, args):
    """The clusters ``skcluster train`` calibrates a model of the built-in mock on, with ``pipe``'s raw predictions:
    a fresh mock of the training population pooled with as many clusters above the high-mass minimum
    (``calibration__*`` arrays: truth, z, exposure, raw mean and std)."""
    from skcluster.calibration import MIN_CALIBRATION_CLUSTERS, MOCK_CALIBRATION_HIGH_MASS_MIN
    from skcluster.sample import ClusterSample

    n_cal = max(MIN_CALIBRATION_CLUSTERS, -(-n_train // 3))   # skcluster train's default size
    X1, y1 = simulate({}, n_cal, 2000 + args.seed, args.n_jobs, balance=args.balance_depth)
    X2, y2 = simulate({"log10_m500_min": MOCK_CALIBRATION_HIGH_MASS_MIN}, n_cal, 2500 + args.seed, args.n_jobs,
                      balance=args.balance_depth)
    _log(f"calibrating at fixed true mass on {n_cal} + {n_cal} clusters (above 10^{MOCK_CALIBRATION_HIGH_MASS_MIN})")
    X_cal = ClusterSample.concat([X1, X2])
    m, sd = pipe.predict(X_cal, return_std=True)
    cal = {"y_true": np.concatenate([y1, y2]), "z": np.asarray(X_cal["z"]), "exposure": np.asarray(X_cal["exposure"]),
           "ensemble__mean": m, "ensemble__std": sd}
    return {f"calibration__{k}": v for k, v in cal.items()}


def fit_responses(saved, hinge=None):
    """The fixed-mass calibrations, fitted on the calibration clusters' saved raw predictions: one response for
    every depth (``MOCK_CALIBRATION_RESPONSE``, ``fixed_mass``) and one with exposure terms
    (``MOCK_CALIBRATION_RESPONSE_DEPTHS``, ``fixed_mass_depth``); ``hinge`` replaces both responses' hinges.
    Returns (fitted models, {name: why} for the refused ones)."""
    from _stored import Stored
    from sklearn.frozen import FrozenEstimator

    from skcluster.calibration import (
        MOCK_CALIBRATION_RESPONSE,
        MOCK_CALIBRATION_RESPONSE_DEPTHS,
        MassCalibratedRegressor,
    )
    from skcluster.sample import ClusterSample

    X = ClusterSample(**{k: saved[f"calibration__{c}"] for k, c in (("mean", "ensemble__mean"),
                      ("std", "ensemble__std"), ("z", "z"), ("exposure", "exposure"))})
    models, refused = {}, {}
    for name, response in (("fixed_mass", MOCK_CALIBRATION_RESPONSE),
                           ("fixed_mass_depth", MOCK_CALIBRATION_RESPONSE_DEPTHS)):
        if hinge is not None:
            response = dict(response, hinge=hinge)
        try:
            models[name] = MassCalibratedRegressor(FrozenEstimator(Stored()), **response).fit(
                X, saved["calibration__y_true"])
        except ValueError as exc:   # train falls back to the flat prior here; this report says why
            _log(f"the {name} calibration refused: {exc}")
            refused[name] = str(exc)
    return models, refused


def add_calibrated(results, saved, models):
    """Each test depth's calibrated masses from its saved raw predictions (into ``saved`` and ``results``), and the
    slope and largest mass-bin bias of every reading: raw, calibrated, count rate and the true L_X inverted."""
    for name, r in results.items():
        y, z, expo = (saved[f"{name}__{k}"] for k in ("y_true", "z", "exposure"))
        mean, std = saved[f"{name}__ensemble__mean"], saved[f"{name}__ensemble__std"]
        floor = saved[f"{name}__true_lx_inverted__mean"]
        preds = {"ensemble": mean, "count_rate": saved[f"{name}__count_rate__mean"], "true_lx_inverted": floor}
        r["true_lx_inverted"] = {"scatter": mass_scatter(y, floor), "bias": mass_bias(y, floor)}
        for key, model in models.items():
            fm, fs = model.calibrate(mean, std, z, expo)
            saved.update({f"{name}__{key}__mean": fm, f"{name}__{key}__std": fs})
            r[key] = evaluate(y, fm, fs)
            preds[key] = fm
        for key, pred in preds.items():
            d = transfer_diagnostics(y, pred, z)
            r[key].update(slope=d["slope"], max_abs_bin_bias_dex=d["mass_bins"]["max_abs_bias_dex"])
        for key in models:
            f = r[key]
            _log(f"{name}: {key} {100 * f['scatter']:.1f}% (bias {100 * f['bias']:+.1f}%, cov68 "
                 f"{f['coverage_68']:.2f}, slope {f['slope']:.3f}, max bin bias {f['max_abs_bin_bias_dex']:.3f} dex)")


def evaluate(y, mean, std):
    return {"n": int(y.size), "scatter": mass_scatter(y, mean), "bias": mass_bias(y, mean),
            "coverage_68": interval_coverage(y, mean, std, 0.68),
            "coverage_95": interval_coverage(y, mean, std, 0.95), "mean_pred_std": mean_predicted_scatter(std)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "depth_transfer"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=None)
    ap.add_argument("--max-epochs", type=int, default=None, help="epochs per member (size's default)")
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--no-profile", action="store_true",
                    help="the seed study's input: no RadialProfile beside z and exposure")
    ap.add_argument("--balance-depth", type=int, default=5, metavar="K",
                    help="training mock with equal selected clusters in K bins of log exposure (0: the "
                         "preset's own draw)")
    ap.add_argument("--n-train", type=int, default=None, metavar="N",
                    help="training clusters of the mixed-depth model (default: the size's, 2400; the "
                         "single-depth models keep that default)")
    ap.add_argument("--n-test", type=int, default=None, metavar="N",
                    help="test clusters per depth (default: the size's, 300)")
    ap.add_argument("--mask-point-sources", action="store_true",
                    help="mask the mock's detected point sources in the images (as skcluster train does)")
    ap.add_argument("--hybrid", action="store_true",
                    help="join the detection catalogue's scalars (count rate, DET_LIKE, EXT_LIKE, extent) "
                         "beside z and the exposure, as the benchmark's hybrid row")
    ap.add_argument("--observables", action="store_true",
                    help="also measure the boosted trees' image observables (counts, L_X, the background, "
                         "hardness ratios) on the events and join them beside z "
                         "(make_mass_pipeline(observables=True))")
    ap.add_argument("--nh", action="store_true",
                    help="with --observables: convert their count rates to L_X with each cluster's Galactic N_H "
                         "(the mock's nh column) and join log N_H beside z (nh_column='nh')")
    ap.add_argument("--fixed-mass", action="store_true",
                    help="also calibrate the model at fixed true mass as skcluster train does by default and "
                         "report slope and bias per mass bin at each depth")
    ap.add_argument("--single-depth", action="store_true",
                    help="also train on each test depth alone and compare (the 'within 1.1x' check)")
    ap.add_argument("--refit", metavar="DIR", default=None,
                    help="fit the fixed-mass calibrations again on DIR's saved predictions (a --fixed-mass run) "
                         "and report into --out, in seconds, without training")
    ap.add_argument("--hinge", default=None, metavar="M[,M...]",
                    help="with --refit: these log10 M500 hinges in place of the responses' own (e.g. 13.4,14.4)")
    args = ap.parse_args(argv)
    command = "python benchmarks/depth_transfer.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    if args.hinge is not None and args.refit is None:
        ap.error("--hinge goes with --refit")
    if args.refit is not None:
        if Path(args.refit).resolve() == Path(args.out).resolve():
            ap.error("--refit reads DIR's predictions: give another --out")
        hinge = None if args.hinge is None else [float(v) for v in args.hinge.split(",")]
        return refit(Path(args.refit), Path(args.out), command, hinge)
    cfg = dict(SIZES["quick" if args.quick else "default"])
    cfg.update({k: v for k, v in (("max_epochs", args.max_epochs), ("patience", args.patience)) if v is not None})
    cfg["profile"] = not args.no_profile
    cfg["balance_depth"] = args.balance_depth
    cfg["n_train_mixed"] = args.n_train or cfg["n_train"]
    cfg["n_test"] = args.n_test or cfg["n_test"]
    cfg["mask_point_sources"] = args.mask_point_sources
    cfg["extra_scalars"] = HYBRID_SCALARS if args.hybrid else ("exposure",)
    cfg["observables"] = args.observables
    cfg["nh"] = args.nh
    if args.nh:
        if not args.observables:
            ap.error("--nh needs --observables (it sets their N_H)")
        cfg["extra_scalars"] = cfg["extra_scalars"] + ("nh",)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _log(f"config {cfg}; simulating the mixed-depth training mock")
    X_tr, y_tr = simulate({}, cfg["n_train_mixed"], 1000 + args.seed, args.n_jobs, balance=args.balance_depth)
    expo = np.asarray(X_tr["exposure"])
    _log(f"{len(y_tr)} clusters, exposure 5/50/95%: {np.percentile(expo, [5, 50, 95]).round(0).tolist()} s; training")
    baseline = count_rate_method().fit(X_tr, y_tr)
    def new_pipeline():
        return make_mass_pipeline(n_estimators=cfg["n_members"], random_state=args.seed,
                                  max_epochs=cfg["max_epochs"], patience=cfg["patience"],
                                  extra_scalars=cfg["extra_scalars"],
                                  mask_point_sources=cfg["mask_point_sources"], flag_domain=True,
                                  observables=cfg["observables"], nh_column="nh" if cfg["nh"] else None,
                                  profile=cfg["profile"], verbose=1)

    pipe = new_pipeline()
    t = time.perf_counter()
    pipe.fit(X_tr, y_tr)
    t_train = time.perf_counter() - t
    del X_tr
    saved = calibration_set(pipe, cfg["n_train_mixed"], args) if args.fixed_mass else {}
    results = {}
    for name, desc, kw in DEPTHS:
        X, y, floor = simulate(kw, cfg["n_test"], 3000 + args.seed, args.n_jobs, floor=True)
        # through the steps up to the DomainFlagger once: its flags say which clusters predict_catalog would
        # give a mass to, and the rest of the pipeline predicts from the same cube
        k = [n for n, _ in pipe.steps].index("domain") + 1
        Z = pipe[:k].transform(X)
        ok = np.asarray(Z["in_domain"])
        m, s = pipe[k:].predict(Z, return_std=True)
        bm, bs = baseline.predict(X, return_std=True)
        saved.update({f"{name}__y_true": y, f"{name}__ensemble__mean": m, f"{name}__ensemble__std": s,
                      f"{name}__count_rate__mean": bm, f"{name}__count_rate__std": bs,
                      f"{name}__z": np.asarray(X["z"]), f"{name}__exposure": np.asarray(X["exposure"]),
                      f"{name}__true_lx_inverted__mean": floor})
        ratio, lo, hi = paired_scatter_ratio(y, m, bm, random_state=args.seed)
        results[name] = {"description": desc, "overrides": kw, "ensemble": evaluate(y, m, s),
                         "count_rate": evaluate(y, bm, bs), "scatter_ratio_to_count_rate": [ratio, lo, hi]}
        results[name]["in_domain_fraction"] = float(ok.mean())
        results[name]["ensemble_in_domain"] = (evaluate(y[ok], m[ok], s[ok]) if ok.sum() >= 2
                                               else {"coverage_68": float("nan")})
        e, c = results[name]["ensemble"], results[name]["count_rate"]
        _log(f"{name}: ensemble {100 * e['scatter']:.1f}% (bias {100 * e['bias']:+.1f}%, cov68 "
             f"{e['coverage_68']:.2f}, std {100 * e['mean_pred_std']:.1f}%), count rate {100 * c['scatter']:.1f}%; "
             f"{100 * ok.mean():.1f}% in the model's domain, cov68 "
             f"{results[name]['ensemble_in_domain']['coverage_68']:.3f} there")
        if args.single_depth:
            X_one, y_one = simulate(kw, cfg["n_train"], 5000 + args.seed, args.n_jobs)
            single = new_pipeline().fit(X_one, y_one)
            del X_one
            sm, ss = single.predict(X, return_std=True)
            saved.update({f"{name}__single_depth__mean": sm, f"{name}__single_depth__std": ss})
            results[name]["single_depth"] = evaluate(y, sm, ss)
            results[name]["scatter_ratio_to_single_depth"] = list(paired_scatter_ratio(y, m, sm, random_state=args.seed))
            q = results[name]["scatter_ratio_to_single_depth"]
            _log(f"{name}: trained at this depth alone {100 * results[name]['single_depth']['scatter']:.1f}%; "
                 f"mixed / single {q[0]:.2f} [{q[1]:.2f}, {q[2]:.2f}]")
    refused = {}
    if args.fixed_mass:
        models, refused = fit_responses(saved)
        add_calibrated(results, saved, models)
    from skcluster.datasets import DEFAULT_SKY

    report = {"command": command, "mock_version": DEFAULT_SKY, "config": cfg, "train_seconds": t_train, "fixed_mass_refused": refused,
              "total_seconds": time.perf_counter() - t0, "results": results}
    write_report(out, report, saved, calibrated=args.fixed_mass)
    _log(f"done in {report['total_seconds']:.0f} s")


def refit(source, out, command, hinge=None):
    """The fixed-mass calibrations fitted again on a finished ``--fixed-mass`` run's saved predictions; the other
    rows as they were. Seconds instead of the run's quarter hour: for trying another response on the same
    ensemble, calibration clusters and test mocks."""
    saved = dict(np.load(source / "predictions.npz"))
    base = json.loads((source / "depth_transfer.json").read_text())
    results = base["results"]
    missing = [k for k in ("calibration__y_true", *(f"{n}__z" for n in results)) if k not in saved]
    if missing:
        raise SystemExit(f"--refit: {source} has no {missing[0]} (a run without --fixed-mass, or from before the "
                         "calibration clusters and test redshifts were saved): rerun it")
    for name, r in results.items():
        for key in ("fixed_mass", "fixed_mass_depth"):
            r.pop(key, None)
            saved.pop(f"{name}__{key}__mean", None)
            saved.pop(f"{name}__{key}__std", None)
    t0 = time.perf_counter()
    models, refused = fit_responses(saved, hinge)
    add_calibrated(results, saved, models)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(base, command=command, refit_of=base["command"], hinge=hinge, fixed_mass_refused=refused,
                  total_seconds=time.perf_counter() - t0)
    write_report(out, report, saved, calibrated=True)


def write_report(out, report, saved, calibrated):
    """``depth_transfer.json``, ``predictions.npz`` and ``depth_transfer.md`` (also printed) into ``out``."""
    results, refused = report["results"], report["fixed_mass_refused"]
    single_depth = any("single_depth" in r for r in results.values())
    (out / "depth_transfer.json").write_text(json.dumps(report, indent=1, default=float))
    np.savez_compressed(out / "predictions.npz", **saved)
    lines = [f"`{report['command']}`", "", f"Mock version: {report.get('mock_version', 'v1')}.", "",
             "| test depth | ensemble scatter | bias | cov68 | cov95 | mean std | count_rate scatter | bias "
             "| ratio [95%] | in domain, its cov68 |"
             + (" single-depth scatter | mixed / single [95%] |" if single_depth else ""),
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if single_depth else "")]
    for name, r in results.items():
        e, c, q = r["ensemble"], r["count_rate"], r["scatter_ratio_to_count_rate"]
        line = (f"| {name} | {100 * e['scatter']:.1f}% | {100 * e['bias']:+.1f}% | {e['coverage_68']:.2f} | "
                f"{e['coverage_95']:.2f} | {100 * e['mean_pred_std']:.1f}% | {100 * c['scatter']:.1f}% | "
                f"{100 * c['bias']:+.1f}% | {q[0]:.2f} [{q[1]:.2f}, {q[2]:.2f}] | "
                f"{100 * r['in_domain_fraction']:.1f}%, {r['ensemble_in_domain']['coverage_68']:.3f} |")
        if single_depth:
            q1 = r["scatter_ratio_to_single_depth"]
            line += f" {100 * r['single_depth']['scatter']:.1f}% | {q1[0]:.2f} [{q1[1]:.2f}, {q1[2]:.2f}] |"
        lines.append(line)
    for key, why in refused.items():
        lines += ["", f"The {key} calibration refused: {why}"]
    if calibrated:
        lines += ["", "Calibrated at fixed true mass as skcluster train calibrates (fixed_mass: one response for "
                  "every depth; fixed_mass_depth: a response that depends on the exposure too, train's default "
                  "for --survey erosita); slope of predicted against true log M and the largest |bias| over "
                  "0.25-dex mass bins of >= 50 clusters (true_lx_inverted: the true L_X through the mean relation, "
                  "the bias the selection alone leaves):", "",
                  "| test depth | model | scatter | bias | cov68 | cov95 | slope | max bin bias (dex) |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in results.items():
            for key in [*(k for k in ("fixed_mass", "fixed_mass_depth") if k in r), "ensemble", "count_rate",
                        "true_lx_inverted"]:
                f = r[key]
                cov = (f"{f['coverage_68']:.2f} | {f['coverage_95']:.2f}" if "coverage_68" in f else "- | -")
                lines.append(f"| {name} | {key} | {100 * f['scatter']:.1f}% | {100 * f['bias']:+.1f}% | {cov} | "
                             f"{f['slope']:.3f} | {f['max_abs_bin_bias_dex']:.3f} |")
    md = "\n".join(lines) + "\n"
    (out / "depth_transfer.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
