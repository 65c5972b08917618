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
(1.56, close to Euclidean 1.5), or (``agn_lognlogs="efeds"``) the eFEDS
point-like catalogue's above its limit of 6.5e-15 (Liu T. et al. 2022;
1.2-1.55x Lehmer et al.'s between 1e-14 and 1e-13); photon index
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
    "MEASURED_BACKGROUND_FIELD",
    "BACKGROUND_MEASUREMENTS",
    "background_band_rates",
    "lehmer_n_above",
    "agn_n_above",
    "AGN_LOGNLOGS",
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
#: eFEDS background measured anew on the public Early Data Release images of
#: one 34' x 34' eFEDS field (evtool images and unvignetted expmap exposure
#: maps of the region around eFEDS J092121.2+031726, as distributed with
#: J. Sanders' mbproj2d; data: Brunner et al. 2022, A&A 661, A1): counts /
#: s (unvignetted) / arcmin^2, point sources masked with the field's source
#: mask, pixels more than 5' from the field's two clusters (Poisson errors
#: 1.5-3.5%; the same within 2% for 4'-8' exclusion radii). Reproduce with
#: ``python benchmarks/validate_sky.py --field-only``. Summed over 0.3-2.2
#: keV it is 2.97e-3, 1.4x the 2.1e-3 of :data:`MEASURED_BACKGROUND` in the
#: wider 0.2-2.3 keV band, and agrees with the background level the eSASS
#: detection fit found at the 542 eFEDS clusters (catalogue ML_BKG /
#: ML_EXP: median 6.0 counts / arcmin^2 per ks of vignetted exposure, Liu
#: et al. 2022, A&A 661, A2; 2.97e-3 / 0.541 = 5.5 per ks in the narrower
#: band), where :data:`MEASURED_BACKGROUND` gives 3.85.
MEASURED_BACKGROUND_FIELD = {
    (0.3, 0.6): 1.034e-3,
    (0.6, 1.1): 8.95e-4,
    (1.1, 1.6): 5.82e-4,
    (1.6, 2.2): 4.55e-4,
    (2.2, 3.5): 6.33e-4,
    (3.5, 5.0): 7.01e-4,
    (5.0, 7.0): 8.69e-4,
}
#: The background measurements the mock can be built on
#: (``SurveyParameters.background_measurement``).
BACKGROUND_MEASUREMENTS = {"mock_v1": MEASURED_BACKGROUND, "efeds_field": MEASURED_BACKGROUND_FIELD}
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
#: The eFEDS point-like catalogue's N(>S) per deg^2 (Liu T. et al. 2022, A&A
#: 661, A5: 22,079 sources with 0.5-2 keV spectral fluxes ``FluxCorr_Med_s``
#: in ~140 deg^2; Poisson errors 1-4% up to 1e-13, 9% at 2e-13, 17% at
#: 5e-13) from its point-source limit 6.5e-15 (Brunner et al. 2022) up,
#: with Lehmer et al.'s below. The two agree at 6.5e-15 (125.9 per deg^2);
#: above it eFEDS has 1.2-1.55x Lehmer et al.'s (whose bright end rests on
#: a 0.13 deg^2 field), e.g. 99.1 against 81 above 1e-14. Reproduce with
#: ``python benchmarks/validate_sky.py --field-only``.
_EFEDS_S = np.array([1e-15, 3e-15, 6.5e-15, 1e-14, 2e-14, 3e-14, 5e-14, 1e-13, 2e-13, 5e-13])
_EFEDS_N = np.array([712.0, 278.0, 125.93, 99.11, 46.76, 26.31, 11.66, 3.443, 0.957, 0.229])


class _LogNLogS:
    """A cumulative log N - log S tabulated in log-log, extended with its end segments' slopes."""

    def __init__(self, s, n):
        self.log_s, self.log_n = np.log10(s), np.log10(n)
        self.slope_lo = (self.log_n[1] - self.log_n[0]) / (self.log_s[1] - self.log_s[0])
        self.slope_hi = (self.log_n[-1] - self.log_n[-2]) / (self.log_s[-1] - self.log_s[-2])

    def n_above(self, flux_cgs):
        ls = np.log10(np.asarray(flux_cgs, dtype=np.float64))
        ln = np.interp(ls, self.log_s, self.log_n)
        ln = np.where(ls < self.log_s[0], self.log_n[0] + self.slope_lo * (ls - self.log_s[0]), ln)
        ln = np.where(ls > self.log_s[-1], self.log_n[-1] + self.slope_hi * (ls - self.log_s[-1]), ln)
        return 10.0**ln

    def log_s_for_n(self, log_n):
        """Inverse of log10 N(>S) (decreasing in S): log10 S for given log10 N."""
        ls = np.interp(-log_n, -self.log_n, self.log_s)
        ls = np.where(log_n > self.log_n[0], self.log_s[0] + (log_n - self.log_n[0]) / self.slope_lo, ls)
        return np.where(log_n < self.log_n[-1], self.log_s[-1] + (log_n - self.log_n[-1]) / self.slope_hi, ls)


#: The AGN source counts the mock can draw from (``SurveyParameters.agn_lognlogs``).
AGN_LOGNLOGS = {"lehmer12": _LogNLogS(_LEHMER_S, _LEHMER_N), "efeds": _LogNLogS(_EFEDS_S, _EFEDS_N)}

#: Energy grid step for folding and sampling spectra, keV.
ENERGY_STEP_KEV = 0.005
#: Photon-index grid of the AGN spectral tables.
_GAMMA_GRID = np.round(np.arange(1.25, 2.3501, 0.01), 2)


def lehmer_n_above(flux_cgs):
    """N(>S) per deg^2 of AGN, 0.5-2 keV (Lehmer et al. 2012, log-log interpolation)."""
    return AGN_LOGNLOGS["lehmer12"].n_above(flux_cgs)


def agn_n_above(flux_cgs, lognlogs="lehmer12"):
    """N(>S) per deg^2 of AGN, 0.5-2 keV, of one of :data:`AGN_LOGNLOGS`."""
    return AGN_LOGNLOGS[lognlogs].n_above(flux_cgs)


def agn_photon_index(flux_cgs):
    """Gamma = 1.8 + 0.5 erf((log10 S + 14) / 0.5) (a smooth hardening of faint AGN, [uncertain])."""
    return 1.8 + 0.5 * erf((np.log10(np.asarray(flux_cgs, dtype=np.float64)) + 14.0) / 0.5)


def sample_agn_fluxes(rng, n, s_min, s_max, lognlogs="lehmer12"):
    """Draw ``n`` 0.5-2 keV fluxes (erg/s/cm^2) from a log N - log S (:data:`AGN_LOGNLOGS`) in [s_min, s_max]."""
    counts = AGN_LOGNLOGS[lognlogs]
    n_lo, n_hi = np.log10(counts.n_above(s_min)), np.log10(counts.n_above(s_max))
    # N(>S) is uniform in the cumulative count: draw it, invert
    cum = 10.0**n_hi + rng.random(n) * (10.0**n_lo - 10.0**n_hi)
    return 10.0 ** counts.log_s_for_n(np.log10(cum))


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
    dn = -np.diff(agn_n_above(s, getattr(params, "agn_lognlogs", "lehmer12")))  # per deg^2
    sm = np.sqrt(s[1:] * s[:-1])
    g = np.round(agn_photon_index(sm), 2)
    per_vig = powerlaw_band_rates(sm, g, bands, nH_cm2=params.nH_cm2, reference_keV=1.0)
    per_unvig = per_vig * vignetting_factor(1.0)  # vignetted(1 keV) -> unvignetted seconds
    return (dn[:, None] * per_unvig).sum(axis=0) / 3600.0


def _particle_shape(e, slope):
    """Particle spectrum shape: 1 below the break, (E / break)^-slope above."""
    return np.where(e < PARTICLE_BREAK_KEV, 1.0, (np.maximum(e, 1e-9) / PARTICLE_BREAK_KEV) ** -slope)


@lru_cache(maxsize=16)
def _background_fit(nH_cm2, include_agn, agn_flux_min_cgs, agn_mask_flux_cgs, energy_range_keV,
                    measurement="mock_v1", lognlogs="lehmer12"):
    class _P:  # the few parameters the AGN integral needs
        pass

    p = _P()
    p.nH_cm2, p.include_agn, p.agn_lognlogs = nH_cm2, include_agn, lognlogs
    p.agn_flux_min_cgs, p.agn_mask_flux_cgs = agn_flux_min_cgs, agn_mask_flux_cgs
    table = BACKGROUND_MEASUREMENTS[measurement]
    bands = list(table)
    measured = np.array([table[b] for b in bands])
    # the measured rates hold the AGN below the limit of the survey they were
    # measured in (eFEDS), whatever the limit of the survey simulated
    faint = _faint_agn_rates(p, bands, MEASURED_MASK_FLUX_CGS)
    target = measured - faint
    e, de, _ = _fit_grid(energy_range_keV)
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


def _fit_grid(energy_range_keV):
    """The energy grid the background is fitted and reported on: the simulated range and 0.2-10 keV."""
    return energy_grid(min(energy_range_keV[0], 0.2), max(energy_range_keV[1], 10.0))


def _model_spectrum(fit, e, de, nH_cm2):
    """Diffuse background counts / s (unvignetted) / arcmin^2 per energy bin of the grid ``e``."""
    sky_resp = observed_response(e, nH_cm2, reference_keV=None) * vignetting_factor(e) * de
    return (fit["particle_norm"] * _particle_shape(e, fit["particle_slope"]) * de
            + fit["soft_norm"] * bremsstrahlung_photon_spectrum(e, SOFT_KT_KEV) * sky_resp
            + fit["cxb_norm"] * powerlaw_photon_spectrum(e, CXB_GAMMA) * sky_resp)


def _fit_of(params):
    return _background_fit(params.nH_cm2, params.include_agn, params.agn_flux_min_cgs,
                           params.agn_mask_flux_cgs, tuple(params.energy_range_keV),
                           params.background_measurement, params.agn_lognlogs)


def background_band_rates(params, bands_keV, mask_flux_cgs=MEASURED_MASK_FLUX_CGS):
    """The mock's background in any bands, as a source-masked image measures it.

    Counts / s (unvignetted) / arcmin^2 per band: the diffuse model (times
    ``background_scale``) plus the mean of the AGN below ``mask_flux_cgs``
    (0.5-2 keV, erg/s/cm^2; default the eFEDS point-source limit), for
    comparison with a background measured on real images with the
    detected point sources masked.
    """
    fit = _fit_of(params)
    e, de, _ = _fit_grid(tuple(params.energy_range_keV))
    spec = _model_spectrum(fit, e, de, params.nH_cm2) * params.background_scale
    diffuse = np.array([spec[(e >= a) & (e < b)].sum() for a, b in bands_keV])
    return diffuse + _faint_agn_rates(params, [tuple(b) for b in bands_keV], mask_flux_cgs)


@lru_cache(maxsize=16)
def _faint_det_table(nH_cm2, include_agn, agn_flux_min_cgs, det_band_keV, lognlogs="lehmer12"):
    """log10 limits and the faint-AGN mean rate below each (detection band, unvignetted s, arcmin^2)."""
    class _P:
        pass

    p = _P()
    p.nH_cm2, p.include_agn, p.agn_flux_min_cgs, p.agn_lognlogs = nH_cm2, include_agn, agn_flux_min_cgs, lognlogs
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
                                      tuple(params.det_band_keV), params.agn_lognlogs)
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
    fit = _fit_of(params)
    e, de, edges = energy_grid(*params.energy_range_keV)
    spec = _model_spectrum(fit, e, de, params.nH_cm2)
    lo, hi = params.det_band_keV
    in_det = (e >= lo) & (e < hi)
    # model rates in the measured bands, for the record and the tests
    eb, deb, _ = _fit_grid(tuple(params.energy_range_keV))
    spec_b = _model_spectrum(fit, eb, deb, params.nH_cm2)
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
