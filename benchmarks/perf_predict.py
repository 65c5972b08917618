"""Streaming prediction of large mock catalogues: time per 1000 clusters and peak memory (issue 9).

1. Trains (or loads, ``--model``) the standard pipeline
   (:func:`skcluster.models.make_mass_pipeline`: bin -> resize -> smooth ->
   scale -> join -> a deep ensemble of ``--n-estimators`` CNNs of the
   package's default size) on a small mock survey.
2. For each N in ``--sizes``, in a fresh Python process (so that the peak
   memory of one run does not carry into the next), streams a new mock
   survey of N clusters tile by tile (:func:`skcluster.datasets.iter_survey`,
   so the event lists never all sit in memory) through
   :func:`skcluster.streaming.predict_stream` in batches of ``--batch-size``
   clusters, and records the wall time, the time spent predicting (binning,
   preprocessing, the ensemble) and producing the input (simulation), the
   peak resident memory of the process and its joblib workers (sampled every
   0.2 s), and the scatter of the predictions against the true masses.
3. With ``--unbatched N ...``: the obvious alternative for those N, in the
   same way: ``make_survey`` (every event list in memory) and one
   ``pipe.predict(X, return_std=True)`` (every image cube at once).

Usage::

    nice python benchmarks/perf_predict.py                       # N = 1e3, 1e4, 1e5; ~25 min on 2 cores
    python benchmarks/perf_predict.py --sizes 1000 --unbatched 1000 --train-clusters 300 --max-epochs 2

Writes ``<out>/perf_predict.json`` and ``.md`` (default out:
benchmarks/results/perf_predict) and prints the command that reproduces them.
The machine may be shared: the load average is recorded with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

_CHILD = r"""
import json, os, sys, time
import numpy as np
sys.path.insert(0, {bench!r})
from validate_mock import PeakRSS
from skcluster import persist
from skcluster.datasets import iter_survey, make_survey
from skcluster.metrics import mass_scatter
from skcluster.streaming import predict_stream

n, n_jobs, seed, batch, unbatched = {n}, {n_jobs}, {seed}, {batch}, {unbatched}
pipe = persist.load({model!r})
load0 = os.getloadavg()[0]
sim = [0.0]

def tiles():
    it = iter_survey("efeds", n_clusters=n, random_state=seed, n_jobs=n_jobs, verbose=False)
    while True:
        t = time.perf_counter()
        try:
            b = next(it)
        except StopIteration:
            return
        sim[0] += time.perf_counter() - t
        yield b.X.assign(y=b.y)

t0 = time.perf_counter()
with PeakRSS() as mem:
    if unbatched:
        data = make_survey("efeds", n_clusters=n, random_state=seed, n_jobs=n_jobs, verbose=False)
        sim[0] = time.perf_counter() - t0
        t1 = time.perf_counter()
        mean, std = pipe.predict(data.X, return_std=True)
        pred_s = time.perf_counter() - t1
        y, n_batches = data.y, 1
    else:
        res = predict_stream(pipe, tiles(), batch_size=batch, keep=("y",), total=n, verbose=False)
        mean, std, y, pred_s, n_batches = res.mean, res.std, res.columns["y"], res.predict_seconds, res.n_batches
dt = time.perf_counter() - t0
assert len(mean) == n and np.all(np.isfinite(mean)) and np.all(std > 0)
print("RESULT " + json.dumps(dict(
    n_clusters=int(n), mode="unbatched" if unbatched else "stream", batch_size=None if unbatched else batch,
    n_batches=int(n_batches), n_jobs=n_jobs, seconds=dt, predict_seconds=pred_s, simulate_seconds=sim[0],
    predict_s_per_1000=1000 * pred_s / n, total_s_per_1000=1000 * dt / n,
    simulate_s_per_1000=1000 * sim[0] / n, peak_rss_GB=mem.peak / 1e9,
    scatter=mass_scatter(y, mean), mean_std_dex=float(np.mean(std)),
    load_before=load0, load_after=os.getloadavg()[0])))
"""


def train_model(path, n_clusters, n_estimators, max_epochs, seed, n_jobs):
    from skcluster import persist
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline

    t0 = time.perf_counter()
    data = make_survey("efeds", n_clusters=n_clusters, random_state=seed, n_jobs=n_jobs, verbose=True)
    pipe = make_mass_pipeline(n_estimators=n_estimators, max_epochs=max_epochs, random_state=seed,
                              verbose=1)
    pipe.fit(data.X, data.y)
    persist.save(pipe, path, overwrite=True)
    return {"train_clusters": n_clusters, "n_estimators": n_estimators, "max_epochs": max_epochs,
            "epochs_run": [int(m.n_epochs_) for m in pipe["model"].estimators_],
            "train_seconds": time.perf_counter() - t0}


def run_one(model, n, n_jobs, seed, batch, unbatched):
    bench = str(Path(__file__).resolve().parent)
    code = _CHILD.format(bench=bench, model=str(model), n=n, n_jobs=n_jobs, seed=seed, batch=batch,
                         unbatched=int(unbatched))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"run N={n} ({'unbatched' if unbatched else 'stream'}) failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--unbatched", type=int, nargs="*", default=[], metavar="N",
                    help="also run the unbatched alternative for these N (make_survey + one predict)")
    ap.add_argument("--model", help="use this saved model instead of training one")
    ap.add_argument("--train-clusters", type=int, default=1000)
    ap.add_argument("--n-estimators", type=int, default=5)
    ap.add_argument("--max-epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--n-jobs", type=int, default=2, help="simulation workers")
    ap.add_argument("--seed", type=int, default=0, help="seed of the training mock; the catalogues use seed + 1")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "perf_predict"))
    args = ap.parse_args(argv)
    command = "python benchmarks/perf_predict.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    training = None
    if args.model:
        model = Path(args.model)
    else:
        model = out / "model.skc"
        training = train_model(model, args.train_clusters, args.n_estimators, args.max_epochs, args.seed,
                               args.n_jobs)
        print(f"trained {args.n_estimators} members in {training['train_seconds']:.0f} s -> {model}", flush=True)
    rows = []
    plan = [(n, False) for n in args.sizes] + [(n, True) for n in args.unbatched]
    for n, unbatched in plan:
        r = run_one(model, n, args.n_jobs, args.seed + 1, args.batch_size, unbatched)
        rows.append(r)
        print(f"N={n:>7} {r['mode']:>9}: {r['seconds']:7.1f} s (predict {r['predict_seconds']:.1f} s = "
              f"{r['predict_s_per_1000']:.2f} s per 1000; simulate {r['simulate_seconds']:.1f} s), peak RSS "
              f"{r['peak_rss_GB']:.2f} GB, scatter {100 * r['scatter']:.1f}% "
              f"(load {r['load_before']:.1f} -> {r['load_after']:.1f})", flush=True)
    from skcluster import persist

    pipe = persist.load(model)
    n_bands = len(pipe["bin"].bands_keV_)
    npix = int(pipe["bin"].npix)
    result = {"command": command, "cpu_count": os.cpu_count(), "model": str(model), "training": training,
              "n_estimators": len(pipe["model"].estimators_), "n_bands": n_bands, "npix": npix,
              "runs": rows}
    (out / "perf_predict.json").write_text(json.dumps(result, indent=1))
    cube_gb = 4 * n_bands * npix * npix / 1e9
    md = ["# Streaming prediction: time per 1000 clusters and peak memory", "",
          f"Command: `{command}` ({os.cpu_count()} CPUs; fresh process per run). Model: "
          f"{result['n_estimators']}-member CNN ensemble (make_mass_pipeline defaults, {n_bands} bands, "
          f"{npix} x {npix} pixels). Catalogues: iter_survey('efeds', n_clusters=N, random_state="
          f"{args.seed + 1}) with n_jobs={args.n_jobs} simulation workers, streamed in batches of "
          f"{args.batch_size}; 'unbatched' is make_survey + one pipe.predict on everything. "
          f"Predict = binning + preprocessing + ensemble; simulate = producing the input. One network-input "
          f"cube is {1000 * cube_gb:.2f} GB per 1000 clusters (float32).", "",
          "| N | mode | total (s) | predict (s) | predict s / 1000 | simulate s / 1000 | total s / 1000 | "
          "peak RSS (GB) | scatter | load avg before/after |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['n_clusters']} | {r['mode']} | {r['seconds']:.0f} | {r['predict_seconds']:.0f} | "
                  f"{r['predict_s_per_1000']:.2f} | {r['simulate_s_per_1000']:.2f} | {r['total_s_per_1000']:.2f} | "
                  f"{r['peak_rss_GB']:.2f} | {100 * r['scatter']:.1f}% | "
                  f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
    (out / "perf_predict.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"reproduce with: {command}")


if __name__ == "__main__":
    main()
