"""Model files written by an attacker: every one is refused before anything is built.

Each crafted file starts from a real saved model (a small standard pipeline
with its CNN ensemble, or a forged minimal tree) and is refused by
``persist.load`` with :class:`~skcluster.persist.ModelFileError` naming the
place and the class, and by ``skcluster predict`` with exit code 2, one line
on stderr, no output and no side effect (no file written, truncated or
created, no directory made).
"""

import copy
import json
import struct
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from skcluster import cli, persist
from skcluster.persist import ModelFileError

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A real saved standard pipeline (1 tiny CNN, 1 epoch) and its JSON and data members."""
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline
    from skcluster.nn.progress import EpochProgress

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = make_survey("efeds", n_clusters=30, random_state=0, verbose=False)
        pipe = make_mass_pipeline(n_estimators=1, max_epochs=1, channels=(4,), dense=(8,), npix=16,
                                  random_state=0, verbose=0)
        pipe.set_params(model__estimator__callbacks=[EpochProgress()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe.fit(data.X, data.y)
        path = persist.save(pipe, tmp_path_factory.mktemp("real") / "model.skc")
        pred = pipe.predict(data.X[:5])
    finally:
        torch.set_num_threads(old)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    return dict(path=path, manifest=json.loads(members["model.json"]), members=members, X=data.X[:5],
                pred=pred)


def _write(path, manifest=None, members=None, **extra):
    """A zip model file from a manifest (dict or raw bytes) and data members."""
    members = dict(members or {"arrays.safetensors": b"", "tensors.safetensors": b""})
    if manifest is not None:
        members["model.json"] = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    members.update(extra)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _forge(tmp_path, root, name="forged.skc"):
    return _write(tmp_path / name, {"format": "skcluster-model", "format_version": 1, "root": root})


def _obj(path, params=None, state=None):
    return {"__object__": path, "params": {"__dict__": params or {}}, "state": {"__dict__": state or {}}}


def _steps(manifest):
    return manifest["root"]["params"]["__dict__"]["steps"]


def _member(manifest):
    """The first fitted CNN of the ensemble in a pipeline manifest."""
    model = _steps(manifest)[-1]["__tuple__"][1]
    return model["state"]["__dict__"]["estimators_"][0]


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if the loader starts building objects, and record the modules it imports."""
    imported = []
    real_import = persist.importlib.import_module

    def record(name, *a, **k):
        imported.append(name)
        return real_import(name, *a, **k)

    class NoBuilder:
        def __init__(self, *a, **k):
            raise AssertionError("the loader started building a refused file")

    monkeypatch.setattr(persist.importlib, "import_module", record)
    monkeypatch.setattr(persist, "_Builder", NoBuilder)
    return imported


def _refused_by_cli(path, tmp_path, capsys):
    """``skcluster predict`` on the file: exit 2, one line, no output."""
    out = tmp_path / "masses.csv"
    cat = tmp_path / "cat.csv"
    cat.write_text("ra,dec,z\n150.0,2.0,0.3\n")
    code = cli.main(["predict", "--model", str(path), "--catalog", str(cat), "--events", str(cat),
                     "--exposure-seconds", "1000", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_INPUT, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "cannot load the model" in lines[0], err
    assert not out.exists()
    return lines[0]


# ---------------------------------------------------------------------------
# the attacks of the issue
# ---------------------------------------------------------------------------
def test_function_transformer_chain_is_refused_and_runs_nothing(real, tmp_path, capsys, no_build):
    """numpy.full_like -> builtins.str -> sklearn's test helper that runs a script: refused."""
    pwned = tmp_path / "pwned.txt"
    code = f"open({str(pwned)!r}, 'w').write('owned')"

    def ft(func, kw=None):
        return _obj("sklearn.preprocessing._function_transformer:FunctionTransformer",
                    {"func": {"__function__": func}, "kw_args": {"__dict__": kw or {}}, "validate": False})

    m = copy.deepcopy(real["manifest"])
    steps = _steps(m)
    steps[1:1] = [
        {"__tuple__": ["fill", ft("numpy:full_like", {"fill_value": code, "dtype": {"__class__": "builtins:object"}})]},
        {"__tuple__": ["str", ft("builtins:str")]},
        {"__tuple__": ["run", ft("sklearn.utils._testing:assert_run_python_script_without_output")]},
    ]
    path = _write(tmp_path / "evil.skc", m, {k: v for k, v in real["members"].items() if k != "model.json"})
    with pytest.raises(ModelFileError, match=r"root.*\['steps'\]\[1\]\[1\]: "
                                             r"'sklearn.preprocessing._function_transformer:FunctionTransformer'"
                                             r" is not an allowed class") as exc:
        persist.load(path)
    assert exc.value.name.endswith(":FunctionTransformer")
    assert not any(n.startswith(("sklearn.utils", "sklearn.preprocessing")) for n in no_build)
    line = _refused_by_cli(path, tmp_path, capsys)
    assert "FunctionTransformer" in line
    assert not pwned.exists()


def test_memmap_in_a_fitted_state_is_refused_and_truncates_nothing(real, tmp_path, capsys, no_build):
    victim = tmp_path / "precious.dat"
    victim.write_bytes(b"irreplaceable data" * 100)
    before = victim.read_bytes()
    memmap = _obj("numpy:memmap", {"filename": str(victim), "mode": "w+", "dtype": {"__dtype__": "<f8"},
                                   "shape": 10})
    for where in ("state", "class", "function", "param"):
        m = copy.deepcopy(real["manifest"])
        resize = next(s["__tuple__"][1] for s in _steps(m) if s["__tuple__"][0] == "resize")
        if where == "state":
            resize["state"]["__dict__"]["shape_"] = memmap
        elif where == "class":
            resize["state"]["__dict__"]["kind_"] = {"__class__": "numpy:memmap"}
        elif where == "function":
            resize["state"]["__dict__"]["kind_"] = {"__function__": "numpy:memmap"}
        else:
            resize["params"]["__dict__"]["shape"] = {"__tuple__": [memmap, 3]}
        path = _write(tmp_path / f"memmap_{where}.skc", m,
                      {k: v for k, v in real["members"].items() if k != "model.json"})
        with pytest.raises(ModelFileError, match="'numpy:memmap'"):
            persist.load(path)
        _refused_by_cli(path, tmp_path, capsys)
    assert victim.read_bytes() == before


@pytest.mark.parametrize("callback", [
    _obj("skorch.callbacks.training:Checkpoint", {"dirname": "DIR", "monitor": None}),
    _obj("skorch.callbacks.training:TrainEndCheckpoint", {"dirname": "DIR"}),
    _obj("skorch.callbacks.training:LoadInitState", {"checkpoint": _obj("skorch.callbacks.training:Checkpoint",
                                                                        {"dirname": "DIR"})}),
    _obj("skorch.callbacks.scoring:EpochScoring", {"scoring": {"__function__": "numpy:save"}, "name": "DIR"}),
    _obj("skorch.callbacks.logging:ProgressBar"),
    _obj("skorch.callbacks.lr_scheduler:LRScheduler", {"policy": "StepLR"}),
])
def test_callbacks_that_touch_the_file_system_are_refused(real, tmp_path, capsys, no_build, callback):
    made = tmp_path / "made_by_the_file"
    cb = json.loads(json.dumps(callback).replace("DIR", str(made)))
    for which in ("member", "template"):
        m = copy.deepcopy(real["manifest"])
        if which == "member":
            net = _member(m)
        else:
            net = _steps(m)[-1]["__tuple__"][1]["params"]["__dict__"]["estimator"]
        net["params"]["__dict__"]["callbacks"].append(cb)
        path = _write(tmp_path / f"cb_{which}.skc", m, {k: v for k, v in real["members"].items() if k != "model.json"})
        with pytest.raises(ModelFileError, match=rf"callbacks'\]\[1\]: '{cb['__object__']}'"):
            persist.load(path)
        _refused_by_cli(path, tmp_path, capsys)
    assert not made.exists()


def test_a_zip_bomb_json_is_refused_from_its_header_without_reading_it(tmp_path, capsys):
    path = tmp_path / "bomb.skc"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("model.json", "w", force_zip64=True) as f:
            chunk = b" " * 2**20
            for _ in range(100):  # 100 MiB of JSON whitespace, about 100 kB compressed
                f.write(chunk)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"model.json is 104857600 bytes uncompressed, over the cap"):
            persist.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
    _refused_by_cli(path, tmp_path, capsys)


def _patch_sizes(raw, name, size):
    """Rewrite the uncompressed size of member ``name`` in both zip headers (a lying archive)."""
    buf = bytearray(raw)
    for sig, off_size, off_name_len, off_name in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        start = 0
        while (i := buf.find(sig, start)) >= 0:
            n = struct.unpack("<H", buf[i + off_name_len:i + off_name_len + 2])[0]
            if bytes(buf[i + off_name:i + off_name + n]) == name.encode():
                buf[i + off_size:i + off_size + 4] = struct.pack("<I", size)
            start = i + 4
    return bytes(buf)


def test_zip_headers_that_lie_about_sizes_are_refused(real, tmp_path, capsys, monkeypatch):
    raw = real["path"].read_bytes()
    # says 100 bytes, holds the whole JSON: reading stops at the cap or the CRC check fails
    path = tmp_path / "small_header.skc"
    path.write_bytes(_patch_sizes(raw, "model.json", 100))
    with pytest.raises(ModelFileError, match="model.json"):
        persist.load(path)
    _refused_by_cli(path, tmp_path, capsys)
    # says 1 TB
    path = tmp_path / "huge_header.skc"
    path.write_bytes(_patch_sizes(raw, "arrays.safetensors", 2**32 - 1))
    with pytest.raises(ModelFileError, match="arrays.safetensors is 4294967295 bytes uncompressed, over the cap"):
        persist.load(path)
    _refused_by_cli(path, tmp_path, capsys)
    # a header under the cap but data over it: the stream read stops at the cap
    monkeypatch.setitem(persist.LIMITS, "json_bytes", 1000)
    path = tmp_path / "stream.skc"
    path.write_bytes(_patch_sizes(raw, "model.json", 900))
    with pytest.raises(ModelFileError, match="model.json"):
        persist.load(path)


@pytest.mark.parametrize("shape", ["deep_list", "deep_dict", "deep_tuple", "many_values", "long_string"])
def test_deep_and_huge_json_is_refused_before_parsing(tmp_path, capsys, shape):
    n = 100_000
    if shape == "deep_list":
        root = b"[" * n + b"]" * n
    elif shape == "deep_dict":
        root = b'{"a":' * n + b"1" + b"}" * n
    elif shape == "deep_tuple":
        root = b'{"__tuple__":[' * 200 + b"1" + b"]}" * 200
    elif shape == "many_values":
        root = b"[" + b"0," * 5_000_000 + b"0]"
    else:
        root = json.dumps("x" * 2_000_000).encode()
    text = b'{"format": "skcluster-model", "format_version": 1, "root": ' + root + b"}"
    path = _write(tmp_path / "deep.skc", text)
    with pytest.raises(ModelFileError, match="over the cap|characters"):
        persist.load(path)
    _refused_by_cli(path, tmp_path, capsys)


def _safetensors(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


@pytest.mark.parametrize("blob, why", [
    (_safetensors({"a0": {"dtype": "F32", "shape": [10**9], "data_offsets": [0, 8]}}, b"\0" * 8),
     "declares shape"),
    (_safetensors({"a0": {"dtype": "F32", "shape": [2], "data_offsets": [0, 80]}}, b"\0" * 8),
     "outside its 8 bytes"),
    (_safetensors({"a0": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
                   "a1": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8), "overlap"),
    (_safetensors({"a0": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 4096),
     "cover 8 of its 4096"),
    (_safetensors({"a0": {"dtype": "OBJECT", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8), "dtype"),
    (struct.pack("<Q", 2**60) + b"{}", "header claims"),
    (struct.pack("<Q", 4) + b"nope", "malformed header"),
    (b"abc", "too short"),
])
def test_safetensors_whose_header_lies_are_refused(tmp_path, capsys, blob, why):
    root = _obj("skcluster.preprocessing.resize:Resizer", {"shape": {"__tuple__": [4, 4]}},
                {"scale_": {"__ndarray__": "a0"}})
    for member in ("arrays.safetensors", "tensors.safetensors"):
        members = {"arrays.safetensors": b"", "tensors.safetensors": b"", member: blob}
        path = _write(tmp_path / "lying.skc", {"format": "skcluster-model", "format_version": 1, "root": root},
                      members)
        with pytest.raises(ModelFileError, match=f"{member}: .*{why}"):
            persist.load(path)
        _refused_by_cli(path, tmp_path, capsys)


# ---------------------------------------------------------------------------
# everything the old allow-list accepted by namespace
# ---------------------------------------------------------------------------
_OLD_NAMESPACES = [
    "numpy:memmap", "numpy:save", "numpy:full_like", "numpy.lib._npyio_impl:savetxt", "numpy:fromfile",
    "builtins:eval", "builtins:open", "builtins:float", "builtins:object", "builtins:str",
    "sklearn.utils._testing:assert_run_python_script_without_output",
    "sklearn.preprocessing._function_transformer:FunctionTransformer",
    "sklearn.utils._joblib:dump", "sklearn.datasets._base:fetch_file",
    "sklearn.linear_model._bayes:BayesianRidge",
    "skorch.callbacks.training:Checkpoint", "skorch.net:NeuralNet",
    "torch.nn.modules.linear:Linear", "torch.serialization:load", "torch.utils.data.dataset:TensorDataset",
    "skcluster.io.catalog:write_table", "skcluster.datasets.files:write_survey",
    "skcluster.preprocessing.cutout:ImageCutout", "skcluster.persist:save",
    "os:system", "subprocess:Popen",
]


@pytest.mark.parametrize("name", _OLD_NAMESPACES)
@pytest.mark.parametrize("tag", ["__object__", "__class__", "__function__"])
def test_every_formerly_trusted_namespace_is_refused_in_every_form(tmp_path, capsys, no_build, name, tag):
    node = _obj(name) if tag == "__object__" else {tag: name}
    # at the root, nested in containers, in a fitted state and as a parameter of an allowed class
    wrappers = [
        lambda n: n,
        lambda n: {"__tuple__": [1, [2, {"__dict__": {"k": {"__dict_items__": [[3, n]]}}}]]},
        lambda n: _obj("skcluster.preprocessing.resize:Resizer", {"shape": {"__tuple__": [4, 4]}},
                       {"x_": {"__dict__": {"deep": [n]}}}),
        lambda n: _obj("skcluster.preprocessing.smooth:GaussianSmoother", {"sigma": n}),
        lambda n: _obj("sklearn.pipeline:Pipeline", {"steps": [{"__tuple__": ["s", n]}]}),
    ]
    for i, wrap in enumerate(wrappers):
        path = _forge(tmp_path, wrap(node), f"ns{i}.skc")
        with pytest.raises(ModelFileError, match=f"{name!r}") as exc:
            persist.load(path)
        assert exc.value.name == name and exc.value.where.startswith("root")
        _refused_by_cli(path, tmp_path, capsys)
    assert name.split(":")[0] not in no_build or name.split(":")[0].startswith("skcluster.")


# ---------------------------------------------------------------------------
# allowed classes with arguments or values they may not have
# ---------------------------------------------------------------------------
def _net_variant(real, tmp_path, edit, name):
    m = copy.deepcopy(real["manifest"])
    edit(_member(m)["params"]["__dict__"], m)
    return _write(tmp_path / name, m, {k: v for k, v in real["members"].items() if k != "model.json"})


@pytest.mark.parametrize("edit, why", [
    (lambda p, m: p.update(compile=True), "compile must be one of"),
    (lambda p, m: p.update(torch_load_kwargs={"__dict__": {"weights_only": False}}), "torch_load_kwargs"),
    (lambda p, m: p.update(optimizer={"__class__": "skcluster.nn.module:ClusterCNN"}), "may not be the optimizer"),
    (lambda p, m: p.update(iterator_train={"__class__": "skorch.dataset:Dataset"}), "may not be the iterator_train"),
    (lambda p, m: p.update(module={"__class__": "torch.nn.modules.linear:Linear"}), "not an allowed class"),
    (lambda p, m: p.update(module="skcluster.nn.module:ClusterCNN"), "module must be one of the allowed"),
    (lambda p, m: p.update(module__evil=1), "takes no argument 'evil'"),
    (lambda p, m: p.update(callbacks__print_log__sink={"__function__": "builtins:print"}), "callbacks__print_log"),
    (lambda p, m: p.update(iterator_train__collate_fn={"__function__": "builtins:exec"}), "not 'collate_fn'"),
    (lambda p, m: p.update(not_an_argument=1), "takes no argument 'not_an_argument'"),
    (lambda p, m: p.update(callbacks={"__dict__": {}}), "callbacks must be None or a list"),
    (lambda p, m: p.update(callbacks=[_obj("skcluster.ensemble:DeepEnsembleRegressor")]), "not an allowed callback"),
    (lambda p, m: p.update(dataset={"__class__": "skorch.dataset:Dataset"}, dataset__length={"__ndarray_values__": [
        _obj("numpy:memmap")], "dtype": "object", "shape": [1]}), "where only plain data"),
])
def test_network_arguments_are_checked(real, tmp_path, capsys, no_build, edit, why):
    path = _net_variant(real, tmp_path, edit, "net.skc")
    with pytest.raises(ModelFileError, match=why):
        persist.load(path)
    _refused_by_cli(path, tmp_path, capsys)


@pytest.mark.parametrize("root, why", [
    (_obj("sklearn.pipeline:Pipeline", {"steps": [], "memory": "/tmp/cache"}), "memory must be one of"),
    (_obj("skcluster.preprocessing.binning:BandBinner", {"bands": "ho3", "evil": 1}), "takes no argument 'evil'"),
    (_obj("skcluster.preprocessing.resize:Resizer", {}, {"transform": 1}), "would hide a method"),
    (_obj("skcluster.preprocessing.resize:Resizer", {}, {"__class__": 1}), "not a fitted attribute name"),
    (_obj("skcluster.preprocessing.resize:Resizer", {}, {"shape": 1}), "not a fitted attribute name"),
    (_obj("skcluster.preprocessing.resize:Resizer", {}, {"n_features_in_": 1}), None),  # a fine state
    (_obj("skcluster.nn.module:ClusterCNN"), "may only be named as a network's parameter"),
    (_obj("skcluster.demo:EpochProgress"), "allowed only in a network's callbacks"),
    ({"__object__": "skcluster.preprocessing.resize:Resizer", "params": {"__dict__": {}}, "persist": None},
     "cannot restore a saved state"),
    ({"__dtype__": "V8"}, "dtype 'V8' is not allowed"),
    ({"__dtype__": "[('a', '<f8')]"}, "is not allowed"),
    ({"__npscalar__": "<M8[s]", "value": 1}, "is not allowed"),
    ({"__float__": "1" * 5000}, "__float__ must be"),
    ({"__torch_dtype__": "Tensor"}, "torch dtype 'Tensor'"),
    ({"__ndarray__": "a0"}, "array 'a0' is not in arrays.safetensors"),
    ({"__tensor__": "t0"}, "tensor 't0' is not in tensors.safetensors"),
    ({"__ndarray_values__": [1, 2], "dtype": "object", "shape": [3]}, "does not hold 2 values"),
    ({"__ndarray_values__": [1], "dtype": "<f8", "shape": [1]}, "hold strings or plain objects"),
    ({"__dict_items__": [[{"__dict__": {}}, 1]]}, "a dict key must be"),
    ({"__tuple__": [], "__class__": "os:system"}, "malformed"),
    ({"nothing": 1}, "malformed node"),
    ({"__object__": ["skcluster.preprocessing.resize", "Resizer"], "params": {"__dict__": {}}, "state": {"__dict__": {}}},
     "must be a string"),
])
def test_allowed_classes_with_forbidden_values(tmp_path, capsys, root, why):
    path = _forge(tmp_path, root)
    if why is None:
        assert persist.load(path).n_features_in_ == 1
        return
    with pytest.raises(ModelFileError, match=why):
        persist.load(path)
    _refused_by_cli(path, tmp_path, capsys)


def test_archive_structure_is_checked(real, tmp_path, capsys):
    data = {k: v for k, v in real["members"].items() if k != "model.json"}
    cases = {
        "extra member": (_write(tmp_path / "a.skc", real["manifest"], data, **{"evil.pkl": b"x"}),
                         "unexpected archive members"),
        "newer format": (_write(tmp_path / "b.skc", dict(real["manifest"], format_version=2), data),
                         "format version 2; this skcluster reads up to version 1: upgrade"),
        "bad version": (_write(tmp_path / "c.skc", dict(real["manifest"], format_version="1"), data),
                        "malformed format_version"),
        "duplicate key": (_write(tmp_path / "d.skc", b'{"format": "skcluster-model", "format": "x", '
                                                     b'"format_version": 1, "root": 1}', data), "duplicate key"),
        "not utf-8": (_write(tmp_path / "e.skc", b"\x80not json", data), "not UTF-8"),
        "not json": (_write(tmp_path / "g.skc", b"not json", data), "not valid JSON"),
    }
    path = tmp_path / "f.skc"  # the same member twice
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("model.json", json.dumps(real["manifest"]))
            zf.writestr("model.json", b"{}")
    cases["duplicate member"] = (path, "unexpected archive members")
    for path, why in cases.values():
        with pytest.raises(ModelFileError, match=why):
            persist.load(path)
        _refused_by_cli(path, tmp_path, capsys)


# ---------------------------------------------------------------------------
# the real models still load
# ---------------------------------------------------------------------------
def test_real_model_loads_and_predicts_identically(real):
    loaded = persist.load(real["path"])
    np.testing.assert_array_equal(loaded.predict(real["X"]), real["pred"])
    assert set(persist.check_file(real["path"])) <= set(persist.ALLOWED)


def test_every_class_the_registry_names_imports_and_is_a_class():
    for path, entry in persist.ALLOWED.items():
        module, _, qualname = path.partition(":")
        obj = sys.modules.get(module) or __import__(module, fromlist=["_"])
        for part in qualname.split("."):
            obj = getattr(obj, part)
        assert isinstance(obj, type), path
        own = f"{obj.__module__}:{obj.__qualname__}"
        assert own == path or own in persist.ALLOWED, f"{path} resolves to {own}, which must be listed too"
        assert entry.kind in ("estimator", "callback", "class_value")


def test_a_format_1_file_written_before_the_registry_still_loads():
    """tests/data/count_rate_v1.skc: a count-rate baseline saved by the earlier skcluster (format 1)."""
    from skcluster import ClusterSample

    path = DATA / "count_rate_v1.skc"
    assert persist.read_manifest(path)["format_version"] == 1
    model = persist.load(path)
    ref = json.loads((DATA / "count_rate_v1.json").read_text())
    X = ClusterSample(ml_rate=np.array(ref["ml_rate"]), z=np.array(ref["z"]))
    np.testing.assert_allclose(model.predict(X), ref["predicted"], rtol=0, atol=1e-12)


def test_trusted_names_extend_the_registry_exactly(tmp_path):
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    scaler = StandardScaler().fit(rng.normal(size=(10, 2)))
    path = persist.save(scaler, tmp_path / "s.skc", trusted=[StandardScaler])
    with pytest.raises(ModelFileError, match="StandardScaler' is not an allowed class"):
        persist.load(path)
    with pytest.raises(TypeError, match="exact class names"):
        persist.load(path, trusted=["sklearn."])
    loaded = persist.load(path, trusted=["sklearn.preprocessing._data:StandardScaler"])
    np.testing.assert_array_equal(loaded.mean_, scaler.mean_)
    # trusting a class does not trust what it is given: functions stay refused
    m = persist.read_manifest(path)
    m["root"]["params"]["__dict__"]["copy"] = {"__function__": "builtins:eval"}
    with pytest.raises(ModelFileError, match="'builtins:eval' is a function reference"):
        persist.load(_write(tmp_path / "t.skc", m), trusted=[StandardScaler])


def test_a_moved_class_loads_under_its_old_path_when_both_are_listed(tmp_path, monkeypatch):
    """How a class moved between modules stays loadable (one more line in ALLOWED)."""
    old_path = "skcluster.preprocessing:Resizer"  # a re-export: the class lives in .resize
    root = _obj(old_path, {"shape": {"__tuple__": [4, 4]}}, {"n_features_in_": 1})
    path = _forge(tmp_path, root)
    with pytest.raises(ModelFileError, match=f"'{old_path}' is not an allowed class"):
        persist.load(path)
    monkeypatch.setitem(persist.ALLOWED, old_path, persist.Allowed())
    assert persist.load(path).shape == (4, 4)
    # an old path resolving to a class whose own path is not listed stays refused
    monkeypatch.delitem(persist.ALLOWED, "skcluster.preprocessing.resize:Resizer")
    with pytest.raises(ModelFileError, match="resolves to 'skcluster.preprocessing.resize:Resizer', which is not"):
        persist.load(path)
