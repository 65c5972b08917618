"""Where a model gains on the count rate: scatter per bin of true mass, from saved predictions.

Reads the ``predictions.npz`` of ``learning_curve.py`` or
``training_levers.py`` (``y_true``, ``count_rate`` and one array per model,
all on the same test clusters), or of ``skcluster benchmark`` (one
``{row}__mean`` per row, out of fold), and prints, for every model and bin of true
log10 M500c/Msun, its scatter, the count rate's, and the paired bootstrap
ratio of the two (:func:`skcluster.benchmark.paired_scatter_ratio`).

    python benchmarks/mass_bins.py benchmarks/results/training_levers/predictions.npz
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from skcluster.benchmark import paired_scatter_ratio
from skcluster.metrics import mass_scatter

#: Bin edges in log10 M500c/Msun: the detection limit's neighbourhood split finely, the massive end coarsely.
EDGES = (-np.inf, 13.6, 13.9, 14.2, 14.5, np.inf)


def bin_label(lo, hi):
    """A bin of true log10 M500c as the tables print it: "< hi", "lo-hi" or ">= lo" (open ends infinite)."""
    return f"< {hi:g}" if not np.isfinite(lo) else (f">= {lo:g}" if not np.isfinite(hi) else f"{lo:g}-{hi:g}")


def mass_bin_table(y, predictions, reference="count_rate", edges=EDGES, seed=0):
    """Rows (model, bin label, n, scatter, reference scatter, ratio, lo, hi) for every model but ``reference``."""
    rows = []
    for name, pred in predictions.items():
        if name == reference:
            continue
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (y >= lo) & (y < hi)
            if sel.sum() < 2:
                continue
            label = bin_label(lo, hi)
            ratio = paired_scatter_ratio(y[sel], pred[sel], predictions[reference][sel], random_state=seed)
            rows.append((name, label, int(sel.sum()), mass_scatter(y[sel], pred[sel]),
                         mass_scatter(y[sel], predictions[reference][sel]), *ratio))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("predictions", help="a predictions.npz with y_true, count_rate and the models")
    args = ap.parse_args(argv)
    with np.load(args.predictions) as f:
        y = f["y_true"]
        preds = {k: f[k] for k in f.files if k not in ("y_true", "bright")}
        if "count_rate__mean" in preds:  # skcluster benchmark: {row}__mean, {row}__std, z, high_likelihood
            preds = {k[: -len("__mean")]: v for k, v in preds.items() if k.endswith("__mean")}
    if "count_rate" not in preds:
        ap.error(f"{args.predictions} has no count_rate predictions to compare with")
    print("| model | true log10 M500 | clusters | scatter | count rate | / count rate [95%] |")
    print("|---|---|---|---|---|---|")
    for name, label, n, s, r, ratio, lo, hi in mass_bin_table(y, preds):
        print(f"| {name} | {label} | {n} | {100 * s:.1f}% | {100 * r:.1f}% | {ratio:.3f} [{lo:.3f}, {hi:.3f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
