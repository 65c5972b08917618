"""The standard baselines by name, and the traditional count-rate method.

:func:`make_baseline` builds a :class:`~sklearn.pipeline.Pipeline`
``ScalarObservables -> regressor`` for each name of
:data:`BASELINE_NAMES`; :func:`count_rate_method` is the unfitted scaling
relation of the seed study on the catalogue's detection count rate.
"""

from __future__ import annotations

from sklearn.base import clone
from sklearn.pipeline import Pipeline

from .boosting import GradientBoostingMassRegressor
from .observables import ScalarObservables
from .scaling import ScalingRelationRegressor

__all__ = ["BASELINE_NAMES", "count_rate_method", "make_baseline"]

_SCALING = {
    "counts": "counts_ap",
    "counts_r500": "counts_r500",
    "counts_ce": "counts_ce",
    "lx": "lx_erg_s",
    "count_rate": "count_rate",
}

#: Names accepted by :func:`make_baseline`.
BASELINE_NAMES = tuple(_SCALING) + ("hardness_counts", "gbm_scalars")


def count_rate_method():
    """The traditional method of Krippendorf et al. 2023 (unfitted).

    The Chiu et al. 2022 count-rate relation form (E(z), D_L, (1+z) terms)
    on the column ``ml_rate``: the detection fit's count rate, counts/s in
    0.2-2.3 keV (eSASS ML_RATE; for the mock,
    ``skcluster.baselines.catalog_scalars(catalog)["ml_rate"]``).
    """
    return ScalingRelationRegressor(observable="ml_rate", redshift_terms=("E", "DL", "1+z"))


def make_baseline(name, *, observables=None, mask_point_sources=False, random_state=None, **regressor_params):
    """A standard baseline pipeline by name: ScalarObservables -> regressor.

    ========================  ===================================================
    ``counts``                scaling relation on net counts in the fixed aperture
                              (photon counts, Ho et al. 2023)
    ``counts_r500``           ... on net counts within the r500 estimate
    ``counts_ce``             ... on core-excised counts (0.15-1 r500)
    ``lx``                    ... on L_X (0.5-2 keV, rest frame), E(z) term
    ``count_rate``            ... on the count rate eta within r500, the
                              "traditional method" (Chiu et al. 2022 form)
    ``hardness_counts``       gradient boosting on counts, hardness ratios and z
    ``gbm_scalars``           gradient boosting on every observable, z, exposure
    ========================  ===================================================

    Parameters
    ----------
    name : str
        One of :data:`BASELINE_NAMES`.
    observables : ScalarObservables, default=None
        The measuring step (default settings when None); it is cloned.
    mask_point_sources : bool, default=False
        Put a :class:`~skcluster.preprocessing.PointSourceMasker` step
        ``mask`` first (the detected point sources of the ``point_sources``
        column, as the networks' ``make_mass_pipeline(mask_point_sources=True)``
        masks them), so that the observables do not count AGN photons.
    random_state : int or None, default=None
        For the gradient-boosting baselines.
    **regressor_params
        Passed to the regressor.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``observables`` and ``regressor`` (``mask`` first where asked for).
    """
    obs = clone(observables) if observables is not None else ScalarObservables()
    if name in _SCALING:
        reg = ScalingRelationRegressor(observable=_SCALING[name], **regressor_params)
    elif name == "hardness_counts":
        reg = GradientBoostingMassRegressor(columns=("counts_ap", "hr_*", "z"), random_state=random_state,
                                            **regressor_params)
    elif name == "gbm_scalars":
        reg = GradientBoostingMassRegressor(random_state=random_state, **regressor_params)
    else:
        raise ValueError(f"unknown baseline {name!r}; choose one of {list(BASELINE_NAMES)}")
    mask = []
    if mask_point_sources:
        from ..preprocessing import PointSourceMasker

        box = {} if obs.size_arcmin is None else {"size_arcmin": obs.size_arcmin}
        mask = [("mask", PointSourceMasker(**box))]
    return Pipeline(mask + [("observables", obs), ("regressor", reg)])
