"""eSASS event lists: read, filter, write, and cut out per-cluster events.

An eROSITA calibrated event file (eSASS ``EVENTS`` extension; Brunner et al.
2022, A&A 661, A1; eROSITA DR1 documentation, Merloni et al. 2024, A&A 682,
A34) has one row per photon with, among others:

========  =====================================================
TIME      seconds (mission time)
RA, DEC   degrees; older products store them as scaled integers
          (TZERO/TSCAL), which astropy unscales on reading
X, Y      sky pixels of 0.05 arcsec with pixel-list WCS keywords
          TCTYPn = RA---SIN / DEC--SIN, TCRVLn, TCRPXn, TCDLTn
PI        calibrated energy in eV
PAT_TYP   event pattern type (1 single ... 4 quadruple)
FLAG      32-bit quality flags
TM_NR     telescope module 1-7
========  =====================================================

The per-cluster event table the band binner consumes is a structured array
of :data:`EVENT_DTYPE`: offsets from the cluster position in arcsec and the
energy in keV.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .._validation import check_positive_number
from ..exceptions import DataFormatError, SkclusterWarning
from .atomic import atomic_output
from .fitsfiles import existing_file, fits_errors, native
from .sky import ARCSEC_PER_DEG, check_sky_position, sin_offsets_arcsec, sin_offsets_to_radec

__all__ = [
    "EVENT_DTYPE",
    "ORIGIN_BACKGROUND",
    "ORIGIN_CLUSTER",
    "ORIGIN_AGN",
    "ORIGIN_UNKNOWN",
    "DR1_FLAG_MASK",
    "SKY_PIXEL_ARCSEC",
    "make_events",
    "read_events",
    "filter_events",
    "write_events",
    "cutout_events",
    "events_to_offsets",
]

#: Per-cluster event record: offsets along the sky-pixel X axis (toward
#: decreasing RA, i.e. west) and Y axis (north) in arcsec, energy in keV, and
#: the photon's origin where a simulation knows it (see ``ORIGIN_*``).
EVENT_DTYPE = np.dtype(
    [("x_arcsec", "<f4"), ("y_arcsec", "<f4"), ("energy_keV", "<f4"), ("origin", "u1")]
)

ORIGIN_BACKGROUND = 0  #: sky or particle background photon (simulation)
ORIGIN_CLUSTER = 1  #: intracluster-medium photon (simulation)
ORIGIN_AGN = 2  #: point-source (AGN) photon (simulation)
ORIGIN_UNKNOWN = 255  #: real data: origin not known

#: FLAG bits rejected for DR1 products (eROSITA DR1 documentation,
#: Merloni et al. 2024): keep events with ``FLAG & DR1_FLAG_MASK == 0``.
DR1_FLAG_MASK = 0xE000F000

#: Size of an eSASS sky pixel (event X/Y), arcsec (Brunner et al. 2022).
SKY_PIXEL_ARCSEC = 0.05

_REQUIRED = ("RA", "DEC", "PI")


def make_events(x_arcsec, y_arcsec, energy_keV, origin=ORIGIN_UNKNOWN):
    """Pack offsets (arcsec) and energies (keV) into an :data:`EVENT_DTYPE` array."""
    x = np.asarray(x_arcsec)
    n = x.shape[0] if x.ndim else 0
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x_arcsec"] = x
    ev["y_arcsec"] = y_arcsec
    ev["energy_keV"] = energy_keV
    ev["origin"] = origin
    return ev


def _check_pi(pi, unit, path):
    unit = (unit or "").strip().lower()
    if unit in ("chan", "channel", "channels", "adu"):
        raise DataFormatError(
            f"{path}: column PI has unit {unit!r}; skcluster expects eROSITA PI "
            "in eV (energy, not detector channels)"
        )
    if unit not in ("", "ev"):
        raise DataFormatError(
            f"{path}: column PI has unit {unit!r}; expected 'eV' (eROSITA PI is "
            "the calibrated energy in eV)"
        )
    if pi.size and np.nanmedian(pi) < 150.0:
        raise DataFormatError(
            f"{path}: column PI looks like channels, not eV (median "
            f"{np.nanmedian(pi):.4g}; eROSITA events have PI ~ 200-10000 eV)"
        )


def read_events(
    path,
    hdu="EVENTS",
    apply_filters=True,
    pattern_types=(1, 2, 3, 4),
    flag_mask=DR1_FLAG_MASK,
    energy_range_keV=None,
):
    """Read an eSASS event list into an :class:`astropy.table.Table`.

    Parameters
    ----------
    path : str or path-like
        FITS event file (optionally gzipped).
    hdu : str or int, default="EVENTS"
        Extension holding the events.
    apply_filters : bool, default=True
        Apply :func:`filter_events` with ``pattern_types`` and ``flag_mask``.
    pattern_types : tuple of int, default=(1, 2, 3, 4)
        Valid ``PAT_TYP`` values (singles to quadruples).
    flag_mask : int, default=0xE000F000
        Events with any of these ``FLAG`` bits are dropped (DR1 products).
    energy_range_keV : (float, float), default=None
        Keep only events with ``lo <= PI / 1000 < hi``.

    Returns
    -------
    events : astropy.table.Table
        ``RA``/``DEC`` as float64 degrees (scaled integers are unscaled),
        ``PI`` in eV, plus every other column of the file. The header of the
        extension is in ``events.meta``.
    """
    path = existing_file(path, "event file")
    with fits_errors(path, "an eSASS event file"), fits.open(path, memmap=False) as hdul:
        try:
            ext = hdul[hdu]
        except (KeyError, IndexError):
            names = [h.name for h in hdul]
            raise DataFormatError(
                f"{str(path)!r} has no extension {hdu!r}; extensions are {names}"
            ) from None
        if not isinstance(ext, fits.BinTableHDU):
            raise DataFormatError(f"{str(path)!r}[{hdu}] is not a binary table")
        names = [c.upper() for c in ext.columns.names]
        missing = [c for c in _REQUIRED if c not in names]
        if missing:
            raise DataFormatError(
                f"{str(path)!r}[{hdu}] lacks column(s) {missing}; an eSASS "
                f"EVENTS table has RA, DEC (deg) and PI (eV); found {ext.columns.names}"
            )
        pi_unit = ext.columns[names.index("PI")].unit
        table = Table(ext.data)
        table.meta = {k: v for k, v in ext.header.items() if k not in ("COMMENT", "HISTORY")}
    for name in table.colnames:
        table[name] = native(table[name])
        if name.upper() != name:
            table.rename_column(name, name.upper())
    for c in ("RA", "DEC"):
        table[c] = np.asarray(table[c], dtype=np.float64)
    pi = np.asarray(table["PI"], dtype=np.float64)
    _check_pi(pi, pi_unit, str(path))
    if apply_filters:
        table = filter_events(table, pattern_types=pattern_types, flag_mask=flag_mask)
    if energy_range_keV is not None:
        lo, hi = energy_range_keV
        e = np.asarray(table["PI"], dtype=np.float64) / 1000.0
        table = table[(e >= lo) & (e < hi)]
    return table


def _flags_as_uint32(flag):
    flag = np.asarray(flag)
    if flag.dtype.kind == "i":
        return flag.astype(np.int64) & 0xFFFFFFFF
    return flag.astype(np.int64)


def filter_events(events, pattern_types=(1, 2, 3, 4), flag_mask=DR1_FLAG_MASK):
    """Keep valid patterns and unflagged events (the standard eSASS filters).

    Parameters
    ----------
    events : astropy.table.Table
        With ``PAT_TYP`` and ``FLAG`` columns; a missing column is reported
        unless its filter is switched off (``pattern_types=None`` or
        ``flag_mask=None``).
    pattern_types : tuple of int or None, default=(1, 2, 3, 4)
    flag_mask : int or None, default=0xE000F000

    Returns
    -------
    astropy.table.Table
        The kept rows, in their original order.
    """
    keep = np.ones(len(events), dtype=bool)
    if pattern_types is not None:
        if "PAT_TYP" not in events.colnames:
            raise DataFormatError(
                "event table has no PAT_TYP column; pass pattern_types=None to "
                "skip the pattern filter (skcluster predict: --pattern-types all)"
            )
        keep &= np.isin(np.asarray(events["PAT_TYP"]), np.asarray(pattern_types))
    if flag_mask is not None:
        if "FLAG" not in events.colnames:
            raise DataFormatError(
                "event table has no FLAG column; pass flag_mask=None to skip "
                "the flag filter (skcluster predict: --flag-mask none)"
            )
        keep &= (_flags_as_uint32(events["FLAG"]) & int(flag_mask)) == 0
    return events[keep]


def write_events(path, events, ra0, dec0, header=None, overwrite=False):
    """Write an eSASS-format ``EVENTS`` file.

    Parameters
    ----------
    path : str or path-like
        Output FITS file. An existing file is only replaced with
        ``overwrite=True``; a failed write leaves nothing behind.
    events : astropy.table.Table or Mapping
        Must have ``RA``, ``DEC`` (deg) and ``PI`` (eV); ``TIME``,
        ``PAT_TYP`` (default 1), ``FLAG`` (default 0) and ``TM_NR`` (default
        1) are filled in when absent. ``X``/``Y`` are computed from RA/DEC.
    ra0, dec0 : float
        Tangent point (deg) of the X/Y sky pixels (``TCRVLn``).
    header : dict, default=None
        Extra keywords for the EVENTS header.
    overwrite : bool, default=False
    """
    names = list(getattr(events, "colnames", None) or events.keys())
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise DataFormatError(f"write_events: events lack column(s) {missing}")
    n = len(events["RA"])
    ra = np.asarray(events["RA"], dtype=np.float64)
    dec = np.asarray(events["DEC"], dtype=np.float64)
    check_sky_position([ra0], [dec0], where="write_events tangent point")
    if n:
        check_sky_position(ra, dec, where="write_events events")
    pi = np.asarray(events["PI"], dtype=np.float32)

    def col(name, default, dtype):
        if name in names:
            return np.asarray(events[name], dtype=dtype)
        return np.full(n, default, dtype=dtype)

    xs, ys = sin_offsets_arcsec(ra, dec, ra0, dec0)
    xpix = xs / SKY_PIXEL_ARCSEC
    ypix = ys / SKY_PIXEL_ARCSEC
    cdelt = SKY_PIXEL_ARCSEC / ARCSEC_PER_DEG
    cols = [
        fits.Column("TIME", "D", unit="s", array=col("TIME", 0.0, np.float64)),
        fits.Column("RA", "D", unit="deg", array=ra),
        fits.Column("DEC", "D", unit="deg", array=dec),
        fits.Column("X", "D", unit="pixel", array=xpix),
        fits.Column("Y", "D", unit="pixel", array=ypix),
        fits.Column("PI", "E", unit="eV", array=pi),
        fits.Column("PAT_TYP", "I", array=col("PAT_TYP", 1, np.int16)),
        fits.Column("FLAG", "J", bzero=2147483648, array=col("FLAG", 0, np.uint32)),
        fits.Column("TM_NR", "B", array=col("TM_NR", 1, np.uint8)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    h = hdu.header
    for axis, ctype, crval, sign in ((4, "RA---SIN", ra0, -1.0), (5, "DEC--SIN", dec0, 1.0)):
        h[f"TCTYP{axis}"] = (ctype, "sky-pixel projection")
        h[f"TCRVL{axis}"] = (float(crval), "[deg] tangent point")
        h[f"TCRPX{axis}"] = (0.0, "reference pixel")
        h[f"TCDLT{axis}"] = (sign * cdelt, "[deg] 0.05 arcsec sky pixels")
        h[f"TCUNI{axis}"] = "deg"
    h["RADECSYS"] = "FK5"
    h["EQUINOX"] = 2000.0
    h["TELESCOP"] = "eROSITA"
    h["CREATOR"] = "skcluster"
    for k, v in (header or {}).items():
        h[k] = v
    primary = fits.PrimaryHDU()
    with atomic_output(path, overwrite=overwrite) as tmp:
        fits.HDUList([primary, hdu]).writeto(tmp)


def events_to_offsets(events, ra, dec, size_arcmin, energy_range_keV=None):
    """Events of one cluster as :data:`EVENT_DTYPE` offsets inside a square box.

    Parameters
    ----------
    events : astropy.table.Table
        An event list (see :func:`read_events`).
    ra, dec : float
        Box centre, deg.
    size_arcmin : float
        Full side of the box, arcmin; offsets satisfy ``|x|, |y| < size/2``.
    energy_range_keV : (float, float), default=None
        Keep only ``lo <= E < hi``.

    Returns
    -------
    numpy.ndarray of EVENT_DTYPE
    """
    return cutout_events(events, [ra], [dec], size_arcmin, energy_range_keV)[0]


def cutout_events(events, ra, dec, size_arcmin, energy_range_keV=None):
    """Cut out per-cluster event tables around many sky positions.

    Parameters
    ----------
    events : astropy.table.Table
        An event list with ``RA``, ``DEC`` (deg) and ``PI`` (eV).
    ra, dec : array-like of shape (n_clusters,)
        Cluster positions, deg.
    size_arcmin : float
        Full side of the square box, arcmin (20 in Krippendorf et al. 2023).
    energy_range_keV : (float, float), default=None

    Returns
    -------
    numpy.ndarray of object, shape (n_clusters,)
        One :data:`EVENT_DTYPE` array per cluster (offsets in the SIN
        projection about the cluster position, arcsec; energy, keV). An
        empty array where no event falls in the box.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    if ra.shape != dec.shape:
        raise ValueError(f"ra and dec differ in shape: {ra.shape} vs {dec.shape}")
    check_sky_position(ra, dec, where="cutout_events")
    check_positive_number(size_arcmin, "size_arcmin", "cutout_events", unit="arcmin")
    missing = [c for c in _REQUIRED if c not in events.colnames]
    if missing:
        raise DataFormatError(f"event table lacks column(s) {missing}")
    half_arcsec = size_arcmin * 60.0 / 2.0
    ev_ra = np.asarray(events["RA"], dtype=np.float64)
    ev_dec = np.asarray(events["DEC"], dtype=np.float64)
    energy = np.asarray(events["PI"], dtype=np.float64) / 1000.0
    finite = np.isfinite(ev_ra) & np.isfinite(ev_dec) & np.isfinite(energy)
    if not finite.all():
        warnings.warn(f"{int((~finite).sum())} of {finite.size} events have a non-finite RA, DEC or PI and are "
                      "left out of every cut-out", SkclusterWarning, stacklevel=2)
        ev_ra, ev_dec, energy = ev_ra[finite], ev_dec[finite], energy[finite]
    if energy_range_keV is not None:
        lo, hi = energy_range_keV
        sel = (energy >= lo) & (energy < hi)
        ev_ra, ev_dec, energy = ev_ra[sel], ev_dec[sel], energy[sel]
    order = np.argsort(ev_dec, kind="stable")
    ev_ra, ev_dec, energy = ev_ra[order], ev_dec[order], energy[order]
    # a generous declination window, then the exact projected box
    pad_deg = 1.5 * half_arcsec / ARCSEC_PER_DEG
    out = np.empty(ra.size, dtype=object)
    for i, (r0, d0) in enumerate(zip(ra, dec)):
        lo = np.searchsorted(ev_dec, d0 - pad_deg, side="left")
        hi = np.searchsorted(ev_dec, d0 + pad_deg, side="right")
        x, y = sin_offsets_arcsec(ev_ra[lo:hi], ev_dec[lo:hi], r0, d0)
        inside = (np.abs(x) < half_arcsec) & (np.abs(y) < half_arcsec)
        out[i] = make_events(x[inside], y[inside], energy[lo:hi][inside])
    return out


def offsets_to_events_table(offsets, ra0, dec0, time=None):
    """Turn :data:`EVENT_DTYPE` offsets back into an eSASS-like table (RA, DEC, PI)."""
    ra, dec = sin_offsets_to_radec(offsets["x_arcsec"], offsets["y_arcsec"], ra0, dec0)
    table = Table()
    table["TIME"] = np.zeros(len(offsets)) if time is None else np.asarray(time, dtype=np.float64)
    table["RA"] = ra
    table["DEC"] = dec
    table["PI"] = np.asarray(offsets["energy_keV"], dtype=np.float64) * 1000.0
    return table
