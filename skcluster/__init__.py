"""skcluster: galaxy-cluster masses from eROSITA X-ray data with machine learning.

A scikit-learn toolkit for inferring cluster masses (log10 M500c / Msun) from
eROSITA images or event lists with deep ensembles of convolutional networks,
after Krippendorf et al. 2023 (arXiv:2305.00016) and Ho et al. 2023
(arXiv:2303.00005), with a built-in physics-based mock survey to train on
and scalar-observable baselines to compare against.

The networks (``CNNRegressor``, ``DeepEnsembleRegressor``) are imported on
first use, so that ``import skcluster`` does not import torch: joblib workers
that only simulate, bin or fit baselines start quickly.
"""

__version__ = "0.1.0"

from .exceptions import (  # noqa: E402
    CutoutError,
    DataFormatError,
    IncompleteCutoutWarning,
    SkclusterWarning,
)
from .sample import ClusterSample, as_sample  # noqa: E402
from .preprocessing import (  # noqa: E402
    BandBinner,
    CountScaler,
    GaussianSmoother,
    ImageCutout,
    RedshiftJoiner,
    Resizer,
    make_preprocessing,
)
from .baselines import (  # noqa: E402
    ColumnsToArray,
    GradientBoostingMassRegressor,
    ScalarObservables,
    ScalingRelationRegressor,
    make_baseline,
)
from .calibration import RecalibratedRegressor  # noqa: E402

_LAZY = {
    "CNNRegressor": "skcluster.nn",
    "DeepEnsembleRegressor": "skcluster.ensemble",
    "EnsembleFitError": "skcluster.ensemble",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skcluster' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BandBinner",
    "CNNRegressor",
    "ClusterSample",
    "ColumnsToArray",
    "CountScaler",
    "CutoutError",
    "DataFormatError",
    "DeepEnsembleRegressor",
    "EnsembleFitError",
    "GaussianSmoother",
    "GradientBoostingMassRegressor",
    "ImageCutout",
    "IncompleteCutoutWarning",
    "RecalibratedRegressor",
    "RedshiftJoiner",
    "Resizer",
    "ScalarObservables",
    "ScalingRelationRegressor",
    "SkclusterWarning",
    "__version__",
    "as_sample",
    "make_baseline",
    "make_preprocessing",
]
