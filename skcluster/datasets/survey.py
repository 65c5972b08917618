"""The mock eROSITA survey: :func:`make_survey` and :func:`iter_survey`.

How a survey is built
---------------------
1. The sky is cut into tiles of ``TILE_DEG2`` (10 deg^2). For each tile,
   at catalogue level and vectorised, from the tile's own random stream
   (``SeedSequence(entropy, spawn_key=(0, tile))``): halos from the mass
   function (:mod:`.population`), structure and luminosities
   (:mod:`.scaling`, :mod:`.morphology`), exposure, central AGN, the
   cluster's background factor, Galactic N_H and point-source limit (these
   three vary only in the mixed-depth preset ``erosita``, and are drawn
   after everything else, so the other presets draw what they always
   drew), and the expected ICM counts in the detection band ``mu`` (count
   rates from :class:`skcluster.physics.BandRateTable`, times the
   absorption factor of the cluster's N_H where it varies). The detection
   of each cluster uses its own exposure, background level and N_H.
2. Pre-selection: photons are simulated only for halos with
   ``mu >= preselect_min_counts`` (3). It cannot drop a cluster that would
   pass, up to a bound computed exactly: a cluster passes only with at
   least ``min_icm_counts`` (15) ICM photons in the detection radius (a
   rule of the detection step itself, binding for < 1% of the clusters
   that pass the likelihood cuts), and the number of ICM photons is
   Poisson with a mean of at most ``mu``. So the expected number of
   dropped halos that could have passed is at most
   sum over dropped halos of P(Poisson(mu) >= 15); it is reported as
   ``preselect_miss_bound`` (~1e-5 per 10 deg^2 tile, ~0.004 for an
   8000-cluster survey). The tests also simulate tiles without
   pre-selection and check that the same clusters pass.
3. Photons for each candidate (:mod:`.photons`), each cluster from its own
   ``SeedSequence(entropy, spawn_key=(1, tile, halo))``, and the detection
   proxies (:mod:`.detection`); clusters with DET_LIKE > ``det_like_min``,
   EXT_LIKE > ``ext_like_min`` whose detection is their own (photon
   matching) are kept with their events. Tiles are simulated in parallel
   with :class:`sklearn.utils.parallel.Parallel`, so ``n_jobs`` and a
   ``joblib.parallel_config(backend="dask")`` context decide where; the
   outcome of each cluster depends only on its seeds, so the survey is bit
   for bit the same for any ``n_jobs`` or backend.
4. With ``n_clusters``: tiles are simulated in rounds until enough clusters
   pass; the survey is the first ``n_clusters`` passing clusters in (tile,
   halo) order, i.e. the same survey whatever the rounds were, and the
   first clusters of the survey the same seed gives for a larger area.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from functools import lru_cache

import numpy as np
from astropy.table import Table
from scipy.special import pdtrc
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.parallel import Parallel, delayed

from .._validation import check_positive_int, check_positive_number
from ..physics import BandRateTable
from ..physics.cosmology import get_cosmology, luminosity_distance_cm, r500_kpc, theta500_arcmin
from ..physics.emission import bremsstrahlung_photon_spectrum
from ..physics.exposure import background_sampler, exposure_sampler
from ..physics.instrument import VIGNETTING_1KEV
from ..sample import ClusterSample
from .background import (
    MEASURED_MASK_FLUX_CGS,
    agn_photon_index,
    agn_tables,
    background_model,
    faint_agn_map_rate,
    quantise_gamma,
)
from .parameters import DEFAULT_AREA_DEG2, NH_STEP_DEX, nh_grid, resolve_parameters
from .photons import CHUNK_COLUMNS, RESULT_COLUMNS, simulate_chunk
from .population import (
    MAX_AREA_DEG2,
    TILE_DEG2,
    halo_density_grid,
    sample_halos,
    sample_positions,
    tile_geometry,
)
from .scaling import core_calibration, draw_structure, luminosities

__all__ = ["make_survey", "iter_survey", "catalog_columns", "simulate_tile", "tile_catalog"]

_Z95 = 1.6448536269514722  # 95th percentile of the standard normal


@lru_cache(maxsize=8)
def _rate_table(nH_cm2, energy_range_keV, det_band_keV, z_max):
    """Count rates per unit L(0.5-2 keV rest) in the simulated range and detection band.

    48 x 32 grid points over kT 0.1-50 keV: interpolation errors below 0.1%
    against direct folding (tested), at a quarter of the default table's cost.
    """
    return BandRateTable([energy_range_keV, det_band_keV], nH_cm2=nH_cm2, kT_range_keV=(0.1, 50.0),
                         z_range=(0.001, max(2.0, z_max)), n_kT=48, n_z=32, cosmo=None)


def _entropy(random_state):
    """Root entropy (a non-negative int) from an sklearn-style random_state."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return check_positive_int(random_state, "random_state", minimum=0)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, np.random.SeedSequence):
        return int(random_state.generate_state(2, np.uint64)[0])
    rs = check_random_state(random_state)
    return int(rs.randint(0, 2**31 - 1))


def _exposures(rng, n, p):
    """Vignetted exposure at 1 keV (s).

    A split log-normal through the 5/50/95% points, or (``exposure_log_uniform``)
    log-uniform in [``exposure_min_s``, ``exposure_max_s``], or (``exposure_table``)
    a real catalogue's measured distribution (:mod:`skcluster.physics.exposure`).
    """
    if p.exposure_table != "none":
        return p.exposure_scale * exposure_sampler(p.exposure_table, p.exposure_selection_slope)(rng.random(n))
    if p.exposure_log_uniform:
        lo, hi = math.log(p.exposure_min_s), math.log(p.exposure_max_s)
        return p.exposure_scale * np.exp(lo + (hi - lo) * rng.random(n))
    g = rng.standard_normal(n)
    lo = math.log(p.exposure_median_s / p.exposure_p05_s) / _Z95
    hi = math.log(p.exposure_p95_s / p.exposure_median_s) / _Z95
    return p.exposure_scale * p.exposure_median_s * np.exp(np.where(g < 0, lo, hi) * g)


def _background_factors(rng, n, p):
    """Per-cluster multiplier of the diffuse background rate (median 1).

    A split log-normal through ``background_p05_rel`` / 1 / ``background_p95_rel``;
    all ones, without drawing, when both are 1 (every cluster the same); or
    (``background_table``) a real catalogue's measured levels
    (:mod:`skcluster.physics.exposure`). Those are the level of the whole
    background map over its median, the diffuse background and the AGN below
    the point-source limit of the survey they were measured in; the multiplier
    of the diffuse part that gives a map level r is r + (r - 1) a, with a the
    faint AGN's share over the diffuse rate at that limit.
    """
    if p.background_table != "none":
        r = background_sampler(p.background_table)(rng.random(n))
        diffuse = background_model(p)["rate_det"]
        if diffuse <= 0.0:  # background_scale=0: nothing to vary
            return r
        a = float(faint_agn_map_rate(p, MEASURED_MASK_FLUX_CGS)) * p.background_scale / diffuse
        return r + (r - 1.0) * a
    if p.background_p05_rel == 1.0 and p.background_p95_rel == 1.0:
        return np.ones(n)
    g = rng.standard_normal(n)
    lo = -math.log(p.background_p05_rel) / _Z95
    hi = math.log(p.background_p95_rel) / _Z95
    return np.exp(np.where(g < 0, lo, hi) * g)


def _nh_values(rng, n, p):
    """Galactic N_H per cluster (cm^-2): log-uniform in [nh_min_cm2, nh_max_cm2] on the grid.

    All ``nH_cm2``, without drawing, when ``nh_vary`` is off.
    """
    if not p.nh_vary:
        return np.full(n, float(p.nH_cm2))
    grid = nh_grid(p)
    lo, hi = math.log10(p.nh_min_cm2), math.log10(p.nh_max_cm2)
    lg = lo + (hi - lo) * rng.random(n)
    k = np.clip(np.rint((lg - np.log10(grid[0])) / NH_STEP_DEX).astype(np.intp), 0, grid.size - 1)
    return grid[k]


def point_source_limits(exposure, p):
    """Point-source detection limit (0.5-2 keV, erg/s/cm^2) of each cluster's depth.

    ``agn_mask_flux_cgs * (exposure / agn_mask_exposure_ref_s) ** -agn_mask_depth_slope``;
    the same for every cluster when the slope is 0.
    """
    exposure = np.asarray(exposure, dtype=np.float64)
    if p.agn_mask_depth_slope == 0.0:
        return np.full(exposure.shape, float(p.agn_mask_flux_cgs))
    return p.agn_mask_flux_cgs * (exposure / p.agn_mask_exposure_ref_s) ** (-p.agn_mask_depth_slope)


@lru_cache(maxsize=4)
def _nh_rate_correction(nH_ref_cm2, nh_values, energy_range_keV, det_band_keV, z_max):
    """Count-rate factors rate(N_H) / rate(nH_ref) of the ICM, per N_H, on a (kT, z) grid.

    Direct folding of the redshifted bremsstrahlung spectrum through the
    response with each absorption (the normalisation cancels in the
    ratio); 24 x 16 grid points in (log kT, log(1+z)), smooth, interpolated
    bilinearly.
    """
    from scipy.interpolate import RegularGridInterpolator

    from ..physics.instrument import energy_grid_keV
    from ..physics.rates import observed_response

    bands = np.array([energy_range_keV, det_band_keV], dtype=np.float64)
    lkT = np.linspace(np.log(0.1), np.log(50.0), 24)
    lz = np.linspace(np.log1p(0.001), np.log1p(max(2.0, z_max)), 16)
    kT, zz = np.meshgrid(np.exp(lkT), np.expm1(lz), indexing="ij")
    e, de = energy_grid_keV(min(0.05, bands.min()), max(bands.max(), 10.0), 0.005)
    masks = np.stack([(e >= lo) & (e < hi) for lo, hi in bands]).astype(np.float64).T
    f = bremsstrahlung_photon_spectrum(e[None, :] * (1.0 + zz.ravel()[:, None]), kT.ravel()[:, None])
    ref = f @ (masks * (observed_response(e, nH_ref_cm2, 1.0) * de)[:, None])
    out = {}
    for nh in nh_values:
        r = f @ (masks * (observed_response(e, nh, 1.0) * de)[:, None]) / ref
        out[nh] = RegularGridInterpolator((lkT, lz), r.reshape(lkT.size, lz.size, 2))
    return out


def _icm_rates(table, kT, z, nh, p):
    """ICM count rates per unit L (simulated range, detection band), each cluster at its own N_H."""
    kT = np.clip(kT, 0.1, 50.0)
    rates = table(kT, z)
    if not p.nh_vary:
        return rates
    corr = _nh_rate_correction(float(p.nH_cm2), tuple(float(v) for v in nh_grid(p)),
                               tuple(p.energy_range_keV), tuple(p.det_band_keV), p.z_max)
    pts = np.stack([np.log(kT), np.log1p(z)], axis=-1)
    for v in np.unique(nh):
        sel = nh == v
        rates[sel] = rates[sel] * corr[float(v)](pts[sel])
    return rates


def _central_agn(rng, n, z, p):
    """Central AGN: flag, luminosity (0.5-2 keV rest, erg/s), flux, photon index."""
    u = rng.random(n)
    g = rng.standard_normal(n)
    has = (u < p.central_agn_fraction) & p.include_agn
    lum = np.where(has, 10.0 ** (p.central_agn_log10_lum + p.central_agn_sigma_dex * g), 0.0)
    dl2 = 4.0 * np.pi * luminosity_distance_cm(z, get_cosmology(p.H0, p.Om0)) ** 2
    gamma = np.full(n, 1.8)
    flux = lum / dl2
    for _ in range(3):  # the photon index depends on the observed flux (datasets.background.agn_photon_index)
        flux = lum * (1.0 + z) ** (gamma - 2.0) / dl2  # K-correction of a power law
        gamma = np.where(has, agn_photon_index(np.maximum(flux, 1e-30)), 1.8)
    return has, lum, flux, gamma


def survey_context(params):
    """Tables a survey needs once (mass-function grid, core calibration, count-rate table).

    Computed in the main process and handed to the workers, so that each
    worker does not rebuild them.
    """
    p = params
    return {
        "grid": halo_density_grid(p.H0, p.Om0, p.Ob0, p.sigma8, p.ns, p.z_min, p.z_max,
                                  p.log10_m500_min, p.log10_m500_max, p.mass_function_model),
        "calibration": core_calibration(p),
        "rate_table": _rate_table(p.nH_cm2, tuple(p.energy_range_keV), tuple(p.det_band_keV), p.z_max),
    }


def tile_catalog(k, area_deg2, params, entropy, context=None):
    """Catalogue-level simulation of one tile (every halo, vectorised).

    Returns
    -------
    dict of ndarray
        One entry per halo, in the order drawn; see :func:`catalog_columns`.
    """
    p = params
    ctx = survey_context(p) if context is None else context
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(0, int(k)))))
    logm, z = sample_halos(rng, p, area_deg2, ctx["grid"])
    n = logm.size
    ra, dec = sample_positions(rng, n, tile_geometry(k, area_deg2))
    cal = ctx["calibration"]
    s = draw_structure(rng, n, p, cal["sigma_ln_core"])
    lum = luminosities(logm, z, s, p, rng, cal)
    exposure = _exposures(rng, n, p)
    has_agn, l_agn, f_agn, g_agn = _central_agn(rng, n, z, p)
    # drawn last, and only where they vary: the presets with one background
    # level and one N_H draw exactly what they drew before these existed
    bkg_rel = _background_factors(rng, n, p)
    nh = _nh_values(rng, n, p)
    limit = point_source_limits(exposure, p)

    cosmo = get_cosmology(p.H0, p.Om0)
    m500 = 10.0**logm
    theta = theta500_arcmin(m500, z, cosmo)
    rates = _icm_rates(ctx["rate_table"], lum["T"], z, nh, p)  # (n, 2): full range, detection band
    gi = quantise_gamma(g_agn)
    rate_agn = np.empty(n)
    for v in np.unique(nh):
        sel = nh == v
        rate_agn[sel] = agn_tables(float(v), tuple(p.energy_range_keV), tuple(p.det_band_keV))["rate_full"][gi[sel]]
    bkg = background_model(p)
    uniform_map = (bkg_rel == 1.0) & (limit == p.agn_mask_flux_cgs)
    map_det = np.where(uniform_map, bkg["map_det"], bkg["rate_det"] * bkg_rel + faint_agn_map_rate(p, limit))
    theta_as = 60.0 * theta
    out = {
        "tile": np.full(n, k, dtype=np.int64), "index": np.arange(n, dtype=np.int64),
        "ra": ra, "dec": dec, "z": z, "log10_M500": logm, "M500": m500,
        "r500_kpc": r500_kpc(m500, z, cosmo), "theta500_arcmin": theta,
        "exposure": exposure,
        "background": map_det / VIGNETTING_1KEV, "nh": nh, "background_rel": bkg_rel, "ps_limit": limit,
        **{k_: lum[k_] for k_ in ("L_X", "L_X_ce", "L_X_core", "L_emit", "T")},
        "cool_core": s["cool_core"], "disturbed": s["disturbed"],
        "rc_r500": s["rc_r500"], "beta": s["beta"], "ext_cusp": s["ext_cusp"], "ext_rs_rc": s["ext_rs_rc"],
        "core_rc_r500": s["core_rc_r500"],
        "core_cusp": s["core_cusp"], "core_ratio": s["core_ratio"],
        "axis_ratio": s["axis_ratio"], "angle_rad": s["angle_rad"],
        "offset_x_arcsec": s["offset_x_r500"] * theta_as, "offset_y_arcsec": s["offset_y_r500"] * theta_as,
        "rc_arcsec": s["rc_r500"] * theta_as, "core_rc_arcsec": s["core_rc_r500"] * theta_as,
        "xtrunc_ext": p.truncation_r500 / s["rc_r500"], "xtrunc_core": p.truncation_r500 / s["core_rc_r500"],
        "mu_ext": lum["L_ext"] * rates[:, 0] * exposure,
        "mu_core": lum["L_corecomp"] * rates[:, 0] * exposure,
        "counts_expected": lum["L_emit"] * rates[:, 1] * exposure,
        "central_agn": has_agn, "L_agn_central": l_agn, "flux_agn_central": f_agn,
        "gamma_agn_central": g_agn,
        "mu_agn_central": f_agn * rate_agn * exposure,
    }
    return out


def _flux_0p5_2(L_erg_s, kT, z, p):
    """Observed-frame 0.5-2 keV energy flux (erg/s/cm^2, unabsorbed) of rest-frame L(0.5-2 keV)."""
    L = np.asarray(L_erg_s, dtype=np.float64)
    if L.size == 0:
        return np.zeros(0)
    t = (np.arange(400) + 0.5) / 400.0
    e_rest = 0.5 + 1.5 * t  # rest 0.5-2 keV
    num = []
    for sl in range(0, L.size, 2048):
        kk = kT[sl:sl + 2048, None]
        zz = z[sl:sl + 2048, None]
        e_obs_rest = (0.5 + 1.5 * t[None, :]) * (1.0 + zz)  # rest energies seen at 0.5-2 keV
        a = np.sum(e_obs_rest * bremsstrahlung_photon_spectrum(e_obs_rest, kk), axis=1) * (1.0 + zz[:, 0])
        b = np.sum(e_rest * bremsstrahlung_photon_spectrum(e_rest, kk), axis=1)
        num.append(a / b)
    kcorr = np.concatenate(num)
    dl = luminosity_distance_cm(z, get_cosmology(p.H0, p.Om0))
    return L * kcorr / (4.0 * np.pi * dl**2)


#: Catalogue columns and their meaning (units): the ``catalog`` table of
#: :func:`make_survey` has these, in this order.
_CATALOG_DOC = {
    "ra": "right ascension, deg", "dec": "declination, deg", "z": "redshift",
    "M500": "M500c, Msun (h = 0.7)", "log10_M500": "log10 M500c / Msun (the target y)",
    "r500_kpc": "r500c, kpc", "theta500_arcmin": "r500c on the sky, arcmin",
    "L_X": "0.5-2 keV rest-frame luminosity within r500 (projected), erg/s",
    "L_X_ce": "core-excised L_X, 0.15-1 r500, erg/s", "L_X_core": "L_X within 0.15 r500, erg/s",
    "L_emit": "0.5-2 keV luminosity of the whole truncated profile, erg/s",
    "flux": "observed 0.5-2 keV flux within r500 (unabsorbed), erg/s/cm^2",
    "T": "temperature, keV",
    "counts": "ICM photons, 0.2-2.3 keV, in the box (source counts)",
    "counts_r500": "ICM photons, 0.2-2.3 keV, within theta500 of the centre",
    "counts_expected": "expected ICM counts, 0.2-2.3 keV, whole profile",
    "background_counts": "background photons (origin 0), 0.2-2.3 keV, within theta500",
    "bkg_per_pixel": "background-map level: diffuse background and AGN below the point-source limit, "
                     "0.2-2.3 keV photons per 4-arcsec pixel of the box",
    "agn_counts_r500": "AGN photons, 0.2-2.3 keV, within theta500",
    "exposure": "vignetted exposure at 1 keV, s",
    "background": "background-map level at the cluster (diffuse background and the AGN below its point-source "
                  "limit), 0.2-2.3 keV counts / s / arcmin^2 per second of vignetted exposure at 1 keV "
                  "(times exposure: counts / arcmin^2, cf. the eSASS ML_BKG)",
    "nh": "Galactic N_H toward the cluster, cm^-2",
    "background_rel": "multiplier of the diffuse background rate of this cluster (1: the measured eFEDS level)",
    "ps_limit": "point-source detection limit at the cluster's depth, 0.5-2 keV erg/s/cm^2",
    "DET_LIKE": "detection likelihood proxy", "EXT_LIKE": "extent likelihood proxy",
    "EXT_arcsec": "best-fit core radius of the beta = 2/3 detection model, arcsec",
    "ML_CTS": "source counts of the detection fit (0.2-2.3 keV, whole model; cf. ermldet ML_CTS)",
    "ML_CTS_fit": "fitted source counts within the detection radius",
    "ML_CTS_truthmask": "ML_CTS of the same fit with the simulation's labels of bright AGN photons "
                        "left out instead of the detected point sources (reference only)",
    "DET_LIKE_truthmask": "DET_LIKE of that reference fit",
    "n_point_sources": "point sources detected in the box (the X column point_sources lists them)",
    "icm_counts_fit": "ICM photons (0.2-2.3 keV) within the detection radius (for the matching)",
    "cool_core": "cuspy cool core", "disturbed": "disturbed (centroid offset)",
    "n_agn": "AGN within theta500 (field AGN and the central one)",
    "n_field_agn": "field AGN whose position is in the box",
    "central_agn": "has a central AGN", "L_agn_central": "central AGN 0.5-2 keV rest luminosity, erg/s",
    "flux_agn_central": "central AGN 0.5-2 keV flux, erg/s/cm^2", "gamma_agn_central": "its photon index",
    "rc_r500": "core radius of the extended component / r500", "beta": "beta of the extended component",
    "core_rc_r500": "core radius of the core component / r500",
    "core_cusp": "inner slope of the core component (S ~ R^-a)",
    "core_ratio": "core-component / extended-component luminosity (whole profiles)",
    "axis_ratio": "minor / major axis", "angle_rad": "position angle of the major axis (from +x toward +y), rad",
    "offset_x_arcsec": "centroid offset of the emission, x, arcsec",
    "offset_y_arcsec": "centroid offset of the emission, y, arcsec",
    "tile": "sky tile of the halo", "index": "halo number within its tile",
}


def catalog_columns():
    """Dict of the catalogue's column names and their meanings (with units)."""
    return dict(_CATALOG_DOC)


def _check_size_args(n_clusters, area_deg2):
    if n_clusters is not None:
        check_positive_int(n_clusters, "n_clusters")  # a TypeError too for 2.5 or True
    if area_deg2 is not None:
        a = check_positive_number(area_deg2, "area_deg2", unit="deg^2")
        if a > MAX_AREA_DEG2:
            raise ValueError(
                f"area_deg2={area_deg2!r} exceeds the {MAX_AREA_DEG2:.0f} deg^2 the survey tiles can "
                "cover (the whole sky less the polar caps)")


def simulate_tile(k, area_deg2, params, entropy, context=None):
    """Simulate one sky tile: catalogue, pre-selection, photons, detection.

    Returns
    -------
    kept : dict of ndarray
        Catalogue and detection columns of the clusters passing the cuts.
    events : list of (ndarray, ndarray)
        Their event lists and detected point sources.
    stats : dict
        ``tile``, ``area_deg2``, ``n_halos``, ``n_candidates``,
        ``n_passed``, ``candidate_index`` (halo indices simulated with
        photons) and ``miss_bound``: sum over the halos not simulated of
        P(Poisson(expected counts) >= min_icm_counts), an upper bound on the
        expected number of them that could have passed.
    """
    p = params
    cat = tile_catalog(k, area_deg2, p, entropy, context)
    mu = cat["counts_expected"]
    cand = mu >= p.preselect_min_counts
    bound = float(pdtrc(p.min_icm_counts - 1, mu[~cand]).sum())
    rows = {c: cat[c][cand] for c in CHUNK_COLUMNS}
    res, events, sources = simulate_chunk(rows, p, entropy)
    ok = res["passed"]
    kept = {c: cat[c][cand][ok] for c in cat}
    kept.update({c: res[c][ok] for c in RESULT_COLUMNS})
    stats = {"tile": int(k), "area_deg2": float(area_deg2), "n_halos": int(mu.size),
             "n_candidates": int(cand.sum()), "n_passed": int(ok.sum()),
             "candidate_index": cat["index"][cand], "miss_bound": bound}
    return kept, [(events[i], sources[i]) for i in np.flatnonzero(ok)], stats


def make_survey(survey="efeds", n_clusters=None, area_deg2=None, random_state=None, n_jobs=None,
                verbose=True, physics=None, **overrides):
    """Simulate a mock eROSITA cluster survey: event lists, truth and catalogue.

    Parameters
    ----------
    survey : {"efeds", "erass1", "erosita"} or SurveyParameters, default="efeds"
        Preset: eFEDS depth (vignetted exposure median 1180 s, 5-95%
        785-1941 s), eRASS1 depth (median 108 s vignetted, ~150-250 s
        unvignetted), every depth (``"erosita"``: per-cluster exposure
        log-uniform in 80-5000 s vignetted, background level and Galactic
        N_H varying per cluster, each cluster selected at its own depth;
        see :data:`~skcluster.datasets.parameters.PRESETS`), or a full
        parameter set.
    n_clusters : int, default=None
        Number of clusters passing the cuts (DET_LIKE > 5 and EXT_LIKE > 6
        by default) to return; the sky area grows until there are enough.
    area_deg2 : float, default=None
        Sky area to simulate, deg^2. With ``n_clusters`` too, the first
        ``n_clusters`` passing clusters of that area are returned, and a
        ``ValueError`` is raised if the area has fewer. With neither, one
        eFEDS field (140 deg^2).
    random_state : int, numpy Generator/RandomState/SeedSequence or None, default=None
        Seeds everything: the same value gives the same survey, bit for
        bit, for any ``n_jobs``. ``None`` draws fresh entropy (recorded as
        ``bunch.entropy``; pass it back to reproduce the survey).
    n_jobs : int, default=None
        Parallel workers, one sky tile (10 deg^2) per task (joblib via
        :mod:`sklearn.utils.parallel`; ``None`` means 1 unless in a
        ``joblib.parallel_config`` context, -1 all cores; a dask backend
        works too).
    verbose : bool, default=True
        Show a progress bar over the sky tiles (tqdm, on stderr).
    physics : None, "marginalised", "other" or PhysicsPrior, default=None
        ``None``: the preset's physics. ``"marginalised"`` (or a
        :class:`~skcluster.datasets.PhysicsPrior`): the uncertain physics
        drawn once for this realisation from
        :data:`~skcluster.datasets.DEFAULT_PHYSICS_PRIOR` (or that prior),
        ``"other"``: from :data:`~skcluster.datasets.OTHER_PHYSICS_PRIOR`,
        the held-out family of other functional forms (profile, PSF, mass
        function, L_X-M; see :mod:`~skcluster.datasets.physics_prior`),
        seeded by ``random_state`` (its own stream); explicit ``overrides``
        win over the draw, which ``bunch.physics_draw`` records. A draw the
        mock cannot build (a total L_X scatter below what the drawn
        structure gives) is replaced by the next one.
    **overrides
        Any parameter of :class:`~skcluster.datasets.SurveyParameters`,
        e.g. ``cool_core_fraction=0.6``, ``sigma_ln_lx=0.4``,
        ``background_scale=2``, ``psf_scale=1.3``, ``include_agn=False``;
        and ``sky``, the mock version of a preset (``"v2"``: calibrated on
        the real eFEDS and eRASS1 data, opt-in; see
        :data:`~skcluster.datasets.parameters.SKY_VERSIONS`).

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``X`` : ClusterSample with ``events`` (object array of
        :data:`skcluster.io.EVENT_DTYPE` arrays: offsets in arcsec in a
        ``size_arcmin`` box, energy in keV, origin 0 background / 1 ICM /
        2 AGN), ``z``, ``exposure`` (vignetted, s, at 1 keV),
        ``background`` (background-map level, 0.2-2.3 keV counts / s /
        arcmin^2 per vignetted second: times ``exposure`` it is counts /
        arcmin^2), ``nh`` (Galactic N_H, cm^-2), ``ra``,
        ``dec`` (deg); meta ``survey``, ``size_arcmin``,
        ``energy_range_keV`` and ``physics``, the record of the physics
        (:func:`~skcluster.datasets.physics_prior.physics_record`: the prior
        drawn from, empty without ``physics``, the draw and the functional
        forms used), which a :class:`~skcluster.DeepEnsembleRegressor`
        trained on the sample keeps as ``physics_``.
        ``y`` : ndarray of shape (n,), log10 M500c / Msun (float64).
        ``catalog`` : astropy.table.Table, truth and observables per
        cluster (see :func:`catalog_columns`); its meta holds the
        parameters and survey statistics.
        ``params`` : SurveyParameters.
        ``area_deg2`` : float, sky area the returned clusters come from.
        ``n_halos``, ``n_candidates`` : int, halos drawn and halos
        simulated with photons in that area.
        ``preselect_miss_bound`` : float, upper bound on the expected
        number of halos the pre-selection dropped that could have passed.
        ``entropy`` : int, the root seed.
        ``physics_draw`` : dict, the drawn physics (empty without ``physics``).
        ``DESCR`` : str.

    Raises
    ------
    ValueError
        Unknown survey, non-positive area or n_clusters, an area that
        cannot supply n_clusters, out-of-range parameters.
    TypeError
        Unknown parameter names (the message lists the valid ones).

    Examples
    --------
    >>> from skcluster.datasets import make_survey
    >>> data = make_survey(area_deg2=5, random_state=0, verbose=False)  # doctest: +SKIP
    >>> data.X, data.y[:3], data.catalog["counts"][:3]  # doctest: +SKIP
    """
    params, survey_name, entropy, ctx, draw, record = _setup(survey, n_clusters, area_deg2, random_state,
                                                             overrides, physics)
    kept, events, stats = [], [], []
    for kp, ev, st in _tile_stream(params, n_clusters, area_deg2, entropy, ctx, n_jobs, verbose):
        kept.append(kp)
        events.extend(ev)
        stats.append(st)
    rows = {c: np.concatenate([kp[c] for kp in kept]) for c in kept[0]}
    rows["flux"] = _flux_0p5_2(rows["L_X"], rows["T"], rows["z"], params)
    bunch = _bunch(rows, events, params, survey_name, entropy, stats, record)
    bunch["physics_draw"] = draw
    return bunch


def iter_survey(survey="efeds", n_clusters=None, area_deg2=None, random_state=None, n_jobs=None,
                verbose=True, physics=None, **overrides):
    """The survey of :func:`make_survey`, one sky tile at a time (bounded memory).

    Same parameters as :func:`make_survey` (``physics`` included: the
    physics is drawn once, before the first tile), and the same clusters:
    the concatenation of the yielded pieces is ``make_survey(...)`` with the
    same arguments. Use it for surveys whose event lists do not fit in
    memory (an eFEDS-depth box holds ~5000 photons, 65 kB; 10^5 clusters
    hold ~6.5 GB), e.g. to bin each piece into images before the next.

    Yields
    ------
    bunch : sklearn.utils.Bunch
        ``X``, ``y``, ``catalog`` of the clusters of one tile (possibly
        none), with ``tile``, ``area_deg2``, ``n_halos``, ``n_candidates``
        and ``preselect_miss_bound`` of that tile, and the survey's
        ``physics_draw`` (as :func:`make_survey`'s).
    """
    params, survey_name, entropy, ctx, draw, record = _setup(survey, n_clusters, area_deg2, random_state,
                                                             overrides, physics)
    for kp, ev, st in _tile_stream(params, n_clusters, area_deg2, entropy, ctx, n_jobs, verbose):
        kp["flux"] = _flux_0p5_2(kp["L_X"], kp["T"], kp["z"], params)
        b = _bunch(kp, ev, params, survey_name, entropy, [st], record)
        b["tile"] = st["tile"]
        b["physics_draw"] = dict(draw)
        yield b


def _physics_prior(physics):
    """The :class:`~.physics_prior.PhysicsPrior` that ``physics`` names (None for the preset's physics)."""
    if physics is None:
        return None
    from .physics_prior import DEFAULT_PHYSICS_PRIOR, OTHER_PHYSICS_PRIOR, PhysicsPrior

    named = {"marginalised": DEFAULT_PHYSICS_PRIOR, "other": OTHER_PHYSICS_PRIOR}
    if isinstance(physics, str) and physics.lower() in named:
        return named[physics.lower()]
    if isinstance(physics, PhysicsPrior):
        return physics
    raise ValueError(f"physics must be None, 'marginalised', 'other' or a PhysicsPrior, got {physics!r}")


def _physics_draw(prior, entropy, survey, overrides):
    """One draw of ``prior`` for a realisation (its own stream of the root seed), or nothing without a prior.

    A draw the mock cannot build is replaced by the next draw of the same
    stream (:func:`~.physics_prior.buildable_draw`); the first draw, where
    buildable, is the one drawn before this rule existed.
    """
    if prior is None:
        return {}
    from .physics_prior import buildable_draw

    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(2,))))
    return buildable_draw(prior, rng, survey, overrides)[0]


def _physics_meta(prior, draw, survey, overrides):
    """The sample's ``meta["physics"]``: :func:`~.physics_prior.physics_record` of this realisation's one draw.

    Without a prior: an empty prior (width 0) and the preset's functional
    forms, so that a model trained on the sample records those.
    """
    from .physics_prior import PhysicsPrior, physics_record

    if prior is None:
        return physics_record(PhysicsPrior(ranges={}, sources={}), 0.0, [{}], survey, overrides)
    return physics_record(prior, 1.0, [draw], survey, overrides)


def _setup(survey, n_clusters, area_deg2, random_state, overrides, physics=None):
    """(parameters, survey name, root seed, survey context, physics draw, its record) of a realisation.

    The physics is drawn (``physics``, its own stream of the root seed) before
    the parameters are resolved; ``overrides`` win over the draw.
    """
    entropy = _entropy(random_state)
    prior = _physics_prior(physics)
    draw = _physics_draw(prior, entropy, survey, overrides)
    params = resolve_parameters(survey, **{**draw, **overrides})
    survey_name = (survey if isinstance(survey, str) else "custom").lower()
    _check_size_args(n_clusters, area_deg2)
    ctx = survey_context(params)  # also fails early on unreachable scatter settings
    return params, survey_name, entropy, ctx, draw, _physics_meta(prior, draw, survey, overrides)


def _truncate(kept, events, st, n_keep):
    """Keep the first n_keep clusters of a tile; the tile's statistics shrink to match."""
    kept = {c: v[:n_keep] for c, v in kept.items()}
    last = int(kept["index"][-1])
    frac = (last + 1) / max(st["n_halos"], 1)
    st = dict(st, area_deg2=st["area_deg2"] * frac, n_halos=last + 1, n_passed=n_keep,
              n_candidates=int(np.sum(st["candidate_index"] <= last)), miss_bound=st["miss_bound"] * frac)
    return kept, events[:n_keep], st


def _tile_stream(params, n_clusters, area_deg2, entropy, ctx, n_jobs, verbose):
    """Yield (kept, events, stats) tile by tile, in tile order (see :func:`simulate_tile`).

    With ``n_clusters``, tiles are simulated in rounds until enough clusters
    pass, and the tile that completes the count is truncated; with
    ``area_deg2`` the tiles cover that area (the last one partially).
    """
    from joblib import effective_n_jobs

    if n_clusters is None and area_deg2 is None:
        area_deg2 = DEFAULT_AREA_DEG2
    n_workers = max(1, effective_n_jobs(n_jobs))
    if area_deg2 is not None:
        area = float(area_deg2)
        n_full = int(area // TILE_DEG2)
        rest = area - n_full * TILE_DEG2
        all_tiles = [(k, TILE_DEG2) for k in range(n_full)]
        if rest > 1e-9 * TILE_DEG2:
            all_tiles.append((n_full, rest))
    else:
        all_tiles = None
    first_guess = None
    if n_clusters is not None:
        # Up front, before any tile is simulated: can the sky supply n_clusters at all? First
        # guess of the passing clusters per tile: halos of one tile expecting >= 40 counts.
        mu = tile_catalog(0, TILE_DEG2, params, entropy, ctx)["counts_expected"]
        first_guess = max(float(np.sum(mu >= 40.0)), 0.05)
        sky = MAX_AREA_DEG2 if area_deg2 is None else float(area_deg2)
        expected = first_guess * sky / TILE_DEG2
        if n_clusters > 2.0 * expected and area_deg2 is not None:
            raise ValueError(
                f"area_deg2={area_deg2!r} supplies only {expected:.0f} clusters passing the cuts at this "
                f"depth (expected from one tile: about {first_guess / TILE_DEG2:.2f} per deg^2), far fewer "
                f"than n_clusters={n_clusters}; enlarge the area or leave it out")
        if n_clusters > 2.0 * expected:
            raise ValueError(
                f"n_clusters={n_clusters} is far more than the about {expected:.0f} clusters that the "
                f"whole {MAX_AREA_DEG2:.0f} deg^2 the tiles cover would supply at this depth (about "
                f"{first_guess / TILE_DEG2:.2f} per deg^2); ask for fewer clusters")
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(all_tiles) if all_tiles else None, unit="tile",
                        desc=f"mock survey ({TILE_DEG2:g} deg^2 tiles)")
    n_passed, n_tiles, next_tile = 0, 0, 0
    try:
        while True:
            if all_tiles is not None:
                round_tiles = all_tiles
            else:
                need = n_clusters - n_passed
                per_tile = max(n_passed / n_tiles, 0.05) if n_tiles else first_guess
                n_new = max(int(math.ceil(1.1 * need / per_tile)), n_workers)
                n_new = min(n_new, int(MAX_AREA_DEG2 // TILE_DEG2) - next_tile)
                if n_new <= 0:
                    raise ValueError(
                        f"n_clusters={n_clusters} needs more sky than the {MAX_AREA_DEG2:.0f} deg^2 "
                        f"the tiles cover (found {n_passed})")
                round_tiles = [(k, TILE_DEG2) for k in range(next_tile, next_tile + n_new)]
                next_tile += n_new
                if progress is not None:
                    progress.total = (progress.total or 0) + n_new
                    progress.refresh()
            results = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(simulate_tile)(k, a, params, entropy, ctx) for k, a in round_tiles)
            done = False
            for kp, ev, st in results:
                n_tiles += 1
                if progress is not None:
                    progress.update(1)
                if n_clusters is not None and n_passed + st["n_passed"] >= n_clusters:
                    kp, ev, st = _truncate(kp, ev, st, n_clusters - n_passed)
                    done = True
                n_passed += st["n_passed"]
                yield kp, ev, st
                if done:
                    break
            if done:
                if progress is not None:  # the bar ends at 100%: the tiles not needed do not count
                    progress.total = progress.n
                    progress.refresh()
                # the tiles still running are not needed: cancel them quietly
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*tasks which were still being processed")
                    results.close()
                return
            if all_tiles is not None:
                break
    finally:
        if progress is not None:
            progress.close()
    if n_clusters is not None:
        raise ValueError(
            f"area_deg2={area_deg2!r} supplies only {n_passed} clusters passing the cuts "
            f"(DET_LIKE > {params.det_like_min:g}, EXT_LIKE > {params.ext_like_min:g}), fewer "
            f"than n_clusters={n_clusters}; enlarge the area or leave it out")


def _bunch(rows, events, params, survey_name, entropy, stats, physics):
    area = sum(st["area_deg2"] for st in stats)
    n_halos = sum(st["n_halos"] for st in stats)
    n_candidates = sum(st["n_candidates"] for st in stats)
    miss_bound = sum(st["miss_bound"] for st in stats)
    ev_arr = np.empty(len(events), dtype=object)
    src_arr = np.empty(len(events), dtype=object)
    for i, (ev, src) in enumerate(events):  # element-wise: equal-length arrays must not broadcast
        ev_arr[i], src_arr[i] = ev, src
    events = ev_arr
    meta = {"survey": survey_name, "size_arcmin": float(params.size_arcmin),
            "energy_range_keV": tuple(float(v) for v in params.energy_range_keV), "physics": copy.deepcopy(physics)}
    X = ClusterSample(meta=meta, events=events, point_sources=src_arr, z=rows["z"].astype(np.float64),
                      exposure=rows["exposure"].astype(np.float64),
                      background=rows["background"].astype(np.float64), nh=rows["nh"].astype(np.float64),
                      ra=rows["ra"].astype(np.float64), dec=rows["dec"].astype(np.float64))
    cols = [c for c in _CATALOG_DOC if c in rows]
    table = Table({c: rows[c] for c in cols})
    for c in ("cool_core", "disturbed", "central_agn"):
        table[c] = table[c].astype(bool)
    for c in ("n_agn", "n_field_agn", "counts", "counts_r500", "background_counts", "agn_counts_r500"):
        table[c] = table[c].astype(np.int64)
    for c in cols:
        table[c].description = _CATALOG_DOC[c]
    table.meta.update({
        "survey": survey_name, "area_deg2": float(area), "n_halos": int(n_halos),
        "n_candidates": int(n_candidates), "preselect_miss_bound": float(miss_bound),
        "entropy": str(entropy),
        "params": params.to_dict(),
    })
    descr = (
        f"Mock eROSITA survey ({survey_name} preset): {len(table)} clusters passing "
        f"DET_LIKE > {params.det_like_min:g} and EXT_LIKE > {params.ext_like_min:g} "
        f"from {n_halos} halos in {area:.1f} deg^2 (skcluster.datasets.make_survey)."
    )
    return Bunch(X=X, y=rows["log10_M500"].astype(np.float64), catalog=table, params=params,
                 area_deg2=float(area), n_halos=int(n_halos), n_candidates=int(n_candidates),
                 preselect_miss_bound=float(miss_bound),
                 entropy=entropy, DESCR=descr)


def make_depth_balanced_survey(n_clusters, n_strata=5, survey="erosita", random_state=None, n_jobs=None,
                               verbose=True, **overrides):
    """A mixed-depth training survey with the same number of *selected* clusters at every depth.

    A survey with exposures drawn log-uniform before the selection (preset
    ``"erosita"``) keeps few shallow clusters: at 100 s only the brightest
    pass the detection and extent cuts, so a model trained on it has seen
    few clusters at eRASS1 depth. Here the exposure range
    [``exposure_min_s``, ``exposure_max_s``] is cut into ``n_strata``
    equal bins in log exposure, and :func:`make_survey` is run for each bin
    (exposure log-uniform within it) until it has ``n_clusters /
    n_strata`` passing clusters; the result is their concatenation. The
    cluster physics, the selection at each cluster's own depth and every
    other parameter are those of ``survey`` and ``overrides``; only how
    many clusters of each depth the training set holds changes (more sky
    is simulated at shallow depths).

    Parameters
    ----------
    n_clusters : int
        Passing clusters in all (split as evenly as possible over the
        strata, the deepest first getting the remainder).
    n_strata : int, default=5
        Bins in log exposure (at least 1; 1 is :func:`make_survey`).
    survey : str or SurveyParameters, default="erosita"
        Must draw exposures log-uniform (``exposure_log_uniform``).
    random_state, n_jobs, verbose, **overrides
        As :func:`make_survey`; each stratum gets its own seed spawned from
        ``random_state`` (the same value gives the same survey).

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``X``, ``y``, ``catalog`` (with a ``stratum`` column), ``params``
        (of the whole range), ``strata`` (the exposure bin edges, s),
        ``area_deg2`` (per stratum), ``entropy``.
    """
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    n_strata = check_positive_int(n_strata, "n_strata")
    if n_strata > n_clusters:
        raise ValueError(f"n_strata={n_strata} is more than n_clusters={n_clusters}")
    params = resolve_parameters(survey, **overrides)
    if not params.exposure_log_uniform:
        raise ValueError("make_depth_balanced_survey needs a survey whose exposures are drawn log-uniform "
                         "(exposure_log_uniform=True, e.g. preset 'erosita'); this one draws them "
                         "around one depth")
    edges = np.geomspace(params.exposure_min_s, params.exposure_max_s, n_strata + 1)
    counts = np.full(n_strata, n_clusters // n_strata)
    counts[::-1][: n_clusters % n_strata] += 1
    entropy = _entropy(random_state)
    seeds = np.random.SeedSequence(entropy).spawn(n_strata)
    parts = []
    for k in range(n_strata):
        if verbose:
            print(f"[make_depth_balanced_survey] stratum {k + 1}/{n_strata}: exposure "
                  f"{edges[k]:.0f}-{edges[k + 1]:.0f} s, {counts[k]} clusters", flush=True)
        depth = {"exposure_min_s": float(edges[k]), "exposure_max_s": float(edges[k + 1])}
        parts.append(make_survey(survey, n_clusters=int(counts[k]), random_state=seeds[k], n_jobs=n_jobs,
                                 verbose=verbose, **{**overrides, **depth}))
    X, y, catalog = stack_surveys(parts, "stratum")
    return Bunch(X=X, y=y, catalog=catalog, params=params,
                 strata=edges, area_deg2=np.array([p.area_deg2 for p in parts]), entropy=entropy,
                 DESCR=f"{n_clusters} clusters, {n_strata} strata of equal size in log exposure "
                       f"{edges[0]:.0f}-{edges[-1]:.0f} s")


def stack_surveys(parts, label):
    """``(X, y, catalog)`` of several surveys' Bunches in a row, each cluster labelled with its part.

    The catalogue gains an integer column ``label`` (the part's index);
    ``X`` keeps the first part's ``meta``.
    """
    from astropy.table import vstack

    catalog = vstack([p.catalog for p in parts], metadata_conflicts="silent")
    catalog[label] = np.repeat(np.arange(len(parts)), [len(p.y) for p in parts])
    X = ClusterSample.concat([p.X for p in parts])
    return X, np.concatenate([p.y for p in parts]), catalog
