"""r500 of a cluster from its own counts: a fixed point of an L_X-M relation.

A mass M gives r500(M, z) (:func:`skcluster.physics.cosmology.r500_kpc`,
the only definition of r500 in the package); the net count rate within
theta500 gives the rest-frame luminosity through the eROSITA response and a
temperature from an M-T relation; the L_X-M relation turns that luminosity
into the next M (:class:`LuminosityMassMap`). :func:`solve_fixed_point`
iterates M -> next M until it converges, and solves the same equation by
bisection for the rows where the iteration cycles (noisy faint profiles).
"""

from __future__ import annotations

import numpy as np

from ..physics import cosmology
from ..physics.rates import NHRateTables
from ..physics.relations import MASS_PIVOT_MSUN, MT_PIVOT_KEV
from .apertures import psf_aperture_correction

__all__ = ["MASS_BOUNDS_MSUN", "LuminosityMassMap", "bisect_fixed_point", "iterate_fixed_point",
           "solve_fixed_point"]

#: Masses the iteration may reach, Msun.
MASS_BOUNDS_MSUN = (1e12, 1e16)


class LuminosityMassMap:
    """M -> theta500 -> net count rate -> L_X -> M of the L_X-M relation.

    Parameters
    ----------
    net : :class:`~skcluster.baselines.apertures.NetCounts`
    z, exposure : ndarray of shape (m,)
        Redshift, vignetted exposure (s).
    table : :class:`~skcluster.physics.rates.BandRateTable` or :class:`~skcluster.physics.rates.NHRateTables`
        Count rate per unit rest-frame luminosity of each band (one Galactic
        N_H for every cluster, or each cluster's own, rows as ``z``).
    count_bands : sequence of int
        Bands summed for counts.
    lm_relation : (float, float, float)
        (log10 L at :data:`~skcluster.physics.relations.MASS_PIVOT_MSUN`,
        mass slope, E(z) exponent).
    mt_relation : (float, float)
        (M at 5 keV, slope) of E(z) M = M5 (T / 5 keV)^slope.
    kT_given : ndarray of shape (m,) or None
        Known temperatures (keV) used instead of the M-T relation.
    max_radius_arcsec : float
        Apertures are capped here (the background annulus' inner radius).
    count_floor : float
    psf : (float, float) or None
        (core radius in units of r500, King PSF core radius in arcsec) of
        the PSF aperture correction; None for no correction.
    """

    def __init__(self, net, z, exposure, table, count_bands, lm_relation, mt_relation, kT_given,
                 max_radius_arcsec, count_floor, psf):
        self.net, self.z, self.exposure, self.table = net, z, exposure, table
        self.sel = np.asarray(count_bands)
        self.a_lm, self.b_lm, self.c_lm = map(float, lm_relation)
        self.m5, self.s_mt = map(float, mt_relation)
        self.kT_given = kT_given
        self.r_max = max_radius_arcsec
        self.floor = float(count_floor)
        self.psf = psf
        self.ez = cosmology.efunc(z)
        self.kpc_arcmin = cosmology.kpc_per_arcmin(z)
        self.every = np.arange(len(z))

    def theta500_arcsec(self, M, rows=None):
        rows = self.every if rows is None else rows
        return 60.0 * cosmology.r500_kpc(M, self.z[rows]) / self.kpc_arcmin[rows]

    def temperature(self, M, rows=None):
        """Temperature (keV) clipped to the rate table, and the mask of clipped rows."""
        rows = self.every if rows is None else rows
        if self.kT_given is not None:
            kT = self.kT_given[rows]
        else:
            kT = MT_PIVOT_KEV * (self.ez[rows] * M / self.m5) ** (1.0 / self.s_mt)
        lo, hi = self.table.kT_range_keV
        return np.clip(kT, lo, hi), (kT < lo) | (kT > hi)

    def psf_correction(self, theta500, radius):
        if self.psf is None:
            return 1.0
        core_r500, psf_core = self.psf
        return psf_aperture_correction(radius, core_r500 * theta500, psf_core)

    def per_luminosity(self, kT, rows=None):
        """Count rate (counts/s) per erg/s of rest-frame luminosity, count bands summed."""
        rows = self.every if rows is None else rows
        if isinstance(self.table, NHRateTables):
            return self.table(kT, self.z[rows], rows)[:, self.sel].sum(1)
        return self.table(kT, self.z[rows])[:, self.sel].sum(1)

    def luminosity(self, counts, kT, M_theta, radius, rows=None):
        """Rest-frame L_X (erg/s) of ``counts`` within ``radius`` at temperature ``kT``."""
        rows = self.every if rows is None else rows
        return counts * self.psf_correction(M_theta, radius) / self.exposure[rows] / self.per_luminosity(kT, rows)

    def __call__(self, M, rows=None):
        """The next mass (unclipped) for masses ``M`` of rows ``rows``."""
        rows = self.every if rows is None else rows
        th = self.theta500_arcsec(M, rows)
        radius = np.minimum(th, self.r_max)
        counts = self.net(radius, rows)[0][:, self.sel].sum(1)
        kT, _ = self.temperature(M, rows)
        L = self.luminosity(np.maximum(counts, self.floor), kT, th, radius, rows)
        return MASS_PIVOT_MSUN * (L / (10.0**self.a_lm * self.ez[rows] ** self.c_lm)) ** (1.0 / self.b_lm)


def iterate_fixed_point(f, m, tol, max_iter, bounds=MASS_BOUNDS_MSUN, start=MASS_PIVOT_MSUN):
    """Iterate M <- clip(f(M)) from ``start`` until log10 M changes by less than ``tol``.

    Returns
    -------
    M : ndarray of shape (m,)
    iterations : ndarray of int32
    unconverged : ndarray of bool
    """
    M = np.full(m, start)
    active = np.ones(m, dtype=bool)
    iters = np.zeros(m, dtype=np.int32)
    for _ in range(int(max_iter)):
        rows = np.flatnonzero(active)
        M_new = np.clip(f(M[rows], rows), *bounds)
        step = np.abs(np.log10(M_new) - np.log10(M[rows]))
        M[rows] = M_new
        iters[rows] += 1
        active[rows] = step >= tol
        if not active.any():
            break
    return M, iters, active


def bisect_fixed_point(f, rows, bounds=MASS_BOUNDS_MSUN, n_grid=81, n_steps=40):
    """Solve h(M) = log10 f(M) - log10 M = 0 by bisection for ``rows``.

    The bracket is the highest stable root (h going from + to -) on a
    0.05 dex grid of ``bounds``; without a root the mass goes to the bound
    h points to. Returns the masses, Msun.
    """
    grid = np.linspace(np.log10(bounds[0]), np.log10(bounds[1]), n_grid)
    H = np.stack([np.log10(f(np.full(rows.size, 10**g), rows)) - g for g in grid], axis=1)
    stable = (H[:, :-1] > 0) & (H[:, 1:] <= 0)
    has = stable.any(axis=1)
    j = np.where(has, stable.shape[1] - 1 - np.argmax(stable[:, ::-1], axis=1), 0)
    a, b = grid[j], grid[j + 1]
    for _ in range(n_steps):
        mid = 0.5 * (a + b)
        up = np.log10(f(10**mid, rows)) - mid > 0
        a, b = np.where(up, mid, a), np.where(up, b, mid)
    logm = np.where(has, 0.5 * (a + b), np.where(H[:, 0] <= 0, grid[0], grid[-1]))
    return 10**logm


def solve_fixed_point(f, m, tol, max_iter, bounds=MASS_BOUNDS_MSUN):
    """Fixed point of ``f`` for ``m`` rows: iteration, then bisection where it cycles.

    Returns
    -------
    M : ndarray of shape (m,)
    iterations : ndarray of int32
    bisected : ndarray of bool
        Rows solved by bisection.
    """
    M, iters, active = iterate_fixed_point(f, m, tol, max_iter, bounds)
    rows = np.flatnonzero(active)
    if rows.size:
        M[rows] = bisect_fixed_point(f, rows, bounds)
    return M, iters, active
