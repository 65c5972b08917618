"""Equally weighted Gaussian mixtures: the predictions of an ensemble's members combined.

:func:`mixture_moments` and :func:`mixture_components` are what
:class:`~skcluster.ensemble.DeepEnsembleRegressor` and the packed networks of
:mod:`skcluster.nn.packed` report (also importable from
:mod:`skcluster.ensemble`); a module of their own, below both, so that
neither imports the other for them.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

__all__ = ["mixture_components", "mixture_moments"]


def mixture_moments(means, variances=None):
    """Mean, aleatoric and epistemic variance of an equally weighted Gaussian mixture.

    Parameters
    ----------
    means : array-like of shape (n_members, n_samples)
        Member means mu_i.
    variances : array-like of shape (n_members, n_samples), default=None
        Member variances sigma_i^2 (not standard deviations); ``None`` for
        members without an uncertainty (aleatoric part zero).

    Returns
    -------
    mean : ndarray of shape (n_samples,)
        mean_i mu_i.
    aleatoric : ndarray of shape (n_samples,)
        mean_i sigma_i^2.
    epistemic : ndarray of shape (n_samples,)
        mean_i (mu_i - mean)^2, i.e. mean_i mu_i^2 - mean^2 computed without
        cancellation. ``aleatoric + epistemic`` is the mixture variance.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2:
        raise ValueError(f"means must have shape (n_members, n_samples), got {means.shape}")
    mean = means.mean(axis=0)
    epistemic = ((means - mean) ** 2).mean(axis=0)
    if variances is None:
        aleatoric = np.zeros_like(mean)
    else:
        variances = np.asarray(variances, dtype=np.float64)
        if variances.shape != means.shape:
            raise ValueError(
                f"variances must have the shape of means {means.shape}, got {variances.shape}"
            )
        aleatoric = variances.mean(axis=0)
    return mean, aleatoric, epistemic


def mixture_components(means, variances=None):
    """The mixture of :func:`mixture_moments` as a Bunch of standard deviations.

    Returns
    -------
    sklearn.utils.Bunch
        ``mean``, ``std`` (total), ``aleatoric_std`` (sqrt of the mean
        member variance; zeros without ``variances``), ``epistemic_std``
        (the members' spread, ddof=0), each of shape (n_samples,);
        ``member_means`` and ``member_stds`` (or None) of shape
        (n_members, n_samples).
    """
    means = np.asarray(means, dtype=np.float64)
    mean, alea, epi = mixture_moments(means, variances)
    return Bunch(
        mean=mean,
        std=np.sqrt(alea + epi),
        aleatoric_std=np.sqrt(alea),
        epistemic_std=np.sqrt(epi),
        member_means=means,
        member_stds=None if variances is None else np.sqrt(np.asarray(variances, dtype=np.float64)),
    )
