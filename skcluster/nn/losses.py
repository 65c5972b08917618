"""Gaussian negative log likelihood, optionally beta-weighted."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GaussianNLLLoss", "gaussian_nll"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_nll(mean, var, target, beta=0.0, full=True):
    """Per-sample Gaussian negative log likelihood, optionally beta-weighted.

    ``0.5 * (log var + (target - mean)**2 / var) [+ 0.5 log 2 pi]``, each term
    multiplied by ``var.detach() ** beta`` when ``beta > 0`` (the beta-NLL of
    Seitzer et al. 2022, ICLR, arXiv:2203.09168: beta = 0 is the plain NLL,
    beta = 1 gives the mean the gradient of a squared error; 0.5 is their
    recommended compromise).

    Parameters
    ----------
    mean, var, target : torch.Tensor of the same shape
        Predicted mean, predicted variance (> 0) and the target.
    beta : float, default=0.0
    full : bool, default=True
        Include the constant 0.5 log(2 pi), so the numbers are true NLLs.

    Returns
    -------
    nll : torch.Tensor, same shape as ``mean``
    """
    nll = 0.5 * (torch.log(var) + (target - mean) ** 2 / var)
    if full:
        nll = nll + _HALF_LOG_2PI
    if beta:
        nll = nll * var.detach() ** beta
    return nll


class GaussianNLLLoss(nn.Module):
    """Mean Gaussian NLL of ``(mean, var)`` against a target (see :func:`gaussian_nll`).

    Parameters
    ----------
    beta : float, default=0.0
        beta-NLL weight exponent (0: plain NLL).
    full : bool, default=True
        Include the constant 0.5 log(2 pi).

    Notes
    -----
    ``forward(mean, var, target, weighted=True, sample_weight=None)``: with
    ``weighted=False`` the plain NLL is returned whatever ``beta`` is; the
    regressor uses that for the validation loss, so early stopping always
    watches the likelihood. ``sample_weight`` (one non-negative weight per
    sample, normalised by the caller to a mean of one over the training set)
    multiplies each sample's NLL before the mean: the importance-weighted
    risk, whose expectation is the NLL under the reweighted population
    (Shimodaira 2000, J. Stat. Plan. Inference 90, 227).
    """

    def __init__(self, beta=0.0, full=True):
        super().__init__()
        self.beta = float(beta)
        self.full = bool(full)

    def forward(self, mean, var, target, weighted=True, sample_weight=None):
        beta = self.beta if weighted else 0.0
        nll = gaussian_nll(mean, var, target, beta=beta, full=self.full)
        if sample_weight is not None:
            nll = nll * sample_weight.to(nll.dtype).reshape(nll.shape)
        return nll.mean()

    def extra_repr(self):
        return f"beta={self.beta}, full={self.full}"
