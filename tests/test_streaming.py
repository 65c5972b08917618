"""skcluster.streaming: batched prediction equals unbatched, with bounded batches and flags."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.pipeline import Pipeline

from skcluster import ClusterSample
from skcluster.streaming import iter_batches, predict_stream

# ---------------------------------------------------------------------------
# fast stand-ins (no torch): a first step that adds cut-out flags, and a
# regressor that records the largest batch it was given
# ---------------------------------------------------------------------------


class FlagStep(TransformerMixin, BaseEstimator):
    """Adds ``complete`` and ``coverage`` from ``z``, like ImageCutout adds its flags."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        z = np.asarray(X["z"])
        return X.assign(complete=z < 0.5, coverage=np.clip(1.5 - z, 0, 1), feature=2.0 * z)


class SpyRegressor(RegressorMixin, BaseEstimator):
    """Predicts 13 + feature (std 0.1 + z / 10); records the largest batch seen."""

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def predict(self, X, return_std=False):
        self.max_rows_ = max(getattr(self, "max_rows_", 0), len(X))
        mean = 13.0 + np.asarray(X["feature"])
        std = 0.1 + np.asarray(X["z"]) / 10.0
        return (mean, std) if return_std else mean


def _sample(n, seed=0):
    rng = np.random.default_rng(seed)
    return ClusterSample(z=rng.uniform(0.05, 1.0, n), ra=rng.uniform(0, 360, n), idx=np.arange(n))


def _spy_pipeline():
    return Pipeline([("bin", FlagStep()), ("model", SpyRegressor())]).fit(_sample(5))


def test_batches_are_bounded_and_results_in_order_with_flags():
    X = _sample(1000)
    pipe = _spy_pipeline()
    res = predict_stream(pipe, X, batch_size=128, keep=("idx",), verbose=False)
    assert pipe["model"].max_rows_ == 128  # never more than one batch at a time
    assert res.n_batches == 8
    z = X["z"]
    np.testing.assert_array_equal(res.columns["idx"], np.arange(1000))
    np.testing.assert_allclose(res.mean, 13.0 + 2.0 * z)
    np.testing.assert_allclose(res.std, 0.1 + z / 10.0)
    np.testing.assert_array_equal(res.complete, z < 0.5)
    np.testing.assert_allclose(res.coverage, np.clip(1.5 - z, 0, 1))


def test_pieces_of_any_size_are_regrouped():
    X = _sample(500, seed=3)
    cuts = [0, 7, 7, 130, 131, 400, 500]  # includes an empty piece and pieces larger than a batch
    pieces = (X[a:b] for a, b in zip(cuts[:-1], cuts[1:]))
    batches = list(iter_batches(pieces, batch_size=64))
    assert [len(b) for b in batches] == [64] * 7 + [52]
    np.testing.assert_array_equal(np.concatenate([b["idx"] for b in batches]), np.arange(500))

    pipe = _spy_pipeline()
    pieces = (X[a:b] for a, b in zip(cuts[:-1], cuts[1:]))
    res = predict_stream(pipe, pieces, batch_size=64, keep=("idx",), verbose=False)
    assert pipe["model"].max_rows_ == 64
    whole = pipe.predict(X, return_std=True)
    np.testing.assert_array_equal(res.mean, whole[0])
    np.testing.assert_array_equal(res.std, whole[1])


def test_bunches_of_iter_survey_shape_are_accepted():
    from sklearn.utils import Bunch

    X = _sample(50)
    pieces = [Bunch(X=X[:20], y=np.zeros(20)), Bunch(X=X[20:], y=np.zeros(30))]
    res = predict_stream(_spy_pipeline(), pieces, batch_size=16, verbose=False, return_std=False)
    np.testing.assert_allclose(res.mean, 13.0 + 2.0 * X["z"])
    assert res.std is None


def test_no_flags_without_a_flagging_first_step():
    model = SpyRegressor().fit(None)
    X = _sample(30).assign(feature=np.ones(30))
    res = predict_stream(model, X, batch_size=8, verbose=False)
    assert res.complete is None and res.coverage is None
    assert model.max_rows_ == 8


def test_clear_errors():
    pipe = _spy_pipeline()
    X = _sample(10)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            predict_stream(pipe, X, batch_size=bad, verbose=False)
    with pytest.raises(TypeError, match="item 1 of the input is a str"):
        predict_stream(pipe, [X, "not a sample"], verbose=False)
    with pytest.raises(KeyError, match="no column"):
        predict_stream(pipe, X, keep=("nope",), verbose=False)

    class Short(SpyRegressor):
        def predict(self, X, return_std=False):
            m, s = super().predict(X, return_std=True)
            return m[:-1], s[:-1]

    with pytest.raises(ValueError, match="returned 9 predictions for a batch of 10"):
        predict_stream(Pipeline([("bin", FlagStep()), ("model", Short())]).fit(X), X, verbose=False)


def test_empty_input_gives_empty_results():
    res = predict_stream(_spy_pipeline(), iter([]), verbose=False)
    assert res.mean.shape == (0,) and res.n_batches == 0


# ---------------------------------------------------------------------------
# the standard pipeline (a tiny CNN ensemble) on the mock survey
# ---------------------------------------------------------------------------
MOCK = dict(survey="efeds", n_clusters=70, random_state=11)


@pytest.fixture(scope="module")
def mock_and_model():
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline

    data = make_survey(**MOCK, verbose=False)
    pipe = make_mass_pipeline(bands="ho3", npix=20, n_estimators=2, max_epochs=2, random_state=0,
                              channels=(4, 8), dense=(8,), verbose=1)
    pipe.fit(data.X, data.y)
    return data, pipe


def test_batched_equals_unbatched_for_the_cnn_ensemble(mock_and_model):
    data, pipe = mock_and_model
    mean, std = pipe.predict(data.X, return_std=True)
    # batches that are multiples of the network's own batch size (64) give the
    # network the same mini-batches as one call on everything: identical results
    res = predict_stream(pipe, data.X, batch_size=64, verbose=False)
    np.testing.assert_array_equal(res.mean, mean)
    np.testing.assert_array_equal(res.std, std)
    assert res.n_batches == 2 and res.complete is None
    # other batch sizes change the mini-batch shapes, for which oneDNN may pick
    # other (bfloat16) kernels: equal to far below anything physical (1e-6 dex)
    res = predict_stream(pipe, data.X, batch_size=23, verbose=False)
    np.testing.assert_allclose(res.mean, mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.std, std, rtol=0, atol=1e-6)
    assert res.n_batches == 4
    # the steps' own progress output is off while streaming and restored after
    assert pipe["model"].verbose == 1 and pipe["bin"].verbose is True


def test_iter_survey_tiles_stream_like_the_whole_survey(mock_and_model):
    from skcluster.datasets import iter_survey

    data, pipe = mock_and_model
    mean, std = pipe.predict(data.X, return_std=True)
    tiles = (b.X.assign(y=b.y) for b in iter_survey(**MOCK, verbose=False))
    res = predict_stream(pipe, tiles, batch_size=64, keep=("y",), total=MOCK["n_clusters"],
                         verbose=False)
    np.testing.assert_array_equal(res.columns["y"], data.y)
    np.testing.assert_array_equal(res.mean, mean)
    np.testing.assert_array_equal(res.std, std)
