"""Photon simulation of one cluster's box, and its detection.

For each candidate cluster the simulation draws, in a square box of side
``size_arcmin`` centred on the cluster position (offsets in arcsec, energies
in keV; origin 1 = ICM, 2 = AGN, 0 = background):

* ICM photons of the two profile components
  (:mod:`~skcluster.datasets.morphology`; the extended one a beta model or,
  with ``profile_form="vikhlinin"``, the Vikhlinin et al. 2006 form, with
  ``"sersic"`` a Sersic profile), Poisson numbers from the
  expected counts, energies from the folded, redshifted bremsstrahlung
  spectrum at the cluster temperature (:mod:`skcluster.physics`: Born
  Gaunt factor, MM83 absorption, effective area, vignetting relative to
  1 keV), drawn by inverting its cumulative distribution on a 5 eV grid
  (tabulated in (1+z)/kT, the only combination the shape depends on);
* a central AGN where the catalogue has one, and field AGN from the log N -
  log S over the box plus a 1-arcmin margin (their PSF wings reach in),
  power-law spectra with the flux-dependent photon index
  (:mod:`~skcluster.datasets.background`);
* sky + particle background, uniform over the box (the exposure does not
  vary across the box), energies from the fitted background spectrum, its
  level times the cluster's own background factor (``background_rel``);
* with ``nh_vary`` (preset ``erosita``) the ICM and AGN spectra are absorbed
  by the cluster's own Galactic N_H, and the AGN above the cluster's own
  point-source limit (``ps_limit``, falling with its exposure) are the ones
  the background map leaves out;
* every source photon is displaced by the King PSF (core radius
  ``psf_core_arcsec * psf_scale``; a Gaussian of the same half-energy
  radius with ``psf_form="gaussian"``, a Gaussian core with exponential
  wings with ``"gauss_exp"``); photons outside the box are dropped.

The work is staged so that most candidates stop early, with the same
outcome as the full path: the ICM photons come first; a cluster with fewer
than ``min_icm_counts`` of them in the detection band within
``det_radius_arcmin`` cannot pass (a rule of the detection step) and stops
there. The background is a Poisson process, so the background inside the
detection circle (``det_radius_arcmin``) and outside it are independent and
drawn from their own random streams. Each cluster has three random streams
derived from its own
``SeedSequence`` (sources / inner background / outer background), so its
photons do not depend on which process simulates it, nor on which other
clusters are simulated.

Point sources are then *detected* on the box's detection-band photons
(:func:`~skcluster.datasets.point_sources.detect_point_sources`), and the
photons within their masks are left out of the detection fit, whose model
loses the masked area (eSASS fits and masks detected point sources
alongside the cluster, Brunner et al. 2022, A&A 661, A1); the detected list
is returned with the events, for every method to mask the same sources.
The same fit with the simulation's own labels of bright AGN photons
(brighter than ``agn_mask_flux_cgs``) left out is kept as a reference
(``ML_CTS_truthmask``, ``DET_LIKE_truthmask``): no real pipeline has those
labels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..io.events import ORIGIN_AGN, ORIGIN_BACKGROUND, ORIGIN_CLUSTER, make_events
from ..physics.emission import bremsstrahlung_photon_spectrum, mm83_cross_section_cm2
from ..physics.instrument import (
    PIXEL_ARCSEC,
    VIGNETTING_1KEV,
    sample_gauss_exp_psf_offsets,
    sample_gaussian_psf_offsets,
    sample_king_offsets,
)
from ..physics.rates import observed_response
from .background import (
    agn_n_above,
    agn_photon_index,
    agn_tables,
    background_model,
    energy_grid,
    faint_agn_map_rate,
    inverse_cdf,
    quantise_gamma,
    sample_agn_fluxes,
)
from .detection import detection_likelihoods, unmasked_fractions
from .morphology import sample_offsets
from .parameters import nh_grid
from .point_sources import detect_point_sources, in_any_disc, mask_radius_arcsec
from .scaling import CORE_BETA, extended_form

__all__ = ["simulate_cluster", "simulate_chunk", "CHUNK_COLUMNS", "RESULT_COLUMNS"]

#: Margin around the box within which field AGN are drawn, arcsec.
AGN_MARGIN_ARCSEC = 60.0
#: Largest point-source mask radius, arcsec (the default ceiling of
#: :func:`~skcluster.datasets.point_sources.mask_radius_arcsec`).
MAX_MASK_ARCSEC = 120.0
#: Photons this far from a candidate point source decide its detection:
#: the local-background annulus (96") plus the source cell (16").
DETECTION_REACH_ARCSEC = 112.0

#: Per-cluster inputs of the photon simulation (catalogue columns).
CHUNK_COLUMNS = (
    "tile", "index", "z", "T", "exposure", "theta500_arcmin",
    "rc_arcsec", "beta", "ext_cusp", "ext_rs_rc", "core_rc_arcsec", "core_cusp", "axis_ratio", "angle_rad",
    "offset_x_arcsec", "offset_y_arcsec", "xtrunc_ext", "xtrunc_core",
    "mu_ext", "mu_core", "mu_agn_central", "gamma_agn_central",
    "nh", "background_rel", "ps_limit",
)
#: Per-cluster outputs (floats) of the photon simulation.
RESULT_COLUMNS = (
    "DET_LIKE", "EXT_LIKE", "EXT_arcsec", "ML_CTS", "ML_CTS_fit", "icm_counts_fit", "counts", "counts_r500",
    "background_counts", "agn_counts_r500", "n_agn", "n_field_agn", "bkg_per_pixel",
    "ML_CTS_truthmask", "DET_LIKE_truthmask", "n_point_sources",
)


#: Step of the ICM spectral table in ln((1+z)/kT): the nearest row is used,
#: i.e. a temperature error below 0.5%, far below the scatter of T at fixed
#: mass.
_ICM_DLNX = 0.01
_ICM_LNX_RANGE = (np.log(1.0 / 60.0), np.log(3.5 / 0.08))


@lru_cache(maxsize=4)
def _icm_cdf_table(nH_cm2, energy_range_keV):
    """CDFs of observed ICM photon energies on a grid of x = (1+z)/kT (1/keV).

    The redshifted bremsstrahlung spectrum g(E (1+z)/kT) exp(-E (1+z)/kT) /
    (E (1+z)) depends on z and kT only through x = (1+z)/kT (up to a
    normalisation), so one row per x serves every cluster.
    """
    e, de, edges = energy_grid(*energy_range_keV)
    resp = observed_response(e, nH_cm2, reference_keV=1.0) * de
    lnx = np.arange(_ICM_LNX_RANGE[0], _ICM_LNX_RANGE[1] + _ICM_DLNX, _ICM_DLNX)
    cdf = np.empty((lnx.size, edges.size))
    for i, x in enumerate(np.exp(lnx)):
        cdf[i] = inverse_cdf(bremsstrahlung_photon_spectrum(e * x, 1.0) * resp)
    return lnx, cdf, edges


def _icm_energies(rng, n, kT, z, params, nh=None):
    """Observed energies (keV) of n ICM photons: folded redshifted bremsstrahlung.

    With ``params.nh_vary`` each cluster has its own N_H ``nh``: energies are
    drawn from the table of the lowest N_H of the grid and each is kept with
    probability exp(-(nh - nh_lowest) sigma(E)) (rejection sampling, exact),
    until there are n.
    """
    if not params.nh_vary:
        lnx, cdf, edges = _icm_cdf_table(params.nH_cm2, tuple(params.energy_range_keV))
        i = int(np.clip(np.rint((np.log((1.0 + z) / kT) - lnx[0]) / _ICM_DLNX), 0, lnx.size - 1))
        return _invert(rng.random(n), cdf[i], edges)
    nh_base = float(nh_grid(params)[0])
    lnx, cdf, edges = _icm_cdf_table(nh_base, tuple(params.energy_range_keV))
    i = int(np.clip(np.rint((np.log((1.0 + z) / kT) - lnx[0]) / _ICM_DLNX), 0, lnx.size - 1))
    extra = max(float(nh) - nh_base, 0.0)
    out = np.empty(0)
    while out.size < n:
        m = max(2 * (n - out.size), 16)
        e = _invert(rng.random(m), cdf[i], edges)
        keep = rng.random(m) < np.exp(-extra * mm83_cross_section_cm2(e))
        out = np.concatenate([out, e[keep]])
    return out[:n]


def _invert(u, cdf, edges):
    """Inverse-CDF sampling with linear interpolation within the bins (every bin has
    positive probability here: the response is positive over the whole range)."""
    return np.interp(u, cdf, edges)


def _agn_energies(rng, gamma_index, tables):
    """Energies of photons whose sources have photon-index grid indices ``gamma_index``.

    ``tables["cdf_flat"]`` holds the CDF rows one after the other, row i
    shifted by +i, so one search finds the row and the bin at once.
    """
    edges = tables["edges"]
    n_e = edges.size
    flat = tables["cdf_flat"]
    v = rng.random(gamma_index.size) + gamma_index
    j = np.searchsorted(flat, v, side="right") - 1
    k = np.clip(j - gamma_index * n_e, 0, n_e - 2)  # bin within the row
    j = gamma_index * n_e + k
    c0, c1 = flat[j], flat[j + 1]
    frac = np.clip(np.where(c1 > c0, (v - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0), 0.0, 1.0)
    return edges[k] + frac * (edges[k + 1] - edges[k])


@lru_cache(maxsize=8)
def _agn_density(s_min, s_max, lognlogs="lehmer12"):
    """AGN per deg^2 between two fluxes."""
    return float(agn_n_above(s_min, lognlogs) - agn_n_above(s_max, lognlogs))


def _background(rng, n, params, model, where):
    """n background photons: positions (by ``where``) and energies."""
    x, y = where(rng, n)
    e = _invert(rng.random(n), model["cdf"], model["edges"])
    return x, y, e


def _psf_offsets(rng, n, psf_rc, p):
    """Photon offsets from the PSF of form ``p.psf_form`` (the detection step always assumes the King form)."""
    if p.psf_form == "gaussian":
        return sample_gaussian_psf_offsets(rng, n, psf_rc, p.psf_alpha)
    if p.psf_form == "gauss_exp":
        return sample_gauss_exp_psf_offsets(rng, n, psf_rc, p.psf_alpha)
    return sample_king_offsets(rng, n, psf_rc, p.psf_alpha)


def simulate_cluster(row, params, entropy, keep_events=None):
    """Simulate the photons of one cluster box and run the detection.

    Parameters
    ----------
    row : mapping
        The :data:`CHUNK_COLUMNS` of one cluster (scalars).
    params : SurveyParameters
    entropy : int
        Root entropy of the survey; the cluster's streams derive from
        ``SeedSequence(entropy, spawn_key=(1, tile, index))``.
    keep_events : bool, default=None
        Return the events even if the cluster fails the cuts (``None``:
        only if it passes).

    Returns
    -------
    result : dict
        :data:`RESULT_COLUMNS` (the photon-count columns only where the
        events were made, NaN otherwise) and ``passed`` (bool).
    events : ndarray of EVENT_DTYPE or None
    sources : ndarray of POINT_SOURCE_DTYPE or None
        The point sources detected in the box (offsets from the cluster
        position), where the events were made.
    """
    p = params
    ss = np.random.SeedSequence(entropy, spawn_key=(1, int(row["tile"]), int(row["index"])))
    seeds = ss.spawn(3)  # sources / inner background / outer background
    rng_src = np.random.Generator(np.random.PCG64(seeds[0]))
    half = 30.0 * p.size_arcmin
    psf_rc = p.psf_rc_arcsec
    exposure = float(row["exposure"])
    t_unvig = exposure / VIGNETTING_1KEV
    bkg = background_model(p)
    nh = float(row["nh"])
    bkg_rel = float(row["background_rel"])
    ps_limit = float(row["ps_limit"])
    tables = agn_tables(nh, tuple(p.energy_range_keV), tuple(p.det_band_keV))
    ox, oy = float(row["offset_x_arcsec"]), float(row["offset_y_arcsec"])

    # -- ICM ---------------------------------------------------------------
    n_ext = rng_src.poisson(row["mu_ext"])
    n_core = rng_src.poisson(row["mu_core"])
    cusp, form = extended_form(p, row["ext_cusp"], row["ext_rs_rc"])
    x1, y1 = sample_offsets(rng_src, n_ext, row["rc_arcsec"], cusp, row["beta"], row["axis_ratio"],
                            row["angle_rad"], row["xtrunc_ext"], **form)
    x2, y2 = sample_offsets(rng_src, n_core, row["core_rc_arcsec"], row["core_cusp"], CORE_BETA,
                            row["axis_ratio"], row["angle_rad"], row["xtrunc_core"])
    n_icm = n_ext + n_core
    px, py = _psf_offsets(rng_src, n_icm, psf_rc, p)
    icm_x = np.concatenate([x1, x2]) + ox + px
    icm_y = np.concatenate([y1, y2]) + oy + py
    icm_e = _icm_energies(rng_src, n_icm, float(row["T"]), float(row["z"]), p, nh)

    lo, hi = p.det_band_keV
    r_det = 60.0 * p.det_radius_arcmin

    def det_r(x, y, e, keep=None):
        sel = (e >= lo) & (e < hi) & (np.abs(x) < half) & (np.abs(y) < half)
        if keep is not None:
            sel &= keep
        r = np.hypot(x[sel], y[sel])
        return r[r < r_det]

    r_icm = det_r(icm_x, icm_y, icm_e)
    result = {c: np.nan for c in RESULT_COLUMNS}
    result["icm_counts_fit"] = float(r_icm.size)
    if r_icm.size < p.min_icm_counts and not keep_events:
        # too few ICM photons to count as a detection of this cluster: no
        # need to draw anything else (the same outcome as the full path)
        result["passed"] = False
        return result, None, None

    # -- AGN ---------------------------------------------------------------
    if p.include_agn:
        n_c = rng_src.poisson(row["mu_agn_central"])
        gi_c = np.full(n_c, quantise_gamma(row["gamma_agn_central"]), dtype=np.intp)
        cx, cy = _psf_offsets(rng_src, n_c, psf_rc, p)
        cx, cy = cx + ox, cy + oy
        side = 2.0 * (half + AGN_MARGIN_ARCSEC)
        mean_n = _agn_density(p.agn_flux_min_cgs, p.agn_flux_max_cgs, p.agn_lognlogs)
        n_src = rng_src.poisson(mean_n * (side / 3600.0) ** 2)
        flux = sample_agn_fluxes(rng_src, n_src, p.agn_flux_min_cgs, p.agn_flux_max_cgs, p.agn_lognlogs)
        gi = quantise_gamma(agn_photon_index(flux))
        sx = (rng_src.random(n_src) - 0.5) * side
        sy = (rng_src.random(n_src) - 0.5) * side
        k = rng_src.poisson(flux * tables["rate_full"][gi] * exposure)
        src_of = np.repeat(np.arange(n_src), k)
        fx, fy = _psf_offsets(rng_src, src_of.size, psf_rc, p)
        agn_x = np.concatenate([cx, sx[src_of] + fx])
        agn_y = np.concatenate([cy, sy[src_of] + fy])
        gi_all = np.concatenate([gi_c, gi[src_of]])
        agn_e = _agn_energies(rng_src, gi_all, tables)
        agn_masked = np.concatenate([np.zeros(n_c, bool), (flux > ps_limit)[src_of]])
        agn_faint = np.concatenate([np.zeros(n_c, bool), (flux <= ps_limit)[src_of]])
        theta500_arcsec = 60.0 * float(row["theta500_arcmin"])
        n_field_r500 = int(np.sum(np.hypot(sx, sy) < theta500_arcsec))
        n_agn = n_field_r500 + int(row["mu_agn_central"] > 0)
        n_field = int(np.sum((np.abs(sx) < half) & (np.abs(sy) < half)))
    else:
        agn_x = agn_y = agn_e = np.empty(0)
        agn_masked = agn_faint = np.empty(0, bool)
        n_agn = n_field = 0

    # -- background inside the detection circle ----------------------------
    lam_in = bkg["rate_full"] * bkg_rel * t_unvig * np.pi * (p.det_radius_arcmin**2)

    def in_disc(rng, n):
        r = r_det * np.sqrt(rng.random(n))
        phi = rng.random(n) * (2.0 * np.pi)
        return r * np.cos(phi), r * np.sin(phi)

    rng_in = np.random.Generator(np.random.PCG64(seeds[1]))
    bx, by, be = _background(rng_in, rng_in.poisson(lam_in), p, bkg, in_disc)

    # -- background outside the circle (its own stream) ----------------------
    lam_box = bkg["rate_full"] * bkg_rel * t_unvig * p.size_arcmin**2

    def in_box(rng, n):
        return (rng.random(n) - 0.5) * (2 * half), (rng.random(n) - 0.5) * (2 * half)

    rng_out = np.random.Generator(np.random.PCG64(seeds[2]))
    ox_, oy_, oe_ = _background(rng_out, rng_out.poisson(lam_box), p, bkg, in_box)
    outside = np.hypot(ox_, oy_) >= r_det
    bx, by, be = (np.concatenate([bx, ox_[outside]]), np.concatenate([by, oy_[outside]]),
                  np.concatenate([be, oe_[outside]]))

    # -- point sources detected on the box's photons -------------------------
    # The fit needs the sources whose masks reach into its circle: they lie
    # within r_det + MAX_MASK_ARCSEC, and their detection uses the photons
    # within DETECTION_REACH_ARCSEC of them. So the detection runs on that
    # sub-box first (most candidates fail the cuts), and on the whole box
    # only for the clusters kept, whose list is returned.
    if bkg_rel == 1.0 and ps_limit == p.agn_mask_flux_cgs:
        map_det = bkg["map_det"]
    else:  # this cluster's own background level and point-source limit
        map_det = bkg["rate_det"] * bkg_rel + float(faint_agn_map_rate(p, ps_limit))
    bkg_det = map_det * t_unvig / 3600.0  # background map, counts / arcsec^2
    all_x = np.concatenate([icm_x, agn_x, bx])
    all_y = np.concatenate([icm_y, agn_y, by])
    all_e = np.concatenate([icm_e, agn_e, be])
    in_det = (all_e >= lo) & (all_e < hi)
    dx_, dy_ = all_x[in_det], all_y[in_det]
    sub = min(half, r_det + MAX_MASK_ARCSEC + DETECTION_REACH_ARCSEC)
    sources = detect_point_sources(dx_, dy_, sub, bkg_det, psf_rc, p.psf_alpha)
    mask_r = mask_radius_arcsec(sources["counts"], sources["bkg_per_arcsec2"], psf_rc, p.psf_alpha,
                                max_radius_arcsec=MAX_MASK_ARCSEC)

    def outside_masks(x, y):
        return ~in_any_disc(x, y, sources["x_arcsec"], sources["y_arcsec"], mask_r)

    # -- detection fit: the detected point sources masked --------------------
    r_all = np.concatenate([det_r(icm_x, icm_y, icm_e, outside_masks(icm_x, icm_y)),
                            det_r(agn_x, agn_y, agn_e, outside_masks(agn_x, agn_y)),
                            det_r(bx, by, be, outside_masks(bx, by))])
    unmasked = unmasked_fractions(sources["x_arcsec"], sources["y_arcsec"], mask_r, r_det)
    det = detection_likelihoods(r_all, bkg_det, r_det, psf_rc, p.det_ext_max_arcsec, p.det_like_scale,
                                unmasked=unmasked)
    # reference: the same fit with the simulation's own labels of bright AGN
    # photons left out (no area lost): what no real pipeline can do
    inner = np.hypot(bx, by) < r_det
    r_truth = np.concatenate([r_icm, det_r(agn_x, agn_y, agn_e, ~agn_masked),
                              det_r(bx[inner], by[inner], be[inner])])
    ref = detection_likelihoods(r_truth, bkg_det, r_det, psf_rc, p.det_ext_max_arcsec, p.det_like_scale)
    # photon-based matching: the detection must be the cluster's
    matched = r_icm.size >= p.match_fraction * det["ML_CTS_fit"]
    passed = bool(det["DET_LIKE"] > p.det_like_min and det["EXT_LIKE"] > p.ext_like_min and matched
                  and r_icm.size >= p.min_icm_counts)
    result.update(det)
    result.update(ML_CTS_truthmask=ref["ML_CTS"], DET_LIKE_truthmask=ref["DET_LIKE"],
                  n_point_sources=float(sources.size))
    result["passed"] = passed
    if not (passed if keep_events is None else keep_events):
        return result, None, None
    if sub < half:
        sources = detect_point_sources(dx_, dy_, half, bkg_det, psf_rc, p.psf_alpha)
    result["n_point_sources"] = float(sources.size)

    # -- the events ------------------------------------------------------------
    xs = [icm_x, agn_x, bx]
    ys = [icm_y, agn_y, by]
    es = [icm_e, agn_e, be]
    origins = [ORIGIN_CLUSTER, ORIGIN_AGN, ORIGIN_BACKGROUND]
    parts = []
    for x, y, e, o in zip(xs, ys, es, origins):
        inside = (np.abs(x) < half) & (np.abs(y) < half)
        parts.append(make_events(x[inside], y[inside], e[inside], o))
    events = np.concatenate(parts)
    # photons a source-masked background map would hold: diffuse background
    # and AGN below the point-source limit (detection band, whole box)
    agn_in = (np.abs(agn_x) < half) & (np.abs(agn_y) < half) & (agn_e >= lo) & (agn_e < hi)
    n_map = int(np.sum((np.abs(bx) < half) & (np.abs(by) < half) & (be >= lo) & (be < hi)))
    n_map += int(np.sum(agn_in & agn_faint))

    # -- photon-count columns ------------------------------------------------
    theta = 60.0 * float(row["theta500_arcmin"])
    e = events["energy_keV"]
    band = (e >= lo) & (e < hi)
    r = np.hypot(events["x_arcsec"], events["y_arcsec"])
    org = events["origin"]
    in500 = r < theta
    result.update(
        counts=float(np.sum(band & (org == ORIGIN_CLUSTER))),
        counts_r500=float(np.sum(band & in500 & (org == ORIGIN_CLUSTER))),
        background_counts=float(np.sum(band & in500 & (org == ORIGIN_BACKGROUND))),
        agn_counts_r500=float(np.sum(band & in500 & (org == ORIGIN_AGN))),
        n_agn=float(n_agn),
        n_field_agn=float(n_field),
        bkg_per_pixel=float(n_map / (2 * half / PIXEL_ARCSEC) ** 2),
    )
    return result, events, sources


def simulate_chunk(rows, params, entropy, keep_events=None):
    """Simulate many clusters (a chunk of a survey, for one worker).

    Parameters
    ----------
    rows : dict of ndarray
        :data:`CHUNK_COLUMNS`, one value per cluster.

    Returns
    -------
    results : dict of ndarray
        :data:`RESULT_COLUMNS` and ``passed``, one value per cluster.
    events : list
        One event array per cluster (None where not kept).
    sources : list
        One array of detected point sources (:data:`POINT_SOURCE_DTYPE`)
        per cluster (None where the events were not kept).
    """
    n = len(rows["tile"])
    out = {c: np.full(n, np.nan) for c in RESULT_COLUMNS}
    out["passed"] = np.zeros(n, dtype=bool)
    events = [None] * n
    sources = [None] * n
    for i in range(n):
        row = {k: v[i] for k, v in rows.items()}
        res, ev, src = simulate_cluster(row, params, entropy, keep_events)
        for k, v in res.items():
            out[k][i] = v
        events[i] = ev
        sources[i] = src
    return out, events, sources
