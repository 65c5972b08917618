"""Tests of skcluster.metrics against direct computation."""

import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import BayesianRidge, LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skcluster.metrics import (
    LN10,
    SCORER_NAMES,
    binned_mass_metrics,
    calibration_curve,
    calibration_error,
    crps_gaussian,
    gaussian_nll,
    get_scorer,
    interval_coverage,
    make_mass_scorer,
    make_report_scorer,
    mass_bias,
    mass_scatter,
    mean_predicted_scatter,
)


def test_scatter_and_bias_definitions(rng):
    y = rng.uniform(13.5, 15, 1000)
    r = rng.normal(0.02, 0.08, 1000)
    assert mass_scatter(y, y + r) == pytest.approx(np.log(10) * np.std(r))
    assert mass_scatter(y, y + r, ddof=1) == pytest.approx(np.log(10) * np.std(r, ddof=1))
    assert mass_bias(y, y + r) == pytest.approx(np.log(10) * np.mean(r))
    # 0.0817 dex is the seed study's 18.8% in ln M
    assert mass_scatter([0, 0], [-0.0817, 0.0817]) == pytest.approx(0.188, abs=1e-3)
    assert mean_predicted_scatter(np.full(5, 0.0817)) == pytest.approx(0.188, abs=1e-3)


def test_gaussian_nll_matches_scipy(rng):
    y, mu, s = rng.normal(size=50), rng.normal(size=50), rng.uniform(0.1, 2, 50)
    assert gaussian_nll(y, mu, s) == pytest.approx(-np.mean(stats.norm.logpdf(y, mu, s)))


def test_crps_matches_numerical_integration(rng):
    """CRPS = integral of (F(x) - 1{x >= y})^2 dx."""
    y, mu, s = rng.normal(size=6), rng.normal(size=6), rng.uniform(0.05, 1.5, 6)
    direct = []
    for yi, mi, si in zip(y, mu, s):
        left = integrate.quad(lambda x, mi=mi, si=si: stats.norm.cdf(x, mi, si) ** 2, -np.inf, yi)[0]
        right = integrate.quad(lambda x, mi=mi, si=si: stats.norm.sf(x, mi, si) ** 2, yi, np.inf)[0]
        direct.append(left + right)
    for i in range(6):
        assert crps_gaussian(y[i:i + 1], mu[i:i + 1], s[i:i + 1]) == pytest.approx(direct[i], rel=1e-6)
    assert crps_gaussian(y, mu, s) == pytest.approx(np.mean(direct), rel=1e-6)
    # sigma -> 0: the absolute error
    assert crps_gaussian([1.0], [0.3], [1e-9]) == pytest.approx(0.7, rel=1e-6)


def test_coverage_of_a_perfect_gaussian_model_is_nominal():
    rng = np.random.default_rng(0)
    n = 100_000
    mu = rng.uniform(13.5, 15, n)
    s = rng.uniform(0.03, 0.3, n)
    y = rng.normal(mu, s)
    for level in (0.5, 0.68, 0.9, 0.95):
        se = np.sqrt(level * (1 - level) / n)
        assert interval_coverage(y, mu, s, level) == pytest.approx(level, abs=4 * se)
    nominal, observed = calibration_curve(y, mu, s)
    np.testing.assert_allclose(observed, nominal, atol=0.006)
    assert calibration_error(y, mu, s) < 0.004
    # over-confident (std halved): coverage far below nominal
    assert interval_coverage(y, mu, s / 2, 0.68) == pytest.approx(2 * stats.norm.cdf(0.5 * 0.994) - 1, abs=0.01)
    lv = interval_coverage(y, mu, s, [0.68, 0.95])
    assert lv.shape == (2,)


def test_binned_metrics(rng):
    y = np.repeat([13.6, 14.0, 14.4, 14.8], 250) + rng.uniform(-0.1, 0.1, 1000)
    noise = np.repeat([0.2, 0.1, 0.05, 0.02], 250)
    p = y + rng.normal(0, 1, 1000) * noise + np.repeat([0.1, 0, 0, -0.1], 250)
    b = binned_mass_metrics(y, p, bins=4)
    assert b["count"].tolist() == [250, 250, 250, 250]
    np.testing.assert_allclose(b["scatter"], LN10 * np.array([0.2, 0.1, 0.05, 0.02]), rtol=0.15)
    se = LN10 * np.array([0.2, 0.1, 0.05, 0.02]) / np.sqrt(250)  # standard error of each bin's mean
    assert np.all(np.abs(b["bias"] - LN10 * np.array([0.1, 0, 0, -0.1])) < 4 * se)
    assert np.all(b["q16_dex"] < b["median_dex"]) and np.all(b["median_dex"] < b["q84_dex"])
    # bins by redshift with explicit edges; a bin with too few clusters is NaN with its count
    z = np.linspace(0, 1, 1000)
    bz = binned_mass_metrics(y, p, by=z, bins=[0.0, 0.5, 0.9995, 1.0], min_count=5)
    assert bz["count"].sum() == 1000 and bz["count"][2] == 1 and np.isnan(bz["scatter"][2])


@pytest.mark.parametrize(
    "args, match",
    [
        (([1.0, np.nan], [1.0, 1.0]), r"y_true has 1 non-finite.*index 1"),
        (([1.0, 2.0], [1.0]), r"same length.*y_true has 2, y_pred has 1"),
        (([[1.0, 2.0]], [[1.0, 2.0]]), "must be 1-D"),
        (([], []), "empty"),
    ],
)
def test_point_metric_errors(args, match):
    with pytest.raises(ValueError, match=match):
        mass_scatter(*args)


def test_std_errors():
    with pytest.raises(ValueError, match=r"y_std must be positive.*index 1: 0.0"):
        gaussian_nll([1, 2], [1, 2], [0.1, 0.0])
    with pytest.raises(ValueError, match="non-finite"):
        crps_gaussian([1, 2], [1, 2], [0.1, np.inf])
    with pytest.raises(ValueError, match="between 0 and 1"):
        interval_coverage([1], [1], [1], level=1.0)


class _GaussianModel(BayesianRidge):
    """BayesianRidge has predict(X, return_std=True)."""


def test_scorers_follow_sklearn_sign_and_work_in_grid_search(rng):
    X = rng.normal(size=(300, 3))
    y = 14 + X @ [0.3, -0.2, 0.1] + rng.normal(0, 0.1, 300)
    model = _GaussianModel().fit(X, y)
    mean, std = model.predict(X, return_std=True)
    assert get_scorer("neg_mass_scatter")(model, X, y) == pytest.approx(-mass_scatter(y, mean))
    assert get_scorer("neg_gaussian_nll")(model, X, y) == pytest.approx(-gaussian_nll(y, mean, std))
    assert get_scorer("neg_crps")(model, X, y) == pytest.approx(-crps_gaussian(y, mean, std))
    assert get_scorer("neg_coverage_error_68")(model, X, y) == pytest.approx(
        -abs(interval_coverage(y, mean, std, 0.68) - 0.68))
    for name in SCORER_NAMES:
        if name != "neg_binned_z_scatter":
            assert np.isfinite(get_scorer(name)(model, X, y))
    # greater is better: a good model outscores a constant one
    dummy = DummyRegressor().fit(X, y)
    assert get_scorer("neg_mass_scatter")(model, X, y) > get_scorer("neg_mass_scatter")(dummy, X, y)
    # a std scorer on a model without return_std says so; a zero std is refused, not scored
    with pytest.raises(TypeError, match="return_std=True"):
        get_scorer("neg_crps")(LinearRegression().fit(X, y), X, y)
    with pytest.raises(ValueError, match="must be positive"):
        get_scorer("neg_crps")(dummy, X, y)  # DummyRegressor returns std = 0
    with pytest.raises(ValueError, match="unknown scorer"):
        get_scorer("scatter")
    # GridSearchCV ranks by a std-based scorer; cross_validate takes the one-predict report
    gs = GridSearchCV(_GaussianModel(), {"alpha_1": [1e-6, 1e3]}, scoring=get_scorer("neg_gaussian_nll"),
                      cv=KFold(3))
    gs.fit(X, y)
    assert np.all(np.isfinite(gs.cv_results_["mean_test_score"]))
    res = cross_validate(_GaussianModel(), X, y, cv=KFold(3), scoring=make_report_scorer())
    assert res["test_scatter"] == pytest.approx(-res["test_neg_mass_scatter"])
    assert np.all(np.abs(res["test_coverage_68"] - 0.68) < 0.12)
    assert set(res) >= {"test_coverage_95", "test_nll", "test_crps", "test_mean_std", "test_bias"}
    gs2 = GridSearchCV(_GaussianModel(), {"alpha_1": [1e-6, 1e3]}, scoring=make_report_scorer(),
                       refit="neg_crps", cv=KFold(3)).fit(X, y)
    assert gs2.best_index_ == np.argmax(gs2.cv_results_["mean_test_neg_crps"])
    custom = make_mass_scorer(interval_coverage, greater_is_better=True, needs_std=True, level=0.5)
    assert 0.3 < custom(model, X, y) < 0.7


def test_slope_and_transfer_diagnostics(rng):
    from skcluster.metrics import mass_slope, transfer_diagnostics

    t = rng.uniform(13.0, 15.0, 4000)
    z = rng.uniform(0.05, 1.2, t.size)
    unbiased = t + rng.normal(0, 0.1, t.size)
    shrunk = 14.0 + 0.6 * (t - 14.0) + rng.normal(0, 0.1, t.size)
    s = mass_slope(t, unbiased)
    assert abs(s["slope"] - 1) < 3 * s["slope_err"] + 0.01 and s["pivot"] == pytest.approx(t.mean())
    d = transfer_diagnostics(t, shrunk, z)
    assert d["slope"] == pytest.approx(0.6, abs=0.02)
    b = d["mass_bins"]
    ok = b["count"] >= 50
    # shrinkage: low masses biased high, high masses biased low, by 0.4 x the distance from the pivot
    centre = 0.5 * (b["edges"][1:] + b["edges"][:-1])
    assert np.allclose(b["bias_dex"][ok], -0.4 * (centre[ok] - 14.0), atol=0.03)
    assert np.all(np.isnan(b["bias_dex"][~ok]))
    assert d["mass_bins"]["max_abs_bias_dex"] > 0.3
    assert transfer_diagnostics(t, unbiased, z)["z_bins"]["max_abs_bias_dex"] < 0.02
    with pytest.raises(ValueError, match="three clusters"):
        mass_slope([14.0, 14.0, 14.0], [14.0, 14.1, 13.9])
