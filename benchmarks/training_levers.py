"""Training levers: learning-rate schedule, beta-NLL, patience, input noise, members, capacity, catalogue scalars,
fresh photon noise per epoch.

And one reader that is not a network: ``gbm_hybrid_inputs``, gradient-boosted
trees on every scalar the hybrid network gets (z, the radial profile, the
detection catalogue's scalars, the exposure), without the image.

Each lever changes one setting of the standard model and nothing else; all
are trained on the same clusters and scored on the same test clusters:

1. The mocks of ``learning_curve.py``: the first ``--n-train`` (2000)
   clusters of the default eFEDS mock of seed 1000 + ``--seed``, and the
   1500-cluster test mock of seed 3000 + ``--seed``.
2. The standard pipeline (:func:`skcluster.models.make_mass_pipeline`:
   detected point sources masked, radial profile beside z, 1 band,
   0.2-2.3 keV, 3 members, 80 epochs, patience 15) and one variant per
   lever (``VARIANTS``); the count-rate method once, as the reference.
3. For each: scatter, bias, raw 68% and 95% coverage, the members' best
   epochs, fit time, and the paired bootstrap ratio of its scatter to the
   standard model's and to the count rate's (the same test clusters).

Writes ``training_levers.json``, ``training_levers.md`` and
``predictions.npz`` to ``--out`` (after each variant) and prints the table.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from learning_curve import argument_parser, bright_ratio, interval, mocks, provenance, scores
from sklearn.preprocessing import FunctionTransformer

from skcluster.baselines import GradientBoostingMassRegressor, count_rate_method
from skcluster.benchmark import HYBRID_SCALARS, paired_scatter_ratio
from skcluster.models import make_mass_pipeline

#: One lever each: keyword arguments of make_mass_pipeline that differ from the standard model.
VARIANTS = {
    "standard": {},
    "cosine_lr": {"lr_schedule": "cosine"},
    "beta_nll_0.5": {"beta": 0.5},
    "patience_30": {"patience": 30, "max_epochs": 120},
    "input_noise_0.1": {"noise_sigma": 0.1},
    "5_members": {"n_estimators": 5},
    # more capacity: 1.5x the channels of every convolution block, twice the dense units
    "wide": {"channels": (24, 48, 96), "dense": (128,)},
    # the benchmark's hybrid row: the detection catalogue's scalars beside z and the profile
    "hybrid": {"extra_scalars": HYBRID_SCALARS},
    # the hybrid row trained longer: its members stopped earlier than the standard model's (were the strong
    # scalars fitted before the image was read?)
    "hybrid_patience_30": {"extra_scalars": HYBRID_SCALARS, "patience": 30, "max_epochs": 120},
    # not a network: boosted trees on the hybrid row's scalars (GBM_VARIANTS)
    "gbm_hybrid_inputs": {"extra_scalars": HYBRID_SCALARS},
    # the network sees photon counts (COUNTS_VARIANTS: no smoothing, no exposure correction or stretch; log1p
    # inside the network, the exposure beside z), so that it can redraw their Poisson noise every epoch
    "counts_log1p": {"extra_scalars": ("exposure",)},
    "counts_log1p_poisson": {"extra_scalars": ("exposure",)},
}

#: Variants whose last step is gradient boosting on the joined scalars, not the CNN ensemble.
GBM_VARIANTS = ("gbm_hybrid_inputs",)
#: Variants whose network reads the binned counts: the pipeline's smooth and scale steps are left out and
#: the CNNRegressor gets these settings (log1p inside the network; a Poisson redraw of the counts per epoch).
COUNTS_VARIANTS = {"counts_log1p": {"input_scaling": "log1p"},
                   "counts_log1p_poisson": {"input_scaling": "log1p", "poisson": True}}


def joined_scalars(X):
    """The (n, K) scalars the network would get beside its images (log(1 + z), profile, extras)."""
    return np.asarray(X["scalars"], dtype=np.float64)


def build(name, params, seed):
    """The variant's pipeline: the standard one with its settings, or its preprocessing and boosted trees."""
    pipe = make_mass_pipeline(**{**params, **VARIANTS[name]})
    if name in COUNTS_VARIANTS:
        pipe.steps[:] = [step for step in pipe.steps if step[0] not in ("smooth", "scale")]
        pipe.set_params(**{f"model__estimator__{k}": v for k, v in COUNTS_VARIANTS[name].items()})
    if name in GBM_VARIANTS:
        pipe.steps[-1:] = [("scalars", FunctionTransformer(joined_scalars)),
                           ("model", GradientBoostingMassRegressor(random_state=seed))]
    return pipe


SIZES = {
    "quick": dict(n_train=60, n_test=80, n_members=2, max_epochs=3, patience=3),
    "default": dict(n_train=2000, n_test=1500, n_members=3, max_epochs=80, patience=15),
}


def _log(msg):
    print(f"[training_levers {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv=None):
    ap = argument_parser(__doc__, "training_levers")
    ap.add_argument("--n-train", type=int, default=None, help="training clusters (default 2000)")
    ap.add_argument("--variants", default=None,
                    help=f"comma-separated subset of {', '.join(VARIANTS)} (standard is always run)")
    args = ap.parse_args(argv)
    cfg = dict(SIZES["quick" if args.quick else "default"])
    if args.n_train is not None:
        if args.n_train < 10:
            ap.error("--n-train must be at least 10")
        cfg["n_train"] = args.n_train
    names = list(VARIANTS)
    if args.variants:
        asked = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = sorted(set(asked) - set(VARIANTS))
        if unknown:
            ap.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
        names = ["standard"] + [v for v in asked if v != "standard"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/training_levers.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    _log(f"config {cfg}; variants {names}; simulating {cfg['n_train']} training and {cfg['n_test']} test clusters")
    (X, y), (X_test, y_test), bright = mocks(cfg["n_train"], cfg["n_test"], args.seed, args.n_jobs)
    t_sim = time.perf_counter() - t0
    bm, bs = count_rate_method().fit(X, y).predict(X_test, return_std=True)
    reference = {"count_rate": scores(y_test, bm, bs, bright)}
    rows, preds = [], {"count_rate": bm}
    for name in names:
        params = dict(bands=args.bands, mask_point_sources=True, n_estimators=cfg["n_members"],
                      random_state=args.seed, max_epochs=cfg["max_epochs"], patience=cfg["patience"],
                      n_jobs=args.n_jobs, verbose=1)
        pipe = build(name, params, args.seed)
        t = time.perf_counter()
        pipe.fit(X, y)
        fit_s = time.perf_counter() - t
        m, s = pipe.predict(X_test, return_std=True)
        preds[name] = m
        members = getattr(pipe.named_steps["model"], "estimators_", [])  # no members: boosted trees
        changes = {**VARIANTS[name], **COUNTS_VARIANTS.get(name, {})}
        if name in COUNTS_VARIANTS:
            changes["steps"] = "no smooth, no scale"
        row = {"variant": name, "changes": changes, "fit_seconds": fit_s,
               "best_epochs": [int(e.best_epoch_) for e in members], "epochs": [int(e.n_epochs_) for e in members],
               "scores": scores(y_test, m, s, bright),
               "ratio_to_count_rate": list(paired_scatter_ratio(y_test, m, bm, random_state=args.seed)),
               "ratio_to_standard": list(paired_scatter_ratio(y_test, m, preds["standard"], random_state=args.seed)),
               "bright_ratio_to_count_rate": bright_ratio(y_test, m, bm, bright, args.seed)}
        rows.append(row)
        _log(f"{name}: scatter {100 * row['scores']['scatter']:.1f}%, /standard {row['ratio_to_standard'][0]:.3f}, "
             f"/count rate {row['ratio_to_count_rate'][0]:.3f} ({fit_s:.0f} s to train)")
        _report(rows, reference, preds, y_test, bright, cfg, args, command, t0, t_sim, out)
    print((out / "training_levers.md").read_text())
    return 0


def _report(rows, reference, preds, y_test, bright, cfg, args, command, t0, t_sim, out):
    """Write the table, JSON and predictions of the variants done so far."""
    np.savez_compressed(out / "predictions.npz", y_true=y_test, bright=bright, **preds)
    summary = provenance(command, {**cfg, "bands": args.bands, "seed": args.seed}, t0, t_sim)
    summary.update(reference=reference, rows=rows)
    (out / "training_levers.json").write_text(json.dumps(summary, indent=1))
    c = reference["count_rate"]
    lines = [f"Command: `{command}`", "",
             f"{summary['header']}; {cfg['n_train']} training and {len(y_test)} test clusters; count-rate method "
             f"{100 * c['scatter']:.1f}% scatter on them, {100 * c['scatter_bright']:.1f}% on the "
             f"{int(bright.sum())} bright ones (DET_LIKE, EXT_LIKE > 60)", "",
             "| variant | change | scatter | bias | cov68 | cov95 | / standard [95%] | / count rate [95%] "
             "| bright / count rate [95%] | best epochs | fit time |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r["scores"]
        change = ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "-"
        lines.append(f"| {r['variant']} | {change} | {100 * e['scatter']:.1f}% | {100 * e['bias']:+.1f}% | "
                     f"{e['coverage_68']:.2f} | {e['coverage_95']:.2f} | {interval(r['ratio_to_standard'])} | "
                     f"{interval(r['ratio_to_count_rate'])} | {interval(r['bright_ratio_to_count_rate'])} | "
                     f"{', '.join(map(str, r['best_epochs'])) or '-'} | "
                     f"{r['fit_seconds']:.0f} s |")
    (out / "training_levers.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
