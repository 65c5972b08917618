"""Feature distance: does a cluster's distance from the training clusters say where the masses go wrong (issue 35)?

A physics-marginalised ensemble's physics part cannot grow outside its
prior (its members only ever saw draws of it). A *distance-aware* part
would have to see, cluster by cluster, that a test cluster lies off the
training data. This benchmark asks whether the network's input holds that
signal, before anyone builds on it:

1. It reads a run of ``physics_family.py`` (``--run``: its JSON and
   ``predictions.npz``), and simulates that run's fixed training mock and
   its built-in direction's test mocks again from the same seeds
   (``physics_family.held_out_mocks``), refusing to go on unless the true
   masses are the run's, cluster for cluster.
2. The run's preprocessing (``make_mass_pipeline`` with its network
   settings, all steps before the ensemble) is fitted on the training mock;
   each cluster's features are the network's scalars (redshift and the
   radial profile, standardised) and the log summed counts of each band of
   its input cube.
3. The distance: the Mahalanobis distance squared from the training
   clusters' mean under their covariance; "beyond" is beyond the training
   clusters' own 90% point (so 10% of in-family clusters are beyond).
4. Per test mock: the share of clusters beyond (all, and the groups below
   10^13.8 Msun), and for the run's raw ensembles (fixed, marginalised) the
   68% coverage and median |error| of the clusters inside and beyond, with
   a bootstrap interval over clusters of the coverage difference (beyond -
   inside). A distance that could carry a distance-aware part would put
   more clusters beyond on the mocks where the masses are biased (the
   other family, its L_X-M alone, the shifted mocks) and find the coverage
   lower beyond.

Writes ``feature_distance.json`` and ``feature_distance.md`` into the run's
folder (refused if they exist, without ``--overwrite``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import physics_family as pf  # beside this script
from learning_curve import interval, provenance

FILES = ("feature_distance.json", "feature_distance.md")
#: The training clusters' quantile beyond which a cluster counts as off the training data.
BEYOND_QUANTILE = 0.9
#: Groups: true log10 M500c (Msun) below this (the mass-binned table's first bin of physics_family.py).
GROUP_LOG10_M_MAX = 13.8


def features(pre, X):
    """``(n, K)`` float64: the network's scalars and the log10 summed counts of each band of its input cube."""
    out = pre.transform(X)
    counts = np.log10(np.maximum(np.asarray(out["images"]).sum(axis=(2, 3), dtype=np.float64), 1e-3))
    return np.hstack([np.asarray(out["scalars"], dtype=np.float64), counts])


class MahalanobisDistance:
    """Squared Mahalanobis distance from the mean of training features (pseudo-inverse covariance)."""

    def fit(self, F):
        self.mean_ = F.mean(axis=0)
        cov = np.cov(F, rowvar=False)
        self.precision_ = np.linalg.pinv(cov + 1e-6 * np.trace(cov) / len(cov) * np.eye(len(cov)))
        self.beyond_ = float(np.quantile(self(F), BEYOND_QUANTILE))
        return self

    def __call__(self, F):
        D = F - self.mean_
        return np.einsum("ij,jk,ik->i", D, self.precision_, D)


def _coverage_and_error(y, mean, std, keep):
    r = np.abs(mean[keep] - y[keep])
    return float(np.mean(r <= pf.Z68 * std[keep])), float(np.median(r))


def inside_beyond(y, mean, std, beyond, n_boot=1000, random_state=0):
    """68% coverage and median |error| inside and beyond, and a bootstrap interval of the coverage difference."""
    out = {}
    for where, keep in (("inside", ~beyond), ("beyond", beyond)):
        out[f"coverage_68_{where}"], out[f"median_abs_error_{where}"] = (
            _coverage_and_error(y, mean, std, keep) if keep.sum() else (float("nan"), float("nan")))
    covered = np.abs(mean - y) <= pf.Z68 * std
    idx = np.random.default_rng(random_state).integers(0, y.size, (n_boot, y.size))
    b, c = beyond[idx], covered[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (np.sum(c & b, axis=1) / np.sum(b, axis=1)) - (np.sum(c & ~b, axis=1) / np.sum(~b, axis=1))
    point = out["coverage_68_beyond"] - out["coverage_68_inside"]
    lo, hi = np.nanquantile(diff, [0.025, 0.975]) if np.isfinite(diff).any() else (float("nan"),) * 2
    out["coverage_68_difference"] = [float(point), float(lo), float(hi)]
    return out


def _arguments(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a physics_family.py output folder (its JSON and predictions)")
    ap.add_argument("--n-jobs", type=int, default=None, help="workers of the simulation")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the coverage difference")
    ap.add_argument("--overwrite", action="store_true", help="replace this script's files of an earlier run")
    return ap.parse_args(argv)


def main(argv=None):
    args = _arguments(argv)
    from skcluster._paths import check_output_folder
    from skcluster.models import make_mass_pipeline

    run = Path(args.run)
    summary = json.loads((run / "physics_family.json").read_text())
    cfg, seed = summary["config"], summary["config"]["seed"]
    out = check_output_folder(run, FILES, overwrite=args.overwrite)
    command = "python benchmarks/feature_distance.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    with np.load(run / "predictions.npz") as p:
        preds = dict(p)
    one_form = any(k.startswith("one_") for k in preds)
    X, y = pf._fixed_mock(cfg["n_train"], pf.FIXED_TRAINING_SEED + seed, args.n_jobs)
    network = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["network"].items()}
    pre = make_mass_pipeline(**network)[:-1].fit(X, y)
    dist = MahalanobisDistance().fit(features(pre, X))
    t_sim = time.perf_counter() - t0
    rows = []
    for name, (what, make) in pf.held_out_mocks(cfg, seed, args.n_jobs, one_form).items():
        t = time.perf_counter()
        X, y = make()
        t_sim += time.perf_counter() - t
        if not np.array_equal(y, preds[f"{name}__y_true"]):
            raise RuntimeError(f"{name}: the simulated clusters are not the run's (another mock version or code); "
                               "rerun physics_family.py at this revision")
        d = dist(features(pre, X))
        beyond, groups = d > dist.beyond_, y < GROUP_LOG10_M_MAX
        row = {"test": name, "what": what, "n": int(y.size), "median_d2": float(np.median(d)),
               "share_beyond": float(beyond.mean()),
               "share_beyond_groups": float(beyond[groups].mean()) if groups.any() else float("nan")}
        for model in ("fixed", "marginalised"):
            row[model] = inside_beyond(y, preds[f"{name}__{model}__mean"], preds[f"{name}__{model}__std"], beyond,
                                       args.n_boot, seed)
        rows.append(row)
        print(f"[feature_distance] {name}: {row['share_beyond']:.2f} beyond", flush=True)
    result = provenance(command, {"run": str(run), "n_boot": args.n_boot, "beyond_quantile": BEYOND_QUANTILE,
                                  "n_features": int(dist.mean_.size)}, t0, t_sim)
    result.update(run_command=summary["command"], run_git=summary["git"], training_d2_beyond=dist.beyond_,
                  rows=rows)
    (out / "feature_distance.json").write_text(json.dumps(result, indent=1))
    lines = [f"Command: `{command}`", "", f"On the run of `{summary['command']}` (git {summary['git']}).", "",
             f"{result['header']}; {result['total_seconds']:.0f} s in all", "",
             f"Features ({dist.mean_.size}): the network's scalars (redshift, radial profile) and the log summed "
             "counts of each band of its input; squared Mahalanobis distance from the "
             f"{cfg['n_train']} training clusters of the fixed model; beyond: beyond their "
             f"{100 * BEYOND_QUANTILE:.0f}% point ({dist.beyond_:.1f}). Coverage and median |error| (dex) of "
             "the raw ensembles inside / beyond; the coverage difference beyond - inside with a 95% bootstrap "
             f"interval over clusters ({args.n_boot} resamples).", "",
             "| test mock | clusters | median d2 | share beyond | groups beyond | fixed cov68 in / beyond "
             "| fixed cov68 diff | marginalised cov68 in / beyond | marginalised cov68 diff "
             "| marginalised median abs error in / beyond |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f, m = r["fixed"], r["marginalised"]
        lines.append(f"| {r['test']} | {r['n']} | {r['median_d2']:.1f} | {r['share_beyond']:.2f} | "
                     f"{r['share_beyond_groups']:.2f} | {f['coverage_68_inside']:.2f} / {f['coverage_68_beyond']:.2f} "
                     f"| {interval(f['coverage_68_difference'])} | {m['coverage_68_inside']:.2f} / "
                     f"{m['coverage_68_beyond']:.2f} | {interval(m['coverage_68_difference'])} | "
                     f"{m['median_abs_error_inside']:.3f} / {m['median_abs_error_beyond']:.3f} |")
    (out / "feature_distance.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
