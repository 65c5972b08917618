"""Knowing when a model is out of its depth (:class:`DomainFlagger`).

A model trained on one range of redshift, depth and photon counts has no
say outside it. :class:`DomainFlagger` sits right after the step that makes
the counts cube (``bin`` or an image cut-out) and, in ``fit``, records the
range of each quantity over the training clusters (the ``quantile`` and
``1 - quantile`` points, widened by ``margin`` of the span, in log10 for
the positive quantities that span decades: z, exposure, 1 + counts, the
background level and N_H); in
``transform`` it passes the sample on with two more columns:

* ``in_domain`` (bool): every quantity of the cluster inside its range, and
  at least one photon in the box;
* ``domain_reason`` (str): ``""`` when in domain, else the reasons, e.g.
  ``"no photons; z=5 above 1.52"``.

The quantities: ``z``; ``exposure`` (s) where the sample has it; the total
counts in the cube; the background level (mean counts per pixel per second
of exposure in the outer ring of the box, where the cluster contributes
least); the Galactic N_H (``nh``, cm^-2) where the sample has it (a
model trained at one N_H has never seen another's absorption); and the
cut-out ``coverage`` where the sample has it. A
prediction for a flagged cluster is not a measurement: the package's
prediction paths give such clusters no mass (NaN) and say why.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._validation import check_positive_number
from ._base import ImageStepMixin

__all__ = ["DomainFlagger", "DOMAIN_QUANTITIES"]

#: The quantities checked, in the order reasons are given.
DOMAIN_QUANTITIES = ("z", "exposure", "counts", "background", "nh", "coverage")
#: Quantities whose range is recorded in log10(1 + value) or log10(value):
#: positive quantities spanning decades, whose margin should be relative.
_LOG1P = ("counts",)
_LOG = ("z", "exposure", "background", "nh")
#: Least half-width of a recorded range, in the scaled units: a Galactic N_H that was one value in
#: training (the eFEDS mock's 3e20 cm^-2) is matched to 0.02 dex, about the precision of N_H maps.
_MIN_PAD = {"nh": 0.02}


def _scale(name, v):
    with np.errstate(divide="ignore", invalid="ignore"):
        if name in _LOG1P:
            return np.log10(1.0 + v)
        if name in _LOG:
            return np.where(v > 0, np.log10(v), -np.inf)
    return v


def _unscale(name, v):
    if name in _LOG1P:
        return 10.0**v - 1.0
    if name in _LOG:
        return 10.0**v
    return v


def _outer_ring(shape, fraction=0.2):
    """Mask of the pixels in the outer ``fraction`` of the box's half-width."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    r = np.maximum(np.abs(yy - cy) / (h / 2.0), np.abs(xx - cx) / (w / 2.0))
    return r >= 1.0 - fraction


def domain_quantities(X, images):
    """The quantities of :data:`DOMAIN_QUANTITIES` present in the sample (float64 arrays)."""
    n = images.shape[0]
    total = images.reshape(n, -1).sum(axis=1, dtype=np.float64)
    out = {"z": np.asarray(X["z"], dtype=np.float64), "counts": total}
    ring = _outer_ring(images.shape[2:])
    ring_mean = images[:, :, ring].sum(axis=1, dtype=np.float64).mean(axis=1)
    if "exposure" in X:
        exposure = np.asarray(X["exposure"], dtype=np.float64)
        out["exposure"] = exposure
        with np.errstate(divide="ignore", invalid="ignore"):
            out["background"] = np.where(exposure > 0, ring_mean / exposure, np.nan)
    if "nh" in X:
        out["nh"] = np.asarray(X["nh"], dtype=np.float64)
    if "coverage" in X:
        out["coverage"] = np.asarray(X["coverage"], dtype=np.float64)
    return out


class DomainFlagger(ImageStepMixin, TransformerMixin, BaseEstimator):
    """Flag clusters outside the training domain (module notes).

    Parameters
    ----------
    quantile : float, default=0.005
        The recorded range of each quantity runs from this quantile of the
        training clusters to ``1 - quantile``.
    margin : float, default=0.1
        The range is widened by this fraction of its span on each side
        (the model's response does not end abruptly at the last training
        cluster).
    min_coverage : float, default=0.9
        Clusters whose cut-out covers less of the box are out of domain
        whatever the training set held (a partly empty box is not a cluster
        the network has seen).

    Attributes
    ----------
    ranges_ : dict
        ``{quantity: (low, high)}`` of the quantities the training sample
        had, in their own units (z, s, counts, counts/pixel/s, cm^-2, fraction).
    n_bands_, image_shape_, bands_keV_
        The image contract.
    """

    _keeps_images = True

    def __init__(self, quantile=0.005, margin=0.1, min_coverage=0.9):
        self.quantile = quantile
        self.margin = margin
        self.min_coverage = min_coverage

    def _check_params(self):
        step = self._step
        if not (0.0 <= float(self.quantile) < 0.5):
            raise ValueError(f"{step}: quantile must be in [0, 0.5), got {self.quantile!r}")
        check_positive_number(self.margin, "margin", step, allow_zero=True)
        check_positive_number(self.min_coverage, "min_coverage", step)

    def fit(self, X, y=None):
        """Record the training range of each quantity."""
        self._check_params()
        X, images = self._images_of(X)
        X.require("z", step=self._step)
        self._record_images(X, images)
        q = float(self.quantile)
        self.ranges_ = {}
        for name, v in domain_quantities(X, images).items():
            t = _scale(name, v)
            t = t[np.isfinite(t)]
            if t.size == 0:
                continue
            lo, hi = np.quantile(t, [q, 1.0 - q])
            pad = max(float(self.margin) * (hi - lo), _MIN_PAD.get(name, 0.0))
            self.ranges_[name] = (float(_unscale(name, lo - pad)), float(_unscale(name, hi + pad)))
        return self

    def transform(self, X):
        """The sample with ``in_domain`` and ``domain_reason`` added."""
        self._check_params()
        X, images = self._images_of(X)
        X.require("z", step=self._step)
        self._check_images(X, images)
        values = domain_quantities(X, images)
        n = images.shape[0]
        reasons = [[] for _ in range(n)]
        for i in np.flatnonzero(values["counts"] <= 0):
            reasons[i].append("no photons")
        if "coverage" in values:
            for i in np.flatnonzero(~(values["coverage"] >= float(self.min_coverage))):
                reasons[i].append(f"cut-out coverage {values['coverage'][i]:.2f} below {self.min_coverage:g}")
        for name in DOMAIN_QUANTITIES:
            if name not in values or name not in self.ranges_:
                continue
            lo, hi = self.ranges_[name]
            v = values[name]
            for i in np.flatnonzero(~np.isfinite(v)):
                reasons[i].append(f"{name} not finite")
            for i in np.flatnonzero(v < lo):
                reasons[i].append(f"{name}={v[i]:.4g} below {lo:.4g}")
            for i in np.flatnonzero(v > hi):  # (NaN compares false: reported as not finite)
                reasons[i].append(f"{name}={v[i]:.4g} above {hi:.4g}")
        reason = np.array(["; ".join(r) for r in reasons], dtype=object)
        return X.assign(in_domain=np.array([not r for r in reasons], dtype=bool), domain_reason=reason)
