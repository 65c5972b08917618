"""X-ray spectra of the intracluster medium and of AGN, and Galactic absorption.

* Thermal bremsstrahlung with the Born-approximation Gaunt factor,
  dN/dE ~ g(E/kT) exp(-E/kT) / E with g(u) = (sqrt(3)/pi) exp(u/2) K0(u/2)
  (Rybicki & Lightman 1979, eq. 5.14b and Fig. 5.2), computed with
  :func:`scipy.special.k0e`. Emission lines (the Fe-L complex near 1 keV,
  important below kT ~ 3 keV) are not included: the continuum sets the band
  ratios here, so the mock's temperature information in the bands is a
  lower bound on what real spectra carry.
* Power laws for AGN (photon index Gamma).
* Photoelectric absorption by the Galaxy, Morrison & McCammon 1983, ApJ 270,
  119 (the ``wabs`` model): sigma(E) = (c0 + c1 E + c2 E^2) E^-3 1e-24 cm^2
  per H atom, E in keV, coefficients of their Table 2.
"""

from __future__ import annotations

import numpy as np
from scipy.special import k0e

__all__ = [
    "KEV_TO_ERG",
    "gaunt_born",
    "bremsstrahlung_photon_spectrum",
    "powerlaw_photon_spectrum",
    "mm83_cross_section_cm2",
    "absorption",
]

#: 1 keV in erg (CODATA).
KEV_TO_ERG = 1.602176634e-9

# Morrison & McCammon 1983, Table 2: upper edge of each range (keV), c0, c1, c2.
_MM83 = np.array(
    [
        # E_lo,  E_hi,   c0,     c1,     c2
        [0.030, 0.100, 17.3, 608.1, -2150.0],
        [0.100, 0.284, 34.6, 267.9, -476.1],
        [0.284, 0.400, 78.1, 18.8, 4.3],
        [0.400, 0.532, 71.4, 66.8, -51.4],
        [0.532, 0.707, 95.5, 145.8, -61.1],
        [0.707, 0.867, 308.9, -380.6, 294.0],
        [0.867, 1.303, 120.6, 169.3, -47.7],
        [1.303, 1.840, 141.3, 146.8, -31.5],
        [1.840, 2.471, 202.7, 104.7, -17.0],
        [2.471, 3.210, 342.7, 18.7, 0.0],
        [3.210, 4.038, 352.2, 18.7, 0.0],
        [4.038, 7.111, 433.9, -2.4, 0.75],
        [7.111, 8.331, 629.0, 30.9, 0.0],
        [8.331, 10.000, 701.2, 25.2, 0.0],
    ]
)


def gaunt_born(energy_keV, kT_keV):
    """Born-approximation free-free Gaunt factor g(E/kT).

    g = (sqrt(3)/pi) exp(u/2) K0(u/2), u = E/kT (Rybicki & Lightman 1979).
    Computed as (sqrt(3)/pi) k0e(u/2), stable for large u.
    """
    u = np.asarray(energy_keV, dtype=np.float64) / np.asarray(kT_keV, dtype=np.float64)
    return np.sqrt(3.0) / np.pi * k0e(0.5 * u)


def bremsstrahlung_photon_spectrum(energy_keV, kT_keV):
    """Unnormalised photon spectrum dN/dE of an isothermal plasma.

    dN/dE ~ g(E/kT) exp(-E/kT) / E (photons per keV, arbitrary
    normalisation; the temperature dependence of the emission measure is not
    included, normalise to a band luminosity instead).
    """
    e = np.asarray(energy_keV, dtype=np.float64)
    kT = np.asarray(kT_keV, dtype=np.float64)
    return gaunt_born(e, kT) * np.exp(-e / kT) / e


def powerlaw_photon_spectrum(energy_keV, photon_index):
    """Unnormalised power-law photon spectrum dN/dE ~ E^-Gamma."""
    return np.asarray(energy_keV, dtype=np.float64) ** (-np.asarray(photon_index, dtype=np.float64))


def mm83_cross_section_cm2(energy_keV):
    """Photoelectric cross-section per H atom, cm^2 (Morrison & McCammon 1983).

    Valid for 0.03-10 keV; energies outside use the nearest range's
    polynomial.
    """
    e = np.asarray(energy_keV, dtype=np.float64)
    idx = np.clip(np.searchsorted(_MM83[:, 1], e, side="left"), 0, len(_MM83) - 1)
    c0, c1, c2 = _MM83[idx, 2], _MM83[idx, 3], _MM83[idx, 4]
    return (c0 + c1 * e + c2 * e**2) * e**-3 * 1e-24


def absorption(energy_keV, nH_cm2):
    """Transmission exp(-N_H sigma(E)) through the Galaxy (MM83 ``wabs``).

    Parameters
    ----------
    energy_keV : array-like
    nH_cm2 : float or array-like
        Hydrogen column, cm^-2 (eFEDS: ~3-3.5e20, Brunner et al. 2022).
    """
    return np.exp(-np.asarray(nH_cm2, dtype=np.float64) * mm83_cross_section_cm2(energy_keV))
