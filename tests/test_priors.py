"""Prior correction: masses under a stated prior instead of the training population's."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from skcluster.priors import PriorCorrectedRegressor, training_prior_table
from skcluster.sample import ClusterSample

NOISE_DEX = 0.15


class BinnedPosterior(RegressorMixin, BaseEstimator):
    """The training posterior's mean and std of y in bins of the observable x
    (what a well-trained Gaussian-likelihood network approximates)."""

    def __init__(self, n_bins=60):
        self.n_bins = n_bins

    def fit(self, X, y, sample_weight=None):
        x = np.asarray(X["x"])
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight)
        self.edges_ = np.quantile(x, np.linspace(0, 1, self.n_bins + 1))
        k = np.clip(np.searchsorted(self.edges_, x) - 1, 0, self.n_bins - 1)
        self.mean_ = np.array([np.average(y[k == i], weights=w[k == i]) for i in range(self.n_bins)])
        self.std_ = np.sqrt([np.average((y[k == i] - mu) ** 2, weights=w[k == i]) for i, mu in enumerate(self.mean_)])
        return self

    def predict(self, X, return_std=False):
        k = np.clip(np.searchsorted(self.edges_, np.asarray(X["x"])) - 1, 0, self.n_bins - 1)
        return (self.mean_[k], self.std_[k]) if return_std else self.mean_[k]


def _population(rng, n, slope_dex=None):
    """log M from a steep mass function (slope_dex: d log10 N / d log10 M) or flat."""
    lo, hi = 13.0, 15.2
    if slope_dex is None:
        m = rng.uniform(lo, hi, n)
    else:
        u = rng.random(n)  # inverse CDF of 10^(slope (m - lo)) on [lo, hi]
        a = slope_dex * np.log(10.0)
        m = lo + np.log1p(u * np.expm1(a * (hi - lo))) / a
    z = rng.uniform(0.05, 1.0, n)
    x = m + rng.normal(0.0, NOISE_DEX, n)
    return ClusterSample(x=x, z=z), m


def _slope(pred, true):
    return np.polyfit(true, pred, 1)[0]


def test_training_prior_table_is_a_conditional_density():
    rng = np.random.default_rng(0)
    X, m = _population(rng, 4000, slope_dex=-1.5)
    grid, ugrid = np.linspace(12.8, 15.4, 200), np.linspace(0.0, 0.75, 8)
    tab = training_prior_table(m, X["z"], grid, ugrid)
    assert tab.shape == (8, 200)
    assert np.allclose(tab.sum(axis=1) * (grid[1] - grid[0]), 1.0)
    mid = (grid > 13.3) & (grid < 14.5)  # falls with mass as the population does, down to the floor
    assert np.all(np.diff(np.log(tab[4, mid])) < 0.01)  # up to the estimate's sampling wiggles
    assert tab[4, np.argmin(np.abs(grid - 13.4))] > 10 * tab[4, np.argmin(np.abs(grid - 14.4))]
    assert tab[4].min() == pytest.approx(0.01 * tab[4].max())


@pytest.mark.parametrize("method", ["divide", "weights"])
def test_flat_prior_undoes_the_shrinkage_on_another_population(method):
    rng = np.random.default_rng(1)
    Xtr, mtr = _population(rng, 20000, slope_dex=-1.2)
    raw = BinnedPosterior().fit(Xtr, mtr)
    flat = PriorCorrectedRegressor(BinnedPosterior(), target="flat", method=method).fit(Xtr, mtr)
    assert flat.mass_prior_ == "flat"
    if method == "weights":  # trained on the reweighted population; nothing divided at prediction
        assert not flat.log_ratio_.any()
        assert 0.1 * len(mtr) < flat.effective_sample_size_ < 0.9 * len(mtr)
    # a population the model was not trained on: flat in log M
    Xte, mte = _population(rng, 6000, slope_dex=None)
    inner = (mte > 13.3) & (mte < 14.9)
    p_raw = raw.predict(Xte)
    p_flat, s_flat = flat.predict(Xte, return_std=True)
    # the training-population posterior is pulled toward low masses
    assert np.mean(p_raw[inner] - mte[inner]) < -0.02
    # under a flat prior: unbiased and on the 1:1 slope away from the range ends,
    # with the measurement's own error (0.15 dex) as the predicted std
    assert abs(np.mean(p_flat[inner] - mte[inner])) < 0.02
    assert _slope(p_flat[inner], mte[inner]) == pytest.approx(1.0, abs=0.05)
    assert np.median(s_flat[inner]) == pytest.approx(NOISE_DEX, rel=0.2)
    cover = np.mean(np.abs(p_flat[inner] - mte[inner]) < s_flat[inner])
    assert 0.6 < cover < 0.76


def test_training_target_is_the_wrapped_model():
    rng = np.random.default_rng(2)
    X, m = _population(rng, 3000, slope_dex=-1.0)
    raw = BinnedPosterior().fit(X, m)
    same = PriorCorrectedRegressor(BinnedPosterior(), target="training").fit(X, m)
    a, sa = raw.predict(X, return_std=True)
    b, sb = same.predict(X, return_std=True)
    assert np.allclose(a, b) and np.allclose(sa, sb)


def test_mass_function_target_pulls_toward_abundant_low_masses():
    rng = np.random.default_rng(3)
    X, m = _population(rng, 4000, slope_dex=None)  # trained on a flat population
    flat = PriorCorrectedRegressor(BinnedPosterior(), target="flat").fit(X, m)
    mf = PriorCorrectedRegressor(BinnedPosterior(), target="mass_function", cosmology={"sigma8": 0.8}).fit(X, m)
    d = mf.predict(X) - flat.predict(X)
    # the mass function falls steeply with mass: its posterior sits lower, more so at high mass
    assert np.mean(d) < -0.01
    hi, lo = m > 14.6, (m > 13.4) & (m < 13.8)
    assert np.mean(d[hi]) < np.mean(d[lo])


def test_bad_parameters_and_input_are_named():
    rng = np.random.default_rng(4)
    X, m = _population(rng, 500, slope_dex=-1.0)
    with pytest.raises(ValueError, match="target"):
        PriorCorrectedRegressor(BinnedPosterior(), target="uniform").fit(X, m)
    with pytest.raises(ValueError, match="method"):
        PriorCorrectedRegressor(BinnedPosterior(), method="resample").fit(X, m)
    for bad in (8, 100.0, True):
        with pytest.raises(ValueError, match="n_grid must be an integer >= 16"):
            PriorCorrectedRegressor(BinnedPosterior(), n_grid=bad).fit(X, m)
    from sklearn.frozen import FrozenEstimator

    with pytest.raises(ValueError, match="frozen"):  # would ignore the weights and claim the flat prior
        PriorCorrectedRegressor(FrozenEstimator(BinnedPosterior().fit(X, m)), method="weights").fit(X, m)
    with pytest.raises(ValueError, match="selection"):
        PriorCorrectedRegressor(BinnedPosterior(), selection=([13.0, 14.0], [0.1, 0.5], np.ones((2, 2)))).fit(X, m)
    with pytest.raises(KeyError, match="z"):
        PriorCorrectedRegressor(BinnedPosterior()).fit(ClusterSample(x=X["x"]), m)
    fitted = PriorCorrectedRegressor(BinnedPosterior()).fit(X, m)
    bad = X.assign(z=np.where(np.arange(len(m)) == 3, np.nan, X["z"]))
    with pytest.raises(ValueError, match="rows \\[3\\]"):
        fitted.predict(bad)
