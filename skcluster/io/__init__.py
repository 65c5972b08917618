"""Reading and writing real eROSITA products.

* :mod:`~skcluster.io.events`: eSASS ``EVENTS`` tables, the standard
  filters, and per-cluster event cut-outs (offsets in arcsec, energy in keV).
* :mod:`~skcluster.io.images`: evtool count images and expmap exposure maps
  with their ``RA---SIN`` WCS, and cut-outs around clusters.
* :mod:`~skcluster.io.catalog`: cluster catalogues (FITS, CSV, ECSV).
* :mod:`~skcluster.io.point_sources`: point-source catalogues, and the
  sources in each cluster's box.
* :mod:`~skcluster.io.erass1`: the eRASS1 DR1 cluster catalogue as published.
* :mod:`~skcluster.io.exposure`: the one rule for each cluster's exposure
  (maps, seconds or a column).

Training sets from your own simulations are read by
:func:`skcluster.workflow.read_training_set` (``skcluster.io.read_training_set``
still finds it, with a ``FutureWarning``).
"""

from .catalog import check_redshift, find_column, read_catalog, read_table, write_table
from .erass1 import read_erass1_catalog
from .events import (
    DR1_FLAG_MASK,
    EVENT_DTYPE,
    ORIGIN_AGN,
    ORIGIN_BACKGROUND,
    ORIGIN_CLUSTER,
    ORIGIN_UNKNOWN,
    cutout_events,
    events_to_offsets,
    filter_events,
    make_events,
    offsets_to_events_table,
    read_events,
    write_events,
)
from .images import BandImageStack, Cutout, SkyImage, band_from_filename, read_image
from .point_sources import POINT_SOURCE_DTYPE, point_sources_around, read_point_sources

__all__ = [
    "BandImageStack",
    "Cutout",
    "DR1_FLAG_MASK",
    "EVENT_DTYPE",
    "ORIGIN_AGN",
    "ORIGIN_BACKGROUND",
    "ORIGIN_CLUSTER",
    "ORIGIN_UNKNOWN",
    "POINT_SOURCE_DTYPE",
    "SkyImage",
    "band_from_filename",
    "check_redshift",
    "cutout_events",
    "events_to_offsets",
    "filter_events",
    "find_column",
    "make_events",
    "offsets_to_events_table",
    "point_sources_around",
    "read_catalog",
    "read_erass1_catalog",
    "read_events",
    "read_image",
    "read_point_sources",
    "read_table",
    "write_events",
    "write_table",
]


def __getattr__(name):
    # moved up to the workflow layer (it cuts images out with preprocessing's ImageCutout); the one
    # upward import docs/architecture.md allows, until the old name is removed
    if name == "read_training_set":
        import warnings

        warnings.warn("skcluster.io.read_training_set moved to skcluster.workflow.read_training_set; the old "
                      "name will stop working in a future release", FutureWarning, stacklevel=2)
        from ..workflow.training import read_training_set

        return read_training_set
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
