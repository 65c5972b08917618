"""Paired scatter ratio of two benchmark runs on the same test clusters.

``depth_transfer.py`` and ``population_shift.py`` save every model's
predictions as ``predictions.npz`` with keys ``{group}__{model}__mean`` and
``{group}__y_true`` (a group is a test depth or a test population). Two runs
with the same test seeds score the same clusters, so their models can be
compared cluster by cluster:

    python benchmarks/paired_ratio.py NEW/predictions.npz OLD/predictions.npz \\
        --model ensemble [--against single_depth]

prints, per group, the scatter of ``--model`` in the first file over that of
``--against`` (default: the same model) in the second, with a paired
bootstrap 95% interval (:func:`skcluster.benchmark.paired_scatter_ratio`).
It refuses files whose test clusters differ.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from skcluster.benchmark import paired_scatter_ratio
from skcluster.metrics import mass_scatter


def paired_ratios(new, old, model, against=None, random_state=0):
    """{group: (scatter_new, scatter_old, ratio, low, high)} over the groups both files hold."""
    against = against or model
    groups = sorted(k[: -len("__y_true")] for k in new.files if k.endswith("__y_true"))
    out = {}
    for g in groups:
        a, b = f"{g}__{model}__mean", f"{g}__{against}__mean"
        if a not in new.files or b not in old.files or f"{g}__y_true" not in old.files:
            continue
        y = new[f"{g}__y_true"]
        if y.shape != old[f"{g}__y_true"].shape or not np.allclose(y, old[f"{g}__y_true"], rtol=0, atol=1e-9):
            raise ValueError(f"group {g!r}: the two files score different clusters (y_true differs); "
                             "a paired ratio needs the same test clusters")
        ratio = paired_scatter_ratio(y, new[a], old[b], random_state=random_state)
        out[g] = (mass_scatter(y, new[a]), mass_scatter(y, old[b]), *ratio)
    if not out:
        raise ValueError(f"no group holds {model!r} in the first file and {against!r} in the second")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("new")
    ap.add_argument("old")
    ap.add_argument("--model", required=True, help="model name in the first file (e.g. ensemble)")
    ap.add_argument("--against", default=None, help="model name in the second file (default: --model)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = ap.parse_args(argv)
    with np.load(args.new) as new, np.load(args.old) as old:
        rows = paired_ratios(new, old, args.model, args.against, random_state=args.seed)
    print(f"| group | {args.model} (first) | {args.against or args.model} (second) | ratio [95%, paired] |")
    print("|---|---|---|---|")
    for g, (s1, s2, r, lo, hi) in rows.items():
        print(f"| {g} | {100 * s1:.1f}% | {100 * s2:.1f}% | {r:.3f} [{lo:.3f}, {hi:.3f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
