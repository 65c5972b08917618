"""skcluster.ensemble: the deep ensemble, its mixture, parallel training and failures."""

import logging
import os
import signal
import sys
import time

import joblib
import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import BayesianRidge, LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcluster import ClusterSample
from skcluster.ensemble import DeepEnsembleRegressor, EnsembleFitError, mixture_moments
from skcluster.nn import CNNRegressor, make_toy_sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_cnn(**kw):
    params = dict(
        module__channels=(4, 8), module__dense=(16,), input_scaling="log1p",
        batch_size=32, max_epochs=3,
    )
    params.update(kw)
    return CNNRegressor(**params)


@pytest.fixture(scope="module")
def toy():
    return make_toy_sample(96, n_bands=2, image_size=16, random_state=0)


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(0, 0.3, 80)
    return X, y


# ----------------------------------------------------------------- sklearn's checks
def _expected_failed_checks(estimator):
    # Checks that need pandas are skipped by sklearn itself when it is absent.
    if estimator.bootstrap:
        # as sklearn's own BaggingRegressor: a bootstrap resample of n rows drawn from a repeated
        # row set is not the resample of the weighted set, so integer weights != repeated rows
        why = "bootstrap resamples rows, not weight units (as BaggingRegressor)"
        return {f"check_sample_weight_equivalence_on_{kind}_data": why for kind in ("dense", "sparse")}
    return {}


@parametrize_with_checks(
    [
        DeepEnsembleRegressor(BayesianRidge(), n_estimators=3, random_state=0),
        DeepEnsembleRegressor(DecisionTreeRegressor(max_depth=4), n_estimators=3, bootstrap=True, random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------------------- mixture
def test_mixture_moments_match_the_direct_formula_and_sampling():
    rng = np.random.default_rng(1)
    mu = rng.normal(14.0, 0.2, size=(7, 5))
    sigma = rng.uniform(0.05, 0.3, size=(7, 5))
    mean, alea, epi = mixture_moments(mu, sigma**2)
    direct_var = np.mean(sigma**2 + mu**2, axis=0) - np.mean(mu, axis=0) ** 2
    np.testing.assert_allclose(mean, mu.mean(axis=0))
    np.testing.assert_allclose(alea + epi, direct_var, rtol=1e-9)
    np.testing.assert_allclose(alea, np.mean(sigma**2, axis=0))
    # draw from the mixture itself: pick a member at random, then its Gaussian
    k = rng.integers(0, 7, size=(400_000, 5))
    draws = rng.normal(np.take_along_axis(mu, k, 0), np.take_along_axis(sigma, k, 0))
    np.testing.assert_allclose(draws.var(axis=0), direct_var, rtol=0.02)
    # a sigma-for-variance mix-up would be caught
    assert not np.allclose(mixture_moments(mu, sigma)[1] + epi, direct_var, rtol=0.05)


def test_ensemble_predict_equals_mixture_of_member_predictions(linear_data):
    X, y = linear_data
    ens = DeepEnsembleRegressor(BayesianRidge(), n_estimators=6, bootstrap=True, random_state=0).fit(X, y)
    assert ens.member_has_std_
    mus, sds = zip(*(m.predict(X, return_std=True) for m in ens.estimators_))
    mus, sds = np.array(mus), np.array(sds)
    mean, std = ens.predict(X, return_std=True)
    np.testing.assert_allclose(mean, mus.mean(axis=0))
    np.testing.assert_allclose(std**2, np.mean(sds**2 + mus**2, axis=0) - mus.mean(axis=0) ** 2, rtol=1e-8)
    parts = ens.predict_components(X)
    np.testing.assert_allclose(parts.std**2, parts.aleatoric_std**2 + parts.epistemic_std**2)
    np.testing.assert_allclose(parts.epistemic_std, mus.std(axis=0))
    np.testing.assert_allclose(parts.aleatoric_std, np.sqrt(np.mean(sds**2, axis=0)))
    assert parts.member_means.shape == (6, len(X)) and parts.member_stds.shape == (6, len(X))
    np.testing.assert_array_equal(ens.predict(X), mean)


def test_more_members_do_not_shrink_the_epistemic_part_to_zero(linear_data):
    X, y = linear_data
    spreads = []
    for n in (4, 16, 64):
        ens = DeepEnsembleRegressor(DecisionTreeRegressor(), n_estimators=n, bootstrap=True, random_state=0)
        parts = ens.fit(X, y).predict_components(X)
        assert parts.member_stds is None and np.all(parts.aleatoric_std == 0)
        np.testing.assert_allclose(parts.std, parts.epistemic_std)
        spreads.append(np.median(parts.epistemic_std))
    # members disagree: the spread converges to the population spread, it is
    # not a standard error of the mean (which would fall by 4x from 4 to 64)
    assert spreads[-1] > 0.1
    assert spreads[-1] > 0.6 * spreads[0]


def test_members_get_distinct_seeds_also_nested(linear_data):
    X, y = linear_data
    member = Pipeline([("scale", StandardScaler()), ("tree", DecisionTreeRegressor(random_state=None))])
    ens = DeepEnsembleRegressor(member, n_estimators=5, random_state=3).fit(X, y)
    states = [m.named_steps["tree"].random_state for m in ens.estimators_]
    assert len(set(states)) == 5 and all(isinstance(s, int) for s in states)
    assert len(set(ens.seeds_.tolist())) == 5
    again = DeepEnsembleRegressor(member, n_estimators=5, random_state=3).fit(X, y)
    assert [m.named_steps["tree"].random_state for m in again.estimators_] == states
    # a member without return_std inside a Pipeline is detected as such
    assert not ens.member_has_std_


def test_member_errors_keep_their_type_and_name_the_member(linear_data):
    X, y = linear_data
    X = X.copy()
    X[3, 1] = np.nan
    ens = DeepEnsembleRegressor(Pipeline([("lr", LinearRegression())]), n_estimators=2)
    with pytest.raises(ValueError, match="NaN"):
        ens.fit(X, y)
    assert not hasattr(ens, "estimators_")


def test_failed_refit_leaves_no_old_model(linear_data):
    X, y = linear_data
    ens = DeepEnsembleRegressor(BayesianRidge(), n_estimators=2).fit(X, y)
    with pytest.raises(ValueError):
        ens.fit(X[:, :2], y[:-1])
    assert not hasattr(ens, "estimators_")


def test_bad_parameters_raise_in_fit(linear_data):
    X, y = linear_data
    with pytest.raises(ValueError, match="n_estimators must be a positive int"):
        DeepEnsembleRegressor(BayesianRidge(), n_estimators=0).fit(X, y)
    with pytest.raises(ValueError, match="torch_threads"):
        DeepEnsembleRegressor(BayesianRidge(), torch_threads=0).fit(X, y)


def test_verbose_shows_progress_over_members(linear_data, capsys):
    X, y = linear_data
    DeepEnsembleRegressor(BayesianRidge(), n_estimators=3, verbose=1).fit(X, y)
    out = capsys.readouterr()
    assert "ensemble members" in out.err and "3/3" in out.err
    assert "3 members in" in out.out


# ------------------------------------------------------------------ CNN ensembles
def test_cnn_ensemble_predicts_with_both_uncertainties(toy):
    X, y = toy
    ens = DeepEnsembleRegressor(tiny_cnn(), n_estimators=3, random_state=0).fit(X, y)
    assert ens.member_has_std_ and all(isinstance(m, CNNRegressor) for m in ens.estimators_)
    assert len({m.random_state for m in ens.estimators_}) == 3
    parts = ens.predict_components(X)
    assert np.all(parts.aleatoric_std > 0) and np.all(parts.epistemic_std > 0)
    assert np.all(np.isfinite(parts.std)) and parts.mean.shape == (len(X),)


def test_cnn_ensemble_takes_a_bare_image_cube():
    X, y = make_toy_sample(64, n_scalars=0, random_state=4)
    cube = X["images"]  # (n, B, H, W): no 2-D validation for members that take cubes
    ens = DeepEnsembleRegressor(tiny_cnn(max_epochs=1), n_estimators=2, random_state=0).fit(cube, y)
    assert not hasattr(ens, "n_features_in_")
    np.testing.assert_array_equal(ens.predict(cube), ens.predict(X))
    with pytest.raises(ValueError, match="y contains NaN"):
        DeepEnsembleRegressor(tiny_cnn(), n_estimators=1).fit(cube, np.where(np.arange(64) == 3, np.nan, y))


def test_default_member_is_a_cnn():
    assert DeepEnsembleRegressor()._member_template().__class__ is CNNRegressor
    assert DeepEnsembleRegressor().n_estimators == 5  # the recommended default, make_mass_pipeline's


class ToyJoiner(TransformerMixin, BaseEstimator):
    """Stand-in for the preprocessing chain: log-scales counts, joins z as the scalar."""

    def fit(self, X, y=None):
        X.require("images", "z", step="ToyJoiner")
        self.n_bands_ = int(X["images"].shape[1])
        self.image_shape_ = tuple(int(s) for s in X["images"].shape[2:])
        self.band_scale_ = np.log1p(X["images"]).mean(axis=(0, 2, 3)).astype(np.float32) + 1e-3
        return self

    def transform(self, X):
        if X["images"].shape[1:] != (self.n_bands_, *self.image_shape_):
            raise ValueError(f"ToyJoiner: expected images (n, {self.n_bands_}, ...), got {X['images'].shape}")
        images = (np.log1p(X["images"]) / self.band_scale_[None, :, None, None]).astype(np.float32)
        return ClusterSample(images=images, scalars=np.asarray(X["z"], np.float32)[:, None])


def _raw(X):
    """The toy sample as the preprocessing would see it: counts and a z column."""
    return ClusterSample(images=X["images"], z=X["scalars"][:, 0].astype(np.float64), meta=X.meta)


def test_full_chain_in_pipeline_cross_validate_and_grid_search(toy):
    X, y = toy
    raw = _raw(X)
    member = tiny_cnn(input_scaling=None, max_epochs=2)
    pipe = Pipeline([("join", ToyJoiner()), ("ens", DeepEnsembleRegressor(member, n_estimators=2, random_state=0))])
    mean, std = pipe.fit(raw, y).predict(raw, return_std=True)
    assert mean.shape == std.shape == (len(raw),) and np.all(np.isfinite(std)) and np.all(std > 0)

    cv = cross_validate(pipe, raw, y, cv=KFold(2, shuffle=True, random_state=0))
    assert np.all(np.isfinite(cv["test_score"]))

    grid = GridSearchCV(
        pipe,
        {"ens__n_estimators": [1, 2], "ens__estimator__module__channels": [(2, 4), (4, 8)]},
        cv=2,
    ).fit(raw, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_estimator_.named_steps["ens"].estimators_[0].module_.features[0][0].out_channels in (2, 4)


# ---------------------------------------------------- parallel: same seeds, same numbers
def test_same_predictions_whatever_n_jobs_and_backend_sklearn_member(linear_data):
    X, y = linear_data
    kw = dict(n_estimators=4, bootstrap=True, random_state=7)
    ref = DeepEnsembleRegressor(BayesianRidge(), **kw).fit(X, y).predict(X, return_std=True)
    for backend, n_jobs in (("sequential", 1), ("threading", 2), ("loky", 2)):
        with joblib.parallel_config(backend=backend):
            got = DeepEnsembleRegressor(BayesianRidge(), n_jobs=n_jobs, **kw).fit(X, y).predict(X, return_std=True)
        np.testing.assert_array_equal(got[0], ref[0], err_msg=backend)
        np.testing.assert_array_equal(got[1], ref[1], err_msg=backend)


def test_same_predictions_whatever_n_jobs_cnn_member(toy):
    X, y = toy
    kw = dict(n_estimators=2, random_state=5, bootstrap=True)
    # the same number of torch threads everywhere: bit-identical members
    # (member by member; the vectorised path orders float operations differently)
    ref = DeepEnsembleRegressor(tiny_cnn(), torch_threads=1, vectorize=False, **kw).fit(X, y)
    ref = ref.predict(X, return_std=True)
    ens = DeepEnsembleRegressor(tiny_cnn(), n_jobs=2, torch_threads=1, vectorize=False, **kw).fit(X, y)
    assert not ens.vectorised_
    got = ens.predict(X, return_std=True)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    # default threads (2 sequential vs 1 per worker), and the vectorised
    # default with n_jobs=None: equal up to float rounding
    auto = DeepEnsembleRegressor(tiny_cnn(), vectorize=False, **kw).fit(X, y).predict(X)
    np.testing.assert_allclose(auto, ref[0], atol=1e-4)
    vec = DeepEnsembleRegressor(tiny_cnn(), torch_threads=1, **kw).fit(X, y)
    assert vec.vectorised_
    np.testing.assert_allclose(vec.predict(X), ref[0], atol=1e-4)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_backend_same_predictions_and_grid_search(dask_client, toy, linear_data):
    X, y = toy
    # vectorize=False: the member-by-member path, whose members are bit-identical
    # wherever they run ("auto" would also pick it under the Dask backend)
    kw = dict(n_estimators=2, random_state=5, bootstrap=True, torch_threads=1, vectorize=False)
    ref = DeepEnsembleRegressor(tiny_cnn(), **kw).fit(X, y).predict(X, return_std=True)
    from distributed import get_task_stream

    with get_task_stream(dask_client) as stream, joblib.parallel_config(backend="dask"):
        ens = DeepEnsembleRegressor(tiny_cnn(), **kw).fit(X, y)
    assert not ens.vectorised_
    with joblib.parallel_config(backend="dask"):  # "auto" sends the members to the cluster too
        auto = DeepEnsembleRegressor(tiny_cnn(max_epochs=1), n_estimators=2, random_state=0).fit(X, y)
    assert not auto.vectorised_
    got = ens.predict(X, return_std=True)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    # the members really ran on the cluster's workers
    assert len({t["worker"] for t in stream.data}) >= 1 and len(stream.data) >= 1

    # GridSearchCV candidates on the cluster too
    Xl, yl = linear_data
    grid = GridSearchCV(
        DeepEnsembleRegressor(BayesianRidge(), bootstrap=True, random_state=0),
        {"n_estimators": [2, 3]},
        cv=2,
    )
    serial = GridSearchCV(**grid.get_params(deep=False)).fit(Xl, yl)
    with joblib.parallel_config(backend="dask"):
        grid.fit(Xl, yl)
    np.testing.assert_array_equal(grid.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"])


# ------------------------------------------------------------------ a worker dies
class DiesInFit(RegressorMixin, BaseEstimator):
    """A member whose fit kills its own process (odd seeds), as the OOM killer would."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        if self.random_state % 2:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.2)
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


@pytest.fixture
def alarm():
    """Fail (instead of hanging the suite) if the body takes over 180 s."""

    def _timeout(signum, frame):
        raise TimeoutError("ensemble fit hung after a worker died")

    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(180)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_killed_worker_is_a_clear_error_and_nothing_is_saved(tmp_path, linear_data, alarm):
    cloudpickle = pytest.importorskip("cloudpickle")  # loky's pickler (joblib 1.6 uses the package)
    from skcluster import persist

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this file
    try:
        X, y = linear_data
        model = tmp_path / "model.skc"
        ens = DeepEnsembleRegressor(DiesInFit(), n_estimators=6, n_jobs=2, random_state=0)
        assert any(m.random_state % 2 for m in [DiesInFit(s) for s in np.random.RandomState(0).randint(2**31 - 1, size=6)])
        with joblib.parallel_config(backend="loky"):
            with pytest.raises(EnsembleFitError, match="worker process died.*SIGKILL|worker process died.*terminated"):
                ens.fit(X, y)
                persist.save(ens, model)  # never reached
        assert not hasattr(ens, "estimators_")
        with pytest.raises(NotFittedError, match="refusing to save an unfitted"):
            persist.save(ens, model)
        assert list(tmp_path.iterdir()) == []
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_worker_death_is_recognised():
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    from skcluster.ensemble import _is_worker_death

    assert _is_worker_death(TerminatedWorkerError("x"))
    assert not _is_worker_death(ValueError("x"))
    assert issubclass(EnsembleFitError, RuntimeError)
