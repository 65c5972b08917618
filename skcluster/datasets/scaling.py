"""Scaling relations and cluster structure at catalogue level (vectorised).

Luminosity: the split into a core-excised part and a core part is explicit.

* Core-excised luminosity (0.5-2 keV rest frame, projected 0.15-1 r500)
  scatters log-normally at fixed (M, z) with ``sigma_ln_lx_ce`` (0.12;
  Maughan 2007 finds 11% at fixed Y_X, Pratt et al. 2009 less than half of
  the core-included scatter), correlated with the temperature residual.
* The core part L(< 0.15 r500) follows from the surface-brightness profile
  (:mod:`~skcluster.datasets.morphology`): the extended component's own
  centre plus a compact core component whose luminosity, relative to the
  extended component, scatters log-normally *independently of mass*; cool
  cores carry a bright, cuspy core component (``core_ratio_cc``),
  non-cool cores a faint one (``core_ratio_ncc``).
* L_X = L_ce + L_core (0.5-2 keV rest, within r500, projected) then follows
  the eFEDS L_X-M relation (:mod:`skcluster.physics.relations`: Liu et al. 2022
  luminosities against Chiu et al. 2022 masses)::

      log10 L_X = 43.395 + 1.58 log10(M500 / 2e14 Msun) + 2 log10 E(z)

  with total ln-scatter ``sigma_ln_lx`` (0.30). The two conditions (mean
  relation, total scatter) fix the mean of the core-excised luminosity and
  the ln-scatter of the core component, which :func:`core_calibration`
  solves once per parameter set on a fixed Monte Carlo sample of the
  structural parameters. So the total scatter stays at its reference value
  whatever the cool-core fraction or profile parameters are, and
  core-excised luminosity is the better mass proxy by construction.

Temperature: Arnaud et al. 2005, E(z) M500 = 3.84e14 Msun (T / 5 keV)^1.71,
with ln-scatter ``sigma_ln_t`` (0.12; Magneticum simulations). The total-L_X
and T residuals correlate with coefficient ``rho_lx_t`` (0.3, within
+0.3 to +0.5, [uncertain]); since the core part is independent of mass and
temperature, this is carried by the core-excised part with coefficient
``rho_lx_t * sigma_ln_lx / sigma_ln_lx_ce``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.optimize import brentq

from ..physics.cosmology import efunc, get_cosmology
from .morphology import BETA_RANGE, aperture_fraction

__all__ = ["draw_structure", "extended_form", "core_calibration", "luminosities", "mean_log_lx", "mean_log_t"]

#: Core-excision radius / r500 (Pratt et al. 2009; Maughan 2007).
CORE_R500 = 0.15
#: ln-scatter of the core component's core radius (about its median) [uncertain].
CORE_RC_SIGMA_LN = 0.3
#: beta of the core component (steep outside its core, so that it stays
#: compact) [uncertain].
CORE_BETA = 0.8


def mean_log_lx(log10_m500, z, params):
    """Mean log10 L_X (0.5-2 keV, < r500, erg/s) of the eFEDS relation (times (1+z)^lx_1pz_slope).

    With ``lx_break_msun`` > 0 the relation is a broken power law: below the
    break the mass slope is ``lx_slope_below_break`` (continuous at the break).
    With ``lx_curvature`` c != 0 it is curved: c (log10 M / pivot)^2 is added,
    so the local slope changes by 2c per dex of mass.
    """
    ez = efunc(z, get_cosmology(params.H0, params.Om0))
    dm = np.asarray(log10_m500, dtype=np.float64) - np.log10(params.lx_pivot_msun)
    out = (params.lx_log10_norm + params.lx_slope * dm
           + params.lx_ez_slope * np.log10(ez) + params.lx_1pz_slope * np.log10(1.0 + z))
    if params.lx_break_msun > 0:
        below = np.minimum(np.asarray(log10_m500, dtype=np.float64) - np.log10(params.lx_break_msun), 0.0)
        out = out + (params.lx_slope_below_break - params.lx_slope) * below
    if params.lx_curvature != 0:
        out = out + params.lx_curvature * dm * dm
    return out


def mean_log_t(log10_m500, z, params):
    """Mean ln T (keV) of the Arnaud et al. (2005) relation."""
    ez = efunc(z, get_cosmology(params.H0, params.Om0))
    return np.log(params.t_norm_keV) + params.t_mass_slope * (
        np.log(ez) + np.log(10.0) * log10_m500 - np.log(params.t_pivot_msun))


def draw_structure(rng, n, params, sigma_ln_core):
    """Draw the structural parameters of ``n`` clusters (all in r500 units).

    Returns a dict of arrays: ``cool_core`` (bool), ``disturbed`` (bool),
    ``rc_r500``, ``beta``, ``ext_cusp`` and ``ext_rs_rc`` (extended component: the
    3-D cusp alpha and rs / rc of the Vikhlinin form, 0 and rs / rc for a beta model), ``core_rc_r500``,
    ``core_cusp``, ``core_ratio`` (core / extended component luminosity,
    whole truncated profiles), ``axis_ratio``, ``angle_rad``,
    ``offset_r500`` (x and y, centroid offset of disturbed clusters),
    ``z_ce`` and ``g_core`` (the standard normal deviates behind the
    core-excised luminosity and the core ratio).
    """
    p = params
    u = rng.random((4, n))
    g = rng.standard_normal((7, n))
    cool = u[0] < p.cool_core_fraction
    disturbed = (~cool) & (u[1] < p.disturbed_fraction_ncc)
    rc = p.rc_r500_median * np.exp(p.rc_r500_sigma_ln * g[0])
    beta = np.clip(p.beta_mean + p.beta_sigma * g[1], *BETA_RANGE)
    core_rc = p.core_rc_r500 * np.exp(CORE_RC_SIGMA_LN * g[2])
    cusp = np.where(cool, p.core_cusp_cc, p.core_cusp_ncc)
    ext_cusp = np.where(cool, p.vik_alpha_cc, p.vik_alpha_ncc) if p.profile_form == "vikhlinin" else np.zeros(n)
    med = np.where(cool, p.core_ratio_cc, p.core_ratio_ncc)
    ratio = med * np.exp(sigma_ln_core * g[3])
    q = p.axis_ratio_min + (1.0 - p.axis_ratio_min) * u[2]
    angle = u[3] * np.pi
    off = np.where(disturbed, p.disturbed_offset_r500, 0.0)
    return {
        "cool_core": cool, "disturbed": disturbed, "rc_r500": rc, "beta": beta,
        "ext_cusp": ext_cusp, "ext_rs_rc": p.vik_rs_r500 / rc,
        "core_rc_r500": core_rc, "core_cusp": cusp, "core_ratio": ratio,
        "axis_ratio": q, "angle_rad": angle,
        "offset_x_r500": off * g[4], "offset_y_r500": off * g[5],
        "z_ce": g[6], "g_core": g[3],
    }


def extended_form(params, ext_cusp, ext_rs_rc):
    """``(cusp, keywords)`` of the extended component's profile form for
    :func:`~skcluster.datasets.morphology.aperture_fraction` and
    :func:`~skcluster.datasets.morphology.sample_offsets`."""
    if params.profile_form == "vikhlinin":
        return ext_cusp, {"vikhlinin": (ext_rs_rc, params.vik_epsilon)}
    if params.profile_form == "sersic":
        return 0.0, {"sersic_n": params.sersic_n}
    return 0.0, {}  # the beta model's cusp is the scalar 0 (an array of zeros changes the last bit of the powers)


def _fractions(s, params):
    """Aperture fractions at (0.15, 1) r500 of the extended and core components."""
    radii = np.array([CORE_R500, 1.0])
    cusp, form = extended_form(params, s["ext_cusp"], s["ext_rs_rc"])
    fe = aperture_fraction(radii[None, :] / s["rc_r500"][:, None], cusp, s["beta"], s["axis_ratio"],
                           params.truncation_r500 / s["rc_r500"], **form)
    fc = aperture_fraction(radii[None, :] / s["core_rc_r500"][:, None], s["core_cusp"], CORE_BETA,
                           s["axis_ratio"], params.truncation_r500 / s["core_rc_r500"])
    return fe, fc


def _log_total_over_ce(fe, fc, rho):
    """ln(L_X / L_ce) per cluster, from the aperture fractions (:func:`_fractions`) and core ratios."""
    lx = fe[:, 1] + rho * fc[:, 1]
    lce = (fe[:, 1] - fe[:, 0]) + rho * (fc[:, 1] - fc[:, 0])
    return np.log(lx) - np.log(lce)


#: Size and seed of the fixed Monte Carlo sample used by the calibration
#: (independent of the survey's random_state, so a parameter set always
#: gives the same calibration).
_CAL_N = 1 << 15
_CAL_SEED = 20230501


@lru_cache(maxsize=32)
def core_calibration(params):
    """Solve the core-component scatter and the core-excised normalisation.

    Finds ``sigma_ln_core`` such that Var(ln L_X) = sigma_ln_lx^2 at fixed
    (M, z), and the offset ``mean_ln_total_over_ce`` = E[ln(L_X/L_ce)] that
    puts the mean of ln L_X on the relation.

    Returns
    -------
    dict with ``sigma_ln_core``, ``mean_ln_total_over_ce``,
    ``sigma_ln_ce`` and ``rho_ce_t`` (correlation used for the core-excised
    part).

    Raises
    ------
    ValueError
        When no core scatter in [0, 3] reaches the requested total scatter
        (the message gives the reachable range and what to change).
    """
    p = params
    var_target = p.sigma_ln_lx**2 - p.sigma_ln_lx_ce**2
    if var_target < 0:
        raise ValueError(
            f"sigma_ln_lx={p.sigma_ln_lx} is below sigma_ln_lx_ce={p.sigma_ln_lx_ce}: the "
            "core-included scatter cannot be smaller than the core-excised one")
    rho_ce = p.rho_lx_t * p.sigma_ln_lx / p.sigma_ln_lx_ce
    if abs(rho_ce) > 1:
        raise ValueError(
            f"rho_lx_t={p.rho_lx_t} needs a core-excised L-T correlation of {rho_ce:.2f} "
            f"(= rho_lx_t * sigma_ln_lx / sigma_ln_lx_ce), above 1 in size; lower rho_lx_t "
            "or raise sigma_ln_lx_ce")
    rng = np.random.default_rng(_CAL_SEED)
    s = draw_structure(rng, _CAL_N, p, 1.0)
    med = np.where(s["cool_core"], p.core_ratio_cc, p.core_ratio_ncc)
    g = s["g_core"]
    fe, fc = _fractions(s, p)  # the core ratio does not change them

    def stats(sig):
        lr = _log_total_over_ce(fe, fc, med * np.exp(sig * g))
        return lr.mean(), lr.var()

    v_lo, v_hi = stats(0.0)[1], stats(3.0)[1]
    if not (v_lo <= var_target <= v_hi):
        lo_tot = np.sqrt(v_lo + p.sigma_ln_lx_ce**2)
        hi_tot = np.sqrt(v_hi + p.sigma_ln_lx_ce**2)
        raise ValueError(
            f"sigma_ln_lx={p.sigma_ln_lx} cannot be reached with these structure parameters: "
            f"the reachable total ln-scatter is {lo_tot:.3f}-{hi_tot:.3f} (the spread of core "
            "radii, beta, axis ratios and the cool-core mixture alone gives the lower end); "
            "change sigma_ln_lx, sigma_ln_lx_ce, rc_r500_sigma_ln, beta_sigma, "
            "cool_core_fraction or core_ratio_cc/core_ratio_ncc")
    sig = brentq(lambda x: stats(x)[1] - var_target, 0.0, 3.0, xtol=1e-6)
    mean = stats(sig)[0]
    return {"sigma_ln_core": float(sig), "mean_ln_total_over_ce": float(mean),
            "sigma_ln_ce": float(p.sigma_ln_lx_ce), "rho_ce_t": float(rho_ce)}


def luminosities(log10_m500, z, s, params, rng, calibration=None):
    """Luminosities and temperatures of clusters with structure ``s``.

    Parameters
    ----------
    log10_m500, z : ndarray of shape (n,)
    s : dict
        From :func:`draw_structure` (with the calibrated core scatter).
    params : SurveyParameters
    rng : numpy.random.Generator
        Draws the temperature deviates.
    calibration : dict, default=None
        :func:`core_calibration` of ``params`` (computed and cached when None).

    Returns
    -------
    dict of ndarray
        ``L_X`` (0.5-2 keV rest, < r500), ``L_X_ce`` (0.15-1 r500),
        ``L_X_core`` (< 0.15 r500), ``L_emit`` (whole truncated profile),
        ``L_ext`` and ``L_corecomp`` (the two components, whole profiles),
        all erg/s; ``T`` (keV).
    """
    cal = core_calibration(params) if calibration is None else calibration
    ln10 = np.log(10.0)
    z_t = rng.standard_normal(log10_m500.shape)
    rho = cal["rho_ce_t"]
    d_ce = params.sigma_ln_lx_ce * s["z_ce"]
    d_t = params.sigma_ln_t * (rho * s["z_ce"] + np.sqrt(1.0 - rho**2) * z_t)
    ln_lce = ln10 * mean_log_lx(log10_m500, z, params) - cal["mean_ln_total_over_ce"] + d_ce
    fe, fc = _fractions(s, params)
    r = s["core_ratio"]
    l_ext = np.exp(ln_lce) / ((fe[:, 1] - fe[:, 0]) + r * (fc[:, 1] - fc[:, 0]))
    l_core = r * l_ext
    lx = l_ext * fe[:, 1] + l_core * fc[:, 1]
    lce = np.exp(ln_lce)
    return {
        "L_X": lx, "L_X_ce": lce, "L_X_core": lx - lce, "L_emit": l_ext + l_core,
        "L_ext": l_ext, "L_corecomp": l_core,
        "T": np.exp(mean_log_t(log10_m500, z, params) + d_t),
    }
