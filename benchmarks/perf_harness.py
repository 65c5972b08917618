"""Speed and memory of the package at catalogue scale: the harness behind ``benchmarks/perf.py``.

:func:`run_perf` measures, for each catalogue size N (default 10^3, 10^4,
10^5 clusters):

``simulate``
    :func:`~skcluster.datasets.iter_survey` (the event lists of each tile
    dropped after counting, so memory stays bounded): clusters/s.
``binning``
    The fitted :class:`~skcluster.preprocessing.BandBinner` of the standard
    pipeline over N clusters in batches: events/s.
``inference``
    The standard pipeline (:func:`~skcluster.models.make_mass_pipeline`
    defaults: bin -> resize -> profile -> smooth -> scale -> join -> an ensemble of
    ``n_estimators`` CNNs, 30 as in Krippendorf et al. 2023) from event
    lists to masses with :func:`~skcluster.streaming.predict_stream`:
    clusters/s.
``stream``
    The same with a ``stream_estimators``-member ensemble (5), time per
    1000 clusters and peak memory at every N.

and once, on a small fixed problem, ``train``: ensemble training
(:class:`~skcluster.ensemble.DeepEnsembleRegressor`) with n_jobs = 1 and 2.

Every measurement runs in a fresh Python process (``python
benchmarks/perf_harness.py --child SPEC``), so that the peak memory of one does not
carry into the next and worker start-up is counted. Peak memory is the
resident set size of that process plus its joblib workers
(:class:`PeakRSS`, sampled every 0.2 s; pages shared between processes, such
as the memory-mapped input, are counted once per process, so it is an upper
bound). Work with ``n_jobs = k`` splits the batches over ``k`` loky workers,
each with ``torch_threads`` torch threads (default ``cpu_count // k``), and
batch boundaries do not depend on ``n_jobs``; the predictions of every
``n_jobs`` are compared with those of n_jobs = 1.

The networks' weights do not change the cost of a forward pass, so the
ensembles are fitted for one epoch on a few hundred clusters only (the
output says so). The input for binning and prediction is a pool of
``pool_size`` simulated clusters repeated up to N (the cost per cluster does
not depend on which clusters they are, and the simulation speed is measured
on its own); it is stored in a memory-mapped file that every process reads.

Cells too slow for the time budget (``simulate`` above ``simulate_max_n``,
``inference`` above ``inference_max_n`` clusters) are not measured; the
table says so and why.

This file is part of the source checkout, not of the installed package;
peak memory needs psutil (``pip install -e ".[perf]"``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["run_perf", "PeakRSS", "PERF_FILES", "DEFAULT_SIZES", "QUICK", "FULL", "KINDS"]

#: The measurements, in the order they run for each N.
KINDS = ("simulate", "binning", "inference", "stream", "train")

#: Files :func:`run_perf` writes into ``out``.
PERF_FILES = ("perf.json", "perf.md")

#: Catalogue sizes of the full run: eRASS1 has 12,247 clusters, the full
#: survey is expected to reach ~10^5.
DEFAULT_SIZES = (1_000, 10_000, 100_000)

#: Settings of ``quick=True`` (each used only where the argument is left at None).
QUICK = dict(sizes=(200, 1000), n_estimators=5, stream_estimators=2, pool_size=200,
             train_clusters=100, train_problem=dict(n_members=2, n_clusters=64, epochs=1),
             simulate_max_n=200, inference_max_n=1000, kinds=KINDS)

#: Settings of the full run (each used only where the argument is left at None).
FULL = dict(sizes=DEFAULT_SIZES, n_estimators=30, stream_estimators=5, pool_size=1000,
            train_clusters=300, train_problem=dict(n_members=4, n_clusters=256, epochs=2),
            # above these sizes simulation and 30-member inference take tens of minutes on a
            # small CPU (the reasons written to the table give the measured rates)
            simulate_max_n=10_000, inference_max_n=10_000, kinds=KINDS)


# ---------------------------------------------------------------------------
# peak memory
# ---------------------------------------------------------------------------
class PeakRSS:
    """Peak resident memory of this process and its children (e.g. joblib workers).

    A context manager sampling every ``interval`` seconds in a thread; ``peak``
    is in bytes. Needs psutil.

    Parameters
    ----------
    interval : float, default=0.2
        Seconds between samples.
    """

    def __init__(self, interval=0.2):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _total(self):
        import psutil

        p = psutil.Process()
        total = p.memory_info().rss
        for c in p.children(recursive=True):
            try:
                total += c.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._total())
            except Exception:  # pragma: no cover - a child exiting while sampled
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        import psutil  # noqa: F401  (fail here, clearly, when psutil is missing)

        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        try:
            self.peak = max(self.peak, self._total())
        except Exception:  # pragma: no cover
            pass


# ---------------------------------------------------------------------------
# the input pool (memory-mapped, read by every process)
# ---------------------------------------------------------------------------
_POOL_COLUMNS = ("z", "exposure", "ra", "dec")


def _save_pool(data, folder):
    """Write a simulated survey's events (flat, with offsets) and columns as .npy files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ev = data.X["events"]
    lengths = np.fromiter((len(e) for e in ev), np.int64, len(ev))
    np.save(folder / "events.npy", np.concatenate(list(ev)))
    np.save(folder / "offsets.npy", np.concatenate([[0], np.cumsum(lengths)]))
    for c in _POOL_COLUMNS:
        np.save(folder / f"{c}.npy", np.asarray(data.X[c]))
    np.save(folder / "y.npy", np.asarray(data.y))
    (folder / "meta.json").write_text(json.dumps(data.X.meta, default=list))


_POOL_CACHE = {}


def _pool(folder):
    folder = str(folder)
    if folder not in _POOL_CACHE:
        f = Path(folder)
        _POOL_CACHE[folder] = dict(
            events=np.load(f / "events.npy", mmap_mode="r"),
            offsets=np.load(f / "offsets.npy"),
            y=np.load(f / "y.npy"),
            meta=json.loads((f / "meta.json").read_text()),
            **{c: np.load(f / f"{c}.npy") for c in _POOL_COLUMNS},
        )
    return _POOL_CACHE[folder]


def _pool_sample(folder, start, stop):
    """Rows ``start:stop`` of the pool repeated without end, as a ClusterSample (views, no copy)."""
    from skcluster.sample import ClusterSample

    p = _pool(folder)
    n_pool = len(p["y"])
    idx = np.arange(start, stop) % n_pool
    ev = np.empty(len(idx), dtype=object)
    off = p["offsets"]
    for k, i in enumerate(idx):
        ev[k] = p["events"][off[i]:off[i + 1]]
    return ClusterSample(events=ev, meta=p["meta"], **{c: p[c][idx] for c in _POOL_COLUMNS}), p["y"][idx]


def _ranges(n, batch_size):
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


# ---------------------------------------------------------------------------
# work done in the measured processes and their workers
# ---------------------------------------------------------------------------
_MODEL_CACHE = {}


def _model(path):
    if path not in _MODEL_CACHE:
        from skcluster import persist

        _MODEL_CACHE[path] = persist.load(path)
    return _MODEL_CACHE[path]


def _set_threads(threads):
    import torch

    torch.set_num_threads(int(threads))


def _bin_range(pool, model, start, stop):
    """Bin clusters start:stop with the model's fitted first step: (events, sum of counts)."""
    X, _ = _pool_sample(pool, start, stop)
    images = _model(model)["bin"].transform(X)["images"]
    n_events = int(sum(len(e) for e in X["events"]))
    return n_events, float(images.sum(dtype=np.float64))


def _predict_range(pool, model, start, stop, batch_size, threads):
    """Masses of clusters start:stop through predict_stream (one batch of batch_size or less)."""
    from skcluster.streaming import predict_stream

    _set_threads(threads)
    X, _ = _pool_sample(pool, start, stop)
    res = predict_stream(_model(model), X, batch_size=batch_size, verbose=False)
    return res.mean, res.std


def _warm(fn, task, pause):
    fn(*task)
    time.sleep(pause)  # keep this worker busy so that the next warm-up task goes to another one
    return os.getpid()


def _parallel(fn, tasks, n_jobs):
    """Run ``fn(*task)`` for every task on ``n_jobs`` processes: (results, start-up seconds).

    Start-up (worker processes, imports, loading the model and the input, one
    warm-up batch in every process) is timed apart from the work itself, the
    same way for every n_jobs.
    """
    t0 = time.perf_counter()
    if n_jobs == 1:
        _warm(fn, tasks[0], 0.0)
        startup = time.perf_counter() - t0
        return [fn(*t) for t in tasks], startup
    from joblib import Parallel, delayed

    with Parallel(n_jobs=n_jobs, backend="loky") as par:
        pids = par(delayed(_warm)(fn, tasks[0], 1.0) for _ in range(n_jobs))
        startup = time.perf_counter() - t0
        return par(delayed(fn)(*t) for t in tasks), startup, len(set(pids))


def _child_simulate(spec):
    from skcluster.datasets import iter_survey

    t_sim, got, n_events = 0.0, 0, 0
    h = hashlib.sha256()
    it = iter_survey(spec["survey"], n_clusters=spec["n"], random_state=spec["seed"], n_jobs=spec["n_jobs"],
                     verbose=False)
    while True:
        t = time.perf_counter()
        try:
            piece = next(it)
        except StopIteration:
            t_sim += time.perf_counter() - t
            break
        t_sim += time.perf_counter() - t
        got += len(piece.y)
        h.update(np.ascontiguousarray(piece.y).tobytes())
        for e in piece.X["events"]:
            n_events += len(e)
            h.update(np.ascontiguousarray(e).tobytes())
    return dict(seconds=t_sim, n_clusters=got, n_events=n_events, clusters_per_s=got / t_sim,
                checksum=h.hexdigest())


def _child_binning(spec):
    tasks = [(spec["pool"], spec["model"], s, e) for s, e in _ranges(spec["n"], spec["batch_size"])]
    t0 = time.perf_counter()
    out, startup = _parallel(_bin_range, tasks, spec["n_jobs"])[:2]
    dt = time.perf_counter() - t0 - startup
    n_events = sum(o[0] for o in out)
    return dict(seconds=dt, startup_seconds=startup, n_events=n_events, events_per_s=n_events / dt, clusters_per_s=spec["n"] / dt,
                checksum=repr(sum(o[1] for o in out)))


def _child_predict(spec):
    from skcluster.streaming import predict_stream

    n, bs, nj, threads = spec["n"], spec["batch_size"], spec["n_jobs"], spec["threads"]
    tasks = [(spec["pool"], spec["model"], s, e, bs, threads) for s, e in _ranges(n, bs)]
    t0 = time.perf_counter()
    if nj == 1:
        # the user's path: one process, one predict_stream over the whole catalogue
        _warm(_predict_range, tasks[0], 0.0)
        startup = time.perf_counter() - t0
        pool, model = spec["pool"], spec["model"]

        def pieces():
            for s, e in _ranges(n, bs):
                yield _pool_sample(pool, s, e)[0]

        res = predict_stream(_model(model), pieces(), batch_size=bs, total=n, verbose=False)
        mean, std = res.mean, res.std
    else:
        out, startup = _parallel(_predict_range, tasks, nj)[:2]
        mean, std = np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])
    dt = time.perf_counter() - t0 - startup
    if not (len(mean) == n and np.all(np.isfinite(mean)) and np.all(std > 0)):
        raise RuntimeError(f"prediction of N={n} gave {len(mean)} values, some not finite or std <= 0")
    np.save(spec["pred_out"], np.stack([mean, std]))
    y = np.resize(_pool(spec["pool"])["y"], n)
    return dict(seconds=dt, startup_seconds=startup, clusters_per_s=n / dt, s_per_1000=1000 * dt / n,
                total_s_per_1000=1000 * (dt + startup) / n,
                scatter_dex=float(np.std(mean - y)), mean_std_dex=float(np.mean(std)))


def _child_train(spec):
    from sklearn.base import clone

    pipe = _model(spec["model"])
    X, y = _pool_sample(spec["pool"], 0, spec["n_clusters"])
    Xt = pipe[:-1].transform(X)
    ens = clone(pipe["model"]).set_params(
        n_estimators=spec["n_members"], n_jobs=spec["n_jobs"], torch_threads=spec["threads"], verbose=0,
        random_state=spec["seed"], estimator__max_epochs=spec["epochs"])
    if spec["n_jobs"] == 1:
        _set_threads(spec["threads"])
    t0 = time.perf_counter()
    ens.fit(Xt, y)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    ens.fit(Xt, y)  # workers (loky) and kernels are warm now
    warm = time.perf_counter() - t0
    _set_threads(1)  # the same threads for every n_jobs: compare the members, not the predict call
    np.save(spec["pred_out"], np.asarray(ens.predict(Xt), dtype=np.float64))
    return dict(seconds=warm, cold_seconds=cold, warm_seconds=warm,
                member_seconds=[float(s) for s in ens.fit_seconds_])


_CHILDREN = dict(simulate=_child_simulate, binning=_child_binning, inference=_child_predict,
                 stream=_child_predict, train=_child_train)


def _child_main(spec):
    load0 = os.getloadavg()
    with PeakRSS() as mem:
        res = _CHILDREN[spec["kind"]](spec)
    res.update(peak_rss_GB=mem.peak / 1e9, load_before=list(load0), load_after=list(os.getloadavg()))
    print("RESULT " + json.dumps(res), flush=True)


def _run_child(spec):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    env = os.environ.copy()
    # the measured process must import this very skcluster (a worktree, an editable install, ...)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"perf measurement {spec['kind']} N={spec.get('n')} n_jobs={spec['n_jobs']} failed "
                           f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


# ---------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------
def _check_sizes(sizes):
    from skcluster._validation import check_positive_int

    sizes = tuple(sizes)
    if not sizes:
        raise ValueError("sizes must be positive integers (numbers of clusters), got ()")
    return tuple(check_positive_int(n, "sizes (numbers of clusters)") for n in sizes)


def _check_n_jobs(n_jobs):
    from skcluster._validation import check_positive_int

    n_jobs = tuple(n_jobs)
    if not n_jobs:
        raise ValueError("n_jobs must be a sequence of positive integers, got ()")
    n_jobs = tuple(sorted(set(check_positive_int(k, "n_jobs (each)") for k in n_jobs)))
    if n_jobs[0] != 1:
        n_jobs = (1,) + n_jobs  # speed-ups are against n_jobs=1
    return n_jobs


def _versions():
    import joblib
    import sklearn
    import torch

    from skcluster import __version__

    return dict(skcluster=__version__, python=platform.python_version(), numpy=np.__version__,
                torch=torch.__version__, sklearn=sklearn.__version__, joblib=joblib.__version__)


def run_perf(out, quick=False, sizes=None, n_estimators=None, n_jobs=(1, 2), verbose=1, overwrite=False, *,
             stream_estimators=None, batch_size=256, pool_size=None, train_clusters=None, train_problem=None,
             simulate_max_n=None, inference_max_n=None, torch_threads=None, kinds=None, random_state=0,
             survey="efeds", command=None):
    """Measure simulation, binning, inference and training speed and peak memory.

    Parameters
    ----------
    out : str or path-like
        Folder for ``perf.json`` and ``perf.md`` (created if missing).
    quick : bool, default=False
        Small settings (:data:`QUICK`) for the arguments left at None;
        otherwise those of the full run (:data:`FULL`).
    sizes : sequence of int, default=None
        Catalogue sizes N (default 1e3, 1e4, 1e5; quick: 200, 1000).
    n_estimators : int, default=None
        Members of the ``inference`` ensemble (30, as the seed study; quick: 5).
    n_jobs : sequence of int, default=(1, 2)
        Parallel workers compared (1 is always included: speed-ups are
        against it).
    verbose : int, default=1
        Progress lines (0: none).
    overwrite : bool, default=False
        Replace an existing ``perf.json`` / ``perf.md`` in ``out``.
    stream_estimators : int, default=None
        Members of the ``stream`` ensemble, measured at every N (5; quick: 2).
    batch_size : int, default=256
        Clusters per batch (binning and prediction); the unit of work that
        workers share, so results do not depend on n_jobs.
    pool_size : int, default=None
        Simulated clusters repeated up to N as input (1000; quick: 200).
    train_clusters : int, default=None
        Clusters the ensembles are fitted on, for one epoch (300; quick: 100).
    train_problem : dict, default=None
        ``n_members``, ``n_clusters``, ``epochs`` of the ensemble-training
        comparison (4, 256, 2; quick: 2, 64, 1).
    simulate_max_n, inference_max_n : int, default=None
        Largest N at which simulation and the ``n_estimators`` inference are
        measured (10^4 both: beyond, they do not fit the time budget).
    kinds : sequence of str, default=None
        Which measurements to run (None: all of :data:`KINDS`): any of ``"simulate"``, ``"binning"``,
        ``"inference"``, ``"stream"``, ``"train"``.
    torch_threads : int, default=None
        Torch threads per process; None uses ``cpu_count // n_jobs``. The
        same value for every n_jobs makes predictions bit-identical across
        n_jobs (the number of threads changes the order of float sums,
        ~1e-6 dex).
    random_state : int, default=0
        Seed of the pool (the simulation measurements use ``random_state + 1``)
        and of the ensembles.
    survey : str, default="efeds"
        Survey preset of the mock.
    command : str, default=None
        Command line recorded in the outputs (default: this call).

    Returns
    -------
    dict
        Everything written to ``perf.json``, plus ``table``, the Markdown.

    Raises
    ------
    FileExistsError
        If ``out/perf.json`` or ``out/perf.md`` exists and ``overwrite`` is false.
    """

    from skcluster import persist
    from skcluster._paths import check_output_folder
    from skcluster._validation import check_positive_int
    from skcluster.datasets import make_survey
    from skcluster.io.atomic import atomic_output
    from skcluster.models import make_mass_pipeline

    cfg = dict(QUICK if quick else FULL)
    given = dict(sizes=sizes, n_estimators=n_estimators, stream_estimators=stream_estimators,
                 pool_size=pool_size, train_clusters=train_clusters, train_problem=train_problem,
                 simulate_max_n=simulate_max_n, inference_max_n=inference_max_n, kinds=kinds)
    cfg.update({k: v for k, v in given.items() if v is not None})
    sizes = _check_sizes(cfg["sizes"])
    n_jobs = _check_n_jobs(n_jobs)
    for key in ("n_estimators", "stream_estimators", "pool_size", "train_clusters", "batch_size"):
        check_positive_int(batch_size if key == "batch_size" else cfg[key], key)
    kinds = tuple(cfg["kinds"])
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds!r}")
    tp = dict(FULL["train_problem"] if not quick else QUICK["train_problem"])
    tp.update(cfg["train_problem"])
    check_positive_int(torch_threads, "torch_threads", allow_none=True)

    out = check_output_folder(out, PERF_FILES, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    cpus = os.cpu_count() or 1
    if command is None:
        command = (f"cd benchmarks && python -c 'from perf_harness import run_perf; run_perf({str(out)!r}, quick={quick}, "
                   f"sizes={sizes}, n_estimators={cfg['n_estimators']}, n_jobs={n_jobs}, "
                   f"overwrite=True)'")
    t_start = time.perf_counter()

    def log(msg):
        if verbose:
            print(f"[perf {time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    def threads_for(k):
        return torch_threads or max(1, cpus // k)

    pool_n = min(cfg["pool_size"], max(max(sizes), cfg["train_clusters"], tp["n_clusters"]))
    result = dict(command=command, cpu_count=cpus, machine=f"{platform.machine()} {platform.processor()}".strip(),
                  versions=_versions(), quick=bool(quick), sizes=list(sizes), n_jobs=list(n_jobs),
                  batch_size=batch_size, torch_threads=torch_threads, survey=survey, random_state=random_state,
                  settings={k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
                  load_average_start=list(os.getloadavg()), runs=[], not_measured=[])
    with tempfile.TemporaryDirectory(prefix="skcluster-perf-") as work:
        work = Path(work)
        # -- setup (not measured): the input pool and the fitted ensembles --------
        log(f"setup: simulating a pool of {pool_n} {survey} clusters (input repeated up to N) ...")
        data = make_survey(survey, n_clusters=pool_n, random_state=random_state,
                           n_jobs=1 if pool_n <= 300 else max(n_jobs), verbose=False)
        pool = work / "pool"
        _save_pool(data, pool)
        n_fit = min(cfg["train_clusters"], pool_n)
        models = {}
        needed = [("inference", cfg["n_estimators"])] if set(kinds) - {"simulate", "stream"} else []
        needed += [("stream", cfg["stream_estimators"])] if "stream" in kinds or not needed else []
        for label, m in needed:
            log(f"setup: fitting a {m}-member ensemble of the standard CNN for 1 epoch on {n_fit} clusters "
                "(the weights do not change the cost of inference) ...")
            pipe = make_mass_pipeline(mask_point_sources=False, n_estimators=m, max_epochs=1, random_state=random_state)
            pipe.fit(data.X[:n_fit], data.y[:n_fit])
            models[label] = str(work / f"{label}.skc")
            persist.save(pipe, models[label])
        bin_step = pipe["bin"]
        result["model"] = dict(
            pipeline="make_mass_pipeline defaults (bin -> resize -> profile -> smooth -> scale -> join -> ensemble)",
            bands_keV=[list(map(float, b)) for b in bin_step.bands_keV_], npix=int(bin_step.npix),
            n_estimators_inference=cfg["n_estimators"], n_estimators_stream=cfg["stream_estimators"],
            fitted_on=n_fit, epochs=1, note="weights from 1 epoch on a few hundred clusters: the cost of a "
            "forward pass does not depend on the weights; accuracy numbers here mean nothing")
        result["pool"] = dict(n_clusters=pool_n, n_events=int(sum(len(e) for e in data.X["events"])),
                              seed=random_state)
        del data, pipe, bin_step

        # -- the plan -----------------------------------------------------------
        plan = []
        skipped = [k for k in KINDS if k not in kinds]
        if skipped:
            result["not_measured"].append(dict(kind=", ".join(skipped), n="any", n_jobs=list(n_jobs),
                                               reason=f"not requested (kinds={list(kinds)})"))
        for n in sizes:
            for kind in [k for k in ("simulate", "binning", "inference") if k in kinds]:
                limit = dict(simulate=cfg["simulate_max_n"], inference=cfg["inference_max_n"]).get(kind)
                if limit is not None and n > limit:
                    why = (f"N={n} > simulate_max_n={limit}: iter_survey makes ~60-130 clusters/s on 2 cores, "
                           f"so {n} clusters take ~{n / 130 / 60:.0f}-{n / 60 / 60:.0f} min per n_jobs"
                           if kind == "simulate" else
                           f"N={n} > inference_max_n={limit}: a {cfg['n_estimators']}-member ensemble at "
                           f"~100 clusters/s on 2 cores takes ~{n / 100 / 60:.0f} min per n_jobs; see the "
                           f"{cfg['stream_estimators']}-member stream at this N and the time per 1000 "
                           "clusters at smaller N")
                    result["not_measured"].append(dict(kind=kind, n=n, n_jobs=list(n_jobs), reason=why))
                    continue
                plan += [(kind, n, k) for k in n_jobs]
            if "stream" in kinds:
                plan.append(("stream", n, 1))
        if "train" in kinds:
            plan += [("train", tp["n_clusters"], k) for k in n_jobs]

        for i, (kind, n, k) in enumerate(plan):
            spec = dict(kind=kind, n=n, n_jobs=k, threads=threads_for(k), batch_size=batch_size,
                        pool=str(pool), seed=random_state + 1 if kind == "simulate" else random_state,
                        survey=survey, model=models.get("stream" if kind == "stream" else "inference"),
                        pred_out=str(work / f"pred_{kind}_{n}_{k}.npy"))
            if kind == "train":
                spec.update(n_members=tp["n_members"], n_clusters=tp["n_clusters"], epochs=tp["epochs"],
                            seed=random_state)
            log(f"({i + 1}/{len(plan)}) {kind} N={n} n_jobs={k} (torch threads {spec['threads']}) ...")
            r = _run_child(spec)
            r.update(kind=kind, n=n, n_jobs=k, torch_threads=spec["threads"])
            if kind in ("inference", "stream", "train"):
                r["_pred"] = spec["pred_out"]
            if kind == "train":
                r.update(n_members=tp["n_members"], epochs=tp["epochs"])
            result["runs"].append(r)
            rate = {"simulate": "clusters_per_s", "binning": "events_per_s"}.get(kind, "clusters_per_s")
            log(f"    {r['seconds']:.1f} s, {r.get(rate, 0):.4g} {rate.replace('_per_s', '/s')}, peak RSS "
                f"{r['peak_rss_GB']:.2f} GB (load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f})")

        # -- speed-ups and parallel == serial -------------------------------------
        for r in result["runs"]:
            if r["n_jobs"] == 1:
                continue
            base = next(b for b in result["runs"]
                        if (b["kind"], b["n"], b["n_jobs"]) == (r["kind"], r["n"], 1))
            r["speedup_vs_n_jobs1"] = base["seconds"] / r["seconds"]
            if "checksum" in r:
                r["identical_to_n_jobs1"] = r["checksum"] == base["checksum"]
            else:
                a, b = np.load(r["_pred"]), np.load(base["_pred"])
                r["identical_to_n_jobs1"] = bool(np.array_equal(a, b))
                r["max_abs_diff_vs_n_jobs1_dex"] = float(np.max(np.abs(a - b)))
        for r in result["runs"]:
            r.pop("_pred", None)
    result["load_average_end"] = list(os.getloadavg())
    result["total_seconds"] = time.perf_counter() - t_start
    result["table"] = _markdown(result)
    with atomic_output(out / "perf.json", overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=1))
    with atomic_output(out / "perf.md", overwrite=overwrite) as tmp:
        tmp.write_text(result["table"])
    log(f"wrote {out / 'perf.json'} and {out / 'perf.md'}; reproduce with: {command}")
    return result


# ---------------------------------------------------------------------------
# the Markdown table
# ---------------------------------------------------------------------------
def _fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}g}"


def _markdown(res):
    runs = res["runs"]
    m = res["model"]
    pool = res["pool"]

    def get(kind, n, k):
        return next((r for r in runs if (r["kind"], r["n"], r["n_jobs"]) == (kind, n, k)), None)

    def cell(kind, n, key, scale=1.0, digits=3):
        out = []
        for k in res["n_jobs"]:
            r = get(kind, n, k)
            out.append("n/m" if r is None else _fmt(r[key] * scale, digits))
        return " / ".join(out)

    def speedup(kind, n):
        vals = [get(kind, n, k) for k in res["n_jobs"][1:]]
        if not vals or any(v is None for v in vals):
            return "n/m"
        return " / ".join(f"{v['speedup_vs_n_jobs1']:.2f}x{'' if v['identical_to_n_jobs1'] else '*'}"
                          for v in vals)

    jobs = " / ".join(str(k) for k in res["n_jobs"])
    lines = [
        "# Speed and memory (benchmarks/perf.py)", "",
        f"Command: `{res['command']}`", "",
        f"{res['cpu_count']} CPUs ({res['machine']}); skcluster {res['versions']['skcluster']}, torch "
        f"{res['versions']['torch']}, numpy {res['versions']['numpy']}. Load average at the start "
        f"{res['load_average_start'][0]:.1f}, at the end {res['load_average_end'][0]:.1f} (per measurement in "
        "perf.json; a measurement itself adds up to the number of CPUs). Each measurement in a fresh process; "
        f"peak RSS = that process + its workers. Total {res['total_seconds'] / 60:.1f} min.", "",
        f"Model: {m['pipeline']}, {len(m['bands_keV'])} bands, {m['npix']} x {m['npix']} pixels; "
        f"**ensembles fitted for 1 epoch on {m['fitted_on']} clusters only**: the weights do not change the "
        "cost of inference (the scatter in perf.json means nothing). Input: a pool of "
        f"{pool['n_clusters']} simulated {res['survey']} clusters ({pool['n_events'] / pool['n_clusters']:.0f} "
        f"events each on average) repeated up to N, streamed in batches of {res['batch_size']}. "
        f"n_jobs = k: the batches split over k loky workers, torch threads per process "
        f"{res['torch_threads'] or 'cpu_count // k'}.", "",
        f"Cells: values for n_jobs = {jobs}; speed-up = time(n_jobs=1) / time(n_jobs=k) (* = results not "
        "bit-identical to n_jobs=1, see perf.json); n/m = not measured (below).", "",
        f"| N | simulate clusters/s | speed-up | binning Mevents/s | speed-up | inference clusters/s "
        f"({m['n_estimators_inference']} CNNs) | speed-up | peak RSS GB (inference) | "
        f"stream {m['n_estimators_stream']} CNNs: s per 1000 | peak RSS GB (stream) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in res["sizes"]:
        st = get("stream", n, 1)
        lines.append(
            f"| {n} | {cell('simulate', n, 'clusters_per_s')} | {speedup('simulate', n)} | "
            f"{cell('binning', n, 'events_per_s', 1e-6)} | {speedup('binning', n)} | "
            f"{cell('inference', n, 'clusters_per_s')} | {speedup('inference', n)} | "
            f"{cell('inference', n, 'peak_rss_GB')} | {_fmt(st and st['s_per_1000'])} | "
            f"{_fmt(st and st['peak_rss_GB'])} |")
    tr = [r for r in runs if r["kind"] == "train"]
    if tr:
        t0 = tr[0]
        lines += ["", f"Ensemble training ({t0['n_members']} members of the standard CNN, {t0['epochs']} epoch(s), "
                  f"{t0['n']} clusters; fresh process each): "
                  + "; ".join(f"n_jobs={r['n_jobs']}: {r['cold_seconds']:.1f} s first fit (worker start-up "
                              f"included), {r['warm_seconds']:.1f} s second"
                              + (f", speed-up {r['speedup_vs_n_jobs1']:.2f}x (second fit) / "
                                 f"{tr[0]['cold_seconds'] / r['cold_seconds']:.2f}x (first), "
                                 f"{'identical' if r['identical_to_n_jobs1'] else 'NOT bit-identical'} "
                                 "predictions" if r["n_jobs"] != 1 else "")
                              for r in tr) + "."]
    if res["not_measured"]:
        lines += ["", "Not measured:"]
        lines += [f"* {d['kind']} at N={d['n']}: {d['reason']}." for d in res["not_measured"]]
    return "\n".join(lines) + "\n"


def _main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--child":
        _child_main(json.loads(argv[1]))
        return 0
    print("usage: python benchmarks/perf.py; "
          "python benchmarks/perf_harness.py --child SPEC is internal", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main())
