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

__all__ = ["mixture_components", "mixture_group_components", "mixture_moments"]


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


def mixture_group_components(means, variances, groups):
    """The mixture's variance split over groups of members (the law of total variance).

    The members are split into groups of equally many (an ensemble's physics
    draws, each trained on by ``m`` members). With ``mu_i`` the member
    means, ``g_k`` the mean of group k's members and ``mu`` the mixture mean,
    the mixture variance is exactly::

        var = mean_i sigma_i^2                          (photon: the members' own variance)
            + mean_k mean_{i in k} (mu_i - g_k)^2       (network: spread within a group)
            + mean_k (g_k - mu)^2                       (physics: spread of the group means)

    (ddof=0 throughout; the cross term vanishes because each group's
    deviations from its own mean sum to zero.) With one member per group
    the within-group spread cannot be measured: ``network`` is NaN, and the
    spread of the groups' means also holds the networks' (itself an upper
    bound of the physics part). With m members per group it holds
    ``network^2 / m`` of network noise in expectation.

    Parameters
    ----------
    means : array-like of shape (n_members, n_samples)
    variances : array-like of shape (n_members, n_samples) or None
        Member variances (None: members without their own, photon part zero).
    groups : array-like of shape (n_members,)
        The group of each member; every group must have equally many.

    Returns
    -------
    sklearn.utils.Bunch
        ``photon_std``, ``network_std`` (NaN with one member per group),
        ``physics_std``, each of shape (n_samples,), and
        ``members_per_group`` (int).

    Raises
    ------
    ValueError
        ``groups`` not one label per member, or groups of unequal sizes.
    """
    means = np.asarray(means, dtype=np.float64)
    mean, photon, _ = mixture_moments(means, variances)
    groups = np.asarray(groups)
    if groups.shape != means.shape[:1]:
        raise ValueError(f"groups must hold one label per member ({means.shape[0]}), got shape {groups.shape}")
    labels, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if np.any(counts != counts[0]):
        raise ValueError(f"every group needs equally many members; got {dict(zip(labels.tolist(), counts.tolist()))}")
    per_group = int(counts[0])
    group_means = np.stack([means[inverse == k].mean(axis=0) for k in range(labels.size)])
    within = np.mean([((means[inverse == k] - group_means[k]) ** 2).mean(axis=0)
                      for k in range(labels.size)], axis=0)
    physics = ((group_means - mean) ** 2).mean(axis=0)
    network = np.sqrt(within) if per_group > 1 else np.full_like(mean, np.nan)
    return Bunch(photon_std=np.sqrt(photon), network_std=network, physics_std=np.sqrt(physics),
                 members_per_group=per_group)
