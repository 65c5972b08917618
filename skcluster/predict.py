"""Masses for a catalogue of real clusters: :func:`predict_catalog`.

What ``skcluster predict`` does, as a function: a fitted mass pipeline (the
standard :func:`~skcluster.models.make_mass_pipeline`, or a model file), a
catalogue (ra, dec, z), and the eROSITA data (band images with exposure
maps, or event lists) give the catalogue back with the predicted
``log10_M500`` (log10 M500c / Msun) and its ``log10_M500_err`` (dex).

Each cluster is cut out in the model's box and bands (band images are
matched to the model's bands by their file names or ``bands``), detected
point sources are masked when a point-source catalogue is given (as the
mock survey masks its detected sources,
:class:`~skcluster.preprocessing.PointSourceMasker`), and the clusters are
predicted ``batch_size`` at a time, so memory stays bounded.

**Clusters without data get no mass.** A network returns a number for any
input, also for an empty box. A cluster is flagged (``in_domain`` False,
``domain_reason`` says why) and its mass is NaN when

* its box lies wholly off the images (``off the images``) or its exposure is
  zero (``no exposure``);
* its box holds no photon (``no photons``);
* its redshift lies outside the range the model was trained on;
* with a model that carries a fitted
  :class:`~skcluster.preprocessing.DomainFlagger` (right after its first
  step), any quantity the flagger checks lies outside its training range.

A model without a ``DomainFlagger`` records no training ranges; its
redshift range is then taken from its ``RedshiftJoiner`` (the training
mean of log(1 + z) plus or minus :data:`Z_RANGE_SD` standard deviations,
wide enough to hold every cluster of a mock survey), and only the cases
above are flagged. The table's metadata (``DOMAIN``) says which was used.
The other clusters are predicted as if they were alone.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ._validation import rows_text
from .io.exposure import exposure_source
from .workflow.observations import (
    check_some_exposed,
    empty_sources,
    event_boxes,
    existing_files,
    exposure_of,
    match_band_files,
    no_data_reasons,
    sources_around,
)

__all__ = ["predict_catalog", "MASS_COLUMNS", "STD_PART_COLUMNS", "Z_RANGE_SD"]

#: The columns :func:`predict_catalog` adds (before ``prefix``), in order.
MASS_COLUMNS = ("log10_M500", "log10_M500_err", "cutout_complete", "cutout_coverage",
                "in_domain", "domain_reason")
#: The parts of ``log10_M500_err`` that :func:`predict_catalog` adds after it for a
#: physics-marginalised model (``skcluster train --physics-marginalised``).
STD_PART_COLUMNS = ("log10_M500_err_photon", "log10_M500_err_network", "log10_M500_err_physics")

#: Without a fitted DomainFlagger, the training redshift range is the
#: training mean of log(1 + z) plus or minus this many standard deviations
#: (a mock survey of 1500 clusters reaches about 4 above its mean).
Z_RANGE_SD = 5.0

_DESCRIPTIONS = {
    "log10_M500": "predicted log10 M500c / Msun (skcluster); NaN where not in_domain",
    "log10_M500_err": "standard deviation of log10 M500c, dex (skcluster)",
    "log10_M500_err_photon": "part of log10_M500_err from the data's noise (the members' own std), dex",
    "log10_M500_err_network": "part of log10_M500_err from networks trained on the same physics disagreeing, dex",
    "log10_M500_err_physics": "part of log10_M500_err from the mock physics prior's spread (not the sky's "
                              "distance from it), dex",
    "cutout_complete": "cut-out box wholly on the data (else padded)",
    "cutout_coverage": "fraction of the box with data in every band",
    "in_domain": "the cluster is within what the model was trained on",
    "domain_reason": "why not in_domain (empty when in domain)",
}


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
def check_model(model):
    """The model's named parts (:class:`~skcluster.workflow.MassModel`); ValueError if it is not a mass model."""
    from .workflow.model import MassModel

    return MassModel(model)


def _z_range(parts):
    """(lo, hi) of the training redshifts where no DomainFlagger checks them, or None."""
    ranges = getattr(parts.flagger, "ranges_", None) or {}
    if "z" in ranges:
        return None  # the flagger checks z itself
    from .preprocessing import RedshiftJoiner

    for _, step in parts.network.steps:
        names = list(getattr(step, "scalar_names_", []) or [])
        if isinstance(step, RedshiftJoiner) and "log(1+z)" in names:
            k = names.index("log(1+z)")
            m, s = float(step.scalar_mean_[k]), float(step.scalar_scale_[k])
            return (max(float(np.expm1(m - Z_RANGE_SD * s)), 0.0),
                    float(np.expm1(m + Z_RANGE_SD * s)))
    return None


def _domain_note(parts):
    if parts.flagger is not None and getattr(parts.flagger, "ranges_", None):
        return ("training ranges of the model's DomainFlagger (" + ", ".join(parts.flagger.ranges_)
                + "), no photons, off the images or unexposed")
    note = "hard cases only (no photons, off the images or unexposed"
    if _z_range(parts) is not None:
        note += f", z beyond the training log(1+z) mean +- {Z_RANGE_SD:g} sd"
    return note + "): the model records no training ranges"


def _load(model):
    if isinstance(model, (str, Path)):
        from . import persist

        if not Path(model).is_file():
            raise FileNotFoundError(f"model file not found: {str(model)!r}")
        model = persist.load(model)
    return model


# ---------------------------------------------------------------------------
# files and bands
# ---------------------------------------------------------------------------
def _exposure_files(exposures, parts, bands):
    """Exposure maps ordered as the model's bands (or one map for all), or None."""
    if exposures is None:
        return None
    files = existing_files(exposures, "exposure maps")
    if len(files) == 1:
        return files
    return match_band_files(files, "exposure maps", bands=bands, target=parts.bands)[0]


def _off_image(stack, sample, size_arcmin):
    """Bool mask of the rows whose box lies wholly off the image grid of ``stack``."""
    from .io.images import cutout_slices

    x, y = stack.world_to_pixel(sample["ra"], sample["dec"])
    native = stack.npix_for(size_arcmin)
    return np.array([cutout_slices((float(x[i]), float(y[i])), native, stack.shape)["overlap"] == 0
                     for i in range(len(sample))], dtype=bool)


def _all_off_message(stack, sample, off, what):
    ra0, dec0 = stack.pixel_to_world(stack.shape[1] / 2.0, stack.shape[0] / 2.0)
    rows = np.flatnonzero(off)
    where = {int(i): (round(float(sample["ra"][i]), 5), round(float(sample["dec"][i]), 5)) for i in rows[:5]}
    return (f"all {rows.size} catalogue position(s) lie wholly off the {what} ({stack.shape[1]} x "
            f"{stack.shape[0]} pixels of {stack.pixel_arcsec:g} arcsec centred on ra={float(ra0[0]):.4f}, "
            f"dec={float(dec0[0]):.4f}); (ra, dec) of {rows_text(rows, where)}")


def _image_cutout(images, exposures, exposure_seconds, exposure_vignetting, bands, parts):
    """An ImageCutout in the model's bands and box for the given images, and the image grid."""
    from .io import BandImageStack
    from .preprocessing import ImageCutout

    files = existing_files(images, "band images")
    ordered, _ = match_band_files(files, "band images", bands=bands, target=parts.bands)
    cut = ImageCutout(images=ordered, exposures=_exposure_files(exposures, parts, bands),
                      exposure_seconds=exposure_seconds, size_arcmin=parts.size_arcmin, npix=parts.npix,
                      bands_keV=parts.bands, exposure_vignetting=exposure_vignetting, verbose=False)
    try:
        cut.fit()
    except ValueError as exc:
        raise type(exc)(f"reading the images: {exc}") from exc
    if abs(cut.pixel_arcsec_ / parts.pixel_arcsec - 1.0) > 0.02:
        raise ValueError(
            f"the images' pixels give {cut.pixel_arcsec_:.2f} arcsec per network pixel, the model was "
            f"trained on {parts.pixel_arcsec:.2f} arcsec ({parts.npix} pixels over {parts.size_arcmin:g} arcmin)")
    return cut, BandImageStack.from_files(ordered[:1])


def _read_events(files, pattern_types=(1, 2, 3, 4), flag_mask=None):
    """The event lists (RA, DEC, PI only), one table per file.

    ``flag_mask`` None: the DR1 mask; ``"none"``: no FLAG filter.
    """
    from .io import read_events
    from .io.events import DR1_FLAG_MASK

    mask = DR1_FLAG_MASK if flag_mask is None else (None if flag_mask == "none" else flag_mask)
    tables = []
    for f in existing_files(files, "event files"):
        try:
            ev = read_events(f, pattern_types=pattern_types, flag_mask=mask)
        except (OSError, ValueError, KeyError) as exc:
            raise type(exc)(f"reading {str(f)!r}: {exc}") from exc
        tables.append(ev[["RA", "DEC", "PI"]])
    return tables


#: Catalogue columns tried for the Galactic N_H (cm^-2), case-insensitive.
NH_NAMES = ("nh", "nh_cm2", "nh_hi4pi")


def _with_nh(sample, table, parts, nh_col, nh_cm2):
    """``sample`` with the model's N_H column (cm^-2) from ``nh_col`` or ``nh_cm2``, where it needs one."""
    from .baselines.observables import check_nh
    from .io import find_column
    from .io.catalog import column_numbers

    if nh_col is not None and nh_cm2 is not None:
        raise ValueError("give the Galactic N_H one way: nh_col= (a catalogue column) or nh_cm2= (one value)")
    if parts.nh_column is None:
        if nh_col is not None or nh_cm2 is not None:
            warnings.warn("this model assumes one Galactic N_H for every cluster (eFEDS's 3e20 cm^-2); "
                          "the N_H given is not used", stacklevel=3)
        return sample
    if nh_cm2 is not None:
        what, nh = "nh_cm2", np.full(len(sample), float(nh_cm2))
    else:
        try:
            what = find_column(table, NH_NAMES, nh_col, "Galactic N_H")
        except KeyError as exc:
            raise KeyError(f"{exc.args[0]}. This model converts count rates to L_X with each cluster's "
                           "Galactic N_H (cm^-2, e.g. from HI4PI): give nh_col= (a catalogue column) or "
                           "nh_cm2= (one value for every cluster)") from None
        nh = column_numbers(table[what], what)
    return sample.assign(**{parts.nh_column: check_nh(nh, what)})


# ---------------------------------------------------------------------------
# flags
# ---------------------------------------------------------------------------
def _reasons(cube, parts, z_range):
    """Per row: the list of reasons why the cluster is out of the model's domain."""
    reasons = no_data_reasons(cube)
    if parts.observables is not None and "bkg_arcmin2" in cube:  # joined as a log: none measured, no mass
        b = np.asarray(cube["bkg_arcmin2"], dtype=np.float64)
        for i in np.flatnonzero(~(b > 0)):
            reasons[i].append("no background photons in the box's outer annulus")
    z = np.asarray(cube["z"], dtype=np.float64)
    if z_range is not None:
        lo, hi = z_range
        for i in np.flatnonzero((z < lo) | (z > hi)):
            reasons[i].append(f"z={z[i]:.4g} outside the training range {lo:.3g}-{hi:.3g}")
    if parts.flagger is not None:
        flagged = parts.flagger.transform(cube)
        for j, text in enumerate(flagged["domain_reason"]):
            for r in str(text).split("; "):
                # (without exposure, its level and the background are not measured: said once)
                if r and r not in reasons[j] and not ("no exposure" in reasons[j]
                                                      and r.startswith(("exposure", "background"))):
                    reasons[j].append(r)
    return reasons


# ---------------------------------------------------------------------------
# the function
# ---------------------------------------------------------------------------
def predict_catalog(model, catalog, *, images=None, exposures=None, events=None, exposure_seconds=None,
                    exposure_col=None, exposure_vignetting="vignetted", nh_col=None, nh_cm2=None,
                    bands=None, point_sources=None,
                    pattern_types=(1, 2, 3, 4), flag_mask=None, ra_col=None, dec_col=None, z_col=None,
                    prefix="", batch_size=1024, verbose=False):
    """Predict the mass of every cluster of a catalogue from eROSITA images or event lists.

    Parameters
    ----------
    model : Pipeline, PriorCorrectedRegressor, MassCalibratedRegressor or path-like
        A fitted mass pipeline (:func:`skcluster.models.make_mass_pipeline`,
        ``skcluster train``), the same (frozen) wrapped in a
        :class:`~skcluster.priors.PriorCorrectedRegressor` (its masses
        carry the wrapper's prior) or a
        :class:`~skcluster.calibration.MassCalibratedRegressor` (masses
        calibrated at fixed true mass), or its file (:mod:`skcluster.persist`).
        Its first step's box and bands are used; the model is not modified.
    catalog : astropy.table.Table or path-like
        The clusters: ra, dec (deg) and z columns (FITS, ECSV or CSV).
    images : sequence of path-like, default=None
        evtool counts images, one per band of the model (matched by their
        file names, e.g. ``img_0300_0600.fits.gz``, or by ``bands``).
    exposures : sequence of path-like, default=None
        Exposure maps (s), one per band or one for all. With event lists
        they give each cluster's exposure and the ``cutout_complete`` and
        ``cutout_coverage`` columns.
    events : sequence of path-like or astropy.table.Table, default=None
        eSASS event lists (or one table with ``RA``, ``DEC``, ``PI``)
        instead of ``images``; binned in the model's bands.
    exposure_seconds : float, default=None
        One vignetted exposure (s) for every cluster, instead of maps.
    exposure_col : str, default=None
        Catalogue column with each cluster's vignetted exposure (s; 0 for an
        unexposed cluster), instead of maps.
    exposure_vignetting : {"vignetted", "unvignetted"} or float, default="vignetted"
        What the exposure maps hold
        (:class:`~skcluster.preprocessing.ImageCutout`).
    nh_col, nh_cm2 : str or float, default=None
        Each cluster's Galactic N_H (cm^-2), for a model that converts its
        count rates to L_X with it (``make_mass_pipeline(nh_column=...)``,
        ``skcluster train --survey erosita``): a catalogue column (by
        default one named ``nh``, ``nh_cm2`` or ``nh_hi4pi``, any case) or
        one value for every cluster. N_H at a position
        comes from the HI4PI survey (HI4PI Collaboration 2016, A&A 594,
        A116). Ignored, with a warning, by models that do not use it.
    bands : str or sequence of (float, float), default=None
        Bands of ``images`` (and ``exposures``) in the given order, when the
        file names do not carry them.
    point_sources : astropy.table.Table, dict or path-like, default=None
        A point-source catalogue (RA, DEC and a count rate such as
        ``ML_RATE_1`` or counts; the eFEDS and eRASS1 main catalogues as
        published, :func:`skcluster.io.read_point_sources`). Its sources are
        masked (and refilled at the local background level) in each
        cluster's events or cut-out images before the model sees them
        (:class:`~skcluster.preprocessing.PointSourceMasker`).
    pattern_types : sequence of int or None, default=(1, 2, 3, 4)
        Event ``PAT_TYP`` values kept (None: all, for lists without it).
    flag_mask : int, "none" or None, default=None
        Events with any of these ``FLAG`` bits are dropped; None: the DR1
        mask; ``"none"``: no filter (lists without ``FLAG``).
    ra_col, dec_col, z_col : str, default=None
        Catalogue columns; by default the usual names are tried.
    prefix : str, default=""
        Prefix of the added column names.
    batch_size : int, default=1024
        Clusters predicted at a time (memory grows with it).
    verbose : bool, default=False
        A progress bar over the clusters.

    Returns
    -------
    astropy.table.Table
        A copy of the catalogue with the columns of :data:`MASS_COLUMNS` (and, for a
        physics-marginalised model, :data:`STD_PART_COLUMNS` after them)
        (``cutout_complete`` and ``cutout_coverage`` only where exposure
        maps or images tell them), prefixed by ``prefix``. ``log10_M500``
        and ``log10_M500_err`` are NaN where ``in_domain`` is False
        (module notes). ``meta`` holds ``SKCLUSTER`` (version), ``BANDS``,
        ``BOX_AMIN``, ``NPIX``, ``NMEMBERS``, ``DOMAIN`` (how the domain was
        checked), ``NFLAGGED``, ``MASKED_PS`` (point sources masked),
        ``MASSPRIOR`` (the prior the masses carry: ``"training"``, the
        training population's, or the wrapper's ``"fixed-mass"``, ``"flat"``
        or ``"mass_function"``) and the ``RA_COL``, ``DEC_COL``, ``Z_COL`` used.

    Raises
    ------
    FileNotFoundError
        A file (model, catalogue, image, map, event list) does not exist.
    ValueError
        Bad input: a catalogue value, files whose bands do not match the
        model's, a clash of column names, every cluster off the images, ...
        (:class:`~skcluster.exceptions.DataFormatError` for malformed files).
    KeyError
        A catalogue column is missing.

    Examples
    --------
    >>> from skcluster import predict_catalog                              # doctest: +SKIP
    >>> out = predict_catalog("efeds7.skc", "clusters.csv",                # doctest: +SKIP
    ...                       images=images, exposures=expmaps,
    ...                       exposure_vignetting="unvignetted")
    >>> out["log10_M500", "log10_M500_err", "in_domain", "domain_reason"]  # doctest: +SKIP
    """
    from ._validation import check_positive_int

    batch_size = check_positive_int(batch_size, "batch_size", "predict_catalog")
    if (images is None) == (events is None):
        raise ValueError("give the clusters' data: images= (band images) or events= (event lists), "
                         "one of them")
    if events is not None and bands is not None:
        raise ValueError("bands= describes images=; event lists are binned in the model's bands")
    exposure_source(exposures, exposure_seconds, exposure_col)
    if not isinstance(prefix, str):
        raise ValueError(f"prefix= must be a string, got {prefix!r}")
    model = _load(model)
    parts = check_model(model)
    if events is not None and not parts.bins_events:
        raise ValueError("this model cuts images (its first step is not a BandBinner); give images=")
    if images is not None and parts.observables is not None:
        raise ValueError("this model measures its image observables on event lists (its 'observables' "
                         "step, make_mass_pipeline(observables=True)); give events=")

    split = _StdSplit(parts)
    columns = MASS_COLUMNS + split.columns
    table, sample, cols, names = _catalogue(catalog, ra_col, dec_col, z_col, prefix, columns)
    n = len(sample)
    if n == 0:
        raise ValueError(f"the catalogue {str(catalog)!r} has no rows" if isinstance(catalog, (str, Path))
                         else "the catalogue has no rows")
    _, first_row, copies = np.unique(np.column_stack([sample["ra"], sample["dec"], sample["z"]]), axis=0,
                                     return_index=True, return_counts=True)
    if (copies > 1).any():
        warnings.warn(f"{int((copies - 1).sum())} catalogue row(s) repeat an earlier row's ra, dec and z (first "
                      f"of each: {rows_text(np.sort(first_row[copies > 1]))}): each is predicted again",
                      stacklevel=2)
    exposure = exposure_of(table, n, exposure_seconds=exposure_seconds, exposure_col=exposure_col,
                           maps_given=exposures is not None)
    check_some_exposed(exposure)
    if exposure is not None:
        sample = sample.assign(exposure=exposure)
    sample = _with_nh(sample, table, parts, nh_col, nh_cm2)

    sources, masker = _masking(point_sources, parts)

    # where each cluster's data come from
    sample, off, off_reason, flags_known, prepare = _data_path(
        sample, parts, masker, sources, images=images, events=events, exposures=exposures,
        exposure_seconds=exposure_seconds, exposure_vignetting=exposure_vignetting, bands=bands,
        pattern_types=pattern_types, flag_mask=flag_mask)

    mean, std = np.full(n, np.nan), np.full(n, np.nan)
    complete, coverage = np.zeros(n, dtype=bool), np.zeros(n)
    reasons = [[off_reason] if o else [] for o in off]
    on = np.flatnonzero(~off)
    z_range = _z_range(parts)
    from tqdm.auto import tqdm

    from .streaming import iter_predictions, quiet_steps

    def cubes():
        """The in-domain clusters' cubes, batch by batch, each row with its catalogue row."""
        for start in range(0, on.size, batch_size):
            rows = on[start:start + batch_size]
            cube = prepare(sample[rows])
            if "complete" in cube:
                complete[rows] = np.asarray(cube["complete"], dtype=bool)
                coverage[rows] = np.asarray(cube["coverage"], dtype=np.float64)
            why = _reasons(cube, parts, z_range)
            for j, r in zip(rows, why):
                reasons[j].extend(r)
            ok = np.flatnonzero([not r for r in why])
            bar.update(rows.size)
            if ok.size:
                yield cube[ok].assign(catalog_row=rows[ok])

    restore = quiet_steps(parts.pipeline)
    bar = tqdm(total=n, desc="predict", unit="cluster", disable=not verbose, smoothing=0.05)
    try:
        bar.update(int(off.sum()))
        # the one batch-prediction loop (skcluster.streaming), through the model's own predict; the std's
        # parts come from the same pass of the networks
        for got in iter_predictions(split, cubes(), batch_size=batch_size, keep=("catalog_row",)):
            rows = got.columns["catalog_row"]
            mean[rows], std[rows] = got.mean, got.std
            split.keep(rows, n)
    finally:
        bar.close()
        for obj, value in restore:
            obj.set_params(verbose=value)

    out = table.copy(copy_data=True)
    in_domain = np.array([not r for r in reasons], dtype=bool)
    values = {"log10_M500": mean, "log10_M500_err": std, "cutout_complete": complete,
              "cutout_coverage": coverage, "in_domain": in_domain,
              "domain_reason": np.array(["; ".join(r) for r in reasons], dtype=str)}
    values.update(split.values(std))
    for key in columns:
        if key.startswith("cutout_") and not flags_known:
            continue
        out[names[key]] = values[key]
        out[names[key]].description = _DESCRIPTIONS[key]
    from . import __version__
    from .preprocessing.bands import format_bands

    out.meta.update({
        "SKCLUSTER": __version__, "BANDS": format_bands(parts.bands), "BOX_AMIN": parts.size_arcmin,
        "NPIX": parts.npix, "NMEMBERS": parts.n_members, "DOMAIN": _domain_note(parts),
        "NFLAGGED": int((~in_domain).sum()), "MASKED_PS": sources is not None,
        "MASSPRIOR": parts.mass_prior,
        "RA_COL": cols["ra"], "DEC_COL": cols["dec"], "Z_COL": cols["z"],
    })
    if flags_known and not complete[~off].all():
        from .exceptions import IncompleteCutoutWarning

        bad = np.flatnonzero(~complete & ~off)
        warnings.warn(f"{bad.size} cut-out(s) ran off the images or over unexposed pixels and were "
                      f"padded ({rows_text(bad)}); see the {names['cutout_complete']} column",
                      IncompleteCutoutWarning, stacklevel=2)
    if not in_domain.all():
        from .exceptions import SkclusterWarning

        bad = np.flatnonzero(~in_domain)
        first = "; ".join(f"row {int(i)}: {values['domain_reason'][i]}" for i in bad[:3])
        warnings.warn(f"{bad.size} of {n} cluster(s) have no mass (NaN): no data or outside what the "
                      f"model was trained on ({first}{' ...' if bad.size > 3 else ''}); see the "
                      f"{names['in_domain']} and {names['domain_reason']} columns",
                      SkclusterWarning, stacklevel=2)
    return out


class _StdSplit:
    """The model's predict, batch by batch, keeping the photon, network and physics parts of the std.

    For a physics-marginalised model each batch runs the networks once
    (:meth:`~skcluster.workflow.MassModel.predict_with_parts`): the masses,
    the std and its parts come from the same ensemble components. Other
    models predict as they do and add no columns. At the end each part is
    rescaled with the std the model reports (a prior wrapper rescales the
    ensemble's), so their squares add up to its square.
    """

    _PARTS = ("photon", "network", "physics")

    def __init__(self, parts):
        self.parts = parts
        self.columns = STD_PART_COLUMNS if parts.splits_std else ()
        self.found = {}
        self._last = None

    def predict(self, cubes, return_std=True):
        """``(mean, std)`` of the counts cubes ``cubes`` through the model's own predict; the parts are kept."""
        mean, std, self._last = self.parts.predict_with_parts(cubes)
        return (mean, std) if return_std else mean

    def keep(self, rows, n):
        """File the parts of the batch just predicted under its catalogue ``rows`` (of ``n``)."""
        if self._last is None:
            return
        for key, value in self._last.items():
            self.found.setdefault(key, np.full(n, np.nan))[rows] = value
        self._last = None

    def values(self, std):
        """``{column: values}`` of the parts, rescaled to ``std`` (the model's)."""
        if not self.found:
            return {name: np.full(len(std), np.nan) for name in self.columns}
        total = self.found["total"]
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(total > 0, std / total, 1.0)
        return {name: scale * self.found[key] for name, key in zip(STD_PART_COLUMNS, self._PARTS)}


def _catalogue(catalog, ra_col, dec_col, z_col, prefix, columns=MASS_COLUMNS):
    """(table, sample of ra, dec, z, the columns used, the names of the columns to add)."""
    from .io import find_column, read_catalog, read_table
    from .io.catalog import DEC_NAMES, RA_NAMES, Z_NAMES

    if isinstance(catalog, (str, Path)):
        if not Path(catalog).is_file():
            raise FileNotFoundError(f"catalogue not found: {str(catalog)!r}")
        table = read_table(catalog)
    elif hasattr(catalog, "colnames"):
        table = catalog
    else:
        raise ValueError(f"catalog must be an astropy Table or a file name, got {type(catalog).__name__}")
    cols = {"ra": find_column(table, RA_NAMES, ra_col, "ra"),
            "dec": find_column(table, DEC_NAMES, dec_col, "dec"),
            "z": find_column(table, Z_NAMES, z_col, "redshift")}
    sample = read_catalog(table, ra=cols["ra"], dec=cols["dec"], z=cols["z"])
    names = {k: f"{prefix}{k}" for k in columns}
    clash = [v for v in names.values() if v in table.colnames]
    if clash:
        raise ValueError(f"the catalogue already has column(s) {clash}; pass prefix= to name the new "
                         "columns differently (e.g. 'pred_')")
    return table, sample, cols, names


def _masking(point_sources, parts):
    """(the point-source catalogue or None, the masker to apply or None)."""
    sources = None
    if point_sources is not None:
        from .io import read_point_sources

        if isinstance(point_sources, (str, Path)) and not Path(point_sources).is_file():
            raise FileNotFoundError(f"point-source catalogue not found: {str(point_sources)!r}")
        sources = point_sources if isinstance(point_sources, dict) else read_point_sources(point_sources)
    masker = parts.masker
    if sources is not None and masker is None:
        from .preprocessing import PointSourceMasker

        masker = PointSourceMasker(size_arcmin=parts.size_arcmin)
    elif masker is not None and sources is None:
        warnings.warn("the model was trained with point sources masked, but no point-source catalogue "
                      "was given (point_sources=): none are masked", stacklevel=3)
    return sources, masker


def _data_path(sample, parts, masker, sources, *, images, events, exposures, exposure_seconds,
               exposure_vignetting, bands, pattern_types, flag_mask):
    """(sample, rows off the data, why, whether the cut-out flags are known, the rows -> cubes callable)."""
    n = len(sample)
    off = np.zeros(n, dtype=bool)
    off_reason = "off the images"
    flags_known = True
    if images is not None:
        cut, stack = _image_cutout(images, exposures, exposure_seconds, exposure_vignetting, bands, parts)
        off = _off_image(stack, sample, parts.size_arcmin)
        if off.all():
            raise ValueError(_all_off_message(stack, sample, off, "images"))
        prepare = _ImagesPath(cut, masker, sources, parts)
    else:
        events = [events] if hasattr(events, "colnames") else _read_events(events, pattern_types, flag_mask)
        maps = _exposure_files(exposures, parts, None)
        if maps is not None:
            sample, off = _exposure_from_maps(sample, maps, parts, exposure_vignetting)
            check_some_exposed(sample["exposure"])
            off_reason = "off the exposure maps"
        else:
            flags_known = False
            warnings.warn("no exposure maps: whether each cut-out is complete cannot be checked, so "
                          "the cutout_complete and cutout_coverage columns are not written", stacklevel=3)
        prepare = _EventsPath(events, masker, sources, parts)
    return sample, off, off_reason, flags_known, prepare


def _exposure_from_maps(sample, maps, parts, vignetting):
    """The sample with exposure, complete and coverage from the maps; and the off-map rows."""
    from .io import BandImageStack
    from .preprocessing import ImageCutout

    stack = BandImageStack.from_files(maps[:1])
    off = _off_image(stack, sample, parts.size_arcmin)
    if off.all():
        raise ValueError(_all_off_message(stack, sample, off, "exposure maps"))
    emaps = ImageCutout(images=maps, exposures=maps, size_arcmin=parts.size_arcmin, npix=1,
                        bands_keV=None if len(maps) == 1 else parts.bands,
                        exposure_vignetting=vignetting, verbose=False)
    on = np.flatnonzero(~off)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = emaps.fit_transform(sample[on])
    n = len(sample)
    exposure, complete, coverage = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n)
    exposure[on], complete[on], coverage[on] = got["exposure"], got["complete"], got["coverage"]
    return sample.assign(exposure=exposure, complete=complete, coverage=coverage), off


class _EventsPath:
    """Catalogue rows -> counts cubes from event lists (masked, binned)."""

    def __init__(self, events, masker, sources, parts):
        self.events, self.masker, self.sources, self.parts = events, masker, sources, parts

    def __call__(self, piece):
        size = self.parts.size_arcmin
        piece = piece.assign(events=event_boxes(self.events, piece["ra"], piece["dec"], size))
        if self.masker is not None:
            found = (empty_sources(len(piece)) if self.sources is None
                     else sources_around(self.sources, piece, size))
            piece = self.masker.transform(piece.assign(**{self.masker.sources: found}))
        if self.parts.observables is not None:
            piece = self.parts.observables.transform(piece)
        return self.parts.source.transform(piece)


class _ImagesPath:
    """Catalogue rows -> counts cubes cut out of band images (then masked)."""

    def __init__(self, cut, masker, sources, parts):
        self.cut, self.masker, self.sources, self.parts = cut, masker, sources, parts

    def __call__(self, piece):
        from .exceptions import IncompleteCutoutWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IncompleteCutoutWarning)  # one summary at the end
            cube = self.cut.transform(piece)
        if self.masker is not None and self.sources is not None:
            cube = self.masker.transform(
                cube.assign(**{self.masker.sources: sources_around(self.sources, cube, self.parts.size_arcmin)}))
        return cube
