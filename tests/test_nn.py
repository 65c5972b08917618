"""skcluster.nn: the CNN module, augmentation, the loss and CNNRegressor."""

import io
import math
import pickle
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skcluster import ClusterSample, SkclusterWarning
from skcluster.nn import (
    ClusterCNN,
    CNNRegressor,
    GaussianNLLLoss,
    add_gaussian_noise,
    dihedral,
    gaussian_nll,
    make_toy_sample,
    poisson_resample,
    random_dihedral,
)

TINY = dict(module__channels=(4, 8), module__dense=(16,), input_scaling="log1p", batch_size=32)


def tiny_net(**kw):
    params = dict(TINY, max_epochs=3, random_state=0)
    params.update(kw)
    return CNNRegressor(**params)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy():
    return make_toy_sample(96, n_bands=2, image_size=16, random_state=0)


@pytest.fixture(scope="module")
def fitted(toy):
    X, y = toy
    return tiny_net().fit(X, y)


# ----------------------------------------------------------------------------- module
@pytest.mark.parametrize("n_scalars", [0, 1, 3])
def test_module_shapes_and_positive_variance(n_scalars):
    m = ClusterCNN(n_bands=10, image_size=(50, 50), n_scalars=n_scalars)
    images = torch.rand(5, 10, 50, 50)
    mean, var = m(images, torch.rand(5, n_scalars))
    assert mean.shape == var.shape == (5, 1)
    assert mean.dtype == var.dtype == torch.float32
    assert torch.all(var >= m.var_floor)


def test_module_uses_the_scalars_in_the_dense_part():
    torch.manual_seed(0)
    m = ClusterCNN(n_bands=2, image_size=16, n_scalars=1, dropout=0.0).eval()
    images = torch.rand(3, 2, 16, 16)
    a = m(images, torch.zeros(3, 1))[0]
    b = m(images, torch.ones(3, 1))[0]
    assert not torch.allclose(a, b)
    assert m.dense[0].in_features == 8 * 0 + 64 * 2 * 2 + 1  # 16 -> 8 -> 4 -> 2 pixels, 64 maps, + z


def test_module_rejects_too_many_pooling_blocks():
    with pytest.raises(ValueError, match="too small"):
        ClusterCNN(n_bands=1, image_size=4, channels=(4, 4, 4, 4))
    with pytest.raises(ValueError, match="kernel_sizes has 2 entries"):
        ClusterCNN(n_bands=1, image_size=16, channels=(4, 4, 4), kernel_sizes=(3, 5))


def test_module_heads_stay_float32_under_autocast():
    m = ClusterCNN(n_bands=2, image_size=16, n_scalars=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mean, var = m(torch.rand(4, 2, 16, 16), torch.rand(4, 1))
    assert mean.dtype == var.dtype == torch.float32


# ------------------------------------------------------------------------ augmentation
def test_dihedral_group_has_eight_distinct_elements_and_inverses():
    img = torch.arange(16.0).reshape(1, 1, 4, 4)
    outs = [dihedral(img, k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    # four quarter turns are the identity; a flip is its own inverse
    assert torch.equal(dihedral(dihedral(dihedral(dihedral(img, 1), 1), 1), 1), img)
    assert torch.equal(dihedral(dihedral(img, 4), 4), img)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 12), square=st.booleans())
def test_random_dihedral_is_a_symmetry_of_each_image(seed, n, square):
    g = torch.Generator().manual_seed(seed)
    h, w = (6, 6) if square else (6, 4)
    images = torch.rand(n, 3, h, w, generator=g)
    out = random_dihedral(images, torch.Generator().manual_seed(seed))
    assert out.shape == images.shape
    allowed = range(8) if square else (0, 2, 4, 6)
    for i in range(n):  # each output is one of the allowed symmetries of its own input
        assert any(torch.equal(out[i], dihedral(images[i : i + 1], k)[0]) for k in allowed)
    # counts per band are conserved
    assert torch.allclose(out.sum(dim=(2, 3)), images.sum(dim=(2, 3)))


def test_random_dihedral_draws_all_symmetries_and_leaves_input_alone():
    img = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(400, 1, 1, 1)
    before = img.clone()
    out = random_dihedral(img, torch.Generator().manual_seed(1))
    assert torch.equal(img, before)
    kinds = {tuple(o.flatten().tolist()) for o in out}
    assert len(kinds) == 8


def test_poisson_resample_and_noise_statistics():
    g = torch.Generator().manual_seed(0)
    lam = torch.full((20000,), 4.0)
    draws = poisson_resample(lam, g)
    assert abs(draws.mean().item() - 4.0) < 0.1 and abs(draws.var().item() - 4.0) < 0.2
    assert torch.equal(draws, draws.round())
    x = torch.zeros(20000)
    noisy = add_gaussian_noise(x, 0.1, g)
    assert abs(noisy.std().item() - 0.1) < 0.005
    assert add_gaussian_noise(x, 0.0, g) is x


# ------------------------------------------------------------------------------- loss
def test_gaussian_nll_matches_the_formula_and_torch():
    mean, var, y = torch.tensor([0.0, 1.0]), torch.tensor([0.5, 2.0]), torch.tensor([0.3, -1.0])
    expect = 0.5 * (torch.log(var) + (y - mean) ** 2 / var) + 0.5 * math.log(2 * math.pi)
    assert torch.allclose(gaussian_nll(mean, var, y), expect)
    ref = torch.nn.GaussianNLLLoss(full=True, eps=0.0)(mean, y, var)
    assert torch.allclose(GaussianNLLLoss()(mean, var, y), ref)


def test_beta_nll_weights_by_detached_variance():
    mean = torch.tensor([0.0, 0.0], requires_grad=True)
    var = torch.tensor([0.25, 4.0])
    y = torch.tensor([1.0, 1.0])
    loss = GaussianNLLLoss(beta=1.0)(mean, var, y)
    loss.backward()
    # with beta = 1 the mean gets the gradient of 0.5 * (y - mu)^2 (Seitzer et al. 2022)
    assert torch.allclose(mean.grad, -(y - mean.detach()) / 2)
    assert GaussianNLLLoss(beta=1.0)(mean, var, y, weighted=False) == GaussianNLLLoss()(mean, var, y)


# -------------------------------------------------------------------------- regressor
def test_cnn_learns_the_toy_problem():
    X, y = make_toy_sample(256, n_bands=2, image_size=16, random_state=1)
    Xt, yt = make_toy_sample(200, n_bands=2, image_size=16, random_state=2)
    net = CNNRegressor(
        module__channels=(8, 16), module__dense=(32,), input_scaling="log1p", lr=3e-3,
        batch_size=32, max_epochs=20, patience=8, random_state=0,
    ).fit(X, y)
    mean, std = net.predict(Xt, return_std=True)
    scatter = np.std(mean - yt)
    # the spread of y is 0.43 dex; a network that learned nothing predicts ~ that
    assert scatter < 0.25 * np.std(yt), scatter
    assert np.all(std > 0) and np.all(np.isfinite(std))
    # the predicted std is in the right ballpark of the actual errors
    assert 0.3 < np.median(std) / scatter < 3


def test_predict_shapes_and_std(fitted, toy):
    X, _ = toy
    mean = fitted.predict(X)
    mean2, std = fitted.predict(X, return_std=True)
    assert mean.shape == std.shape == (len(X),)
    assert mean.dtype == np.float64
    np.testing.assert_array_equal(mean, mean2)
    assert np.all(std > 0)
    assert fitted.input_shape_ == (2, 16, 16) and fitted.n_scalars_ == 1
    assert not hasattr(fitted, "predict_proba")
    empty = fitted.predict(X[:0], return_std=True)
    assert empty[0].shape == (0,) and empty[1].shape == (0,)


def test_same_seed_same_network_other_seed_other_network(toy):
    X, y = toy
    kw = dict(max_epochs=3, module__conv_dropout=0.1, noise_sigma=0.05)
    a = tiny_net(**kw).fit(X, y).predict(X)
    b = tiny_net(**kw).fit(X, y).predict(X)
    c = tiny_net(random_state=1, **kw).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_fit_does_not_touch_global_torch_rng(toy):
    X, y = toy
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_net(max_epochs=1).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_validation_split_is_shuffled_and_early_stopping_restores_best(toy):
    X, y = toy
    net = tiny_net(max_epochs=30, patience=2, tol=10.0)  # nothing counts as an improvement
    net.fit(X, y)
    assert net.n_epochs_ == 3  # epoch 1 sets the mark, then 2 misses
    assert net.best_epoch_ == 1
    cb = dict(net.callbacks_)["early_stopping"]
    assert cb.threshold_mode == "abs" and cb.load_best
    # the split: 20% of 96 clusters, chosen at random (not the first rows)
    split = net._resolve_train_split()
    _, valid = split(net.get_dataset({"images": X["images"], "scalars": X["scalars"]}, y), y)
    idx = np.asarray(valid.indices)
    assert len(idx) == math.ceil(0.2 * len(X)) and not np.array_equal(np.sort(idx), np.arange(len(idx)))


def test_verbose_prints_one_line_per_epoch_quiet_otherwise(toy, capsys):
    X, y = toy
    tiny_net(max_epochs=3, early_stopping=False, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "valid_loss" in out
    assert len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 3
    tiny_net(max_epochs=2).fit(X, y)
    assert capsys.readouterr().out == ""


def test_no_redshift_ablation_and_bare_arrays():
    X, y = make_toy_sample(64, n_scalars=0, random_state=3)
    assert X["scalars"].shape == (64, 0)
    net = tiny_net(max_epochs=2).fit(X, y)
    assert net.module_.n_scalars == 0
    np.testing.assert_allclose(net.predict(X), net.predict(X["images"]), rtol=1e-6)


def test_fast_paths_train_and_predict(toy):
    X, y = toy
    for kw in (dict(channels_last=True, autocast="bfloat16"), dict(autocast="float16")):
        net = tiny_net(max_epochs=2, **kw).fit(X, y)
        mean, std = net.predict(X, return_std=True)
        assert np.all(np.isfinite(mean)) and np.all(std > 0)
    assert next(iter(tiny_net(channels_last=True, max_epochs=1).fit(X, y).module_.features[0][0].parameters())).is_contiguous(
        memory_format=torch.channels_last
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_device_unchanged(toy):  # pragma: no cover - needs a GPU
    X, y = toy
    net = tiny_net(device="cuda", channels_last=True, autocast="bfloat16", max_epochs=2).fit(X, y)
    assert next(net.module_.parameters()).is_cuda
    assert np.isfinite(net.predict(X)).all()


def test_poisson_resampling_needs_counts(toy):
    X, y = toy
    net = tiny_net(poisson=True, max_epochs=2).fit(X, y)
    assert np.isfinite(net.predict(X)).all()
    scaled = X.assign(meta={"image_unit": "scaled"})
    with pytest.raises(ValueError, match="poisson=True resamples photon counts.*'scaled'"):
        tiny_net(poisson=True).fit(scaled, y)
    negative = X.assign(images=X["images"] - 5.0)
    negative.meta.pop("image_unit")
    with pytest.raises(ValueError, match="non-negative counts"):
        tiny_net(poisson=True).fit(negative, y)


def test_augmentation_runs_only_in_training(fitted, toy):
    X, _ = toy
    # prediction is deterministic (no augmentation, no dropout)
    np.testing.assert_array_equal(fitted.predict(X), fitted.predict(X))
    rotated = X.assign(images=np.ascontiguousarray(np.rot90(X["images"], 1, axes=(2, 3))))
    assert np.abs(fitted.predict(rotated) - fitted.predict(X)).max() > 0  # not built-in invariance


# ------------------------------------------------------------------------- bad input
def test_predict_before_fit_is_not_fitted_error(toy):
    X, _ = toy
    with pytest.raises(NotFittedError, match="not fitted yet"):
        tiny_net().predict(X)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda X: X.assign(images=_with(X["images"], (3, 1, 4, 5), np.nan)), r"'images' contains NaN.* in row 3 "),
        (lambda X: X.assign(images=_with(X["images"], (7, 0, 0, 0), np.inf)), r"'images' contains NaN.* in row 7 "),
        (lambda X: X.assign(scalars=_with(X["scalars"], (2, 0), np.nan)), r"'scalars' contains NaN.* in row 2 "),
        (lambda X: X.drop("scalars"), r"needs column\(s\) \['scalars'\].*RedshiftJoiner"),
        (lambda X: X.assign(scalars=X["scalars"][:, 0]), r"'scalars' must have shape \(n, K\)"),
        (lambda X: X.assign(images=X["images"][:, 0]), r"'images' must have shape \(n, bands, H, W\)"),
    ],
)
def test_bad_fit_input_raises_clearly(toy, bad, match):
    X, y = toy
    with pytest.raises((ValueError, KeyError), match=match):
        tiny_net().fit(bad(X), y)


def _with(arr, index, value):
    out = arr.copy()
    out[index] = value
    return out


def test_bad_target_raises_clearly(toy):
    X, y = toy
    with pytest.raises(ValueError, match=r"y contains NaN.*row 5"):
        tiny_net().fit(X, _with(y, 5, np.nan))
    with pytest.raises(ValueError, match="96 clusters but y has 95"):
        tiny_net().fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y"):
        tiny_net().fit(X, None)


def test_wrong_shape_at_predict_names_expected_and_got(fitted, toy):
    X, _ = toy
    with pytest.raises(ValueError, match=r"\(n, 2, 16, 16\).*3 bands instead of 2"):
        fitted.predict(X.assign(images=np.concatenate([X["images"], X["images"][:, :1]], axis=1)))
    with pytest.raises(ValueError, match="8x8 pixels instead of 16x16"):
        fitted.predict(X.assign(images=np.ascontiguousarray(X["images"][:, :, ::2, ::2])))
    with pytest.raises(ValueError, match="trained with 1 scalars per cluster but got 2"):
        fitted.predict(X.assign(scalars=np.repeat(X["scalars"], 2, axis=1)))
    with pytest.raises(ValueError, match=r"'images' contains NaN.* in row 0 "):
        fitted.predict(X.assign(images=_with(X["images"], (0, 0, 0, 0), np.nan)))


def test_float64_images_are_cast_with_a_warning(toy):
    X, y = toy
    X64 = X.assign(images=X["images"].astype(np.float64))
    with pytest.warns(SkclusterWarning, match="float64; converting to float32"):
        tiny_net(max_epochs=1).fit(X64, y)


def test_bad_parameters_raise_in_fit_not_init(toy):
    X, y = toy
    net = tiny_net(autocast="float8")  # stored, not checked
    with pytest.raises(ValueError, match="autocast must be"):
        net.fit(X, y)
    with pytest.raises(ValueError, match="input_scaling must be"):
        tiny_net(input_scaling="log").fit(X, y)
    with pytest.raises(ValueError, match="contradicts the data"):
        tiny_net(module__n_bands=5).fit(X, y)
    for bad in (1.0, -0.1, float("nan"), True):
        with pytest.raises(ValueError, match="validation_fraction must be a number strictly between 0 and 1"):
            tiny_net(validation_fraction=bad).fit(X, y)
    for bad in (-0.5, float("inf"), None):
        with pytest.raises(ValueError, match="noise_sigma must be a finite number >= 0"):
            tiny_net(noise_sigma=bad).fit(X, y)


# ---------------------------------------------------------------------- sklearn + save
def test_clone_and_params(fitted):
    c = clone(fitted)
    assert c.get_params()["module__channels"] == (4, 8)
    assert not hasattr(c, "module_") and not hasattr(c, "input_shape_")
    c.set_params(module__channels=(2,), lr=0.01)
    assert c.module__channels == (2,) and c.lr == 0.01


def test_warm_start_and_partial_fit_keep_the_network(toy):
    X, y = toy
    net = tiny_net(max_epochs=1, early_stopping=False).fit(X, y)
    w = next(net.module_.parameters()).detach().clone()
    y_mean = net.y_mean_
    net.partial_fit(X, y + 1.0)
    assert not torch.equal(w, next(net.module_.parameters()))
    assert net.y_mean_ == y_mean  # target scaling fixed after the first fit
    with pytest.raises(ValueError, match="bands instead of"):
        net.partial_fit(X.assign(images=X["images"][:, :1].copy()), y)


def test_pickle_round_trip(fitted, toy):
    X, _ = toy
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))


def test_gpu_pickle_loads_on_a_cpu_only_machine(fitted, toy):
    """Fake a CUDA pickle: tensors tagged 'cuda:0', device='cuda'."""
    X, _ = toy
    ref = fitted.predict(X)
    net = pickle.loads(pickle.dumps(fitted))
    net.device = "cuda"
    with mock.patch.object(torch.serialization, "location_tag", lambda storage: "cuda:0"):
        blob = pickle.dumps(net)
        probe = io.BytesIO()
        torch.save(torch.ones(1), probe)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):  # the fake worked: a plain load fails
            torch.load(io.BytesIO(probe.getvalue()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = pickle.loads(blob)
    if not torch.cuda.is_available():
        assert str(back.device) == "cpu"
    np.testing.assert_allclose(back.predict(X), ref, rtol=1e-6)


def test_toy_sample_is_float32_counts():
    X, y = make_toy_sample(10, n_bands=3, image_size=12, n_scalars=2, random_state=0)
    assert isinstance(X, ClusterSample)
    assert X["images"].dtype == np.float32 and X["images"].shape == (10, 3, 12, 12)
    assert X["scalars"].shape == (10, 2) and X.meta["image_unit"] == "counts"
    assert np.all(X["images"] == np.round(X["images"])) and y.shape == (10,)
