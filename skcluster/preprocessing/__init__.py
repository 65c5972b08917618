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

:func:`make_preprocessing` returns the standard chain as a
:class:`~sklearn.pipeline.Pipeline` with steps ``bin``, ``resize``,
``smooth``, ``scale``, ``join``.
"""

from .bands import BAND_PRESETS, resolve_bands
from .binning import BandBinner, bin_events
from .cutout import ImageCutout
from .domain import DomainFlagger
from .joining import RedshiftJoiner
from .masking import PointSourceMasker, mask_events
from .pipeline import STEP_NAMES, make_preprocessing
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
    "STEP_NAMES",
    "annulus_index",
    "bin_events",
    "make_preprocessing",
    "mask_events",
    "overlap_matrix",
    "resize_images",
    "resolve_bands",
]
