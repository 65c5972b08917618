"""The gradient-boosting baseline: boosted trees on scalar observables, with a std.

:class:`GradientBoostingMassRegressor` wraps scikit-learn's
:class:`~sklearn.ensemble.HistGradientBoostingRegressor` (a mean model and
a heteroscedastic std model) and keeps its fitted state as plain arrays:
the training data and seeds from which the trees are refitted exactly,
never scikit-learn's private tree structures.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from .._validation import check_positive_int
from ..exceptions import SkclusterWarning
from ..sample import as_sample
from ._checks import check_target, expand_columns, is_sample, observable_columns
from .features import ColumnsToArray

__all__ = ["GradientBoostingMassRegressor"]

_ONE_SIGMA = 0.6826894921370859  # Gaussian probability within +-1 sigma
_QUANTILES = (0.15865525, 0.84134475)  # +-1 sigma of a Gaussian
#: A refit after loading may differ from the saved training predictions by this much (dex) silently.
_REFIT_TOLERANCE = 1e-9

# The fitted scikit-learn models of each estimator, outside its __dict__ so
# that the fitted state stays plain arrays (rebuilt lazily after a load).
_MODELS = weakref.WeakKeyDictionary()


class GradientBoostingMassRegressor(RegressorMixin, BaseEstimator):
    """Gradient-boosted trees on scalar observables plus redshift, with a std.

    The strong non-linear baseline: scikit-learn's
    :class:`~sklearn.ensemble.HistGradientBoostingRegressor` on all the
    columns of :class:`ScalarObservables` (trees need no logs), the
    redshift and the exposure.

    The predictive std (``std_method``):

    * ``"oof"`` (default): out-of-fold residuals r of the mean model from
      an inner ``n_splits``-fold split of the training set (honest, unlike
      in-sample residuals, which boosting drives toward zero); a second,
      shallow boosted model with a gamma loss (log link) learns E[r^2 | x],
      so the std varies with the cluster (heteroscedastic: faint clusters
      get larger errors). Its scale is then calibrated so that 68.3% of the
      out-of-fold residuals fall within +-1 std of cross-fitted variance
      models (residuals have heavier tails than a Gaussian of the same
      variance, so the raw sqrt(E[r^2|x]) gives intervals that cover too
      much at 95% and too little at 68%). Costs 2 n_splits + 2 fits
      (the variance models are small).
    * ``"constant"``: the rms of those out-of-fold residuals for every
      cluster.
    * ``"quantile"``: two more models with the quantile loss at 15.87% and
      84.13%; std = half their distance (clipped at 1e-3 dex).

    Parameters
    ----------
    columns : sequence of str, default=None
        Columns of the ClusterSample (wildcards allowed, e.g. "hr_*"); None
        takes ``meta["observable_columns"]`` plus "z" and "exposure". A 2-D
        array input is used as it is.
    std_method : {"oof", "constant", "quantile"}, default="oof"
    n_splits : int, default=5
        Inner folds for the out-of-fold residuals.
    max_iter : int, default=300
    learning_rate : float, default=0.05
    max_leaf_nodes : int, default=31
    min_samples_leaf : int, default=20
    l2_regularization : float, default=0.0
    n_threads : int or None, default=1
        OpenMP threads of the boosting fits (None: all). One by default:
        the OpenMP threads of small fits spin against other processes on
        a busy machine; parallelise over folds or models instead.
    random_state : int, RandomState instance or None, default=None
        Seeds of every model and of the inner split, drawn once in fit.

    Attributes
    ----------
    columns_ : list of str or None
        Expanded column names (None for array input).
    train_X_ : numpy.ndarray of shape (n_samples, ``n_features_in_``)
        The training features (float64, NaN for missing values).
    train_y_ : numpy.ndarray of shape (n_samples,)
    variance_target_ : numpy.ndarray of shape (n_samples,) or None
        Target of the variance model ("oof": squared out-of-fold residual
        plus a small floor), None otherwise.
    seeds_ : numpy.ndarray of int64
        Seeds of every boosting fit and of the inner split, drawn once.
    train_predictions_ : numpy.ndarray of shape (n_samples, n_models)
        Predictions of the final models (mean, then the variance or the two
        quantile models) on ``train_X_``, to check a refit after loading.
    sklearn_version_ : str
        scikit-learn version of the fit.
    oof_rms_ : float
        rms of the out-of-fold residuals, dex (NaN for "quantile").
    std_scale_ : float
        Calibration factor of the "oof" std (1 otherwise).
    n_iter_ : int
        Boosting iterations of the mean model.
    n_features_in_ : int

    Notes
    -----
    The fitted :class:`~sklearn.ensemble.HistGradientBoostingRegressor`
    models live only in memory. The fitted state (all of it numpy arrays,
    numbers and strings, so :mod:`skcluster.persist` saves it without
    pickle) holds what refits them exactly: the training data, the
    hyperparameters (the constructor parameters) and the seeds. After
    loading, or unpickling, the first ``predict`` refits the final models
    (the mean model and the std models, not the cross-validation folds)
    and compares their predictions on the training rows with
    ``train_predictions_``; a difference, possible with another
    scikit-learn version, warns with its size. Files saved by skcluster
    versions that exported scikit-learn's private tree arrays (a
    ``trees_`` attribute) are refused by ``predict`` with a message: refit
    those models.
    """

    def __init__(self, columns=None, std_method="oof", n_splits=5, max_iter=300, learning_rate=0.05,
                 max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0.0, n_threads=1,
                 random_state=None):
        self.columns = columns
        self.std_method = std_method
        self.n_splits = n_splits
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_threads = n_threads
        self.random_state = random_state

    _step = "GradientBoostingMassRegressor"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # the trees route missing values
        return tags

    def _array(self, X, y=None, fitting=False):
        if is_sample(X):
            X = as_sample(X, step=self._step)
            if fitting:
                if self.columns is None:
                    obs = observable_columns(X, self._step)
                    cols = list(obs) + [c for c in ("z", "exposure") if c in X and c not in obs]
                else:
                    cols = expand_columns(X, self.columns, self._step)
                self.columns_ = cols
            elif self.columns_ is None:
                raise ValueError(f"{self._step} was fitted on an array; predict needs an array too")
            conv = ColumnsToArray(columns=self.columns_).fit(X)
            A = conv.transform(X)
            if fitting:
                self.n_features_in_ = A.shape[1]
                y = check_target(y, A.shape[0], self._step)
            elif A.shape[1] != self.n_features_in_:
                raise ValueError(f"{self._step} expects {self.n_features_in_} features, got {A.shape[1]}")
            return A, y
        if fitting:
            self.columns_ = None
            return validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True)
        if self.columns_ is not None:
            raise ValueError(f"{self._step} was fitted on a ClusterSample; predict needs one too")
        return validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan"), None

    def _model(self, seed, **kw):
        params = dict(max_iter=self.max_iter, learning_rate=self.learning_rate,
                      max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                      l2_regularization=self.l2_regularization, random_state=int(seed))
        params.update(kw)
        return HistGradientBoostingRegressor(**params)

    def _variance_model(self, seed):
        """The shallow gamma-loss model of E[r^2 | x] ("oof")."""
        return self._model(seed, loss="gamma", max_iter=min(100, self.max_iter), max_leaf_nodes=8,
                           min_samples_leaf=max(self.min_samples_leaf, 50))

    def _final_models(self, A, y, variance_target, seeds):
        """The mean model and the std models ([] for "constant") fitted on all the data."""
        models = [self._model(seeds[0]).fit(A, y)]
        if self.std_method == "quantile":
            models += [self._model(seeds[1 + k], loss="quantile", quantile=q).fit(A, y)
                       for k, q in enumerate(_QUANTILES)]
        elif self.std_method == "oof":
            models.append(self._variance_model(seeds[-1]).fit(A, variance_target))
        return models

    def fit(self, X, y):
        """Fit the mean model and the std model.

        The boosting fits run with ``n_threads`` OpenMP threads.

        Parameters
        ----------
        X : ClusterSample or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            log10(M500c / Msun).

        Returns
        -------
        self
        """
        with threadpool_limits(self.n_threads, user_api="openmp"):
            return self._fit(X, y)

    def _fit(self, X, y):
        if self.std_method not in ("oof", "constant", "quantile"):
            raise ValueError(f"std_method must be 'oof', 'constant' or 'quantile', got {self.std_method!r}")
        A, y = self._array(X, y, fitting=True)
        A = np.array(A, dtype=np.float64, copy=True)  # kept: the caller's array may change
        y = np.array(y, dtype=np.float64, copy=True)
        n_splits = check_positive_int(self.n_splits, "n_splits", self._step)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=n_splits + 4).astype(np.int64)  # drawn once, up front
        self.oof_rms_ = float("nan")
        self.std_scale_ = 1.0
        variance_target = None
        if self.std_method != "quantile":
            if n_splits < 2 or A.shape[0] < 2 * n_splits:
                raise ValueError(
                    f"{self._step}: std_method={self.std_method!r} needs n_splits >= 2 and at least "
                    f"2 * n_splits clusters; got n_splits={self.n_splits}, n_samples = {A.shape[0]}"
                )
            oof = np.empty_like(y)
            kf = KFold(n_splits=n_splits, shuffle=True, random_state=int(seeds[1]))
            for k, (tr, te) in enumerate(kf.split(A)):
                oof[te] = self._model(seeds[2 + k]).fit(A[tr], y[tr]).predict(A[te])
            r2 = (y - oof) ** 2
            self.oof_rms_ = float(np.sqrt(np.mean(r2)))
            if self.std_method == "oof":
                variance_target = r2 + max(1e-6, 1e-4 * float(np.mean(r2)))
                # cross-fitted std of each residual, to calibrate the scale of the std honestly
                sigma_oof = np.empty_like(y)
                for k, (tr, te) in enumerate(kf.split(A)):
                    sigma_oof[te] = np.sqrt(
                        self._variance_model(seeds[2 + k]).fit(A[tr], variance_target[tr]).predict(A[te]))
                self.std_scale_ = float(np.quantile(np.abs(y - oof) / sigma_oof, _ONE_SIGMA))
        models = self._final_models(A, y, variance_target, seeds)
        self.train_X_ = A
        self.train_y_ = y
        self.variance_target_ = variance_target
        self.seeds_ = seeds
        self.train_predictions_ = np.stack([m.predict(A) for m in models], axis=1)
        self.sklearn_version_ = sklearn.__version__
        self.n_iter_ = int(models[0].n_iter_)
        _MODELS[self] = models
        return self

    def _models(self):
        """The fitted scikit-learn models: from memory, or refitted from the saved state."""
        models = _MODELS.get(self)
        if models is not None:
            return models
        models = self._final_models(self.train_X_, self.train_y_, self.variance_target_, self.seeds_)
        again = np.stack([m.predict(self.train_X_) for m in models], axis=1)
        diff = float(np.max(np.abs(again - self.train_predictions_), initial=0.0))
        if not diff <= _REFIT_TOLERANCE:
            warnings.warn(
                f"{self._step}: the trees refitted from the saved training data with scikit-learn "
                f"{sklearn.__version__} differ from the fit with scikit-learn {self.sklearn_version_}: "
                f"predictions on the training clusters change by up to {diff:.3g} dex. Refit the model "
                "with this scikit-learn, or use the version that fitted it, for identical predictions",
                SkclusterWarning,
                stacklevel=5,
            )
        _MODELS[self] = models
        return models

    def predict(self, X, return_std=False):
        """Predict log10(M500c / Msun) (and the std, dex).

        Parameters
        ----------
        X : ClusterSample or array-like of shape (n_samples, n_features)
        return_std : bool, default=False

        Returns
        -------
        y_mean : numpy.ndarray of shape (n_samples,)
        y_std : numpy.ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        if "trees_" in vars(self) and "train_X_" not in vars(self):
            raise ValueError(
                f"this {self._step} was saved by an earlier skcluster that exported scikit-learn's "
                "private tree arrays ('trees_'); that format is no longer read. Fit the model again "
                "(its training data were not saved with it)"
            )
        check_is_fitted(self, "train_X_")
        A, _ = self._array(X, fitting=False)
        with threadpool_limits(self.n_threads, user_api="openmp"):
            return self._predict(A, return_std)

    def _predict(self, A, return_std):
        models = self._models()
        mean = models[0].predict(A)
        if not return_std:
            return mean
        if self.std_method == "quantile":
            lo, hi = (m.predict(A) for m in models[1:])
            std = np.maximum(0.5 * (hi - lo), 1e-3)
        elif self.std_method == "oof":
            std = self.std_scale_ * np.sqrt(models[1].predict(A))
        else:
            std = np.full_like(mean, self.oof_rms_)
        return mean, std
