"""A physics-marginalised training set: several mock realisations, each with its own physics draw.

:func:`make_marginalised_survey` draws the uncertain physics
(:mod:`.physics_prior`) ``n_draws`` times, simulates a share of the clusters
under each draw and stacks them; every cluster's ``physics_draw`` column says
which draw it comes from, so that a
:class:`~skcluster.ensemble.DeepEnsembleRegressor` with
``member_groups="physics_draw"`` trains each member on one draw's clusters
only, and its spread carries the physics uncertainty.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .._validation import check_positive_int
from .parameters import resolve_parameters
from .physics_prior import (
    DEFAULT_PHYSICS_PRIOR,
    PhysicsPrior,
    _check_width,
    buildable_draw,
    buildable_pair,
    physics_record,
)
from .survey import _entropy, make_depth_balanced_survey, make_survey, stack_surveys

__all__ = ["make_marginalised_survey", "physics_record"]   # physics_record: re-exported from physics_prior


def make_marginalised_survey(survey="efeds", n_clusters=None, n_draws=6, prior=None, width=1.0, depth_strata=1,
                             antithetic=True, random_state=None, n_jobs=None, verbose=True, **overrides):
    """A mock survey marginalised over the uncertain physics: ``n_draws`` realisations, stacked.

    Realisation k draws its physics once from ``prior``
    (:func:`~skcluster.datasets.draw_physics`) and simulates its share of
    the clusters under it (:func:`~skcluster.datasets.make_survey`, or
    :func:`~skcluster.datasets.make_depth_balanced_survey` with
    ``depth_strata`` > 1); the clusters are stacked in draw order. A draw
    whose physics the mock cannot build (an L_X scatter below what the drawn
    core radii, beta and cool-core mixture alone give: about 1 in 5 draws
    of the default prior, mostly Sersic-profile ones) is drawn again from the same stream, so the draws
    follow the prior restricted to the physics the mock can build
    (``bunch.draw_tries`` says how many each took).

    With ``antithetic`` (the default) the draws come in pairs mirrored
    about the prior's centre (:func:`~skcluster.datasets.physics_prior.buildable_pair`;
    an odd ``n_draws`` ends with one plain draw): an ensemble with one
    member per draw then has its mean at the centre's numbers to first
    order, instead of off it by the random spread of a few draws (with 5
    plain draws and a physics std of 0.06 dex per member, the mean's own
    offset is about 0.06 / sqrt(5) = 0.03 dex). Use an even ``n_draws``.
    The prior's chosen forms (profile, PSF, mass function) do not average
    out that way: the two halves of a pair take different forms, and the
    mean sits at the prior's mixture of forms, not at the preset's.

    Parameters
    ----------
    survey : str or SurveyParameters, default="efeds"
        The preset whose other physics every draw keeps.
    n_clusters : int
        Clusters in all, split as evenly as possible over the draws (the
        first draws get the remainder). A multiple of ``n_draws`` gives
        draws of equal size, which a vectorised ensemble needs to train one
        member per draw at once (otherwise its members train one by one).
    n_draws : int, default=6
        Physics draws (mock realisations), at most ``n_clusters``. Even,
        with ``antithetic``: every draw then has its mirror (with the mass
        function the prior's only choice of form, 5 draws, 4 in pairs and one
        plain, put an ensemble's mean 0.011 dex further from the truth than
        the fixed model's on the preset, paired [0.008, 0.014], and 6 draws
        0.004 [-0.001, +0.008]; with the profile and PSF chosen too, 6 draws
        put it 0.014 [0.010, 0.017] further on the preset and 0.013 [0.000,
        0.016] nearer on draws of the prior: ``benchmarks/physics_family.py``).
    prior : PhysicsPrior, default=None
        What is drawn (None: :data:`~skcluster.datasets.DEFAULT_PHYSICS_PRIOR`).
    width : float, default=1.0
        Scales every range of the prior about its centre
        (:func:`~skcluster.datasets.draw_physics`; 0: every draw at the centres).
    depth_strata : int, default=1
        > 1: each draw is a depth-balanced survey of this many bins of log
        exposure (``survey`` must draw exposures log-uniform, e.g. ``"erosita"``).
    antithetic : bool, default=True
        Draws 2j and 2j + 1 mirrored about the prior's centre; False: every
        draw independent.
    random_state : int, numpy Generator/RandomState/SeedSequence or None, default=None
        Seeds everything: each draw gets two seeds spawned from it, one for
        its physics (a mirrored pair uses its first draw's) and one for its
        clusters.
    n_jobs, verbose
        As :func:`~skcluster.datasets.make_survey`.
    **overrides
        Parameters of :class:`~skcluster.datasets.SurveyParameters` fixed for
        every draw; they win over the drawn values.

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``X`` : ClusterSample, with an integer ``physics_draw`` column (the
        draw of each cluster, 0 to ``n_draws - 1``) and ``meta["physics"]``,
        the record of :func:`physics_record` (the prior with its fixed
        values, the width, each draw's ranged parameters as used, overrides
        included, and the functional forms each draw was simulated with).
        ``y`` : ndarray of shape (n_clusters,), log10 M500c / Msun.
        ``catalog`` : astropy.table.Table with a ``physics_draw`` column.
        ``params`` : SurveyParameters without any draw (the preset and ``overrides``).
        ``physics_draws`` : list of dict, the physics of each draw, the
        prior's fixed forms included.
        ``draw_tries`` : list of int, the draws each realisation took to find
        buildable physics (1: the first; both draws of a mirrored pair
        give the number of pairs it took).
        ``prior``, ``width``, ``entropy`` (the root seed), ``area_deg2``
        (ndarray, per draw), ``DESCR``.

    Raises
    ------
    ValueError
        ``n_draws`` not a positive integer at most ``n_clusters``, a
        negative or non-finite ``width``, a prior none of whose first
        :data:`~skcluster.datasets.physics_prior.MAX_DRAW_TRIES` draws the mock can build; the errors of
        :func:`~skcluster.datasets.make_survey`.
    TypeError
        ``prior`` not a :class:`~skcluster.datasets.PhysicsPrior`.

    Examples
    --------
    >>> from skcluster.datasets import make_marginalised_survey
    >>> data = make_marginalised_survey(n_clusters=300, n_draws=3, random_state=0)   # doctest: +SKIP
    >>> np.bincount(data.X["physics_draw"]), data.physics_draws[0]["lx_slope"]        # doctest: +SKIP
    """
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    n_draws = check_positive_int(n_draws, "n_draws")
    depth_strata = check_positive_int(depth_strata, "depth_strata")
    if n_draws > n_clusters:
        raise ValueError(f"n_draws={n_draws} is more than n_clusters={n_clusters}: every draw needs clusters")
    prior = DEFAULT_PHYSICS_PRIOR if prior is None else prior
    if not isinstance(prior, PhysicsPrior):
        raise TypeError(f"prior must be a PhysicsPrior (or None for the default), got {type(prior).__name__}")
    width = _check_width(width)
    if not isinstance(antithetic, (bool, np.bool_)):
        raise TypeError(f"antithetic must be True or False, got {antithetic!r}")
    params = resolve_parameters(survey, **overrides)  # fails early on bad overrides
    counts = np.full(n_draws, n_clusters // n_draws)
    counts[: n_clusters % n_draws] += 1
    entropy = _entropy(random_state)
    parts, draws, tries, mirror = [], [], [], None
    for k, child in enumerate(np.random.SeedSequence(entropy).spawn(n_draws)):
        physics_seed, data_seed = child.spawn(2)
        rng = np.random.default_rng(physics_seed)
        if mirror is not None:   # the second of a pair
            draw, mirror = mirror, None
        elif antithetic and k + 1 < n_draws:
            (draw, mirror), n_tries = buildable_pair(prior, rng, survey, overrides, width)
        else:
            draw, n_tries = buildable_draw(prior, rng, survey, overrides, width)
        tries.append(n_tries)
        draws.append({name: overrides.get(name, value) for name, value in draw.items()})
        if verbose:
            print(f"[make_marginalised_survey] physics draw {k + 1}/{n_draws}: {int(counts[k])} clusters",
                  flush=True)
        kw = dict(random_state=data_seed, n_jobs=n_jobs, verbose=verbose, **{**draw, **overrides})
        parts.append(make_depth_balanced_survey(int(counts[k]), n_strata=depth_strata, survey=survey, **kw)
                     if depth_strata > 1 else make_survey(survey, n_clusters=int(counts[k]), **kw))
    X, y, catalog = stack_surveys(parts, "physics_draw")
    record = physics_record(prior, width, draws, survey, overrides)
    X = X.assign(physics_draw=np.asarray(catalog["physics_draw"], dtype=np.int64), meta={"physics": record})
    return Bunch(X=X, y=y, catalog=catalog, params=params, physics_draws=draws, draw_tries=tries, prior=prior,
                 width=width, entropy=entropy, area_deg2=np.array([np.sum(p.area_deg2) for p in parts]),
                 DESCR=f"{n_clusters} mock clusters in {n_draws} physics draws (width {width:g}) of the "
                       f"{survey if isinstance(survey, str) else 'custom'} survey "
                       "(skcluster.datasets.make_marginalised_survey)")
