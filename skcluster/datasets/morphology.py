"""Surface-brightness profiles of the intracluster medium, in projection.

Each cluster is the sum of two components with the same centre, axis ratio
and position angle:

* an *extended* component, a beta model with core radius ``rc`` (eFEDS
  rc/r500: median 0.185 [measured]; beta ~ 0.67 +- 0.1; Liu et al. 2022);
* a compact *core* component (core radius ~0.03 r500) carrying the
  cool-core emission; in cool cores it is cuspy.

Both use one projected family, a beta model with an optional central cusp::

    S(x) ~ x^-a (1 + x^p)^(-(6 beta - 3)/p - 1),   x = R / rc,  p = 2 - a,

whose luminosity within x is

    I(x) = 1 - (1 + x^p)^(-(6 beta - 3)/p)          (normalised to 1 at infinity).

For ``a = 0`` this is exactly the projected beta model
S ~ (1 + x^2)^(-3 beta + 1/2); for ``a > 0`` the centre rises as R^-a (a
projected Vikhlinin-type cusp: a 3-D emissivity n^2 ~ r^-alpha with
1 < alpha < 3 projects to R^(1-alpha); Vikhlinin et al. 2006, Ghirardini et
al. 2019) while the outskirts keep the beta-model slope R^(1 - 6 beta).
The family is chosen because I(x) and its inverse are closed-form, so
aperture luminosities are exact and photon radii are drawn exactly by
inverting I (no rejection sampling). ``beta > 1/2`` is required for finite
flux.

Ellipticity: the profile is a function of the elliptical radius
x_e^2 = (q x'^2 + y'^2 / q) / rc^2 (axis ratio q <= 1, area-preserving,
x' along the major axis), truncated at x_e = ``truncation_r500`` r500/rc.
Luminosities in *circular* apertures (L_X within r500, core-excised
0.15-1 r500) are the average over angle of I at the elliptical radius where
the circle crosses each direction (exact for any q; 16-point trapezoid rule,
error < 1e-4 for q >= 0.2).

Another form (``profile_form="vikhlinin"``): the extended component can
instead follow the emission measure of Vikhlinin et al. 2006 (ApJ 640, 691,
Eq. 3, its first term; their second term, a 3-D beta model of the core, is
the core component with ``cusp = 0``)::

    n_p n_e ~ (r/rc)^-alpha / (1 + r^2/rc^2)^(3 beta - alpha/2) / (1 + r^3/rs^3)^(epsilon/3)

with gamma = 3, as in all their fits: a cusp alpha inside rc, the beta
model's slope between rc and rs, and a steepening by epsilon beyond rs
(``epsilon < 5`` in their fits). Its projection has no closed form:
:func:`vikhlinin_enclosed_fraction` interpolates a table of I(x), computed
once per (alpha, epsilon) over beta and rs/rc (line-of-sight integrals in
r = R cosh t, cumulative integrals in ln R, normalised by the 3-D
luminosity with its power-law tails), and photon radii are drawn by
inverting the interpolated I of each cluster. With alpha = epsilon = 0 it
is the beta model, which the tests check to 1e-3. A constant emissivity
(soft-band bremsstrahlung depends little on T) turns n_p n_e into the
surface brightness, as for the beta model.

A third form (``profile_form="sersic"``): the extended component is a
Sersic profile S ~ exp(-b_n (R/R_e)^(1/n)), as fitted to the X-ray surface
brightness of clusters by Demarco et al. 2003 (A&A 407, 437) and
Andrade-Santos et al. 2012 (ApJ 746, 139) beside the beta model. It has no
core and falls off faster than any power law. Its half-light radius R_e is
the half-light radius of the truncated beta model with the cluster's rc
and beta (:func:`sersic_half_light_radius`), so the size the population
draws keeps its meaning and n sets the shape alone. Closed form:
I(x) = P(2n, b_n (x / x_e)^(1/n)) (the regularised lower incomplete gamma
function, b_n = P^-1(2n, 1/2)), inverted exactly with scipy's
``gammaincinv``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["enclosed_fraction", "radius_for_fraction", "aperture_fraction", "sample_offsets",
           "vikhlinin_enclosed_fraction", "vikhlinin_radius_for_fraction", "VIKHLININ_GAMMA",
           "sersic_enclosed_fraction", "sersic_radius_for_fraction", "sersic_half_light_radius"]

#: The mock draws beta in this range (scaling.draw_structure clips it; beta > 1/2 for finite flux;
#: beta ~ 0.67 +- 0.1), which the Vikhlinin table spans.
BETA_RANGE = (0.55, 1.0)

_N_ANGLES = 16
_PHI = (np.arange(_N_ANGLES) + 0.5) * (2.0 * np.pi / _N_ANGLES)
_COS2 = np.cos(_PHI) ** 2
_SIN2 = np.sin(_PHI) ** 2


def enclosed_fraction(x, cusp, beta):
    """I(x): fraction of an untruncated profile's luminosity within x = R/rc.

    Parameters
    ----------
    x : array-like
        Radius in units of the core radius (>= 0).
    cusp : array-like
        Inner slope a, 0 <= a < 2 (0: beta model).
    beta : array-like
        Outer slope parameter, > 1/2.
    """
    x = np.asarray(x, dtype=np.float64)
    p = 2.0 - np.asarray(cusp, dtype=np.float64)
    k = (6.0 * np.asarray(beta, dtype=np.float64) - 3.0) / p
    return -np.expm1(-k * np.log1p(np.maximum(x, 0.0) ** p))


def radius_for_fraction(f, cusp, beta):
    """Inverse of :func:`enclosed_fraction`: x such that I(x) = f (0 <= f < 1)."""
    f = np.asarray(f, dtype=np.float64)
    p = 2.0 - np.asarray(cusp, dtype=np.float64)
    k = (6.0 * np.asarray(beta, dtype=np.float64) - 3.0) / p
    # (1 + x^p) = (1 - f)^(-1/k)
    return np.expm1(-np.log1p(-f) / k) ** (1.0 / p)


def sersic_enclosed_fraction(x, n, x_half):
    """I(x): fraction of an untruncated Sersic profile's luminosity within x (any radius unit).

    Parameters
    ----------
    x : array-like
        Radius (>= 0).
    n : float or array-like
        Sersic index (> 0; 1: exponential, 4: de Vaucouleurs).
    x_half : array-like
        Half-light radius R_e, in the unit of ``x``.
    """
    from scipy.special import gammainc, gammaincinv

    a = 2.0 * np.asarray(n, dtype=np.float64)
    b = gammaincinv(a, 0.5)
    u = np.maximum(np.asarray(x, dtype=np.float64), 0.0) / np.asarray(x_half, dtype=np.float64)
    return gammainc(a, b * u ** (1.0 / np.asarray(n, dtype=np.float64)))


def sersic_radius_for_fraction(f, n, x_half):
    """Inverse of :func:`sersic_enclosed_fraction`: x with I(x) = f (0 <= f < 1)."""
    from scipy.special import gammaincinv

    a = 2.0 * np.asarray(n, dtype=np.float64)
    return np.asarray(x_half, dtype=np.float64) * (gammaincinv(a, f) / gammaincinv(a, 0.5)) ** np.asarray(n)


def sersic_half_light_radius(beta, x_trunc):
    """x_e = R_e / rc of the Sersic form: the half-light radius of the beta model (rc, beta) truncated at x_trunc."""
    return radius_for_fraction(0.5 * enclosed_fraction(x_trunc, 0.0, beta), 0.0, beta)


def _enclosed(x, cusp, beta, vikhlinin, sersic=None):
    """I(x) of the closed-form family, of the Vikhlinin form (``vikhlinin``: ``(rs_over_rc, epsilon)``) or of
    the Sersic form (``sersic``: ``(x_half, n)``)."""
    if sersic is not None:
        return sersic_enclosed_fraction(x, sersic[1], sersic[0])
    if vikhlinin is None:
        return enclosed_fraction(x, cusp, beta)
    rs_over_rc, epsilon = vikhlinin
    return vikhlinin_enclosed_fraction(x, cusp, beta, rs_over_rc, epsilon)


def aperture_fraction(r_over_rc, cusp, beta, axis_ratio, x_trunc, vikhlinin=None, sersic_n=None):
    """Fraction of a truncated elliptical profile's luminosity within a circle.

    Parameters
    ----------
    r_over_rc : array-like of shape (n,) or (n, k)
        Aperture radius / core radius (a trailing axis gives several
        apertures per cluster).
    cusp, beta, axis_ratio, x_trunc : array-like of shape (n,)
        Profile parameters; ``x_trunc`` is the truncation (elliptical)
        radius / core radius.
    vikhlinin : tuple (rs_over_rc, epsilon), default=None
        The Vikhlinin et al. (2006) form instead of the closed-form family:
        ``rs_over_rc`` (array-like of shape (n,)) the steepening radius /
        core radius, ``epsilon`` (float) the steepening; ``cusp`` is then
        the 3-D cusp alpha.
    sersic_n : float, default=None
        The Sersic form of index ``sersic_n`` instead (``cusp`` ignored; its
        half-light radius :func:`sersic_half_light_radius` of ``beta`` and
        ``x_trunc``).

    Returns
    -------
    ndarray, the shape of ``r_over_rc``
    """
    r = np.asarray(r_over_rc, dtype=np.float64)
    extra = r.ndim - 1
    shape = lambda a: np.asarray(a, dtype=np.float64).reshape((-1,) + (1,) * (extra + 1))  # noqa: E731
    q = shape(axis_ratio)
    # circle of radius r crosses direction phi (in the scaled frame) at
    # elliptical radius r / sqrt(cos^2/q + q sin^2)
    rho = r[..., None] / np.sqrt(_COS2 / q + q * _SIN2)
    c, b, xt = shape(cusp), shape(beta), shape(x_trunc)
    if vikhlinin is not None:
        vikhlinin = (shape(vikhlinin[0]), vikhlinin[1])
    sersic = None if sersic_n is None else (sersic_half_light_radius(b, xt), float(sersic_n))
    i_t = _enclosed(xt, c, b, vikhlinin, sersic)
    frac = np.minimum(_enclosed(rho, c, b, vikhlinin, sersic), i_t) / i_t
    return frac.mean(axis=-1)


def sample_offsets(rng, n, rc_arcsec, cusp, beta, axis_ratio, angle_rad, x_trunc, vikhlinin=None, sersic_n=None):
    """Draw ``n`` photon positions (arcsec) from one truncated elliptical profile.

    Radii are drawn by inverting the enclosed fraction within the
    truncation, position angles uniformly; the circle is then stretched to
    the ellipse (x' / sqrt(q), y' sqrt(q), area-preserving) and rotated by
    ``angle_rad`` (from the x axis toward y). ``vikhlinin``, ``sersic_n``: as in
    :func:`aperture_fraction` (scalars: one cluster).

    Returns
    -------
    dx, dy : ndarray of float64, shape (n,)
    """
    sersic = None if sersic_n is None else (sersic_half_light_radius(beta, x_trunc), float(sersic_n))
    i_t = _enclosed(x_trunc, cusp, beta, vikhlinin, sersic)
    f = rng.random(n) * i_t
    if sersic is not None:
        x = sersic_radius_for_fraction(f, sersic[1], sersic[0]) * rc_arcsec
    elif vikhlinin is None:
        x = radius_for_fraction(f, cusp, beta) * rc_arcsec
    else:
        x = vikhlinin_radius_for_fraction(f, cusp, beta, *vikhlinin) * rc_arcsec
    phi = rng.random(n) * (2.0 * np.pi)
    xp = x * np.cos(phi) / np.sqrt(axis_ratio)
    yp = x * np.sin(phi) * np.sqrt(axis_ratio)
    ca, sa = np.cos(angle_rad), np.sin(angle_rad)
    return ca * xp - sa * yp, sa * xp + ca * yp


# -- the Vikhlinin et al. (2006) form ----------------------------------------------
#: Steepening exponent gamma of the Vikhlinin et al. (2006, ApJ 640, 691, Eq. 3)
#: density model: fixed to 3 in all their fits.
VIKHLININ_GAMMA = 3.0

# Table of I(x): x = R/rc on a ln grid (dln x ~ 0.047; below x = 1e-3 the
# profile's own power law, I ~ x^min(2, 3 - alpha)); rs/rc on a ln grid
# (clamped to its ends: a steepening inside 0.01 rc or beyond 1e5 rc);
# beta over the range the mock draws (BETA_RANGE). The
# line-of-sight integrals run to r = 1e8 rc in 128 steps of t.
_V_LNX = np.linspace(np.log(1e-3), np.log(1e4), 346)
_V_LNS = np.linspace(np.log(1e-2), np.log(1e5), 81)
_V_NBETA = 19
_V_NT = 128
_V_RMAX = 1e8
_V_LNR3 = np.linspace(np.log(1e-8), np.log(_V_RMAX), 1201)  # grid of the 3-D luminosity integral


def _check_vikhlinin(alpha, epsilon):
    if not (0.0 <= alpha < 3.0):
        raise ValueError(f"Vikhlinin cusp alpha must be in [0, 3) for a finite projection, got {alpha!r}")
    if not (0.0 <= epsilon <= 10.0):
        raise ValueError(f"Vikhlinin steepening epsilon must be in [0, 10], got {epsilon!r}")


@lru_cache(maxsize=8)
def _vikhlinin_table(alpha, epsilon):
    """Interpolator of J(beta, ln(rs/rc), ln x) = -ln(1 - I) / (6 beta + epsilon - 3) for one (alpha, epsilon)."""
    from scipy.interpolate import RegularGridInterpolator

    _check_vikhlinin(alpha, epsilon)
    betas = np.linspace(*BETA_RANGE, _V_NBETA)
    x = np.exp(_V_LNX)
    s = np.exp(_V_LNS)[:, None, None]
    # S(R) = 2 R int_0^inf e(R cosh t) cosh t dt (l = R sinh t along the line of sight)
    t_max = np.arccosh(_V_RMAX / x)
    u = np.linspace(0.0, 1.0, _V_NT)
    t = t_max[:, None] * u
    w = np.full(_V_NT, 1.0)
    w[[0, -1]] = 0.5  # trapezoid
    r = x[:, None] * np.cosh(t)
    base = -alpha * np.log(r) + np.log(np.cosh(t) * w * (t_max[:, None] / (_V_NT - 1)))
    ln1p_r2 = np.log1p(r * r)
    steep = -(epsilon / VIKHLININ_GAMMA) * np.log1p((r[None] / s) ** VIKHLININ_GAMMA)
    r3 = np.exp(_V_LNR3)
    ln1p_r3 = np.log1p(r3 * r3)
    steep3 = -(epsilon / VIKHLININ_GAMMA) * np.log1p((r3[None] / s[:, :, 0]) ** VIKHLININ_GAMMA)
    dlnx, dlnr3 = _V_LNX[1] - _V_LNX[0], _V_LNR3[1] - _V_LNR3[0]
    a_in = max(alpha - 1.0, 0.0)  # S ~ R^-a_in at the centre
    table = np.empty((betas.size, s.shape[0], x.size))
    for i, b in enumerate(betas):
        k = 3.0 * b - 0.5 * alpha
        surf = 2.0 * x * np.exp(base - k * ln1p_r2 + steep).sum(axis=-1)  # (n_s, n_x)
        g = 2.0 * np.pi * x * x * surf  # dI/dln x
        cum = np.concatenate([np.zeros((g.shape[0], 1)), np.cumsum(0.5 * (g[:, 1:] + g[:, :-1]) * dlnx, axis=1)],
                             axis=1) + (g[:, :1] / (2.0 - a_in))
        # the whole luminosity, 4 pi int r^3 e dln r, with its inner and outer power-law tails
        e3 = 4.0 * np.pi * np.exp((3.0 - alpha) * _V_LNR3 - k * ln1p_r3 + steep3)
        total = (0.5 * (e3[:, 1:] + e3[:, :-1]).sum(axis=1) * dlnr3 + e3[:, 0] / (3.0 - alpha)
                 + e3[:, -1] / (6.0 * b + epsilon - 3.0))
        # tabulated as J = -ln(1 - I) / (6 beta + epsilon - 3), which is smooth in beta (for the beta model
        # J = ln(1 + x^2) / 2 whatever beta), so that interpolating it between the betas stays accurate
        outside = np.maximum(total[:, None] - cum, 1e-300)
        table[i] = (np.log(total)[:, None] - np.log(outside)) / (6.0 * b + epsilon - 3.0)
    return RegularGridInterpolator((betas, _V_LNS, _V_LNX), table)


def _vikhlinin_eval(alpha, epsilon, x, beta, rs_over_rc):
    """The interpolated I at x (any shape, broadcast with beta and rs_over_rc), for one alpha."""
    interp = _vikhlinin_table(alpha, epsilon)
    lo, hi = interp.grid[0][0], interp.grid[0][-1]
    if np.any((beta < lo - 1e-12) | (beta > hi + 1e-12)):
        raise ValueError(f"Vikhlinin profile: beta must be in [{lo}, {hi}], got {np.min(beta)}-{np.max(beta)}")
    if np.any(~(rs_over_rc > 0)):
        raise ValueError("Vikhlinin profile: rs_over_rc must be positive")
    with np.errstate(divide="ignore"):
        lnx = np.log(np.maximum(x, 0.0))
    pts = np.stack([np.clip(beta, lo, hi), np.clip(np.log(rs_over_rc), _V_LNS[0], _V_LNS[-1]),
                    np.clip(lnx, _V_LNX[0], _V_LNX[-1])], axis=-1)
    out = -np.expm1(-(6.0 * pts[..., 0] + epsilon - 3.0) * interp(pts))
    small = lnx < _V_LNX[0]
    if np.any(small):  # the central power law I ~ x^min(2, 3 - alpha)
        out = np.where(small, out * np.exp(min(2.0, 3.0 - alpha) * (np.minimum(lnx, _V_LNX[0]) - _V_LNX[0])), out)
    return out


def vikhlinin_enclosed_fraction(x, cusp, beta, rs_over_rc, epsilon):
    """I(x): fraction of the projected Vikhlinin et al. (2006) profile's luminosity within x = R/rc.

    Parameters
    ----------
    x : array-like
        Radius in units of the core radius (>= 0).
    cusp : array-like
        3-D cusp alpha, 0 <= alpha < 3 (few distinct values: one table each).
    beta : array-like
        Slope parameter, within :data:`BETA_RANGE` (0.55-1).
    rs_over_rc : array-like
        Steepening radius / core radius (> 0; the table spans 0.01-1e5).
    epsilon : float
        Steepening beyond rs, 0-10 (Vikhlinin et al. 2006 fit epsilon < 5).

    Returns
    -------
    ndarray of float64, the broadcast shape; 1 at infinity, up to the
    interpolation (~1e-3).
    """
    x, cusp, beta, s = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x, cusp, beta, rs_over_rc)))
    out = np.empty(x.shape)
    for a in np.unique(cusp):
        sel = cusp == a
        out[sel] = _vikhlinin_eval(float(a), float(epsilon), x[sel], beta[sel], s[sel])
    return out


def vikhlinin_radius_for_fraction(f, cusp, beta, rs_over_rc, epsilon):
    """Inverse of :func:`vikhlinin_enclosed_fraction` for one profile (scalar parameters): x with I(x) = f.

    Linear in ln x between the table's radii (as the interpolation of I
    is), the central power law below them; fractions beyond the table's
    last radius (1e4 rc) give that radius.
    """
    f = np.asarray(f, dtype=np.float64)
    alpha = float(cusp)
    curve = _vikhlinin_eval(alpha, float(epsilon), np.exp(_V_LNX), np.full(_V_LNX.size, float(beta)),
                            np.full(_V_LNX.size, float(rs_over_rc)))
    curve = np.maximum.accumulate(curve)  # non-decreasing for np.interp, also where I rounds to 1
    k = min(2.0, 3.0 - alpha)
    with np.errstate(divide="ignore"):
        inner = _V_LNX[0] + np.log(np.maximum(f, 0.0) / curve[0]) / k
    return np.exp(np.where(f < curve[0], inner, np.interp(f, curve, _V_LNX)))
