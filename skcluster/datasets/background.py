"""Sky and particle background, and AGN point sources.

Background (measured from the public eFEDS products, Brunner et al. 2022; counts per *unvignetted* second
per arcmin^2, particle included)::

    0.2-0.5 keV  3.8e-4     0.5-2 keV  1.5e-3     0.2-2.3 keV  2.1e-3
    2.3-5 keV    1.2e-3     5-10 keV   1.6e-3

The mock splits this into three components, fitted to the five rates once
per parameter set (:func:`background_model`, weighted non-negative least
squares on fractional residuals):

* particle background, unvignetted, not folded through the mirrors:
  flat at p0 counts/s/arcmin^2/keV below ``PARTICLE_BREAK_KEV`` = 2.3 keV
  and p0 (E / 2.3 keV)^-s above. The eFEDS particle spectrum is ~4e-4 flat, but a flat
  level that high exceeds the measured 5-10 keV total (5 keV x 4e-4 =
  2.0e-3 > 1.6e-3) and a flat spectrum misses the 2.3-5 keV rate by 15%
  whatever its level; the measured hard bands, where the particle
  background dominates, ask for a gentle fall. s is fitted (grid over
  -0.5..1.5) together with the levels; the fit gives p0 ~ 5.0e-4 and
  s ~ 0.4, and reproduces the five rates within 1.1% (numbers in :func:`background_model`'s result). Below 2.3 keV
  the spectrum is kept flat as measured, rather than extrapolating
  the power law into the band where the sky dominates;
* soft Galactic foreground, an absorbed 0.2 keV bremsstrahlung continuum
  (a stand-in for the Local Hot Bubble and halo; lines are not modelled);
* unresolved cosmic X-ray background, an absorbed Gamma = 1.4 power law.

The two sky components are vignetted (survey vignetting of
:mod:`skcluster.physics.instrument`, absolute, since the rates are per
unvignetted second). The measured rates come from source-masked eFEDS
background maps and so contain the AGN fainter than the eFEDS point-source
limit (``MEASURED_MASK_FLUX_CGS``, 6.5e-15); the mock draws all AGN as
discrete sources (down to ``agn_flux_min_cgs``), so the mean count rate of
those below the eFEDS limit is subtracted from the measured rates before
the fit (when ``include_agn`` is on). The "background map" the detection
step uses is the diffuse part plus the mean of the AGN below the simulated
survey's own limit ``agn_mask_flux_cgs``: at eFEDS depth it reproduces the
measured rates; at a shallower depth (higher limit) it is higher by the
AGN the survey no longer resolves.

AGN: the 0.5-2 keV log N - log S of Lehmer et al. 2012 (per deg^2 above
S: 1e-15: 712, 3e-15: 278, 1e-14: 81, 3e-14: 17, 1e-13: 2.6), interpolated
in log-log and extended beyond 1e-13 with the slope of the last segment
(1.56, close to Euclidean 1.5); photon index
Gamma = 1.8 + 0.5 erf((log10 S + 14) / 0.5) (faint AGN harder; a smooth form,
[uncertain]), quantised to 0.01
for the spectral tables.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.optimize import nnls
from scipy.special import erf

from ..physics.emission import bremsstrahlung_photon_spectrum, powerlaw_photon_spectrum
from ..physics.instrument import energy_grid_keV, vignetting_factor
from ..physics.rates import observed_response, powerlaw_band_rates

__all__ = [
    "MEASURED_BACKGROUND",
    "lehmer_n_above",
    "agn_photon_index",
    "sample_agn_fluxes",
    "agn_tables",
    "background_model",
    "faint_agn_map_rate",
    "energy_grid",
    "inverse_cdf",
]

#: eFEDS background, counts / s (unvignetted) / arcmin^2, particle included
#: (measured from the public eFEDS products, Brunner et al. 2022): band (keV) -> rate.
MEASURED_BACKGROUND = {
    (0.2, 0.5): 3.8e-4,
    (0.5, 2.0): 1.5e-3,
    (0.2, 2.3): 2.1e-3,
    (2.3, 5.0): 1.2e-3,
    (5.0, 10.0): 1.6e-3,
}
#: Point-source limit of the survey the background was measured in (eFEDS,
#: 0.5-2 keV, erg/s/cm^2; Brunner et al. 2022): the measured rates hold the
#: AGN below it, so the diffuse component is the measured rate less their
#: mean, whatever the point-source limit of the survey simulated.
MEASURED_MASK_FLUX_CGS = 6.5e-15
#: Temperature of the soft foreground component, keV [uncertain].
SOFT_KT_KEV = 0.2
#: Energy below which the particle spectrum is flat, keV.
PARTICLE_BREAK_KEV = 2.3
#: Photon index of the unresolved CXB (e.g. Hickox & Markevitch 2006: 1.4).
CXB_GAMMA = 1.4

# Lehmer et al. 2012 (ApJ 752, 46), 0.5-2 keV: N(>S) per deg^2.
_LEHMER_S = np.array([1e-15, 3e-15, 1e-14, 3e-14, 1e-13])
_LEHMER_N = np.array([712.0, 278.0, 81.0, 17.0, 2.6])
_LOG_S = np.log10(_LEHMER_S)
_LOG_N = np.log10(_LEHMER_N)
_SLOPE_LO = (_LOG_N[1] - _LOG_N[0]) / (_LOG_S[1] - _LOG_S[0])
_SLOPE_HI = (_LOG_N[-1] - _LOG_N[-2]) / (_LOG_S[-1] - _LOG_S[-2])

#: Energy grid step for folding and sampling spectra, keV.
ENERGY_STEP_KEV = 0.005
#: Photon-index grid of the AGN spectral tables.
_GAMMA_GRID = np.round(np.arange(1.25, 2.3501, 0.01), 2)


def lehmer_n_above(flux_cgs):
    """N(>S) per deg^2 of AGN, 0.5-2 keV (Lehmer et al. 2012, log-log interpolation)."""
    ls = np.log10(np.asarray(flux_cgs, dtype=np.float64))
    ln = np.interp(ls, _LOG_S, _LOG_N)
    ln = np.where(ls < _LOG_S[0], _LOG_N[0] + _SLOPE_LO * (ls - _LOG_S[0]), ln)
    ln = np.where(ls > _LOG_S[-1], _LOG_N[-1] + _SLOPE_HI * (ls - _LOG_S[-1]), ln)
    return 10.0**ln


def _log_s_for_n(log_n):
    """Inverse of log10 N(>S) (decreasing in S): log10 S for given log10 N."""
    ls = np.interp(-log_n, -_LOG_N, _LOG_S)
    ls = np.where(log_n > _LOG_N[0], _LOG_S[0] + (log_n - _LOG_N[0]) / _SLOPE_LO, ls)
    ls = np.where(log_n < _LOG_N[-1], _LOG_S[-1] + (log_n - _LOG_N[-1]) / _SLOPE_HI, ls)
    return ls


def agn_photon_index(flux_cgs):
    """Gamma = 1.8 + 0.5 erf((log10 S + 14) / 0.5) (a smooth hardening of faint AGN, [uncertain])."""
    return 1.8 + 0.5 * erf((np.log10(np.asarray(flux_cgs, dtype=np.float64)) + 14.0) / 0.5)


def sample_agn_fluxes(rng, n, s_min, s_max):
    """Draw ``n`` 0.5-2 keV fluxes (erg/s/cm^2) from the log N - log S in [s_min, s_max]."""
    n_lo, n_hi = np.log10(lehmer_n_above(s_min)), np.log10(lehmer_n_above(s_max))
    # N(>S) is uniform in the cumulative count: draw it, invert
    cum = 10.0**n_hi + rng.random(n) * (10.0**n_lo - 10.0**n_hi)
    return 10.0 ** _log_s_for_n(np.log10(cum))


@lru_cache(maxsize=4)
def energy_grid(lo, hi):
    """Bin centres, widths and edges of the sampling grid (keV)."""
    e, de = energy_grid_keV(lo, hi, ENERGY_STEP_KEV)
    edges = np.concatenate([[e[0] - 0.5 * de[0]], e + 0.5 * de])
    return e, de, edges


def inverse_cdf(counts_per_bin):
    """Normalised cumulative distribution at the bin edges (starts at 0)."""
    c = np.concatenate([[0.0], np.cumsum(counts_per_bin)])
    return c / c[-1]


def quantise_gamma(gamma):
    """Index into the AGN photon-index grid (steps of 0.01)."""
    return np.clip(np.rint((np.asarray(gamma) - _GAMMA_GRID[0]) / 0.01).astype(np.intp), 0, _GAMMA_GRID.size - 1)


@lru_cache(maxsize=64)
def agn_tables(nH_cm2, energy_range_keV, det_band_keV):
    """AGN count rates per unit flux and energy CDFs on the photon-index grid.

    Returns
    -------
    dict
        ``gamma`` (grid), ``rate_full`` and ``rate_det`` (counts per second
        of vignetted exposure at 1 keV per erg/s/cm^2 of 0.5-2 keV flux, in
        the simulated range and the detection band), ``cdf_flat`` (CDFs of
        all rows, row i shifted by +i, for one ``np.interp`` call) and
        ``edges`` (energy bin edges, keV).
    """
    lo, hi = energy_range_keV
    e, de, edges = energy_grid(lo, hi)
    rates = powerlaw_band_rates(np.ones(_GAMMA_GRID.size), _GAMMA_GRID, [energy_range_keV, det_band_keV],
                                nH_cm2=nH_cm2, reference_keV=1.0)
    resp = observed_response(e, nH_cm2, reference_keV=1.0) * de
    cdfs = np.stack([inverse_cdf(powerlaw_photon_spectrum(e, g) * resp) for g in _GAMMA_GRID])
    flat = (cdfs + np.arange(_GAMMA_GRID.size)[:, None]).ravel()
    return {"gamma": _GAMMA_GRID, "rate_full": rates[:, 0], "rate_det": rates[:, 1],
            "cdf_flat": flat, "n_edges": edges.size, "edges": edges}


def _faint_agn_rates(params, bands, mask_flux_cgs=None):
    """Mean AGN counts / s (unvignetted) / arcmin^2 from S_min to the mask limit, per band.

    ``mask_flux_cgs`` (default ``params.agn_mask_flux_cgs``) is the limit.
    """
    limit = params.agn_mask_flux_cgs if mask_flux_cgs is None else mask_flux_cgs
    if not params.include_agn or limit <= params.agn_flux_min_cgs:
        return np.zeros(len(bands))
    s = np.logspace(np.log10(params.agn_flux_min_cgs), np.log10(limit), 400)
    dn = -np.diff(lehmer_n_above(s))  # per deg^2
    sm = np.sqrt(s[1:] * s[:-1])
    g = np.round(agn_photon_index(sm), 2)
    per_vig = powerlaw_band_rates(sm, g, bands, nH_cm2=params.nH_cm2, reference_keV=1.0)
    per_unvig = per_vig * vignetting_factor(1.0)  # vignetted(1 keV) -> unvignetted seconds
    return (dn[:, None] * per_unvig).sum(axis=0) / 3600.0


def _particle_shape(e, slope):
    """Particle spectrum shape: 1 below the break, (E / break)^-slope above."""
    return np.where(e < PARTICLE_BREAK_KEV, 1.0, (np.maximum(e, 1e-9) / PARTICLE_BREAK_KEV) ** -slope)


@lru_cache(maxsize=16)
def _background_fit(nH_cm2, include_agn, agn_flux_min_cgs, agn_mask_flux_cgs, energy_range_keV):
    class _P:  # the few parameters the AGN integral needs
        pass

    p = _P()
    p.nH_cm2, p.include_agn = nH_cm2, include_agn
    p.agn_flux_min_cgs, p.agn_mask_flux_cgs = agn_flux_min_cgs, agn_mask_flux_cgs
    bands = list(MEASURED_BACKGROUND)
    measured = np.array([MEASURED_BACKGROUND[b] for b in bands])
    # the measured rates hold the AGN below the limit of the survey they were
    # measured in (eFEDS), whatever the limit of the survey simulated
    faint = _faint_agn_rates(p, bands, MEASURED_MASK_FLUX_CGS)
    target = measured - faint
    lo, hi = min(energy_range_keV[0], 0.2), max(energy_range_keV[1], 10.0)
    e, de, _ = energy_grid(lo, hi)
    masks = np.array([(e >= a) & (e < b) for a, b in bands], dtype=np.float64)
    sky_resp = observed_response(e, nH_cm2, reference_keV=None) * vignetting_factor(e) * de
    soft = bremsstrahlung_photon_spectrum(e, SOFT_KT_KEV) * sky_resp
    cxb = powerlaw_photon_spectrum(e, CXB_GAMMA) * sky_resp
    best = None
    for slope in np.arange(-0.5, 1.5001, 0.01):
        part = _particle_shape(e, slope) * de
        a = np.stack([masks @ part, masks @ soft, masks @ cxb], axis=1) / target[:, None]
        coef, resid = nnls(a, np.ones(len(bands)))
        if best is None or resid < best[0] - 1e-12:
            best = (resid, slope, coef)
    _, slope, (p0, n_soft, n_cxb) = best
    return {
        "bands": bands, "measured": measured, "faint_agn": faint,
        "particle_norm": float(p0), "particle_slope": float(round(slope, 2)),
        "soft_norm": float(n_soft), "cxb_norm": float(n_cxb),
    }


@lru_cache(maxsize=16)
def _faint_det_table(nH_cm2, include_agn, agn_flux_min_cgs, det_band_keV):
    """log10 limits and the faint-AGN mean rate below each (detection band, unvignetted s, arcmin^2)."""
    class _P:
        pass

    p = _P()
    p.nH_cm2, p.include_agn, p.agn_flux_min_cgs = nH_cm2, include_agn, agn_flux_min_cgs
    log_lim = np.linspace(np.log10(agn_flux_min_cgs), -11.0, 161)
    rates = np.array([_faint_agn_rates(p, [det_band_keV], 10.0**ll)[0] for ll in log_lim])
    return log_lim, rates


def faint_agn_map_rate(params, limit_cgs):
    """Mean rate of the AGN below ``limit_cgs`` (array) in the detection band.

    Counts / s (unvignetted) / arcmin^2: what a source-masked background map
    holds besides the diffuse background when the point sources above
    ``limit_cgs`` (0.5-2 keV, erg/s/cm^2) are detected and masked. Linear
    interpolation in log limit on 161 points (0.03 dex).
    """
    limit = np.asarray(limit_cgs, dtype=np.float64)
    if not params.include_agn:
        return np.zeros(limit.shape)
    log_lim, rates = _faint_det_table(params.nH_cm2, params.include_agn, params.agn_flux_min_cgs,
                                      tuple(params.det_band_keV))
    return np.interp(np.log10(np.maximum(limit, 1e-30)), log_lim, rates, left=0.0)


@lru_cache(maxsize=16)
def background_model(params):
    """Background spectra of the mock for a parameter set.

    Returns
    -------
    dict
        ``particle_norm`` (counts/s/arcmin^2/keV below 2.3 keV, unvignetted),
        ``particle_slope``, ``soft_norm``, ``cxb_norm`` (fit results);
        ``fit_rates`` and ``measured`` per band (diffuse + faint-AGN mean,
        counts/s unvignetted/arcmin^2, before ``background_scale``);
        ``rate_full`` (diffuse counts/s unvignetted/arcmin^2 over the
        simulated energy range), ``rate_det`` (the same in the detection
        band), ``map_det`` (``rate_det`` plus the faint-AGN mean: the
        background map of the detection step), the diffuse rates times
        ``background_scale``; ``cdf`` and ``edges`` for drawing energies.
        A cluster with its own background factor and point-source limit
        (preset ``erosita``) has the map ``rate_det * factor`` plus
        :func:`faint_agn_map_rate` at its limit.
    """
    fit = _background_fit(params.nH_cm2, params.include_agn, params.agn_flux_min_cgs,
                          params.agn_mask_flux_cgs, tuple(params.energy_range_keV))
    e, de, edges = energy_grid(*params.energy_range_keV)
    sky_resp = observed_response(e, params.nH_cm2, reference_keV=None) * vignetting_factor(e) * de
    spec = (fit["particle_norm"] * _particle_shape(e, fit["particle_slope"]) * de
            + fit["soft_norm"] * bremsstrahlung_photon_spectrum(e, SOFT_KT_KEV) * sky_resp
            + fit["cxb_norm"] * powerlaw_photon_spectrum(e, CXB_GAMMA) * sky_resp)
    lo, hi = params.det_band_keV
    in_det = (e >= lo) & (e < hi)
    # model rates in the measured bands, for the record and the tests
    eb, deb, _ = energy_grid(min(params.energy_range_keV[0], 0.2), max(params.energy_range_keV[1], 10.0))
    sky_b = observed_response(eb, params.nH_cm2, reference_keV=None) * vignetting_factor(eb) * deb
    spec_b = (fit["particle_norm"] * _particle_shape(eb, fit["particle_slope"]) * deb
              + fit["soft_norm"] * bremsstrahlung_photon_spectrum(eb, SOFT_KT_KEV) * sky_b
              + fit["cxb_norm"] * powerlaw_photon_spectrum(eb, CXB_GAMMA) * sky_b)
    fit_rates = np.array([spec_b[(eb >= a) & (eb < b)].sum() for a, b in fit["bands"]]) + fit["faint_agn"]
    faint_det = _faint_agn_rates(params, [params.det_band_keV])[0]
    scale = params.background_scale
    return {
        **fit,
        "fit_rates": fit_rates,
        "rate_full": float(spec.sum()) * scale,
        "rate_det": float(spec[in_det].sum()) * scale,
        "map_det": (float(spec[in_det].sum()) * scale + faint_det),
        "cdf": inverse_cdf(spec),
        "edges": edges,
    }
