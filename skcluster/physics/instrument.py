"""eROSITA instrument response: effective area, vignetting, PSF, pixels.

Numbers measured from the public eFEDS products (eFEDS data release:
Brunner et al. 2022, A&A 661, A1; Liu et al. 2022, A&A 661, A2) or from the
eROSITA instrument paper (Predehl et al. 2021, A&A 647, A1):

* on-axis effective area of the 7 telescope modules, tabulated from a real
  eFEDS srctool ARF [measured], to be used with the vignetted exposure;
* survey-averaged vignetting factor (vignetted / unvignetted exposure) as a
  function of energy [measured from eFEDS exposure maps];
* survey-averaged PSF, a King profile (1 + (r/rc)^2)^-alpha with
  rc = 8.64 arcsec, alpha = 1.5 (HEW ~ 30 arcsec); two other forms with its
  half-energy radius, a Gaussian and a Gaussian core with exponential wings,
  for mocks with physics the King form does not describe;
* 4 arcsec image pixels (evtool ``rebin=80`` of 0.05 arcsec sky pixels).

Energy resolution (~80 eV FWHM at 1.5 keV, [uncertain]) is ignored: it is
small against every band used here.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "ENERGY_RANGE_KEV",
    "PIXEL_ARCSEC",
    "PSF_CORE_ARCSEC",
    "PSF_ALPHA",
    "effective_area_cm2",
    "vignetting_factor",
    "VIGNETTING_1KEV",
    "relative_vignetting",
    "king_enclosed_fraction",
    "king_radius_for_fraction",
    "sample_king_offsets",
    "sample_gaussian_psf_offsets",
    "GAUSS_EXP_WING_FRACTION",
    "GAUSS_EXP_WING_SCALE",
    "gauss_exp_enclosed_fraction",
    "sample_gauss_exp_psf_offsets",
    "energy_grid_keV",
]

#: eROSITA energy range, keV (Predehl et al. 2021; science mostly 0.2-2.3 keV).
ENERGY_RANGE_KEV = (0.2, 10.0)
#: evtool image pixel, arcsec (rebin = 80 sky pixels of 0.05", as the eFEDS images of
#: Brunner et al. 2022).
PIXEL_ARCSEC = 4.0
#: King PSF core radius, arcsec, survey average, measured from the public eFEDS
#: products (HEW ~ 30 arcsec, Brunner et al. 2022).
PSF_CORE_ARCSEC = 8.64
#: King PSF slope, survey average (measured with :data:`PSF_CORE_ARCSEC`).
PSF_ALPHA = 1.5

# On-axis effective area, all 7 TMs, measured from a srctool ARF of the public eFEDS
# products (Brunner et al. 2022).
_ARF_KEV = np.array([0.20, 0.25, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 1.00, 1.20, 1.50, 1.60,
                     1.80, 2.00, 2.20, 2.30, 2.60, 3.00, 4.00, 5.00, 6.00, 7.00, 8.00, 10.0])
_ARF_CM2 = np.array([92, 280, 148, 702, 1083, 1278, 1609, 1864, 2182, 2411, 2506, 2138,
                     2161, 1988, 1376, 553, 702, 684, 589, 431, 299, 203, 134, 54], dtype=np.float64)

# Survey vignetting factor (vignetted / unvignetted exposure), measured from the public
# eFEDS exposure maps (Brunner et al. 2022).
_VIG_KEV = np.array([0.3, 0.5, 1.0, 1.5, 2.0, 2.3, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0])
_VIG = np.array([0.51, 0.52, 0.54, 0.52, 0.49, 0.47, 0.40, 0.36, 0.32, 0.27, 0.24, 0.22, 0.19])


def effective_area_cm2(energy_keV):
    """On-axis effective area of the 7 TMs, cm^2 (linear interpolation of the table).

    Zero outside 0.2-10 keV. Use it with the *vignetted* exposure; see
    :func:`relative_vignetting` for its energy dependence.
    """
    e = np.asarray(energy_keV, dtype=np.float64)
    area = np.interp(e, _ARF_KEV, _ARF_CM2)
    return np.where((e >= ENERGY_RANGE_KEV[0]) & (e <= ENERGY_RANGE_KEV[1]), area, 0.0)


def vignetting_factor(energy_keV):
    """Survey-averaged vignetted/unvignetted exposure ratio (0.19-0.54)."""
    return np.interp(np.asarray(energy_keV, dtype=np.float64), _VIG_KEV, _VIG)


#: Survey vignetting at 1 keV, the energy exposures are quoted at: vignetted over
#: unvignetted exposure, 0.54, measured from the public eFEDS exposure maps
#: (Brunner et al. 2022, A&A 661, A1).
VIGNETTING_1KEV = float(vignetting_factor(1.0))


def relative_vignetting(energy_keV, reference_keV=1.0):
    """Vignetting factor relative to the reference energy of the exposure.

    A vignetted exposure quoted at ``reference_keV`` (the expmap of the band
    holding 1 keV, say) becomes ``exposure * relative_vignetting(E)`` at
    energy E.
    """
    return vignetting_factor(energy_keV) / vignetting_factor(reference_keV)


def king_enclosed_fraction(r_arcsec, rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA):
    """Fraction of a King profile (1 + (r/rc)^2)^-alpha within radius r (alpha > 1)."""
    if alpha <= 1:
        raise ValueError(f"King slope alpha must exceed 1, got {alpha!r}")
    x = (np.asarray(r_arcsec, dtype=np.float64) / rc_arcsec) ** 2
    return 1.0 - (1.0 + x) ** (1.0 - alpha)


def king_radius_for_fraction(fraction, rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA):
    """Radius (arcsec) enclosing ``fraction`` of a King profile.

    With the survey-averaged PSF the half-energy diameter is
    2 * king_radius_for_fraction(0.5) = 29.9 arcsec (survey HEW ~ 30", Predehl et al. 2021).
    """
    f = np.asarray(fraction, dtype=np.float64)
    if np.any((f < 0) | (f >= 1)):
        raise ValueError("fraction must be in [0, 1)")
    return rc_arcsec * np.sqrt((1.0 - f) ** (1.0 / (1.0 - alpha)) - 1.0)


def king_half_energy_radius(rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA):
    """Radius (arcsec) holding half of a King profile's photons: rc sqrt(2^(1/(alpha-1)) - 1)."""
    return np.asarray(rc_arcsec) * np.sqrt(2.0 ** (1.0 / (alpha - 1.0)) - 1.0)


def sample_gaussian_psf_offsets(rng, n, rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA):
    """Draw ``n`` 2-D offsets (arcsec) from a circular Gaussian PSF with the King profile's half-energy radius.

    Another *form* of PSF with the same half-energy width and no extended wings (the core-dominated
    shape of a Gaussian-core model): for tests and mocks with physics the survey King PSF does not
    describe. ``sigma = r_half / sqrt(2 ln 2)``.
    """
    sigma = king_half_energy_radius(rc_arcsec, alpha) / np.sqrt(2.0 * np.log(2.0))
    d = rng.standard_normal((2, n))
    return sigma * d[0], sigma * d[1]


#: Gaussian core plus exponential wings, the third PSF form: the share of the wing component and its
#: e-folding radius in units of the core's Gaussian sigma. The form follows the ROSAT PSPC PSF model of
#: Boese 2000 (A&AS 141, 507: a Gaussian core, an exponential and a power-law wing, the power law left
#: out here); the two numbers are [uncertain], chosen so that the wings lie between the King form's
#: (power-law wings) and the Gaussian's (none).
GAUSS_EXP_WING_FRACTION = 0.3
GAUSS_EXP_WING_SCALE = 2.0


def gauss_exp_enclosed_fraction(r, sigma):
    """Fraction of a Gaussian-core plus exponential-wing PSF within radius ``r`` (same units as ``sigma``).

    ``(1 - w) (1 - exp(-r^2 / 2 sigma^2)) + w (1 - (1 + r/s) exp(-r/s))`` with the wing share
    ``w`` = :data:`GAUSS_EXP_WING_FRACTION` and ``s`` = :data:`GAUSS_EXP_WING_SCALE` x sigma (a surface
    brightness ~ exp(-r/s) holds 1 - (1 + r/s) exp(-r/s) within r).
    """
    x = np.asarray(r, dtype=np.float64) / sigma
    w, s = GAUSS_EXP_WING_FRACTION, GAUSS_EXP_WING_SCALE
    return (1.0 - w) * -np.expm1(-0.5 * x * x) + w * (1.0 - (1.0 + x / s) * np.exp(-x / s))


@lru_cache(maxsize=1)
def _gauss_exp_half_energy_over_sigma():
    """The Gaussian-plus-exponential PSF's half-energy radius in units of its core sigma."""
    from scipy.optimize import brentq

    return brentq(lambda x: gauss_exp_enclosed_fraction(x, 1.0) - 0.5, 0.1, 20.0, xtol=1e-12)


def sample_gauss_exp_psf_offsets(rng, n, rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA):
    """Draw ``n`` 2-D offsets (arcsec) from a Gaussian-core, exponential-wing PSF with the King half-energy radius.

    A third *form* of PSF (:func:`gauss_exp_enclosed_fraction`), between the King form's power-law wings
    and the Gaussian's none, with the same half-energy width as the King profile of ``rc_arcsec`` and
    ``alpha``. Each photon takes the wing with probability :data:`GAUSS_EXP_WING_FRACTION`; a wing
    radius is Gamma(2)-distributed (the radial density of a surface brightness ~ exp(-r/s) is
    ~ r exp(-r/s)), a core radius Rayleigh.
    """
    sigma = king_half_energy_radius(rc_arcsec, alpha) / _gauss_exp_half_energy_over_sigma()
    wing = rng.random(n) < GAUSS_EXP_WING_FRACTION
    r = np.where(wing, rng.gamma(2.0, GAUSS_EXP_WING_SCALE, n), np.sqrt(-2.0 * np.log1p(-rng.random(n)))) * sigma
    phi = rng.random(n) * (2.0 * np.pi)
    return r * np.cos(phi), r * np.sin(phi)


def sample_king_offsets(rng, n, rc_arcsec=PSF_CORE_ARCSEC, alpha=PSF_ALPHA, r_max_arcsec=None):
    """Draw ``n`` 2-D offsets (arcsec) from a King profile by inverting its CDF.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    rc_arcsec, alpha : float
        Core radius (arcsec) and slope; ``rc_arcsec`` may be an array of
        length ``n`` (e.g. a PSF widened per photon).
    r_max_arcsec : float, default=None
        Truncation radius; the CDF is renormalised within it.

    Returns
    -------
    dx, dy : numpy.ndarray of float64
    """
    fmax = 1.0 if r_max_arcsec is None else king_enclosed_fraction(r_max_arcsec, rc_arcsec, alpha)
    u = rng.random(n) * fmax
    u = np.minimum(u, np.nextafter(1.0, 0.0))
    r = np.asarray(rc_arcsec) * np.sqrt((1.0 - u) ** (1.0 / (1.0 - alpha)) - 1.0)
    phi = rng.random(n) * (2.0 * np.pi)
    return r * np.cos(phi), r * np.sin(phi)


def energy_grid_keV(lo=ENERGY_RANGE_KEV[0], hi=ENERGY_RANGE_KEV[1], step_keV=0.005):
    """Bin centres and widths of a uniform energy grid for folding spectra (keV)."""
    edges = np.arange(lo, hi + 0.5 * step_keV, step_keV)
    return 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
