"""Cluster population: halo masses and redshifts, and sky positions.

Halos are drawn from a mass function for M500c (``mass_function_model``:
Tinker et al. 2008 by default; Despali et al. 2016 or Bocquet et al. 2016;
computed with ``colossus``, Diemer 2018, ApJS 239, 35) times the comoving
volume element dV_c/dz/dOmega of the flat LambdaCDM model of
:mod:`skcluster.physics.cosmology`, between ``z_min`` and ``z_max`` and
``10**log10_m500_min`` and ``10**log10_m500_max`` Msun (the
ranges of the seed study, arXiv:2305.00016). colossus works in Msun/h and
(Mpc/h)^-3; the conversion to Msun (h = H0/100) is done here.

The sky is cut into *tiles* of equal area (``TILE_DEG2``) laid out in rings
of declination; each tile draws its halos from its own random stream, so a
survey is the union of independent tiles and does not depend on how the
work is split between processes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..physics.cosmology import dvc_dz_mpc3_sr, get_cosmology

__all__ = ["TILE_DEG2", "SKY_DEG2", "halo_density_grid", "expected_halos_per_deg2", "sample_halos",
           "tile_geometry", "sample_positions"]

#: Area of one sky tile, deg^2 (a survey is built tile by tile).
TILE_DEG2 = 10.0
#: Whole sky, deg^2.
SKY_DEG2 = 4.0 * np.pi * (180.0 / np.pi) ** 2
_SR_PER_DEG2 = (np.pi / 180.0) ** 2

# Mass-function grid: cells of 0.005 dex in mass and ~0.005 in redshift.
_DLOGM = 0.005
_NZ = 300


def _colossus_mass_function(log10_m_msun, z, H0, Om0, Ob0, sigma8, ns, model="tinker08"):
    """dn/dlnM in Mpc^-3 (h absorbed) on the (z, M) grid, M500c, colossus model ``model``."""
    from colossus.cosmology import cosmology as ccosmo
    from colossus.lss import mass_function

    h = H0 / 100.0
    try:
        previous = ccosmo.getCurrent()
    except Exception:  # colossus raises when no cosmology is set
        previous = None
    try:
        # persistence='' : no cache file is written; relspecies
        # off so that the expansion history matches astropy's FlatLambdaCDM.
        ccosmo.setCosmology(
            "skcluster_mock",
            params=dict(flat=True, H0=H0, Om0=Om0, Ob0=Ob0, sigma8=sigma8, ns=ns, relspecies=False),
            persistence="",
        )
        m_h = 10.0**log10_m_msun * h  # Msun/h
        out = np.empty((z.size, m_h.size))
        for i, zi in enumerate(z):
            out[i] = mass_function.massFunction(m_h, zi, mdef="500c", model=model, q_out="dndlnM")
        return out * h**3  # (Mpc/h)^-3 -> Mpc^-3
    finally:
        if previous is not None:
            ccosmo.setCurrent(previous)


@lru_cache(maxsize=8)
def halo_density_grid(H0, Om0, Ob0, sigma8, ns, z_min, z_max, log10_m_min, log10_m_max, model="tinker08"):
    """Expected halos per deg^2 in each (z, log10 M) cell (``model``: the colossus mass function).

    Returns
    -------
    z_edges : ndarray of shape (n_z + 1,)
    logm_edges : ndarray of shape (n_m + 1,)
        log10 M500c / Msun.
    counts : ndarray of shape (n_z, n_m)
        Expected halos per deg^2 per cell (midpoint rule).
    """
    nm = max(int(round((log10_m_max - log10_m_min) / _DLOGM)), 2)
    logm_edges = np.linspace(log10_m_min, log10_m_max, nm + 1)
    z_edges = np.linspace(z_min, z_max, _NZ + 1)
    logm_c = 0.5 * (logm_edges[1:] + logm_edges[:-1])
    z_c = 0.5 * (z_edges[1:] + z_edges[:-1])
    dndlnm = _colossus_mass_function(logm_c, z_c, H0, Om0, Ob0, sigma8, ns, model)  # Mpc^-3
    dv = dvc_dz_mpc3_sr(z_c, get_cosmology(H0, Om0)) * _SR_PER_DEG2  # Mpc^3 / deg^2 / dz
    dlnm = np.diff(logm_edges) * np.log(10.0)
    counts = dndlnm * dv[:, None] * np.diff(z_edges)[:, None] * dlnm[None, :]
    counts.setflags(write=False)
    return z_edges, logm_edges, counts


def _grid(params):
    return halo_density_grid(params.H0, params.Om0, params.Ob0, params.sigma8, params.ns,
                             params.z_min, params.z_max, params.log10_m500_min, params.log10_m500_max,
                             params.mass_function_model)


def expected_halos_per_deg2(params, log10_m_min=None, z_max=None):
    """Expected number of halos per deg^2 (optionally above a mass / below a redshift)."""
    z_edges, logm_edges, counts = _grid(params)
    sel_m = np.ones(counts.shape[1], bool) if log10_m_min is None else logm_edges[:-1] >= log10_m_min
    sel_z = np.ones(counts.shape[0], bool) if z_max is None else z_edges[1:] <= z_max
    return float(counts[np.ix_(sel_z, sel_m)].sum())


def sample_halos(rng, params, area_deg2, grid=None):
    """Draw halos (log10 M500c/Msun, z) in ``area_deg2`` of sky.

    The number is Poisson with the mean of the mass function integral; each
    halo picks a (z, M) cell with probability proportional to its expected
    count and a uniform position within the cell.

    ``grid`` is the result of :func:`halo_density_grid` for ``params``
    (computed and cached when None).

    Returns
    -------
    log10_m500 : ndarray of shape (n,)
    z : ndarray of shape (n,)
    """
    z_edges, logm_edges, counts = _grid(params) if grid is None else grid
    cdf = np.cumsum(counts.ravel())
    total = cdf[-1]
    n = rng.poisson(total * area_deg2)
    cell = np.searchsorted(cdf, rng.random(n) * total, side="right")
    cell = np.minimum(cell, cdf.size - 1)
    iz, im = np.divmod(cell, counts.shape[1])
    u = rng.random((2, n))
    z = z_edges[iz] + u[0] * (z_edges[iz + 1] - z_edges[iz])
    logm = logm_edges[im] + u[1] * (logm_edges[im + 1] - logm_edges[im])
    return logm, z


# -- sky tiles ---------------------------------------------------------------
#: Tiles start at the western edge of the eFEDS field (RA ~ 126 deg, Brunner
#: et al. 2022) and fill rings of declination 10 deg high, first northward
#: from dec = -5 deg, then southward; the polar caps (|dec| > 85) are unused.
_RA0_DEG = 126.0


def _rings():
    north = [(lo, lo + 10.0) for lo in np.arange(-5.0, 85.0 - 1e-9, 10.0)]
    south = [(hi - 10.0, hi) for hi in np.arange(-5.0, -85.0 + 1e-9, -10.0)]
    rings = []
    for lo, hi in north + south:
        band_deg2 = (180.0 / np.pi) * (np.sin(np.deg2rad(hi)) - np.sin(np.deg2rad(lo))) * 360.0
        rings.append((lo, hi, int(band_deg2 // TILE_DEG2)))
    return rings


_RINGS = _rings()
#: Largest area the tiles can cover, deg^2.
MAX_AREA_DEG2 = TILE_DEG2 * sum(r[2] for r in _RINGS)


def tile_geometry(k, area_deg2=TILE_DEG2):
    """Sky rectangle of tile ``k``: (ra_lo, ra_hi, dec_lo, dec_hi) in deg.

    ``area_deg2`` smaller than a full tile gives the western part of the
    tile (for the last, partial tile of a survey).
    """
    for lo, hi, n in _RINGS:
        if k < n:
            dsin = np.sin(np.deg2rad(hi)) - np.sin(np.deg2rad(lo))
            width = TILE_DEG2 / ((180.0 / np.pi) * dsin)
            ra_lo = _RA0_DEG + k * width
            return ra_lo, ra_lo + width * area_deg2 / TILE_DEG2, lo, hi
        k -= n
    raise ValueError(
        f"a survey of this size needs more than the {MAX_AREA_DEG2:.0f} deg^2 the tiles can cover"
    )


def sample_positions(rng, n, geometry):
    """Uniform positions on the sphere within a tile rectangle: (ra, dec) deg."""
    ra_lo, ra_hi, dec_lo, dec_hi = geometry
    ra = np.mod(ra_lo + rng.random(n) * (ra_hi - ra_lo), 360.0)
    s_lo, s_hi = np.sin(np.deg2rad(dec_lo)), np.sin(np.deg2rad(dec_hi))
    dec = np.rad2deg(np.arcsin(s_lo + rng.random(n) * (s_hi - s_lo)))
    return ra, dec
