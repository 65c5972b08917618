"""Speed and memory of the preprocessing chain.

1. Binning speed: :class:`skcluster.preprocessing.BandBinner` against
   ``numpy.histogramdd`` on the same events in the same process, both the
   obvious per-cluster loop and one 4-D histogram over all clusters at once
   (cluster, band, row, col). Target: at least 5x faster.
2. Peak memory of the standard chain (``make_preprocessing()``: bin straight
   to 10 x 50 x 50, resize (no-op), smooth, scale, join) on 8000 clusters,
   measured in a fresh child process. Target: under 2 GB (the float32
   output alone is 8000 x 10 x 50 x 50 x 4 B = 800 MB).

Synthetic events with eFEDS-like numbers: ~5000 events per
cluster over 0.2-10 keV in a 20 arcmin box. Sky background 7 counts/arcmin^2
in 0.2-2.3 keV (eFEDS median) -> ~2800 events; particle background ~4e-4
counts/s/arcmin^2/keV, flat over 2.3-10 keV, at ~2.3 ks unvignetted
exposure -> ~2800 more; cluster photons: median 105 counts (eFEDS detected
clusters, 5-95%: 47-530), drawn log-normally, in a Gaussian blob of
~1 arcmin with E ~ 0.2 + Exp(1.5 keV).

Usage::

    python benchmarks/bench_preprocessing.py [--n-speed 1000] [--n-memory 8000] [--out DIR]

Writes ``DIR/preprocessing.json`` and ``DIR/preprocessing.md`` (default
``benchmarks/results``) and prints the command that reproduces them. Timings
on a shared machine are provisional.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from skcluster import ClusterSample  # noqa: E402
from skcluster.io import EVENT_DTYPE, ORIGIN_BACKGROUND, ORIGIN_CLUSTER  # noqa: E402
from skcluster.models import make_preprocessing  # noqa: E402
from skcluster.preprocessing import BandBinner, resolve_bands  # noqa: E402

SIZE_ARCMIN = 20.0
HALF_ARCSEC = 30.0 * SIZE_ARCMIN
SKY_PER_CLUSTER = 2800  # 7 counts/arcmin^2 x 400 arcmin^2, 0.2-2.3 keV
PARTICLE_PER_CLUSTER = 2800  # ~4e-4 /s/arcmin^2/keV x 7.7 keV x 400 arcmin^2 x ~2.3 ks
CLUSTER_MEDIAN = 105  # eFEDS detected clusters, 0.2-2.3 keV


def synthetic_events(n_clusters, seed=0):
    """``n_clusters`` EVENT_DTYPE arrays, views into one flat array (13 B/event)."""
    rng = np.random.default_rng(seed)
    n_sky = rng.poisson(SKY_PER_CLUSTER, n_clusters)
    n_part = rng.poisson(PARTICLE_PER_CLUSTER, n_clusters)
    n_cl = np.round(CLUSTER_MEDIAN * np.exp(rng.normal(0, 0.75, n_clusters))).astype(np.int64)
    counts = n_sky + n_part + n_cl
    total = int(counts.sum())
    flat = np.empty(total, dtype=EVENT_DTYPE)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # generate in chunks of clusters to keep the float64 temporaries small
    chunk = 500
    for c0 in range(0, n_clusters, chunk):
        c1 = min(c0 + chunk, n_clusters)
        lo, hi = starts[c0], starts[c1 - 1] + counts[c1 - 1]
        m = hi - lo
        part = flat[lo:hi]
        part["x_arcsec"] = rng.uniform(-HALF_ARCSEC, HALF_ARCSEC, m)
        part["y_arcsec"] = rng.uniform(-HALF_ARCSEC, HALF_ARCSEC, m)
        kind = np.concatenate([
            np.concatenate([np.zeros(a, np.uint8), np.ones(b, np.uint8), np.full(c, 2, np.uint8)])
            for a, b, c in zip(n_sky[c0:c1], n_part[c0:c1], n_cl[c0:c1])
        ])
        e = np.empty(m)
        sky = kind == 0
        # soft sky: roughly E^-2 between 0.2 and 2.3 keV (inverse-CDF draw)
        u = rng.uniform(0, 1, np.count_nonzero(sky))
        e[sky] = 1.0 / (1 / 0.2 - u * (1 / 0.2 - 1 / 2.3))
        part_ = kind == 1
        e[part_] = rng.uniform(0.2, 10.0, np.count_nonzero(part_))
        clus = kind == 2
        k = np.count_nonzero(clus)
        e[clus] = np.minimum(0.2 + rng.exponential(1.5, k), 10.0)
        part["x_arcsec"][clus] = rng.normal(0, 60.0, k)
        part["y_arcsec"][clus] = rng.normal(0, 60.0, k)
        part["energy_keV"] = e
        part["origin"] = np.where(clus, ORIGIN_CLUSTER, ORIGIN_BACKGROUND)
    events = np.empty(n_clusters, dtype=object)
    for i, (s, c) in enumerate(zip(starts, counts)):
        events[i] = flat[s : s + c]
    return events, total


def _sample(events, seed=1):
    rng = np.random.default_rng(seed)
    n = len(events)
    return ClusterSample(events=events, z=rng.uniform(0.05, 1.2, n),
                         exposure=rng.uniform(785.0, 1941.0, n))


def _timed(fn):
    """(wall seconds, CPU seconds of this process, result) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def bench_speed(n_clusters, npix=50, bands="krippendorf10", repeat=5):
    """Interleaved rounds of BandBinner and two numpy.histogramdd variants.

    Best of ``repeat`` rounds, in wall time and in CPU time of this process.
    On a shared machine the CPU time is the steadier measure: the code is
    single-threaded, and wall time also counts the slices other processes
    take from it.
    """
    events, total = synthetic_events(n_clusters, seed=0)
    X = _sample(events)
    b = resolve_bands(bands)
    binner = BandBinner(bands=bands, npix=npix, size_arcmin=SIZE_ARCMIN, verbose=False)
    edges_xy = np.linspace(-HALF_ARCSEC, HALF_ARCSEC, npix + 1)
    edges_e = np.array([lo for lo, _ in b] + [b[-1][1]], dtype=np.float32).astype(np.float64)
    contiguous = all(a[1] == c[0] for a, c in zip(b[:-1], b[1:]))
    assert contiguous, "the histogramdd reference needs contiguous bands"

    def per_cluster():
        out = np.empty((n_clusters, len(b), npix, npix), np.float32)
        for i, ev in enumerate(events):
            h, _ = np.histogramdd(
                np.column_stack([ev["energy_keV"], ev["y_arcsec"], ev["x_arcsec"]]),
                bins=(edges_e, edges_xy, edges_xy),
            )
            out[i] = h
        return out

    def all_at_once():
        lengths = np.fromiter((len(ev) for ev in events), np.int64, n_clusters)
        allev = np.concatenate(list(events))
        cluster = np.repeat(np.arange(n_clusters, dtype=np.float64), lengths)
        h, _ = np.histogramdd(
            np.column_stack([cluster, allev["energy_keV"], allev["y_arcsec"], allev["x_arcsec"]]),
            bins=(np.arange(n_clusters + 1) - 0.5, edges_e, edges_xy, edges_xy),
        )
        return h.astype(np.float32)

    methods = dict(bandbinner=lambda: binner.fit_transform(X)["images"],
                   histogramdd_4d=all_at_once, histogramdd_per_cluster=per_cluster)
    wall = dict.fromkeys(methods, np.inf)
    cpu = dict.fromkeys(methods, np.inf)
    images = {}
    for _ in range(repeat):
        for name, fn in methods.items():
            w, c, images[name] = _timed(fn)
            wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
    ours = images["bandbinner"]
    # histogramdd closes its last bin on the right: events at x or y == +S/2
    # or at E == the top band edge are in its histogram and not in ours
    allev = np.concatenate(list(events))
    x, y, e = allev["x_arcsec"], allev["y_arcsec"], allev["energy_keV"]
    inside = lambda v: (v >= -HALF_ARCSEC) & (v <= HALF_ARCSEC)  # noqa: E731
    closed_edge = inside(x) & inside(y) & (e >= edges_e[0]) & (e <= edges_e[-1]) & (
        (x == HALF_ARCSEC) | (y == HALF_ARCSEC) | (e == edges_e[-1]))
    result = dict(n_clusters=n_clusters, n_events=total, npix=npix, bands=bands,
                  repeat=repeat, events_on_closed_right_edges=int(np.count_nonzero(closed_edge)))
    for name in methods:
        result[f"{name}_wall_s"] = wall[name]
        result[f"{name}_cpu_s"] = cpu[name]
        result[f"{name}_events_per_cpu_s"] = total / cpu[name]
        if name != "bandbinner":
            result[f"speedup_cpu_vs_{name}"] = cpu[name] / cpu["bandbinner"]
            result[f"speedup_wall_vs_{name}"] = wall[name] / wall["bandbinner"]
            result[f"pixels_differing_from_{name}"] = int(np.count_nonzero(ours != images[name]))
    return result


# -- memory (child process) --------------------------------------------------
def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakSampler(threading.Thread):
    """Sample the resident set size every ``interval`` seconds."""

    def __init__(self, interval=0.002):
        super().__init__(daemon=True)
        self.interval, self.peak, self._halt = interval, _rss_bytes(), threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def stop(self):
        self._halt.set()
        self.join()
        self.peak = max(self.peak, _rss_bytes())


def memory_child(n_clusters):
    import gc
    import tracemalloc

    events, total = synthetic_events(n_clusters, seed=0)
    X = _sample(events)
    gc.collect()
    rss_input = _rss_bytes()
    pipe = make_preprocessing(verbose=False)
    sampler = _PeakSampler()
    sampler.start()
    t0 = time.perf_counter()
    out = pipe.fit_transform(X)
    elapsed = time.perf_counter() - t0
    sampler.stop()
    out_bytes, out_shape = int(out["images"].nbytes), list(out["images"].shape)
    del out
    gc.collect()
    # a second run under tracemalloc (slower): the peak of numpy's allocations
    tracemalloc.start()
    make_preprocessing(verbose=False).fit_transform(X)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result = dict(
        n_clusters=n_clusters, n_events=total,
        events_bytes=int(sum(ev.nbytes for ev in events)),
        output_images_bytes=out_bytes,
        output_shape=out_shape,
        rss_before_chain_bytes=rss_input,
        rss_peak_bytes=sampler.peak,
        rss_peak_above_input_bytes=sampler.peak - rss_input,
        tracemalloc_peak_during_chain_bytes=traced_peak,
        ru_maxrss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        chain_fit_transform_s=elapsed,
    )
    print(json.dumps(result))


def bench_memory(n_clusters):
    cmd = [sys.executable, __file__, "--memory-child", str(n_clusters)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- report -------------------------------------------------------------------
def _gb(b):
    return f"{b / 1e9:.2f} GB"


def markdown(result):
    m = result["memory"]
    lines = [
        "# Preprocessing benchmark",
        "",
        f"Machine: {result['machine']}; numpy {result['numpy']}; load average at the "
        f"end {', '.join(f'{v:.1f}' for v in result['load_average_at_end'])}. Timings on "
        "a shared machine are provisional; the methods run interleaved in one process, "
        "best of 5 rounds each; CPU time (this process only) is the steadier measure "
        "under load.",
        "",
    ]
    names = [("bandbinner", "BandBinner"),
             ("histogramdd_4d", "numpy.histogramdd, one 4-D histogram of all clusters"),
             ("histogramdd_per_cluster", "numpy.histogramdd, loop over clusters")]
    for s in (result["speed"], result["speed_native_300"]):
        lines += [
            f"## Binning speed ({s['n_clusters']} clusters, {s['n_events']:,} events, "
            f"{len(resolve_bands(s['bands']))} bands, {s['npix']} x {s['npix']} pixels)",
            "",
            "| method | CPU s | wall s | events per CPU s | speed-up of BandBinner (CPU / wall) |",
            "|---|---|---|---|---|",
        ]
        for key, label in names:
            up = ("1" if key == "bandbinner" else
                  f"{s[f'speedup_cpu_vs_{key}']:.1f}x / {s[f'speedup_wall_vs_{key}']:.1f}x")
            lines.append(f"| {label} | {s[f'{key}_cpu_s']:.3f} | {s[f'{key}_wall_s']:.3f} | "
                         f"{s[f'{key}_events_per_cpu_s']:.3g} | {up} |")
        lines += [
            "",
            f"Pixels differing from histogramdd: {s['pixels_differing_from_histogramdd_4d']} "
            f"(4-D), {s['pixels_differing_from_histogramdd_per_cluster']} (loop); "
            f"{s['events_on_closed_right_edges']} event(s) sit on a right edge that "
            "histogramdd closes (x or y = +S/2, E = top band edge) and the half-open "
            "box and bands here leave out.",
            "",
        ]
    lines += [
        f"## Peak memory of the standard chain ({m['n_clusters']} clusters, "
        f"{m['n_events']:,} events)",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| input events (EVENT_DTYPE, 13 B/event) | {_gb(m['events_bytes'])} |",
        f"| output images float32 {tuple(m['output_shape'])} | {_gb(m['output_images_bytes'])} |",
        f"| process RSS before the chain (interpreter, torch, events) | "
        f"{_gb(m['rss_before_chain_bytes'])} |",
        f"| process RSS peak during the chain | {_gb(m['rss_peak_bytes'])} |",
        f"| **peak above the input (the chain's own memory)** | "
        f"**{_gb(m['rss_peak_above_input_bytes'])}** |",
        f"| tracemalloc peak of allocations during the chain | "
        f"{_gb(m['tracemalloc_peak_during_chain_bytes'])} |",
        f"| time of fit_transform (bin, resize, smooth, scale, join) | "
        f"{m['chain_fit_transform_s']:.1f} s |",
        "",
        f"Reproduce: `{result['command']}`",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-speed", type=int, default=1000)
    p.add_argument("--n-memory", type=int, default=8000)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing result files")
    p.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return
    out = Path(args.out)
    targets = [out / "preprocessing.json", out / "preprocessing.md"]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not args.overwrite:
        sys.exit(f"{existing} exist; pass --overwrite to replace them")
    command = (f"python benchmarks/bench_preprocessing.py --n-speed {args.n_speed} "
               f"--n-memory {args.n_memory} --out {args.out} --overwrite")
    print("binning speed ...", flush=True)
    speed = bench_speed(args.n_speed)
    print(json.dumps(speed, indent=1))
    speed300 = bench_speed(max(args.n_speed // 10, 1), npix=300)
    print(json.dumps(speed300, indent=1))
    print("memory of the chain (child process) ...", flush=True)
    memory = bench_memory(args.n_memory)
    print(json.dumps(memory, indent=1))
    result = dict(
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        numpy=np.__version__, command=command, speed=speed, speed_native_300=speed300,
        memory=memory, load_average_at_end=os.getloadavg(),
        targets=dict(speedup_vs_histogramdd=5.0, chain_peak_bytes=2e9),
    )
    out.mkdir(parents=True, exist_ok=True)
    targets[0].write_text(json.dumps(result, indent=1) + "\n")
    targets[1].write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {targets[0]} and {targets[1]}\nreproduce with: {command}")


if __name__ == "__main__":
    main()
