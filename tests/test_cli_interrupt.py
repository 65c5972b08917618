"""Ctrl-C (SIGINT) stops the whole command, exits 130 in one line and writes nothing.

The interrupts are real signals sent to this process at a chosen moment (from
a skorch callback, a writer or a rename), with the command line's handler
installed by ``skcluster.cli.main``.
"""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from skorch.net import NeuralNet

from skcluster import cli
from skcluster.io import atomic as _util
from skcluster.io.interrupts import CommandInterrupts

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def default_sigint():
    """Start each test from Python's own SIGINT handler (other tests' libraries,
    e.g. a Dask cluster, may leave another one installed)."""
    old = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _sigint():
    os.kill(os.getpid(), signal.SIGINT)


def _entries(folder):
    return sorted(p.name for p in Path(folder).iterdir())


class _Counter:
    """Patches NeuralNet's epoch hook: counts fits and epochs, sends SIGINT at a given epoch."""

    def __init__(self, monkeypatch, at_epoch=None):
        self.fits = 0
        self.epochs = 0
        self.at = at_epoch
        orig_begin, orig_epoch = NeuralNet.on_train_begin, NeuralNet.on_epoch_end
        counter = self

        def on_train_begin(net, *a, **k):
            counter.fits += 1
            return orig_begin(net, *a, **k)

        def on_epoch_end(net, *a, **k):
            counter.epochs += 1
            if counter.at is not None and counter.epochs == counter.at:
                _sigint()
            return orig_epoch(net, *a, **k)

        monkeypatch.setattr(NeuralNet, "on_train_begin", on_train_begin)
        monkeypatch.setattr(NeuralNet, "on_epoch_end", on_epoch_end)


def _toy_net(max_epochs=20):
    from skcluster.nn import CNNRegressor

    return CNNRegressor(module__channels=(4,), module__dense=(8,), max_epochs=max_epochs,
                        early_stopping=False, batch_size=32, random_state=0)


def test_skorch_swallows_ctrl_c_but_not_under_the_command_line_guard(monkeypatch):
    from skcluster.ensemble import DeepEnsembleRegressor
    from skcluster.nn import make_toy_sample

    X, y = make_toy_sample(64, random_state=0)
    # plain skorch: the interrupt ends training early and fit returns as if all was well
    c = _Counter(monkeypatch, at_epoch=2)
    net = _toy_net().fit(X, y)
    assert c.epochs == 2 and len(net.history_) == 2
    # under the guard: the interrupt leaves fit, and an ensemble trained member by
    # member (skorch's own loop) trains no further member
    c = _Counter(monkeypatch, at_epoch=2)
    with CommandInterrupts(), pytest.raises(KeyboardInterrupt):
        DeepEnsembleRegressor(_toy_net(), n_estimators=3, random_state=0, vectorize=False).fit(X, y)
    assert c.fits == 1 and c.epochs == 2
    # the guard is gone afterwards: skorch and the SIGINT handler are as before
    assert NeuralNet.notify.__qualname__ == "NeuralNet.notify"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _BatchCounter:
    """Sends SIGINT at the n-th batch of the vectorised training loop (which does
    not go through skorch's epoch hooks)."""

    def __init__(self, monkeypatch, at_batch):
        import skcluster.nn.vectorised as vec

        self.batches = 0
        orig = vec._stack_batches
        counter = self

        def stack(*a, **k):
            counter.batches += 1
            if counter.batches == at_batch:
                _sigint()
            return orig(*a, **k)

        monkeypatch.setattr(vec, "_stack_batches", stack)


def test_vectorised_training_stops_on_ctrl_c_and_keeps_no_member(monkeypatch):
    from skcluster.ensemble import DeepEnsembleRegressor
    from skcluster.nn import make_toy_sample

    X, y = make_toy_sample(64, random_state=0)
    c = _BatchCounter(monkeypatch, at_batch=3)
    ens = DeepEnsembleRegressor(_toy_net(), n_estimators=3, random_state=0, vectorize=True)
    with CommandInterrupts(), pytest.raises(KeyboardInterrupt):
        ens.fit(X, y)
    assert c.batches == 3 and not hasattr(ens, "estimators_")


@pytest.fixture(scope="module")
def small_survey():
    from skcluster.datasets import make_survey

    return make_survey("efeds", n_clusters=40, random_state=0, verbose=False)


def _one_line_130(code, capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_INTERRUPTED == 130
    assert err[-1] == f"skcluster {command}: interrupted; nothing was written"
    assert not any("Traceback" in line for line in err)


def test_train_interrupted_in_the_first_member_saves_nothing(monkeypatch, small_survey, tmp_path, capsys):
    import skcluster.datasets

    monkeypatch.setattr(skcluster.datasets, "make_survey", lambda *a, **k: small_survey)
    c = _BatchCounter(monkeypatch, at_batch=3)  # train fits the members together (vectorised)
    out = tmp_path / "m.skc"
    code = cli.main(["train", "--n-clusters", "40", "--n-estimators", "3", "--max-epochs", "30", "--npix",
                     "16", "--channels", "4", "--dense", "8", "--out", str(out), "--quiet"])
    _one_line_130(code, capsys, "train")
    assert c.batches == 3  # training stopped there
    assert _entries(tmp_path) == []


def test_train_interrupted_while_saving_leaves_the_old_model(monkeypatch, small_survey, tmp_path, capsys):
    import zipfile

    import skcluster.datasets

    monkeypatch.setattr(skcluster.datasets, "make_survey", lambda *a, **k: small_survey)
    out = tmp_path / "m.skc"
    out.write_bytes(b"the user's earlier model")
    real_writestr = zipfile.ZipFile.writestr

    def writestr(self, name, *a, **k):
        if name == "tensors.safetensors":
            _sigint()
        return real_writestr(self, name, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    code = cli.main(["train", "--n-clusters", "40", "--n-estimators", "1", "--max-epochs", "1", "--npix", "16",
                     "--channels", "4", "--dense", "8", "--out", str(out), "--overwrite", "--quiet"])
    _one_line_130(code, capsys, "train")
    assert out.read_bytes() == b"the user's earlier model"
    assert _entries(tmp_path) == ["m.skc"]


def test_simulate_interrupted_while_writing_leaves_nothing(monkeypatch, tmp_path, capsys):
    import skcluster.datasets.files as files

    real = files.write_events
    calls = []

    def write_events(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            _sigint()
        return real(*a, **k)

    monkeypatch.setattr(files, "write_events", write_events)
    code = cli.main(["simulate", "--n-clusters", "6", "--out", str(tmp_path / "mock"), "--quiet"])
    _one_line_130(code, capsys, "simulate")
    assert len(calls) == 3
    assert _entries(tmp_path) == []


def test_simulate_removes_the_hidden_folder_of_a_killed_run(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".mock.skcluster-tmp-{dead.pid}-abc123"
    (stale / "survey" / "events").mkdir(parents=True)
    (stale / "survey" / "events" / "cluster_00000.fits").write_bytes(b"half a file")
    alive = tmp_path / f".mock.skcluster-tmp-{os.getppid()}-def456"  # a running process's: kept
    alive.mkdir()
    assert cli.main(["simulate", "--n-clusters", "3", "--out", str(tmp_path / "mock"), "--quiet"]) == 0
    assert _entries(tmp_path) == [alive.name, "mock"]
    assert sorted(p.name for p in (tmp_path / "mock" / "events").iterdir()) == [
        "cluster_00000.fits", "cluster_00001.fits", "cluster_00002.fits"]


def test_a_commit_interrupted_halfway_is_undone(monkeypatch, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a", "b"):
        (out / name).write_text(f"old {name}")
    stage = tmp_path / "stage"
    stage.mkdir()
    for name in ("a", "b", "c"):
        (stage / name).write_text(f"new {name}")
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 3:  # after "a" is in place, while "b" moves
            _sigint()
        return real(src, dst)

    monkeypatch.setattr(_util.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        _util.commit_files([(stage / n, out / n) for n in ("a", "b", "c")])
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a": "old a", "b": "old b"}
    assert _entries(stage) == ["a", "b", "c"]
    monkeypatch.setattr(_util.os, "replace", real)
    _util.commit_files([(stage / n, out / n) for n in ("a", "b", "c")])
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a": "new a", "b": "new b", "c": "new c"}


def test_demo_interrupted_while_writing_its_files_leaves_nothing(monkeypatch, tmp_path, capsys):
    import skcluster.io

    real = skcluster.io.write_table

    def write_table(*a, **k):
        real(*a, **k)
        _sigint()  # the model and the predictions are written (in the stage)

    monkeypatch.setattr(skcluster.io, "write_table", write_table)
    out = tmp_path / "demo"
    code = cli.main(["demo", "--n-clusters", "20", "--n-estimators", "1", "--max-epochs", "1", "--out", str(out),
                     "--quiet"])
    _one_line_130(code, capsys, "demo")
    assert _entries(tmp_path) == []


def test_predict_interrupted_writes_nothing(monkeypatch, tmp_path, capsys):
    import skcluster.predict

    def predict_catalog(*a, **k):
        _sigint()
        raise AssertionError("not reached")

    monkeypatch.setattr(skcluster.predict, "predict_catalog", predict_catalog)
    monkeypatch.setattr(cli, "_load_model", lambda p: _FakeModel())
    cat = tmp_path / "cat.csv"
    cat.write_text("ra,dec,z\n150.0,2.0,0.3\n")
    out = tmp_path / "masses.fits"
    code = cli.main(["predict", "--model", "m.skc", "--catalog", str(cat), "--events", str(cat),
                     "--exposure-seconds", "1000", "--out", str(out), "--quiet"])
    _one_line_130(code, capsys, "predict")
    assert _entries(tmp_path) == ["cat.csv"]


class _FakeModel:
    """Enough of a fitted mass pipeline for predict's checks."""

    def __init__(self):
        from sklearn.pipeline import Pipeline

        from skcluster.preprocessing import BandBinner

        b = BandBinner(bands="ho3", size_arcmin=10.0, npix=8)
        b.bands_keV_ = [(0.5, 1.2), (1.2, 2.0), (2.0, 7.0)]
        b.image_shape_ = (8, 8)
        self.steps = Pipeline([("bin", b)]).steps


def test_benchmark_interrupted_removes_what_it_wrote(monkeypatch, tmp_path, capsys):
    import skcluster.benchmark

    def run_benchmark(out, **kwargs):
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text("{}")
        _sigint()

    monkeypatch.setattr(skcluster.benchmark, "run_benchmark", run_benchmark)
    code = cli.main(["benchmark", "--quick", "--out", str(tmp_path / "bench"), "--quiet", "--yes"])
    _one_line_130(code, capsys, "benchmark")
    assert _entries(tmp_path) == []
    # an existing folder keeps what it had
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "notes.txt").write_text("mine")
    code = cli.main(["benchmark", "--quick", "--out", str(tmp_path / "bench"), "--quiet", "--overwrite", "--yes"])
    assert code == 130
    assert _entries(tmp_path / "bench") == ["notes.txt"]


def test_an_interrupt_outside_the_main_thread_is_not_deferred(tmp_path):
    """commit_files works from worker threads (signals only reach the main thread)."""
    (tmp_path / "s").write_text("x")
    t = threading.Thread(target=_util.commit_files, args=([(tmp_path / "s", tmp_path / "d")],))
    t.start()
    t.join()
    assert (tmp_path / "d").read_text() == "x" and np.all([not (tmp_path / "s").exists()])


def test_clean_stale_removes_only_dead_processes_files_and_restores_a_kept_original(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".m.skc.skcluster-tmp-{dead.pid}-ab.skc").write_bytes(b"half")
    (tmp_path / f".m.skc.skcluster-old-{dead.pid}-cd").write_bytes(b"the original")  # killed mid-commit
    (tmp_path / f".m.skc.skcluster-tmp-{os.getppid()}-ef.skc").write_bytes(b"a running writer's")
    (tmp_path / f".other.csv.skcluster-tmp-{dead.pid}-gh.csv").write_bytes(b"half")
    (tmp_path / ".m.skc.notours").write_bytes(b"a user's hidden file")
    _util.clean_stale(tmp_path / "m.skc")
    assert _entries(tmp_path) == [".m.skc.notours", f".m.skc.skcluster-tmp-{os.getppid()}-ef.skc",
                                  f".other.csv.skcluster-tmp-{dead.pid}-gh.csv", "m.skc"]
    assert (tmp_path / "m.skc").read_bytes() == b"the original"
    _util.clean_stale(tmp_path / "*")
    assert _entries(tmp_path) == [".m.skc.notours", f".m.skc.skcluster-tmp-{os.getppid()}-ef.skc", "m.skc"]
    # the command line cleans beside its output before it starts
    (tmp_path / f".out.csv.skcluster-tmp-{dead.pid}-ij.csv").write_bytes(b"half")
    cli._check_output_file(tmp_path / "out.csv", overwrite=False)
    assert f".out.csv.skcluster-tmp-{dead.pid}-ij.csv" not in _entries(tmp_path)


def test_ctrl_c_after_the_outputs_are_in_place_keeps_them(monkeypatch, small_survey, tmp_path, capsys):
    """Once the model file is written, a Ctrl-C no longer stops train: it ends normally, file kept."""
    import skcluster.datasets
    import skcluster.preprocessing.bands as bands

    monkeypatch.setattr(skcluster.datasets, "make_survey", lambda *a, **k: small_survey)
    real = bands.format_bands

    def format_bands(*a, **k):  # runs right after the save, for the closing message
        _sigint()
        return real(*a, **k)

    monkeypatch.setattr(bands, "format_bands", format_bands)
    out = tmp_path / "m.skc"
    code = cli.main(["train", "--n-clusters", "40", "--n-estimators", "1", "--max-epochs", "1", "--npix", "16",
                     "--channels", "4", "--dense", "8", "--out", str(out), "--quiet"])
    assert code == cli.EXIT_OK
    assert "saved the model" in capsys.readouterr().out
    assert _entries(tmp_path) == ["m.skc"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # in-process: restored
