"""Neural networks: the CNN module, the skorch regressor, augmentation and losses.

* :class:`ClusterCNN`: the torch module (conv blocks on the band cube, the
  scalars concatenated into the first dense layer, mean and variance heads).
* :class:`CNNRegressor`: the :class:`skorch.NeuralNetRegressor` around it,
  with a Gaussian NLL, early stopping on a shuffled validation split,
  augmentation, mixed precision, and ``predict(X, return_std=True)``.
* :mod:`~skcluster.nn.augment`: batched rotations/flips, Poisson
  resampling, Gaussian input noise, input scalings.
* :class:`~skcluster.nn.stacked.StackedClusterCNN` and
  :mod:`~skcluster.nn.vectorised`: M networks as one (grouped or per-member
  convolutions, batched dense layers), used by
  :class:`~skcluster.ensemble.DeepEnsembleRegressor` to train and run its
  members together.
* :class:`~skcluster.nn.packed.PackedEnsembleRegressor`: a Packed-Ensemble
  (Laurent et al. 2023), M narrower members as grouped convolutions in one
  network, predicting their Gaussian mixture.
* :func:`training_flops`: FLOPs per cube of predicting and of training
  (torch's FLOP counter), the unit of the accuracy-per-FLOP benchmark.
* :func:`make_toy_sample`: a toy sample whose images depend on the target,
  for tests, examples and benchmarks (not physics).
"""

from ._data import make_toy_sample
from .augment import add_gaussian_noise, dihedral, poisson_resample, random_dihedral
from .flops import training_flops
from .losses import GaussianNLLLoss, gaussian_nll
from .module import ClusterCNN, SeededDropout
from .packed import PackedClusterCNN, PackedEnsembleRegressor
from .regressor import CNNRegressor
from .stacked import StackedClusterCNN

__all__ = [
    "CNNRegressor",
    "ClusterCNN",
    "GaussianNLLLoss",
    "PackedClusterCNN",
    "PackedEnsembleRegressor",
    "SeededDropout",
    "StackedClusterCNN",
    "add_gaussian_noise",
    "dihedral",
    "gaussian_nll",
    "make_toy_sample",
    "poisson_resample",
    "random_dihedral",
    "training_flops",
]
