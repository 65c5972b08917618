"""Observations from files, one way for training and prediction.

:func:`~skcluster.workflow.read_training_set` (training) and
:func:`skcluster.predict_catalog` (prediction) read their clusters' data
through these functions, so they accept and refuse the same inputs:

* files are checked to exist (:func:`existing_files`);
* band images and exposure maps are matched to bands by one rule
  (:func:`match_band_files`);
* each cluster's exposure follows one rule
  (:func:`skcluster.io.exposure.resolve_exposure`: maps, seconds or a
  column; finite and >= 0, 0 meaning unexposed);
* event boxes are cut out of every event list (:func:`event_boxes`), band
  images through :class:`~skcluster.preprocessing.ImageCutout`;
* a cluster without data (:func:`no_data_reasons`: unexposed, no photons)
  gets no mass in prediction and is left out of training, with a warning
  naming it; a set of clusters none of which is exposed is refused
  (:func:`check_some_exposed`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import EVENT_DTYPE, POINT_SOURCE_DTYPE, band_from_filename, cutout_events, find_column
from ..io.catalog import column_numbers
from ..io.exposure import EXPOSURE_NAMES, exposure_source, resolve_exposure
from ..preprocessing.bands import format_bands, resolve_bands, same_bands

__all__ = ["check_some_exposed", "existing_files", "match_band_files", "exposure_of", "event_boxes", "sources_around",
           "empty_sources", "no_data_reasons"]


def existing_files(files, what):
    """``files`` as a list, each checked to exist (FileNotFoundError names a missing one)."""
    files = [files] if isinstance(files, (str, Path)) else list(files)
    if not files:
        raise ValueError(f"no {what} given")
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{what[:-1] if what.endswith('s') else what} not found: {str(f)!r}")
    return files


def match_band_files(files, what, *, bands=None, target=None, target_name="the model was trained on"):
    """The one band-to-file rule: ``files`` ordered as the ``target`` bands, with their bands.

    Each file's band is read from its name (``img_0300_0600.fits``: 0.3-0.6
    keV) when every name carries one (``bands``, if given, must then be the
    same bands, in any order); otherwise ``bands`` gives the files' bands in
    their order. The files are then put in the order of ``target``
    (default: ``bands``, else as given), exactly one per band.

    Parameters
    ----------
    files : sequence of path-like
    what : str
        The files in messages ("band images", "exposure maps").
    bands : str or sequence of (float, float), default=None
        The bands given by the caller (a preset or keV pairs).
    target : sequence of (float, float), default=None
        The bands wanted, in order (a model's); None: ``bands``.
    target_name : str
        Who wants ``target``, in messages.

    Returns
    -------
    (list, list of (float, float))
        The files and their bands, in the target order.

    Raises
    ------
    ValueError
        A file whose band cannot be told, a count that does not match, a
        band without a file or with several, a file of a band not wanted.
    """
    files = list(files)
    given = None if bands is None else resolve_bands(bands)
    named = [band_from_filename(f) for f in files]
    if all(b is not None for b in named):
        found = named
        if given is not None and not same_bands(sorted(given), sorted(found)):
            raise ValueError(f"bands= says the {what} hold {format_bands(given)}, their file names say "
                             f"{format_bands(found)}")
    elif given is not None:
        if len(given) != len(files):
            raise ValueError(f"bands= lists {len(given)} bands but {len(files)} {what} were given")
        found = given
    else:
        f = files[named.index(None)]
        raise ValueError(f"cannot tell the energy band of {str(f)!r} from its name (expected e.g. "
                         "img_0300_0600.fits for 0.3-0.6 keV); pass bands= in the order of the files")
    if target is None:
        target, target_name = (found, None) if given is None else (given, "bands= asks for")
    target = [tuple(float(v) for v in b) for b in target]
    missing = [t for t in target if not any(same_bands([t], [b]) for b in found)]
    extra = [b for b in found if not any(same_bands([b], [t]) for t in target)]
    if missing and extra:
        raise ValueError(f"{target_name} other bands than the {what} provide: {format_bands(target)}; "
                         f"{what} {format_bands(found)}")
    if missing:
        raise ValueError(f"missing {what} for the band(s) {format_bands(missing)}: {target_name} "
                         f"{format_bands(target)}, the {what} given cover {format_bands(found)}")
    if extra:
        raise ValueError(f"{target_name} the bands {format_bands(target)}, but the {what} also hold "
                         f"{format_bands(extra)}; give exactly one file per band")
    ordered = []
    for t in target:
        hits = [f for f, b in zip(files, found) if same_bands([t], [b])]
        if len(hits) > 1:
            raise ValueError(f"several {what} for the band {t[0]:g}-{t[1]:g} keV: {', '.join(map(str, hits))}")
        ordered.append(hits[0])
    return ordered, target


def exposure_of(table, n, *, exposure_seconds=None, exposure_col=None, maps_given=False):
    """Each cluster's exposure (s) from ``exposure_seconds`` or a catalogue column, or None with maps.

    Without any source, a column of the usual names (:data:`~skcluster.io.exposure.EXPOSURE_NAMES`)
    is used; a ``ValueError`` says how to give one otherwise.
    """
    source = exposure_source("maps" if maps_given else None, exposure_seconds, exposure_col)
    if source == "maps":
        return None
    if source == "seconds":
        return resolve_exposure(n, seconds=exposure_seconds)
    try:
        col = find_column(table, EXPOSURE_NAMES, exposure_col, "exposure")
    except KeyError as exc:
        if exposure_col is not None:
            raise
        raise ValueError(f"no exposure: give exposure maps (exposures=), exposure_seconds= or "
                         f"exposure_col= ({exc.args[0]})") from None
    return resolve_exposure(n, column=column_numbers(table[col], col), where=f"column {col!r}")


def check_some_exposed(exposure):
    """Refuse a set of clusters none of which is exposed (every exposure 0): no cluster has data."""
    if exposure is None:
        return
    e = np.asarray(exposure, dtype=np.float64)
    if e.size and not np.any(e > 0):
        raise ValueError(f"all {e.size} clusters have no exposure (exposure 0: unexposed); check the exposure "
                         "maps, column or positions")


def event_boxes(event_lists, ra, dec, size_arcmin):
    """Each cluster's events (``EVENT_DTYPE`` offsets) cut out of every one of ``event_lists``."""
    n = len(ra)
    parts = [[] for _ in range(n)]
    for ev in event_lists:
        for i, box in enumerate(cutout_events(ev, ra, dec, size_arcmin)):
            if len(box):
                parts[i].append(box)
    boxes = np.empty(n, dtype=object)
    for i, p in enumerate(parts):
        boxes[i] = np.concatenate(p) if p else np.zeros(0, EVENT_DTYPE)
    return boxes


def sources_around(sources, sample, size_arcmin):
    """The point sources of the catalogue ``sources`` in each cluster's box (unexposed: none expected)."""
    from ..io import point_sources_around

    expo = np.asarray(sample["exposure"], dtype=np.float64) if "exposure" in sample else None
    if expo is not None:
        expo = np.where(np.isfinite(expo) & (expo > 0), expo, 0.0)
    return point_sources_around(sources, sample["ra"], sample["dec"], size_arcmin, exposure=expo)


def empty_sources(n):
    """``n`` empty point-source lists."""
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = np.zeros(0, POINT_SOURCE_DTYPE)
    return out


def no_data_reasons(sample):
    """Per cluster, why it has no data (a list, empty where it has): unexposed, no photons."""
    n = len(sample)
    reasons = [[] for _ in range(n)]
    if "exposure" in sample:
        e = np.asarray(sample["exposure"], dtype=np.float64)
        for i in np.flatnonzero(~(e > 0)):
            reasons[i].append("no exposure")
    if "images" in sample:
        flat = np.asarray(sample["images"]).reshape(n, -1)
        finite = np.isfinite(flat).all(axis=1)
        negative = finite & (flat < 0).any(axis=1)
        for i in np.flatnonzero(~finite):  # (said as what they are, not as "no photons")
            reasons[i].append("non-finite (NaN or infinite) pixel values")
        for i in np.flatnonzero(negative):
            reasons[i].append("negative pixel values")
        counts = np.where(finite & ~negative, flat.sum(axis=1, dtype=np.float64), 1.0)
    elif "events" in sample:
        counts = np.array([len(e) for e in sample["events"]], dtype=np.float64)
    else:
        counts = np.ones(n)
    for i in np.flatnonzero(~(counts > 0)):
        reasons[i].append("no photons")
    return reasons
