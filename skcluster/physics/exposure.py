"""Survey exposure at the positions of real eROSITA clusters: measured distributions.

Quantiles (0, 2.5, ..., 100%) of the vignetted exposure (s) at the detected
clusters of two real catalogues, the mock's data for drawing each cluster's
depth (``SurveyParameters.exposure_table``):

* ``efeds_clusters``: ``ML_EXP`` of the 542 clusters of the eFEDS extended
  source catalogue (Brunner et al. 2022, A&A 661, A1; Liu et al. 2022, A&A
  661, A2): 5 / 50 / 95% at 785 / 1180 / 1941 s, sharply peaked at the
  field's nominal depth with tails to the field edges.
* ``erass1_clusters``: ``Exp`` of the 12,247 clusters of the eRASS1 primary
  catalogue (Bulbul et al. 2024, A&A 685, A106): 78 / 164 / 820 s, from the
  ecliptic equator (~150 s unvignetted, Merloni et al. 2024, A&A 682, A34)
  to the deep region around the south ecliptic pole (up to 3.2 ks).

Both are exposures where clusters were *detected*, which over-weights deep
sky: a survey detects more clusters per deg^2 where it is deeper. The sky's
own distribution is the catalogue's divided by the detected density's
exposure dependence; :func:`exposure_sampler` does this with a power law
exposure^-k whose slope k is measured on the mock itself
(``benchmarks/validate_sky.py``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["EXPOSURE_QUANTILES_S", "QUANTILE_LEVELS", "exposure_sampler"]

#: Levels of the tabulated quantiles, 0-1 in steps of 0.025.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 41)

#: Vignetted exposure (s) at those levels, per catalogue (see the module docstring).
EXPOSURE_QUANTILES_S = {
    "efeds_clusters": np.array([
        182.8, 562.5, 784.7, 839.6, 887.7, 960.3, 1025.0, 1057.3,
        1079.1, 1096.5, 1113.4, 1132.7, 1141.5, 1154.0, 1164.7, 1171.1,
        1173.5, 1175.6, 1177.2, 1179.1, 1179.8, 1180.9, 1182.4, 1183.3,
        1184.5, 1185.2, 1187.0, 1188.6, 1191.9, 1196.0, 1197.9, 1207.2,
        1281.0, 1305.0, 1370.5, 1447.8, 1510.4, 1574.3, 1940.7, 2099.7,
        3225.0]),
    "erass1_clusters": np.array([
        61.7, 76.0, 78.2, 81.8, 85.3, 89.0, 93.4, 99.3,
        106.1, 112.3, 119.5, 125.8, 130.6, 135.1, 139.0, 143.1,
        146.8, 150.8, 155.3, 159.8, 163.6, 167.5, 172.9, 179.8,
        187.8, 198.1, 210.4, 223.8, 237.6, 254.1, 273.0, 298.0,
        330.2, 364.0, 408.9, 472.9, 551.2, 655.2, 819.8, 1102.4,
        3186.3]),
}
for _q in EXPOSURE_QUANTILES_S.values():
    _q.setflags(write=False)


@lru_cache(maxsize=16)
def exposure_sampler(table, selection_slope=0.0, n_grid=2001):
    """Inverse CDF of the sky's exposure distribution from a catalogue's quantiles.

    Parameters
    ----------
    table : str
        A key of :data:`EXPOSURE_QUANTILES_S`.
    selection_slope : float, default=0.0
        k of the detected density's dependence on exposure, n_det ~ t^k:
        the catalogue's density is weighted by t^-k to give the sky's.
        0 draws the catalogue's own distribution.
    n_grid : int, default=2001
        Points of the tabulated inverse CDF (log-linear between the
        quantiles of the table).

    Returns
    -------
    callable
        ``f(u)`` mapping uniform numbers in [0, 1) to exposures (s).
    """
    if table not in EXPOSURE_QUANTILES_S:
        raise ValueError(f"unknown exposure table {table!r}; tables are {sorted(EXPOSURE_QUANTILES_S)}")
    logq = np.log(EXPOSURE_QUANTILES_S[table])
    grid = np.linspace(logq[0], logq[-1], n_grid)
    cdf = np.interp(grid, logq, QUANTILE_LEVELS)  # the catalogue's CDF in log t
    if selection_slope:
        mid = 0.5 * (grid[1:] + grid[:-1])
        w = np.diff(cdf) * np.exp(-selection_slope * mid)
        cdf = np.concatenate([[0.0], np.cumsum(w)])
        cdf /= cdf[-1]

    def draw(u):
        return np.exp(np.interp(np.asarray(u, dtype=np.float64), cdf, grid))

    return draw
