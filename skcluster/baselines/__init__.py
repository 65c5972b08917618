"""Scalar-observable baselines: the mass proxies astronomers use today.

The CNN ensemble must beat these on the same held-out clusters. One concept
per module:

* :mod:`~skcluster.baselines.apertures`: aperture photometry on counts
  cubes and event lists (ring profiles, background annulus, net counts,
  PSF correction).
* :mod:`~skcluster.baselines.r500`: r500 of a cluster from its own counts,
  a fixed point of the L_X-M relation (iteration, then bisection).
* :mod:`~skcluster.baselines.observables`: :class:`ScalarObservables`,
  which adds the observables (counts, rates, L_X, flux, hardness ratios)
  as columns of a :class:`~skcluster.ClusterSample`.
* :mod:`~skcluster.baselines.features`: :class:`ColumnsToArray` and
  :func:`redshift_terms`, chosen columns as a 2-D array for any
  scikit-learn regressor.
* :mod:`~skcluster.baselines.scaling`: :class:`ScalingRelationRegressor`,
  a power law in log space with redshift terms (the "traditional"
  count-rate method of Krippendorf et al. 2023, arXiv:2305.00016, in the
  relation form of Chiu et al. 2022, A&A 661, A11).
* :mod:`~skcluster.baselines.boosting`:
  :class:`GradientBoostingMassRegressor`, boosted trees on all scalar
  observables plus redshift, the strong non-linear baseline.
* :mod:`~skcluster.baselines.factory`: :func:`make_baseline` (the
  standard pipelines by name) and :func:`count_rate_method`.

The published relations used by the observables (:data:`LM_RELATION_EFEDS`,
:data:`MT_RELATION_ARNAUD05`, :data:`MASS_PIVOT_MSUN`) live in
:mod:`skcluster.physics.relations` and are re-exported here.

Typical use::

    pipe = make_baseline("count_rate")         # ScalarObservables -> scaling relation
    pipe.fit(X_train, y_train)                 # X: ClusterSample with images, z, exposure
    mean, std = pipe.predict(X_test, return_std=True)   # log10 M500c / Msun, dex
"""

from ..physics.relations import LM_RELATION_EFEDS, MASS_PIVOT_MSUN, MT_RELATION_ARNAUD05
from .boosting import GradientBoostingMassRegressor
from .factory import BASELINE_NAMES, count_rate_method, make_baseline
from .features import ColumnsToArray, catalog_scalars, redshift_terms
from .observables import FLAGS, OBSERVABLE_BANDS_KEV, OBSERVABLE_SCALARS, ScalarObservables
from .scaling import ScalingRelationRegressor

__all__ = [
    "LM_RELATION_EFEDS",
    "MT_RELATION_ARNAUD05",
    "MASS_PIVOT_MSUN",
    "FLAGS",
    "OBSERVABLE_BANDS_KEV",
    "OBSERVABLE_SCALARS",
    "ScalarObservables",
    "ColumnsToArray",
    "catalog_scalars",
    "ScalingRelationRegressor",
    "GradientBoostingMassRegressor",
    "redshift_terms",
    "make_baseline",
    "count_rate_method",
    "BASELINE_NAMES",
]
