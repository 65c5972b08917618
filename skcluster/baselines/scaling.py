"""The scaling-relation regressor: a power-law mass-observable relation in log space.

:class:`ScalingRelationRegressor` fits log10 O = a + b (log10 M - log10 M_p)
+ redshift terms as astronomers fit scaling relations (the observable as a
function of mass, inverted to predict), the "traditional" count-rate method
of the seed study (Krippendorf et al. 2023, arXiv:2305.00016) with the
relation form of Chiu et al. 2022 (A&A 661, A11), with
``predict(X, return_std=True)``.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..physics.relations import MASS_PIVOT_MSUN
from ..sample import as_sample
from ._checks import check_positive_column, check_target, is_sample
from .features import redshift_terms

__all__ = ["ScalingRelationRegressor"]


_DISTANCE_OBSERVABLES = ("counts", "count_rate", "flux")
_AUTO_TERMS_DISTANCE = ("E", "DL", "1+z")
_AUTO_TERMS_LUMINOSITY = ("E",)
_INTERACTION = "mass*1+z"


def _auto_terms(observable):
    name = observable.lower()
    if any(name.startswith(p) for p in _DISTANCE_OBSERVABLES):
        return _AUTO_TERMS_DISTANCE
    return _AUTO_TERMS_LUMINOSITY


class ScalingRelationRegressor(RegressorMixin, BaseEstimator):
    """Power-law mass-observable relation with redshift terms, in log space.

    With ``direction="inverse"`` (default) it is fitted as astronomers fit
    scaling relations, the observable O as a function of mass and redshift,

        log10 O = a + (b + d t_1+z) (y - y_p) + sum_k c_k t_k(z) + eps,
        eps ~ N(0, sigma_O),

    (y = log10 M500c/Msun, y_p = log10 ``mass_pivot``, t_k the redshift
    terms relative to ``z_pivot``) by ordinary least squares, and inverted
    to predict: y = y_p + (log10 O - a - sum c_k t_k) / (b + d t_1+z), with
    std sigma_O / abs(b + d t_1+z) (dex; times ln 10 for the scatter in ln M).
    Inverting the relation is unbiased at fixed true mass whatever the mass
    function, which is why the literature calibrates O(M) and inverts it;
    ``direction="forward"`` instead regresses y on log10 O and the redshift
    terms (the least-squares predictor for the training distribution,
    smaller total scatter but biased at the extremes of mass).

    Parameters
    ----------
    observable : str, default="count_rate"
        Column of the ClusterSample (from :class:`ScalarObservables`);
        positive values.
    redshift_terms : "auto" or sequence of str, default="auto"
        Terms among "E" (log10 E(z)/E(z_p)), "1+z" (log10 (1+z)/(1+z_p)),
        "DL" (log10 D_L(z)/D_L(z_p)) and "mass*1+z" (a mass slope changing
        with log10 (1+z), inverse direction only), each with a fitted
        coefficient. "auto" picks the form of Chiu et al. 2022 (A&A 661,
        A11; also the eRASS1 form) for distance-dependent observables,
        eta ~ M^b E(z)^c1 D_L(z)^c2 (1+z)^c3, i.e. ("E", "DL", "1+z") for
        names starting with "counts", "count_rate" or "flux", and the
        self-similar ("E",) for luminosities (the L_X-M form of Liu et al.
        2022 and Chiu et al. 2022). An
        observed rate or flux falls as D_L^-2, which E(z) alone cannot
        follow over 0.01 < z < 1.5.
    direction : {"inverse", "forward"}, default="inverse"
    mass_pivot : float, default=2e14
        Msun (:data:`skcluster.physics.relations.MASS_PIVOT_MSUN`).
    z_pivot : float, default=0.35
        Pivot redshift of the terms (Chiu et al. 2022).

    Attributes
    ----------
    terms_ : list of str
        Redshift terms used (excluding the interaction).
    intercept_ : float
        a (inverse: log10 O at the pivots) or the intercept of y (forward).
    slope_ : float
        b: mass slope of log10 O (inverse) or slope of y on log10 O (forward).
    redshift_coef_ : numpy.ndarray of shape (n_terms,)
    mass_z_slope_ : float
        d, the coefficient of the "mass*1+z" interaction (0 without it).
    scatter_ : float
        Residual standard deviation of the fitted relation (dex of O for
        inverse, dex of M for forward), the intrinsic plus measurement
        scatter; ddof = number of coefficients.
    mass_scatter_ : float
        Scatter in log10 M at the pivot redshift (dex): ``scatter_`` / abs(b) for
        inverse.
    n_features_in_ : int
        Only when fitted on a 2-D array: column 0 is log10 O, the others
        additive covariates (the redshift terms).

    Notes
    -----
    A 2-D numeric array is accepted instead of a ClusterSample: its first
    column is taken as log10 O and the others as the (already computed)
    redshift terms, so the regressor also works behind
    :class:`ColumnsToArray` and in scikit-learn's estimator checks.
    """

    def __init__(self, observable="count_rate", redshift_terms="auto", direction="inverse",
                 mass_pivot=MASS_PIVOT_MSUN, z_pivot=0.35):
        self.observable = observable
        self.redshift_terms = redshift_terms
        self.direction = direction
        self.mass_pivot = mass_pivot
        self.z_pivot = z_pivot

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # one observable: not a general-purpose regressor
        return tags

    def _terms(self):
        terms = _auto_terms(self.observable) if self.redshift_terms == "auto" else tuple(self.redshift_terms)
        if isinstance(self.redshift_terms, str) and self.redshift_terms != "auto":
            raise ValueError(f"redshift_terms must be 'auto' or a sequence of names, got {self.redshift_terms!r}")
        interaction = _INTERACTION in terms
        return [t for t in terms if t != _INTERACTION], interaction

    def _features(self, X, y=None, fitting=False):
        """log10 O (n,), redshift terms (n, k), the log10(1+z) term of the interaction, y."""
        step = "ScalingRelationRegressor"
        if is_sample(X):
            X = as_sample(X, step="ScalingRelationRegressor")
            X.require(self.observable, "z", step="ScalingRelationRegressor")
            o = check_positive_column(X, self.observable, "ScalingRelationRegressor")
            terms, inter = self._terms()
            T = redshift_terms(X["z"], terms, z_pivot=self.z_pivot)
            t1z = redshift_terms(X["z"], ["1+z"], z_pivot=self.z_pivot)[:, 0] if inter else None
            if fitting:
                y = check_target(y, len(X), step)
                self.terms_ = terms
                self.input_kind_ = "sample"
            elif self.input_kind_ != "sample":
                raise ValueError(f"{step} was fitted on an array; predict needs an array too")
            return np.log10(o), T, t1z, y
        if fitting:
            A, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
            self.terms_ = [f"x{k}" for k in range(1, A.shape[1])]
            self.input_kind_ = "array"
        else:
            if self.input_kind_ != "array":
                raise ValueError(f"{step} was fitted on a ClusterSample; predict needs one too")
            A = validate_data(self, X, reset=False, dtype=np.float64)
        return A[:, 0], A[:, 1:], None, y

    def fit(self, X, y):
        """Fit the relation.

        Parameters
        ----------
        X : ClusterSample or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            log10(M500c / Msun).

        Returns
        -------
        self
        """
        if self.direction not in ("inverse", "forward"):
            raise ValueError(f"direction must be 'inverse' or 'forward', got {self.direction!r}")
        if not (isinstance(self.mass_pivot, numbers.Real) and self.mass_pivot > 0):
            raise ValueError(f"mass_pivot must be a positive mass in Msun, got {self.mass_pivot!r}")
        lo, T, t1z, y = self._features(X, y, fitting=True)
        yp = np.log10(self.mass_pivot)
        if self.direction == "inverse":
            cols = [np.ones_like(y), y - yp, T]
            if t1z is not None:
                cols.append(((y - yp) * t1z)[:, None])
            A = np.column_stack(cols)
            target = lo
        else:
            if t1z is not None:
                raise ValueError("the 'mass*1+z' term needs direction='inverse'")
            A = np.column_stack([np.ones_like(y), lo, T])
            target = y
        if A.shape[0] <= A.shape[1]:
            raise ValueError(
                f"need more clusters (n_samples = {A.shape[0]}) than coefficients ({A.shape[1]}) "
                "to fit the relation and its scatter"
            )
        coef, *_ = np.linalg.lstsq(A, target, rcond=None)
        resid = target - A @ coef
        k = T.shape[1]
        self.intercept_ = float(coef[0])
        self.slope_ = float(coef[1])
        self.redshift_coef_ = np.asarray(coef[2:2 + k], dtype=np.float64)
        self.mass_z_slope_ = float(coef[2 + k]) if t1z is not None else 0.0
        self.scatter_ = float(np.sqrt(np.sum(resid**2) / (A.shape[0] - A.shape[1])))
        if self.direction == "inverse":
            if self.slope_ == 0 or not np.isfinite(self.slope_):
                raise ValueError(
                    f"the fitted mass slope is {self.slope_}: observable {self.observable!r} does not "
                    "change with mass, the relation cannot be inverted"
                )
            self.mass_scatter_ = self.scatter_ / abs(self.slope_)
        else:
            self.mass_scatter_ = self.scatter_
        self.scatter_ = max(self.scatter_, np.finfo(float).tiny)
        self.mass_scatter_ = max(self.mass_scatter_, np.finfo(float).tiny)
        return self

    def predict(self, X, return_std=False):
        """Predict log10(M500c / Msun).

        Parameters
        ----------
        X : ClusterSample or array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the predictive std (dex): the relation's scatter
            propagated through the inversion.

        Returns
        -------
        y_mean : numpy.ndarray of shape (n_samples,)
        y_std : numpy.ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        check_is_fitted(self, "slope_")
        lo, T, t1z, _ = self._features(X, fitting=False)
        yp = np.log10(self.mass_pivot)
        zpart = T @ self.redshift_coef_
        if self.direction == "inverse":
            slope = self.slope_ + (self.mass_z_slope_ * t1z if t1z is not None else 0.0)
            slope = np.broadcast_to(slope, lo.shape)
            if np.any(slope == 0):
                raise ValueError("the mass slope vanishes at some redshift; the relation cannot be inverted there")
            mean = yp + (lo - self.intercept_ - zpart) / slope
            std = self.scatter_ / np.abs(slope)
        else:
            mean = self.intercept_ + self.slope_ * lo + zpart
            std = np.full_like(mean, self.scatter_)
        if return_std:
            return mean, np.asarray(std, dtype=np.float64)
        return mean
