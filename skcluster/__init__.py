"""skcluster: galaxy-cluster masses from eROSITA X-ray data with machine learning.

A scikit-learn toolkit for inferring cluster masses (log10 M500c / Msun) from
eROSITA images or event lists with deep ensembles of convolutional networks,
after Krippendorf et al. 2023 (arXiv:2305.00016) and Ho et al. 2023
(arXiv:2303.00005), with a built-in physics-based mock survey to train on
and scalar-observable baselines to compare against.
"""

__version__ = "0.1.0"

from .exceptions import (  # noqa: E402
    CutoutError,
    DataFormatError,
    IncompleteCutoutWarning,
    SkclusterWarning,
)
from .sample import ClusterSample, as_sample  # noqa: E402
from .ensemble import DeepEnsembleRegressor, EnsembleFitError  # noqa: E402
from .nn import CNNRegressor  # noqa: E402

__all__ = [
    "CNNRegressor",
    "ClusterSample",
    "CutoutError",
    "DataFormatError",
    "DeepEnsembleRegressor",
    "EnsembleFitError",
    "IncompleteCutoutWarning",
    "SkclusterWarning",
    "__version__",
    "as_sample",
]
