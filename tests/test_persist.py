"""skcluster.persist: the safe zip format, and pickle/joblib."""

import json
import math
import warnings
import zipfile

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import BayesianRidge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skcluster import ClusterSample, SkclusterWarning, persist
from skcluster.ensemble import DeepEnsembleRegressor
from skcluster.nn import CNNRegressor, make_toy_sample

HERE = __name__  # the module name pytest gave this file
TRUST = (f"{HERE}:ToyJoiner",)  # the test's own transformer, trusted by exact name


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ToyJoiner(TransformerMixin, BaseEstimator):
    """Stand-in for the preprocessing chain: log-scales counts, joins z as the scalar.

    Its fitted state exercises the encoder: ints, tuples, float32 arrays, a
    dict with non-string keys, strings, NaN.
    """

    def __init__(self, eps=1e-3):
        self.eps = eps

    def fit(self, X, y=None):
        X.require("images", "z", step="ToyJoiner")
        self.n_bands_ = int(X["images"].shape[1])
        self.image_shape_ = tuple(int(s) for s in X["images"].shape[2:])
        self.band_scale_ = np.log1p(X["images"]).mean(axis=(0, 2, 3)).astype(np.float32) + self.eps
        self.notes_ = {
            1: "one", (2, 3): np.float32(1.5), "nan": math.nan, "inf": -math.inf,
            "names": np.array(["soft", "hard"]), "objs": np.array([None, "x", 3], dtype=object),
            "flag": np.bool_(True), "small": np.arange(3, dtype=np.int16), "dt": np.dtype("float32"),
            "empty": np.zeros((0, 4)), "scalar0d": np.array(2.5), "nested": [1, (2.0, [None])],
        }
        return self

    def transform(self, X):
        images = (np.log1p(X["images"]) / self.band_scale_[None, :, None, None]).astype(np.float32)
        return ClusterSample(images=images, scalars=np.asarray(X["z"], np.float32)[:, None])


class Unsavable(ToyJoiner):
    def fit(self, X, y=None):
        super().fit(X, y)
        self.rng_ = np.random.RandomState(0)  # not plain data
        return self


def _raw(n=64, seed=0):
    X, y = make_toy_sample(n, n_bands=2, image_size=16, random_state=seed)
    return ClusterSample(images=X["images"], z=X["scalars"][:, 0].astype(np.float64)), y


@pytest.fixture(scope="module")
def fitted_pipeline():
    X, y = _raw()
    member = CNNRegressor(
        module__channels=(4, 8), module__dense=(16,), batch_size=32, max_epochs=2,
        autocast="bfloat16", channels_last=True,
    )
    pipe = Pipeline([("join", ToyJoiner()), ("ens", DeepEnsembleRegressor(member, n_estimators=2, random_state=0))])
    return pipe.fit(X, y), X, y


def test_pipeline_of_transformer_and_cnn_ensemble_round_trips(fitted_pipeline, tmp_path):
    pipe, X, y = fitted_pipeline
    path = persist.save(pipe, tmp_path / "model.skc", trusted=TRUST)
    with zipfile.ZipFile(path) as zf:  # JSON and safetensors only, no pickle
        assert sorted(zf.namelist()) == ["arrays.safetensors", "model.json", "tensors.safetensors"]
        manifest = json.loads(zf.read("model.json"))
    assert manifest["estimator"] == "sklearn.pipeline:Pipeline"
    assert manifest["versions"]["torch"] == torch.__version__

    loaded = persist.load(path, trusted=TRUST)
    m0, s0 = pipe.predict(X, return_std=True)
    m1, s1 = loaded.predict(X, return_std=True)
    np.testing.assert_array_equal(m0, m1)
    np.testing.assert_array_equal(s0, s1)

    join = loaded.named_steps["join"]
    assert join.image_shape_ == (16, 16) and isinstance(join.image_shape_, tuple)
    assert join.band_scale_.dtype == np.float32
    notes = join.notes_
    assert notes[1] == "one" and notes[(2, 3)] == np.float32(1.5) and isinstance(notes[(2, 3)], np.float32)
    assert math.isnan(notes["nan"]) and notes["inf"] == -math.inf
    assert notes["names"].tolist() == ["soft", "hard"] and notes["names"].dtype.kind == "U"
    assert notes["objs"].dtype == object and notes["objs"].tolist() == [None, "x", 3]
    assert notes["small"].dtype == np.int16 and notes["dt"] == np.dtype("float32")
    assert notes["empty"].shape == (0, 4) and notes["scalar0d"].shape == ()
    assert notes["nested"] == [1, (2.0, [None])] and isinstance(notes["flag"], np.bool_)

    ens, ens0 = loaded.named_steps["ens"], pipe.named_steps["ens"]
    np.testing.assert_array_equal(ens.seeds_, ens0.seeds_)
    net, net0 = ens.estimators_[1], ens0.estimators_[1]
    assert net.get_params()["module__channels"] == (4, 8) and net.autocast == "bfloat16"
    assert net.input_shape_ == (2, 16, 16) and net.best_epoch_ == net0.best_epoch_
    assert len(net.history_) == len(net0.history_)
    assert net.history_[-1, "valid_loss"] == net0.history_[-1, "valid_loss"]
    # optimizer state came along: training can go on
    s_loaded = net.optimizer_.state_dict()["state"]
    s_orig = net0.optimizer_.state_dict()["state"]
    assert torch.equal(s_loaded[0]["exp_avg"], s_orig[0]["exp_avg"])
    net.partial_fit(loaded.named_steps["join"].transform(X), y)


def test_untrusted_classes_are_refused(fitted_pipeline, tmp_path):
    pipe, _, _ = fitted_pipeline
    path = persist.save(pipe, tmp_path / "model.skc", trusted=TRUST)
    with pytest.raises(persist.ModelFileError, match=rf"root.*\['steps'\]\[0\]\[1\]: '{HERE}:ToyJoiner' is not an allowed class.*trusted="):
        persist.load(path)
    with pytest.raises(TypeError, match="exact class names"):
        persist.load(path, trusted=(HERE,))  # whole modules are no longer trusted
    with pytest.raises(TypeError, match=rf"load would refuse.*'{HERE}:ToyJoiner'"):
        persist.save(pipe, tmp_path / "again.skc")
    assert not (tmp_path / "again.skc").exists()


def _forge(tmp_path, root):
    """A model file whose JSON was written by someone else."""
    path = tmp_path / "forged.skc"
    manifest = {"format": "skcluster-model", "format_version": 1, "root": root}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.json", json.dumps(manifest))
        zf.writestr("arrays.safetensors", b"")
        zf.writestr("tensors.safetensors", b"")
    return path


@pytest.mark.parametrize(
    "root",
    [
        {"__function__": "os:system"},
        {"__object__": "subprocess:Popen", "params": {"__dict__": {"args": "touch pwned"}}, "state": {"__dict__": {}}},
        # a trusted module re-exporting an untrusted object (sklearn.utils.fixes imports os ...)
        {"__function__": "sklearn.base:os.system"},
        {"__function__": "builtins:eval"},
        {"__class__": "sklearn.base:BaseEstimator.__init__.__globals__"},
    ],
)
def test_forged_files_cannot_run_code(tmp_path, root):
    path = _forge(tmp_path, root)
    with pytest.raises(persist.ModelFileError, match="refusing to load.*root"):
        persist.load(path)
    assert not (tmp_path / "pwned").exists()


def test_overwrite_refused_and_atomic(fitted_pipeline, tmp_path):
    pipe, X, y = fitted_pipeline
    path = tmp_path / "model.skc"
    persist.save(pipe, path, trusted=TRUST)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        persist.save(pipe, path, trusted=TRUST)
    assert path.read_bytes() == before

    bad = Pipeline([("join", Unsavable()), ("ens", pipe.named_steps["ens"])]).fit(X, y)
    with pytest.raises(TypeError, match=r"estimator\.<params>\['steps'\]\[0\]\[1\]\['rng_'\].*RandomState"):
        persist.save(bad, path, overwrite=True)
    assert path.read_bytes() == before  # the old file survives a failed save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skc"]  # no temporary left
    persist.save(pipe, path, overwrite=True, trusted=TRUST)


def test_unfitted_and_bad_files(tmp_path):
    with pytest.raises(NotFittedError, match="refusing to save an unfitted"):
        persist.save(DeepEnsembleRegressor(BayesianRidge()), tmp_path / "m.skc")
    with pytest.raises(FileNotFoundError, match="model file not found"):
        persist.load(tmp_path / "missing.skc")
    junk = tmp_path / "junk.pkl"
    joblib.dump({"a": 1}, junk)
    with pytest.raises(persist.ModelFileError, match="not a skcluster model file.*joblib.load"):
        persist.load(junk)


def test_sklearn_members_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(0, 0.1, 40)
    pipe = Pipeline(
        [("s", StandardScaler()), ("e", DeepEnsembleRegressor(BayesianRidge(), n_estimators=3, bootstrap=True, random_state=0))]
    ).fit(X, y)
    trust = ["sklearn.preprocessing._data:StandardScaler", BayesianRidge]
    with pytest.raises(TypeError, match="StandardScaler"):
        persist.save(pipe, tmp_path / "p.skc")
    loaded = persist.load(persist.save(pipe, tmp_path / "p.skc", trusted=trust), trusted=trust)
    for a, b in zip(pipe.predict(X, return_std=True), loaded.predict(X, return_std=True)):
        np.testing.assert_array_equal(a, b)
    assert persist.read_manifest(tmp_path / "p.skc")["root"]["__object__"] == "sklearn.pipeline:Pipeline"


def test_joblib_round_trip(fitted_pipeline, tmp_path):
    pipe, X, _ = fitted_pipeline
    joblib.dump(pipe, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    for a, b in zip(pipe.predict(X, return_std=True), loaded.predict(X, return_std=True)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only fallback")
def test_net_saved_for_cuda_loads_on_cpu(tmp_path):
    X, y = make_toy_sample(48, random_state=1)
    net = CNNRegressor(module__channels=(4,), module__dense=(8,), input_scaling="log1p", max_epochs=1).fit(X, y)
    net.device = "cuda"  # as if trained on a GPU (weights are written from the CPU either way)
    path = persist.save(net, tmp_path / "net.skc")
    with pytest.warns(SkclusterWarning, match="no CUDA device"):
        cpu = persist.load(path)
    assert cpu.device == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = persist.load(path, device="cpu")
    net.device = "cpu"
    np.testing.assert_array_equal(cpu.predict(X), net.predict(X))
    np.testing.assert_array_equal(explicit.predict(X), net.predict(X))


def test_new_steps_and_prior_wrapper_round_trip(tmp_path):
    """PointSourceMasker, DomainFlagger and PriorCorrectedRegressor are in the allow-list."""
    from skcluster import persist
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline
    from skcluster.preprocessing import DomainFlagger
    from skcluster.priors import PriorCorrectedRegressor

    data = make_survey(n_clusters=30, random_state=4, verbose=False)
    pipe = make_mass_pipeline(bands="broad", npix=16, mask_point_sources=True, n_estimators=2,
                              max_epochs=2, random_state=0, channels=(4,), dense=(8,), flag_domain=True)
    assert [name for name, _ in pipe.steps[:3]] == ["mask", "bin", "domain"]
    model = PriorCorrectedRegressor(pipe, target="flat", n_grid=64).fit(data.X, data.y)
    assert set(model.estimator_.named_steps["domain"].ranges_) >= {"z", "exposure"}
    persist.save(model, tmp_path / "m.skc")
    back = persist.load(tmp_path / "m.skc")
    a = model.predict(data.X, return_std=True)
    b = back.predict(data.X, return_std=True)
    assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])
    assert back.mass_prior_ == "flat"
    flagger = DomainFlagger().fit(pipe[:2].transform(data.X))
    persist.save(flagger, tmp_path / "f.skc")
    assert persist.load(tmp_path / "f.skc").ranges_ == flagger.ranges_
    # a function reference is still refused inside the wrapper
    model.set_params(cosmology={"f": np.sum})
    with pytest.raises(TypeError):
        persist.save(model, tmp_path / "bad.skc")


def test_the_observables_step_measures_what_the_trees_read_and_round_trips(tmp_path):
    """make_mass_pipeline(observables=True): the baselines' masked observables, joined beside z, in a model file."""
    from skcluster.baselines import OBSERVABLE_SCALARS
    from skcluster.benchmark import BenchmarkConfig, _masked_observables
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline

    data = make_survey(n_clusters=30, random_state=4, verbose=False)
    pipe = make_mass_pipeline(bands="broad", size_arcmin=20.0, npix=16, mask_point_sources=True, observables=True,
                              n_estimators=2, max_epochs=2, random_state=0, channels=(4,), dense=(8,))
    assert [name for name, _ in pipe.steps[:3]] == ["mask", "observables", "bin"]
    # the same numbers as the benchmark's scalar baselines (same mask, bands and box)
    measured = pipe[:2].fit_transform(data.X)
    reference = _masked_observables(data.X, BenchmarkConfig(n_clusters=30, size_arcmin=20.0))
    names = [c if isinstance(c, str) else c[0] for c in OBSERVABLE_SCALARS]
    for c in names:
        np.testing.assert_array_equal(measured[c], reference[c])
    pipe.fit(data.X, data.y)
    joined = [n[4:-1] if n.startswith("log(") else n for n in pipe["join"].scalar_names_]
    assert joined[1:1 + len(names)] == names   # after log(1 + z), before the profile
    persist.save(pipe, tmp_path / "m.skc")
    back = persist.load(tmp_path / "m.skc")
    a, b = pipe.predict(data.X, return_std=True), back.predict(data.X, return_std=True)
    assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])
    # the step reads events: images alone get an error that names the missing column
    images = pipe[2:5].transform(pipe[:2].transform(data.X)).drop("events")
    with pytest.raises(KeyError, match="events"):
        back.predict(images)


def test_a_format_1_cnn_pipeline_written_before_the_package_split_still_loads():
    """tests/data/cnn_pipeline_v1.skc: Resizer -> GaussianSmoother -> CountScaler -> RedshiftJoiner ->
    a deep ensemble of two CNNRegressors, saved by the single-module skcluster.persist (format 1)."""
    from pathlib import Path

    data = Path(__file__).parent / "data"
    path = data / "cnn_pipeline_v1.skc"
    assert persist.read_manifest(path)["format_version"] == 1
    assert persist.check_file(path) == sorted([
        "sklearn.pipeline:Pipeline", "skcluster.preprocessing.resize:Resizer",
        "skcluster.preprocessing.smooth:GaussianSmoother", "skcluster.preprocessing.scaling:CountScaler",
        "skcluster.preprocessing.joining:RedshiftJoiner", "skcluster.ensemble:DeepEnsembleRegressor",
        "skcluster.nn.regressor:CNNRegressor", "skcluster.nn.module:ClusterCNN",
        "skcluster.nn.losses:GaussianNLLLoss", "torch.optim.adam:Adam",
        "torch.utils.data.dataloader:DataLoader", "skorch.dataset:Dataset",
    ])
    model = persist.load(path)
    ref = json.loads((data / "cnn_pipeline_v1.json").read_text())
    X = ClusterSample(images=np.array(ref["images"], np.float32), z=np.array(ref["z"]),
                      exposure=np.array(ref["exposure"]))
    X.meta.update(bands_keV=[tuple(b) for b in ref["meta"]["bands_keV"]], size_arcmin=ref["meta"]["size_arcmin"],
                  pixel_arcsec=ref["meta"]["pixel_arcsec"])
    mean, std = model.predict(X, return_std=True)
    np.testing.assert_allclose(mean, ref["mean"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(std, ref["std"], rtol=1e-4)
