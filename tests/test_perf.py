"""benchmarks/perf_harness.py: a tiny run of the speed and memory benchmark.

Timings are not asserted (the CI machine is shared); the test checks that the
measurements run, report positive finite rates, that parallel work gives the
same numbers as serial work, and that results are not overwritten.
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest


def _harness():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "perf_harness.py"
    spec = importlib.util.spec_from_file_location("skcluster_perf_harness", path)
    if spec.name not in sys.modules:  # one module object per process
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules[spec.name]


perf = _harness()

TINY = dict(sizes=(32,), n_estimators=2, stream_estimators=1, pool_size=40, train_clusters=40,
            train_problem=dict(n_members=2, n_clusters=32, epochs=1), batch_size=16,
            # one torch thread per process whatever n_jobs: predictions comparable bit for bit
            torch_threads=1, kinds=("binning", "inference", "stream"), verbose=0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf")
    return out, perf.run_perf(out, **TINY)


def test_run_perf_writes_every_number(tiny_run):
    out, res = tiny_run
    data = json.loads((out / "perf.json").read_text())
    for key in ("command", "cpu_count", "versions", "runs", "not_measured", "model", "pool",
                "load_average_start", "load_average_end", "settings"):
        assert key in data, key
    assert data["cpu_count"] >= 1 and "torch" in data["versions"]
    assert (out / "perf.md").read_text() == res["table"]
    assert "1 epoch" in res["table"] and "| 32 |" in res["table"]
    kinds = {(r["kind"], r["n"], r["n_jobs"]) for r in data["runs"]}
    assert kinds == {("binning", 32, 1), ("binning", 32, 2), ("inference", 32, 1), ("inference", 32, 2),
                     ("stream", 32, 1)}
    assert any("simulate" in d["kind"] and "train" in d["kind"] and "not requested" in d["reason"]
               for d in data["not_measured"])
    for r in data["runs"]:
        assert math.isfinite(r["seconds"]) and r["seconds"] > 0
        assert 0 < r["peak_rss_GB"] < 64
        assert len(r["load_before"]) == 3 and len(r["load_after"]) == 3
        for key in ("clusters_per_s", "events_per_s"):
            if key in r:
                assert math.isfinite(r[key]) and r[key] > 0
    binning = [r for r in data["runs"] if r["kind"] == "binning"]
    # the pool has ~5000 events per cluster (eFEDS depth): events/s well above clusters/s
    assert all(r["n_events"] > 100 * r["n"] for r in binning)


def test_parallel_equals_serial(tiny_run):
    _, res = tiny_run
    par = [r for r in res["runs"] if r["n_jobs"] == 2]
    assert {r["kind"] for r in par} == {"binning", "inference"}
    for r in par:
        assert r["identical_to_n_jobs1"], r
        assert r["speedup_vs_n_jobs1"] > 0
        if "max_abs_diff_vs_n_jobs1_dex" in r:
            assert r["max_abs_diff_vs_n_jobs1_dex"] == 0.0


def test_refuses_to_overwrite(tiny_run):
    out, _ = tiny_run
    before = (out / "perf.json").read_text()
    with pytest.raises(FileExistsError, match="perf.json"):
        perf.run_perf(out, **TINY)
    assert (out / "perf.json").read_text() == before


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="sizes"):
        perf.run_perf(tmp_path, sizes=(0,))
    with pytest.raises(ValueError, match="kinds"):
        perf.run_perf(tmp_path, kinds=("speed",))
    with pytest.raises(ValueError, match="n_jobs"):
        perf.run_perf(tmp_path, n_jobs=(0,))
    assert not (tmp_path / "perf.json").exists()


def test_peak_rss_measures_this_process():
    with perf.PeakRSS(interval=0.01) as mem:
        block = np.ones(50_000_000 // 8)  # 50 MB touched
        block.sum()
    assert mem.peak > 50e6
