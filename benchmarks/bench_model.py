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

        def fit(n_jobs, threads=None, key=None):
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
    args = parser.parse_args(argv)
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
