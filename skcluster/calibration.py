"""Recalibrating predicted uncertainties on held-out data.

A deep ensemble's standard deviation is only as honest as the data it was
trained on: it is often too small on held-out clusters (over-confident),
and more so when the test sky differs from the training mock. The cure
used for regression networks (Kuleshov et al. 2018, arXiv:1807.00263;
Levi et al. 2022, Sensors 22, 5540, "std scaling") is to fit, on a
calibration set the model has not seen, one factor s that multiplies every
predicted std:

* ``method="nll"``: s maximises the Gaussian likelihood of the
  calibration residuals, s^2 = mean(((y - mu) / sigma)^2) (closed form);
* ``method="coverage"``: s makes the central ``level`` interval
  mu +- Phi^-1((1 + level) / 2) s sigma cover exactly ``level`` of the
  calibration clusters (the ``level`` quantile of abs(y - mu) / sigma over the
  Gaussian quantile).

:class:`RecalibratedRegressor` wraps any regressor with
``predict(X, return_std=True)`` (a :class:`~skcluster.ensemble.DeepEnsembleRegressor`,
a whole fitted pipeline, a scaling relation) and is itself one, so it goes
into a :class:`~sklearn.pipeline.Pipeline` as its last step.
:meth:`RecalibratedRegressor.predict_interval` gives split-conformal
intervals with the std-normalised score abs(y - mu) / sigma (Lei et al. 2018,
JASA 113, 1094; the ``std_normalized`` score of MAPIE), whose coverage on
exchangeable data is at least the nominal level. It is a finite-sample
quantile of the same calibration scores, computed here in a few lines;
MAPIE is not a dependency.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.validation import check_is_fitted

from ._validation import check_fraction
from .metrics import predict_mean_std

__all__ = ["MassCalibratedRegressor", "RecalibratedRegressor", "conformal_quantile", "fit_std_scale"]

_METHODS = ("nll", "coverage")

#: Fewest calibration clusters :class:`MassCalibratedRegressor` fits its response on
#: (six coefficients, with room for their noise).
MIN_CALIBRATION_CLUSTERS = 12

#: How ``skcluster train`` calibrates a model trained on the built-in mock at fixed true mass, and
#: ``benchmarks/population_shift.py``'s hinged rows: a fresh mock of the training population pooled with one whose
#: lowest mass is raised to ``MOCK_CALIBRATION_HIGH_MASS_MIN`` (log10 M500c/Msun; the training population has few
#: clusters above it, and the response at fixed true mass and redshift does not depend on the mass function), and
#: a response that may bend above ``MOCK_CALIBRATION_HINGE`` with a change of slope linear in log(1 + z)
#: (``MassCalibratedRegressor(hinge=MOCK_CALIBRATION_HINGE, bend_degree=1)``). The hinge is where the residuals of
#: a straight response rose on massive clusters in that benchmark; the bend is the one that kept every
#: 50-cluster mass bin within 0.05 dex there on the mocks whose physics is the training population's (another
#: mass function, selection or redshift range; three seeds, the third run as a check after it was chosen).
MOCK_CALIBRATION_HIGH_MASS_MIN = 14.3
MOCK_CALIBRATION_HINGE = 14.4
MOCK_CALIBRATION_RESPONSE = {"hinge": MOCK_CALIBRATION_HINGE, "bend_degree": 1}

#: The same for a model of every depth (``skcluster train --survey erosita``, ``benchmarks/depth_transfer.py``):
#: the response also depends on the exposure (``exposure_terms``). On the depth benchmark (1200 test clusters at
#: each of four depths) the exposure terms keep the mean bias per depth and the mass bins at eRASS1 and eFEDS depth
#: where one response leaves them off (the numbers: the depth page of the benchmark docs,
#: ``docs/_includes/benchmark_depth.md``).
MOCK_CALIBRATION_RESPONSE_DEPTHS = dict(MOCK_CALIBRATION_RESPONSE, exposure_terms=True)

#: With a hinge, each slope of :class:`MassCalibratedRegressor` (below and
#: above the hinge) is fitted over the redshifts of its own side's
#: calibration clusters and held beyond them: between this quantile and one
#: minus it of that side's redshifts (a flux limit leaves few clusters below
#: the hinge at high z, where a polynomial slope would otherwise be an
#: extrapolation).
SIDE_QUANTILE = 0.02


def _checked(y_true, y_mean, y_std):
    from .metrics import check_predictions

    return check_predictions(y_true, y_mean, y_std, names=("y_true", "y_mean", "y_std"))


def fit_std_scale(y_true, y_mean, y_std, method="nll", level=0.68):
    """The factor s that recalibrates predicted standard deviations sigma -> s sigma.

    Parameters
    ----------
    y_true, y_mean, y_std : array-like of shape (n_samples,)
        Truth, predicted mean and predicted std (> 0) on a calibration set
        the model was not trained on (log10 M500c, dex).
    method : {"nll", "coverage"}, default="nll"
        "nll": maximum Gaussian likelihood, s = sqrt(mean(z^2)) with
        z = (y - mu) / sigma. "coverage": s = quantile(abs(z), level) /
        Phi^-1((1 + level) / 2), so that the central ``level`` interval
        covers ``level`` of the calibration set.
    level : float, default=0.68
        Used by "coverage".

    Returns
    -------
    float
        s > 0 (s > 1: the model was over-confident).
    """
    t, m, s = _checked(y_true, y_mean, y_std)
    z = (t - m) / s
    if method == "nll":
        scale = float(np.sqrt(np.mean(z**2)))
    elif method == "coverage":
        lv = check_fraction(level, "level")
        scale = float(np.quantile(np.abs(z), lv) / ndtri(0.5 * (1.0 + lv)))
    else:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not scale > 0:
        raise ValueError(
            f"the fitted std scale is {scale!r}: the calibration residuals are all zero; "
            "a calibration set needs clusters the model has not memorised"
        )
    return scale


def conformal_quantile(scores, level):
    """Split-conformal quantile of calibration scores for coverage >= ``level``.

    The ceil((n + 1) level)-th smallest of the n scores (Lei et al. 2018);
    +inf when n is too small for that level (ceil((n + 1) level) > n).

    Parameters
    ----------
    scores : array-like of shape (n,)
    level : float or array-like of float in (0, 1)

    Returns
    -------
    float or numpy.ndarray
    """
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    n = s.size
    lv = np.atleast_1d(np.asarray(level, dtype=np.float64))
    if np.any(~np.isfinite(lv)) or np.any((lv <= 0) | (lv >= 1)):
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    k = np.ceil((n + 1) * lv).astype(np.int64)
    out = np.where(k <= n, s[np.clip(k - 1, 0, max(n - 1, 0))] if n else np.inf, np.inf)
    return float(out[0]) if np.ndim(level) == 0 else out


def _fit_or_take(meta, X, y, fit_params):
    """(model, X_cal, y_cal): a frozen model and all rows, or a clone fitted on a split of the rows.

    ``meta`` carries ``estimator``, ``calibration_fraction`` and ``random_state``.
    """
    try:
        from sklearn.frozen import FrozenEstimator  # scikit-learn >= 1.6
    except ImportError:  # pragma: no cover - older scikit-learn: nothing can be frozen
        FrozenEstimator = ()

    where = type(meta).__name__
    frac = check_fraction(meta.calibration_fraction, "calibration_fraction", where)  # checked, used or not
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = int(X.shape[0]) if hasattr(X, "shape") else len(X)
    if n != y.shape[0]:
        raise ValueError(f"X has {n} rows but y has {y.shape[0]} values")
    if isinstance(meta.estimator, FrozenEstimator):
        return meta.estimator, X, y
    n_cal = int(math.ceil(frac * n))
    if n_cal < 2 or n - n_cal < 2:
        raise ValueError(
            f"cannot split {n} rows into a training and a calibration set of at least 2 rows "
            f"each with calibration_fraction={frac}"
        )
    perm = check_random_state(meta.random_state).permutation(n)
    cal_idx, train_idx = np.sort(perm[:n_cal]), np.sort(perm[n_cal:])
    est = clone(meta.estimator).fit(_safe_indexing(X, train_idx), y[train_idx], **fit_params)
    return est, _safe_indexing(X, cal_idx), y[cal_idx]


class RecalibratedRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """A regressor whose predicted std is rescaled by a factor fitted on held-out data.

    Parameters
    ----------
    estimator : estimator object
        A regressor with ``predict(X, return_std=True)``. To recalibrate an
        already fitted model, wrap it in :class:`sklearn.frozen.FrozenEstimator`
        (scikit-learn >= 1.6):
        ``fit(X, y)`` then uses all of ``X`` as the calibration set and
        leaves the model untouched. Otherwise ``fit`` clones the estimator,
        trains it on ``1 - calibration_fraction`` of the rows and calibrates
        on the rest.
    method : {"nll", "coverage"}, default="nll"
        How the scale is fitted (:func:`fit_std_scale`).
    level : float, default=0.68
        Coverage level matched by ``method="coverage"``.
    calibration_fraction : float, default=0.2
        Share of the rows held out for calibration when the estimator is
        not frozen.
    random_state : int, RandomState instance or None, default=None
        Shuffles the rows before the split (drawn once in ``fit``).

    Attributes
    ----------
    estimator_ : estimator
        The fitted model (the frozen one, or the clone trained in ``fit``).
    scale_ : float
        Factor applied to the predicted std.
    calibration_scores_ : numpy.ndarray of shape (n_calibration,)
        Sorted abs(y - mu) / sigma of the calibration set, before scaling (the
        conformal scores).
    n_calibration_ : int
    coverage_before_, coverage_after_ : dict
        Observed coverage of the 68% and 95% central intervals on the
        calibration set with the original and the rescaled std.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import BayesianRidge
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skcluster.calibration import RecalibratedRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2)); y = X @ [1.0, -1.0] + rng.normal(0, 0.5, 400)
    >>> model = BayesianRidge().fit(X[:200], y[:200])
    >>> cal = RecalibratedRegressor(FrozenEstimator(model)).fit(X[200:], y[200:])
    >>> mean, std = cal.predict(X[:3], return_std=True)
    >>> lo, hi = cal.predict_interval(X[:3], level=0.9)
    """

    def __init__(self, estimator, *, method="nll", level=0.68, calibration_fraction=0.2,
                 random_state=None):
        self.estimator = estimator
        self.method = method
        self.level = level
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            from sklearn.utils import get_tags

            inner = get_tags(self.estimator)
            tags.input_tags = inner.input_tags
        except Exception:  # pragma: no cover - an estimator without tags
            pass
        return tags

    def _predict_inner(self, est, X):
        return predict_mean_std(est, X, "RecalibratedRegressor")

    def fit(self, X, y, **fit_params):
        """Fit (or take) the model and the std scale.

        Parameters
        ----------
        X : array-like or ClusterSample
        y : array-like of shape (n_samples,)
        **fit_params : dict
            Passed to the model's ``fit`` (not used for a frozen model).

        Returns
        -------
        self : RecalibratedRegressor
        """
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        check_fraction(self.level, "level", "RecalibratedRegressor")
        est, X_cal, y_cal = _fit_or_take(self, X, y, fit_params)
        mean, std = self._predict_inner(est, X_cal)
        self.scale_ = fit_std_scale(y_cal, mean, std, method=self.method, level=self.level)
        z = np.abs(y_cal - mean) / std
        self.calibration_scores_ = np.sort(z)
        self.n_calibration_ = int(z.size)
        half = ndtri(0.5 * (1.0 + np.array([0.68, 0.95])))
        self.coverage_before_ = {"0.68": float(np.mean(z <= half[0])), "0.95": float(np.mean(z <= half[1]))}
        self.coverage_after_ = {"0.68": float(np.mean(z <= half[0] * self.scale_)),
                                "0.95": float(np.mean(z <= half[1] * self.scale_))}
        self.estimator_ = est
        return self

    def predict(self, X, return_std=False):
        """Predicted mean (unchanged) and the rescaled standard deviation.

        Parameters
        ----------
        X : array-like or ClusterSample
        return_std : bool, default=False

        Returns
        -------
        mean : numpy.ndarray of shape (n_samples,)
        std : numpy.ndarray of shape (n_samples,)
            ``scale_`` times the model's std; only with ``return_std=True``.
        """
        check_is_fitted(self, "scale_")
        mean, std = self._predict_inner(self.estimator_, X)
        if return_std:
            return mean, std * self.scale_
        return mean

    def predict_interval(self, X, level=0.68, *, conformal=True):
        """Central prediction interval(s).

        Parameters
        ----------
        X : array-like or ClusterSample
        level : float or sequence of float, default=0.68
        conformal : bool, default=True
            True: split-conformal mu +- q sigma with q the conformal quantile
            of the calibration scores (coverage >= level on exchangeable
            data; infinite when the calibration set is too small for the
            level). False: the Gaussian interval of the rescaled std,
            mu +- Phi^-1((1 + level) / 2) ``scale_`` sigma.

        Returns
        -------
        lower, upper : numpy.ndarray of shape (n_samples,) or (n_samples, n_levels)
        """
        check_is_fitted(self, "scale_")
        lv = np.atleast_1d(np.asarray(level, dtype=np.float64))
        for v in lv:
            check_fraction(float(v), "level")
        mean, std = self._predict_inner(self.estimator_, X)
        if conformal:
            q = np.atleast_1d(conformal_quantile(self.calibration_scores_, lv))
        else:
            q = ndtri(0.5 * (1.0 + lv)) * self.scale_
        half = std[:, None] * q[None, :]
        lower, upper = mean[:, None] - half, mean[:, None] + half
        if np.ndim(level) == 0:
            return lower[:, 0], upper[:, 0]
        return lower, upper


class MassCalibratedRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """Masses unbiased at fixed true mass: the model's mean response, inverted.

    A regressor trained with a Gaussian likelihood returns a posterior mean:
    at fixed true mass its prediction leans toward the training population
    (slope below one against the truth, more so where the data are noisy,
    e.g. at high z). What does not depend on the population is the model's
    *response* at fixed true mass and redshift, ``g(m, z) = E[prediction |
    m, z]``: it involves only the physics (the likelihood of the data) and
    the selection. Fitted on a calibration set the model has not seen, with

        g(m, z) = a(u) + b(u) (m - m_0),   a, b quadratic in u = log(1 + z),

    (least squares of the predictions on the true masses), the calibrated
    mass is ``m_0 + (prediction - a(u)) / b(u)``: unbiased at fixed true
    mass wherever the linear response holds, whatever the population's
    mass function (the classical calibration estimator, e.g. Osborne 1991,
    Int. Stat. Rev. 59, 309; in cluster cosmology, the regression of the
    observable on mass, not of mass on the observable: Mantz 2019, MNRAS
    485, 4863). Its standard deviation is the model's divided by ``b(u)``
    (its absolute value, should a ``min_slope`` <= 0 let a falling response
    through) and then rescaled so the calibration residuals have a unit normalised
    variance (:func:`fit_std_scale`, ``method="nll"``).

    The price is a larger scatter than the posterior mean's (the
    estimator no longer borrows strength from the population); what it
    buys is masses whose relation to the truth transfers to populations
    with another mass function or redshift distribution.

    Parameters
    ----------
    estimator : estimator object
        A regressor with ``predict(X, return_std=True)`` reading a
        :class:`~skcluster.ClusterSample` with a ``z`` column (a fitted
        pipeline wrapped in :class:`sklearn.frozen.FrozenEstimator`: then
        ``fit`` uses all its rows for calibration; otherwise a clone is
        trained on ``1 - calibration_fraction`` of them).
    calibration_fraction : float, default=0.3
    random_state : int, RandomState instance or None, default=None
    min_slope : float, default=0.2
        The smallest response slope ``b(u)`` accepted over the calibration
        redshifts; below it the model barely responds to mass and the
        inversion would amplify its noise without bound (``fit`` raises).
    hinge : float, sequence of float or None, default=None
        A log10 M500c/Msun above which the response may bend: ``g`` gains
        ``c (m - hinge)_+`` (one coefficient, the same at every redshift),
        so the slope is ``b(u)`` below the hinge and ``b(u) + c`` above it,
        and the inversion is piecewise linear (continuous, monotone when
        both slopes exceed ``min_slope``). Each slope is used, and checked,
        only over the redshifts of its own side's calibration clusters
        (``SIDE_QUANTILE`` to 1 - ``SIDE_QUANTILE`` of them) and held at
        its value at the nearer end beyond: at high z a flux limit leaves
        few clusters below the hinge, and there the fitted polynomial would
        be an extrapolation. A network's response steepens
        where the training population thins out at high mass; a straight
        line fitted to a calibration set dominated by the bulk then
        over-corrects the most massive clusters. ``c`` is set by the
        calibration clusters above the hinge: calibrate on a set with
        enough of them (at least ``MIN_CALIBRATION_CLUSTERS``; ``fit``
        raises otherwise), e.g. a mock whose lowest mass is raised
        (``SurveyParameters(log10_m500_min=...)``) pooled with one of the
        training population. Pooling is allowed because the response at
        fixed true mass and redshift does not depend on the mass function.
        A sequence of masses gives a response that may bend at each (its
        own change of slope per hinge; the inversion is piecewise linear
        over the segments between them), e.g. also where a flux limit
        flattens the response of the faintest, lowest-mass clusters.
    bend_degree : int, default=0
        With a ``hinge``: the change of slope is a polynomial of this
        degree in ``u`` (0: one constant ``c``; 1: ``c + c' u``; at most 2).
        Where a flux-limited selection keeps only the brightest clusters
        below the hinge (at high z), their response flattens while the
        massive clusters' does not, so the bend grows with redshift.
    exposure_terms : bool, default=False
        Let the response depend on the depth too: ``a`` and ``b`` gain a
        term linear in ``w = log10(exposure / s)`` (centred on the
        calibration clusters' mean, clipped to their range), read from the
        ``exposure`` column. A model trained on a mix of depths shrinks
        toward its training population more where the photons are few, so
        one response fitted on every depth leaves shallow clusters biased
        one way and deep ones the other; calibrate on clusters spanning the
        depths it will see.

    Attributes
    ----------
    estimator_ : estimator
    coef_ : ndarray of shape (6 + n_hinges * (1 + bend_degree) (+ 2 with exposure_terms),)
        ``a(u) = c0 + c1 u + c2 u^2``, ``b(u) = c3 + c4 u + c5 u^2``; with a
        ``hinge``, the change of slope above it is ``c6 + c7 u + ...`` (then
        the next hinge's, in ascending order); with ``exposure_terms``, the
        last two are the terms of ``a`` and ``b`` in ``w``.
    exposure_range_ : (float, float) or None
        log10 exposure (s) of the calibration clusters, minus ``exposure_pivot_``
        (with ``exposure_terms``).
    exposure_pivot_ : float or None
        Their mean log10 exposure (s).
    pivot_ : float
        ``m_0``, the mean calibration mass.
    scale_ : float
        Factor applied to the std after the division by ``b(u)``.
    redshift_range_ : (float, float)
        Calibration redshifts (outside them ``a`` and ``b`` are held at
        their values at the nearer end).
    slope_redshift_ranges_ : tuple of (float, float)
        The redshifts over which the slope below the (first) hinge and the
        slope above each hinge are used (``redshift_range_`` alone without
        a hinge).
    n_calibration_ : int
    mass_prior_ : str
        ``"fixed-mass"``: what the masses carry (no population prior), as
        :func:`skcluster.predict_catalog` writes it (``MASSPRIOR``).
    """

    def __init__(self, estimator, *, calibration_fraction=0.3, random_state=None, min_slope=0.2, hinge=None,
                 bend_degree=0, exposure_terms=False):
        self.estimator = estimator
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state
        self.min_slope = min_slope
        self.hinge = hinge
        self.bend_degree = bend_degree
        self.exposure_terms = exposure_terms

    def _depth(self, w):
        """(term of a, term of b) at centred log10 exposures ``w`` (zeros without exposure terms)."""
        if not getattr(self, "exposure_terms", False):
            return 0.0, 0.0
        w = np.clip(w, *self.exposure_range_)
        return self.coef_[-2] * w, self.coef_[-1] * w

    def _sample_w(self, X, where):
        """Centred log10 exposure of the rows of the sample ``X`` (None without exposure terms)."""
        if not getattr(self, "exposure_terms", False):
            return None
        X.require("exposure", step=where)
        return self._w(X["exposure"], where)

    def _w(self, exposure, where):
        """Centred log10 of ``exposure`` (s), which must be > 0."""
        e = np.asarray(exposure, dtype=np.float64)
        if not np.all(np.isfinite(e) & (e > 0)):
            bad = np.flatnonzero(~(np.isfinite(e) & (e > 0)))[:5].tolist()
            raise ValueError(f"{where}: exposure_terms needs exposures > 0 s; rows {bad} have none")
        pivot = getattr(self, "exposure_pivot_", None)
        return np.log10(e) - (0.0 if pivot is None else pivot)

    def _response(self, u, w=None):
        """a(u, w), b(u, w) with u and w clipped to the calibration ranges."""
        u = np.clip(u, *np.log1p(self.redshift_range_))
        c = self.coef_
        da, db = self._depth(w) if w is not None else (0.0, 0.0)
        return c[0] + c[1] * u + c[2] * u**2 + da, c[3] + c[4] * u + c[5] * u**2 + db

    def _knots(self):
        """The hinge masses, ascending (empty without a hinge)."""
        return () if self.hinge is None else tuple(sorted(float(k) for k in np.atleast_1d(self.hinge)))

    def _slopes(self, u, w=None):
        """The response's slope on each mass segment (below the first hinge, above each) at u = log(1 + z).

        Each is held beyond the redshifts of its segment's calibration
        clusters (``slope_redshift_ranges_``).
        """
        from numpy.polynomial import polynomial

        n = len(self._knots())
        # files written before the per-segment ranges existed used the whole calibration range for all
        ranges = getattr(self, "slope_redshift_ranges_", (self.redshift_range_,) * (n + 1))
        bends = self.coef_[6:6 + n * (int(self.bend_degree) + 1)].reshape(n, int(self.bend_degree) + 1)
        db = self._depth(w)[1] if w is not None else 0.0
        # segment j's slope: b(u, w) plus the changes of slope at the j hinges below it
        return [polynomial.polyval(v, self.coef_[3:6]) + db + sum(polynomial.polyval(v, c) for c in bends[:j])
                for j, v in enumerate(np.clip(u, *np.log1p(r)) for r in ranges)]

    def fit(self, X, y, **fit_params):
        """Fit (or take) the model, then its response at fixed true mass on the calibration rows."""
        from .priors import sample_redshift

        where = type(self).__name__
        est, X_cal, y_cal = _fit_or_take(self, X, y, fit_params)
        X_cal, z = sample_redshift(X_cal, where)
        if y_cal.size < MIN_CALIBRATION_CLUSTERS:
            raise ValueError(f"{where}: need at least {MIN_CALIBRATION_CLUSTERS} calibration clusters, "
                             f"got {y_cal.size}")
        if self.bend_degree not in (0, 1, 2):
            raise ValueError(f"{where}: bend_degree must be 0, 1 or 2, got {self.bend_degree!r}")
        if self.bend_degree and self.hinge is None:
            raise ValueError(f"{where}: bend_degree={self.bend_degree} shapes the bend above a hinge; give a hinge")
        knots = self._knots()
        if not all(np.isfinite(knots)):
            raise ValueError(f"{where}: hinge must be finite log10 M500c/Msun, got {self.hinge!r}")
        for knot in knots:
            n_above = int(np.sum(y_cal > knot))
            if n_above < MIN_CALIBRATION_CLUSTERS:
                raise ValueError(
                    f"{where}: hinge={knot} has {n_above} calibration clusters above it (need at least "
                    f"{MIN_CALIBRATION_CLUSTERS}); calibrate on more massive clusters or lower the hinge")
        self.exposure_pivot_ = self.exposure_range_ = None
        w = self._sample_w(X_cal, where)
        if w is not None:
            self.exposure_pivot_ = float(np.mean(w))
            w = w - self.exposure_pivot_
            self.exposure_range_ = (float(w.min()), float(w.max()))
        mean, std = predict_mean_std(est, X_cal, where)
        u = np.log1p(z)
        self.pivot_ = float(np.mean(y_cal))
        d = y_cal - self.pivot_
        columns = [np.ones_like(u), u, u**2, d, d * u, d * u**2]
        for knot in knots:
            columns += [np.maximum(y_cal - knot, 0.0) * u**k for k in range(int(self.bend_degree) + 1)]
        if w is not None:
            columns += [w, d * w]
        self.coef_, *_ = np.linalg.lstsq(np.column_stack(columns), mean, rcond=None)
        self.redshift_range_ = (float(z.min()), float(z.max()))
        # with hinges, each segment's slope is used over the redshifts of its own calibration clusters
        segment = np.searchsorted(np.asarray(knots), y_cal, side="left")  # 0: below the first hinge
        self.slope_redshift_ranges_ = tuple(
            tuple(float(q) for q in np.quantile(z[segment == k], [SIDE_QUANTILE, 1.0 - SIDE_QUANTILE]))
            if knots and np.any(segment == k) else self.redshift_range_ for k in range(len(knots) + 1))
        for k in range(len(knots) + 1):
            part = f" above the hinge at {knots[k - 1]:g}" if k else ""
            grid = np.linspace(*np.log1p(self.slope_redshift_ranges_[k]), 64)
            # linear in w: its extremes are at the ends of the calibration exposures
            for w_end in (self.exposure_range_ if w is not None else (None,)):
                slope = self._slopes(grid, None if w_end is None else np.full_like(grid, w_end))[k]
                if slope.min() < self.min_slope:
                    depth = "" if w_end is None else \
                        f" and exposure {10 ** (w_end + self.exposure_pivot_):.0f} s"
                    raise ValueError(
                        f"{where}: the model's response to the true mass{part} falls to {slope.min():.3f} dex "
                        f"per dex at z = {np.expm1(grid[np.argmin(slope)]):.2f}{depth} (min_slope="
                        f"{self.min_slope}); it barely reads the mass there, and inverting it would multiply "
                        "its noise")
        self.estimator_ = est
        self.scale_ = 1.0
        m_cal, s_cal = self._calibrate(mean, std, z, w)
        self.scale_ = fit_std_scale(y_cal, m_cal, s_cal, method="nll")
        self.n_calibration_ = int(y_cal.size)
        self.mass_prior_ = "fixed-mass"
        return self

    def _calibrate(self, mean, std, z, w=None):
        u = np.log1p(z)
        a, b = self._response(u, w)
        if self.hinge is None:
            return self.pivot_ + (mean - a) / b, self.scale_ * std / np.abs(b)
        # piecewise-linear inversion: the responses at the hinges split the predictions into segments
        knots = self._knots()
        slopes = self._slopes(u, w)
        at_knot = [a + b * (knots[0] - self.pivot_)]
        for j in range(1, len(knots)):
            at_knot.append(at_knot[-1] + slopes[j] * (knots[j] - knots[j - 1]))
        segment = np.sum([mean > r for r in at_knot], axis=0)  # 0: below the first hinge's response
        k = np.maximum(segment - 1, 0)  # the hinge each prediction is measured from
        slope = np.choose(segment, slopes)
        origin = np.choose(k, at_knot)
        return np.asarray(knots)[k] + (mean - origin) / slope, self.scale_ * std / np.abs(slope)

    def calibrate(self, mean, std, z, exposure=None):
        """The calibrated (mean, std) of the wrapped model's predictions ``mean``, ``std`` at redshifts ``z``.

        What :meth:`predict` does after running the model, for callers
        that ran it themselves (:func:`skcluster.predict_catalog`);
        ``exposure`` (s) is needed with ``exposure_terms``.
        """
        check_is_fitted(self, "coef_")
        where = f"{type(self).__name__}.calibrate"
        mean, std, z = (np.asarray(v, dtype=np.float64) for v in (mean, std, z))
        if not (mean.shape == std.shape == z.shape):
            raise ValueError(f"{where}: mean, std and z must have one shape, got "
                             f"{mean.shape}, {std.shape}, {z.shape}")
        w = None
        if getattr(self, "exposure_terms", False):
            if exposure is None or np.shape(exposure) != z.shape:
                raise ValueError(f"{where}: the response depends on the exposure (exposure_terms=True); give "
                                 f"exposure= of shape {z.shape}")
            w = self._w(exposure, where)
        return self._calibrate(mean, std, z, w)

    def predict(self, X, return_std=False):
        """Calibrated log10 M500 (and its standard deviation)."""
        mean, std = self._calibrate_sample(X, lambda X, where: predict_mean_std(self.estimator_, X, where))
        return (mean, std) if return_std else mean

    def predict_from_components(self, comp, X):
        """:meth:`predict`'s (mean, std) from the wrapped ensemble's ``predict_components`` ``comp`` of ``X``.

        For callers that ran the ensemble themselves
        (:meth:`skcluster.workflow.MassModel.predict_with_parts`).
        """
        return self._calibrate_sample(X, lambda X, where: (comp.mean, comp.std))

    def _calibrate_sample(self, X, mean_std):
        """The calibrated (mean, std) of the rows of ``X``, the model's (mean, std) from ``mean_std(X, where)``."""
        from .priors import sample_redshift

        check_is_fitted(self, "coef_")
        where = type(self).__name__
        X, z = sample_redshift(X, where)
        w = self._sample_w(X, where)
        mean, std = mean_std(X, where)
        return self._calibrate(np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64), z, w)
