"""Metrics of mass predictions, and scikit-learn scorers built on them.

Every function takes ``y_true`` and ``y_pred`` in y = log10(M500c / Msun)
(dex) and, for the probabilistic ones, the predicted standard deviation
``y_std`` (dex) of a Gaussian predictive distribution in y.

Conventions (the seed study Krippendorf et al. 2023,
arXiv:2305.00016, and Ho et al. 2023, arXiv:2303.00005):

* scatter is quoted in ln M as a fraction:
  sigma_lnM = ln(10) * std(y_pred - y_true) (0.188 is "18.8%");
* bias likewise: ln(10) * mean(y_pred - y_true), a fractional mass bias;
* the Gaussian negative log-likelihood and the CRPS are in the units of y
  (per dex), averaged over clusters;
* coverage is the fraction of clusters whose true value lies inside the
  central interval mu +- Phi^-1((1 + level) / 2) sigma.

Scorers follow scikit-learn's sign convention, *greater is better*: losses
are negated and their names start with ``neg_`` (like
``neg_mean_squared_error``). Scorers that need the predictive std call
``estimator.predict(X, return_std=True)``, which reaches the last step of a
:class:`~sklearn.pipeline.Pipeline`. Use them by name through
:func:`get_scorer` or pass the objects directly::

    GridSearchCV(pipe, grid, scoring=get_scorer("neg_mass_scatter"))
    cross_validate(pipe, X, y, scoring=make_report_scorer())  # one predict per fold

Clear errors (``ValueError``) name the argument and the first offending
element for NaN or infinite values, mismatched lengths and non-positive
standard deviations.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import ndtr, ndtri

from ._validation import InvalidParameterError

__all__ = [
    "LN10",
    "mass_scatter",
    "mass_bias",
    "mean_predicted_scatter",
    "binned_mass_metrics",
    "mass_slope",
    "transfer_diagnostics",
    "gaussian_nll",
    "crps_gaussian",
    "interval_coverage",
    "calibration_curve",
    "calibration_error",
    "MassScorer",
    "make_mass_scorer",
    "make_report_scorer",
    "mass_report",
    "get_scorer",
    "SCORER_NAMES",
]

#: ln(10): converts a scatter in log10 M (dex) into a fractional scatter in ln M.
LN10 = float(np.log(10.0))

#: Levels of the default calibration curve (nominal central-interval coverage).
DEFAULT_LEVELS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------
def _as_1d(name, a):
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per cluster), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; need at least one cluster")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf); "
            f"first at index {i}: {float(arr[i])!r}"
        )
    return arr


def check_predictions(y_true, y_pred, y_std=None, names=("y_true", "y_pred", "y_std")):
    """Validated float64 1-D copies of the inputs (``y_std`` may be None)."""
    out = [_as_1d(names[0], y_true), _as_1d(names[1], y_pred)]
    if y_std is not None:
        out.append(_as_1d(names[2], y_std))
    lengths = {n: len(a) for n, a in zip(names, out)}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"inputs must have the same length (one per cluster): {detail}")
    if y_std is not None:
        bad = out[2] <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{names[2]} must be positive (a predictive standard deviation in dex); "
                f"{int(bad.sum())} value(s) are <= 0, first at index {i}: {float(out[2][i])!r}"
            )
        return out[0], out[1], out[2]
    return out[0], out[1]


def _check_levels(levels):
    lv = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if lv.ndim != 1 or lv.size == 0 or np.any(~np.isfinite(lv)) or np.any((lv <= 0) | (lv >= 1)):
        raise ValueError(f"coverage levels must lie strictly between 0 and 1, got {levels!r}")
    return lv


# ---------------------------------------------------------------------------
# point metrics
# ---------------------------------------------------------------------------
def mass_scatter(y_true, y_pred, *, ddof=0):
    """Fractional mass scatter sigma_lnM = ln(10) * std(y_pred - y_true).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        log10(M500c / Msun).
    ddof : int, default=0
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    float
        Scatter in ln M (0.188 means 18.8%, the seed study's CNN value).
    """
    t, p = check_predictions(y_true, y_pred)
    if t.size <= ddof:
        raise ValueError(f"need more than ddof={ddof} clusters for a scatter, got {t.size}")
    return float(LN10 * np.std(p - t, ddof=ddof))


def mass_bias(y_true, y_pred):
    """Fractional mass bias ln(10) * mean(y_pred - y_true).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        log10(M500c / Msun).

    Returns
    -------
    float
        Mean offset in ln M (positive: masses overestimated); divide by
        ln(10) for dex.
    """
    t, p = check_predictions(y_true, y_pred)
    return float(LN10 * np.mean(p - t))


def mean_predicted_scatter(y_std):
    """Mean predicted uncertainty as a fraction, ln(10) * mean(y_std).

    Compare with :func:`mass_scatter`: a calibrated model predicts on
    average the scatter it makes (the seed study: 18.8% and 18.8%).

    Parameters
    ----------
    y_std : array-like of shape (n_samples,)
        Predictive standard deviation, dex (positive).
    """
    s = _as_1d("y_std", y_std)
    if np.any(s <= 0):
        i = int(np.flatnonzero(s <= 0)[0])
        raise ValueError(f"y_std must be positive; first value <= 0 at index {i}: {float(s[i])!r}")
    return float(LN10 * np.mean(s))


def _bin_edges(by, bins):
    if isinstance(bins, numbers.Integral):
        if bins < 1:
            raise ValueError(f"bins must be a positive number of bins or an array of edges, got {bins}")
        edges = np.quantile(by, np.linspace(0.0, 1.0, int(bins) + 1))
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(~np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError(f"bin edges must be a finite, strictly increasing 1-D array, got {bins!r}")
    return edges


def binned_mass_metrics(y_true, y_pred, by=None, bins=4, *, min_count=2):
    """Scatter, bias and residual quantiles in bins of mass or of another quantity.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        log10(M500c / Msun).
    by : array-like of shape (n_samples,), default=None
        Quantity to bin in; ``None`` bins in the true mass ``y_true``. Pass
        the redshift for bins of z.
    bins : int or array-like, default=4
        Number of bins with equal numbers of clusters (quantiles of ``by``),
        or the bin edges. Values outside explicit edges are left out; the
        last bin includes its upper edge.
    min_count : int, default=2
        Bins with fewer clusters get NaN statistics (their ``count`` tells
        why); an explicit gap, never a number from one cluster.

    Returns
    -------
    dict of numpy.ndarray
        ``edges`` (n_bins + 1,); ``center``, ``count``, ``scatter`` and
        ``bias`` (fractions in ln M, as :func:`mass_scatter` and
        :func:`mass_bias`), ``median_dex``, ``q16_dex`` and ``q84_dex`` (the
        residual y_pred - y_true, dex), each of shape (n_bins,).
    """
    t, p = check_predictions(y_true, y_pred)
    x = t if by is None else _as_1d("by", by)
    if x.size != t.size:
        raise ValueError(f"by has {x.size} values but y_true has {t.size}")
    edges = _bin_edges(x, bins)
    nb = edges.size - 1
    idx = np.searchsorted(edges, x, side="right") - 1
    idx[x == edges[-1]] = nb - 1
    r = p - t
    out = {k: np.full(nb, np.nan) for k in ("scatter", "bias", "median_dex", "q16_dex", "q84_dex")}
    out["count"] = np.zeros(nb, dtype=np.int64)
    for b in range(nb):
        rb = r[idx == b]
        out["count"][b] = rb.size
        if rb.size >= max(min_count, 1):
            out["scatter"][b] = LN10 * np.std(rb)
            out["bias"][b] = LN10 * np.mean(rb)
            out["median_dex"][b], out["q16_dex"][b], out["q84_dex"][b] = np.quantile(rb, [0.5, 0.16, 0.84])
    out["edges"] = edges
    out["center"] = 0.5 * (edges[1:] + edges[:-1])
    return out


def mass_slope(y_true, y_pred):
    """Slope and intercept of the predicted against the true log mass.

    The least-squares line ``y_pred = intercept + slope * (y_true - pivot)``
    with the pivot at the mean true mass. An estimator that is unbiased at
    fixed true mass has slope one; a posterior mean shrinks toward the
    training population's mass and has a slope below one (regression
    dilution; e.g. Kelly 2007, ApJ 665, 1489, on regressing against a noisy
    quantity).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        log10(M500c / Msun); at least two distinct true values.

    Returns
    -------
    dict
        ``slope``, ``slope_err`` (its standard error from the residuals),
        ``pivot`` (mean true mass, log10 Msun) and ``intercept`` (the
        mean prediction at the pivot, log10 Msun).
    """
    t, p = check_predictions(y_true, y_pred)
    x = t - t.mean()
    sxx = float(np.sum(x * x))
    if t.size < 3 or sxx == 0.0:
        raise ValueError("a slope needs at least three clusters with different true masses")
    slope = float(np.sum(x * (p - p.mean())) / sxx)
    resid = p - p.mean() - slope * x
    err = float(np.sqrt(np.sum(resid**2) / (t.size - 2) / sxx))
    return {"slope": slope, "slope_err": err, "pivot": float(t.mean()), "intercept": float(p.mean())}


def transfer_diagnostics(y_true, y_pred, z=None, *, mass_bins=None, z_bins=None, min_count=50):
    """How a mass estimator relates to the truth: slope, bias per mass and z bin.

    The diagnostics a cluster-cosmology user needs before carrying masses
    to another population (a different mass function or selection): an
    estimator whose bias at fixed true mass is zero in every bin
    transfers; one that shrinks toward its training population does not.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        log10(M500c / Msun).
    z : array-like of shape (n_samples,), default=None
        Redshifts, for the bias per redshift bin.
    mass_bins : array-like, default=None
        Edges in log10 M500c; None: 0.25 dex bins from 13.0 to 15.5.
    z_bins : array-like, default=None
        Edges in z; None: 0, 0.2, 0.4, 0.7, 1.0, 1.5.
    min_count : int, default=50
        Bins with fewer clusters get NaN bias (their count says why).

    Returns
    -------
    dict
        ``slope``, ``slope_err``, ``pivot``, ``intercept`` (:func:`mass_slope`);
        ``bias_dex`` (mean y_pred - y_true, dex) and ``scatter``;
        ``mass_bins`` and, with ``z``, ``z_bins``: dicts with ``edges``,
        ``count`` and ``bias_dex`` (arrays, the bias in dex per bin), and
        ``max_abs_bias_dex``, the largest absolute bias over the bins with at
        least ``min_count`` clusters (NaN when none has).
    """
    t, p = check_predictions(y_true, y_pred)
    out = mass_slope(t, p)
    out["bias_dex"] = float(np.mean(p - t))
    out["scatter"] = mass_scatter(t, p)

    def binned(by, edges):
        m = binned_mass_metrics(t, p, by=by, bins=edges, min_count=min_count)
        bias = m["bias"] / LN10
        ok = m["count"] >= min_count
        return {"edges": m["edges"], "count": m["count"], "bias_dex": bias,
                "max_abs_bias_dex": float(np.max(np.abs(bias[ok]))) if ok.any() else float("nan")}

    out["mass_bins"] = binned(None, np.arange(13.0, 15.51, 0.25) if mass_bins is None else mass_bins)
    if z is not None:
        out["z_bins"] = binned(_as_1d("z", z), [0.0, 0.2, 0.4, 0.7, 1.0, 1.5] if z_bins is None else z_bins)
    return out


# ---------------------------------------------------------------------------
# probabilistic metrics (Gaussian predictive distribution in log10 M)
# ---------------------------------------------------------------------------
def gaussian_nll(y_true, y_mean, y_std):
    """Mean negative log-likelihood of a Gaussian predictive distribution.

    NLL = mean[ 0.5 ln(2 pi sigma^2) + (y - mu)^2 / (2 sigma^2) ], natural
    log, for the density in y = log10 M (so it depends on that choice of
    units; lower is better).

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n_samples,)
        Truth, predicted mean and predicted standard deviation (dex, > 0).
    """
    t, m, s = check_predictions(y_true, y_mean, y_std, names=("y_true", "y_mean", "y_std"))
    return float(np.mean(0.5 * np.log(2.0 * np.pi * s**2) + 0.5 * ((t - m) / s) ** 2))


def crps_gaussian(y_true, y_mean, y_std):
    """Mean continuous ranked probability score of Gaussian predictions (dex).

    Closed form (Gneiting & Raftery 2007, JASA 102, 359, eq. 21):
    CRPS = sigma [ w (2 Phi(w) - 1) + 2 phi(w) - 1/sqrt(pi) ], w = (y - mu)/sigma.
    It reduces to the absolute error as sigma -> 0; lower is better.

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n_samples,)
        Truth, predicted mean and predicted standard deviation (dex, > 0).
    """
    t, m, s = check_predictions(y_true, y_mean, y_std, names=("y_true", "y_mean", "y_std"))
    w = (t - m) / s
    pdf = np.exp(-0.5 * w**2) / np.sqrt(2.0 * np.pi)
    return float(np.mean(s * (w * (2.0 * ndtr(w) - 1.0) + 2.0 * pdf - 1.0 / np.sqrt(np.pi))))


def interval_coverage(y_true, y_mean, y_std, level=0.68):
    """Fraction of clusters inside the central predictive interval.

    The interval at ``level`` is mu +- Phi^-1((1 + level)/2) sigma
    (+-0.994 sigma at 0.68, +-1.96 sigma at 0.95).

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n_samples,)
    level : float or array-like of float, default=0.68
        Nominal coverage(s), each in (0, 1).

    Returns
    -------
    float, or numpy.ndarray of the shape of ``level``
    """
    t, m, s = check_predictions(y_true, y_mean, y_std, names=("y_true", "y_mean", "y_std"))
    lv = _check_levels(level)
    half = ndtri(0.5 * (1.0 + lv))
    w = np.abs(t - m) / s
    cov = np.mean(w[None, :] <= half[:, None], axis=1)
    return float(cov[0]) if np.ndim(level) == 0 else cov


def calibration_curve(y_true, y_mean, y_std, levels=None):
    """Observed against nominal coverage of central intervals.

    A calibrated model lies on the diagonal; below it the predicted
    uncertainties are too small (over-confident).

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n_samples,)
    levels : array-like of float, default=None
        Nominal levels in (0, 1); 0.05, 0.10, ..., 0.95 by default.

    Returns
    -------
    nominal : numpy.ndarray of shape (n_levels,)
    observed : numpy.ndarray of shape (n_levels,)
    """
    nominal = _check_levels(DEFAULT_LEVELS if levels is None else levels)
    return nominal, np.atleast_1d(interval_coverage(y_true, y_mean, y_std, level=nominal))


def calibration_error(y_true, y_mean, y_std, levels=None):
    """Mean absolute difference between observed and nominal coverage.

    The area between the calibration curve and the diagonal, averaged over
    ``levels`` (default 0.05, ..., 0.95); 0 for a perfectly calibrated model.
    """
    nominal, observed = calibration_curve(y_true, y_mean, y_std, levels)
    return float(np.mean(np.abs(observed - nominal)))


# ---------------------------------------------------------------------------
# scorers
# ---------------------------------------------------------------------------
def predict_mean_std(estimator, X, who):
    """``(mean, std)`` of ``estimator.predict(X, return_std=True)`` as float64 1-D arrays.

    ``who`` names the caller in the ``TypeError`` raised for an estimator
    without ``return_std`` or one that does not return a (mean, std) pair.
    """
    try:
        out = estimator.predict(X, return_std=True)
    except InvalidParameterError:
        raise  # a parameter of the wrong type somewhere in the pipeline: its own message says which
    except TypeError as exc:
        raise TypeError(
            f"{who} needs estimator.predict(X, return_std=True), which "
            f"{type(estimator).__name__} does not support ({exc})"
        ) from exc
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            f"{who}: {type(estimator).__name__}.predict(X, return_std=True) "
            f"must return (mean, std), got {type(out).__name__}"
        )
    return (np.asarray(out[0], dtype=np.float64).reshape(-1),
            np.asarray(out[1], dtype=np.float64).reshape(-1))


def _predict(estimator, X, needs_std, who):
    if not needs_std:
        return np.asarray(estimator.predict(X)), None
    return predict_mean_std(estimator, X, f"scorer {who!r}")


def _coverage_error(y_true, y_mean, y_std, level):
    return abs(interval_coverage(y_true, y_mean, y_std, level=level) - level)


def _mean_binned_scatter(y_true, y_pred, by=None, bins=4):
    sc = binned_mass_metrics(y_true, y_pred, by=by, bins=bins)["scatter"]
    if np.all(np.isnan(sc)):
        raise ValueError("no mass bin had enough clusters for a scatter")
    return float(np.nanmean(sc))


class MassScorer:
    """A scorer ``scorer(estimator, X, y)`` for mass predictions.

    Calls ``estimator.predict(X)`` (or ``predict(X, return_std=True)`` when
    the metric needs the predictive std), applies ``metric`` and returns
    ``sign * metric``, so that greater is better. Usable wherever
    scikit-learn takes a callable scorer (``GridSearchCV(scoring=...)``,
    ``cross_validate``). Build them with :func:`make_mass_scorer` or
    :func:`get_scorer`.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred, **kwargs)`` or, with ``needs_std``,
        ``metric(y_true, y_mean, y_std, **kwargs)``.
    sign : {1, -1}
        -1 for losses (the result is negated).
    needs_std : bool
        Whether the metric needs the predictive std.
    name : str
        Shown in the repr and in error messages.
    needs_z : bool, default=False
        Pass the redshift column ``X["z"]`` as ``by=`` to the metric (X must
        be a :class:`~skcluster.ClusterSample` or a mapping with ``z``).
    **kwargs
        Passed on to ``metric``.
    """

    def __init__(self, metric, sign, needs_std, name, needs_z=False, **kwargs):
        self.metric = metric
        self.sign = sign
        self.needs_std = needs_std
        self.name = name
        self.needs_z = needs_z
        self.kwargs = kwargs

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"scorer {self.name!r} does not support sample_weight")
        mean, std = _predict(estimator, X, self.needs_std, self.name)
        kwargs = dict(self.kwargs)
        if self.needs_z:
            if not hasattr(X, "keys") or "z" not in X:
                raise KeyError(
                    f"scorer {self.name!r} bins in redshift and needs X to be a "
                    "ClusterSample with a 'z' column"
                )
            kwargs["by"] = np.asarray(X["z"])
        args = (y, mean, std) if self.needs_std else (y, mean)
        return self.sign * float(self.metric(*args, **kwargs))

    def __repr__(self):
        return f"MassScorer({self.name})"


def make_mass_scorer(metric, *, greater_is_better=False, needs_std=False, name=None, **kwargs):
    """Build a :class:`MassScorer` from a metric function.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred, **kwargs)``, or ``metric(y_true, y_mean,
        y_std, **kwargs)`` when ``needs_std``.
    greater_is_better : bool, default=False
        False for losses, which are negated.
    needs_std : bool, default=False
        Call ``predict(X, return_std=True)``.
    name : str, default=None
        Defaults to ``neg_<metric name>`` or ``<metric name>``.
    **kwargs
        Fixed keyword arguments of ``metric``.
    """
    name = name or ("" if greater_is_better else "neg_") + getattr(metric, "__name__", "metric")
    return MassScorer(metric, 1 if greater_is_better else -1, needs_std, name, **kwargs)


def _abs_bias(y_true, y_pred):
    return abs(mass_bias(y_true, y_pred))


_SCORERS = {
    "neg_mass_scatter": lambda: MassScorer(mass_scatter, -1, False, "neg_mass_scatter"),
    "neg_abs_mass_bias": lambda: MassScorer(_abs_bias, -1, False, "neg_abs_mass_bias"),
    "neg_binned_mass_scatter": lambda: MassScorer(
        _mean_binned_scatter, -1, False, "neg_binned_mass_scatter"),
    "neg_binned_z_scatter": lambda: MassScorer(
        _mean_binned_scatter, -1, False, "neg_binned_z_scatter", needs_z=True),
    "neg_gaussian_nll": lambda: MassScorer(gaussian_nll, -1, True, "neg_gaussian_nll"),
    "neg_crps": lambda: MassScorer(crps_gaussian, -1, True, "neg_crps"),
    "neg_coverage_error_68": lambda: MassScorer(
        _coverage_error, -1, True, "neg_coverage_error_68", level=0.68),
    "neg_coverage_error_95": lambda: MassScorer(
        _coverage_error, -1, True, "neg_coverage_error_95", level=0.95),
    "neg_calibration_error": lambda: MassScorer(calibration_error, -1, True, "neg_calibration_error"),
}

#: Names accepted by :func:`get_scorer` (all greater-is-better).
SCORER_NAMES = tuple(_SCORERS)


def get_scorer(name):
    """A scorer by name (see :data:`SCORER_NAMES`).

    ``neg_mass_scatter`` and ``neg_abs_mass_bias`` use ``predict(X)``;
    ``neg_binned_mass_scatter`` / ``neg_binned_z_scatter`` are the mean
    scatter over 4 equal-count bins of true mass / redshift (the latter
    needs a ClusterSample with ``z``); ``neg_gaussian_nll``, ``neg_crps``,
    ``neg_coverage_error_68``/``_95`` (abs(coverage - level)) and
    ``neg_calibration_error`` call ``predict(X, return_std=True)``.
    """
    try:
        return _SCORERS[name]()
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; choose one of {list(SCORER_NAMES)}") from None


def mass_report(y_true, y_mean, y_std, levels=(0.68, 0.95), n_bins=4):
    """Every summary number of a probabilistic mass prediction, as a dict.

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n,)
        True and predicted log10 M, predicted std (dex).
    levels : tuple of float, default=(0.68, 0.95)
        Coverage levels, reported as ``coverage_<percent>``.
    n_bins : int, default=4
        Equal-count bins of true mass for ``binned_mass_scatter``.

    Returns
    -------
    dict
        ``scatter``, ``bias``, ``mean_std`` (fractions in ln M), ``nll``,
        ``crps`` (per dex), ``calibration_error``, ``binned_mass_scatter`` and
        ``coverage_<percent>``; plain floats.
    """
    levels = tuple(float(lv) for lv in _check_levels(levels))
    t, m, s = check_predictions(y_true, y_mean, y_std, names=("y", "predicted mean", "predicted std"))
    out = {
        "scatter": mass_scatter(t, m),
        "bias": mass_bias(t, m),
        "nll": gaussian_nll(t, m, s),
        "crps": crps_gaussian(t, m, s),
        "calibration_error": calibration_error(t, m, s),
        "mean_std": mean_predicted_scatter(s),
        "binned_mass_scatter": _mean_binned_scatter(t, m, bins=n_bins),
    }
    cov = np.atleast_1d(interval_coverage(t, m, s, level=np.asarray(levels)))
    for lv, c in zip(levels, cov):
        out[f"coverage_{round(100 * lv):d}"] = float(c)
    return {k: float(v) for k, v in out.items()}


class _ReportScorer:
    """Callable returning a dict of every metric from a single prediction."""

    def __init__(self, levels, n_bins):
        self.levels = tuple(float(lv) for lv in _check_levels(levels))
        self.n_bins = n_bins

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("the report scorer does not support sample_weight")
        mean, std = _predict(estimator, X, True, "report")
        rep = mass_report(y, mean, std, levels=self.levels, n_bins=self.n_bins)
        out = {
            "neg_mass_scatter": -rep["scatter"],
            "neg_abs_mass_bias": -abs(rep["bias"]),
            "neg_gaussian_nll": -rep["nll"],
            "neg_crps": -rep["crps"],
            "neg_calibration_error": -rep["calibration_error"],
        }
        for lv in self.levels:
            tag = f"{round(100 * lv):d}"
            out[f"neg_coverage_error_{tag}"] = -abs(rep[f"coverage_{tag}"] - lv)
        out.update(rep)
        return out

    def __repr__(self):
        return f"make_report_scorer(levels={self.levels}, n_bins={self.n_bins})"


def make_report_scorer(levels=(0.68, 0.95), n_bins=4):
    """A multi-metric scorer: one ``predict(X, return_std=True)``, every number.

    Pass it as ``scoring=`` to ``cross_validate`` or ``GridSearchCV`` (with
    ``refit="neg_mass_scatter"`` or another ``neg_`` key). Keys starting
    with ``neg_`` are greater-is-better scores; the others are the plain
    values for reporting (``scatter``, ``bias``, ``mean_std`` as fractions
    in ln M; ``nll``, ``crps`` per dex; ``coverage_68``, ...; and
    ``binned_mass_scatter``, the mean scatter over ``n_bins`` equal-count
    bins of true mass): do not rank models by those.

    Parameters
    ----------
    levels : tuple of float, default=(0.68, 0.95)
        Coverage levels reported as ``coverage_<percent>`` and
        ``neg_coverage_error_<percent>``.
    n_bins : int, default=4
    """
    return _ReportScorer(levels, n_bins)
