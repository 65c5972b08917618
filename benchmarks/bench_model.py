"""Speed of the CNN regressor and the deep ensemble .

Three measurements, each against its obvious alternative in the same process:

1. ``speed``: training and inference images/s of ``CNNRegressor`` with the
   default ``ClusterCNN`` on 10 x 50 x 50 cubes plus one scalar (the seed
   study's input), float32 channels-first against channels_last + bfloat16
   autocast. Target on the development CPU (AMX): >= 2x.
2. ``overhead``: ``CNNRegressor.fit`` against a plain torch loop over the
   same module class, data, batch size, optimizer, loss and shuffling
   (augmentation, validation split and early stopping off in both, so both
   do the same arithmetic). Target: skorch's overhead < 15%.
3. ``ensemble``: ``DeepEnsembleRegressor`` training with n_jobs=2 (loky, one
   torch thread per worker) against n_jobs=1 (all torch threads in one
   process), for the benchmark network and for a tiny one. Reported cold
   (fresh worker processes, as a user's first fit) and warm (workers
   reused).

4. ``--vectorised`` (on its own): the vectorised deep ensemble
   (``DeepEnsembleRegressor(vectorize=...)``) against training member by
   member: members per second at M = 5, 10 and 30 for the standard member on
   10 x 50 x 50 cubes (fixed epochs, no early stopping, so both do the same
   work), in float32 and, where the CPU has avx512_bf16 or AMX, bfloat16;
   sweeps of batch size, torch threads, channels_last and the convolution
   mode; prediction throughput of one stacked forward against the member
   loop. Prints lscpu's model name and flags.
5. ``--accuracy`` (on its own): vectorised against member-by-member
   10-member ensembles of the standard pipeline on the same folds of a mock
   survey, with scatter, NLL and coverage and a paired bootstrap over
   clusters.

Writes ``bench_model.json`` and ``bench_model.md`` to ``--out`` and prints
the command that reproduces them. Run it on a quiet machine (``nice`` it if
others are working): timings on a shared CPU are provisional.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from skcluster.ensemble import DeepEnsembleRegressor
from skcluster.nn import ClusterCNN, CNNRegressor, GaussianNLLLoss, make_toy_sample

HERE = Path(__file__).resolve().parent


def _net(**kw):
    params = dict(
        batch_size=64, lr=1e-3, random_state=0, augment=False, train_split=None,
        early_stopping=False, input_scaling="log1p", verbose=0,
    )
    params.update(kw)
    return CNNRegressor(**params)


def _interleaved(fns, repeats):
    """Best wall time of each function, the calls interleaved (A B A B ...).

    Interleaving gives every contender the same share of whatever else the
    machine is doing; the minimum is the least disturbed run.
    """
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(t) for name, t in times.items()}, times


def bench_speed(X, y, epochs, repeats, n_predict):
    Xp = X[np.arange(n_predict) % len(X)]
    configs = {
        "float32": {},
        "channels_last+bfloat16": dict(channels_last=True, autocast="bfloat16"),
    }
    nets = {}
    for name, kw in configs.items():
        net = _net(max_epochs=1, **kw).fit(X, y)  # warm-up (oneDNN kernels, allocator)
        net.set_params(max_epochs=epochs)
        net.predict(Xp[:256])
        nets[name] = net
    t_fit, fits = _interleaved({k: (lambda n=n: n.fit(X, y)) for k, n in nets.items()}, repeats)
    t_pred, preds = _interleaved({k: (lambda n=n: n.predict(Xp)) for k, n in nets.items()}, repeats)
    out = {
        name: {
            "train_images_per_s": len(X) * epochs / t_fit[name],
            "infer_images_per_s": len(Xp) / t_pred[name],
            "fit_seconds": fits[name],
            "predict_seconds": preds[name],
        }
        for name in nets
    }
    f, b = out["float32"], out["channels_last+bfloat16"]
    out["train_speedup"] = b["train_images_per_s"] / f["train_images_per_s"]
    out["infer_speedup"] = b["infer_images_per_s"] / f["infer_images_per_s"]
    return out


def _plain_torch_fit(X, y, epochs, batch_size, seed):
    """The loop CNNRegressor runs, written directly in torch."""
    images = torch.from_numpy(X["images"])
    scalars = torch.from_numpy(X["scalars"])
    y_mean, y_scale = float(np.mean(y)), float(np.std(y))
    target = torch.from_numpy(((y - y_mean) / y_scale).astype(np.float32)[:, None])
    torch.manual_seed(seed)
    module = ClusterCNN(n_bands=images.shape[1], image_size=tuple(images.shape[2:]), n_scalars=scalars.shape[1])
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss_fn = GaussianNLLLoss()
    gen = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), batch_size):
            idx = perm[start : start + batch_size]
            xb = torch.log1p(images[idx])
            mean, var = module(xb, scalars[idx])
            loss = loss_fn(mean, var, target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return module


def bench_overhead(X, y, epochs, repeats):
    net = _net(max_epochs=1).fit(X, y)
    _plain_torch_fit(X, y, 1, 64, 0)
    net.set_params(max_epochs=epochs)
    best, every = _interleaved(
        {"skorch": lambda: net.fit(X, y), "plain": lambda: _plain_torch_fit(X, y, epochs, 64, 0)}, repeats
    )
    return {
        "skorch_seconds": best["skorch"],
        "plain_torch_seconds": best["plain"],
        "overhead": best["skorch"] / best["plain"] - 1.0,
        "skorch_all": every["skorch"],
        "plain_all": every["plain"],
    }


#: Members compared in the ensemble part: the benchmark network on the seed
#: study's input, and the tiny network of the tests (where torch's own
#: threads have little to split).
ENSEMBLE_MEMBERS = {
    "cnn_10x50x50": dict(n_bands=None, image_size=None, module__channels=(8, 16, 32), module__dense=(32,)),
    "tiny_2x16x16": dict(n_bands=2, image_size=16, module__channels=(4, 8), module__dense=(16,)),
}


def bench_ensemble(X, y, n_members, epochs, repeats):
    from joblib.externals.loky import get_reusable_executor

    res = {"n_members": n_members, "epochs": epochs, "n_train": len(X)}
    get_reusable_executor().shutdown(wait=True)  # cold start: no worker processes yet
    for label, spec in ENSEMBLE_MEMBERS.items():
        spec = dict(spec)
        n_bands, size = spec.pop("n_bands"), spec.pop("image_size")
        Xm, ym = (X, y) if n_bands is None else make_toy_sample(len(X), n_bands=n_bands, image_size=size, random_state=0)
        member = _net(max_epochs=epochs, **spec)
        out = {}

        def fit(n_jobs, threads=None, key=None, member=member, Xm=Xm, ym=ym, out=out):
            ens = DeepEnsembleRegressor(
                member, n_estimators=n_members, n_jobs=n_jobs, random_state=0, torch_threads=threads
            ).fit(Xm, ym)
            if key is not None:
                out.setdefault(key + "_member_seconds", []).append(float(np.mean(ens.fit_seconds_)))
            return ens

        if not res.get("cold_measured"):
            t0 = time.perf_counter()
            fit(2)
            out["n_jobs2_cold_seconds"] = time.perf_counter() - t0
            res["cold_measured"] = label
        fit(1)  # warm-up of this network's kernels in this process
        best, every = _interleaved(
            {
                "n_jobs1": lambda: fit(1, key="n_jobs1"),
                "n_jobs2": lambda: fit(2, key="n_jobs2"),
                "n_jobs1_1thread": lambda: fit(1, 1, key="n_jobs1_1thread"),
            },
            repeats,
        )
        out.update(
            n_jobs1_seconds=best["n_jobs1"],
            n_jobs2_warm_seconds=best["n_jobs2"],
            n_jobs1_1thread_seconds=best["n_jobs1_1thread"],
            all_seconds=every,
            speedup_warm=best["n_jobs1"] / best["n_jobs2"],
        )
        if "n_jobs2_cold_seconds" in out:
            out["speedup_cold"] = best["n_jobs1"] / out["n_jobs2_cold_seconds"]
        res[label] = out
    return res


def _markdown(r):
    cfg, m = r["config"], r["machine"]
    lines = [
        "# bench_model",
        "",
        f"{m['cpus']} CPUs, torch {m['torch']}, {m['processor'] or m['machine']}; 1-min load average "
        f"before/after each section: {m['loadavg_1min_per_section']} (this run itself adds up to "
        f"{m['cpus']}). " + ("**Provisional: the machine was shared while this ran.**" if m["shared"] else ""),
        "",
        f"Inputs: {cfg['n_train']} cubes of {cfg['n_bands']} x {cfg['image_size']} x {cfg['image_size']} + 1 scalar, "
        f"default ClusterCNN, batch 64, {cfg['epochs']} epochs, {cfg['torch_threads']} torch thread(s); "
        f"best of {cfg['repeats']} interleaved runs.",
        "",
    ]
    if "speed" in r:
        s = r["speed"]
        f, b = s["float32"], s["channels_last+bfloat16"]
        lines += [
            "| | float32 | channels_last + bfloat16 | ratio | target |",
            "|---|---:|---:|---:|---|",
            f"| training images/s | {f['train_images_per_s']:.0f} | {b['train_images_per_s']:.0f} | {s['train_speedup']:.2f}x | >= 2x |",
            f"| inference images/s | {f['infer_images_per_s']:.0f} | {b['infer_images_per_s']:.0f} | {s['infer_speedup']:.2f}x | >= 2x |",
            "",
            f"(`{s.get('command', r['command']).strip()}`)",
            "",
        ]
    if "overhead" in r:
        o = r["overhead"]
        lines += [
            "| training, float32 | seconds | |",
            "|---|---:|---|",
            f"| plain torch loop | {o['plain_torch_seconds']:.2f} | |",
            f"| CNNRegressor (skorch) | {o['skorch_seconds']:.2f} | overhead {100 * o['overhead']:+.1f}% (target < 15%) |",
            "",
            f"(`{o.get('command', r['command']).strip()}`)",
            "",
        ]
    if "ensemble" in r:
        e = r["ensemble"]
        lines += [
            f"Ensemble training: {e['n_members']} members, {e['epochs']} epochs, {e['n_train']} clusters, "
            "loky workers; seconds (best of the interleaved runs), speed-up against n_jobs=1, and the "
            "mean training time of one member in each mode.",
            "",
            "| member | n_jobs=1, all threads | n_jobs=1, 1 thread | n_jobs=2, warm | n_jobs=2, cold | "
            "speed-up n_jobs=2 (warm) | s per member: 1 / 1 thread / 2 |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for label in ENSEMBLE_MEMBERS:
            if label not in e:
                continue
            x = e[label]
            per = " / ".join(
                f"{min(x[k + '_member_seconds']):.2f}" for k in ("n_jobs1", "n_jobs1_1thread", "n_jobs2")
            )
            cold = f"{x['n_jobs2_cold_seconds']:.2f}" if "n_jobs2_cold_seconds" in x else "-"
            lines.append(
                f"| {label} | {x['n_jobs1_seconds']:.2f} | {x['n_jobs1_1thread_seconds']:.2f} | "
                f"{x['n_jobs2_warm_seconds']:.2f} | {cold} | {x['speedup_warm']:.2f}x | {per} |"
            )
        lines += ["", f"(`{e.get('command', r['command']).strip()}`)", ""]
    lines += ["Reproduce everything: `python benchmarks/bench_model.py`", ""]
    return "\n".join(lines)


# ------------------------------------------------------------- vectorised ensemble
def cpu_info():
    """lscpu's model name and the instruction-set flags that decide float32/bfloat16 speed."""
    import subprocess

    model, flags = platform.processor() or platform.machine(), set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "Flags":
                flags = set(value.split())
    except OSError:  # pragma: no cover - no lscpu
        pass
    if not flags and os.path.exists("/proc/cpuinfo"):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                break
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model_name": model, "flags": {f: f in flags for f in wanted},
            "bfloat16_fast": bool(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})}


#: Device of the --vectorised and --accuracy sections ("cuda" on a GPU machine).
DEVICE = "cpu"


def _standard_member(epochs, batch_size=64, channels_last=True, autocast=None):
    """The standard pipeline's member (skcluster.models.make_cnn), fixed epochs, no early stopping."""
    from skcluster.models import make_cnn

    net = make_cnn(max_epochs=epochs, batch_size=batch_size, fast=False, random_state=0, device=DEVICE)
    # the standard 20% validation split stays (same work on both paths); the
    # images are pre-scaled, as the pipeline's preprocessing delivers them
    return net.set_params(early_stopping=False, channels_last=channels_last, autocast=autocast)


def _fit_ensemble(member, X, y, n_members, vectorize, conv_mode="auto", threads=None):
    from skcluster.nn import vectorised

    old = vectorised.DEFAULT_CONV_MODE
    vectorised.DEFAULT_CONV_MODE = conv_mode
    try:
        ens = DeepEnsembleRegressor(member, n_estimators=n_members, random_state=0, vectorize=vectorize,
                                    torch_threads=threads)
        t0, c0 = time.perf_counter(), time.process_time()
        ens.fit(X, y)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        vectorised.DEFAULT_CONV_MODE = old
    assert ens.vectorised_ == bool(vectorize)
    return ens, wall, cpu


def bench_vectorised(X, y, members, epochs, repeats, n_predict, sweep_members, batch_sizes, thread_counts):
    """Members per second, vectorised against member by member, plus the settings sweeps."""
    from skcluster.nn import vectorised

    info = cpu_info()
    cpus = os.cpu_count() or 1
    dtypes = {"float32": None}
    on_gpu = DEVICE.startswith("cuda")
    if (info["bfloat16_fast"] and not on_gpu) or (on_gpu and torch.cuda.is_bf16_supported()):
        dtypes["bfloat16"] = "bfloat16"
    res = {"cpu": info, "device": DEVICE,
           "gpu": torch.cuda.get_device_name(DEVICE) if on_gpu else None, "n_train": len(X), "epochs": epochs, "image": list(X["images"].shape[1:]),
           "threads": torch.get_num_threads(), "training": [], "sweep": [], "predict": []}
    # warm-up: oneDNN kernels and the allocator, both paths
    _fit_ensemble(_standard_member(1), X[:64], y[:64], 2, True)
    _fit_ensemble(_standard_member(1), X[:64], y[:64], 2, False)
    for dname, autocast in dtypes.items():
        member = _standard_member(epochs, autocast=autocast)
        for m in members:
            runs = {"vectorised": [], "sequential": []}
            cpu_s = {"vectorised": [], "sequential": []}
            for _ in range(repeats):  # interleaved: both see the same machine
                for path, vec in (("vectorised", True), ("sequential", False)):
                    _, wall, cpu = _fit_ensemble(member, X, y, m, vec)
                    runs[path].append(wall)
                    cpu_s[path].append(cpu)
            v, s = min(runs["vectorised"]), min(runs["sequential"])
            row = {"dtype": dname, "members": m, "vectorised_seconds": v, "sequential_seconds": s,
                   "vectorised_members_per_s": m / v, "sequential_members_per_s": m / s,
                   "speedup": s / v, "all_seconds": runs, "cpu_seconds": cpu_s}
            res["training"].append(row)
            print(f"  {dname} M={m}: vectorised {v:.1f} s, sequential {s:.1f} s, {s / v:.2f}x", flush=True)

    # settings of the vectorised path (float32, sweep_members members)
    base = dict(batch_size=64, threads=cpus, channels_last=True, conv_mode="auto")
    variants = [dict(base)]
    variants += [dict(base, batch_size=b) for b in batch_sizes if b != 64]
    variants += [dict(base, threads=t) for t in thread_counts if t != cpus and not on_gpu]
    variants += [dict(base, channels_last=False)]
    variants += [dict(base, conv_mode=c) for c in ("loop", "grouped")]
    for var in variants:
        member = _standard_member(epochs, batch_size=var["batch_size"], channels_last=var["channels_last"])
        best = min(
            _fit_ensemble(member, X, y, sweep_members, True, var["conv_mode"], var["threads"])[1]
            for _ in range(repeats)
        )
        res["sweep"].append(dict(var, members=sweep_members, seconds=best, members_per_s=sweep_members / best))
        print(f"  sweep {var}: {best:.1f} s", flush=True)
    for cl in (True, False):  # the sequential reference for the sweep
        member = _standard_member(epochs, channels_last=cl)
        best = min(_fit_ensemble(member, X, y, sweep_members, False)[1] for _ in range(repeats))
        res["sweep"].append(dict(base, channels_last=cl, conv_mode="sequential", members=sweep_members,
                                 seconds=best, members_per_s=sweep_members / best))

    # prediction: one stacked forward against the member loop, same fitted members
    Xp = X[np.arange(n_predict) % len(X)]
    for m in members:
        ens, _, _ = _fit_ensemble(_standard_member(1), X[:128], y[:128], m, True)
        times = {}
        for label, vec in (("stacked", "auto"), ("loop", False)):
            ens.set_params(vectorize=vec)
            ens.predict(Xp[:64])  # builds (and caches) the stacked module
            t = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                ens.predict_components(Xp)
                t.append(time.perf_counter() - t0)
            times[label] = min(t)
        for mode in ("loop", "grouped"):
            vectorised.DEFAULT_CONV_MODE = mode
            ens.set_params(vectorize="auto")
            ens.predict(Xp[:64])
            t0 = time.perf_counter()
            ens.predict_components(Xp)
            times[f"stacked_{mode}"] = time.perf_counter() - t0
            vectorised.DEFAULT_CONV_MODE = "auto"
        res["predict"].append({
            "members": m, "n_images": len(Xp),
            **{f"{k}_seconds": v for k, v in times.items()},
            "stacked_images_per_s": len(Xp) / times["stacked"], "loop_images_per_s": len(Xp) / times["loop"],
            "speedup": times["loop"] / times["stacked"],
        })
    return res


def _markdown_vectorised(r):
    c = r["cpu"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in c["flags"].items())
    lines = [
        "# bench_model --vectorised",
        "",
        f"CPU: {c['model_name']} ({flags}); {os.cpu_count()} CPUs, {r['threads']} torch threads; "
        f"torch {torch.__version__}. Device: {r.get('device', 'cpu')}"
        + (f" ({r['gpu']})." if r.get("gpu") else "; GPU: not measured."),
        f"Standard member (skcluster.models.make_cnn: channels (16, 32, 64), dense (64,), channels_last), "
        f"{r['n_train']} clusters of {' x '.join(map(str, r['image']))}, 20% validation split, "
        f"{r['epochs']} epochs without early stopping; seconds are the best of interleaved runs.",
        "",
        "| dtype | members | vectorised s | sequential s | vectorised members/s | sequential members/s | "
        "speed-up (target >= 3x) | process CPU s, vectorised / sequential |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in r["training"]:
        cpu = f"{min(t['cpu_seconds']['vectorised']):.1f} / {min(t['cpu_seconds']['sequential']):.1f}"
        lines.append(
            f"| {t['dtype']} | {t['members']} | {t['vectorised_seconds']:.1f} | {t['sequential_seconds']:.1f} | "
            f"{t['vectorised_members_per_s']:.3f} | {t['sequential_members_per_s']:.3f} | {t['speedup']:.2f}x | {cpu} |"
        )
    if not any(t["dtype"] == "bfloat16" for t in r["training"]):
        lines += ["", "bfloat16: not measured (this CPU has neither avx512_bf16 nor AMX)."]
    lines += [
        "",
        "Settings (float32):",
        "",
        "| path | members | batch | torch threads | channels_last | conv mode | s | members/s |",
        "|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for s in r["sweep"]:
        path = "sequential" if s["conv_mode"] == "sequential" else "vectorised"
        mode = "-" if path == "sequential" else s["conv_mode"]
        lines.append(f"| {path} | {s['members']} | {s['batch_size']} | {s['threads']} | {s['channels_last']} | "
                     f"{mode} | {s['seconds']:.1f} | {s['members_per_s']:.3f} |")
    lines += [
        "",
        "Prediction (`predict_components`), float32:",
        "",
        "| members | images | stacked (auto) s | stacked loop s | stacked grouped s | member loop s | "
        "stacked images/s | loop images/s | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in r["predict"]:
        lines.append(
            f"| {p['members']} | {p['n_images']} | {p['stacked_seconds']:.2f} | {p['stacked_loop_seconds']:.2f} | "
            f"{p['stacked_grouped_seconds']:.2f} | {p['loop_seconds']:.2f} | {p['stacked_images_per_s']:.0f} | "
            f"{p['loop_images_per_s']:.0f} | {p['speedup']:.2f}x |"
        )
    lines += ["", f"(`{r['command']}`)", ""]
    return "\n".join(lines)


# ------------------------------------------------- accuracy: vectorised = sequential
def _paired_bootstrap(y, a, b, n_boot, seed):
    """Metrics of predictions ``a`` and ``b`` (mean, std) and bootstrap intervals over clusters.

    The same resampled clusters score both, so the interval of the
    difference is paired.
    """
    from skcluster.metrics import gaussian_nll, interval_coverage, mass_scatter

    metrics = {
        "scatter": lambda t, m, s: mass_scatter(t, m),
        "nll": gaussian_nll,
        "coverage_68": lambda t, m, s: interval_coverage(t, m, s, 0.68),
        "coverage_95": lambda t, m, s: interval_coverage(t, m, s, 0.95),
    }
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    out = {}
    for name, fn in metrics.items():
        va, vb = fn(y, *a), fn(y, *b)
        ba = np.array([fn(y[i], a[0][i], a[1][i]) for i in idx])
        bb = np.array([fn(y[i], b[0][i], b[1][i]) for i in idx])
        lo, hi = np.percentile(bb, [2.5, 97.5])
        dlo, dhi = np.percentile(ba - bb, [2.5, 97.5])
        out[name] = {
            "vectorised": float(va), "sequential": float(vb),
            "sequential_95ci": [float(lo), float(hi)],
            "difference": float(va - vb), "difference_95ci": [float(dlo), float(dhi)],
            "vectorised_within_sequential_ci": bool(lo <= va <= hi),
            "difference_ci_contains_0": bool(dlo <= 0.0 <= dhi),
        }
    return out


def bench_accuracy(n_clusters, n_folds, members, epochs, patience, npix, n_boot, seed, survey="efeds"):
    """Vectorised against member-by-member 10-member ensembles on the same folds of a mock survey."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline

    t_all = time.perf_counter()
    data = make_survey(survey, n_clusters=n_clusters, random_state=seed)
    X, y = data.X, np.asarray(data.y, dtype=np.float64)
    pipe = make_mass_pipeline(mask_point_sources=False, npix=npix, n_estimators=members, random_state=seed, max_epochs=epochs,
                              patience=patience, device=DEVICE)
    Xb = pipe[0].fit_transform(X)  # binning is stateless: once for all folds
    folds = list(KFold(n_folds, shuffle=True, random_state=seed).split(y))
    preds = {p: (np.empty_like(y), np.empty_like(y)) for p in ("vectorised", "sequential")}
    seconds = {"vectorised": 0.0, "sequential": 0.0}
    epochs_run = {"vectorised": [], "sequential": []}
    for k, (tr, te) in enumerate(folds):
        for path, vec in (("vectorised", True), ("sequential", False)):
            model = clone(pipe[1:]).set_params(model__vectorize=vec)
            t0 = time.perf_counter()
            model.fit(Xb[tr], y[tr])
            seconds[path] += time.perf_counter() - t0
            assert model["model"].vectorised_ == vec
            epochs_run[path] += [int(m.n_epochs_) for m in model["model"].estimators_]
            mean, std = model.predict(Xb[te], return_std=True)
            preds[path][0][te], preds[path][1][te] = mean, std
        print(f"  fold {k + 1}/{n_folds}: vectorised {seconds['vectorised']:.0f} s, "
              f"sequential {seconds['sequential']:.0f} s so far", flush=True)
    metrics = _paired_bootstrap(y, preds["vectorised"], preds["sequential"], n_boot, seed)
    return {
        "n_clusters": n_clusters, "n_folds": n_folds, "members": members, "max_epochs": epochs,
        "patience": patience, "npix": npix, "n_boot": n_boot, "seed": seed, "survey": survey,
        "fit_seconds": seconds, "epochs_run": epochs_run, "metrics": metrics,
        "max_abs_mean_difference": float(np.max(np.abs(preds["vectorised"][0] - preds["sequential"][0]))),
        "total_seconds": time.perf_counter() - t_all, "cpu": cpu_info(),
    }


def _markdown_accuracy(r):
    lines = [
        "# bench_model --accuracy",
        "",
        f"{r['n_clusters']} mock {r['survey']} clusters, {r['n_folds']} folds (KFold, seed {r['seed']}), "
        f"{r['members']}-member ensembles of the standard pipeline (npix {r['npix']}, <= {r['max_epochs']} "
        f"epochs, patience {r['patience']}), same seeds on both paths; paired bootstrap over clusters "
        f"({r['n_boot']} resamples). Training: vectorised {r['fit_seconds']['vectorised']:.0f} s, "
        f"sequential {r['fit_seconds']['sequential']:.0f} s; CPU {r['cpu']['model_name']}.",
        "",
        "| metric | vectorised | sequential | sequential 95% CI | difference | difference 95% CI | within CI |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for name, m in r["metrics"].items():
        lines.append(
            f"| {name} | {m['vectorised']:.4f} | {m['sequential']:.4f} | "
            f"[{m['sequential_95ci'][0]:.4f}, {m['sequential_95ci'][1]:.4f}] | {m['difference']:+.5f} | "
            f"[{m['difference_95ci'][0]:+.5f}, {m['difference_95ci'][1]:+.5f}] | "
            f"{'yes' if m['vectorised_within_sequential_ci'] and m['difference_ci_contains_0'] else 'NO'} |"
        )
    lines += ["", f"Largest difference of a predicted mean: {r['max_abs_mean_difference']:.2e} dex.",
              "", f"(`{r['command']}`)", ""]
    return "\n".join(lines)


def main_vectorised(args, argv):
    global DEVICE
    DEVICE = args.device
    cpus = os.cpu_count() or 1
    torch.set_num_threads(args.threads or cpus)
    command = "python benchmarks/bench_model.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    if args.vectorised:
        if args.quick:
            n, size, members, epochs, repeats, n_pred = 96, 24, (2, 4), 1, 1, 128
            sweep_m, batches, threads = 2, (32, 64), sorted({1, cpus})
        else:
            n, size, members, epochs, repeats, n_pred = args.n_train, args.image_size, (5, 10, 30), 2, 2, 1024
            sweep_m, batches, threads = 10, (32, 64, 128), sorted({1, cpus})
        X, y = make_toy_sample(n, n_bands=args.n_bands, image_size=size, random_state=0)
        X = X.assign(images=np.log1p(X["images"]).astype(np.float32))  # as the preprocessing delivers them
        print(f"vectorised ensemble benchmark ({'quick' if args.quick else 'full'}): {cpu_info()}", flush=True)
        r = bench_vectorised(X, y, members, epochs, repeats, n_pred, sweep_m, batches, threads)
        r["command"] = command.strip()
        r["quick"] = bool(args.quick)
        r["loadavg"] = [round(v, 2) for v in os.getloadavg()]
        (args.out / "bench_vectorised.json").write_text(json.dumps(r, indent=1))
        md = _markdown_vectorised(r)
        (args.out / "bench_vectorised.md").write_text(md)
        print(md)
        print(f"wrote {args.out / 'bench_vectorised.json'} and {args.out / 'bench_vectorised.md'}")
    if args.accuracy:
        if args.quick:
            cfg = dict(n_clusters=120, n_folds=2, members=2, epochs=2, patience=2, npix=16, n_boot=200)
        else:
            cfg = dict(n_clusters=args.acc_clusters, n_folds=args.acc_folds, members=args.acc_members,
                       epochs=args.acc_epochs, patience=args.acc_patience, npix=50, n_boot=2000)
        print(f"accuracy comparison: {cfg}", flush=True)
        r = bench_accuracy(seed=0, **cfg)
        r["command"] = command.strip()
        r["quick"] = bool(args.quick)
        (args.out / "bench_vectorised_accuracy.json").write_text(json.dumps(r, indent=1))
        md = _markdown_accuracy(r)
        (args.out / "bench_vectorised_accuracy.md").write_text(md)
        print(md)
        print(f"wrote {args.out / 'bench_vectorised_accuracy.json'}")
    print(f"reproduce with: {command.strip()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-bands", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-predict", type=int, default=2048)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--ensemble-epochs", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch threads for the speed and overhead parts (default: all CPUs); the ensemble "
        "part always compares n_jobs=1 on all CPUs with n_jobs=2",
    )
    parser.add_argument(
        "--sections", default="speed,overhead,ensemble",
        help="comma-separated subset of speed, overhead, ensemble (to re-run one in a quiet moment)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument(
        "--vectorised", action="store_true",
        help="only the vectorised-ensemble section: members/s at M = 5, 10, 30 against the member loop, "
        "settings sweeps and prediction (writes bench_vectorised.json/.md)",
    )
    parser.add_argument(
        "--accuracy", action="store_true",
        help="only the accuracy comparison: vectorised against member-by-member ensembles on the same "
        "folds of a mock survey, paired bootstrap (writes bench_vectorised_accuracy.json/.md)",
    )
    parser.add_argument("--device", default="cpu", help="device of --vectorised and --accuracy (e.g. cuda)")
    parser.add_argument("--acc-clusters", type=int, default=2000)
    parser.add_argument("--acc-folds", type=int, default=5)
    parser.add_argument("--acc-members", type=int, default=10)
    parser.add_argument("--acc-epochs", type=int, default=60)
    parser.add_argument("--acc-patience", type=int, default=10)
    args = parser.parse_args(argv)
    if args.vectorised or args.accuracy:
        return main_vectorised(args, argv)
    if args.quick:
        args.n_train, args.n_bands, args.image_size, args.epochs = 64, 2, 16, 1
        args.repeats, args.n_predict, args.members, args.ensemble_epochs = 1, 128, 2, 1

    load_before = os.getloadavg()
    cpus = os.cpu_count() or 1
    X, y = make_toy_sample(args.n_train, n_bands=args.n_bands, image_size=args.image_size, random_state=0)
    threads = args.threads or cpus
    torch.set_num_threads(threads)
    result = {
        "config": {
            "n_train": args.n_train, "n_bands": args.n_bands, "image_size": args.image_size,
            "epochs": args.epochs, "repeats": args.repeats, "n_predict": args.n_predict,
            "torch_threads": threads,
        },
    }
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - {"speed", "overhead", "ensemble"}
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    loads = {}
    for name in sections:
        before = os.getloadavg()[0]
        if name == "speed":
            result["speed"] = bench_speed(X, y, args.epochs, args.repeats, args.n_predict)
        elif name == "overhead":
            result["overhead"] = bench_overhead(X, y, args.epochs, args.repeats)
        else:
            torch.set_num_threads(cpus)
            n = min(len(X), 256)
            result["ensemble"] = bench_ensemble(X[:n], y[:n], args.members, args.ensemble_epochs, args.repeats)
        loads[name] = [round(before, 2), round(os.getloadavg()[0], 2)]
    torch.set_num_threads(cpus)
    load_after = os.getloadavg()
    result["machine"] = {
        "cpus": cpus, "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
        "loadavg_before": [round(v, 2) for v in load_before], "loadavg_after": [round(v, 2) for v in load_after],
        "loadavg_1min_per_section": loads,
        # our own run adds up to ~cpus to the load; more than that means others were busy
        "shared": max([load_before[0], load_after[0]] + [v for pair in loads.values() for v in pair]) > cpus + 0.5,
    }
    result["command"] = "python benchmarks/bench_model.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name in sections:
        result[name]["command"] = result["command"].strip()
        result[name]["loadavg_1min"] = loads[name]
    args.out.mkdir(parents=True, exist_ok=True)
    old_path = args.out / "bench_model.json"
    if old_path.exists() and set(sections) != {"speed", "overhead", "ensemble"}:
        # a partial re-run: keep the other sections of the previous run (same inputs only)
        old = json.loads(old_path.read_text())
        if old.get("config") == result["config"]:
            for name in {"speed", "overhead", "ensemble"} - set(sections):
                if name in old:
                    result[name] = old[name]
                    loads[name] = old[name].get("loadavg_1min", old["machine"]["loadavg_1min_per_section"].get(name))
            result["machine"]["shared"] = result["machine"]["shared"] or old["machine"]["shared"]
    (args.out / "bench_model.json").write_text(json.dumps(result, indent=1))
    md = _markdown(result)
    (args.out / "bench_model.md").write_text(md)
    print(md)
    print(f"wrote {args.out / 'bench_model.json'} and {args.out / 'bench_model.md'}")
    print(f"reproduce with: {result['command'].strip()}")
    return result


if __name__ == "__main__":
    main()
