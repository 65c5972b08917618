"""Neural networks: the CNN module, the skorch regressor, augmentation and losses.

* :class:`ClusterCNN`: the torch module (conv blocks on the band cube, the
  scalars concatenated into the first dense layer, mean and variance heads).
* :class:`CNNRegressor`: the :class:`skorch.NeuralNetRegressor` around it,
  with a Gaussian NLL, early stopping on a shuffled validation split,
  augmentation, mixed precision, and ``predict(X, return_std=True)``.
* :mod:`~skcluster.nn.augment`: batched rotations/flips, Poisson
  resampling, Gaussian input noise, input scalings.
* :func:`make_toy_sample`: a toy sample whose images depend on the target,
  for tests, examples and benchmarks (not physics).
"""

from ._data import make_toy_sample
from .augment import add_gaussian_noise, dihedral, poisson_resample, random_dihedral
from .losses import GaussianNLLLoss, gaussian_nll
from .module import ClusterCNN, SeededDropout
from .regressor import CNNRegressor

__all__ = [
    "CNNRegressor",
    "ClusterCNN",
    "GaussianNLLLoss",
    "SeededDropout",
    "add_gaussian_noise",
    "dihedral",
    "gaussian_nll",
    "make_toy_sample",
    "poisson_resample",
    "random_dihedral",
]
