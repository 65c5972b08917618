"""Training sets from your own simulations: a truth catalogue plus event files or images.

A sky simulated with SIXTE (Dauser et al. 2019, A&A 630, A66) from a
hydrodynamical light-cone, or any other simulation, trains a model through
the same readers as real data (:mod:`skcluster.workflow.observations`, which
:func:`skcluster.predict_catalog` reads through too): a catalogue with
positions, redshifts and true masses, and either eSASS-format event files
(any number of clusters per file, any file names) or evtool-style band
images with exposure maps. :func:`read_training_set` cuts each cluster's box
out of every event file (a cluster near a file's edge gets its events from
all files that cover it), or out of the band images with
:class:`skcluster.preprocessing.ImageCutout`, and returns the sample and
target that :func:`skcluster.workflow.train_mass_model` trains on.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.table import Table
from sklearn.utils import Bunch

from .._deprecate import renamed_keyword
from .._validation import rows_text
from ..exceptions import IncompleteCutoutWarning, SkclusterWarning
from ..io import DR1_FLAG_MASK, find_column, read_catalog, read_events, read_table
from ..io.exposure import EXPOSURE_NAMES, exposure_source
from .observations import (
    check_some_exposed,
    event_boxes,
    existing_files,
    exposure_of,
    match_band_files,
    no_data_reasons,
)

__all__ = ["MASS_NAMES", "EXPOSURE_NAMES", "read_training_set"]

#: Mass columns tried, case-insensitively, when none is named.
MASS_NAMES = ("log10_m500", "m500", "m500c", "m500_true", "mass")
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


@renamed_keyword(bands_keV="bands")
def read_training_set(catalog, events=None, mass_col=None, mass_unit="auto", ra=None, dec=None, z=None,
                      exposure_col=None, exposure_seconds=None, size_arcmin=20.0, point_sources=None,
                      pattern_types=(1, 2, 3, 4), flag_mask=DR1_FLAG_MASK, allow_empty=False,
                      images=None, exposures=None, bands=None, npix=None,
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
        Keep clusters with no photon in their box (otherwise an error names
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
    bands : str or sequence of (float, float), default=None
        Bands of ``images`` (and of several ``exposures``), matched to the
        files by :func:`~skcluster.workflow.observations.match_band_files`
        (as :func:`skcluster.predict_catalog` matches them): when every file
        name carries its band (``img_0300_0600.fits``) the files are put in
        this order; otherwise the files are taken to be in this order.
        None: bands from the names. (Formerly ``bands_keV``, still accepted
        with a ``FutureWarning``.)
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
        ``catalog`` (the table as read) and ``rows`` (the catalogue rows in
        ``X``: clusters with an exposure of 0 are left out, with a warning,
        as :func:`skcluster.predict_catalog` gives them no mass).

    Notes
    -----
    A sample of events trains :func:`skcluster.models.make_mass_pipeline`
    as it is; a sample of images trains through
    :func:`skcluster.workflow.train_mass_model` (or ``skcluster train
    --images``), which fits the steps after the binner on the cut-outs and
    keeps the binner, so the model predicts from event lists, or from images
    with an :class:`~skcluster.preprocessing.ImageCutout` in place of the
    binner.
    """
    if (events is None) == (images is None):
        raise ValueError("give event files (events=) or band images (images=), one of the two")
    if images is not None and point_sources is not None:
        raise ValueError("point_sources are masked in event lists; with images, mask them before "
                         "making the images")
    exposure_source(exposures, exposure_seconds, exposure_col)
    for files, what in ((events, "event files"), (images, "band images"), (exposures, "exposure maps")):
        if files is not None:
            existing_files(files, what)
    table = catalog if isinstance(catalog, Table) else read_table(catalog)
    sample = read_catalog(table, ra=ra, dec=dec, z=z)
    m_name = find_column(table, MASS_NAMES, mass_col, "true-mass")
    y = _log10_mass(table[m_name], mass_unit, m_name)
    n = len(y)
    exposure = exposure_of(table, n, exposure_seconds=exposure_seconds, exposure_col=exposure_col,
                           maps_given=exposures is not None)
    if exposure is not None:
        sample = sample.assign(exposure=exposure)
    if exposures is not None:
        exposures = existing_files(exposures, "exposure maps")
        if len(exposures) > 1:
            exposures, _ = match_band_files(exposures, "exposure maps", bands=bands)
    if images is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ran off the image.*")  # said once, below
            X = _from_images(sample, images, exposures, bands, npix, size_arcmin, exposure_vignetting)
    else:
        if exposures is not None:
            sample = _exposure_from_maps(sample, exposures, bands, size_arcmin, exposure_vignetting)
        X = _events_sample(sample, events, size_arcmin, pattern_types, flag_mask, point_sources)
    _warn_incomplete(X)
    return _with_data(X, y, table, allow_empty)


def _warn_incomplete(X):
    """One warning naming the training boxes that run off the exposed sky (from the maps' flags)."""
    if "complete" not in X:
        return
    bad = np.flatnonzero(~np.asarray(X["complete"], bool) | (np.asarray(X["coverage"]) < 1))
    if bad.size:
        warnings.warn(f"{bad.size} of {len(X)} training box(es) run off the exposed sky ({rows_text(bad)}); "
                      "they are padded (images) or partly empty (events)", IncompleteCutoutWarning, stacklevel=3)


def _exposure_from_maps(sample, maps, bands, size_arcmin, vignetting):
    """``sample`` with each cluster's exposure, ``complete`` and ``coverage`` from the maps."""
    from ..preprocessing import ImageCutout

    cut = ImageCutout(images=maps, exposures=maps, size_arcmin=size_arcmin, npix=1,
                      bands_keV=None if len(maps) == 1 or bands is None else match_band_files(
                          maps, "exposure maps", bands=bands)[1],
                      exposure_vignetting=vignetting, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the flags are returned as columns
        got = cut.fit_transform(sample)
    return sample.assign(exposure=got["exposure"], complete=got["complete"], coverage=got["coverage"])


def _events_sample(sample, events, size_arcmin, pattern_types, flag_mask, point_sources):
    """Each cluster's events cut out of every file."""
    paths = existing_files(events, "event files")
    filters = pattern_types is not None or flag_mask is not None
    lists = (read_events(p, apply_filters=filters, pattern_types=pattern_types, flag_mask=flag_mask)
             for p in paths)
    X = sample.assign(events=event_boxes(lists, sample["ra"], sample["dec"], size_arcmin),
                      meta={"size_arcmin": float(size_arcmin)})
    if point_sources is not None:
        from .observations import sources_around

        X = X.assign(point_sources=sources_around(point_sources, X, size_arcmin))
    return X


def _from_images(sample, images, exposures, bands, npix, size_arcmin, exposure_vignetting):
    """The image path, through ImageCutout."""
    from ..preprocessing import ImageCutout

    images = existing_files(images, "band images")
    images, found = match_band_files(images, "band images", bands=bands)
    cut = ImageCutout(images=images, exposures=exposures, size_arcmin=size_arcmin, npix=npix,
                      bands_keV=found, exposure_vignetting=exposure_vignetting, verbose=False)
    return cut.fit_transform(sample)


def _with_data(X, y, table, allow_empty):
    """The training set of the clusters with data: unexposed ones left out, empty ones refused."""
    reasons = no_data_reasons(X)
    unexposed = np.flatnonzero(["no exposure" in r for r in reasons])
    empty = np.flatnonzero([r == ["no photons"] for r in reasons])
    if empty.size and not allow_empty:
        where = ("no event in any of the event files" if "events" in X
                 else "no counts in their box of the band images")
        raise ValueError(f"{empty.size} cluster(s) have {where} ({rows_text(empty)}); check the positions "
                         "and files, or pass allow_empty=True")
    rows = np.arange(len(y))
    if unexposed.size:
        check_some_exposed(X["exposure"])
        warnings.warn(f"{unexposed.size} of {len(y)} cluster(s) have no exposure ({rows_text(unexposed)}) and "
                      "are left out of training (predict_catalog gives such clusters no mass)",
                      SkclusterWarning, stacklevel=3)
        rows = np.setdiff1d(rows, unexposed)
        X, y = X[rows], y[rows]
    return Bunch(X=X, y=y, catalog=table, rows=rows)
