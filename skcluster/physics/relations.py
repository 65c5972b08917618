"""Published cluster scaling relations and structure: L_X-M, M-T, core radius.

The one home of these numbers; the mock survey
(:mod:`skcluster.datasets.parameters`) and the scalar-observable baselines
(:mod:`skcluster.baselines`) import them from here.

* L_X(0.5-2 keV, rest frame, < r500)-M500c relation of the eFEDS clusters,
  fitted to the luminosities of Liu et al. 2022 (A&A 661, A2) against the
  weak-lensing-calibrated masses of Chiu et al. 2022 (A&A 661, A11),
  measured from the public eFEDS products::

      log10 L_X / (erg/s) = 43.395 + 1.58 log10(M500 / 2e14 Msun) + 2.00 log10 E(z)

  (self-similar E(z) exponent; Chiu et al. 2022 use the pivot 1.4e14 / h
  Msun, here 2e14 Msun with h = 0.7 absorbed).
* The L_X-M500-z relation of Chiu et al. 2022 (A&A 661, A11), fitted with
  the eFEDS selection modelled (pivot 1.4e14 / h Msun = 2e14 Msun with
  h = 0.7, z_piv = 0.35)::

      ln L_X / (erg/s) = ln 3.36e43 + [1.44 - 0.07 ln((1+z)/(1+z_piv))] ln(M500 / M_piv)
                         + 2 ln(E(z) / E(z_piv)) - 0.51 ln((1+z)/(1+z_piv))

  :func:`chiu22_lx_parameters` turns it into the mock's form (the slope's
  small drift with z, 1.44 +- 0.02 over 0.1 < z < 0.8, is left out).
* M500-T relation of Arnaud, Pointecouteau & Pratt 2005 (A&A 441, 893)::

      E(z) M500 = 3.84e14 Msun (T / 5 keV)^1.71

  i.e. T = 5 keV (E(z) M500 / 3.84e14 Msun)^(1/1.71).
* The median core radius of the eFEDS clusters' beta-model fits,
  rc = 0.185 r500 (16-84%: 0.10-0.29), measured from the public eFEDS
  products (Liu et al. 2022; the eSASS extent model has beta = 2/3,
  Brunner et al. 2022, A&A 661, A1).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MASS_PIVOT_MSUN", "LM_RELATION_EFEDS", "LM_RELATION_CHIU22", "chiu22_lx_parameters",
           "MT_RELATION_ARNAUD05", "MT_PIVOT_KEV", "RC_R500_EFEDS", "lx_of_mass", "kT_of_mass"]

#: Pivot mass of the L_X-M relation, Msun (h = 0.7 absorbed).
MASS_PIVOT_MSUN = 2e14
#: eFEDS L_X(0.5-2 keV, < r500)-M relation (Liu et al. 2022 luminosities,
#: Chiu et al. 2022 masses; measured from the public eFEDS products):
#: (log10 L/(erg/s) at :data:`MASS_PIVOT_MSUN` and z = 0, mass slope, E(z) exponent).
LM_RELATION_EFEDS = (43.395, 1.58, 2.00)
#: Chiu et al. 2022 (A&A 661, A11) L_X(0.5-2 keV, < r500)-M500-z relation with the eFEDS selection modelled:
#: (L_X at the pivot mass and z_piv in erg/s, mass slope, E(z) exponent, (1+z) exponent, z_piv); pivot mass
#: :data:`MASS_PIVOT_MSUN` (1.4e14 / h Msun with h = 0.7).
LM_RELATION_CHIU22 = (3.36e43, 1.44, 2.0, -0.51, 0.35)
#: Arnaud et al. 2005 M-T relation E(z) M500 = 3.84e14 Msun (T / 5 keV)^1.71:
#: (M500 at 5 keV in Msun, slope of M on T).
MT_RELATION_ARNAUD05 = (3.84e14, 1.71)
#: Temperature at which :data:`MT_RELATION_ARNAUD05` is normalised, keV.
MT_PIVOT_KEV = 5.0
#: Median beta-model core radius of the eFEDS clusters in units of r500
#: (Liu et al. 2022; measured from the public eFEDS products).
RC_R500_EFEDS = 0.185


def lx_of_mass(m500_msun, ez, relation=LM_RELATION_EFEDS, pivot_msun=MASS_PIVOT_MSUN):
    """Mean L_X(0.5-2 keV, < r500), erg/s, of an L_X-M relation (default eFEDS).

    Parameters
    ----------
    m500_msun : array-like
    ez : array-like
        E(z) = H(z) / H0.
    relation : (float, float, float)
        (log10 L at the pivot, mass slope, E(z) exponent).
    """
    a, b, c = map(float, relation)
    return 10.0 ** (a + b * np.log10(np.asarray(m500_msun, dtype=np.float64) / pivot_msun)
                    + c * np.log10(np.asarray(ez, dtype=np.float64)))


def kT_of_mass(m500_msun, ez, relation=MT_RELATION_ARNAUD05):
    """Temperature, keV, of an M-T relation E(z) M = M5 (T / 5 keV)^slope (default Arnaud+05)."""
    m5, slope = map(float, relation)
    return MT_PIVOT_KEV * (np.asarray(ez) * np.asarray(m500_msun) / m5) ** (1.0 / slope)


def chiu22_lx_parameters(H0, Om0):
    """:data:`LM_RELATION_CHIU22` as the mock's L_X-M parameters for a flat cosmology (H0 in km/s/Mpc).

    Returns the dict of ``SurveyParameters`` overrides ``lx_log10_norm`` (log10 erg/s at the pivot mass and
    z = 0), ``lx_slope``, ``lx_ez_slope`` and ``lx_1pz_slope`` that give Chiu et al.'s mean relation.
    """
    from .cosmology import efunc, get_cosmology

    l_piv, slope, ez_slope, opz_slope, z_piv = LM_RELATION_CHIU22
    ez_piv = float(efunc(z_piv, get_cosmology(H0, Om0)))
    norm = np.log10(l_piv) - ez_slope * np.log10(ez_piv) - opz_slope * np.log10(1.0 + z_piv)
    return {"lx_log10_norm": float(norm), "lx_slope": slope, "lx_ez_slope": ez_slope, "lx_1pz_slope": opz_slope}
