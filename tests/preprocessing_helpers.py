"""Small hand-made inputs for the preprocessing tests (no mock survey needed)."""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

from skcluster import ClusterSample
from skcluster.io import EVENT_DTYPE, ORIGIN_BACKGROUND, ORIGIN_CLUSTER


def synthetic_sample(n=24, n_bkg=300, size_arcmin=20.0, seed=0):
    """Clusters whose counts grow with mass, on a flat background.

    Returns ``(X, y)``: a ClusterSample with ``events``, ``z``, ``exposure``,
    ``ra``, ``dec`` and y = log10 M. Background events fall on a box 10%
    larger than ``size_arcmin`` (some are outside) over 0.2-10 keV; cluster
    photons are a Gaussian blob of 40 arcsec with E ~ 0.2 + Exp(1 keV).
    """
    rng = np.random.default_rng(seed)
    y = rng.uniform(13.5, 15.0, n)
    z = rng.uniform(0.1, 0.8, n)
    exposure = rng.uniform(800.0, 2000.0, n)
    half = 30.0 * size_arcmin * 1.1
    events = np.empty(n, dtype=object)
    for i in range(n):
        n_cl = rng.poisson(60.0 * 10 ** (1.0 * (y[i] - 14.0)) * exposure[i] / 1200.0)
        nb = rng.poisson(n_bkg)
        ev = np.empty(n_cl + nb, dtype=EVENT_DTYPE)
        ev["x_arcsec"][:n_cl] = rng.normal(0, 40.0, n_cl)
        ev["y_arcsec"][:n_cl] = rng.normal(0, 40.0, n_cl)
        ev["energy_keV"][:n_cl] = 0.2 + rng.exponential(1.0, n_cl)
        ev["origin"][:n_cl] = ORIGIN_CLUSTER
        ev["x_arcsec"][n_cl:] = rng.uniform(-half, half, nb)
        ev["y_arcsec"][n_cl:] = rng.uniform(-half, half, nb)
        ev["energy_keV"][n_cl:] = np.exp(rng.uniform(np.log(0.2), np.log(10.0), nb))
        ev["origin"][n_cl:] = ORIGIN_BACKGROUND
        events[i] = ev
    X = ClusterSample(
        events=events, z=z, exposure=exposure,
        ra=rng.uniform(130, 150, n), dec=rng.uniform(-2, 6, n),
    )
    return X, y


class FlatRidge(RegressorMixin, BaseEstimator):
    """A stand-in for the CNN: ridge regression on flattened images + scalars."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def _features(self, X):
        images = np.asarray(X["images"])
        return np.hstack([images.reshape(len(images), -1), np.asarray(X["scalars"])])

    def fit(self, X, y):
        self.ridge_ = Ridge(alpha=self.alpha).fit(self._features(X), y)
        return self

    def predict(self, X):
        return self.ridge_.predict(self._features(X))
