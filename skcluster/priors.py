"""Masses under a stated prior: undoing the training population's pull.

A regressor trained with a Gaussian likelihood on a mock returns, for each
cluster, an approximation of the posterior ``p_train(m | x)`` of ``m = log10
M500`` under the *training* population: the mass function and selection of
the mock, at the cluster's redshift. Carried to another population it is
biased: it shrinks toward the training masses (a slope below one against the
truth). By Bayes' theorem the likelihood of the data is the posterior
divided by the prior,

    p(x | m) ∝ p_train(m | x) / p_train(m | z),

so the posterior under any other prior ``p_target(m | z)`` is

    p_target(m | x) ∝ p_train(m | x) p_target(m | z) / p_train(m | z)

(e.g. Bishop 2006, *Pattern Recognition and Machine Learning*, sec. 1.5.4,
on compensating for class priors; the same reweighting of a learned
posterior is the basis of neural ratio estimation, Hermans et al. 2020,
arXiv:1903.04057). :class:`PriorCorrectedRegressor` does this on a grid in
``m`` for every cluster: the wrapped model's Gaussian mixture (one Gaussian
per ensemble member) times the prior ratio, normalised; its mean and
standard deviation are the mass and its error under the target prior
(``method="divide"``).

With ``method="weights"`` the ratio is applied in training instead: each
training cluster's loss is weighted by ``p_target(m_i | z_i) / p_train(m_i
| z_i)`` (importance weighting for a shifted population, Shimodaira 2000,
J. Stat. Plan. Inference 90, 227), so the network fits the posterior under
the target prior directly and its predictions are used as they are. The
weights are normalised to a mean of one; their effective sample size
(Kish 1965, *Survey Sampling*: ``(sum w)^2 / sum w^2``) is recorded.

* ``target="flat"``: flat in log10 M500 over the training range: the masses
  approximate the likelihood's, with no population prior at all, which is
  what transfers between populations (a cosmology analysis then applies its
  own mass function and selection);
* ``target="training"``: no change (the training-population posterior);
* ``target="mass_function"``: the halo mass function of Tinker et al. 2008
  (via colossus, Diemer 2018, ApJS 239, 35) at a stated cosmology, times an
  optional selection probability table.

The training prior ``p_train(m | z)`` is estimated in ``fit`` from the
training masses and redshifts with a Gaussian kernel density estimate in
(``m``, ``log(1 + z)``) (Scott's bandwidth), tabulated on a grid and
conditioned on ``z``; it is floored at ``min_density_ratio`` times its
maximum at each redshift so that sparsely populated ends of the training
range do not blow the ratio up.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._validation import check_positive_int
from .sample import as_sample

__all__ = ["PRIOR_METHODS", "PriorCorrectedRegressor", "TARGET_PRIORS", "component_mixture", "mixture_components",
           "training_prior_table"]

#: The target priors :class:`PriorCorrectedRegressor` knows.
TARGET_PRIORS = ("flat", "training", "mass_function")

#: How :class:`PriorCorrectedRegressor` applies the prior ratio.
PRIOR_METHODS = ("divide", "weights")

_LN10 = np.log(10.0)


def training_prior_table(y, z, m_grid, u_grid, bandwidth=None, min_density_ratio=0.01):
    """``p_train(m | z)`` on a grid, from training masses and redshifts.

    Parameters
    ----------
    y : array-like of shape (n,)
        log10 M500 / Msun of the training clusters.
    z : array-like of shape (n,)
        Their redshifts.
    m_grid : ndarray of shape (G,)
        log10 M500 grid (uniform).
    u_grid : ndarray of shape (Z,)
        ``log(1 + z)`` grid.
    bandwidth : float or None
        Kernel width factor of :class:`scipy.stats.gaussian_kde` (None:
        Scott's rule).
    min_density_ratio : float
        Floor of each row relative to its maximum.

    Returns
    -------
    ndarray of shape (Z, G)
        Each row a density in ``m`` (per dex) at that redshift, integrating
        to one over the grid.
    """
    from scipy.stats import gaussian_kde

    y = np.asarray(y, dtype=np.float64)
    u = np.log1p(np.asarray(z, dtype=np.float64))
    kde = gaussian_kde(np.vstack([y, u]), bw_method=bandwidth)
    mm, uu = np.meshgrid(m_grid, u_grid)
    dens = kde(np.vstack([mm.ravel(), uu.ravel()])).reshape(uu.shape)
    dens = np.maximum(dens, min_density_ratio * dens.max(axis=1, keepdims=True))
    dens = np.maximum(dens, 1e-300)
    dm = m_grid[1] - m_grid[0]
    return dens / (dens.sum(axis=1, keepdims=True) * dm)


def _mass_function_table(m_grid, z_grid, cosmology):
    """Tinker et al. 2008 dn/dlog10M for M500c on the grid (per dex, normalised per z)."""
    from colossus.cosmology import cosmology as cc
    from colossus.lss import mass_function

    params = {"flat": True, "H0": 70.0, "Om0": 0.3, "Ob0": 0.049, "sigma8": 0.81, "ns": 0.965}
    params.update(cosmology or {})
    previous = cc.current_cosmo if hasattr(cc, "current_cosmo") else None
    cosmo = cc.setCosmology("skcluster_prior", **params, persistence="")
    h = cosmo.H0 / 100.0
    try:
        out = np.empty((len(z_grid), len(m_grid)))
        for i, zz in enumerate(z_grid):
            out[i] = mass_function.massFunction(10.0**m_grid * h, float(zz), mdef="500c",
                                                model="tinker08", q_out="dndlnM")
    finally:
        if previous is not None:
            cc.setCurrent(previous)
    out = np.maximum(out, 1e-300)
    return out / (out.sum(axis=1, keepdims=True) * (m_grid[1] - m_grid[0]))


def mixture_components(estimator, X):
    """Member means and standard deviations of a mass model, each of shape (K, n).

    ``estimator`` is a fitted Pipeline (its transforms run first) or
    regressor; an ensemble (``predict_components``) gives one Gaussian per
    member, any other model with ``predict(X, return_std=True)`` one.
    """
    final, Xt = estimator, X
    if hasattr(estimator, "steps"):  # a Pipeline: run the transforms, then the last step
        for _, step in estimator.steps[:-1]:
            if step is not None and step != "passthrough":
                Xt = step.transform(Xt)
        final = estimator.steps[-1][1]
    if hasattr(final, "predict_components"):
        return component_mixture(final.predict_components(Xt))
    mean, std = final.predict(Xt, return_std=True)
    return np.asarray(mean, dtype=np.float64)[None], np.asarray(std, dtype=np.float64)[None]


def component_mixture(comp):
    """Member means and standard deviations, each of shape (K, n), of an ensemble's ``predict_components``.

    Members without their own std take the mixture's total std.
    """
    stds = comp.member_stds
    if stds is None:
        stds = np.broadcast_to(comp.std, comp.member_means.shape)
    return np.asarray(comp.member_means, dtype=np.float64), np.asarray(stds, dtype=np.float64)


def sample_redshift(X, where):
    """``(X as a ClusterSample, its z column as float64)``; z must be finite and >= 0."""
    X = as_sample(X, step=where)
    X.require("z", step=where)
    z = np.asarray(X["z"], dtype=np.float64)
    if not np.all(np.isfinite(z)) or np.any(z < 0):
        bad = np.flatnonzero(~np.isfinite(z) | (z < 0))[:5].tolist()
        raise ValueError(f"{where}: z must be finite and >= 0; rows {bad} are not")
    return X, z


class PriorCorrectedRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """A mass regressor whose predictions carry a stated prior (module notes).

    Wraps a regressor that predicts ``log10 M500`` with an uncertainty (a
    :class:`~skcluster.DeepEnsembleRegressor`, a
    :class:`~skcluster.nn.CNNRegressor`, or a Pipeline ending in one) and
    reads the redshift from the input's ``z`` column, so it goes around the
    whole pipeline (whose preprocessing turns ``z`` into network scalars).

    Parameters
    ----------
    estimator : estimator
        Fitted in ``fit`` (a clone); must predict ``return_std=True``.
        Ensembles (``predict_components``) contribute one Gaussian per
        member.
    target : {"flat", "training", "mass_function"}, default="flat"
        The prior of the predicted masses (module notes).
    cosmology : dict, default=None
        For ``target="mass_function"``: colossus cosmology parameters
        (``Om0``, ``sigma8``, ``H0``, ``Ob0``, ``ns``); defaults Om0 = 0.3,
        H0 = 70 (the eFEDS papers' choice), sigma8 = 0.81, Ob0 = 0.049, ns
        = 0.965 (Planck Collaboration 2020, A&A 641, A6).
    selection : tuple of (m_grid, z_grid, probability) or None, default=None
        For ``target="mass_function"``: a selection probability table,
        shape (len(z_grid), len(m_grid)), multiplied into the mass function
        (bilinear interpolation, 0 outside).
    mass_range : (float, float) or None, default=None
        log10 M500 range of the grid; None: the training range padded by
        0.2 dex.
    n_grid : int, default=400
        Grid points in log10 M500.
    min_density_ratio : float, default=0.01
        Floor of the estimated training prior relative to its maximum at
        each redshift.
    method : {"divide", "weights"}, default="divide"
        ``"divide"``: train as usual and divide the prior out of each
        prediction; ``"weights"``: train with importance weights (module
        notes; the wrapped estimator, or a Pipeline's last step, must take
        ``sample_weight``) and predict as the network does.

    Attributes
    ----------
    estimator_ : estimator
        The fitted wrapped regressor.
    m_grid_ : ndarray of shape (n_grid,)
    u_grid_ : ndarray
        ``log(1 + z)`` grid of the prior tables.
    log_ratio_ : ndarray of shape (len(``u_grid_``), n_grid)
        ``log p_target(m | z) - log p_train(m | z)``.
    mass_prior_ : str
        The prior the predicted masses carry (``target``).
    training_range_ : (float, float)
        log10 M500 range of the training clusters.
    effective_sample_size_ : float
        With ``method="weights"``: Kish's effective number of training
        clusters under the weights (the number of clusters otherwise).
    """

    def __init__(self, estimator, target="flat", cosmology=None, selection=None, mass_range=None,
                 n_grid=400, min_density_ratio=0.01, method="divide"):
        self.estimator = estimator
        self.target = target
        self.cosmology = cosmology
        self.selection = selection
        self.mass_range = mass_range
        self.n_grid = n_grid
        self.min_density_ratio = min_density_ratio
        self.method = method

    def _check_params(self):
        name = type(self).__name__
        if self.target not in TARGET_PRIORS:
            raise ValueError(f"{name}: target must be one of {TARGET_PRIORS}, got {self.target!r}")
        check_positive_int(self.n_grid, "n_grid", name, minimum=16)
        if not (0.0 < float(self.min_density_ratio) < 1.0):
            raise ValueError(f"{name}: min_density_ratio must be in (0, 1), got {self.min_density_ratio!r}")
        if self.method not in PRIOR_METHODS:
            raise ValueError(f"{name}: method must be one of {PRIOR_METHODS}, got {self.method!r}")
        if self.selection is not None and self.target != "mass_function":
            raise ValueError(f"{name}: selection applies to target='mass_function' only")

    def fit(self, X, y, **fit_params):
        """Fit the wrapped regressor and estimate the training prior.

        Parameters
        ----------
        X : ClusterSample
            With a ``z`` column (and what the wrapped estimator needs).
        y : array-like of shape (n_samples,)
            log10 M500 / Msun.
        **fit_params
            Passed to the wrapped estimator's ``fit``.
        """
        self._check_params()
        name = type(self).__name__
        X, z = sample_redshift(X, name)
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (len(z),) or not np.all(np.isfinite(y)):
            raise ValueError(f"{name}: y must be finite with one value per cluster, got shape {y.shape}")
        lo, hi = (float(y.min()) - 0.2, float(y.max()) + 0.2) if self.mass_range is None else map(
            float, self.mass_range)
        if not hi > lo:
            raise ValueError(f"{name}: mass_range must be increasing, got {self.mass_range!r}")
        self.training_range_ = (float(y.min()), float(y.max()))
        self.m_grid_ = np.linspace(lo, hi, int(self.n_grid))
        u = np.log1p(z)
        self.u_grid_ = np.linspace(max(u.min() - 0.05, 0.0), u.max() + 0.05, 32)
        if self.target == "training":  # the ratio is one: the training prior cancels
            self.log_ratio_ = np.zeros((self.u_grid_.size, self.m_grid_.size))
        else:
            log_train = np.log(training_prior_table(y, z, self.m_grid_, self.u_grid_,
                                                    min_density_ratio=self.min_density_ratio))
            self.log_ratio_ = self._log_target() - log_train
        self.effective_sample_size_ = float(len(y))
        if self.method == "weights" and self.target != "training":
            from scipy.interpolate import RegularGridInterpolator
            from sklearn.frozen import FrozenEstimator

            if isinstance(self.estimator, FrozenEstimator):  # its fit ignores the weights
                raise ValueError(f"{name}: method='weights' trains the model with importance weights, but "
                                 "the estimator is frozen (already fitted); wrap the unfitted model, or use "
                                 "method='divide' for a fitted one")

            log_w = RegularGridInterpolator((self.u_grid_, self.m_grid_), self.log_ratio_)(np.c_[np.log1p(z), y])
            weight = np.exp(log_w - log_w.max())
            weight *= len(weight) / weight.sum()
            self.effective_sample_size_ = float(weight.sum() ** 2 / np.sum(weight**2))
            key = f"{self.estimator.steps[-1][0]}__sample_weight" if hasattr(self.estimator, "steps") \
                else "sample_weight"
            fit_params = {**fit_params, key: weight}
            # the trained network carries the target prior: nothing to divide at prediction
            self.log_ratio_ = np.zeros_like(self.log_ratio_)
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.mass_prior_ = str(self.target)
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", 1)
        return self

    def _log_target(self):
        G, Z = self.m_grid_.size, self.u_grid_.size
        if self.target == "flat":
            inside = (self.m_grid_ >= self.training_range_[0]) & (self.m_grid_ <= self.training_range_[1])
            flat = np.where(inside, 1.0, 1e-300)
            return np.broadcast_to(np.log(flat / (flat.sum() * (self.m_grid_[1] - self.m_grid_[0]))), (Z, G)).copy()
        table = _mass_function_table(self.m_grid_, np.expm1(self.u_grid_), self.cosmology)
        if self.selection is not None:
            from scipy.interpolate import RegularGridInterpolator

            sm, sz, prob = (np.asarray(a, dtype=np.float64) for a in self.selection)
            if prob.shape != (sz.size, sm.size):
                raise ValueError(f"selection probability must have shape (len(z_grid), len(m_grid)) = "
                                 f"{(sz.size, sm.size)}, got {prob.shape}")
            interp = RegularGridInterpolator((sz, sm), np.clip(prob, 0.0, 1.0), bounds_error=False, fill_value=0.0)
            zz, mm = np.meshgrid(np.expm1(self.u_grid_), self.m_grid_, indexing="ij")
            table = np.maximum(table * interp(np.stack([zz, mm], axis=-1)), 1e-300)
        return np.log(table)

    def predict(self, X, return_std=False):
        """log10 M500 under the target prior (and its standard deviation).

        Parameters
        ----------
        X : ClusterSample
            With a ``z`` column.
        return_std : bool, default=False

        Returns
        -------
        mean : ndarray of shape (n_samples,)
        std : ndarray of shape (n_samples,), only with ``return_std``
        """
        check_is_fitted(self, "log_ratio_")
        X, z = sample_redshift(X, type(self).__name__)
        mean, std = self.correct(*mixture_components(self.estimator_, X), z)
        return (mean, std) if return_std else mean

    def predict_from_components(self, comp, X):
        """:meth:`predict`'s (mean, std) from the wrapped ensemble's ``predict_components`` ``comp`` of ``X``.

        For callers that ran the ensemble themselves
        (:meth:`skcluster.workflow.MassModel.predict_with_parts`).
        """
        check_is_fitted(self, "log_ratio_")
        X, z = sample_redshift(X, type(self).__name__)
        return self.correct(*component_mixture(comp), z)

    def correct(self, means, stds, z):
        """Mean and standard deviation under the target prior, from the wrapped model's mixture.

        Parameters
        ----------
        means, stds : ndarray of shape (K, n)
            The wrapped model's Gaussian components
            (:func:`mixture_components`), log10 M500 and dex.
        z : ndarray of shape (n,)
            Redshifts.

        Returns
        -------
        mean, std : ndarray of shape (n,)
        """
        check_is_fitted(self, "log_ratio_")
        means, stds = np.atleast_2d(means), np.atleast_2d(stds)
        z = np.asarray(z, dtype=np.float64)
        if not self.log_ratio_.any():  # target "training", or method "weights": the mixture as it is
            from .ensemble import mixture_moments

            mean, alea, epi = mixture_moments(means, stds**2)
            return mean, np.sqrt(alea + epi)
        u = np.log1p(z)
        # the prior ratio at each cluster's redshift: linear interpolation between grid rows
        pos = np.interp(u, self.u_grid_, np.arange(self.u_grid_.size))
        i0 = np.clip(np.floor(pos).astype(int), 0, self.u_grid_.size - 2)
        t = (pos - i0)[:, None]
        m = self.m_grid_
        out_mean = np.empty(z.size)
        out_std = np.empty(z.size)
        chunk = max(1, int(2**22 // (m.size * max(means.shape[0], 1))))
        for s in range(0, z.size, chunk):
            sl = slice(s, s + chunk)
            mu, sd = means[:, sl, None], np.maximum(stds[:, sl, None], 1e-6)
            # log of the mixture density on the grid (log-sum-exp over members)
            logc = -0.5 * ((m[None, None, :] - mu) / sd) ** 2 - np.log(sd)
            top = logc.max(axis=0)
            log_post = top + np.log(np.exp(logc - top).sum(axis=0))
            log_w = (1.0 - t[sl]) * self.log_ratio_[i0[sl]] + t[sl] * self.log_ratio_[i0[sl] + 1]
            lp = log_post + log_w
            lp -= lp.max(axis=1, keepdims=True)
            p = np.exp(lp)
            p /= p.sum(axis=1, keepdims=True)
            mean = p @ m
            out_mean[sl] = mean
            out_std[sl] = np.sqrt(np.maximum(p @ (m * m) - mean**2, 0.0))
        return out_mean, out_std
