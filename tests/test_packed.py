"""Packed-Ensembles (Laurent et al. 2023): grouped members in one network, their Gaussian mixture."""

import numpy as np
import pytest
import torch
from sklearn.pipeline import Pipeline

from skcluster import ClusterSample, persist
from skcluster.ensemble import DeepEnsembleRegressor, mixture_moments
from skcluster.nn import (
    ClusterCNN,
    CNNRegressor,
    PackedClusterCNN,
    PackedEnsembleRegressor,
    make_toy_sample,
)
from skcluster.nn.flops import training_flops
from skcluster.nn.packed import packed_width
from skcluster.preprocessing import RedshiftJoiner

SMALL = {"module__channels": (4, 8), "module__dense": (16,), "input_scaling": "log1p", "batch_size": 32}


def _net(**kw):
    return PackedEnsembleRegressor(**{**SMALL, "n_members": 3, "alpha": 2, "max_epochs": 6, "random_state": 0, **kw})


@pytest.fixture(scope="module")
def toy():
    return make_toy_sample(96, n_bands=2, image_size=16, random_state=0)


@pytest.fixture(scope="module")
def fitted(toy):
    X, y = toy
    return _net().fit(X, y)


def test_module_shapes_widths_and_members_do_not_mix():
    torch.manual_seed(0)
    net = PackedClusterCNN(n_bands=2, image_size=16, n_scalars=1, n_members=3, alpha=2, channels=(6, 12),
                           dense=(9,), dropout=0.0).eval()
    assert net.member_channels == [4, 8] and net.member_dense == [6]  # 2/3 of each width
    assert packed_width(16, 4, 2, gamma=3) == 9 and packed_width(1, 8, 1) == 1
    x, s = torch.rand(5, 2, 16, 16), torch.rand(5, 1)
    mean, var = net(x, s)
    assert mean.shape == var.shape == (5, 3) and mean.dtype == torch.float32 and bool((var > 0).all())
    # one copy of the cube per member: the same cubes give the shared result; another cube for member 1
    # changes member 1's output only
    copies = x.repeat(1, 3, 1, 1)
    assert torch.allclose(net(copies, s)[0], mean)
    copies[:, 2:4] = torch.rand(5, 2, 16, 16)
    changed = net(copies, s)[0]
    assert torch.equal(changed[:, [0, 2]], mean[:, [0, 2]]) and not torch.allclose(changed[:, 1], mean[:, 1])
    with pytest.raises(ValueError, match=r"\(n, 2, H, W\).*\(n, 6, H, W\)"):
        net(torch.rand(5, 4, 16, 16), s)


def test_packed_flops_alpha_equal_to_members_is_members_times_one_network():
    # alpha = M: M full-width members, exactly M ClusterCNNs' arithmetic (with torch's grouped-convolution
    # weight-gradient count corrected); alpha = 2, M = 4: the members' convolutions after the first cost one network's
    one = training_flops(ClusterCNN, (2, 16, 16), channels=(8, 16), dense=(32,))
    four = training_flops(PackedClusterCNN, (2, 16, 16), n_members=4, alpha=4, channels=(8, 16), dense=(32,))
    assert four["training"] == 4 * one["training"] and four["forward"] == 4 * one["forward"]
    half = training_flops(PackedClusterCNN, (2, 16, 16), n_members=4, alpha=2, channels=(8, 16), dense=(32,),
                          conv_mode="grouped")  # layer by layer (the loop mode runs the layers' slices)
    loop = training_flops(PackedClusterCNN, (2, 16, 16), n_members=4, alpha=2, channels=(8, 16), dense=(32,),
                          conv_mode="loop")
    assert loop["training"] == half["training"] and loop["forward"] == half["forward"]
    key = "PackedClusterCNN.features.1.0"
    assert half["by_module"][key] == one["by_module"][key.replace("Packed", "")]


def test_fit_lowers_the_loss_members_differ_and_mixture_formula(fitted, toy):
    X, _y = toy
    hist = fitted.history_
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] and hist[-1]["valid_loss"] < hist[0]["valid_loss"]
    means, variances = fitted.predict_members(X)
    assert means.shape == variances.shape == (3, 96)
    mean, std = fitted.predict(X, return_std=True)
    # the mixture: mean_i mu_i and mean_i (sigma_i^2 + mu_i^2) - mean^2
    np.testing.assert_allclose(mean, means.mean(0))
    np.testing.assert_allclose(std**2, (variances + means**2).mean(0) - means.mean(0) ** 2, rtol=1e-6, atol=1e-9)
    parts = fitted.predict_components(X)
    np.testing.assert_allclose(parts.std**2, parts.aleatoric_std**2 + parts.epistemic_std**2)
    np.testing.assert_allclose(parts.epistemic_std, means.std(0))
    assert float(parts.epistemic_std.mean()) > 1e-3  # the members disagree
    _m, a, e = mixture_moments(means, variances)
    np.testing.assert_allclose(fitted.predict_gaussian(X)[1], a + e)


def test_seeds_reproduce_and_differ(fitted, toy):
    X, y = toy
    again = _net().fit(X, y)
    np.testing.assert_array_equal(again.predict_members(X)[0], fitted.predict_members(X)[0])
    other = _net(random_state=1).fit(X, y)
    assert not np.allclose(other.predict(X), fitted.predict(X))


def test_each_member_gets_its_own_augmentation(fitted, toy):
    X, _y = toy
    images = torch.from_numpy(X["images"][:8])
    fitted._generators_ = {"augment": torch.Generator().manual_seed(0)}
    try:
        out = fitted._prepare_images(images, training=True)
    finally:
        del fitted._generators_
    assert out.shape == (8, 6, 16, 16)
    copies = out.reshape(8, 3, 2, 16, 16)
    assert not torch.equal(copies[:, 0], copies[:, 1])  # 8 rotations/flips each: the members' draws differ
    # each member's copy is a symmetry of the scaled cube
    assert torch.allclose(copies.sum(dim=(-1, -2)), torch.log1p(images).sum(dim=(-1, -2))[:, None], rtol=1e-5)


def test_deep_ensemble_of_packed_members_in_a_pipeline_round_trips_through_persist(toy, tmp_path):
    X, y = toy
    raw = ClusterSample(images=X["images"], z=X["scalars"][:, 0].astype(np.float64))
    member = _net(max_epochs=2, autocast="bfloat16", channels_last=True)
    pipe = Pipeline([("join", RedshiftJoiner()),
                     ("model", DeepEnsembleRegressor(member, n_estimators=2, random_state=0))]).fit(raw, y)
    ens = pipe.named_steps["model"]
    assert not ens.vectorised_  # one network already: trained member by member
    parts = pipe[-1].predict_components(pipe[:-1].transform(raw))
    assert parts.member_means.shape == (6, 96)  # 2 packed ensembles of 3 members: 6 mixture components
    own = np.concatenate([e.predict_members(pipe[:-1].transform(raw))[0] for e in ens.estimators_])
    np.testing.assert_allclose(parts.member_means, own)
    path = persist.save(pipe, tmp_path / "packed.skc")
    loaded = persist.load(path)
    m0, s0 = pipe.predict(raw, return_std=True)
    m1, s1 = loaded.predict(raw, return_std=True)
    np.testing.assert_array_equal(m0, m1)
    np.testing.assert_array_equal(s0, s1)
    assert isinstance(loaded.named_steps["model"].estimators_[0].module_, PackedClusterCNN)


def test_from_regressor_keeps_the_settings_and_checks_parameters(toy):
    X, y = toy
    base = CNNRegressor(lr=3e-3, max_epochs=7, **SMALL)
    packed = PackedEnsembleRegressor.from_regressor(base, n_members=2, alpha=1.5)
    assert packed.lr == 3e-3 and packed.max_epochs == 7 and packed.get_params()["module__channels"] == (4, 8)
    assert (packed.n_members, packed.alpha, packed.module) == (2, 1.5, PackedClusterCNN)
    with pytest.raises(ValueError, match="module must be ClusterCNN"):
        PackedEnsembleRegressor.from_regressor(CNNRegressor(module=PackedClusterCNN))
    with pytest.raises(ValueError, match="n_members"):
        _net(n_members=0).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        _net(alpha=-1.0).fit(X, y)


def test_sample_weights_of_one_train_the_same_network(fitted, toy):
    X, y = toy
    weighted = _net().fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(weighted.predict_members(X)[0], fitted.predict_members(X)[0], rtol=1e-6)
    heavy = _net().fit(X, y, sample_weight=np.where(y > np.median(y), 5.0, 0.2))
    assert not np.allclose(heavy.predict(X), fitted.predict(X))


@pytest.mark.parametrize("per_member", [False, True])
def test_loop_and_grouped_convolutions_are_the_same_network(per_member):
    """conv_mode="loop" runs each member's slice of the grouped layers: same outputs, gradients, statistics."""
    kw = {"n_bands": 2, "image_size": 16, "n_members": 3, "alpha": 2, "gamma": 2, "channels": (6, 12), "dense": (9,),
              "batch_norm": True, "conv_dropout": 0.0, "dropout": 0.0}
    torch.manual_seed(0)
    grouped = PackedClusterCNN(conv_mode="grouped", **kw)
    loop = PackedClusterCNN(conv_mode="loop", **kw)
    loop.load_state_dict(grouped.state_dict())
    x, s = torch.rand(5, 6 if per_member else 2, 16, 16), torch.rand(5, 1)
    outs = []
    for net in (grouped, loop):
        mean, var = net.train()(x, s)
        (mean.sum() + var.sum()).backward()
        outs.append((mean, var, {k: p.grad for k, p in net.named_parameters()}, net.state_dict()))
    (m0, v0, g0, s0), (m1, v1, g1, s1) = outs
    torch.testing.assert_close(m1, m0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v1, v0, rtol=1e-5, atol=1e-6)
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-4, atol=1e-6)
    for k in s0:  # batch-norm running statistics and batch counts
        torch.testing.assert_close(s1[k], s0[k], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loop.eval()(x, s)[0], grouped.eval()(x, s)[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="conv_mode"):
        PackedClusterCNN(conv_mode="fast", **kw)
