"""Energy bands of the image cubes: named presets and validation.

A band is a half-open observed-frame energy interval ``lo <= E < hi`` in keV
(the convention of eSASS ``evtool`` images, whose file names carry the band
in eV, e.g. ``img_0300_0600``). Bands are given either by the name of a
preset or as an explicit sequence of ``(lo, hi)`` pairs.

Presets
-------
``"krippendorf10"``
    Ten bands over 0.25-2.3 keV, the input of the seed study (Krippendorf et
    al. 2023, arXiv:2305.00016: "10 energy bands", eFEDS mocks). The exact
    edges are not published in our sources [uncertain]: we use edges
    spaced evenly in log E (``geomspace(0.25, 2.3, 11)`` rounded to 10 eV),
    so that each band is about 25% wide, i.e. wider than the eROSITA
    resolution (~80 eV FWHM at 1.5 keV, Predehl et al. 2021) everywhere above the
    lowest band, and the soft bands where the effective area peaks (the table of
    :mod:`skcluster.physics.instrument`, 0.5-1.5 keV) are resolved.
``"ho3"``
    The three bands of Ho et al. 2023 (arXiv:2303.00005): 0.5-1.2, 1.2-2.0,
    2.0-7.0 keV.
``"broad"``
    One band, 0.2-2.3 keV (the eFEDS detection band, Brunner et al. 2022).
``"efeds7"``
    The seven bands of the real eFEDS images shipped for the tests
    (``img_0300_0600`` ... ``img_5000_7000``): 0.3-0.6, 0.6-1.1, 1.1-1.6,
    1.6-2.2, 2.2-3.5, 3.5-5.0, 5.0-7.0 keV. Train on the mock binned in these
    bands to predict from those images.
"""

from __future__ import annotations

import numpy as np

from ..physics.rates import check_bands

__all__ = ["BAND_PRESETS", "resolve_bands", "format_bands", "same_bands"]

_K10_EDGES_KEV = (0.25, 0.31, 0.39, 0.49, 0.61, 0.76, 0.95, 1.18, 1.48, 1.84, 2.30)

#: Named band sets, each a tuple of (lo, hi) keV pairs (see the module docstring
#: for their sources).
BAND_PRESETS = {
    "krippendorf10": tuple(zip(_K10_EDGES_KEV[:-1], _K10_EDGES_KEV[1:])),
    "ho3": ((0.5, 1.2), (1.2, 2.0), (2.0, 7.0)),
    "broad": ((0.2, 2.3),),
    "efeds7": ((0.3, 0.6), (0.6, 1.1), (1.1, 1.6), (1.6, 2.2), (2.2, 3.5), (3.5, 5.0), (5.0, 7.0)),
}


def resolve_bands(bands, step=None):
    """Turn a preset name or a sequence of (lo, hi) pairs into a list of bands.

    Parameters
    ----------
    bands : str or sequence of (float, float)
        A key of :data:`BAND_PRESETS` or explicit bands in keV with
        ``0 < lo < hi``. Bands may leave gaps; they may overlap (an event
        is then counted in every band that contains it).
    step : str, default=None
        Name of the calling step, for error messages.

    Returns
    -------
    list of (float, float)
        The bands as Python floats, in the given order.

    Raises
    ------
    ValueError
        Unknown preset name (the message lists the presets) or malformed
        bands.
    """
    who = f"{step}: " if step else ""
    if isinstance(bands, str):
        try:
            bands = BAND_PRESETS[bands]
        except KeyError:
            raise ValueError(
                f"{who}unknown band preset {bands!r}; presets are "
                f"{sorted(BAND_PRESETS)}, or pass a list of (lo, hi) pairs in keV"
            ) from None
    try:
        arr = check_bands(bands)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{who}{exc}") from None
    return [(float(lo), float(hi)) for lo, hi in arr]


def format_bands(bands):
    """Short text for a list of bands, e.g. ``'0.3-0.6, 0.6-1.1 keV'``."""
    if bands is None:
        return "unknown bands"
    return ", ".join(f"{lo:g}-{hi:g}" for lo, hi in bands) + " keV"


def same_bands(a, b, atol_keV=1e-6):
    """True when two band lists are equal within ``atol_keV`` (None matches all)."""
    if a is None or b is None:
        return True
    if len(a) != len(b):
        return False
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=atol_keV))
