"""Accuracy per FLOP: the standard model against cheaper networks, member types and training levers.

Which network reaches today's accuracy with the least arithmetic and wall
time? Each configuration changes the standard model (the benchmark's
``ensemble_10band_masked_profile`` row: :func:`skcluster.models.make_mass_pipeline`
with the detected point sources masked, the radial profile beside z, 10
bands, 50 x 50 pixels) in one or a few settings (``CONFIGS``: width, depth,
input pixels, bands, Packed-Ensemble members, one-cycle learning rate, batch
size, float32 instead of the fast path, torch.compile), and all are trained and scored on
the same folds of the same mock:

1. The benchmark's mock and folds (:mod:`skcluster.benchmark`: the default
   eFEDS mock of ``--n-clusters`` clusters, seed ``--seed``, ``KFold`` with
   shuffling and the same seed); binning runs once per band set and pixel
   size.
2. Each configuration is trained on every fold's training clusters
   (``--members`` members, up to ``--max-epochs`` epochs, early stopping
   with ``--patience``) and predicts its test clusters.
3. For each: training FLOPs (:func:`skcluster.nn.training_flops` per cube
   times the cubes each network trained on, plus the validation forwards),
   fit wall time (after one untimed warm-up fit), cube-passes to early
   stopping (members x training clusters x epochs run), the ensemble's
   training FLOPs per cube (all members), cube-passes per second, scatter, bias, NLL, 68%
   and 95% coverage, the members' disagreement (mean epistemic std), and,
   against the standard model on the same clusters, the paired bootstrap
   ratio of scatters (:func:`skcluster.benchmark.paired_scatter_ratio`) and
   differences of NLL and coverage (``bench_model._paired_bootstrap``).

4. Off the training physics: the first fold's models also predict a fresh
   mock of ``--n-shifted`` clusters (seed 3000 + ``--seed``) from one of
   ``population_shift.py``'s shifted populations (``--shifted``, default
   the L_X-M normalisation 0.1 dex lower: fainter clusters at each mass):
   scatter, NLL, coverage, the mean total and epistemic std, and how much
   the epistemic std (the members' disagreement) grows over that on the
   fold's own test clusters, paired against the standard model there too.
   Diversity is what an ensemble is for: independent and packed members
   are compared on it.

Writes ``accuracy_per_flop.json``, ``accuracy_per_flop.md``,
``accuracy_per_flop.png`` (scatter against training FLOPs and against fit
wall time) and ``predictions.npz`` to ``--out`` (after each configuration)
and prints the table, headed by the CPU (lscpu's model name, AVX-512,
AVX512-BF16, AMX), the precision the standard model runs in on it, torch's
threads and the load average: timings are only comparable on an idle
machine, between rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import textwrap
import time
from dataclasses import asdict, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
from bench_model import _paired_bootstrap, cpu_info
from population_shift import MOCKS, simulate
from sklearn.base import clone
from sklearn.model_selection import KFold

from skcluster.benchmark import (
    BenchmarkConfig,
    BenchmarkRow,
    _cnn_pipeline,
    _Log,
    _simulate,
    paired_scatter_ratio,
)
from skcluster.metrics import gaussian_nll, interval_coverage, mass_bias, mass_scatter

HERE = Path(__file__).resolve().parent

#: The standard model's row (skcluster.benchmark's ensemble_10band_masked_profile) at the seed study's 50 pixels
#: per side: the package default before this sweep moved it to 32 (the ``npix_32`` configuration).
STANDARD = {"bands": "krippendorf10", "mask_point_sources": True, "profile": True}
STANDARD_NPIX = 50

#: One configuration each: settings that differ from the standard model. ``npix`` is the input's pixels per side
#: (the cut-out stays 20 arcmin); ``member="packed"`` trains a Packed-Ensemble of ``--members`` members
#: (PackedEnsembleRegressor, width factor ``alpha``) instead of independent members; ``fast=False`` is float32
#: without channels-last (the standard model takes bfloat16 autocast where the CPU has AVX512-BF16 or AMX).
CONFIGS = {
    "standard": {},
    "width_0.5": {"channels": (8, 16, 32), "dense": (32,)},
    "width_0.25": {"channels": (4, 8, 16), "dense": (16,)},
    "depth_2": {"channels": (16, 32)},
    "depth_4": {"channels": (16, 32, 64, 128)},
    "npix_32": {"npix": 32},
    "npix_24": {"npix": 24},
    "bands_1": {"bands": "broad"},
    "packed_alpha2": {"member": "packed", "alpha": 2.0},
    "packed_alpha3": {"member": "packed", "alpha": 3.0},
    # the same network as packed_alpha2 with its convolutions as grouped ones (the default on a CPU: member by member)
    "packed_alpha2_grouped": {"member": "packed", "alpha": 2.0, "conv_mode": "grouped"},
    "onecycle": {"lr_schedule": "onecycle"},
    "onecycle_lr3e-3": {"lr_schedule": "onecycle", "lr": 3e-3},
    "batch_64": {"batch_size": 64},
    "batch_128_lr2e-3": {"batch_size": 128, "lr": 2e-3},
    "float32": {"fast": False},
    # torch.compile (skorch's compile=True): the members train one by one (the stacked ensemble cannot hold a
    # compiled network); the compile time of every member and fold counts in the fit time
    "compile": {"compile": True},
    # candidates combining cheap settings
    "width_0.5_npix_32_bands_1": {"channels": (8, 16, 32), "dense": (32,), "npix": 32, "bands": "broad"},
    "width_0.5_onecycle_batch_64": {"channels": (8, 16, 32), "dense": (32,), "lr_schedule": "onecycle",
                                    "batch_size": 64},
    "width_0.5_npix_32": {"channels": (8, 16, 32), "dense": (32,), "npix": 32},
    # one-cycle over a fixed, shorter schedule: the rate anneals to its end, so early stopping rarely fires
    "onecycle_30": {"lr_schedule": "onecycle", "max_epochs": 30},
    "width_0.5_npix_32_onecycle_30": {"channels": (8, 16, 32), "dense": (32,), "npix": 32, "lr_schedule": "onecycle",
                                      "max_epochs": 30},
    "width_0.5_npix_24_onecycle_30": {"channels": (8, 16, 32), "dense": (32,), "npix": 24, "lr_schedule": "onecycle",
                                      "max_epochs": 30},
}

#: Configurations of a ``--quick`` run (a smoke test: seconds, meaningless numbers).
QUICK_CONFIGS = ("standard", "width_0.5", "npix_24", "bands_1", "packed_alpha2", "onecycle")

SIZES = {
    "quick": {"n_clusters": 40, "n_folds": 2, "members": 2, "max_epochs": 2, "patience": 2, "n_shifted": 20},
    # the training-budget study's scale (benchmarks/README.md): 2400 clusters, 3 folds; 5 members as the
    # standard preset
    "default": {"n_clusters": 2400, "n_folds": 3, "members": 5, "max_epochs": 80, "patience": 15,
                "n_shifted": 1000},
}

#: population_shift.py's shifted test populations, by name.
SHIFTED = {name: (desc, kw) for name, desc, kw in MOCKS if name != "reference"}

FILES = ("accuracy_per_flop.json", "accuracy_per_flop.md", "accuracy_per_flop.png", "predictions.npz")


def _log(msg):
    print(f"[accuracy_per_flop {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine():
    """The CPU (lscpu), the standard model's precision on it, torch's threads and the load average."""
    import torch

    from skcluster.models import fast_autocast

    cpu = cpu_info()
    f = cpu["flags"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    precision = fast_autocast("cpu") or "float32"
    text = (f"CPU: {cpu['model_name']} ({os.cpu_count()} logical CPUs; AVX2 {f['avx2']}, AVX-512 {f['avx512f']}, "
            f"AVX512-BF16 {f['avx512_bf16']}, AMX {f['amx_bf16'] or f['amx_tile']}); the standard model runs in "
            f"{precision} with channels-last here; torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"load average {load[0]:.2f} at the start")
    return {"cpu": cpu, "standard_precision": precision, "torch_threads": torch.get_num_threads(),
            "load_average_start": list(load), "text": text}


def build(name, changes, cfg, seed):
    """The configuration's (binner, model pipeline), split after the stateless binning as the benchmark does."""
    from skcluster.nn import PackedEnsembleRegressor

    changes = dict(changes)
    member, alpha = changes.pop("member", "independent"), changes.pop("alpha", 2.0)
    conv_mode = changes.pop("conv_mode", None)
    compiled = bool(changes.pop("compile", False))
    # the benchmark's own sizes (pixels per side, batch) are fields of its config, not pipeline settings
    cfg = replace(cfg, **{k: int(changes.pop(k, getattr(cfg, k))) for k in ("npix", "batch_size", "max_epochs",
                                                                              "patience")})
    row = BenchmarkRow(name, name, pipeline={**STANDARD, **changes})
    binner, pipe = _cnn_pipeline(cfg, row)
    if member == "packed":
        ens = pipe.named_steps["model"]
        packed = PackedEnsembleRegressor.from_regressor(ens.estimator, n_members=cfg.n_estimators, alpha=alpha)
        if conv_mode is not None:
            packed.set_params(module__conv_mode=conv_mode)
        pipe.set_params(model__estimator=packed, model__n_estimators=1)
    elif member != "independent":
        raise ValueError(f"configuration {name!r}: member must be 'independent' or 'packed', got {member!r}")
    if compiled:
        pipe.set_params(model__estimator__compile=True)
    return binner, pipe


def warm_up(X, y, cfg, seed):
    """One short fit of the standard model, not timed: torch's one-time start-up is no configuration's cost."""
    binner, pipe = build("standard", {}, replace(cfg, n_estimators=2, max_epochs=1), seed)
    n = min(len(y), 64)
    pipe.fit(binner.fit_transform(X[:n]).drop("events"), y[:n])


def _cubes(history, key):
    """Cubes of the first epoch's training or validation batches."""
    return sum(b.get(f"{key}_batch_size", 0) for b in history[0]["batches"])


def training_cost(ensemble):
    """Cube-passes (members x training cubes x epochs run) and FLOPs of the fitted ensemble's training."""
    from skcluster.nn import training_flops

    passes = flops = 0
    for est in ensemble.estimators_:
        f = training_flops(est)  # one network (a packed one holds all its members)
        n_train, n_valid = _cubes(est.history_, "train"), _cubes(est.history_, "valid")
        members = int(getattr(est.module_, "n_members", 1))
        passes += est.n_epochs_ * n_train * members
        flops += est.n_epochs_ * (n_train * f["training"] + n_valid * f["forward"])
    per_cube = [training_flops(est) for est in ensemble.estimators_]
    return {"cube_passes": int(passes), "training_flops": int(flops),
            # one cube through every network of the ensemble (all members)
            "flops_per_cube_training": sum(f["training"] for f in per_cube),
            "flops_per_cube_forward": sum(f["forward"] for f in per_cube),
            "epochs": [int(e.n_epochs_) for e in ensemble.estimators_],
            "best_epochs": [int(e.best_epoch_) for e in ensemble.estimators_]}


def scores(y, mean, std, epistemic):
    return {"scatter": mass_scatter(y, mean), "bias": mass_bias(y, mean), "nll": gaussian_nll(y, mean, std),
            "coverage_68": interval_coverage(y, mean, std, 0.68), "coverage_95": interval_coverage(y, mean, std, 0.95),
            "mean_std": float(np.mean(std)), "mean_epistemic_std": float(np.mean(epistemic))}


def against_standard(y, pred, ref, n_boot, seed):
    """Paired bootstrap on the same clusters: scatter ratio and NLL / coverage differences to the standard model."""
    boot = _paired_bootstrap(y, pred, ref, n_boot, seed)
    out = {"scatter_ratio": list(paired_scatter_ratio(y, pred[0], ref[0], n_boot=n_boot, random_state=seed))}
    for key in ("nll", "coverage_68", "coverage_95"):
        b = boot[key]
        out[f"{key}_difference"] = [b["difference"], *b["difference_95ci"]]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (seconds, meaningless numbers)")
    ap.add_argument("--configs", default=None, help=f"comma-separated subset of {', '.join(CONFIGS)} "
                    "(standard is always run first)")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=JSON",
                    help='an extra configuration, e.g. \'tiny={"channels": [4, 8], "npix": 24}\' (repeatable)')
    ap.add_argument("--n-clusters", type=int, default=None)
    ap.add_argument("--folds", type=int, default=None)
    ap.add_argument("--members", type=int, default=None)
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--shifted", default="lx_norm_-0.1dex", choices=[*SHIFTED, "none"],
                    help="population_shift.py's shifted mock the first fold's models also predict ('none': skip)")
    ap.add_argument("--n-shifted", type=int, default=None, help="clusters of the shifted mock (default 1000)")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of the paired intervals")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=None, help="workers of the simulation")
    ap.add_argument("--out", default=str(HERE / "results" / "accuracy_per_flop"))
    ap.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --out")
    ap.add_argument("--throughput", action="store_true",
                    help="time only: each configuration trains --epochs-timed epochs (no early stopping) on the "
                    "first fold's training clusters, --repeats times; with --passes-from, the speed-up to the "
                    "sweep's accuracy (an idle machine's minutes instead of hours)")
    ap.add_argument("--epochs-timed", type=int, default=3, help="epochs of each timed fit (--throughput)")
    ap.add_argument("--repeats", type=int, default=3, help="timed fits per configuration; the median counts")
    ap.add_argument("--passes-from", default=None, metavar="JSON",
                    help="a sweep's accuracy_per_flop.json: its cube-passes to early stopping per configuration")
    args = ap.parse_args(argv)

    size = dict(SIZES["quick" if args.quick else "default"])
    for key in ("n_clusters", "folds", "members", "max_epochs", "patience", "n_shifted"):
        if getattr(args, key) is not None:
            size["n_folds" if key == "folds" else key] = getattr(args, key)
    configs = dict(CONFIGS)
    for spec in args.config:
        name, sep, text = spec.partition("=")
        try:
            extra = json.loads(text) if sep else None
        except json.JSONDecodeError as exc:
            ap.error(f"--config {spec!r}: not NAME=JSON ({exc})")
        if not name or not isinstance(extra, dict):
            ap.error(f"--config {spec!r}: expected NAME=JSON with a JSON object of settings")
        configs[name] = {k: tuple(v) if isinstance(v, list) else v for k, v in extra.items()}
    names = list(QUICK_CONFIGS) if args.quick else list(CONFIGS)
    names += [spec.partition("=")[0] for spec in args.config]
    if args.configs:
        asked = [v.strip() for v in args.configs.split(",") if v.strip()]
        unknown = sorted(set(asked) - set(configs))
        if unknown:
            ap.error(f"--configs: unknown {unknown}; choose from {list(configs)}")
        names = asked + [spec.partition("=")[0] for spec in args.config]
    names = ["standard"] + [n for n in dict.fromkeys(names) if n != "standard"]

    from skcluster._paths import check_output_folder

    if args.throughput:
        return throughput(args, names, configs, size, ap)
    out = check_output_folder(args.out, FILES, overwrite=args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/accuracy_per_flop.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    host = machine()
    _log(host["text"])
    try:
        cfg = BenchmarkConfig(n_clusters=size["n_clusters"], n_folds=size["n_folds"], n_estimators=size["members"],
                              npix=STANDARD_NPIX, max_epochs=size["max_epochs"], patience=size["patience"], random_state=args.seed)
    except ValueError as exc:
        ap.error(str(exc))
    t0 = time.perf_counter()
    X, y, _, _ = _simulate(cfg, args.n_jobs, _Log(0))
    shifted = None
    if args.shifted != "none":
        if size["n_shifted"] < 2:
            ap.error("--n-shifted must be at least 2")
        Xs, ys, _ = simulate(SHIFTED[args.shifted][1], size["n_shifted"], 3000 + args.seed, args.n_jobs)
        shifted = {"name": args.shifted, "description": SHIFTED[args.shifted][0], "X": Xs, "y": ys}
    folds = list(KFold(cfg.n_folds, shuffle=True, random_state=cfg.random_state).split(y))
    fold_of = np.empty(len(y), dtype=np.int64)
    for k, (_, te) in enumerate(folds):
        fold_of[te] = k
    _log(f"{len(y)} clusters, {cfg.n_folds} folds, {cfg.n_estimators} members, <= {cfg.max_epochs} epochs, "
         f"patience {cfg.patience}; configurations {names}")

    rows, preds, binned = [], {}, {}
    warm_up(X, y, cfg, args.seed)
    for name in names:
        binner, pipe0 = build(name, configs[name], cfg, args.seed)
        key = repr(binner.get_params())
        if key not in binned:
            binned.clear()  # one band set and pixel size in memory at a time
            binned[key] = [binner.fit_transform(d).drop("events") for d in (X, *([shifted["X"]] if shifted else []))]
        Z, *Zs = binned[key]
        mean, std, epi = (np.full_like(y, np.nan) for _ in range(3))
        off = None
        cost = {"cube_passes": 0, "training_flops": 0, "epochs": [], "best_epochs": []}
        fit_s = predict_s = 0.0
        for tr, te in folds:
            pipe = clone(pipe0)
            t = time.perf_counter()
            pipe.fit(Z[tr], y[tr])
            fit_s += time.perf_counter() - t
            t = time.perf_counter()
            comp = pipe[-1].predict_components(pipe[:-1].transform(Z[te]))
            predict_s += time.perf_counter() - t
            mean[te], std[te], epi[te] = comp.mean, comp.std, comp.epistemic_std
            if Zs and off is None:  # the first fold's models off the training physics
                far = pipe[-1].predict_components(pipe[:-1].transform(Zs[0]))
                off = (far.mean, far.std, far.epistemic_std, float(np.mean(comp.epistemic_std)),
                       float(np.mean(comp.std)))
            c = training_cost(pipe.named_steps["model"])
            for k in ("cube_passes", "training_flops"):
                cost[k] += c[k]
            cost["epochs"] += c["epochs"]
            cost["best_epochs"] += c["best_epochs"]
            cost["flops_per_cube_training"], cost["flops_per_cube_forward"] = (c["flops_per_cube_training"],
                                                                                c["flops_per_cube_forward"])
        preds[name] = (mean, std, epi)
        if off is not None:
            preds[f"shifted__{name}"] = off[:3]
        row = {"config": name, "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in configs[name].items()},
               "input_shape": list(Z["images"].shape[1:]), "scalars": int(pipe.named_steps["model"].estimators_[0].n_scalars_),
               "fit_seconds": fit_s, "predict_seconds": predict_s,
               **cost, "cube_passes_per_second": cost["cube_passes"] / max(fit_s, 1e-9),
               "scores": scores(y, mean, std, epi)}
        if off is not None:
            row["shifted"] = {"mock": shifted["name"], "scores": scores(shifted["y"], *off[:3]),
                              "epistemic_growth": float(np.mean(off[2])) / max(off[3], 1e-12),
                              "std_growth": float(np.mean(off[1])) / max(off[4], 1e-12)}
        rows.append(row)
        _log(f"{name}: scatter {100 * row['scores']['scatter']:.1f}%, NLL {row['scores']['nll']:.3f}, "
             f"{row['training_flops'] / 1e12:.3g} TFLOP, {fit_s:.0f} s to train")
        _report(rows, preds, y, shifted, fold_of, host, cfg, args, command, t0, out)
    print((out / "accuracy_per_flop.md").read_text())
    return 0


THROUGHPUT_FILES = ("throughput.json", "throughput.md")


def throughput(args, names, configs, size, ap):
    """Training speed only: cube-passes per second of each configuration on the same clusters, timed fits.

    Every configuration's network (the ensemble, after the preprocessing steps, which run once) trains
    ``--epochs-timed`` epochs (early stopping off) on the first fold's training clusters, ``--repeats`` times
    after one untimed warm-up fit; the median fit time counts (it includes the validation forwards, as in the
    sweep); prediction is timed the same way on the same clusters. Cube-passes per second do not depend on what the clusters look
    like, so a sweep's cube-passes to early stopping (``--passes-from``, measured on any machine) divided by
    them gives each configuration's time to the sweep's accuracy on this machine, and the speed-up over the
    standard model.
    """
    from skcluster._paths import check_output_folder

    out = check_output_folder(args.out, THROUGHPUT_FILES, overwrite=args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/accuracy_per_flop.py " + shlex.join(sys.argv[1:])
    host = machine()
    _log(host["text"])
    if args.epochs_timed < 1 or args.repeats < 1:
        ap.error("--epochs-timed and --repeats must be at least 1")
    sweep = json.loads(Path(args.passes_from).read_text()) if args.passes_from else None
    passes = {r["config"]: r["cube_passes"] for r in sweep["rows"]} if sweep else {}
    cfg = BenchmarkConfig(n_clusters=size["n_clusters"], n_folds=size["n_folds"], n_estimators=size["members"],
                          npix=STANDARD_NPIX, max_epochs=args.epochs_timed, patience=args.epochs_timed + 1, random_state=args.seed)
    X, y, _, _ = _simulate(cfg, args.n_jobs, _Log(0))
    tr = next(iter(KFold(cfg.n_folds, shuffle=True, random_state=cfg.random_state).split(y)))[0]
    warm_up(X, y, cfg, args.seed)
    rows, binned = [], {}
    for name in names:
        binner, pipe0 = build(name, configs[name], cfg, args.seed)
        key = repr(binner.get_params())
        if key not in binned:
            binned.clear()
            binned[key] = binner.fit_transform(X[tr]).drop("events")
        # the network's input, prepared once: smoothing, scaling and the profile are not the network's cost
        Zt = clone(pipe0[:-1]).fit_transform(binned[key], y[tr])
        model0 = pipe0[-1]
        clone(model0).fit(Zt[:64], y[tr][:64])  # untimed: this configuration's one-time set-up (compile, kernels)
        times = []
        for _ in range(args.repeats):
            model = clone(model0)
            t = time.perf_counter()
            model.fit(Zt, y[tr])
            times.append(time.perf_counter() - t)
        cost = training_cost(model)
        fit_s = float(np.median(times))
        pred_s = []
        for _ in range(args.repeats):  # the fitted ensemble's mean and std of the same clusters, all members
            t = time.perf_counter()
            model.predict(Zt, return_std=True)
            pred_s.append(time.perf_counter() - t)
        row = {"config": name, "input_shape": list(binned[key]["images"].shape[1:]), "fit_seconds": times,
               "cube_passes": cost["cube_passes"], "cube_passes_per_second": cost["cube_passes"] / fit_s,
               "flops_per_cube_training": cost["flops_per_cube_training"], "predict_seconds": pred_s,
               "predict_clusters_per_second": len(tr) / float(np.median(pred_s))}
        rows.append(row)
        _log(f"{name}: {row['cube_passes_per_second']:.0f} cube-passes/s (fits {', '.join(f'{t:.1f}' for t in times)} "
             f"s), prediction {row['predict_clusters_per_second']:.0f} clusters/s")
    base = rows[0]["cube_passes_per_second"]
    lines = [f"Command: `{command}`", "", host["text"] + ".", "",
             (f"{len(tr)} training clusters (the first of {cfg.n_folds} folds of {cfg.n_clusters}), "
              f"{cfg.n_estimators} members, {args.epochs_timed} epochs per fit, median of {args.repeats} fits."
              + (f" Cube-passes to early stopping from `{args.passes_from}` (all folds)." if sweep else "")), "",
             "| config | input | ensemble MFLOP/cube | cube-passes/s | / standard | sweep cube-passes | "
             "time to the sweep's accuracy | speed-up over standard | prediction clusters/s | / standard |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    t_std = passes["standard"] / base if "standard" in passes else None
    for r in rows:
        r["throughput_ratio_to_standard"] = r["cube_passes_per_second"] / base
        n = passes.get(r["config"])
        if n is not None:
            r["sweep_cube_passes"] = n
            r["seconds_to_sweep_accuracy"] = n / r["cube_passes_per_second"]
            if t_std:
                r["speedup_to_sweep_accuracy"] = t_std / r["seconds_to_sweep_accuracy"]
        lines.append(f"| {r['config']} | {'x'.join(map(str, r['input_shape']))} | "
                     f"{r['flops_per_cube_training'] / 1e6:.1f} | {r['cube_passes_per_second']:.0f} | "
                     f"{r['throughput_ratio_to_standard']:.2f} | {n if n is not None else '-'} | "
                     + (f"{r['seconds_to_sweep_accuracy']:.0f} s | " if n is not None else "- | ")
                     + (f"{r['speedup_to_sweep_accuracy']:.2f}x |" if "speedup_to_sweep_accuracy" in r else "- |")
                     + f" {r['predict_clusters_per_second']:.0f} | "
                     f"{r['predict_clusters_per_second'] / rows[0]['predict_clusters_per_second']:.2f} |")
    (out / "throughput.json").write_text(json.dumps({"command": command, "machine": host, "rows": rows,
                                                      "load_average_end": list(os.getloadavg())},
                                                     indent=1, default=_plain))
    (out / "throughput.md").write_text("\n".join(lines) + "\n")
    print((out / "throughput.md").read_text())
    return 0


def _report(rows, preds, y, shifted, fold_of, host, cfg, args, command, t0, out):
    """Write the tables, JSON, predictions and figure of the configurations done so far."""
    ref = preds["standard"]
    base = rows[0]
    for r in rows:
        r["vs_standard"] = against_standard(y, preds[r["config"]][:2], ref[:2], args.n_boot, args.seed)
        if "shifted" in r:
            r["shifted"]["vs_standard"] = against_standard(shifted["y"], preds[f"shifted__{r['config']}"][:2],
                                                           preds["shifted__standard"][:2], args.n_boot, args.seed)
        r["fit_time_ratio_to_standard"] = r["fit_seconds"] / max(base["fit_seconds"], 1e-9)
        r["flops_ratio_to_standard"] = r["training_flops"] / max(base["training_flops"], 1)
    arrays = {f"{n}__{what}": p[i] for n, p in preds.items() for i, what in enumerate(("mean", "std", "epistemic"))}
    if shifted is not None:
        arrays["shifted__y_true"] = shifted["y"]
    np.savez_compressed(out / "predictions.npz", y_true=y, fold=fold_of, **arrays)
    summary = {"command": command, "machine": host, "config": {**asdict(cfg), "n_boot": args.n_boot},
               "total_seconds": time.perf_counter() - t0, "rows": rows}
    (out / "accuracy_per_flop.json").write_text(json.dumps(summary, indent=1, default=_plain))
    lines = [f"Command: `{command}`", "", host["text"] + ".", "",
             (f"{cfg.n_clusters} mock {cfg.survey} clusters, {cfg.n_folds} folds (KFold, seed {cfg.random_state}), "
             f"{cfg.n_estimators} members, <= {cfg.max_epochs} epochs, patience {cfg.patience}; paired bootstrap "
             f"({args.n_boot} resamples) against `standard` on the same clusters."), "",
             ("| config | input | ensemble MFLOP/cube | training TFLOP | / standard | fit time | / standard "
             "| cube-passes | cube-passes/s | epochs run | scatter | / standard [95%] | NLL | - standard [95%] "
             "| cov68 | cov95 | - standard 68% / 95% | epistemic std |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, v = r["scores"], r["vs_standard"]
        q, d, c68, c95 = v["scatter_ratio"], v["nll_difference"], v["coverage_68_difference"], v["coverage_95_difference"]
        lines.append(
            f"| {r['config']} | {'x'.join(map(str, r['input_shape']))} | {r['flops_per_cube_training'] / 1e6:.1f} | "
            f"{r['training_flops'] / 1e12:.3g} | {r['flops_ratio_to_standard']:.2f} | {r['fit_seconds']:.3g} s | "
            f"{r['fit_time_ratio_to_standard']:.2f} | {r['cube_passes']:.3g} | {r['cube_passes_per_second']:.0f} | "
            f"{min(r['epochs'])}-{max(r['epochs'])} | {100 * s['scatter']:.1f}% | "
            f"{q[0]:.3f} [{q[1]:.3f}, {q[2]:.3f}] | {s['nll']:.3f} | {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] | "
            f"{s['coverage_68']:.2f} | {s['coverage_95']:.2f} | {c68[0]:+.3f} / {c95[0]:+.3f} | "
            f"{s['mean_epistemic_std']:.3f} |")
    if shifted is not None:
        about = (f"Off the training physics: {len(shifted['y'])} clusters of `{shifted['name']}` "
                 f"({shifted['description']}; population_shift.py's mock, seed {3000 + args.seed}), predicted by "
                 "the first fold's models; growth: the mean std there over that on the fold's own test clusters.")
        head = ("| config | scatter | / standard [95%] | NLL | - standard [95%] | cov68 | cov95 | mean std "
                "| epistemic std | epistemic growth | std growth |")
        lines += ["", about, "", head, "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            sh = r["shifted"]
            sc, v = sh["scores"], sh["vs_standard"]
            q, d = v["scatter_ratio"], v["nll_difference"]
            lines.append(f"| {r['config']} | {100 * sc['scatter']:.1f}% | {q[0]:.3f} [{q[1]:.3f}, {q[2]:.3f}] | "
                         f"{sc['nll']:.3f} | {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] | {sc['coverage_68']:.2f} | "
                         f"{sc['coverage_95']:.2f} | {sc['mean_std']:.3f} | {sc['mean_epistemic_std']:.3f} | "
                         f"{sh['epistemic_growth']:.2f}x | {sh['std_growth']:.2f}x |")
    (out / "accuracy_per_flop.md").write_text("\n".join(lines) + "\n")
    _plot(rows, host, out / "accuracy_per_flop.png")


def _plain(v):
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _plot(rows, host, path):
    """Scatter (with its paired 95% interval scaled to the standard's scatter) against training FLOPs and wall time."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    base = rows[0]["scores"]["scatter"]
    for ax, key, label in ((axes[0], "training_flops", "training FLOPs (all folds)"),
                           (axes[1], "fit_seconds", "fit wall time, all folds (s)")):
        for i, r in enumerate(rows):
            q = r["vs_standard"]["scatter_ratio"]
            x, yv = r[key], 100 * r["scores"]["scatter"]
            err = [[100 * base * (q[0] - q[1])], [100 * base * (q[2] - q[0])]]
            ax.errorbar([x], [yv], yerr=err, fmt="*" if i == 0 else "o", ms=11 if i == 0 else 6,
                        color="k" if i == 0 else f"C{i % 10}", capsize=2)
            ax.annotate(r["config"], (x, yv), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label)
    axes[0].set_ylabel("scatter in ln M500, out of fold (%)")
    fig.suptitle(textwrap.fill(host["text"], 160), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
