"""Shared physics: cosmology, spectra, the eROSITA response, count rates.

Used by the mock survey (:mod:`skcluster.datasets`) and by the
scalar-observable baselines (flux, L_X, K-corrections), so that both fold
spectra through the same response. Every number carries its source in the
module docstrings: the paper it comes from, or the eFEDS data release
(Brunner et al. 2022, A&A 661, A1; Liu et al. 2022, A&A 661, A2) for the
numbers measured from the public eFEDS products.
"""

from . import cosmology, emission, instrument, rates, relations
from .cosmology import efunc, get_cosmology, luminosity_distance_cm, r500_kpc, theta500_arcmin
from .rates import BandRateTable, powerlaw_band_rates, thermal_band_rates

__all__ = [
    "BandRateTable",
    "cosmology",
    "efunc",
    "emission",
    "get_cosmology",
    "instrument",
    "luminosity_distance_cm",
    "powerlaw_band_rates",
    "r500_kpc",
    "rates",
    "relations",
    "theta500_arcmin",
    "thermal_band_rates",
]
