"""A stand-in regressor that returns predictions saved by an earlier run (shared by the benchmark scripts)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class Stored(RegressorMixin, BaseEstimator):
    """A model's saved mean and std, read from a sample's ``mean`` and ``std`` columns.

    Wrapped in :class:`sklearn.frozen.FrozenEstimator`, it lets
    :class:`skcluster.calibration.MassCalibratedRegressor` fit a response on
    a finished run's predictions without training again.
    """

    def fit(self, X, y=None):
        return self

    def predict(self, X, return_std=False):
        mean, std = (np.asarray(X[k], dtype=np.float64) for k in ("mean", "std"))
        return (mean, std) if return_std else mean
