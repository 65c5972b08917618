"""Preprocessing transformers: from events or images to the network's input.

Each step is a scikit-learn transformer on a :class:`~skcluster.ClusterSample`
that reads the columns it needs and adds or replaces its output, passing the
rest through (docs/architecture.md):

==============================  ===================================================
:class:`PointSourceMasker`      ``events`` with detected point sources masked
:class:`BandBinner`             ``events`` -> ``images`` counts cube (mock data)
:class:`DomainFlagger`          ``in_domain``, ``domain_reason``: outside the training range
:class:`ImageCutout`            ``ra``, ``dec`` + evtool FITS images -> ``images``,
                                ``exposure``, ``complete``, ``coverage`` (real data)
:class:`RadialProfile`          ``profile``: log surface brightness in annuli (all bands)
:class:`Resizer`                flux-conserving resize to (H, W)
:class:`GaussianSmoother`       Gaussian smoothing, optionally across bands
:class:`CountScaler`            counts/s, log or asinh stretch, standardisation
:class:`RedshiftJoiner`         -> ``images`` + ``scalars``, the network's input
==============================  ===================================================

:func:`skcluster.models.make_preprocessing` returns the standard chain as a
:class:`~sklearn.pipeline.Pipeline` with steps ``bin``, ``resize``,
``smooth``, ``scale``, ``join`` (it moved there from this subpackage, whose
steps it puts together with the baselines' ``observables`` step;
``skcluster.preprocessing.make_preprocessing`` still finds it, with a
``FutureWarning``).
"""

from .bands import BAND_PRESETS, resolve_bands
from .binning import BandBinner, bin_events
from .cutout import ImageCutout
from .domain import DomainFlagger
from .joining import RedshiftJoiner
from .masking import PointSourceMasker, mask_events
from .profile import RadialProfile, annulus_index
from .resize import Resizer, overlap_matrix, resize_images
from .scaling import CountScaler
from .smooth import GaussianSmoother

__all__ = [
    "BAND_PRESETS",
    "BandBinner",
    "CountScaler",
    "DomainFlagger",
    "GaussianSmoother",
    "ImageCutout",
    "PointSourceMasker",
    "RadialProfile",
    "RedshiftJoiner",
    "Resizer",
    "annulus_index",
    "bin_events",
    "mask_events",
    "overlap_matrix",
    "resize_images",
    "resolve_bands",
]


def __getattr__(name):
    # moved up to skcluster.models (it puts the baselines' observables step in the chain); the one
    # upward import docs/architecture.md allows here, until the old names are removed
    if name in ("make_preprocessing", "STEP_NAMES"):
        import warnings

        warnings.warn(f"skcluster.preprocessing.{name} moved to skcluster.models.{name}; the old name will "
                      "stop working in a future release", FutureWarning, stacklevel=2)
        from .. import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
