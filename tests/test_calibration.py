"""skcluster.calibration: recalibrating the predicted std on held-out data."""

import functools

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import BayesianRidge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcluster.calibration import RecalibratedRegressor, conformal_quantile, fit_std_scale
from skcluster.metrics import interval_coverage


class MisScaled(RegressorMixin, BaseEstimator):
    """BayesianRidge whose predicted std is off by a known factor (over-confident for factor < 1)."""

    def __init__(self, factor=0.3):
        self.factor = factor

    def fit(self, X, y):
        self.model_ = BayesianRidge().fit(X, y)
        return self

    def predict(self, X, return_std=False):
        mean, std = self.model_.predict(X, return_std=True)
        return (mean, std * self.factor) if return_std else mean


def _data(n, seed, noise=0.2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = 14.0 + X @ np.array([0.3, -0.2, 0.1]) + rng.normal(0, noise, n)
    return X, y


def test_fit_std_scale_recovers_a_known_factor():
    rng = np.random.default_rng(0)
    n = 20000
    sigma = rng.uniform(0.1, 0.3, n)
    y = rng.normal(0, sigma)
    mean = np.zeros(n)
    # predicted std 2.5x too small: the factor is 2.5 by either method
    assert fit_std_scale(y, mean, sigma / 2.5, method="nll") == pytest.approx(2.5, rel=0.02)
    assert fit_std_scale(y, mean, sigma / 2.5, method="coverage") == pytest.approx(2.5, rel=0.03)
    assert fit_std_scale(y, mean, sigma / 2.5, method="coverage", level=0.95) == pytest.approx(2.5, rel=0.04)
    with pytest.raises(ValueError, match="method must be one of"):
        fit_std_scale(y, mean, sigma, method="isotonic")
    with pytest.raises(ValueError, match="y_std must be positive"):
        fit_std_scale(y, mean, np.zeros(n))
    with pytest.raises(ValueError, match="residuals are all zero"):
        fit_std_scale(mean, mean, sigma)


def test_recalibration_restores_coverage_on_held_out_data():
    X_tr, y_tr = _data(300, 0)
    X_cal, y_cal = _data(1500, 1)
    X_te, y_te = _data(4000, 2)
    model = MisScaled(factor=0.3).fit(X_tr, y_tr)
    mean, std = model.predict(X_te, return_std=True)
    before = interval_coverage(y_te, mean, std, [0.68, 0.95])
    assert before[0] < 0.35 and before[1] < 0.6  # badly over-confident
    for method in ("nll", "coverage"):
        cal = RecalibratedRegressor(FrozenEstimator(model), method=method).fit(X_cal, y_cal)
        assert cal.scale_ == pytest.approx(1 / 0.3, rel=0.1)
        m2, s2 = cal.predict(X_te, return_std=True)
        np.testing.assert_array_equal(m2, mean)  # the mean is untouched
        np.testing.assert_allclose(s2, std * cal.scale_)
        after = interval_coverage(y_te, m2, s2, [0.68, 0.95])
        np.testing.assert_allclose(after, [0.68, 0.95], atol=0.03)
        assert cal.coverage_before_["0.68"] < 0.35
        assert cal.coverage_after_["0.68"] == pytest.approx(0.68, abs=0.03)
    # the frozen model was not refitted
    assert cal.estimator_.estimator is model


def test_conformal_intervals_cover_at_least_the_level():
    X_tr, y_tr = _data(300, 3)
    X_cal, y_cal = _data(2000, 4)
    X_te, y_te = _data(5000, 5)
    cal = RecalibratedRegressor(FrozenEstimator(MisScaled(0.5).fit(X_tr, y_tr))).fit(X_cal, y_cal)
    lo, hi = cal.predict_interval(X_te, level=[0.68, 0.9])
    assert lo.shape == (5000, 2)
    cover = ((y_te[:, None] >= lo) & (y_te[:, None] <= hi)).mean(axis=0)
    # split conformal: >= level in expectation over calibration sets; with n_cal = 2000 the
    # coverage of one draw scatters by ~0.01 (0.015 for n_cal = 500, measured over 20 draws)
    np.testing.assert_allclose(cover, [0.68, 0.9], atol=0.035)
    g_lo, g_hi = cal.predict_interval(X_te, level=0.68, conformal=False)
    assert g_lo.shape == (5000,) and np.all(g_hi > g_lo)


def test_conformal_quantile_rank_and_small_samples():
    scores = np.arange(1.0, 10.0)  # n = 9
    assert conformal_quantile(scores, 0.5) == 5.0  # ceil(10 * 0.5) = 5th smallest
    assert conformal_quantile(scores, 0.9) == 9.0
    assert conformal_quantile(scores, 0.95) == np.inf  # ceil(10 * 0.95) = 10 > n
    np.testing.assert_array_equal(conformal_quantile(scores, [0.5, 0.9]), [5.0, 9.0])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        conformal_quantile(scores, 1.0)


def test_unfrozen_estimator_is_trained_on_the_rest_and_works_in_a_pipeline():
    X, y = _data(600, 6)
    pipe = make_pipeline(StandardScaler(), RecalibratedRegressor(MisScaled(0.25), calibration_fraction=0.3,
                                                                 random_state=0))
    pipe.fit(X, y)
    cal = pipe[-1]
    assert cal.n_calibration_ == 180
    X_te, y_te = _data(3000, 7)
    mean, std = pipe.predict(X_te, return_std=True)
    assert interval_coverage(y_te, mean, std, 0.68) == pytest.approx(0.68, abs=0.05)
    # same random_state, same split and scale
    again = make_pipeline(StandardScaler(), RecalibratedRegressor(MisScaled(0.25), calibration_fraction=0.3,
                                                                  random_state=0)).fit(X, y)
    assert again[-1].scale_ == cal.scale_


def test_bad_parameters_and_estimators():
    X, y = _data(50, 8)
    with pytest.raises(ValueError, match="method must be one of"):
        RecalibratedRegressor(MisScaled(), method="beta").fit(X, y)
    with pytest.raises(ValueError, match="calibration_fraction"):
        RecalibratedRegressor(MisScaled(), calibration_fraction=1.5).fit(X, y)
    with pytest.raises(ValueError, match="level must be"):
        RecalibratedRegressor(MisScaled(), level=68).fit(X, y)
    with pytest.raises(ValueError, match="X has 50 rows but y has 49"):
        RecalibratedRegressor(MisScaled()).fit(X, y[:-1])
    from sklearn.linear_model import LinearRegression

    with pytest.raises(TypeError, match="return_std"):
        RecalibratedRegressor(LinearRegression()).fit(X, y)


def test_saves_with_the_safe_format(tmp_path):
    from skcluster import persist

    X, y = _data(200, 9)
    cal = RecalibratedRegressor(FrozenEstimator(BayesianRidge().fit(X[:100], y[:100]))).fit(X[100:], y[100:])
    # the calibration wrapper and FrozenEstimator are in the allow-list; this
    # test's BayesianRidge member is not, so it is trusted by exact name
    trusted = ["sklearn.linear_model._bayes:BayesianRidge"]
    persist.save(cal, tmp_path / "cal.skc", trusted=trusted)
    back = persist.load(tmp_path / "cal.skc", trusted=trusted)
    a, b = cal.predict(X, return_std=True), back.predict(X, return_std=True)
    np.testing.assert_allclose(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])
    assert back.scale_ == cal.scale_


# ------------------------------------------------------------- fixed-mass calibration
class _Posterior(RegressorMixin, BaseEstimator):
    """Posterior mean and std of m given x = m + N(0, s(z)) under the training population:
    binned in x and z (what a well-trained Gaussian-likelihood network approximates)."""

    def fit(self, X, y):
        x, z = np.asarray(X["x"]), np.asarray(X["z"])
        self.xe_ = np.quantile(x, np.linspace(0, 1, 41))
        self.ze_ = np.quantile(z, np.linspace(0, 1, 5))
        k = self._bins(x, z)
        self.mean_ = np.array([y[k == i].mean() for i in range(40 * 4)])
        self.std_ = np.array([y[k == i].std() for i in range(40 * 4)])
        return self

    def _bins(self, x, z):
        kx = np.clip(np.searchsorted(self.xe_, x) - 1, 0, 39)
        kz = np.clip(np.searchsorted(self.ze_, z) - 1, 0, 3)
        return kz * 40 + kx

    def predict(self, X, return_std=False):
        k = self._bins(np.asarray(X["x"]), np.asarray(X["z"]))
        return (self.mean_[k], self.std_[k]) if return_std else self.mean_[k]


def _mock(rng, n, peaked):
    """log M peaked at 13.9 (sd 0.35 dex, like a selected sample) or flat in [13, 15.2]; noise grows with z."""
    from skcluster import ClusterSample

    m = rng.normal(13.9, 0.35, n) if peaked else rng.uniform(13.0, 15.2, n)
    z = rng.uniform(0.05, 1.0, n)
    x = m + rng.normal(0.0, 0.08 + 0.2 * z, n)
    return ClusterSample(x=x, z=z), m


def test_mass_calibration_is_unbiased_at_fixed_mass_on_another_population():
    from skcluster.calibration import MassCalibratedRegressor

    rng = np.random.default_rng(0)
    Xtr, mtr = _mock(rng, 40000, peaked=True)
    post = _Posterior().fit(Xtr, mtr)
    Xcal, mcal = _mock(rng, 20000, peaked=True)  # fresh clusters of the training population
    cal = MassCalibratedRegressor(FrozenEstimator(post)).fit(Xcal, mcal)
    assert cal.n_calibration_ == 20000 and cal.coef_[3] < 0.95  # the posterior mean's response is shallow
    Xte, mte = _mock(rng, 20000, peaked=False)  # another population: flat in log M
    inner = (mte > 13.4) & (mte < 14.6)
    raw = post.predict(Xte)
    mean, std = cal.predict(Xte, return_std=True)
    slope = lambda p: np.polyfit(mte[inner], p[inner], 1)[0]  # noqa: E731
    assert slope(raw) < 0.9
    assert slope(mean) == pytest.approx(1.0, abs=0.04)
    # no bias at fixed true mass, in any 0.2 dex bin, nor at high z where the posterior shrinks most
    for lo in (13.4, 13.6, 13.8, 14.0, 14.2, 14.4):  # where the training population has clusters
        sel = (mte >= lo) & (mte < lo + 0.2)
        assert abs(np.mean(mean[sel] - mte[sel])) < 0.03, lo
    hz = inner & (np.asarray(Xte["z"]) > 0.7)
    assert abs(np.polyfit(mte[hz], mean[hz], 1)[0] - 1.0) < 0.06
    assert 0.6 < interval_coverage(mte[inner], mean[inner], std[inner], 0.68) < 0.76


def _sky(rng, m, noise=0.05):
    """Clusters of true masses ``m`` read as x = m + N(0, noise), at z uniform in 0.05-1."""
    from skcluster import ClusterSample

    return ClusterSample(x=m + rng.normal(0.0, noise, m.size), z=rng.uniform(0.05, 1.0, m.size)), m


class _Bend(RegressorMixin, BaseEstimator):
    """A response that steepens above 10^14.4: p = x + 0.5 (x - 14.4)_+."""

    def fit(self, X, y):
        return self

    def predict(self, X, return_std=False):
        x = np.asarray(X["x"])
        p = x + 0.5 * np.maximum(x - 14.4, 0.0)
        return (p, np.full_like(p, 0.05)) if return_std else p


def test_mass_calibration_with_a_hinge_follows_a_response_that_bends():
    from skcluster import ClusterSample
    from skcluster.calibration import MassCalibratedRegressor

    rng = np.random.default_rng(4)

    sky = functools.partial(_sky, rng)

    # the training population, pooled with a sample whose lowest mass is raised
    Xa, ma = sky(rng.normal(13.9, 0.35, 20000))
    Xb, mb = sky(rng.uniform(14.3, 15.2, 5000))
    Xcal, mcal = ClusterSample.concat([Xa, Xb]), np.concatenate([ma, mb])
    model = FrozenEstimator(_Bend())
    straight = MassCalibratedRegressor(model).fit(Xcal, mcal)
    bent = MassCalibratedRegressor(model, hinge=14.4).fit(Xcal, mcal)
    assert straight.coef_.size == 6 and bent.coef_.size == 7
    assert bent.coef_[6] == pytest.approx(0.5, abs=0.1)  # the change of slope
    Xte, mte = sky(rng.uniform(13.2, 15.2, 20000))  # another population: flat in log M
    worst = {}
    for name, cal in (("straight", straight), ("bent", bent)):
        mean, std = cal.predict(Xte, return_std=True)
        assert np.all(np.isfinite(mean)) and np.all(std > 0)
        worst[name] = max(abs(np.mean(mean[sel] - mte[sel]))
                          for sel in ((mte >= lo) & (mte < lo + 0.2) for lo in np.arange(13.4, 15.0, 0.2)))
    assert worst["straight"] > 0.05  # a straight line cannot follow the bend
    assert worst["bent"] < 0.02
    # above the hinge the std is divided by the steeper slope
    hi = bent.predict(ClusterSample(x=np.array([13.9, 14.9]), z=np.array([0.3, 0.3])), return_std=True)[1]
    assert hi[1] < hi[0]
    with pytest.raises(ValueError, match="above it"):
        MassCalibratedRegressor(model, hinge=15.5).fit(Xa, ma)
    with pytest.raises(ValueError, match="give a hinge"):
        MassCalibratedRegressor(model, bend_degree=1).fit(Xa, ma)
    with pytest.raises(ValueError, match="bend_degree must be"):
        MassCalibratedRegressor(model, hinge=14.4, bend_degree=3).fit(Xa, ma)
    with pytest.raises(ValueError, match="finite"):
        MassCalibratedRegressor(model, hinge=float("nan")).fit(Xa, ma)


def test_mass_calibration_refuses_a_model_that_does_not_read_the_mass():
    from skcluster import ClusterSample
    from skcluster.calibration import MassCalibratedRegressor

    rng = np.random.default_rng(1)
    X, m = _mock(rng, 2000, peaked=True)
    blind = _Posterior().fit(ClusterSample(x=rng.normal(size=2000), z=np.asarray(X["z"])), m)
    with pytest.raises(ValueError, match="barely reads the mass"):
        MassCalibratedRegressor(FrozenEstimator(blind)).fit(ClusterSample(x=rng.normal(size=2000), z=X["z"]), m)
    with pytest.raises(ValueError, match="at least 12"):
        MassCalibratedRegressor(FrozenEstimator(blind)).fit(X[:5], m[:5])


def test_mass_calibrated_model_round_trips_through_a_model_file(tmp_path):
    from skcluster import persist
    from skcluster.baselines import ColumnsToArray
    from skcluster.calibration import MassCalibratedRegressor

    rng = np.random.default_rng(3)
    X, m = _mock(rng, 600, peaked=True)
    inner = make_pipeline(ColumnsToArray(columns=["x", "z"]), BayesianRidge()).fit(X[:300], m[:300])
    trusted = ["sklearn.linear_model._bayes:BayesianRidge"]  # the test's member, not in the allow-list
    for kw in ({}, {"hinge": (13.6, 14.2), "bend_degree": 1, "min_slope": -np.inf}):  # straight; two hinges
        model = MassCalibratedRegressor(FrozenEstimator(inner), **kw).fit(X[300:], m[300:])
        persist.save(model, tmp_path / "cal.skc", trusted=trusted, overwrite=True)
        back = persist.load(tmp_path / "cal.skc", trusted=trusted)
        assert back.get_params()["hinge"] == kw.get("hinge")
        a, b = model.predict(X, return_std=True), back.predict(X, return_std=True)
        np.testing.assert_allclose(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1])


class _BendGrowingWithZ(RegressorMixin, BaseEstimator):
    """Below 10^14.4 the response flattens with z (slope 1 - 0.5 z), above it the slope stays 1."""

    def fit(self, X, y):
        return self

    def predict(self, X, return_std=False):
        x, z = np.asarray(X["x"]), np.asarray(X["z"])
        p = 14.4 + (1.0 - 0.5 * z) * np.minimum(x - 14.4, 0.0) + np.maximum(x - 14.4, 0.0)
        return (p, np.full_like(p, 0.05)) if return_std else p


def test_mass_calibration_bend_may_grow_with_redshift():
    from skcluster.calibration import MassCalibratedRegressor

    rng = np.random.default_rng(5)

    sky = functools.partial(_sky, rng)

    Xa, ma = sky(np.concatenate([rng.normal(13.9, 0.35, 20000), rng.uniform(14.3, 15.2, 5000)]))
    model = FrozenEstimator(_BendGrowingWithZ())
    const = MassCalibratedRegressor(model, hinge=14.4).fit(Xa, ma)
    growing = MassCalibratedRegressor(model, hinge=14.4, bend_degree=1).fit(Xa, ma)
    assert growing.coef_.size == 8
    Xte, mte = sky(rng.uniform(13.4, 15.0, 40000))
    zte = np.asarray(Xte["z"])
    bins = [(mte >= lo) & (mte < lo + 0.2) & (zte > 0.7) for lo in (13.6, 13.8, 14.0, 14.2, 14.4, 14.6)]
    worst = {}
    for name, cal in (("const", const), ("growing", growing)):
        mean = cal.predict(Xte)
        worst[name] = max(abs(np.mean(mean[sel] - mte[sel])) for sel in bins)
    # a bend constant in z cannot follow one that grows with z; the linear one can
    assert worst["const"] > 2 * worst["growing"] and worst["growing"] < 0.03


class _FadingWithZ(RegressorMixin, BaseEstimator):
    """A response whose slope falls linearly with z, to 0.1 at z = 1."""

    def fit(self, X, y):
        return self

    def predict(self, X, return_std=False):
        x, z = np.asarray(X["x"]), np.asarray(X["z"])
        p = 14.0 + (1.0 - 0.9 * z) * (x - 14.0)
        return (p, np.full_like(p, 0.05)) if return_std else p


def test_mass_calibration_refusal_names_the_redshift_where_the_response_fades():
    from skcluster import ClusterSample
    from skcluster.calibration import MassCalibratedRegressor

    rng = np.random.default_rng(6)
    m = rng.normal(14.0, 0.4, 5000)
    z = np.concatenate([[0.0, 1.0], rng.uniform(0.0, 1.0, 4998)])
    X = ClusterSample(x=m, z=z)
    with pytest.raises(ValueError, match=r"falls to 0\.1\d\d dex per dex at z = 1\.00"):
        MassCalibratedRegressor(FrozenEstimator(_FadingWithZ()), min_slope=0.2).fit(X, m)


def test_mass_calibration_holds_each_slope_beyond_its_own_clusters():
    """A flux limit: below the hinge the calibration clusters stop near z = 0.8 (a few stragglers beyond), above it
    they reach z = 1.5. Each side's slope is fitted and checked over its own redshifts and held beyond them."""
    from skcluster import ClusterSample
    from skcluster.calibration import SIDE_QUANTILE, MassCalibratedRegressor

    rng = np.random.default_rng(7)
    m_lo, z_lo = rng.normal(13.9, 0.25, 12000), rng.uniform(0.05, 0.8, 12000)
    m_lo = np.minimum(m_lo, 14.39)
    # 2% or fewer stragglers below the hinge at z 0.8-1.5, whose predictions sit far off the response
    z_far = rng.uniform(0.8, 1.5, 60)
    m_far = rng.uniform(13.9, 14.39, 60)
    m_hi, z_hi = rng.uniform(14.4, 15.2, 6000), rng.uniform(0.05, 1.5, 6000)
    m = np.concatenate([m_lo, m_far, m_hi])
    z = np.concatenate([z_lo, z_far, z_hi])
    x = m + rng.normal(0.0, 0.05, m.size)
    x[m_lo.size:m_lo.size + 60] = 14.4 - 2.0 * (x[m_lo.size:m_lo.size + 60] - 14.4)  # falling: pure noise
    model = FrozenEstimator(_BendGrowingWithZ())
    # checked over all calibration redshifts, the slope below the hinge extrapolated to z = 1.5 falls to -0.13 (a
    # refusal); over its own clusters' redshifts it is fine
    cal = MassCalibratedRegressor(model, hinge=14.4, bend_degree=1).fit(ClusterSample(x=x, z=z), m)
    (lo_below, hi_below), (lo_above, hi_above) = cal.slope_redshift_ranges_
    assert hi_below == pytest.approx(np.quantile(z[m <= 14.4], 1 - SIDE_QUANTILE))
    assert hi_below < 0.85 and hi_above > 1.4 and cal.redshift_range_[1] > 1.49
    # beyond the clusters below the hinge their slope is held; above the hinge it still follows z
    b_below, b_above = cal._slopes(np.log1p(np.array([hi_below, 1.0, 1.4])))
    assert b_below[1] == b_below[0] == b_below[2]
    assert b_above[2] != b_above[1]
    # unbiased at fixed true mass where each side has clusters
    mt = rng.uniform(13.6, 15.0, 40000)
    zt = np.where(mt > 14.4, rng.uniform(0.05, 1.5, mt.size), rng.uniform(0.05, 0.75, mt.size))
    Xte = ClusterSample(x=mt + rng.normal(0.0, 0.05, mt.size), z=zt)
    mean = cal.predict(Xte)
    for lo in (13.6, 13.8, 14.0, 14.2, 14.4, 14.6, 14.8):
        sel = (mt >= lo) & (mt < lo + 0.2)
        assert abs(np.mean(mean[sel] - mt[sel])) < 0.03, lo


class _TwoBends(RegressorMixin, BaseEstimator):
    """Flatter below 10^13.5 (slope 0.6), 1 between, steeper above 10^14.4 (slope 1.5)."""

    def fit(self, X, y):
        return self

    def predict(self, X, return_std=False):
        x = np.asarray(X["x"])
        p = x - 0.4 * np.minimum(x - 13.5, 0.0) + 0.5 * np.maximum(x - 14.4, 0.0)
        return (p, np.full_like(p, 0.05)) if return_std else p


def test_mass_calibration_with_two_hinges_follows_both_bends():
    from skcluster import ClusterSample
    from skcluster.calibration import MassCalibratedRegressor

    rng = np.random.default_rng(8)

    sky = functools.partial(_sky, rng, noise=0.03)

    Xcal, mcal = sky(np.concatenate([rng.normal(13.9, 0.4, 20000), rng.uniform(14.3, 15.2, 5000)]))
    model = FrozenEstimator(_TwoBends())
    one = MassCalibratedRegressor(model, hinge=14.4).fit(Xcal, mcal)
    two = MassCalibratedRegressor(model, hinge=(14.4, 13.5)).fit(Xcal, mcal)  # any order
    assert two.coef_.size == 8 and len(two.slope_redshift_ranges_) == 3
    # the changes of slope, in ascending order of the hinges: +0.4 at 13.5, +0.5 at 14.4
    np.testing.assert_allclose(two.coef_[6:], [0.4, 0.5], atol=0.05)
    Xte, mte = sky(rng.uniform(13.0, 15.0, 40000))
    worst = {}
    for name, cal in (("one", one), ("two", two)):
        mean, std = cal.predict(Xte, return_std=True)
        worst[name] = max(abs(np.mean(mean[sel] - mte[sel]))
                          for sel in ((mte >= lo) & (mte < lo + 0.2) for lo in np.arange(13.0, 14.8, 0.2)))
    assert worst["one"] > 0.05 and worst["two"] < 0.02
    # below the lower hinge the std is divided by the flatter slope
    lo, mid = two.predict(ClusterSample(x=np.array([13.1, 14.0]), z=np.array([0.3, 0.3])), return_std=True)[1]
    assert lo > mid


class _DepthResponse(RegressorMixin, BaseEstimator):
    """Shallow clusters lean toward 13.9 more: p = 13.9 + (0.9 + 0.2 w)(m - 13.9) + 0.05 w, w = log10(t / 1000 s)."""

    def fit(self, X, y):
        return self

    def predict(self, X, return_std=False):
        x, w = np.asarray(X["x"]), np.log10(np.asarray(X["exposure"]) / 1000.0)
        p = 13.9 + (0.9 + 0.2 * w) * (x - 13.9) + 0.05 * w
        return (p, np.full_like(p, 0.05)) if return_std else p


def _depth_sky(rng, n, lo_s=100.0, hi_s=5000.0):
    from skcluster import ClusterSample

    m = rng.uniform(13.2, 14.8, n)
    t = 10 ** rng.uniform(np.log10(lo_s), np.log10(hi_s), n)
    return ClusterSample(x=m + rng.normal(0.0, 0.03, n), z=rng.uniform(0.05, 1.0, n), exposure=t), m


def test_mass_calibration_with_exposure_terms_is_unbiased_at_every_depth(tmp_path):
    from skcluster import persist
    from skcluster.calibration import MassCalibratedRegressor

    rng = np.random.default_rng(5)
    X_cal, m_cal = _depth_sky(rng, 4000)
    flat = MassCalibratedRegressor(FrozenEstimator(_DepthResponse())).fit(X_cal, m_cal)
    deep = MassCalibratedRegressor(FrozenEstimator(_DepthResponse()), exposure_terms=True, hinge=14.4).fit(X_cal, m_cal)
    assert deep.exposure_range_[0] < 0 < deep.exposure_range_[1]
    for lo_s, hi_s in ((100.0, 150.0), (3000.0, 5000.0)):  # eRASS1-like and deep
        X, m = _depth_sky(rng, 3000, lo_s, hi_s)
        slope = lambda p, m=m: np.polyfit(m, p, 1)[0]  # noqa: E731
        one = flat.predict(X)
        both = deep.predict(X)
        assert abs(slope(one) - 1.0) > 0.05 or abs(np.mean(one - m)) > 0.02   # one response misses a depth
        assert slope(both) == pytest.approx(1.0, abs=0.01) and abs(np.mean(both - m)) < 0.005
        # the same numbers from the model's own predictions (as predict_catalog calibrates them)
        raw = _DepthResponse().predict(X, return_std=True)
        np.testing.assert_allclose(deep.calibrate(*raw, np.asarray(X["z"]), np.asarray(X["exposure"]))[0], both)
    with pytest.raises(ValueError, match="give exposure="):
        deep.calibrate(*raw, np.asarray(X["z"]))
    with pytest.raises(KeyError, match="exposure"):
        deep.predict(X.drop("exposure"))
    trusted = ["test_calibration:_DepthResponse"]
    persist.save(deep, tmp_path / "d.skc", trusted=trusted)
    back = persist.load(tmp_path / "d.skc", trusted=trusted)
    np.testing.assert_allclose(back.predict(X), both)
