"""skcluster: galaxy-cluster masses from eROSITA X-ray data with machine learning.

A scikit-learn toolkit for inferring cluster masses (log10 M500c / Msun) from
eROSITA images or event lists with deep ensembles of convolutional networks,
after Krippendorf et al. 2023 (arXiv:2305.00016) and Ho et al. 2023
(arXiv:2303.00005), with a built-in physics-based mock survey to train on
and scalar-observable baselines to compare against.

Every public name is imported on first use, so that ``import skcluster``
does not import torch (joblib workers that only simulate, bin or fit
baselines start quickly) and the command line answers ``--help`` at once.
"""

__version__ = "0.1.0"

#: Public name -> module that defines it. Everything is imported on first
#: use, so that ``import skcluster`` (and ``skcluster --help``) stays fast
#: and does not import torch, scikit-learn or astropy until they are needed.
_LAZY = {
    "CutoutError": "skcluster.exceptions",
    "DataFormatError": "skcluster.exceptions",
    "IncompleteCutoutWarning": "skcluster.exceptions",
    "SkclusterWarning": "skcluster.exceptions",
    "ClusterSample": "skcluster.sample",
    "as_sample": "skcluster.sample",
    "BandBinner": "skcluster.preprocessing",
    "CountScaler": "skcluster.preprocessing",
    "GaussianSmoother": "skcluster.preprocessing",
    "ImageCutout": "skcluster.preprocessing",
    "RadialProfile": "skcluster.preprocessing",
    "RedshiftJoiner": "skcluster.preprocessing",
    "Resizer": "skcluster.preprocessing",
    "make_preprocessing": "skcluster.models",
    "ColumnsToArray": "skcluster.baselines",
    "GradientBoostingMassRegressor": "skcluster.baselines",
    "ScalarObservables": "skcluster.baselines",
    "ScalingRelationRegressor": "skcluster.baselines",
    "make_baseline": "skcluster.baselines",
    "MassCalibratedRegressor": "skcluster.calibration",
    "RecalibratedRegressor": "skcluster.calibration",
    "CNNRegressor": "skcluster.nn",
    "DeepEnsembleRegressor": "skcluster.ensemble",
    "EnsembleFitError": "skcluster.ensemble",
    "predict_catalog": "skcluster.predict",
    "MassModel": "skcluster.workflow",
    "read_training_set": "skcluster.workflow",
    "train_mass_model": "skcluster.workflow",
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
    "RadialProfile",
    "MassCalibratedRegressor",
    "MassModel",
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
    "predict_catalog",
    "read_training_set",
    "train_mass_model",
]
