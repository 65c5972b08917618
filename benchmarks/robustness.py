"""Robustness to a change of mock physics, recalibration, and what the network looks at.

1. Train the standard pipeline (:func:`skcluster.models.make_mass_pipeline`:
   10 bands, 50 x 50 pixels, smoothing, log stretch, redshift, a deep
   ensemble of CNNs) and the traditional count-rate method (the detection
   fit's count rate ML_CTS / exposure, inverted scaling relation with the
   Chiu et al. 2022 redshift terms E(z), D_L, 1+z) on one default eFEDS
   mock.
2. Test both on a fresh default mock (the reference) and on mocks whose
   physics changed one thing at a time: cool-core fraction, scatter of L_X
   at fixed mass, profile shape, background x2, PSF 30% wider, no AGN,
   eRASS1 depth. The shifted mocks use the reference's random seed, so
   they show the same sky as far as the change allows (paired: differences
   are less noisy than between independent mocks).
3. Recalibrate the ensemble's std with one factor fitted on a separate
   held-out default mock (:class:`skcluster.calibration.RecalibratedRegressor`)
   and report the 68% / 95% coverage before and after on every test mock,
   with split-conformal intervals alongside.
4. Explain the ensemble on the reference mock (:mod:`skcluster.explain`):
   saliency and integrated gradients (zero and background-only baselines),
   radial importance against the count profile (is the core down-weighted,
   as Ho et al. 2023 found?), AGN- vs cluster-dominated pixels, energy bands.

Writes ``robustness.json``, ``robustness.md`` and figures to ``--out``
(default ``benchmarks/results/robustness``) and prints the command that
reproduces them, with its measured run time. ``--quick`` runs a small
version; the default is several times larger. Run it with ``nice`` on a
shared machine: timings there are provisional.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402

from skcluster import explain  # noqa: E402
from skcluster.baselines import (
    catalog_scalars,  # noqa: E402
    count_rate_method,  # noqa: E402
)
from skcluster.calibration import RecalibratedRegressor, conformal_quantile  # noqa: E402
from skcluster.datasets import make_survey  # noqa: E402
from skcluster.metrics import (  # noqa: E402
    LN10,
    gaussian_nll,
    interval_coverage,
    mass_bias,
    mass_scatter,
    mean_predicted_scatter,
)
from skcluster.models import make_mass_pipeline  # noqa: E402

HERE = Path(__file__).resolve().parent

#: The test mocks: name, what changed, make_survey arguments. Shift sizes follow
#: the robustness table of skcluster.datasets.parameters (defaults there: cool-core
#: fraction 0.4, sigma_ln_lx 0.30, rc_r500_median 0.185), with the cool-core
#: fraction pushed to 0.7 to leave the 30-50% prior clearly.
MOCKS = [
    ("reference", "fresh default eFEDS mock", {}),
    ("cool_cores_0.7", "cool-core fraction 0.4 -> 0.7", {"cool_core_fraction": 0.7}),
    ("lx_scatter_0.40", "sigma_ln L_X|M 0.30 -> 0.40", {"sigma_ln_lx": 0.40}),
    ("flatter_profiles", "median rc/r500 0.185 -> 0.25", {"rc_r500_median": 0.25}),
    ("background_x2", "background x2", {"background_scale": 2.0}),
    ("psf_1.3", "PSF 30% wider", {"psf_scale": 1.3}),
    ("no_agn", "no AGN (field or central)", {"include_agn": False}),
    ("erass1", "eRASS1 depth (preset)", {"survey": "erass1"}),
]

SIZES = {
    "quick": dict(n_train=400, n_test=150, n_cal=150, n_members=2, max_epochs=8, patience=4,
                  n_explain=100, n_ig=24, ig_steps=16),
    "default": dict(n_train=3000, n_test=800, n_cal=800, n_members=5, max_epochs=60, patience=10,
                    n_explain=800, n_ig=200, ig_steps=32),
}


def _log(msg):
    print(f"[robustness {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def simulate(kwargs, n, seed, n_jobs):
    kw = dict(kwargs)
    survey = kw.pop("survey", "efeds")
    t0 = time.perf_counter()
    data = make_survey(survey, n_clusters=n, random_state=seed, n_jobs=n_jobs, verbose=False, **kw)
    cat = data.catalog
    # the traditional method's observable: the detection fit's count rate (counts/s, 0.2-2.3 keV)
    X = data.X.assign(ml_rate=catalog_scalars(cat)["ml_rate"])
    return X, data.y, cat, time.perf_counter() - t0


def evaluate(y, mean, std):
    """Scatter, bias (ln M fractions), coverage, mean predicted std, NLL."""
    r = mean - y
    return {
        "n": int(y.size),
        "scatter": mass_scatter(y, mean),
        "bias": mass_bias(y, mean),
        "rms": float(LN10 * np.sqrt(np.mean(r**2))),
        "mean_pred_std": mean_predicted_scatter(std),
        "cov68": float(interval_coverage(y, mean, std, 0.68)),
        "cov95": float(interval_coverage(y, mean, std, 0.95)),
        "nll": gaussian_nll(y, mean, std),
    }


def std_quartiles(y, mean, std):
    """rms error (ln M) in quartiles of the predicted std: does the error grow with it?"""
    edges = np.quantile(std, [0, 0.25, 0.5, 0.75, 1.0])
    idx = np.clip(np.searchsorted(edges, std, side="right") - 1, 0, 3)
    out = []
    for q in range(4):
        s = idx == q
        out.append({"mean_pred_std": float(LN10 * std[s].mean()),
                    "rms_error": float(LN10 * np.sqrt(np.mean((mean[s] - y[s]) ** 2))), "n": int(s.sum())})
    return out


def _se_scatter(s, n):
    return s / np.sqrt(2.0 * max(n - 1, 1))


def degradation_flags(res):
    """Per shifted mock: does the ensemble degrade more than the baseline (scatter, |bias|)?

    Degradation = value on the shifted mock minus value on the reference.
    The ensemble "degrades more" when its degradation exceeds the baseline's
    by more than twice the combined standard error (scatter: s / sqrt(2 (n - 1))
    per mock; bias: s / sqrt(n)), treating the four estimates as independent
    (conservative: the mocks share a seed, so the errors are partly paired).
    """
    ref = res["reference"]
    flags = {}
    for name, r in res.items():
        if name == "reference":
            continue
        f = {}
        for key, se_fn in (("scatter", _se_scatter), ("bias", lambda s, n: s / np.sqrt(n))):
            d = {}
            se2 = 0.0
            for model in ("ensemble", "count_rate"):
                a, b = r[model], ref[model]
                if key == "scatter":
                    d[model] = a["scatter"] - b["scatter"]
                else:
                    d[model] = abs(a["bias"]) - abs(b["bias"])
                se2 += se_fn(a["scatter"], a["n"]) ** 2 + se_fn(b["scatter"], b["n"]) ** 2
            diff = d["ensemble"] - d["count_rate"]
            f[key] = {"delta_ensemble": d["ensemble"], "delta_count_rate": d["count_rate"],
                      "difference": diff, "se": float(np.sqrt(se2)),
                      "ensemble_degrades_more": bool(diff > 2 * np.sqrt(se2))}
        flags[name] = f
    return flags


def std_tracks_error(res):
    """Across mocks: does the ensemble's mean predicted std grow where its rms error grows?"""
    ref = res["reference"]["ensemble"]
    rows = {}
    agree = 0
    n_grew = 0
    for name, r in res.items():
        if name == "reference":
            continue
        e = r["ensemble"]
        d_err, d_std = e["rms"] - ref["rms"], e["mean_pred_std"] - ref["mean_pred_std"]
        grew = d_err > 2 * _se_scatter(e["rms"], e["n"])
        rows[name] = {"delta_rms": d_err, "delta_mean_pred_std": d_std, "error_grew": bool(grew),
                      "std_grew": bool(d_std > 0)}
        if grew:
            n_grew += 1
            agree += int(d_std > 0)
    return {"per_mock": rows, "n_mocks_error_grew": n_grew, "n_of_those_std_grew": agree}


def _fmt(v, pct=True, digits=1):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{100 * v:.{digits}f}" if pct else f"{v:.{digits}f}"


def markdown(report):
    res, flags = report["results"], report["degradation"]
    lines = [
        "### Robustness to a change of mock physics",
        "",
        f"Trained on {report['config']['n_train']} clusters of the default eFEDS mock (mock version "
        f"{report.get('mock_version', 'v1')}); "
        f"{report['config']['n_test']} test clusters per mock. Scatter and bias in % of ln M "
        "(ln 10 x std / mean of the log10 residuals); cov68 / cov95: observed coverage of the "
        "68% / 95% Gaussian intervals; <std>: mean predicted std (ln 10 x mean, %). "
        "\"recal.\": the ensemble's std times the factor "
        f"{report['recalibration']['scale']:.3f} fitted (max. likelihood) on "
        f"{report['recalibration']['n_calibration']} held-out default-mock clusters; "
        "\"conf.\": split-conformal intervals from the same calibration scores. "
        "\"ens. worse?\": whether the ensemble's scatter / |bias| grew more than the count-rate "
        "method's, relative to the reference, by more than 2 standard errors.",
        "",
        "| test mock | n | ensemble scatter | bias | <std> | cov68 | cov95 | recal. cov68 | cov95 "
        "| conf. cov68 | cov95 | count-rate scatter | bias | cov68 | cov95 | ens. worse? (scatter / bias) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, desc, _ in MOCKS:
        if name not in res:
            continue
        r = res[name]
        e, c, b, cf = r["ensemble"], r["ensemble_recalibrated"], r["count_rate"], r["conformal"]
        if name == "reference":
            worse = "(reference)"
        else:
            f = flags[name]
            worse = " / ".join(
                ("**yes**" if f[k]["ensemble_degrades_more"] else "no")
                + f" ({100 * f[k]['delta_ensemble']:+.1f} vs {100 * f[k]['delta_count_rate']:+.1f})"
                for k in ("scatter", "bias"))
        lines.append(
            f"| {desc} | {e['n']} | {_fmt(e['scatter'])} | {_fmt(e['bias'], digits=1)} | {_fmt(e['mean_pred_std'])} "
            f"| {_fmt(e['cov68'], digits=0)} | {_fmt(e['cov95'], digits=0)} | {_fmt(c['cov68'], digits=0)} "
            f"| {_fmt(c['cov95'], digits=0)} | {_fmt(cf['cov68'], digits=0)} | {_fmt(cf['cov95'], digits=0)} "
            f"| {_fmt(b['scatter'])} | {_fmt(b['bias'])} | {_fmt(b['cov68'], digits=0)} "
            f"| {_fmt(b['cov95'], digits=0)} | {worse} |")
    st = report["std_tracks_error"]
    lines += [
        "",
        f"Predicted std vs error: on {st['n_mocks_error_grew']} shifted mock(s) the ensemble's rms "
        f"error grew by more than 2 standard errors; its mean predicted std grew on "
        f"{st['n_of_those_std_grew']} of them. Per mock (rms error change / mean predicted std change, "
        "% of ln M): "
        + "; ".join(f"{k} {100 * v['delta_rms']:+.1f} / {100 * v['delta_mean_pred_std']:+.1f}"
                    for k, v in st["per_mock"].items()) + ".",
        "",
        "Within the reference mock, rms error in quartiles of the predicted std (mean std -> rms, %): "
        + ", ".join(f"{100 * q['mean_pred_std']:.1f} -> {100 * q['rms_error']:.1f}"
                    for q in report["reference_std_quartiles"]) + ".",
    ]
    ex = report.get("explain", {})
    if ex:
        lines += ["", "### What the ensemble looks at (reference mock)", "",
                  "Core weight: importance per count in 0-0.25 r500 relative to 0.25-1 r500 (stacked "
                  "profiles, 95% bootstrap interval over clusters); below 1 = the core is down-weighted "
                  "relative to its photons. Against the counts as the network sees them (binned and "
                  "smoothed), the raw binned counts, and the cluster (ICM) photons alone.", "",
                  "Last two columns: importance per photon of AGN-dominated pixels over that of "
                  "cluster-dominated pixels, (a) each relative to the pixels at the same radius, (b) as "
                  "share of the importance over share of the photons (not radius matched).", "",
                  "| attribution | clusters | core weight vs counts | verdict | vs raw counts | verdict "
                  "| vs ICM counts | verdict | AGN / ICM per count (a) | (b) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]

        def cell(cw, verdict):
            if not cw:
                return "n/a | n/a"
            return f"{cw['ratio']:.2f} ({cw['ci95'][0]:.2f}-{cw['ci95'][1]:.2f}) | {verdict}"

        for key, s in ex.items():
            lines.append(
                f"| {key} | {s['n_clusters']} | {cell(s['core_weight_vs_counts'], s['core_verdict_vs_counts'])} "
                f"| {cell(s['core_weight_vs_raw_counts'], s['core_verdict_vs_raw_counts'])} "
                f"| {cell(s.get('core_weight_vs_icm_counts'), s.get('core_verdict_vs_icm_counts'))} "
                f"| {_fmt(s.get('agn_vs_icm_importance_per_count'), pct=False, digits=2)} "
                f"| {_fmt(s.get('agn_vs_icm_share_per_count'), pct=False, digits=2)} |")
        s = ex.get("saliency")
        if s:
            lines += ["", f"Radial profiles (saliency, bins {s['bins_r500']} r500, each normalised to its mean "
                      "within 4 r500, stacked):", "",
                      "| r/r500 | " + " | ".join(f"{a:g}-{b:g}" for a, b in zip(s["bins_r500"][:-1], s["bins_r500"][1:])) + " |",
                      "|---|" + "---|" * (len(s["bins_r500"]) - 1),
                      "| importance | " + " | ".join(_fmt(v, pct=False, digits=2) for v in s["importance_profile"]) + " |",
                      "| counts (smoothed) | " + " | ".join(_fmt(v, pct=False, digits=2) for v in s["count_profile"]) + " |",
                      "| counts (raw) | " + " | ".join(_fmt(v, pct=False, digits=2) for v in s["raw_count_profile"]) + " |"]
            if s.get("icm_count_profile"):
                lines.append("| ICM counts | " + " | ".join(_fmt(v, pct=False, digits=2)
                                                          for v in s["icm_count_profile"]) + " |")
            o = s.get("origins", {})
            lines += ["", "Pixels by dominant photon origin (saliency; relative to pixels at the same radius):",
                      "", "| origin | pixels | importance share | photon share | importance / ring | counts / ring |",
                      "|---|---|---|---|---|---|"]
            for name, v in o.items():
                if v.get("n_pixels"):
                    lines.append(f"| {name} | {v['n_pixels']} | {_fmt(v.get('importance_share'))}% "
                                 f"| {_fmt(v.get('count_share'))}% | {_fmt(v.get('rel_importance'), pct=False, digits=2)} "
                                 f"| {_fmt(v.get('rel_counts'), pct=False, digits=2)} |")
            lines += ["", "Importance share per band (saliency) vs photon share: "
                      + ", ".join(f"{lo:g}-{hi:g} keV {100 * a:.0f}% / {100 * c:.0f}%"
                                  for (lo, hi), a, c in zip(report["bands_keV"], s["band_importance"],
                                                            s["band_count_share"])) + "."]
    lines += ["", f"Reproduce: `{report['command']}` ({report['timings']['total_s'] / 60:.0f} min on "
              f"{report['machine']})."]
    if report.get("explain_command"):
        lines[-1] += (f" Explanations redone on the saved model with `{report['explain_command']}` "
                      f"({report['timings']['explain_total_s'] / 60:.1f} min).")
    return "\n".join(lines) + "\n"


def robustness_figure(report, path):
    from matplotlib.figure import Figure

    res = report["results"]
    names = [m[0] for m in MOCKS if m[0] in res]
    fig = Figure(figsize=(12, 7.5), layout="constrained")
    axes = fig.subplots(2, 2)
    x = np.arange(len(names))
    w = 0.27
    series = [("ensemble", "C3"), ("count_rate", "C0")]
    for k, (model, color) in enumerate(series):
        axes[0, 0].bar(x + (k - 0.5) * w, [100 * res[n][model]["scatter"] for n in names], w, color=color, label=model)
        axes[0, 1].bar(x + (k - 0.5) * w, [100 * res[n][model]["bias"] for n in names], w, color=color, label=model)
    axes[0, 0].plot(x - 0.5 * w, [100 * res[n]["ensemble"]["mean_pred_std"] for n in names], "k_", ms=14,
                    label="ensemble mean predicted std")
    axes[0, 0].set_ylabel("scatter, % of ln M")
    axes[0, 1].set_ylabel("bias, % of ln M")
    axes[0, 1].axhline(0, color="0.5", lw=0.8)
    for j, (key, lv) in enumerate((("cov68", 0.68), ("cov95", 0.95))):
        ax = axes[1, j]
        for k, (model, color) in enumerate([("ensemble", "C3"), ("ensemble_recalibrated", "C1"),
                                            ("conformal", "C4"), ("count_rate", "C0")]):
            ax.bar(x + (k - 1.5) * 0.2, [100 * res[n][model][key] for n in names], 0.2, color=color, label=model)
        ax.axhline(100 * lv, color="k", lw=0.8)
        ax.set_ylabel(f"{key[3:]}% interval coverage, %")
        ax.set_ylim(0, 100)
    for ax in axes.ravel():
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("Trained on the default eFEDS mock, tested on mocks with one change of physics")
    fig.savefig(path, dpi=120)


def explain_all(pipe, X, y, cat, cfg, bands_keV, out):
    """Saliency and integrated gradients (two baselines) on the reference clusters, with figures."""
    from skcluster.plotting import plot_attribution_maps, plot_explanation

    theta = np.asarray(cat["theta500_arcmin"], dtype=np.float64)
    summaries, seconds = {}, {}
    n_ex, n_ig = min(cfg["n_explain"], len(y)), min(cfg["n_ig"], len(y))
    runs = [("saliency", dict(method="saliency"), n_ex),
            ("IG zeros", dict(method="integrated_gradients", baseline="zeros", n_steps=cfg["ig_steps"]), n_ig),
            ("IG background", dict(method="integrated_gradients", baseline="background",
                                   n_steps=cfg["ig_steps"]), n_ig)]
    for key, kw, n in runs:
        _log(f"explaining {n} reference clusters: {key}")
        t0 = time.perf_counter()
        idx = np.arange(n)
        ex = explain.explain_predictions(pipe, X[idx], theta[idx], verbose=False, **kw)
        seconds[key] = time.perf_counter() - t0
        summaries[key] = ex.summary
        slug = key.lower().replace(" ", "_")
        plot_explanation(ex, bands_keV, title=f"{key}: {n} clusters of the reference mock").savefig(
            out / f"explain_{slug}.png", dpi=120)
        if key == "saliency":
            order = np.argsort(cat["M500"][:n])
            pick = [int(order[len(order) // 2]), int(order[-1]), int(np.flatnonzero(cat["central_agn"][:n])[0])
                    if np.any(cat["central_agn"][:n]) else int(order[0])]
            labels = [f"M500={cat['M500'][i]:.2g}, z={cat['z'][i]:.2f}" + (", central AGN" if cat["central_agn"][i]
                                                                           else "") for i in pick]
            plot_attribution_maps(ex.counts, ex.attributions, theta[:n], ex.pixel_arcsec, pick, labels=labels,
                                  title="counts and saliency (circles: r500 and 0.25 r500)").savefig(
                out / "explain_maps.png", dpi=120)
        _log(f"  {key}: core weight {ex.summary['core_weight_vs_counts']} -> {ex.summary['core_verdict_vs_counts']}")
        del ex
    return summaries, seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run (a few minutes)")
    ap.add_argument("--out", default=str(HERE / "results" / "robustness"))
    ap.add_argument("--n-jobs", type=int, default=2, help="workers for the mock simulation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--explain-only", action="store_true",
                    help="reload model.skc from --out, redo only the explanations on the reference mock "
                         "(same seed) and update robustness.json / .md")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch threads (default: torch's choice; 1 is faster when other jobs share the CPU)")
    for key, val in SIZES["default"].items():
        ap.add_argument("--" + key.replace("_", "-"), type=int, default=None,
                        help=f"override (default {val}, quick {SIZES['quick'][key]})")
    args = ap.parse_args(argv)
    cfg = dict(SIZES["quick" if args.quick else "default"])
    for key in cfg:
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/robustness.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    t_start = time.perf_counter()
    timings = {}
    seeds = {"train": 1000 + args.seed, "calibration": 2000 + args.seed, "test": 3000 + args.seed}
    if args.explain_only:
        from skcluster import persist

        report = json.loads((out / "robustness.json").read_text())
        pipe = persist.load(out / "model.skc")
        X, y, cat, _ = simulate({}, report["config"]["n_test"], report["seeds"]["test"], args.n_jobs)
        t0 = time.perf_counter()
        report["explain"], report["timings"]["explain_s"] = explain_all(pipe, X, y, cat, report["config"],
                                                                        report["bands_keV"], out)
        report["explain_command"] = command
        report["timings"]["explain_total_s"] = time.perf_counter() - t0
        (out / "robustness.json").write_text(json.dumps(report, indent=1, default=float))
        md = markdown(report)
        (out / "robustness.md").write_text(md)
        print(md)
        return

    _log(f"config {cfg}; simulating the training mock ({cfg['n_train']} clusters)")
    X_tr, y_tr, _, timings["simulate_train_s"] = simulate({}, cfg["n_train"], seeds["train"], args.n_jobs)
    X_cal, y_cal, _, timings["simulate_calibration_s"] = simulate({}, cfg["n_cal"], seeds["calibration"], args.n_jobs)

    _log("training the count-rate baseline and the ensemble")
    baseline = count_rate_method().fit(X_tr, y_tr)
    pipe = make_mass_pipeline(mask_point_sources=False, n_estimators=cfg["n_members"], random_state=args.seed, max_epochs=cfg["max_epochs"],
                              patience=cfg["patience"], verbose=1)
    t0 = time.perf_counter()
    pipe.fit(X_tr, y_tr)
    timings["train_ensemble_s"] = time.perf_counter() - t0
    ens = pipe[-1]
    member_info = [{"epochs": int(m.n_epochs_), "best_epoch": int(m.best_epoch_), "seconds": float(s)}
                   for m, s in zip(ens.estimators_, ens.fit_seconds_)]
    _log(f"ensemble trained in {timings['train_ensemble_s']:.0f} s: {member_info}")
    bands_keV = [list(b) for b in pipe[0].bands_keV_]
    del X_tr
    from skcluster import persist

    persist.save(pipe, out / "model.skc", overwrite=True)  # to explain it again without retraining

    t0 = time.perf_counter()
    recal = RecalibratedRegressor(FrozenEstimator(pipe), method="nll").fit(X_cal, y_cal)
    timings["recalibrate_s"] = time.perf_counter() - t0
    q68, q95 = conformal_quantile(recal.calibration_scores_, [0.68, 0.95])
    _log(f"std scale {recal.scale_:.3f} on {recal.n_calibration_} calibration clusters; "
         f"coverage there {recal.coverage_before_} -> {recal.coverage_after_}")
    del X_cal

    results = {}
    ref_keep = None
    timings["simulate_test_s"] = {}
    for name, desc, kw in MOCKS:
        _log(f"test mock {name}: {desc}")
        X, y, cat, timings["simulate_test_s"][name] = simulate(kw, cfg["n_test"], seeds["test"], args.n_jobs)
        mean, std_cal = recal.predict(X, return_std=True)
        std = std_cal / recal.scale_
        bm, bs = baseline.predict(X, return_std=True)
        r = {"description": desc, "overrides": {k: v for k, v in kw.items()},
             "ensemble": evaluate(y, mean, std), "ensemble_recalibrated": evaluate(y, mean, std_cal),
             "count_rate": evaluate(y, bm, bs)}
        z = np.abs(y - mean) / std
        r["conformal"] = {"cov68": float(np.mean(z <= q68)), "cov95": float(np.mean(z <= q95))}
        r["mean_log10_M500"] = float(np.mean(y))
        r["median_z"] = float(np.median(X["z"]))
        results[name] = r
        _log(f"  ensemble {r['ensemble']}\n  count rate {r['count_rate']}")
        if name == "reference":
            ref_keep = (X, y, cat, mean, std, bm, bs)
        del X

    from skcluster.datasets import DEFAULT_SKY

    report = {
        "command": command, "mock_version": DEFAULT_SKY,
        "machine": f"{os.cpu_count()} CPU cores (shared; load average {os.getloadavg()[0]:.1f} at the end)",
        "config": cfg, "seeds": seeds, "torch_threads": args.torch_threads, "bands_keV": bands_keV,
        "members": member_info,
        "recalibration": {"method": "nll", "scale": recal.scale_, "n_calibration": recal.n_calibration_,
                          "coverage_before_on_calibration": recal.coverage_before_,
                          "coverage_after_on_calibration": recal.coverage_after_,
                          "conformal_q68": float(q68), "conformal_q95": float(q95)},
        "results": results,
    }
    report["degradation"] = degradation_flags(results)
    report["std_tracks_error"] = std_tracks_error(results)
    X, y, cat, mean, std, bm, bs = ref_keep
    report["reference_std_quartiles"] = std_quartiles(y, mean, std)

    report["explain"], timings["explain_s"] = explain_all(pipe, X, y, cat, cfg, bands_keV, out)
    from skcluster.plotting import plot_performance

    plot_performance(y, {"ensemble": (mean, std), "count rate": (bm, bs)}, z=X["z"],
                     title="reference mock").savefig(out / "reference_performance.png", dpi=110)
    timings["total_s"] = time.perf_counter() - t_start
    report["timings"] = timings
    robustness_figure(report, out / "robustness.png")
    (out / "robustness.json").write_text(json.dumps(report, indent=1, default=float))
    md = markdown(report)
    (out / "robustness.md").write_text(md)
    print(md)
    _log(f"wrote {out}/robustness.json, robustness.md and figures in {timings['total_s'] / 60:.1f} min")
    print(f"reproduce with: {command}")


if __name__ == "__main__":
    main()
