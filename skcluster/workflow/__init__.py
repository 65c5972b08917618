"""From files to masses: the workflow between the estimators and the command line.

* :func:`read_training_set`: a truth catalogue with event files or band
  images into a training sample;
* :func:`train_mass_model`: what ``skcluster train`` does (the mock or your
  clusters, the calibration set, the prior), from Python;
* :class:`MassModel`: a fitted mass model with its parts named, predicting
  through its own ``predict``;
* :mod:`~skcluster.workflow.observations`: the one reader of observations
  (band-to-file matching, exposures, event boxes, clusters without data)
  that training and :func:`skcluster.predict_catalog` share.
"""

from .model import MassModel
from .training import read_training_set

__all__ = ["MassModel", "read_training_set", "train_mass_model"]


def __getattr__(name):
    if name == "train_mass_model":  # imports the estimators (torch) only when asked for
        from .train import train_mass_model

        return train_mass_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
