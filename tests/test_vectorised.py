"""The vectorised deep ensemble: StackedClusterCNN and DeepEnsembleRegressor(vectorize=...)."""

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import BayesianRidge
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import Pipeline

from skcluster.ensemble import DeepEnsembleRegressor
from skcluster.nn import ClusterCNN, CNNRegressor, make_toy_sample
from skcluster.nn.stacked import StackedClusterCNN, stackable
from skcluster.nn.vectorised import vectorise_unsupported

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_cnn(**kw):
    params = dict(
        module__channels=(4, 8), module__dense=(16,), input_scaling="log1p", batch_size=32, max_epochs=3,
    )
    params.update(kw)
    return CNNRegressor(**params)


@pytest.fixture(scope="module")
def toy():
    return make_toy_sample(96, n_bands=2, image_size=16, random_state=0)


def _max_weight_diff(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)


# ------------------------------------------------------------------ the stacked module
ARCHS = [
    dict(),
    dict(batch_norm=True, conv_dropout=0.2, pool="avg", activation="elu"),
    dict(global_pool=True, n_scalars=0, dense=(8, 4), pool=None, kernel_sizes=(3, 5)),
    dict(dense=(), n_scalars=3),
]


@pytest.mark.parametrize("conv_mode", ["grouped", "loop"])
@pytest.mark.parametrize("arch", ARCHS)
def test_stacked_forward_equals_each_member_forward(arch, conv_mode):
    torch.manual_seed(0)
    mods = [ClusterCNN(3, (12, 12), channels=(4, 8), **arch) for _ in range(4)]
    for m in mods:  # random weights and statistics, not just the init
        for name, t in (*m.named_parameters(), *m.named_buffers()):
            if name.endswith("running_var"):
                t.data.uniform_(0.5, 1.5)
            elif t.is_floating_point():
                t.data.normal_(0, 0.3)
        m.eval()
    stacked = StackedClusterCNN(mods, conv_mode=conv_mode).eval()
    k = mods[0].n_scalars
    x, s = torch.randn(5, 3, 12, 12), torch.randn(5, k)
    mu, var = stacked(x, s)  # shared input: prediction
    assert mu.shape == var.shape == (4, 5, 1) and mu.dtype == torch.float32
    for i, m in enumerate(mods):
        ref_mu, ref_var = m(x, s)
        torch.testing.assert_close(mu[i], ref_mu, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(var[i], ref_var, rtol=1e-5, atol=1e-5)
    xs, ss = torch.randn(4, 5, 3, 12, 12), torch.randn(4, 5, k)
    mu, var = stacked(xs, ss)  # one batch per member: training
    for i, m in enumerate(mods):
        ref_mu, ref_var = m(xs[i], ss[i])
        torch.testing.assert_close(mu[i], ref_mu, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(var[i], ref_var, rtol=1e-5, atol=1e-5)
    # unstacking gives each member's own state dict back
    for i, sd in enumerate(stacked.member_state_dicts()):
        ref = mods[i].state_dict()
        assert sd.keys() == ref.keys()
        for key in ref:
            torch.testing.assert_close(sd[key], ref[key], rtol=0, atol=0)
    # dropping members keeps the others' outputs
    stacked.select_([3, 1])
    mu, _ = stacked(x, s)
    torch.testing.assert_close(mu[0], mods[3](x, s)[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mu[1], mods[1](x, s)[0], rtol=1e-5, atol=1e-5)


def test_stacked_batch_norm_statistics_stay_per_member():
    torch.manual_seed(1)
    mods = [ClusterCNN(2, (8, 8), channels=(3,), batch_norm=True, dropout=0.0) for _ in range(3)]
    stacked = StackedClusterCNN(mods, conv_mode="grouped").train()
    xs = torch.randn(3, 6, 2, 8, 8) * torch.tensor([1.0, 5.0, 20.0])[:, None, None, None, None]
    stacked(xs, torch.zeros(3, 6, 1))
    for i, m in enumerate(mods):
        m.train()(xs[i], torch.zeros(6, 1))
        torch.testing.assert_close(stacked.member_state_dicts()[i]["features.0.1.running_var"],
                                   m.features[0][1].running_var)


def test_stackable_refuses_different_architectures():
    a = ClusterCNN(2, (8, 8), channels=(4,))
    assert stackable([a, ClusterCNN(2, (8, 8), channels=(4,))]) is None
    assert "architectures" in stackable([a, ClusterCNN(2, (8, 8), channels=(5,))])
    with pytest.raises(ValueError, match="cannot stack"):
        StackedClusterCNN([a, ClusterCNN(3, (8, 8), channels=(4,))])
    with pytest.raises(ValueError, match="images must have shape"):
        StackedClusterCNN([a, a])(torch.zeros(2, 5, 8, 8), torch.zeros(2, 1))


# ---------------------------------------------------------- vectorised = sequential
def test_member_init_equals_the_sequential_members_init(toy):
    X, y = toy
    # lr=0: Adam moves nothing, so the fitted weights are the initial weights
    kw = dict(n_estimators=3, random_state=11)
    vec = DeepEnsembleRegressor(tiny_cnn(lr=0.0, max_epochs=1), **kw).fit(X, y)
    seq = DeepEnsembleRegressor(tiny_cnn(lr=0.0, max_epochs=1), vectorize=False, **kw).fit(X, y)
    assert vec.vectorised_ and not seq.vectorised_
    for a, b in zip(vec.estimators_, seq.estimators_):
        assert a.random_state == b.random_state and a.seeds_ == b.seeds_
        assert _max_weight_diff(a, b) == 0.0
    # and equal to a lone CNNRegressor built from the member's seed
    lone = tiny_cnn(lr=0.0, max_epochs=1, random_state=vec.estimators_[1].random_state).fit(X, y)
    assert _max_weight_diff(lone, vec.estimators_[1]) == 0.0


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(module__batch_norm=True, module__conv_dropout=0.2, noise_sigma=0.1, poisson=True,
             channels_last=True, optimizer=torch.optim.AdamW),
        dict(train_split=None, augment=False, beta=0.5, module__global_pool=True, lr_schedule="cosine"),
        {"lr_schedule": "onecycle"},
        dict(autocast="bfloat16", channels_last=True, optimizer=torch.optim.SGD, lr=0.05),
    ],
)
@pytest.mark.parametrize("bootstrap", [False, True])
def test_vectorised_members_equal_sequential_members(toy, options, bootstrap):
    """Same seeds: same split, shuffling, augmentation, dropout, so the same networks up to float rounding."""
    X, y = toy
    kw = dict(n_estimators=3, random_state=0, bootstrap=bootstrap)
    vec = DeepEnsembleRegressor(tiny_cnn(**options), **kw).fit(X, y)
    seq = DeepEnsembleRegressor(tiny_cnn(**options), vectorize=False, **kw).fit(X, y)
    assert vec.vectorised_ and all(type(m) is CNNRegressor and type(m.module_) is ClusterCNN for m in vec.estimators_)
    for a, b in zip(vec.estimators_, seq.estimators_):
        assert a.n_epochs_ == b.n_epochs_ == 3
        assert _max_weight_diff(a, b) < 1e-5
        for key in ("train_loss", "valid_loss"):
            if key in b.history_[-1]:
                np.testing.assert_allclose(a.history_[:, key], b.history_[:, key], rtol=1e-5)
        assert a.y_mean_ == b.y_mean_ and a.y_scale_ == b.y_scale_
        assert not hasattr(a, "_generators_")
    np.testing.assert_allclose(vec.predict(X), seq.predict(X), atol=1e-5)


@pytest.mark.parametrize("vectorize", [True, False])
def test_cosine_schedule_sets_each_epochs_rate(toy, vectorize):
    X, y = toy
    kw = dict(n_estimators=2, random_state=0, vectorize=vectorize)
    cos = DeepEnsembleRegressor(tiny_cnn(lr_schedule="cosine", max_epochs=4, early_stopping=False), **kw).fit(X, y)
    flat = DeepEnsembleRegressor(tiny_cnn(max_epochs=4, early_stopping=False), **kw).fit(X, y)
    for a, b in zip(cos.estimators_, flat.estimators_):
        expected = 1e-3 * (1 + np.cos(np.pi * np.arange(4) / 4)) / 2  # epochs 1-4 of 4
        np.testing.assert_allclose(a.history_[:, "lr"], expected, rtol=1e-12)
        assert a.optimizer_.param_groups[0]["lr"] == pytest.approx(a.history_[-1, "lr"])
        assert "lr" not in b.history_[-1]
        # epoch 1 runs at the full rate in both, so the first epoch's loss agrees and the last does not
        assert a.history_[0, "train_loss"] == pytest.approx(b.history_[0, "train_loss"], rel=1e-5)
        assert _max_weight_diff(a, b) > 1e-4


def test_bad_lr_schedule_is_refused(toy):
    X, y = toy
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        tiny_cnn(lr_schedule="step").fit(X, y)


def test_members_genuinely_differ(toy):
    X, y = toy
    ens = DeepEnsembleRegressor(tiny_cnn(), n_estimators=3, random_state=0).fit(X, y)
    assert ens.vectorised_
    members = ens.estimators_
    for i in range(3):
        for j in range(i + 1, 3):
            assert _max_weight_diff(members[i], members[j]) > 1e-2
    parts = ens.predict_components(X)
    assert np.all(parts.epistemic_std > 0)
    # different validation splits and shuffles too
    hist = [m.history_[0, "batches"][0]["train_loss"] for m in members]
    assert len(set(hist)) == 3


def test_early_stopping_freezes_a_member_while_others_go_on(toy):
    X, y = toy
    # a large learning rate with patience 1: validation losses rise early for some members
    template = tiny_cnn(lr=0.03, patience=1, max_epochs=8)
    vec = DeepEnsembleRegressor(template, n_estimators=4, random_state=0).fit(X, y)
    seq = DeepEnsembleRegressor(template, n_estimators=4, random_state=0, vectorize=False).fit(X, y)
    epochs = [m.n_epochs_ for m in vec.estimators_]
    assert min(epochs) < max(epochs), epochs  # someone stopped while others went on
    assert epochs == [m.n_epochs_ for m in seq.estimators_]
    assert [m.best_epoch_ for m in vec.estimators_] == [m.best_epoch_ for m in seq.estimators_]
    n_batches = len(vec.estimators_[0].history_[0, "batches"]) - sum(
        "valid_loss" in b for b in vec.estimators_[0].history_[0, "batches"]
    )
    for a, b in zip(vec.estimators_, seq.estimators_):
        # frozen: a stopped member took no optimizer step after its last epoch
        step_a = float(a.optimizer_.state_dict()["state"][0]["step"])
        assert step_a == float(b.optimizer_.state_dict()["state"][0]["step"]) == a.n_epochs_ * n_batches
        # the loss-best weights were restored, as the sequential member's were
        assert _max_weight_diff(a, b) < 1e-4


# ------------------------------------------------------------------------ prediction
def test_stacked_predictions_equal_the_member_loop(toy):
    X, y = toy
    ens = DeepEnsembleRegressor(tiny_cnn(max_epochs=2, channels_last=True), n_estimators=3, random_state=2)
    ens.fit(X, y)
    from skcluster.nn.vectorised import stacked_predict

    means, variances = stacked_predict(ens, ens.estimators_, X)
    for i, m in enumerate(ens.estimators_):
        mu, var = m.predict_gaussian(X)
        np.testing.assert_allclose(means[i], mu, rtol=0, atol=1e-5)
        np.testing.assert_allclose(variances[i], var, rtol=1e-5)
    stacked_parts = ens.predict_components(X)
    stacked_mean, stacked_std = ens.predict(X, return_std=True)
    ens.set_params(vectorize=False)
    loop_parts = ens.predict_components(X)
    loop_mean, loop_std = ens.predict(X, return_std=True)
    for key in ("mean", "std", "aleatoric_std", "epistemic_std", "member_means", "member_stds"):
        np.testing.assert_allclose(stacked_parts[key], loop_parts[key], rtol=1e-5, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(stacked_mean, loop_mean, atol=1e-5)
    np.testing.assert_allclose(stacked_std, loop_std, rtol=1e-5)


def test_stacked_module_is_cached_and_follows_weight_changes(toy):
    from skcluster.nn import vectorised

    X, y = toy
    ens = DeepEnsembleRegressor(tiny_cnn(max_epochs=1), n_estimators=2, random_state=0).fit(X, y)
    first = ens.predict(X)
    module = vectorised._CACHE[ens][1]
    ens.predict(X)
    assert vectorised._CACHE[ens][1] is module  # built once
    with torch.no_grad():
        ens.estimators_[0].module_.mean_head.bias.add_(1.0)  # weights changed: rebuilt
    moved = ens.predict(X)
    assert vectorised._CACHE[ens][1] is not module
    np.testing.assert_allclose(moved - first, 0.5 * ens.estimators_[0].y_scale_, rtol=1e-4)
    assert not any("stack" in k or "cache" in k for k in vars(ens))  # nothing extra to save


def test_persist_round_trip_of_a_vectorised_ensemble(toy, tmp_path):
    from skcluster import persist

    X, y = toy
    ens = DeepEnsembleRegressor(tiny_cnn(max_epochs=2), n_estimators=3, random_state=4).fit(X, y)
    assert ens.vectorised_
    before = ens.predict_components(X)
    path = tmp_path / "ens.skc"
    persist.save(ens, path)
    loaded = persist.load(path)
    assert all(type(m) is CNNRegressor for m in loaded.estimators_)
    after = loaded.predict_components(X)
    for key in ("mean", "std", "member_means", "member_stds"):
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    assert [m.n_epochs_ for m in loaded.estimators_] == [m.n_epochs_ for m in ens.estimators_]


# ------------------------------------------------------------------- the estimator
def test_vectorize_parameter_clone_and_choice(toy):
    X, y = toy
    ens = DeepEnsembleRegressor(tiny_cnn(), n_estimators=2, vectorize=False)
    assert ens.get_params()["vectorize"] is False and clone(ens).vectorize is False
    assert DeepEnsembleRegressor().get_params()["vectorize"] == "auto"
    with pytest.raises(ValueError, match="vectorize must be"):
        DeepEnsembleRegressor(tiny_cnn(), n_estimators=2, vectorize="yes").fit(X, y)
    with pytest.raises(ValueError, match="vectorize=True, but the member is a BayesianRidge"):
        DeepEnsembleRegressor(BayesianRidge(), n_estimators=2, vectorize=True).fit(np.ones((4, 2)), np.arange(4.0))
    # unsupported options and n_jobs > 1 fall back to the sequential path under "auto"
    from skorch.callbacks import GradientNormClipping

    assert "GradientNormClipping" in vectorise_unsupported(tiny_cnn(callbacks=[GradientNormClipping(1.0)]))
    from skorch.callbacks import PrintLog

    from skcluster.nn.progress import EpochProgress

    # progress displays (the demo's epoch bar) do not force the sequential path
    assert vectorise_unsupported(tiny_cnn(callbacks=[EpochProgress(), ("log", PrintLog())])) is None
    assert "float16" in vectorise_unsupported(tiny_cnn(autocast="float16"))
    assert vectorise_unsupported(tiny_cnn()) is None
    clipped = DeepEnsembleRegressor(tiny_cnn(max_epochs=1, callbacks=[GradientNormClipping(1.0)]), n_estimators=2)
    assert not clipped.fit(X, y).vectorised_
    # n_jobs=2: members go to worker processes (decision only; starting workers is slow)
    assert not DeepEnsembleRegressor(tiny_cnn(), n_jobs=2)._use_vectorised(tiny_cnn(), {})
    assert DeepEnsembleRegressor(tiny_cnn(), n_jobs=2, vectorize=True)._use_vectorised(tiny_cnn(), {})
    assert DeepEnsembleRegressor(tiny_cnn(), n_jobs=1)._use_vectorised(tiny_cnn(), {})


def test_verbose_shows_epoch_progress(toy, capsys):
    X, y = toy
    DeepEnsembleRegressor(tiny_cnn(max_epochs=2), n_estimators=2, verbose=1).fit(X, y)
    out = capsys.readouterr()
    assert "CNN epochs (2 ensemble members, vectorised)" in out.err and "2/2" in out.err
    assert "best_val_loss" in out.err and "training=2" in out.err
    assert "vectorised in one process" in out.out


class _Join(TransformerMixin, BaseEstimator):
    """Log-scales counts and passes the sample on (a stand-in for the preprocessing)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        from skcluster import ClusterSample

        return ClusterSample(images=np.log1p(X["images"]).astype(np.float32), scalars=X["scalars"])


def test_pipeline_and_cross_validate_with_the_vectorised_default(toy):
    X, y = toy
    pipe = Pipeline([("join", _Join()), ("ens", DeepEnsembleRegressor(tiny_cnn(input_scaling=None, max_epochs=2),
                                                                      n_estimators=2, random_state=0))])
    mean, std = pipe.fit(X, y).predict(X, return_std=True)
    assert pipe["ens"].vectorised_ and np.all(std > 0) and mean.shape == (len(y),)
    cv = cross_validate(pipe, X, y, cv=KFold(2, shuffle=True, random_state=0), return_estimator=True)
    assert np.all(np.isfinite(cv["test_score"]))
    assert all(est["ens"].vectorised_ for est in cv["estimator"])


def test_vectorised_and_sequential_reach_similar_accuracy():
    """Independent seeds for the two paths: accuracy must agree within seed-to-seed noise."""
    X, y = make_toy_sample(320, n_bands=2, image_size=16, random_state=3)
    train, test = np.arange(224), np.arange(224, 320)
    Xtr, Xte = X[train], X[test]
    template = tiny_cnn(max_epochs=25, patience=5, lr=3e-3)
    vec = DeepEnsembleRegressor(template, n_estimators=4, random_state=0).fit(Xtr, y[train])
    seq = DeepEnsembleRegressor(template, n_estimators=4, random_state=1, vectorize=False).fit(Xtr, y[train])
    assert vec.vectorised_ and not seq.vectorised_

    def rmse(pred):
        return float(np.sqrt(np.mean((pred - y[test]) ** 2)))

    r_vec, r_seq = rmse(vec.predict(Xte)), rmse(seq.predict(Xte))
    member_rmse = [rmse(m.predict(Xte)) for m in (*vec.estimators_, *seq.estimators_)]
    # Both learn: well below the spread of the target (0.43 dex for U(13.5, 15)).
    assert max(r_vec, r_seq) < 0.6 * np.std(y[test])
    # The two 4-member ensembles differ only by their seeds. The difference of
    # two ensemble RMSEs has a standard deviation of about sqrt(2/4) times the
    # seed-to-seed spread of a member's RMSE (members are near-independent
    # draws); 4 such standard deviations (plus a floor of 0.01 dex) is a bound
    # a correct implementation exceeds with probability < 1e-4, while a
    # vectorised path that mixed members or broke their training would not
    # reach the sequential accuracy.
    tol = 4 * np.sqrt(2 / 4) * np.std(member_rmse, ddof=1) + 0.01
    print(f"RMSE vectorised {r_vec:.4f}, sequential {r_seq:.4f}, tolerance {tol:.4f}")
    assert abs(r_vec - r_seq) < tol, (r_vec, r_seq, tol)


# ------------------------------------------------------------------- sample weights
@pytest.mark.parametrize("bootstrap", [False, True])
def test_sample_weight_vectorised_equals_sequential(toy, bootstrap):
    X, y = toy
    w = np.where(y > np.median(y), 4.0, 0.5)
    kw = dict(n_estimators=2, random_state=0, bootstrap=bootstrap)
    vec = DeepEnsembleRegressor(tiny_cnn(), **kw).fit(X, y, sample_weight=w)
    seq = DeepEnsembleRegressor(tiny_cnn(), vectorize=False, **kw).fit(X, y, sample_weight=w)
    assert vec.vectorised_ and not seq.vectorised_
    for a, b in zip(vec.estimators_, seq.estimators_):
        assert _max_weight_diff(a, b) < 1e-5
        np.testing.assert_allclose(a.history_[:, "valid_loss"], b.history_[:, "valid_loss"], rtol=1e-5)
    # the weights changed the training: not the unweighted networks
    plain = DeepEnsembleRegressor(tiny_cnn(), **kw).fit(X, y)
    assert _max_weight_diff(plain.estimators_[0], vec.estimators_[0]) > 1e-4


def test_sample_weight_is_the_weighted_mean_nll(toy):
    """Weights 2 on one half and 0 on the other train as the unweighted fit on that half's loss."""
    X, y = toy
    lone = tiny_cnn(train_split=None, augment=False, lr=0.0, max_epochs=1, random_state=0, module__dropout=0.0)
    w = (np.arange(len(y)) % 2).astype(float)
    net = clone(lone).fit(X, y, sample_weight=w)
    mean, var = net.predict_gaussian(X)
    yt = (y - net.y_mean_) / net.y_scale_
    mu, v = (mean - net.y_mean_) / net.y_scale_, var / net.y_scale_**2
    nll = 0.5 * (np.log(v) + (yt - mu) ** 2 / v) + 0.5 * np.log(2 * np.pi)
    # lr = 0: the network did not move, so the logged loss is the weighted mean NLL of the batches
    batches = net.history_[0, "batches"]
    total = sum(b["train_loss"] * b["train_batch_size"] for b in batches) / len(y)
    np.testing.assert_allclose(total, np.mean(nll * w * len(y) / w.sum()), rtol=1e-4)


@pytest.mark.parametrize(
    "w, match",
    [(np.ones(5), "one value per cluster"), (-np.ones(96), "finite and >= 0"), (np.zeros(96), "sums to zero"),
     (np.r_[np.nan, np.ones(95)], "finite and >= 0")],
)
def test_bad_sample_weight_is_refused(toy, w, match):
    X, y = toy
    with pytest.raises(ValueError, match=match):
        tiny_cnn(max_epochs=1).fit(X, y, sample_weight=w)


def test_ensemble_refuses_sample_weight_its_member_cannot_take():
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = X[:, 0]

    class NoWeights(BaseEstimator):
        def fit(self, X, y):
            return self

    with pytest.raises(TypeError, match="does not take sample_weight"):
        DeepEnsembleRegressor(NoWeights(), n_estimators=2).fit(X, y, sample_weight=np.ones(30))


@pytest.mark.parametrize("vectorize", [True, False])
def test_onecycle_schedule_sets_each_batchs_rate_as_torchs_one_cycle(toy, vectorize):
    """lr_schedule="onecycle": torch's OneCycleLR rates (no momentum cycling), stepped every training batch."""
    from skcluster.nn.regressor import batch_lr

    X, y = toy
    epochs, lr = 4, 2e-3
    member = tiny_cnn(lr_schedule="onecycle", lr=lr, max_epochs=epochs, early_stopping=False)
    ens = DeepEnsembleRegressor(member, n_estimators=2, random_state=0, vectorize=vectorize).fit(X, y)
    a = ens.estimators_[0]
    steps = len(a.history_[0, "batches", :, "train_loss"])
    assert steps > 1  # several batches an epoch: the rate must change within an epoch
    ref_opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps,
                                                cycle_momentum=False)
    torch_rates = []
    for _ in range(epochs * steps):
        torch_rates.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        sched.step()
    ours = [batch_lr(a, t, steps) for t in range(epochs * steps)]
    np.testing.assert_allclose(ours, torch_rates, rtol=1e-12)
    np.testing.assert_allclose(a.history_[:, "lr"], torch_rates[::steps], rtol=1e-12)  # each epoch's first batch
    assert a.optimizer_.param_groups[0]["lr"] == pytest.approx(torch_rates[-1])  # left at the last batch's rate
    # up from lr / 25 to (about: the peak falls between two batches) lr and down to lr / 2.5e5
    assert 0.95 * lr < max(torch_rates) <= lr and torch_rates[0] == pytest.approx(lr / 25)
    assert torch_rates[-1] == pytest.approx(lr / 25 / 1e4)
    # the same training as a constant rate in no epoch: the rates differ from the first batch on
    flat = DeepEnsembleRegressor(tiny_cnn(max_epochs=epochs, early_stopping=False, lr=lr), n_estimators=2,
                                 random_state=0, vectorize=vectorize).fit(X, y)
    assert _max_weight_diff(a, flat.estimators_[0]) > 1e-4
