"""Ctrl-C at a random moment of each long command: exit 130, no output, no temporary file left.

For each command (train, demo, simulate, benchmark, predict) at a small size,
one uninterrupted reference run measures its duration T (and must succeed);
then ``--runs`` runs each get SIGINT (as a terminal's Ctrl-C sends) at a
uniformly random time in (0, T). Every interrupted run must exit with 130
and end stderr with one line (no traceback), leave no output and no temporary file
(``.<name>.skcluster-tmp-*``) beside it. A run that finished before its
signal arrived must have written its complete output. Two outcomes are
counted apart, as they come before any skcluster code runs: a signal while
``import skcluster`` runs (before the command line installs its handler)
kills the process by SIGINT (-2; shells report 130) after Python's
traceback, and one in the first milliseconds of interpreter start-up makes
Python exit 1.

Run from the repository root (PYTHONPATH pointing at it)::

    python benchmarks/sigint_check.py --runs 20 --work /tmp/sigint
    python benchmarks/sigint_check.py --runs 5 --commands train,predict

Writes a JSON summary (``--json``) and prints a table; exits 1 if any run
broke the rules.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def _skcluster():
    here = Path(sys.executable).parent / "skcluster"
    return [str(here)] if here.is_file() else [sys.executable, "-m", "skcluster.cli"]


def _commands(inputs):
    """name -> (argv with {out}, the output path relative to the run folder)."""
    return {
        "train": (["train", "--n-clusters", "60", "--n-estimators", "3", "--max-epochs", "15", "--npix", "16",
                   "--channels", "4", "--dense", "8", "--out", "{out}/m.skc"], "m.skc"),
        "demo": (["demo", "--n-clusters", "40", "--n-estimators", "2", "--max-epochs", "3", "--out", "{out}/demo"],
                 "demo"),
        "simulate": (["simulate", "--n-clusters", "40", "--out", "{out}/mock"], "mock"),
        "benchmark": (["benchmark", "--preset", "quick", "--n-clusters", "60", "--folds", "2", "--n-estimators",
                       "1", "--max-epochs", "2", "--out", "{out}/bench"], "bench"),
        "predict": (["predict", "--model", str(inputs / "m.skc"), "--catalog", str(inputs / "mock" / "catalog.fits"),
                     "--events", *sorted(str(p) for p in (inputs / "mock" / "events").glob("*.fits")),
                     "--exposure-seconds", "1000", "--prefix", "pred_", "--out", "{out}/masses.fits"], "masses.fits"),
    }


def _run(argv, folder, delay=None, env=None):
    folder.mkdir(parents=True, exist_ok=True)
    argv = [a.replace("{out}", str(folder)) for a in argv]
    t0 = time.perf_counter()
    proc = subprocess.Popen(_skcluster() + argv + ["--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=1800)
    return proc.returncode, time.perf_counter() - t0, out, err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--commands", default="train,demo,simulate,benchmark,predict")
    ap.add_argument("--work", default="sigint-check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="summary file (default: <work>/summary.json)")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(args.work).resolve()
    if work.exists():
        shutil.rmtree(work)
    inputs = work / "inputs"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    names = [c.strip() for c in args.commands.split(",") if c.strip()]
    if "predict" in names:  # a model and a mock with event files to predict on
        for cmd in (["train", "--n-clusters", "40", "--n-estimators", "1", "--max-epochs", "1", "--npix", "16",
                     "--channels", "4", "--dense", "8", "--bands", "krippendorf10", "--out", "{out}/m.skc"],
                    ["simulate", "--n-clusters", "40", "--seed", "1", "--out", "{out}/mock"]):
            code, _, _, err = _run(cmd, inputs, env=env)
            if code != 0:
                sys.exit(f"setting up the predict inputs failed: {err.strip()[-500:]}")
    commands = _commands(inputs)
    summary = {"runs": args.runs, "seed": args.seed, "commands": {}}
    bad = []
    for name in names:
        argv, output = commands[name]
        ref = work / name / "reference"
        code, t_ref, _, err = _run(argv, ref, env=env)
        if code != 0 or not (ref / output).exists():
            bad.append(f"{name}: the reference run failed ({code}): {err.strip()[-300:]}")
            continue
        results = []
        for i in range(args.runs):
            folder = work / name / f"run{i:02d}"
            delay = rng.uniform(0.0, t_ref)
            code, t, _, err = _run(argv, folder, delay=delay, env=env)
            left = sorted(p.name for p in folder.iterdir())
            lines = err.strip().splitlines()
            # once skcluster.cli.main runs, every KeyboardInterrupt becomes exit 130 and one line
            startup = bool(lines) and lines[-1] == "KeyboardInterrupt"
            if code == 0:
                verdict = "finished first" if left == [output] else f"BAD: finished but left {left}"
            elif code == 1 and startup and not left:
                # Python itself was still starting (site, encodings): it exits 1 before any skcluster code
                verdict = "interrupted during interpreter start-up (Python's exit 1)"
            elif code in (130, -signal.SIGINT):
                if left:
                    verdict = f"BAD: interrupted but left {left}"
                elif (code == 130 and lines[-1].endswith("interrupted; nothing was written")
                      and "Traceback" not in err):
                    verdict = "130"  # one line (after any warning lines the run printed before)
                elif code == 130:
                    verdict = "130, but with a traceback"
                else:
                    verdict = "killed by SIGINT during start-up (shell: 130)"
            else:
                verdict = f"BAD: exit {code}: {' | '.join(lines[-2:])}"
            if verdict.startswith("BAD") or "but with" in verdict:
                bad.append(f"{name} run {i} (SIGINT at {delay:.1f} s): {verdict}")
            results.append({"delay_s": round(delay, 2), "exit": code, "seconds": round(t, 1), "verdict": verdict,
                            "stderr_tail": lines[-3:]})
            print(f"{name:9s} run {i:2d}: SIGINT at {delay:6.1f} s of {t_ref:5.1f} s -> {verdict}", flush=True)
        counts = {}
        for r in results:
            counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
        summary["commands"][name] = {"reference_seconds": round(t_ref, 1), "counts": counts, "runs": results}
    summary["problems"] = bad
    out = Path(args.json) if args.json else work / "summary.json"
    out.write_text(json.dumps(summary, indent=1))
    print("\n| command | reference run | outcomes |\n|---|---|---|")
    for name, s in summary["commands"].items():
        print(f"| {name} | {s['reference_seconds']} s | "
              + ", ".join(f"{k}: {v}" for k, v in s["counts"].items()) + " |")
    for b in bad:
        print("PROBLEM:", b)
    print(f"summary in {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
