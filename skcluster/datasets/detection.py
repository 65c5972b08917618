"""Detection proxies: DET_LIKE and EXT_LIKE from the simulated photons.

A maximum-likelihood fit of the photons around the cluster position, in the
spirit of the eSASS ``ermldet`` task (Brunner et al. 2022, A&A 661, A1),
simplified to circular models at a fixed position:

* data: photons in the detection band (0.2-2.3 keV) within
  ``det_radius_arcmin`` of the box centre, binned in 4-arcsec annuli;
* background: the background map, i.e. the expected diffuse background
  plus the mean of AGN below the point-source limit (known, not fitted);
* source models, convolved with the PSF: a beta model with beta = 2/3 (as
  eSASS extent fits use, Brunner et al. 2022) of core radius ``rc`` in
  [0, ``det_ext_max_arcsec``] (25 values), ``rc = 0`` being the point
  source. With the survey King PSF (alpha = 1.5) both are the same
  function: the projected beta = 2/3 model and the King profile with
  alpha = 1.5 are both the 2-D Cauchy profile (1 + R^2/g^2)^-3/2, which is
  closed under convolution with g adding (their 2-D Fourier transforms are
  exp(-2 pi k g)). So the PSF-convolved model is that profile with
  g = rc + rc_psf, and its enclosed fraction is 1 - (1 + R^2/g^2)^-1/2. (A
  ``psf_alpha`` other than 1.5 is treated as 1.5 here.)
* for each rc the source amplitude S >= 0 maximises the Poisson likelihood
  (Newton's method, which converges monotonically for this concave
  problem).

Likelihoods, with C the Cash statistic (-2 ln L up to a constant):

* DET_LIKE = -ln Q(nu/2, dC_det/2) with dC_det = C(background only) -
  C(best source), nu = 2 free parameters (amplitude, extent): for nu = 2
  this is dC_det / 2;
* EXT_LIKE = -ln Q(1/2, dC_ext/2) with dC_ext = C(point source) - C(best
  extended source), one extra parameter.

Q is the regularised upper incomplete gamma function: -ln Q is the
negative log probability of a likelihood gain at least this large by chance
(Wilks), the form of the eSASS likelihoods. The position is not fitted
(the mock knows it), other sources are not fitted simultaneously (the
simulation leaves the photons of AGN above the point-source limit out of
the fit instead, see :mod:`~skcluster.datasets.photons`). These are
proxies: they are calibrated against the eFEDS count distribution of
detected clusters, not against ermldet itself.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import log_ndtr

__all__ = ["DETECTION_BIN_ARCSEC", "extent_grid", "detection_likelihoods", "unmasked_fractions"]

#: Width of the radial bins of the detection fit, arcsec (one 4" image pixel).
DETECTION_BIN_ARCSEC = 4.0
_N_EXT = 24


def extent_grid(ext_max_arcsec):
    """Core radii of the extent fit, arcsec: 0 (point source) then log-spaced 2"..max."""
    return np.concatenate([[0.0], np.geomspace(2.0, ext_max_arcsec, _N_EXT)])


def _enclosed(r, g):
    return 1.0 - 1.0 / np.sqrt(1.0 + (r / g) ** 2)


@lru_cache(maxsize=16)
def _model_grid(radius_arcsec, psf_rc_arcsec, ext_max_arcsec):
    """Radial bin edges, annulus areas and model fractions (n_ext, n_bin), cached."""
    nbin = int(np.ceil(radius_arcsec / DETECTION_BIN_ARCSEC))
    edges = np.linspace(0.0, nbin * DETECTION_BIN_ARCSEC, nbin + 1)
    edges[-1] = radius_arcsec
    rc = extent_grid(ext_max_arcsec)
    g = rc[:, None] + psf_rc_arcsec
    f = np.diff(_enclosed(edges[None, :], g), axis=1)
    for a in (edges, rc, f):
        a.setflags(write=False)
    return edges, np.pi * np.diff(edges**2), rc, f, f.sum(axis=1)


def unmasked_fractions(x_arcsec, y_arcsec, mask_radius_arcsec, radius_arcsec, n_radii=4, n_angles=256):
    """Fraction of each radial bin of the detection fit outside the masks.

    Parameters
    ----------
    x_arcsec, y_arcsec, mask_radius_arcsec : array-like of shape (n_masks,)
        Centres (offsets from the source position) and radii of the masked
        discs.
    radius_arcsec : float
        Fit radius.
    n_radii, n_angles : int
        Quadrature points per bin (radii at the bin's area midpoints, angles
        uniform): the fraction is exact to ~1/n_angles.

    Returns
    -------
    ndarray of shape (n_bins,)
        The unmasked fraction of each :data:`DETECTION_BIN_ARCSEC` annulus
        (the ``unmasked`` argument of :func:`detection_likelihoods`).
    """
    nbin = int(np.ceil(radius_arcsec / DETECTION_BIN_ARCSEC))
    edges = np.linspace(0.0, nbin * DETECTION_BIN_ARCSEC, nbin + 1)
    edges[-1] = radius_arcsec
    cx = np.asarray(x_arcsec, dtype=np.float64).ravel()
    cy = np.asarray(y_arcsec, dtype=np.float64).ravel()
    rm = np.asarray(mask_radius_arcsec, dtype=np.float64).ravel()
    if cx.size == 0:
        return np.ones(nbin)
    t = (np.arange(n_radii) + 0.5) / n_radii
    r = np.sqrt(edges[:-1, None] ** 2 + t[None, :] * (edges[1:, None] ** 2 - edges[:-1, None] ** 2))
    phi = (np.arange(n_angles) + 0.5) * (2.0 * np.pi / n_angles)
    px = (r[:, :, None] * np.cos(phi)).ravel()
    py = (r[:, :, None] * np.sin(phi)).ravel()
    inside = np.zeros(px.size, bool)
    for x0, y0, r0 in zip(cx, cy, rm):
        if np.hypot(x0, y0) - r0 < radius_arcsec:
            inside |= (px - x0) ** 2 + (py - y0) ** 2 < r0 * r0
    return 1.0 - inside.reshape(nbin, -1).mean(axis=1)


def detection_likelihoods(r_arcsec, bkg_per_arcsec2, radius_arcsec, psf_rc_arcsec, ext_max_arcsec,
                          like_scale=1.0, unmasked=None):
    """DET_LIKE, EXT_LIKE, best extent and source counts of one source.

    Parameters
    ----------
    r_arcsec : ndarray of shape (n_photons,)
        Distances of the detection-band photons from the source position.
    bkg_per_arcsec2 : float
        Expected background counts per arcsec^2 (detection band).
    radius_arcsec : float
        Fit radius; photons beyond it are ignored.
    psf_rc_arcsec : float
        King core radius of the PSF.
    ext_max_arcsec : float
        Largest extent (core radius) tried.
    like_scale : float, default=1.0
        Multiplies both likelihood gains dC before they become DET_LIKE
        and EXT_LIKE (1: the ideal fixed-position fit).
    unmasked : ndarray of shape (n_bins,), default=None
        Fraction of each radial bin outside the point-source masks
        (:func:`unmasked_fractions`); the photons within the masks must
        already be left out of ``r_arcsec``. Background and source model of
        each bin are scaled by it (the models are circular, so this is
        exact up to the quadrature). ``None``: nothing masked.

    Returns
    -------
    dict
        ``DET_LIKE``, ``EXT_LIKE``, ``EXT_arcsec`` (best core radius; 0 for
        a point source), ``ML_CTS`` (fitted source counts of the whole
        model, the analogue of ermldet's ML_CTS), ``ML_CTS_fit`` (the
        fitted source counts within the fit radius).
    """
    edges, area, rc, f, ftot = _model_grid(float(radius_arcsec), float(psf_rc_arcsec),
                                            float(ext_max_arcsec))
    r = np.asarray(r_arcsec, dtype=np.float64)
    r = r[r < radius_arcsec]
    n = np.bincount(np.minimum((r / DETECTION_BIN_ARCSEC).astype(np.intp), area.size - 1),
                    minlength=area.size).astype(np.float64)
    b = bkg_per_arcsec2 * area
    ftot_full = ftot
    if unmasked is not None:
        u = np.asarray(unmasked, dtype=np.float64)
        if u.shape != area.shape:
            raise ValueError(f"unmasked must have one value per radial bin ({area.size}), got shape {u.shape}")
        b, f = b * u, f * u[None, :]
        ftot = f.sum(axis=1)
        n = np.where(u > 0, n, 0.0)
    s = np.zeros(rc.size)
    nz = n > 0
    nn, fn, bn = n[nz], f[:, nz], b[nz]
    grad0 = (nn * fn / bn).sum(axis=1) - ftot
    active = grad0 > 0
    if np.any(active):
        fa, sa, fta = fn[active], s[active], ftot[active]
        for _ in range(100):
            m = bn + sa[:, None] * fa
            w = nn * fa / m
            grad = w.sum(axis=1) - fta
            hess = (w * fa / m).sum(axis=1)
            step = grad / np.maximum(hess, 1e-300)
            sa = sa + step
            if np.all(np.abs(step) <= 1e-7 * np.maximum(sa, 1.0)):
                break
        s[active] = sa
    logl0 = np.sum(nn * np.log(bn)) - b.sum()
    logl = np.sum(nn * np.log(bn + s[:, None] * fn), axis=1) - b.sum() - s * ftot
    best = int(np.argmax(logl))
    dc_det = like_scale * max(2.0 * (logl[best] - logl0), 0.0)
    dc_ext = like_scale * max(2.0 * (logl[best] - logl[0]), 0.0)
    # -ln Q(1/2, x/2) = -ln erfc(sqrt(x/2)) = -ln(2 Phi(-sqrt(x)))
    ext_like = -(np.log(2.0) + log_ndtr(-np.sqrt(dc_ext)))
    return {
        "DET_LIKE": 0.5 * dc_det,
        "EXT_LIKE": float(max(ext_like, 0.0)),
        "EXT_arcsec": float(rc[best]),
        "ML_CTS": float(s[best]),
        "ML_CTS_fit": float(s[best] * ftot_full[best]),
    }
