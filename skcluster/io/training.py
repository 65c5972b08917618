"""Training sets from your own simulations: a truth catalogue plus event files or images.

A sky simulated with SIXTE (Dauser et al. 2019, A&A 630, A66) from a
hydrodynamical light-cone, or any other simulation, trains a model through
the same readers as real data: a catalogue with positions, redshifts and
true masses, and either eSASS-format event files (any number of clusters
per file, any file names) or evtool-style band images with exposure maps.
:func:`read_training_set` cuts each cluster's box out of every event file
(a cluster near a file's edge gets its events from all files that cover
it), or out of the band images with
:class:`skcluster.preprocessing.ImageCutout`, and returns the sample and
target that :func:`skcluster.models.make_mass_pipeline` trains on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table
from sklearn.utils import Bunch

from .catalog import find_column, read_catalog, read_table
from .events import DR1_FLAG_MASK, EVENT_DTYPE, cutout_events, read_events
from .images import band_from_filename
from .point_sources import point_sources_around

__all__ = ["MASS_NAMES", "read_training_set"]

#: Mass columns tried, case-insensitively, when none is named.
MASS_NAMES = ("log10_m500", "m500", "m500c", "m500_true", "mass")
#: Exposure columns tried, case-insensitively, when none is named.
EXPOSURE_NAMES = ("exposure", "exposure_s", "texp", "exp_time")
_MASS_UNITS = ("auto", "Msun", "log10Msun", "1e14Msun")


def _log10_mass(values, unit, name):
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v) | (v <= 0)
    if np.any(bad):
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"mass column {name!r} must be finite and > 0; rows {rows} are not")
    if unit == "auto":
        if np.all((v > 10.0) & (v < 17.0)):
            unit = "log10Msun"
        elif np.all(v > 1e10):
            unit = "Msun"
        else:
            raise ValueError(
                f"cannot tell the unit of mass column {name!r} (values {v.min():.3g}..{v.max():.3g}): "
                f"pass mass_unit as one of {_MASS_UNITS[1:]}")
    if unit == "log10Msun":
        return v
    if unit == "Msun":
        return np.log10(v)
    if unit == "1e14Msun":
        return np.log10(v) + 14.0
    raise ValueError(f"mass_unit must be one of {_MASS_UNITS}, got {unit!r}")


def _order_by_bands(files, bands, what):
    """``files`` in the order of ``bands`` when their names carry bands, else as given."""
    from ..preprocessing.bands import format_bands, same_bands

    files = list(files)
    found = [band_from_filename(f) for f in files]
    if bands is None or any(b is None for b in found):
        return files
    ordered = []
    for band in bands:
        hits = [f for f, b in zip(files, found) if same_bands([band], [b])]
        if len(hits) != 1:
            raise ValueError(
                f"{len(hits) or 'no'} {what} for the band {band[0]:g}-{band[1]:g} keV among "
                f"{format_bands(found)} (bands read from the file names); give one file per band "
                f"of {format_bands(bands)}")
        ordered.append(hits[0])
    if len(files) != len(bands):
        raise ValueError(f"{len(files)} {what} ({format_bands(found)}) for the {len(bands)} bands "
                         f"{format_bands(bands)}; give exactly one per band")
    return ordered


def read_training_set(catalog, events=None, mass_col=None, mass_unit="auto", ra=None, dec=None, z=None,
                      exposure_col=None, exposure_seconds=None, size_arcmin=20.0, point_sources=None,
                      pattern_types=(1, 2, 3, 4), flag_mask=DR1_FLAG_MASK, allow_empty=False,
                      images=None, exposures=None, bands_keV=None, npix=None,
                      exposure_vignetting="vignetted"):
    """Read a truth catalogue and event files (or band images) into a training sample.

    Parameters
    ----------
    catalog : path-like or astropy.table.Table
        Positions (deg), redshifts and true masses; columns found by the
        usual names or named below.
    events : path-like or sequence of path-like, default=None
        eSASS ``EVENTS`` files (``RA``, ``DEC``, ``PI`` in eV), each covering
        any number of clusters. Give ``events`` or ``images``, not both.
    mass_col : str, default=None
        The true-mass column (tried: ``log10_M500``, ``M500``, ``M500c``, ...).
    mass_unit : {"auto", "Msun", "log10Msun", "1e14Msun"}, default="auto"
        ``"auto"``: log10 if every value is in (10, 17), Msun if every value
        exceeds 1e10, else an error asking for the unit.
    ra, dec, z : str, default=None
        Column names (see :func:`skcluster.io.read_catalog`).
    exposure_col : str, default=None
        Vignetted exposure at each cluster, s (tried: ``exposure``, ...),
        when there are no exposure maps.
    exposure_seconds : float, default=None
        One exposure for every cluster instead of a column or maps.
    size_arcmin : float, default=20.0
        Side of each cluster's box, arcmin.
    point_sources : path-like or table, default=None
        A point-source catalogue to mask (:func:`skcluster.io.read_point_sources`);
        adds the ``point_sources`` column.
    pattern_types, flag_mask
        Event filters (:func:`skcluster.io.read_events`); ``pattern_types=None``
        and ``flag_mask=None`` keep every event (simulations often have no
        ``PAT_TYP`` or ``FLAG`` columns).
    allow_empty : bool, default=False
        Keep clusters with no event in any file (otherwise an error names
        them: a box outside every file is almost always a mistake).
    images : sequence of path-like, default=None
        Band images on one pixel grid with a celestial WCS, one per band
        (evtool layout, :class:`skcluster.io.BandImageStack`); each cluster
        is cut out with :class:`skcluster.preprocessing.ImageCutout` (a box
        running off the images is padded and flagged, one wholly off them
        is an error).
    exposures : sequence of path-like, default=None
        Exposure maps (s), one per band or one for all, on the grid of the
        images. Each cluster's exposure is taken from them (the median
        within 1 arcmin of the cluster in the band containing 1 keV), and
        the ``complete`` and ``coverage`` columns tell whether its box lies
        wholly on exposed pixels. With ``events`` they give the exposure
        and the flags only.
    bands_keV : str or sequence of (float, float), default=None
        Bands of ``images`` (and of several ``exposures``). When every file
        name carries its band (``img_0300_0600.fits``) the files are put in
        this order (an error names a band without a file); otherwise the
        files are taken to be in this order. None: bands from the names.
    npix : int, default=None
        Pixels per side of the image cut-outs (None: the images' native
        pixels); the counts are rebinned conserving flux.
    exposure_vignetting : {"vignetted", "unvignetted"} or float, default="vignetted"
        What the exposure maps hold (:class:`~skcluster.preprocessing.ImageCutout`).

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (ClusterSample with ``events``, or ``images`` (float32, counts,
        (n, n_bands, npix, npix)), ``z``, ``exposure``, ``ra``, ``dec``;
        ``complete`` and ``coverage`` with exposure maps, ``point_sources``
        if given; meta ``size_arcmin``, and ``bands_keV``, ``pixel_arcsec``
        and ``image_unit`` for images), ``y`` (log10 M500 / Msun),
        ``catalog`` (the table as read).

    Notes
    -----
    A sample of events trains :func:`skcluster.models.make_mass_pipeline`
    as it is. A sample of images is already cut in its bands, box and
    pixels, so the pipeline's binning step is skipped for the fit: build it
    with the images' bands, ``size_arcmin`` and ``npix``, fit
    ``pipe.set_params(bin="passthrough")``, then put the binner back
    (``skcluster train --images`` does this), and the fitted model predicts
    from event lists, or from images with an
    :class:`~skcluster.preprocessing.ImageCutout` in place of the binner.
    """
    if (events is None) == (images is None):
        raise ValueError("give event files (events=) or band images (images=), one of the two")
    if images is not None and point_sources is not None:
        raise ValueError("point_sources are masked in event lists; with images, mask them before "
                         "making the images")
    if exposures is not None and (exposure_seconds is not None or exposure_col is not None):
        raise ValueError("give exposure maps (exposures=) or exposure_col / exposure_seconds, not both")
    table = catalog if isinstance(catalog, Table) else read_table(catalog)
    sample = read_catalog(table, ra=ra, dec=dec, z=z)
    m_name = find_column(table, MASS_NAMES, mass_col, "true-mass")
    y = _log10_mass(table[m_name], mass_unit, m_name)
    n = len(y)
    if exposures is not None or images is not None:
        return _from_images(table, sample, y, events, images, exposures, bands_keV, npix, size_arcmin,
                            exposure_col, exposure_seconds, exposure_vignetting, pattern_types,
                            flag_mask, allow_empty, point_sources)
    exposure = _exposure_of(table, n, exposure_col, exposure_seconds)
    X = _events_sample(sample, events, exposure, size_arcmin, pattern_types, flag_mask, allow_empty,
                       point_sources)
    return Bunch(X=X, y=y, catalog=table)


def _exposure_of(table, n, exposure_col, exposure_seconds):
    """The catalogue's exposure column, or ``exposure_seconds`` for every row."""
    if exposure_seconds is not None:
        exposure = np.full(n, float(exposure_seconds))
    else:
        try:
            e_name = find_column(table, EXPOSURE_NAMES, exposure_col, "exposure")
        except KeyError as exc:
            raise KeyError(f"{exc.args[0]}; or pass exposure_seconds") from None
        exposure = np.asarray(table[e_name], dtype=np.float64)
    if not np.all(np.isfinite(exposure) & (exposure > 0)):
        rows = np.flatnonzero(~(np.isfinite(exposure) & (exposure > 0)))[:5].tolist()
        raise ValueError(f"exposure must be finite and > 0 seconds; rows {rows} are not")
    return exposure


def _events_sample(sample, events, exposure, size_arcmin, pattern_types, flag_mask, allow_empty,
                   point_sources, extra=None):
    """Each cluster's events cut out of every file."""
    n = len(sample)
    paths = [events] if isinstance(events, (str, Path)) else list(events)
    if not paths:
        raise ValueError("no event files given")
    parts = [[] for _ in range(n)]
    filters = pattern_types is not None or flag_mask is not None
    for path in paths:
        ev = read_events(path, apply_filters=filters, pattern_types=pattern_types, flag_mask=flag_mask)
        for i, box in enumerate(cutout_events(ev, sample["ra"], sample["dec"], size_arcmin)):
            if len(box):
                parts[i].append(box)
    boxes = np.empty(n, dtype=object)
    empty = []
    for i, p in enumerate(parts):
        boxes[i] = np.concatenate(p) if p else np.zeros(0, EVENT_DTYPE)
        if not p:
            empty.append(i)
    if empty and not allow_empty:
        raise ValueError(
            f"{len(empty)} cluster(s) have no event in any of the {len(paths)} event file(s) "
            f"(rows {empty[:5]}{' ...' if len(empty) > 5 else ''}); check the positions and files, "
            "or pass allow_empty=True")
    columns = dict(events=boxes, z=sample["z"], exposure=exposure, ra=sample["ra"], dec=sample["dec"])
    if point_sources is not None:
        columns["point_sources"] = point_sources_around(point_sources, sample["ra"], sample["dec"],
                                                        size_arcmin, exposure=exposure)
    columns.update(extra or {})
    return type(sample)(meta={"size_arcmin": float(size_arcmin)}, **columns)


def _from_images(table, sample, y, events, images, exposures, bands_keV, npix, size_arcmin,
                 exposure_col, exposure_seconds, exposure_vignetting, pattern_types, flag_mask,
                 allow_empty, point_sources):
    """The image path (and the exposure maps of the event path), through ImageCutout."""
    import warnings

    from ..preprocessing import ImageCutout
    from ..preprocessing.bands import resolve_bands

    bands = None if bands_keV is None else resolve_bands(bands_keV)
    n = len(y)
    if images is not None:
        images = [images] if isinstance(images, (str, Path)) else list(images)
        if not images:
            raise ValueError("images is empty; give one band image per band")
        images = _order_by_bands(images, bands, "band images")
    if exposures is not None:
        exposures = [exposures] if isinstance(exposures, (str, Path)) else list(exposures)
        if not exposures:
            raise ValueError("exposures is empty; give one exposure map per band or one for all")
        if len(exposures) > 1:
            exposures = _order_by_bands(exposures, bands, "exposure maps")
    if images is None:  # events: the maps give each cluster's exposure and the box's flags
        maps = ImageCutout(images=exposures, exposures=exposures, size_arcmin=size_arcmin, npix=1,
                           bands_keV=None if len(exposures) == 1 else bands,
                           exposure_vignetting=exposure_vignetting, verbose=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the flags are returned as columns
            got = maps.fit_transform(sample)
        exposure = _checked_exposure(got["exposure"], "the exposure maps")
        X = _events_sample(sample, events, exposure, size_arcmin, pattern_types, flag_mask, allow_empty,
                           point_sources, extra={"complete": got["complete"], "coverage": got["coverage"]})
        return Bunch(X=X, y=y, catalog=table)
    if exposures is None:
        base = sample.assign(exposure=_exposure_of(table, n, exposure_col, exposure_seconds))
    else:
        base = sample
    cut = ImageCutout(images=images, exposures=exposures, size_arcmin=size_arcmin, npix=npix,
                      bands_keV=bands, exposure_vignetting=exposure_vignetting, verbose=False)
    X = cut.fit_transform(base)
    _checked_exposure(X["exposure"], "the exposure maps" if exposures is not None else "the catalogue")
    if not allow_empty:
        empty = np.flatnonzero(X["images"].sum(axis=(1, 2, 3), dtype=np.float64) == 0)
        if empty.size:
            raise ValueError(
                f"{empty.size} cluster(s) have no counts in their box of the band images (rows "
                f"{empty[:5].tolist()}{' ...' if empty.size > 5 else ''}); check the positions and "
                "files, or pass allow_empty=True")
    return Bunch(X=X, y=y, catalog=table)


def _checked_exposure(exposure, where):
    exposure = np.asarray(exposure, dtype=np.float64)
    bad = ~(np.isfinite(exposure) & (exposure > 0))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{rows.size} cluster(s) have no exposure in {where} (rows {rows[:5].tolist()}"
            f"{' ...' if rows.size > 5 else ''}): a box off the exposed sky cannot train a model")
    return exposure
