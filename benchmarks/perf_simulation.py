"""Speed and memory of the mock-survey simulation, serial and parallel (issues 3 and 9).

For each number of clusters N and each n_jobs, runs ``make_survey(n_clusters=N,
n_jobs=...)`` in a fresh Python process (so worker start-up and imports are
counted, and memory is not shared between runs) and records the wall time,
clusters per second and the peak resident memory of the process and its
joblib workers. With ``--stream``, ``iter_survey`` is used instead and each
tile's events are dropped after counting (bounded memory, for N ~ 10^5).

Usage::

    python benchmarks/perf_simulation.py                       # N = 1000, 8000; n_jobs = 1, 2
    python benchmarks/perf_simulation.py --sizes 100000 --n-jobs 2 --stream

Writes ``<out>/perf_simulation.json`` and ``.md`` (default out:
benchmarks/results/mock). The machine these numbers come from may be shared
with other work: the load average is recorded with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {bench!r})
from validate_mock import PeakRSS
from skcluster.datasets import iter_survey, make_survey
n, n_jobs, stream, seed = {n}, {n_jobs}, {stream}, {seed}
load0 = os.getloadavg()[0]
t0 = time.perf_counter()
with PeakRSS() as mem:
    if stream:
        got = photons = 0
        for piece in iter_survey(n_clusters=n, random_state=seed, n_jobs=n_jobs, verbose=False):
            got += len(piece.y)
            photons += sum(len(e) for e in piece.X["events"])
        area = None
    else:
        data = make_survey(n_clusters=n, random_state=seed, n_jobs=n_jobs, verbose=False)
        got, area = len(data.y), data.area_deg2
        photons = sum(len(e) for e in data.X["events"])
dt = time.perf_counter() - t0
print("RESULT " + json.dumps(dict(n_clusters=got, n_jobs=n_jobs, stream=bool(stream), seconds=dt,
      clusters_per_s=got / dt, peak_rss_GB=mem.peak / 1e9, photons=photons, area_deg2=area,
      load_before=load0, load_after=os.getloadavg()[0])))
"""


def run_one(n, n_jobs, stream, seed):
    bench = str(Path(__file__).resolve().parent)
    code = _CHILD.format(bench=bench, n=n, n_jobs=n_jobs, stream=int(stream), seed=seed)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark run N={n} n_jobs={n_jobs} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 8000])
    ap.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--stream", action="store_true", help="use iter_survey and drop events (bounded memory)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "mock"))
    args = ap.parse_args(argv)
    command = "python benchmarks/perf_simulation.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        for nj in args.n_jobs:
            r = run_one(n, nj, args.stream, args.seed)
            rows.append(r)
            print(f"N={n:>7} n_jobs={nj}: {r['seconds']:7.1f} s, {r['clusters_per_s']:6.1f} clusters/s, "
                  f"peak RSS {r['peak_rss_GB']:.2f} GB (load {r['load_before']:.1f} -> {r['load_after']:.1f})",
                  flush=True)
    speedups = {}
    for n in args.sizes:
        t = {r["n_jobs"]: r["seconds"] for r in rows if r["n_clusters"] == n}
        if 1 in t and len(t) > 1:
            speedups[n] = {nj: t[1] / tt for nj, tt in t.items() if nj != 1}
    result = {"command": command, "cpu_count": os.cpu_count(), "runs": rows, "speedup_vs_serial": speedups}
    name = "perf_simulation_stream" if args.stream else "perf_simulation"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    md = [f"# Mock-survey simulation speed ({'iter_survey, events dropped' if args.stream else 'make_survey'})",
          "", f"Command: `{command}` ({os.cpu_count()} CPUs; fresh process per run)", "",
          "| clusters | n_jobs | seconds | clusters/s | peak RSS (GB) | speed-up vs n_jobs=1 | load avg before/after |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        sp = speedups.get(r["n_clusters"], {}).get(r["n_jobs"])
        md.append(f"| {r['n_clusters']} | {r['n_jobs']} | {r['seconds']:.1f} | {r['clusters_per_s']:.1f} | "
                  f"{r['peak_rss_GB']:.2f} | {'' if sp is None else f'{sp:.2f}'} | "
                  f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"reproduce with: {command}")


if __name__ == "__main__":
    main()
