"""Point-source catalogues: the sources to mask around each cluster.

Real pipelines mask the point sources of a detected catalogue: for eFEDS the
main source catalogue (Brunner et al. 2022, A&A 661, A1), for eRASS1 the
main catalogue of DR1 (Merloni et al. 2024, A&A 682, A34), both with
``RA``, ``DEC`` (deg), a count rate per band (``ML_RATE_1`` ... in counts/s)
and ``DET_LIKE``. The mock survey writes its own detected list in that form
(``point_sources.fits``, :func:`skcluster.datasets.write_survey`). A
catalogue with fluxes only (the eFEDS point-like catalogue of Liu T. et al.
2022, A&A 661, A5: 0.5-2 keV ``FluxCorr_Med_s``, no count rates) is
converted to detection-band count rates through the instrument response
(:func:`flux_to_rate`).

:func:`point_sources_around` turns such a catalogue into one array per
cluster of the sources in its box, as offsets from the cluster position in
the SIN projection that the event and image cut-outs use, with the counts
the source gives at the cluster's exposure (``rate * exposure``): the
``point_sources`` column that
:class:`~skcluster.preprocessing.PointSourceMasker` reads.
"""

from __future__ import annotations

import numpy as np

from ..physics.rates import NH_EFEDS_CM2, powerlaw_band_rates
from .catalog import _degrees, find_column, read_table
from .sky import check_sky_position, sin_offsets_arcsec

__all__ = ["POINT_SOURCE_DTYPE", "point_sources_around", "read_point_sources", "flux_to_rate",
           "DEFAULT_PHOTON_INDEX"]

#: One point source around a cluster: position (arcsec offsets from the
#: cluster position, the axes of the event offsets), source counts in the
#: detection band (PSF-corrected), the detection likelihood and the local
#: background density it was detected against (counts / arcsec^2; NaN when
#: unknown).
POINT_SOURCE_DTYPE = np.dtype([
    ("x_arcsec", "<f4"), ("y_arcsec", "<f4"), ("counts", "<f4"), ("det_like", "<f4"),
    ("bkg_per_arcsec2", "<f4"),
])

#: Column names tried, case-insensitively, for each quantity.
RA_NAMES = ("ra", "ra_corr", "raj2000")
DEC_NAMES = ("dec", "dec_corr", "dej2000", "decj2000")
RATE_NAMES = ("ml_rate_1", "ml_rate", "rate")
COUNTS_NAMES = ("ml_cts_1", "ml_cts", "counts")
DETLIKE_NAMES = ("det_like_0", "det_like_1", "det_like")
FLUX_NAMES = ("fluxcorr_med_s", "ml_flux_1", "ml_flux", "flux")
#: Photon index that converts a catalogue flux to a count rate: the mock's AGN
#: spectrum at 1e-14 erg/s/cm^2, where most masked sources are
#: (``skcluster.datasets.background.agn_photon_index``; unobscured AGN
#: spectra have Gamma ~1.8-2, e.g. Liu T. et al. 2022).
DEFAULT_PHOTON_INDEX = 1.8
#: Detection band of the count rates, keV (eSASS: 0.2-2.3 keV, Brunner et al. 2022).
DETECTION_BAND_KEV = (0.2, 2.3)


def flux_to_rate(flux_cgs, nh_cm2=NH_EFEDS_CM2, photon_index=DEFAULT_PHOTON_INDEX, flux_band_keV=(0.5, 2.0),
                 band_keV=DETECTION_BAND_KEV):
    """Count rate (counts per second of vignetted exposure at 1 keV) of point sources of given flux.

    Parameters
    ----------
    flux_cgs : array-like
        Unabsorbed flux in ``flux_band_keV``, erg/s/cm^2.
    nh_cm2 : float, default=3e20
        Galactic N_H, cm^-2 (eFEDS: 3e20).
    photon_index : float, default=1.8
        Power-law photon index of the sources' spectra.
    flux_band_keV, band_keV : (float, float)
        Band of the fluxes and of the rates, keV.

    Returns
    -------
    ndarray
        Counts/s through the eROSITA response (the package's effective area
        and absorption, :func:`skcluster.physics.powerlaw_band_rates`).
    """
    flux = np.asarray(flux_cgs, dtype=np.float64)
    rates = powerlaw_band_rates(flux.ravel(), photon_index, [tuple(band_keV)], nH_cm2=nh_cm2,
                                flux_band_keV=tuple(flux_band_keV), reference_keV=1.0)[:, 0]
    return rates.reshape(flux.shape)


def read_point_sources(path_or_table, ra=None, dec=None, rate=None, counts=None, det_like=None, hdu=1,
                       flux=None, nh_cm2=NH_EFEDS_CM2, photon_index=DEFAULT_PHOTON_INDEX):
    """Read a point-source catalogue into plain arrays.

    Parameters
    ----------
    path_or_table : str, path-like or astropy.table.Table
        FITS, ECSV or CSV (see :func:`skcluster.io.read_table`).
    ra, dec : str, default=None
        Position columns (deg); found by usual names if not given.
    rate : str, default=None
        Count-rate column (counts/s in the detection band), e.g.
        ``ML_RATE_1``. Either a rate or a ``counts`` column is needed: a
        rate is multiplied by each cluster's exposure later.
    counts : str, default=None
        Source-counts column (e.g. ``ML_CTS_1``), used as it is.
    det_like : str, default=None
        Detection-likelihood column (optional; NaN where absent).
    flux : str, default=None
        0.5-2 keV flux column (erg/s/cm^2), used when the catalogue has no
        rate or counts (found by usual names, e.g. ``FluxCorr_Med_s``):
        converted to 0.2-2.3 keV count rates with :func:`flux_to_rate`.
    nh_cm2, photon_index : float
        The conversion's Galactic N_H (cm^-2) and photon index.

    Returns
    -------
    dict
        ``ra``, ``dec`` (deg), ``rate`` (counts/s) or ``counts``, and
        ``det_like``, float64 arrays of one length (rates converted from
        fluxes where the catalogue had only fluxes).

    Raises
    ------
    KeyError
        A named column is missing, or no rate, counts or flux column is
        found (the message lists the columns).
    ValueError
        Non-finite positions or rates.
    """
    table = read_table(path_or_table, hdu=hdu) if not hasattr(path_or_table, "colnames") else path_or_table
    ra_c = find_column(table, RA_NAMES, ra, "RA")
    dec_c = find_column(table, DEC_NAMES, dec, "Dec")
    out = {"ra": _degrees(table[ra_c], ra_c), "dec": _degrees(table[dec_c], dec_c)}
    check_sky_position(out["ra"], out["dec"], where="point-source catalogue")
    if counts is not None or rate is None:
        try:
            cts_c = find_column(table, COUNTS_NAMES, counts, "counts")
        except KeyError:
            if counts is not None:
                raise
            cts_c = None
    else:
        cts_c = None
    if cts_c is not None:
        out["counts"] = np.asarray(table[cts_c], dtype=np.float64)
        name = cts_c
    elif flux is not None:
        name = _rate_from_flux(table, out, flux, nh_cm2, photon_index)
    else:
        try:
            rate_c = find_column(table, RATE_NAMES, rate, "count-rate (ML_RATE_1, a counts or a flux column)")
        except KeyError:
            if rate is not None:
                raise
            name = _rate_from_flux(table, out, None, nh_cm2, photon_index)
        else:
            out["rate"] = np.asarray(table[rate_c], dtype=np.float64)
            name = rate_c
    values = out.get("counts", out.get("rate"))
    bad = ~np.isfinite(values) | (values < 0)
    if np.any(bad):
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"point-source catalogue: column {name!r} must be finite and >= 0; "
                         f"rows {rows} are not")
    try:
        dl_c = find_column(table, DETLIKE_NAMES, det_like, "DET_LIKE")
        out["det_like"] = np.asarray(table[dl_c], dtype=np.float64)
    except KeyError:
        if det_like is not None:
            raise
        out["det_like"] = np.full(len(table), np.nan)
    return out


def _rate_from_flux(table, out, flux, nh_cm2, photon_index):
    """Fill ``out['rate']`` from a flux column (named or found); return the column's name."""
    flux_c = find_column(table, FLUX_NAMES, flux,
                         "count-rate (ML_RATE_1), counts (ML_CTS_1) or 0.5-2 keV flux (FluxCorr_Med_s)")
    # a non-finite or negative flux stays so as a rate: the caller's check names this column
    out["rate"] = flux_to_rate(np.asarray(table[flux_c], dtype=np.float64), nh_cm2=nh_cm2, photon_index=photon_index)
    return flux_c


def point_sources_around(sources, ra, dec, size_arcmin, exposure=None, margin_arcsec=120.0):
    """The point sources in each cluster's box, as offsets (arcsec).

    Parameters
    ----------
    sources : dict or table
        From :func:`read_point_sources` (or anything it reads).
    ra, dec : array-like of shape (n_clusters,)
        Cluster positions, deg.
    size_arcmin : float
        Side of the box, arcmin.
    exposure : array-like of shape (n_clusters,), default=None
        Vignetted exposure at each cluster, s: converts a catalogue rate to
        counts. Needed when the catalogue has rates, not counts.
    margin_arcsec : float, default=120.0
        Sources this far outside the box are kept too (their masks reach
        in).

    Returns
    -------
    ndarray of object, shape (n_clusters,)
        One :data:`POINT_SOURCE_DTYPE` array per cluster
        (``bkg_per_arcsec2`` is NaN: the masker then measures the local
        level from the events).
    """
    if not isinstance(sources, dict):
        sources = read_point_sources(sources)
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    if ra.shape != dec.shape:
        raise ValueError(f"ra and dec differ in shape: {ra.shape} vs {dec.shape}")
    check_sky_position(ra, dec, where="point_sources_around")
    if "counts" in sources:
        per_cluster_scale = np.ones(ra.size)
        values = sources["counts"]
    else:
        if exposure is None:
            raise ValueError("the point-source catalogue has count rates, not counts: pass the "
                             "clusters' exposure (s) to convert them")
        per_cluster_scale = np.broadcast_to(np.asarray(exposure, dtype=np.float64), ra.shape)
        if not np.all(np.isfinite(per_cluster_scale) & (per_cluster_scale >= 0)):
            raise ValueError("exposure must be finite and >= 0 for every cluster")
        values = sources["rate"]
    half = 30.0 * float(size_arcmin) + float(margin_arcsec)
    s_ra, s_dec = np.asarray(sources["ra"]), np.asarray(sources["dec"])
    values, det_like = np.asarray(values), np.asarray(sources["det_like"])
    order = np.argsort(s_dec, kind="stable")
    sorted_dec = s_dec[order]
    pad_deg = 1.5 * half / 3600.0
    out = np.empty(ra.size, dtype=object)
    for i, (r0, d0) in enumerate(zip(ra, dec)):
        lo, hi = np.searchsorted(sorted_dec, [d0 - pad_deg, d0 + pad_deg])
        idx = np.sort(order[lo:hi])  # catalogue order
        x, y = sin_offsets_arcsec(s_ra[idx], s_dec[idx], r0, d0)
        inside = (np.abs(x) < half) & (np.abs(y) < half)
        idx = idx[inside]
        arr = np.zeros(idx.size, POINT_SOURCE_DTYPE)
        arr["x_arcsec"], arr["y_arcsec"] = x[inside], y[inside]
        arr["counts"] = values[idx] * per_cluster_scale[i]
        arr["det_like"] = det_like[idx]
        arr["bkg_per_arcsec2"] = np.nan
        out[i] = arr
    return out
