"""What the mass networks look at: saliency, integrated gradients, and their summaries.

Attributions are computed with respect to the *network input*: the
``images`` cube that :class:`~skcluster.preprocessing.RedshiftJoiner` hands
to ``forward(images, scalars)`` (binned, resized, smoothed, exposure
corrected, log-stretched and standardised by the standard pipeline), for
the network's predicted mean of y = log10 M500c / Msun in dex. For a
fitted :class:`~sklearn.pipeline.Pipeline` ending in a network, ``X`` is the
pipeline's input and ``pipeline[:-1].transform(X)`` is explained.

* :func:`saliency`: abs(d mean / d pixel), the saliency map of Simonyan et al.
  2014 (arXiv:1312.6034) that Ho et al. 2023 (arXiv:2303.00005, Sect. 5)
  used to show that their CNNs ignore cluster cores and AGN. For a deep
  ensemble the members' saliency maps are averaged (``absolute=False``
  gives the signed gradient of the ensemble mean instead).
* :func:`integrated_gradients`: Sundararajan et al. 2017 (arXiv:1703.01365),
  (x - x0) times the path integral of the gradient from a baseline x0 to
  x. Attributions add up to f(x) - f(x0) (completeness), and are linear in
  the model, so the ensemble's attribution is the mean of the members'.
  Baselines: ``"zeros"`` (the all-zero standardised cube: every pixel at
  its band's training mean of the stretched count rate, a featureless
  image at about the background level), ``"background"`` (the cube the
  pipeline makes from the background photons alone, ``origin == 0``: the
  same sky without the cluster and its AGN; needs the mock's event lists
  and a pipeline), or an explicit array.
* :func:`radial_profile`: azimuthal averages in units of r500, stacked over
  clusters; :func:`band_importance`; :func:`origin_images` and
  :func:`origin_importance` (pixels dominated by AGN, cluster or
  background photons, compared at the same radius);
  :func:`explain_predictions` runs all of them and states whether the core
  and the AGN are down-weighted relative to their photons.

Everything runs in batches on float32 tensors (no float64 copy of a cube)
and in float32 arithmetic by default (``autocast="bfloat16"`` is faster on
AMX CPUs but makes the gradients coarse).

The package is split by concept: :mod:`~skcluster.explain.attribution`
(saliency, integrated gradients), :mod:`~skcluster.explain.profiles`
(radial profiles, core weight, band shares), :mod:`~skcluster.explain.origins`
(photon origins of the mock) and :mod:`~skcluster.explain.report`
(:func:`explain_predictions`); every public name is importable from
``skcluster.explain`` itself.
"""

from __future__ import annotations

from ._network import network_input, network_members
from .attribution import integrated_gradients, saliency
from .origins import ORIGIN_NAMES, origin_images, origin_importance
from .profiles import DEFAULT_R500_BINS, band_importance, core_weight, pixel_radius, radial_profile
from .report import explain_predictions

__all__ = [
    "DEFAULT_R500_BINS",
    "ORIGIN_NAMES",
    "band_importance",
    "core_weight",
    "explain_predictions",
    "integrated_gradients",
    "network_members",
    "network_input",
    "origin_images",
    "origin_importance",
    "pixel_radius",
    "radial_profile",
    "saliency",
]
