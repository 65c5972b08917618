"""Learning curve: the standard model's scatter against the number of training clusters.

Is the network short of data, or of information? Everything but the number
of training clusters is held fixed:

1. One default eFEDS mock of the largest size (seed 1000 + ``--seed``) is
   simulated; the training sets are its first N clusters (nested, so a
   larger set holds every smaller one).
2. One test mock (seed 3000 + ``--seed``) scores every model.
3. For each N, the standard pipeline (:func:`skcluster.models.make_mass_pipeline`:
   detected point sources masked, radial profile beside z; on one band,
   0.2-2.3 keV, by default, which scored as well as ten on the benchmark
   mock, 0.997x [0.982, 1.012], at a third less compute) and the count-rate
   method (:func:`skcluster.baselines.count_rate_method`) are trained on
   the same N clusters.
4. For each N: scatter, bias, 68% and 95% coverage; the paired bootstrap
   ratio of the ensemble's scatter to the count rate's, and to the
   ensemble trained on the largest set (the same test clusters); the same
   scatters and ratio to the count rate on the bright test clusters
   (DET_LIKE and EXT_LIKE > 60, the benchmark's high-likelihood subset).

Writes ``learning_curve.json``, ``learning_curve.md``, ``learning_curve.png``
and ``predictions.npz`` (every model's masses, the bright mask) to ``--out``
and prints the table.
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

from skcluster.baselines import count_rate_method  # noqa: E402
from skcluster.benchmark import HIGH_LIKELIHOOD, catalog_scalars, paired_scatter_ratio  # noqa: E402
from skcluster.datasets import make_survey  # noqa: E402
from skcluster.metrics import interval_coverage, mass_bias, mass_scatter  # noqa: E402
from skcluster.models import make_mass_pipeline  # noqa: E402

HERE = Path(__file__).resolve().parent

SIZES = {
    "quick": dict(sizes=(60, 120), n_test=80, n_members=2, max_epochs=3, patience=3),
    "default": dict(sizes=(1000, 2000, 4000, 8000), n_test=1500, n_members=3, max_epochs=80, patience=15),
}


def _log(msg):
    print(f"[learning_curve {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def scores(y, mean, std, bright):
    """Scatter, bias and raw coverage on all test clusters; scatter on the ``bright`` ones."""
    return {"scatter": mass_scatter(y, mean), "bias": mass_bias(y, mean),
            "coverage_68": interval_coverage(y, mean, std, 0.68),
            "coverage_95": interval_coverage(y, mean, std, 0.95),
            "scatter_bright": mass_scatter(y[bright], mean[bright]) if bright.sum() > 1 else float("nan")}


def bright_ratio(y, mean, reference, bright, seed):
    """Paired bootstrap ratio of scatters on the bright test clusters (as :func:`paired_scatter_ratio`)."""
    if bright.sum() < 2:
        return [float("nan")] * 3
    return list(paired_scatter_ratio(y[bright], mean[bright], reference[bright], random_state=seed))


def argument_parser(doc, name):
    """The options this script shares with training_levers.py (--quick, --bands, --out, --seed, --n-jobs)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (seconds, meaningless numbers)")
    ap.add_argument("--bands", default="broad", help="the pipeline's bands (default: broad, 0.2-2.3 keV)")
    ap.add_argument("--out", default=str(HERE / "results" / name))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=None)
    return ap


def mocks(n_train, n_test, seed=0, n_jobs=None):
    """The training mock (seed 1000 + ``seed``) and test mock (3000 + ``seed``), and the bright test clusters.

    Default eFEDS mocks; the detection catalogue's scalars
    (:func:`skcluster.benchmark.catalog_scalars`: ``ml_rate``, which the
    count-rate method reads, ``det_like``, ``ext_like``, ``ext_arcsec``) are
    joined to each sample; y is float64 log10 M500.
    Returns ``((X, y), (X_test, y_test), bright)``: ``bright`` marks the
    test clusters of the benchmark's high-likelihood subset (DET_LIKE and
    EXT_LIKE > 60).
    """
    def one(n, base):
        d = make_survey("efeds", n_clusters=n, random_state=base + seed, n_jobs=n_jobs, verbose=False)
        cat = catalog_scalars(d.catalog)
        return (d.X.assign(**cat), np.asarray(d.y, dtype=np.float64)), cat

    train, _ = one(n_train, 1000)
    test, cat = one(n_test, 3000)
    return train, test, (cat["det_like"] > HIGH_LIKELIHOOD) & (cat["ext_like"] > HIGH_LIKELIHOOD)


def main(argv=None):
    ap = argument_parser(__doc__, "learning_curve")
    ap.add_argument("--sizes", default=None, help="comma-separated training sizes (default 1000,2000,4000,8000)")
    args = ap.parse_args(argv)
    cfg = dict(SIZES["quick" if args.quick else "default"])
    if args.sizes:
        cfg["sizes"] = tuple(sorted(int(v) for v in args.sizes.split(",")))
    if min(cfg["sizes"]) < 2:
        ap.error("--sizes: every training size must be at least 2")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/learning_curve.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    n_max = max(cfg["sizes"])
    _log(f"config {cfg}; simulating {n_max} training and {cfg['n_test']} test clusters")
    (X_train, y_train), (X_test, y_test), bright = mocks(n_max, cfg["n_test"], args.seed, args.n_jobs)
    t_sim = time.perf_counter() - t0
    rows, preds = [], {}
    for n in cfg["sizes"]:
        X, y = X_train[:n], y_train[:n]
        pipe = make_mass_pipeline(bands=args.bands, mask_point_sources=True, n_estimators=cfg["n_members"],
                                  random_state=args.seed, max_epochs=cfg["max_epochs"], patience=cfg["patience"],
                                  n_jobs=args.n_jobs, verbose=1)
        t = time.perf_counter()
        pipe.fit(X, y)
        fit_s = time.perf_counter() - t
        m, s = pipe.predict(X_test, return_std=True)
        bm, bs = count_rate_method().fit(X, y).predict(X_test, return_std=True)
        preds[f"ensemble_{n}"], preds[f"count_rate_{n}"] = m, bm
        row = {"n_train": n, "fit_seconds": fit_s, "ensemble": scores(y_test, m, s, bright),
               "count_rate": scores(y_test, bm, bs, bright),
               "ratio_to_count_rate": list(paired_scatter_ratio(y_test, m, bm, random_state=args.seed)),
               "bright_ratio_to_count_rate": bright_ratio(y_test, m, bm, bright, args.seed)}
        rows.append(row)
        _log(f"N={n}: ensemble {100 * row['ensemble']['scatter']:.1f}%, count rate "
             f"{100 * row['count_rate']['scatter']:.1f}%, ratio {row['ratio_to_count_rate'][0]:.3f} "
             f"({fit_s:.0f} s to train)")
        _report(rows, preds, y_test, bright, cfg, args, command, t0, t_sim, out)
    print((out / "learning_curve.md").read_text())
    return 0


def _report(rows, preds, y_test, bright, cfg, args, command, t0, t_sim, out):
    """Write the table, JSON, predictions and figure of the sizes done so far (after each size)."""
    n_max = rows[-1]["n_train"]
    for row in rows:
        row["ratio_to_largest"] = list(paired_scatter_ratio(y_test, preds[f"ensemble_{row['n_train']}"],
                                                            preds[f"ensemble_{n_max}"], random_state=args.seed))
    np.savez_compressed(out / "predictions.npz", y_true=y_test, bright=bright, **preds)
    summary = provenance(command, {**cfg, "bands": args.bands, "seed": args.seed}, t0, t_sim)
    summary["rows"] = rows
    (out / "learning_curve.json").write_text(json.dumps(summary, indent=1))
    lines = [f"Command: `{command}`", "", f"{summary['header']}; test mock of {len(y_test)} clusters "
             f"({int(bright.sum())} bright: DET_LIKE, EXT_LIKE > 60)", "",
             "| training clusters | ensemble scatter | bias | cov68 | cov95 | count rate | ensemble / count rate [95%] "
             f"| / ensemble at {n_max} [95%] | bright: ensemble, count rate, ratio [95%] | fit time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e, c, q, q2, qb = (r["ensemble"], r["count_rate"], r["ratio_to_count_rate"], r["ratio_to_largest"],
                           r["bright_ratio_to_count_rate"])
        lines.append(f"| {r['n_train']} | {100 * e['scatter']:.1f}% | {100 * e['bias']:+.1f}% | "
                     f"{e['coverage_68']:.2f} | {e['coverage_95']:.2f} | {100 * c['scatter']:.1f}% | "
                     f"{interval(q)} | {interval(q2)} | {100 * e['scatter_bright']:.1f}%, "
                     f"{100 * c['scatter_bright']:.1f}%, {interval(qb)} | {r['fit_seconds']:.0f} s |")
    (out / "learning_curve.md").write_text("\n".join(lines) + "\n")
    _plot(rows, out / "learning_curve.png")


def provenance(command, config, t0, t_sim):
    """The run's command, config, package version, git revision, CPU and times, and a one-line ``header``."""
    from _provenance import git_revision
    from bench_model import cpu_info

    from skcluster import __version__
    from skcluster.datasets import DEFAULT_SKY
    from skcluster.models import fast_autocast

    cpu = cpu_info()
    git = git_revision()
    # the precision make_mass_pipeline's default (fast=True) trains in here: bfloat16 where the CPU computes it
    precision = fast_autocast("cpu") or "float32"
    header = (f"Mock version: {DEFAULT_SKY} (skcluster {__version__}, git {git}); CPU: {cpu['model_name']} (AVX-512 "
              f"{cpu['flags']['avx512f']}, fast bfloat16 {cpu['bfloat16_fast']}), {precision}")
    return {"command": command, "config": config, "mock_version": DEFAULT_SKY, "version": __version__, "git": git, "cpu": cpu,
            "simulation_seconds": t_sim, "total_seconds": time.perf_counter() - t0, "header": header}


def interval(q):
    """A (ratio, lo, hi) triple as the tables print it."""
    return f"{q[0]:.3f} [{q[1]:.3f}, {q[2]:.3f}]"


def _plot(rows, path):
    """Scatter against training size, all test clusters and the bright ones, for both methods."""
    import matplotlib.pyplot as plt

    n = [r["n_train"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    for key, what, style in (("scatter", "all", "-"), ("scatter_bright", "bright", ":")):
        ax.plot(n, [100 * r["ensemble"][key] for r in rows], "o" + style, color="C0",
                label=f"standard ensemble, {what}")
        ax.plot(n, [100 * r["count_rate"][key] for r in rows], "s" + style, color="C1",
                label=f"count-rate method, {what}")
    ax.set_xscale("log")
    ax.set_xticks(n, [str(v) for v in n])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("training clusters")
    ax.set_ylabel("scatter in ln M500 on the test mock (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
