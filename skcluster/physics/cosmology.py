"""Cosmology and cluster radii.

Flat LambdaCDM with H0 = 70 km/s/Mpc and Om0 = 0.3, the choice of the eFEDS
cluster papers (Liu et al. 2022, A&A 661, A2; Chiu et al. 2022, A&A 661,
A11), built on :class:`astropy.cosmology.FlatLambdaCDM`. Masses are M500c in
Msun (h = 0.7 absorbed, not Msun/h).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM

__all__ = [
    "H0_KMS_MPC",
    "OM0",
    "get_cosmology",
    "efunc",
    "rho_crit_msun_mpc3",
    "r500_kpc",
    "theta500_arcmin",
    "luminosity_distance_cm",
    "angular_diameter_distance_kpc",
    "kpc_per_arcmin",
    "dvc_dz_mpc3_sr",
]

#: Hubble constant, km/s/Mpc (eFEDS papers, Liu et al. 2022).
H0_KMS_MPC = 70.0
#: Matter density today (flat; eFEDS papers, Liu et al. 2022).
OM0 = 0.3

_MPC_CM = (1 * u.Mpc).to_value(u.cm)


@lru_cache(maxsize=8)
def get_cosmology(H0=H0_KMS_MPC, Om0=OM0):
    """A flat LambdaCDM :class:`~astropy.cosmology.FlatLambdaCDM` (cached).

    Parameters
    ----------
    H0 : float, default=70
        km/s/Mpc.
    Om0 : float, default=0.3
    """
    if not (0 < Om0 < 1):
        raise ValueError(f"Om0 must be in (0, 1), got {Om0!r}")
    if not (30 < H0 < 120):
        raise ValueError(f"H0 must be in (30, 120) km/s/Mpc, got {H0!r}")
    return FlatLambdaCDM(H0=H0, Om0=Om0)


def efunc(z, cosmo=None):
    """E(z) = H(z)/H0 = sqrt(Om (1+z)^3 + OL) for the flat model."""
    cosmo = cosmo or get_cosmology()
    return np.asarray(cosmo.efunc(np.asarray(z, dtype=np.float64)))


def rho_crit_msun_mpc3(z, cosmo=None):
    """Critical density at redshift ``z``, Msun / Mpc^3."""
    cosmo = cosmo or get_cosmology()
    return np.asarray(cosmo.critical_density(np.asarray(z, dtype=np.float64)).to_value(u.Msun / u.Mpc**3))


def r500_kpc(m500_msun, z, cosmo=None):
    """r500c = [3 M500 / (4 pi 500 rho_c(z))]^(1/3), kpc.

    For h = 0.7 this is 889 kpc (M500 / 2e14 Msun)^(1/3) E(z)^(-2/3)
    (H0 = 70 km/s/Mpc, Om0 = 0.3).
    """
    m = np.asarray(m500_msun, dtype=np.float64)
    r_mpc = (3.0 * m / (4.0 * np.pi * 500.0 * rho_crit_msun_mpc3(z, cosmo))) ** (1.0 / 3.0)
    return r_mpc * 1e3


def angular_diameter_distance_kpc(z, cosmo=None):
    """Angular-diameter distance, kpc."""
    cosmo = cosmo or get_cosmology()
    return np.asarray(cosmo.angular_diameter_distance(np.asarray(z, dtype=np.float64)).to_value(u.kpc))


def kpc_per_arcmin(z, cosmo=None):
    """Proper kpc subtended by one arcmin at redshift ``z``."""
    return angular_diameter_distance_kpc(z, cosmo) * np.deg2rad(1.0 / 60.0)


def theta500_arcmin(m500_msun, z, cosmo=None):
    """Angular r500, arcmin.

    Check: M500 = 1.37e14 Msun at z = 0.35 gives 2.31 arcmin, near the
    eFEDS median of 2.36 arcmin measured from the public eFEDS products
    (Liu et al. 2022).
    """
    return r500_kpc(m500_msun, z, cosmo) / kpc_per_arcmin(z, cosmo)


def luminosity_distance_cm(z, cosmo=None):
    """Luminosity distance, cm."""
    cosmo = cosmo or get_cosmology()
    return np.asarray(cosmo.luminosity_distance(np.asarray(z, dtype=np.float64)).to_value(u.Mpc)) * _MPC_CM


def dvc_dz_mpc3_sr(z, cosmo=None):
    """Comoving volume element dV_c / dz / dOmega, Mpc^3 per steradian."""
    cosmo = cosmo or get_cosmology()
    return np.asarray(cosmo.differential_comoving_volume(np.asarray(z, dtype=np.float64)).to_value(u.Mpc**3 / u.sr))
