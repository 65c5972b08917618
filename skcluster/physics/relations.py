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

__all__ = ["MASS_PIVOT_MSUN", "LM_RELATION_EFEDS", "MT_RELATION_ARNAUD05", "MT_PIVOT_KEV", "RC_R500_EFEDS", "lx_of_mass", "kT_of_mass"]

#: Pivot mass of the L_X-M relation, Msun (h = 0.7 absorbed).
MASS_PIVOT_MSUN = 2e14
#: eFEDS L_X(0.5-2 keV, < r500)-M relation (Liu et al. 2022 luminosities,
#: Chiu et al. 2022 masses; measured from the public eFEDS products):
#: (log10 L/(erg/s) at :data:`MASS_PIVOT_MSUN` and z = 0, mass slope, E(z) exponent).
LM_RELATION_EFEDS = (43.395, 1.58, 2.00)
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
