"""Reading and writing real eROSITA products.

* :mod:`~skcluster.io.events`: eSASS ``EVENTS`` tables, the standard
  filters, and per-cluster event cut-outs (offsets in arcsec, energy in keV).
* :mod:`~skcluster.io.images`: evtool count images and expmap exposure maps
  with their ``RA---SIN`` WCS, and cut-outs around clusters.
* :mod:`~skcluster.io.catalog`: cluster catalogues (FITS, CSV, ECSV).
* :mod:`~skcluster.io.point_sources`: point-source catalogues, and the
  sources in each cluster's box.
* :mod:`~skcluster.io.erass1`: the eRASS1 DR1 cluster catalogue as published.
* :mod:`~skcluster.io.training`: training sets from your own simulations (a
  truth catalogue and event files of any layout).
"""

from .catalog import check_redshift, find_column, read_catalog, read_table, write_table
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
from .point_sources import POINT_SOURCE_DTYPE, point_sources_around, read_point_sources
from .erass1 import read_erass1_catalog
from .training import read_training_set
from .images import BandImageStack, Cutout, SkyImage, band_from_filename, read_image

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
    "read_training_set",
    "write_events",
    "write_table",
]
