"""Speed and memory at catalogue scale: a thin command line around perf_harness.run_perf.

For N = 1e3, 1e4, 1e5 clusters: simulation clusters/s, binning events/s,
inference clusters/s of a 30-member ensemble of the standard network, peak
memory, n_jobs = 1 vs 2 as speed-up ratios; streaming prediction with a
5-member ensemble (time per 1000 clusters and peak memory) at every N; and
ensemble training n_jobs = 1 vs 2. See ``benchmarks/perf_harness.py`` for
what is measured and how. Needs psutil (``pip install -e ".[perf]"``).

Usage::

    nice python benchmarks/perf.py --overwrite           # full run (the README quotes its time)
    python benchmarks/perf.py --quick --overwrite        # small sizes

Writes ``<out>/perf.json`` and ``<out>/perf.md`` (default out:
benchmarks/results/perf) and prints the command that reproduces them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_harness import run_perf  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="catalogue sizes N (default 1e3 1e4 1e5)")
    ap.add_argument("--n-estimators", type=int, default=None, help="members of the inference ensemble (30)")
    ap.add_argument("--stream-estimators", type=int, default=None, help="members of the streamed ensemble (5)")
    ap.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2], help="parallel workers compared")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--kinds", nargs="+", default=None,
                    help="subset of simulate binning inference stream train (default: all)")
    ap.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "perf"))
    ap.add_argument("--overwrite", action="store_true", help="replace an existing perf.json / perf.md")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    command = "python benchmarks/perf.py " + " ".join(shlex.quote(a) for a in argv)
    res = run_perf(args.out, quick=args.quick, sizes=args.sizes, n_estimators=args.n_estimators,
                   n_jobs=tuple(args.n_jobs), verbose=0 if args.quiet else 1, overwrite=args.overwrite,
                   stream_estimators=args.stream_estimators, batch_size=args.batch_size, kinds=args.kinds,
                   command=command)
    print(res["table"])
    print(f"reproduce with: {command}")


if __name__ == "__main__":
    main()
