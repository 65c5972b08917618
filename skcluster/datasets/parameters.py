"""Parameters of the mock eROSITA survey: one frozen dataclass, three presets.

Every parameter of the mock lives here, with its source. Published numbers
that other modules use too (cosmology, the L_X-M and M-T relations, the
eFEDS core radius, the PSF, the Galactic N_H, the energy range) are
imported from :mod:`skcluster.physics`, their one home. [measured] marks
numbers measured from the public eFEDS products (Brunner et al. 2022, A&A
661, A1; Liu et al. 2022, A&A 661, A2); [uncertain] numbers are parameters
so that a robustness study can vary them. :func:`resolve_parameters` builds the parameters of a preset with
keyword overrides and rejects unknown names and out-of-range values with a
message that says what was expected. :data:`SKY_VERSIONS` holds the mock
versions: ``sky="v2"`` is the one calibrated on the real eFEDS and
eRASS1 catalogues and images, the default (:data:`DEFAULT_SKY`); ``sky="v1"``
is the earlier mock.

Single keywords for the robustness benchmark
-------------------------------------------
=============================  ==========================================
change of mock physics         keyword (default -> example)
=============================  ==========================================
cool-core fraction             ``cool_core_fraction`` (0.4 -> 0.2 or 0.6)
scatter of L_X at fixed mass   ``sigma_ln_lx`` (0.30 -> 0.40)
profile shape                  ``rc_r500_median`` (0.185 -> 0.25)
                               (and ``beta_mean``, 0.67)
background level x2            ``background_scale`` (1 -> 2)
PSF 30% wider                  ``psf_scale`` (1 -> 1.3)
no AGN                         ``include_agn`` (True -> False)
eRASS1 depth                   ``survey="erass1"`` or
                               ``exposure_scale`` (1 -> 0.092)
every depth (mixed training)   ``survey="erosita"``
profile form                   ``profile_form`` ("beta" -> "vikhlinin"
                               or "sersic")
PSF form                       ``psf_form`` ("king" -> "gaussian"
                               or "gauss_exp")
mass-function form             ``mass_function_model``
                               ("tinker08" -> "despali16")
L_X-M form                     ``lx_break_msun`` (0 -> 1e14) or
                               ``lx_curvature`` (0 -> 0.1)
all the forms at once          ``physics="other"`` (make_survey)
=============================  ==========================================
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field

from ..physics.cosmology import H0_KMS_MPC, OM0
from ..physics.instrument import ENERGY_RANGE_KEV, PSF_ALPHA, PSF_CORE_ARCSEC
from ..physics.rates import NH_EFEDS_CM2
from ..physics.relations import (
    LM_RELATION_EFEDS,
    MASS_PIVOT_MSUN,
    MT_PIVOT_KEV,
    MT_RELATION_ARNAUD05,
    RC_R500_EFEDS,
)

__all__ = ["SurveyParameters", "PRESETS", "SKY_VERSIONS", "DEFAULT_SKY", "resolve_parameters", "parameter_table"]


def _p(default, lo=None, hi=None, doc="", lo_open=False, hi_open=False, choices=None):
    """A dataclass field with its valid range (or choices) and documentation as metadata."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "doc": doc,
                                            "lo_open": lo_open, "hi_open": hi_open, "choices": choices})


@dataclass(frozen=True)
class SurveyParameters:
    """Physical parameters of the mock survey (defaults: the eFEDS preset).

    Units are in the names: ``_msun`` solar masses (h = 0.7 absorbed),
    ``_keV``, ``_s`` seconds, ``_arcsec``/``_arcmin``, ``_cgs``
    erg/s/cm^2, ``_r500`` in units of r500. ``log10_`` quantities are
    decimal logarithms, ``sigma_ln_`` natural-log scatters. The metadata of
    each field holds its valid range and its source; :func:`parameter_table`
    prints them.

    Instances are immutable and hashable, so derived tables (mass function,
    background model, core calibration) are cached per parameter set.
    """

    # -- cosmology and population ------------------------------------------
    H0: float = _p(H0_KMS_MPC, 50.0, 90.0,
                   "Hubble constant, km/s/Mpc (eFEDS papers: Liu+22, Chiu+22)")
    Om0: float = _p(OM0, 0.1, 0.6, "matter density, flat LambdaCDM (eFEDS papers)")
    Ob0: float = _p(0.049, 0.01, 0.1, "baryon density for the power spectrum (Planck18 via colossus)")
    sigma8: float = _p(0.8102, 0.5, 1.1, "power-spectrum normalisation (Planck18 via colossus)")
    ns: float = _p(0.9665, 0.8, 1.1, "spectral index (Planck18 via colossus)")
    z_min: float = _p(0.01, 0.001, 2.0, "lowest redshift (seed study, arXiv:2305.00016)")
    z_max: float = _p(1.5, 0.01, 2.0, "highest redshift (seed study: 1.51)")
    log10_m500_min: float = _p(13.0, 12.5, 15.0, "lowest log10 M500c/Msun (seed study)")
    log10_m500_max: float = _p(15.2, 13.5, 16.0, "highest log10 M500c/Msun (seed study)")
    mass_function_model: str = _p("tinker08",
                                  doc="form of the halo mass function (colossus): 'tinker08' (Tinker et al. "
                                      "2008, ApJ 688, 709), 'despali16' (Despali et al. 2016, MNRAS 456, "
                                      "2486: universal in the peak height nu for any overdensity) or "
                                      "'bocquet16' (Bocquet et al. 2016, MNRAS 456, 2361: the fit to the "
                                      "Magneticum hydrodynamical simulations, baryons included)",
                                  choices=("tinker08", "despali16", "bocquet16"))

    # -- L_X(0.5-2 keV, <r500) - M relation --------------------------------
    lx_log10_norm: float = _p(LM_RELATION_EFEDS[0], 41.0, 46.0,
                              "log10 L_X/(erg/s) at the pivot mass and z = 0 "
                              "(eFEDS fit, Liu+22 L_X vs Chiu+22 WL masses) [measured]")
    lx_pivot_msun: float = _p(MASS_PIVOT_MSUN, 1e13, 1e16, "pivot mass of the L_X-M relation, Msun")
    lx_slope: float = _p(LM_RELATION_EFEDS[1], 0.5, 3.0, "mass slope of L_X-M (eFEDS fit) [measured]")
    lx_break_msun: float = _p(0.0, 0.0, 1e16,
                              "mass below which L_X-M takes the slope lx_slope_below_break, Msun (0: no "
                              "break, one power law) [uncertain]; groups are often found steeper than "
                              "clusters, a form the physics prior and test families can vary")
    lx_slope_below_break: float = _p(LM_RELATION_EFEDS[1], 0.5, 4.0,
                                     "mass slope of L_X-M below lx_break_msun [uncertain]")
    lx_curvature: float = _p(0.0, -1.0, 1.0,
                             "curvature of log10 L_X-M, per dex^2 of mass about lx_pivot_msun (0: a power law, "
                             "the eFEDS fit's form; c adds c log10(M/pivot)^2, the local slope changing by 2c per "
                             "dex) [uncertain]: groups are found steeper or as steep as clusters (e.g. Lovisari "
                             "et al. 2015, A&A 573, A118), a smooth form the physics prior can vary")
    lx_ez_slope: float = _p(LM_RELATION_EFEDS[2], -2.0, 4.0, "E(z) exponent of L_X-M (self-similar, eFEDS fit)")
    lx_1pz_slope: float = _p(0.0, -3.0, 3.0,
                             "exponent of (1+z) in L_X-M beyond E(z) (0: self-similar, the eFEDS fit; Chiu et al. "
                             "2022, A&A 661, A11, fit -0.51 with selection modelled)")
    sigma_ln_lx: float = _p(0.30, 0.05, 1.0,
                            "total ln-scatter of L_X at fixed M, z (0.25-0.40: the 0.185 dex rms of the eFEDS fit "
                            "understates it; default 0.30)")
    sigma_ln_lx_ce: float = _p(0.12, 0.02, 0.8,
                               "ln-scatter of core-excised L_X(0.15-1 r500) at fixed M, z "
                               "(Maughan 07: 11%; Pratt+09: less than half the total)")

    # -- T - M relation ------------------------------------------------------
    t_norm_keV: float = _p(MT_PIVOT_KEV, 1.0, 10.0, "T at the pivot (Arnaud+05: E(z) M500 = 3.84e14 (T/5 keV)^1.71)")
    t_pivot_msun: float = _p(MT_RELATION_ARNAUD05[0], 1e13, 1e16,
                             "pivot E(z) M500 of the T-M relation, Msun (Arnaud+05)")
    t_mass_slope: float = _p(1.0 / MT_RELATION_ARNAUD05[1], 0.3, 1.0, "slope of ln T vs ln(E(z) M) (Arnaud+05: 1/1.71)")
    sigma_ln_t: float = _p(0.12, 0.0, 0.5, "ln-scatter of T at fixed M, z (0.10-0.15; Magneticum simulations 0.12)")
    rho_lx_t: float = _p(0.3, -0.9, 0.9,
                         "correlation of the total-L_X and T residuals at fixed M, z "
                         "(+0.3 to +0.5) [uncertain]")

    # -- gas morphology ------------------------------------------------------
    rc_r500_median: float = _p(RC_R500_EFEDS, 0.02, 1.0,
                               "median core radius of the extended component / r500 "
                               "(eFEDS rc/r500 median 0.185) [measured]")
    rc_r500_sigma_ln: float = _p(0.25, 0.0, 1.0,
                                 "intrinsic ln-scatter of rc/r500 of the extended component; the "
                                 "eFEDS 16-84% range 0.10-0.29 (sigma_ln ~ 0.53) also holds the "
                                 "cool-core mixture and measurement noise [uncertain]")
    beta_mean: float = _p(0.67, 0.55, 1.0,
                          "mean beta of the extended component (0.67 +- 0.1; eSASS extent fits use 2/3, Brunner+22)")
    beta_sigma: float = _p(0.1, 0.0, 0.3, "scatter of beta, clipped to [0.55, 1.0]")
    profile_form: str = _p("beta", doc="form of the extended component's profile: 'beta' (the projected beta "
                                       "model of the eFEDS fits, closed form) or 'vikhlinin' (the emission "
                                       "measure n_p n_e of Vikhlinin et al. 2006, ApJ 640, 691, Eq. 3, with a "
                                       "central cusp vik_alpha_cc/ncc and a steepening beyond vik_rs_r500 of "
                                       "vik_epsilon, gamma = 3 as in all their fits; rc and beta as for 'beta'; "
                                       "projected numerically, skcluster.datasets.morphology): another form, for "
                                       "tests of physics the model never saw; or 'sersic' (a Sersic profile of "
                                       "index sersic_n with the beta model's half-light radius: no core, "
                                       "an exponential-like fall-off), a third",
                           choices=("beta", "vikhlinin", "sersic"))
    sersic_n: float = _p(1.0, 0.2, 8.0,
                         "profile_form 'sersic': Sersic index n of the extended component, S ~ exp(-b_n "
                         "(R/R_e)^(1/n)) with R_e the truncated beta model's half-light radius (Sersic fits to "
                         "cluster X-ray surface brightness: Demarco et al. 2003, A&A 407, 437; Andrade-Santos "
                         "et al. 2012, ApJ 746, 139); 1: exponential [uncertain]")
    vik_alpha_cc: float = _p(1.0, 0.0, 2.5,
                             "profile_form 'vikhlinin': 3-D cusp alpha of the extended component of cool cores "
                             "(n_p n_e ~ r^-alpha inside rc; 1 < alpha < 3 projects to S ~ R^(1 - alpha), within "
                             "the projected cusps 0-1.5 of core_cusp_cc, Ghirardini+19) [uncertain]; 1 keeps the "
                             "structural L_X scatter (0.29 at the defaults) below sigma_ln_lx, 1.5 would not (0.35)")
    vik_alpha_ncc: float = _p(0.0, 0.0, 2.5, "the same for non-cool cores (0: a flat core, the beta model's)")
    vik_rs_r500: float = _p(1.0, 0.2, 5.0,
                            "profile_form 'vikhlinin': radius / r500 beyond which the emission measure steepens "
                            "(Vikhlinin et al. 2006: the density steepens continuously with radius, unlike a beta "
                            "model, near r500 and beyond) [uncertain]")
    vik_epsilon: float = _p(3.0, 0.0, 5.0,
                            "profile_form 'vikhlinin': extra logarithmic slope of the emission measure beyond "
                            "vik_rs_r500 (Vikhlinin et al. 2006 restrict epsilon < 5 in their fits) [uncertain]")
    cool_core_fraction: float = _p(0.4, 0.0, 1.0, "fraction of cuspy cool cores (30-50%, after the smooth cool-core "
                                                  "transition of eFEDS, Ghirardini+22) [uncertain]")
    core_ratio_cc: float = _p(0.3, 0.0, 5.0,
                              "median luminosity of the core component over the extended "
                              "component, cool cores [uncertain]; with 0.3 the total L_X scatter "
                              "can be set anywhere in 0.23-0.72 (sigma_ln_lx: 0.25-0.40), and "
                              "L(<0.15 r500)/L_X is ~0.47 in cool cores, ~0.32 in the others")
    core_ratio_ncc: float = _p(0.05, 0.0, 5.0,
                               "the same for non-cool cores [uncertain]")
    core_rc_r500: float = _p(0.03, 0.005, 0.15, "median core radius of the core component / r500 [uncertain]")
    core_cusp_cc: float = _p(0.6, 0.0, 1.5,
                             "inner slope a of the projected core component, S ~ R^-a, cool cores "
                             "(projected Vikhlinin cusp alpha 0-1.5, Ghirardini+19) [uncertain]")
    core_cusp_ncc: float = _p(0.0, 0.0, 1.5, "the same for non-cool cores")
    axis_ratio_min: float = _p(0.6, 0.2, 1.0, "axis ratio uniform in [axis_ratio_min, 1] (0.6-1)")
    disturbed_fraction_ncc: float = _p(0.5, 0.0, 1.0,
                                       "fraction of non-cool-core clusters that are disturbed [uncertain]")
    disturbed_offset_r500: float = _p(0.05, 0.0, 0.5,
                                      "Rayleigh sigma of the centroid offset of disturbed clusters / r500 [uncertain]")
    truncation_r500: float = _p(3.0, 1.0, 10.0, "profiles truncated at this (elliptical) radius / r500")

    # -- spectrum and instrument ---------------------------------------------
    nH_cm2: float = _p(NH_EFEDS_CM2, 0.0, 1e22, "Galactic N_H, cm^-2 (eFEDS 3-3.5e20)")
    psf_core_arcsec: float = _p(PSF_CORE_ARCSEC, 1.0, 60.0,
                                "King PSF core radius, arcsec (survey average; physics.instrument)")
    psf_alpha: float = _p(PSF_ALPHA, 1.05, 5.0,
                          "King PSF slope (1.5, physics.instrument; the detection proxy treats it as 1.5)",
                          lo_open=False)
    psf_scale: float = _p(1.0, 0.2, 5.0, "multiplies the PSF core radius (robustness: 1.3 = 30% wider)")
    psf_form: str = _p("king", doc="form of the PSF the photons are drawn from: 'king' (the survey PSF) or "
                                   "'gaussian' (the same half-energy radius, no wings: another form, for "
                                   "tests of physics the model never saw; the detection step still assumes "
                                   "the King form, as a pipeline with a wrong PSF model would) or 'gauss_exp' (the "
                                   "same half-energy radius, a Gaussian core with exponential wings: Boese 2000, "
                                   "A&AS 141, 507, the ROSAT PSPC form without its power law)",
                       choices=("king", "gaussian", "gauss_exp"))
    exposure_median_s: float = _p(1180.0, 1.0, 1e7,
                                  "median vignetted exposure at 1 keV, s (eFEDS at cluster positions) [measured]")
    exposure_p05_s: float = _p(785.0, 1.0, 1e7, "5th percentile of the exposure, s (eFEDS) [measured]")
    exposure_p95_s: float = _p(1941.0, 1.0, 1e7, "95th percentile of the exposure, s (eFEDS) [measured]")
    exposure_scale: float = _p(1.0, 1e-3, 1e3, "multiplies every exposure (depth knob)")
    exposure_table: str = _p("none", doc="draw each cluster's exposure from a real catalogue's measured "
                                         "distribution (skcluster.physics.exposure: 'efeds_clusters', eFEDS "
                                         "ML_EXP, Liu et al. 2022; 'erass1_clusters', eRASS1 Exp, Bulbul et "
                                         "al. 2024) instead of the split log-normal ('none')",
                             choices=("none", "efeds_clusters", "erass1_clusters"))
    exposure_selection_slope: float = _p(0.0, 0.0, 3.0,
                                         "with exposure_table: the catalogue's exposures are weighted by "
                                         "exposure^-slope to undo the selection (more clusters are detected "
                                         "where the survey is deeper; the slope of the detected density "
                                         "against exposure, measured on the mock by benchmarks/validate_sky.py)")
    exposure_log_uniform: bool = _p(False, doc="draw each cluster's exposure log-uniform in "
                                               "[exposure_min_s, exposure_max_s] instead of the split "
                                               "log-normal through exposure_p05_s/median/p95 (mixed-depth "
                                               "preset 'erosita')")
    exposure_min_s: float = _p(80.0, 1.0, 1e7,
                               "lowest vignetted exposure (1 keV) of the log-uniform draw, s: eRASS1 near "
                               "the ecliptic equator, 150 s unvignetted x 0.54 (Merloni et al. 2024; "
                               "vignetting at 1 keV from the eFEDS exposure maps, Brunner et al. 2022)")
    exposure_max_s: float = _p(5000.0, 1.0, 1e7,
                               "highest vignetted exposure of the log-uniform draw, s: ~9 ks unvignetted, "
                               "eRASS:4-5 depth toward the ecliptic poles (Merloni et al. 2024), above the "
                               "eFEDS 95th percentile of 1941 s (Brunner et al. 2022) [uncertain]")
    background_scale: float = _p(1.0, 0.0, 100.0, "multiplies sky and particle background (robustness: 2)")
    background_measurement: str = _p("mock_v1",
                                     doc="the measured background rates the model is fitted to "
                                         "(skcluster.datasets.background.BACKGROUND_MEASUREMENTS): 'mock_v1', "
                                         "0.2-2.3 keV 2.1e-3 counts/s/arcmin^2 unvignetted; 'efeds_field', "
                                         "measured on the public eFEDS images (Brunner et al. 2022) in seven "
                                         "bands, 0.3-2.2 keV 2.97e-3, and matching the eFEDS catalogue's "
                                         "ML_BKG / ML_EXP (Liu et al. 2022)",
                                     choices=("mock_v1", "efeds_field"))
    background_p05_rel: float = _p(1.0, 0.05, 1.0,
                                   "5th percentile of the per-cluster multiplier of the diffuse background "
                                   "rate (1: every cluster the same). Preset 'erosita': 4.7/7.0 = 0.671, the "
                                   "5th percentile over the median of the background level at the eFEDS "
                                   "cluster positions (catalogue ML_BKG, 0.2-2.3 keV: 4.7 / 7.0 / 13.3 "
                                   "counts/arcmin^2 at 5 / 50 / 95%, Brunner et al. 2022; Liu et al. 2022)")
    background_p95_rel: float = _p(1.0, 1.0, 20.0,
                                   "95th percentile of that multiplier (preset 'erosita': 13.3/7.0 = 1.90). "
                                   "The ML_BKG spread also holds the spread of exposure, so these bounds are "
                                   "an upper bound on the spread per second (ML_BKG / ML_EXP: 0.895 / 1.496; "
                                   "sky='v2' draws that, background_table) [uncertain]")
    background_table: str = _p("none", doc="draw each cluster's background level from a real catalogue's "
                                           "measured distribution relative to its median "
                                           "(skcluster.physics.exposure: 'efeds_clusters', eFEDS ML_BKG / "
                                           "ML_EXP, 5 / 95% at 0.895 / 1.496 of the median, Brunner et al. "
                                           "2022; Liu et al. 2022) instead of the split log-normal through "
                                           "background_p05_rel and background_p95_rel ('none')",
                               choices=("none", "efeds_clusters"))
    nh_vary: bool = _p(False, doc="draw each cluster's Galactic N_H log-uniform in [nh_min_cm2, nh_max_cm2] "
                                  "(on a 0.05 dex grid) instead of the single nH_cm2; it absorbs the ICM and "
                                  "AGN spectra, while the background keeps its measured level at nH_cm2")
    nh_min_cm2: float = _p(1e20, 1e19, 1e22,
                           "lowest N_H of the per-cluster draw, cm^-2 (HI4PI Collaboration 2016: N_HI over "
                           "the extragalactic sky |b| > 20 deg is mostly 1e20-1e21, reaching ~5e19 only "
                           "in the Lockman Hole)")
    nh_max_cm2: float = _p(1e21, 1e19, 1e22,
                           "highest N_H of the per-cluster draw, cm^-2 (HI4PI Collaboration 2016; regions "
                           "above ~1e21 are near the Galactic plane, outside cluster surveys)")

    # -- AGN -----------------------------------------------------------------
    include_agn: bool = _p(True, doc="field and central AGN on (False: none; their mean flux "
                                     "goes back into the diffuse background)")
    agn_flux_min_cgs: float = _p(1e-15, 1e-17, 1e-13,
                                 "faintest discrete AGN, 0.5-2 keV erg/s/cm^2 (Lehmer+12 table starts here)")
    agn_flux_max_cgs: float = _p(1e-11, 1e-14, 1e-9, "brightest AGN drawn, erg/s/cm^2")
    agn_lognlogs: str = _p("lehmer12", doc="AGN source counts: 'lehmer12' (Lehmer et al. 2012) or 'efeds' (the "
                                            "eFEDS point-like catalogue above 6.5e-15, Liu T. et al. 2022, "
                                            "Lehmer et al. below; 1.2-1.55x more AGN at 1e-14 to 1e-13)",
                           choices=("lehmer12", "efeds"))
    agn_mask_flux_cgs: float = _p(6.5e-15, 1e-16, 1e-11,
                                  "point-source detection limit (0.5-2 keV): brighter field AGN are "
                                  "fitted separately by the detection step and masked from the "
                                  "background map (eFEDS ~6.5e-15, Brunner+22) [uncertain]")
    agn_mask_depth_slope: float = _p(0.0, 0.0, 1.0,
                                     "the point-source limit of a cluster is agn_mask_flux_cgs x "
                                     "(exposure / agn_mask_exposure_ref_s)^-slope (0: the same for every "
                                     "cluster). Preset 'erosita': 0.855, the power law through the eFEDS "
                                     "(6.5e-15 at 1180 s, Brunner et al. 2022) and eRASS1 (5e-14 at 108 s, "
                                     "Merloni et al. 2024) limits [uncertain]")
    agn_mask_exposure_ref_s: float = _p(1180.0, 1.0, 1e7,
                                        "exposure at which the limit is agn_mask_flux_cgs, s (eFEDS median "
                                        "at the cluster positions)")
    central_agn_fraction: float = _p(0.1, 0.0, 1.0, "fraction of clusters with a central AGN [uncertain]")
    central_agn_log10_lum: float = _p(42.5, 39.0, 46.0,
                                      "median log10 L(0.5-2 keV rest)/(erg/s) of central AGN [uncertain]")
    central_agn_sigma_dex: float = _p(0.5, 0.0, 2.0, "dex scatter of the central-AGN luminosity [uncertain]")

    # -- detection -----------------------------------------------------------
    det_band_keV: tuple = _p((0.2, 2.3), doc="detection band, keV (eFEDS: 0.2-2.3 keV)")
    det_radius_arcmin: float = _p(3.0, 0.5, 10.0, "radius of the detection fit, arcmin [uncertain]")
    det_ext_max_arcsec: float = _p(120.0, 10.0, 600.0,
                                   "largest core radius of the extent fit, arcsec [uncertain]")
    det_like_scale: float = _p(1.0, 0.05, 2.0,
                               "multiplies the likelihood gains of the detection fit (1: the ideal "
                               "fixed-position fit; below 1 mimics a less efficient pipeline)")
    match_fraction: float = _p(0.5, 0.0, 1.0,
                               "a detection counts as the cluster's only if its ICM photons make up at "
                               "least this fraction of the fitted source counts within the fit radius "
                               "(photon-based matching as in Seppi et al. 2022)")
    det_like_min: float = _p(5.0, 0.0, 1e6, "DET_LIKE cut (eFEDS extended sample)")
    ext_like_min: float = _p(6.0, 0.0, 1e6, "EXT_LIKE cut (eFEDS extended sample)")
    min_icm_counts: int = _p(
        15, 1, 1000,
        "a detection needs at least this many ICM photons (detection band) within the detection "
        "radius; binds for < 1% of the clusters passing the likelihood cuts and matching, and makes "
        "the pre-selection bound exact (see skcluster.datasets.survey)")
    preselect_min_counts: float = _p(
        3.0, 0.0, 1e4,
        "photons are only simulated for halos expecting at least this many ICM counts in the "
        "detection band (whole profile); 0 simulates every halo. A dropped halo could only have "
        "passed with >= min_icm_counts ICM photons: the expected number of such halos is bounded "
        "exactly by Poisson tails and reported (catalog.meta['preselect_miss_bound'])")

    # -- geometry ------------------------------------------------------------
    size_arcmin: float = _p(20.0, 1.0, 120.0, "side of the event box per cluster, arcmin (seed study: 20)")
    energy_range_keV: tuple = _p(ENERGY_RANGE_KEV, doc="simulated photon energies, keV (eROSITA 0.2-10 keV)")

    def __post_init__(self):
        errors = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            md = f.metadata
            if f.type in ("bool", bool):
                if not isinstance(value, (bool,)):
                    errors.append(f"{f.name}={value!r} must be True or False")
                continue
            if md.get("choices") is not None:
                if value not in md["choices"]:
                    errors.append(f"{f.name}={value!r} must be one of {list(md['choices'])}")
                continue
            if f.type in ("tuple", tuple):
                try:
                    lo, hi = (float(v) for v in value)
                except (TypeError, ValueError):
                    errors.append(f"{f.name}={value!r} must be a (lo, hi) pair in keV")
                    continue
                if not (0.1 <= lo < hi <= 12.0):
                    errors.append(f"{f.name}={value!r} must satisfy 0.1 <= lo < hi <= 12 keV")
                continue
            try:
                v = float(value)
            except (TypeError, ValueError):
                errors.append(f"{f.name}={value!r} must be a number")
                continue
            if f.type in ("int", int) and (isinstance(value, bool) or v != int(v) if math.isfinite(v) else True):
                errors.append(f"{f.name}={value!r} must be an integer")
                continue
            if isinstance(value, bool) or not math.isfinite(v):
                errors.append(f"{f.name}={value!r} must be a finite number")
                continue
            lo, hi = md.get("lo"), md.get("hi")
            if lo is not None and (v < lo or (md.get("lo_open") and v == lo)):
                errors.append(f"{f.name}={value!r} is below its valid range [{lo}, {hi}]")
            if hi is not None and v > hi:
                errors.append(f"{f.name}={value!r} is above its valid range [{lo}, {hi}]")
        pairs = [
            ("z_min", "z_max"), ("log10_m500_min", "log10_m500_max"),
            ("exposure_p05_s", "exposure_median_s"), ("exposure_median_s", "exposure_p95_s"),
            ("agn_flux_min_cgs", "agn_flux_max_cgs"), ("exposure_min_s", "exposure_max_s"),
            ("nh_min_cm2", "nh_max_cm2"),
        ]
        for a, b in pairs:
            try:
                if not float(getattr(self, a)) < float(getattr(self, b)):
                    errors.append(f"{a}={getattr(self, a)!r} must be below {b}={getattr(self, b)!r}")
            except (TypeError, ValueError):
                pass
        try:
            if self.det_ext_max_arcsec > 60 * self.det_radius_arcmin:
                errors.append(
                    f"det_ext_max_arcsec={self.det_ext_max_arcsec!r} must not exceed the "
                    f"detection radius ({60 * self.det_radius_arcmin:g} arcsec)")
            if 60 * self.det_radius_arcmin > 30 * self.size_arcmin:
                errors.append(
                    f"det_radius_arcmin={self.det_radius_arcmin!r} must fit in the box "
                    f"(half of size_arcmin={self.size_arcmin!r})")
            (dlo, dhi), (elo, ehi) = self.det_band_keV, self.energy_range_keV
            if not (elo <= dlo < dhi <= ehi):
                errors.append(f"det_band_keV={self.det_band_keV!r} must lie within "
                              f"energy_range_keV={self.energy_range_keV!r}")
            if self.truncation_r500 <= 1.0:
                errors.append("truncation_r500 must exceed 1 (L_X is measured within r500)")
        except (TypeError, ValueError):
            pass
        if errors:
            raise ValueError("invalid mock-survey parameter(s): " + "; ".join(errors))

    # -- convenience -------------------------------------------------------
    def replace(self, **changes):
        """A copy with some parameters changed (validated like the constructor)."""
        check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Plain dict of the parameters (tuples as lists), e.g. for FITS/JSON metadata."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @property
    def psf_rc_arcsec(self):
        """Effective King core radius, arcsec (``psf_core_arcsec * psf_scale``)."""
        return self.psf_core_arcsec * self.psf_scale


_NAMES = tuple(f.name for f in dataclasses.fields(SurveyParameters))

#: Presets: overrides of the defaults. eFEDS is the default set. eRASS1: the
#: first all-sky pass, ~150-250 s unvignetted exposure near the ecliptic
#: equator [uncertain], i.e. x0.54 (vignetting at 1 keV) =
#: 81-135 s vignetted, median 108 s; the point-source limit is ~5e-14
#: erg/s/cm^2 (0.5-2 keV; Merloni et al. 2024) [uncertain]. The deeper
#: exposure toward the ecliptic poles is not modelled.
#:
#: ``erosita``: every depth the survey delivers, for training one model on
#: all of them. Per cluster: vignetted exposure log-uniform in 80-5000 s
#: (eRASS1 at the ecliptic equator, ~150 s unvignetted, to eRASS:4-5 toward
#: the ecliptic poles, Merloni et al. 2024, through the eFEDS depth of
#: 785-1941 s, Brunner et al. 2022; log-uniform so that every decade of
#: depth is equally represented, not the sky's own distribution); the
#: diffuse background rate times a factor with the 5/50/95% spread of the
#: eFEDS background level at the cluster positions (ML_BKG 4.7 / 7.0 / 13.3
#: counts/arcmin^2, Brunner et al. 2022); Galactic N_H log-uniform in
#: 1e20-1e21 cm^-2 (HI4PI Collaboration 2016); the point-source limit
#: scaling with the cluster's exposure through the eFEDS and eRASS1 limits.
#: Detection and extent cuts are applied at each cluster's own depth.
PRESETS = {
    "efeds": {},
    "erass1": {
        "exposure_median_s": 108.0,
        "exposure_p05_s": 81.0,
        "exposure_p95_s": 135.0,
        "agn_mask_flux_cgs": 5e-14,
    },
    "erosita": {
        "exposure_log_uniform": True,
        "exposure_min_s": 80.0,
        "exposure_max_s": 5000.0,
        "background_p05_rel": 4.7 / 7.0,
        "background_p95_rel": 13.3 / 7.0,
        "nh_vary": True,
        "nh_min_cm2": 1e20,
        "nh_max_cm2": 1e21,
        "agn_mask_depth_slope": 0.855,
    },
}

# -- sky-calibrated mock versions (issue 34) -------------------------------------------------------------
#: Settings each preset gets from the real eFEDS and eRASS1 data on top of itself.
_SKY_V2_COMMON = {
    # the background measured on the public eFEDS images in seven bands (skcluster.datasets.background)
    "background_measurement": "efeds_field",
    # each cluster's background level from ML_BKG / ML_EXP at the 542 eFEDS clusters (physics.exposure)
    "background_table": "efeds_clusters",
    "background_p05_rel": 1.0,
    "background_p95_rel": 1.0,
    # the eFEDS point-like catalogue's source counts above its limit (Liu T. et al. 2022, A&A 661, A5)
    "agn_lognlogs": "efeds",
    # the extent fit capped at 60", the largest EXT of the eFEDS catalogue (Brunner et al. 2022)
    "det_ext_max_arcsec": 60.0,
}
#: Slope k of the detected cluster density against exposure, n_det ~ t^k, measured on the mock between 100
#: and 1600 s (``python benchmarks/validate_sky.py --selection-slope``): undoes the catalogues' selection.
_SELECTION_SLOPE_MEASURED = 0.92
#: Mock versions: overrides of :data:`PRESETS` per preset (``resolve_parameters(..., sky=...)``,
#: ``make_survey(..., sky=...)``). ``"v1"``: the presets as they are (the earlier mock).
#: ``"v2"``: calibrated on the real sky, the default (:data:`DEFAULT_SKY`; issue 34, benchmarks/validate_sky.py): the
#: background measured on the eFEDS images; each cluster's background level drawn from eFEDS's ML_BKG /
#: ML_EXP (Brunner et al. 2022; Liu et al. 2022; eRASS1's catalogue has no background column, so the
#: eRASS1 preset takes eFEDS's spread, the only one measured at cluster positions); the eFEDS AGN source
#: counts; the extent fit capped at 60"; the efeds preset's exposures drawn from the eFEDS catalogue's
#: ML_EXP, the erass1 preset's from the eRASS1 primary catalogue's Exp (78-820 s for 5-95%, the deep
#: ecliptic-pole region included; Bulbul et al. 2024, A&A 685, A106; Merloni et al. 2024, A&A 682, A34),
#: both with the detection's preference for deep sky undone, and there the point-source limit following
#: each cluster's exposure through the eFEDS and eRASS1 limits. The erosita preset keeps its log-uniform
#: 80-5000 s exposures (a training design, not the sky's distribution).
SKY_VERSIONS = {
    "v1": {name: {} for name in PRESETS},
    "v2": {
        "efeds": {**_SKY_V2_COMMON, "exposure_table": "efeds_clusters",
                  "exposure_selection_slope": _SELECTION_SLOPE_MEASURED},
        "erass1": {**_SKY_V2_COMMON, "exposure_table": "erass1_clusters",
                   "exposure_selection_slope": _SELECTION_SLOPE_MEASURED,
                   "agn_mask_depth_slope": PRESETS["erosita"]["agn_mask_depth_slope"],
                   "agn_mask_exposure_ref_s": PRESETS["erass1"]["exposure_median_s"]},
        "erosita": dict(_SKY_V2_COMMON),
    },
}
#: The mock version a preset name resolves to when ``sky`` is not given: flipping it changes every preset.
DEFAULT_SKY = "v2"

#: Sky area of one eFEDS field, deg^2 (Brunner et al. 2022: ~140 deg^2): the
#: default area when neither ``n_clusters`` nor ``area_deg2`` is given.
DEFAULT_AREA_DEG2 = 140.0


def check_names(overrides):
    """Raise ``TypeError`` naming unknown parameters and listing the valid ones."""
    unknown = [k for k in overrides if k not in _NAMES]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, _NAMES, n=2)
            hints.append(f"{k!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
        raise TypeError(
            f"unknown mock-survey parameter(s) {', '.join(hints)}; valid parameters are: "
            + ", ".join(_NAMES)
        )


#: Step of the per-cluster N_H grid, dex: each cluster's N_H is a grid value,
#: so that its spectral tables are exact and shared.
NH_STEP_DEX = 0.05


def nh_grid(p):
    """The N_H values (cm^-2) a cluster can have when ``nh_vary`` is on (``p``: :class:`SurveyParameters`)."""
    import numpy as np

    k0 = int(math.floor(math.log10(p.nh_min_cm2) / NH_STEP_DEX + 1e-9))
    k1 = int(math.ceil(math.log10(p.nh_max_cm2) / NH_STEP_DEX - 1e-9))
    return 10.0 ** (NH_STEP_DEX * np.arange(k0, k1 + 1))


def resolve_parameters(survey="efeds", *, sky=None, **overrides):
    """Parameters of a preset with keyword overrides.

    Parameters
    ----------
    survey : {"efeds", "erass1", "erosita"} or SurveyParameters, default="efeds"
        Preset name (case-insensitive), or a parameter set to start from.
    sky : {"v1", "v2"} or None, default=None
        Mock version of the preset (:data:`SKY_VERSIONS`: its overrides
        come between the preset and ``overrides``); ``None`` is
        :data:`DEFAULT_SKY`. Only with a preset name.
    **overrides
        Any field of :class:`SurveyParameters`.

    Returns
    -------
    SurveyParameters

    Raises
    ------
    ValueError
        Unknown survey name or mock version, ``sky`` with a parameter set,
        or a value out of its valid range.
    TypeError
        Unknown parameter name (the message lists the valid ones).
    """
    check_names(overrides)
    if sky is not None and (not isinstance(sky, str) or sky not in SKY_VERSIONS):
        raise ValueError(f"unknown mock version sky={sky!r}; versions are {sorted(SKY_VERSIONS)}")
    if isinstance(survey, SurveyParameters):
        if sky is not None:
            raise ValueError(f"sky={sky!r} selects the version of a preset; survey is a full parameter set "
                             "(pass a preset name, or change the parameters directly)")
        base = survey
        return dataclasses.replace(base, **overrides) if overrides else base
    if not isinstance(survey, str) or survey.lower() not in PRESETS:
        raise ValueError(f"unknown survey {survey!r}; presets are {sorted(PRESETS)}")
    values = {**PRESETS[survey.lower()], **SKY_VERSIONS[sky or DEFAULT_SKY][survey.lower()], **overrides}
    for k in ("det_band_keV", "energy_range_keV"):
        if k in values and isinstance(values[k], list):
            values[k] = tuple(values[k])
    return SurveyParameters(**values)


def parameter_table():
    """Markdown table of every parameter: name, default, valid range, source."""
    rows = ["| parameter | default | range | meaning and source |", "|---|---|---|---|"]
    for f in dataclasses.fields(SurveyParameters):
        md = f.metadata
        rng = "" if md.get("lo") is None else f"[{md['lo']:g}, {md['hi']:g}]"
        if md.get("choices") is not None:
            rng = " / ".join(map(repr, md["choices"]))
        rows.append(f"| `{f.name}` | {f.default!r} | {rng} | {md.get('doc', '')} |")
    return "\n".join(rows)
