"""Survey exposure and background level at the positions of real eROSITA clusters: measured distributions.

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

And the quantiles of the background level at the same clusters relative to
its median, for drawing each cluster's background
(``SurveyParameters.background_table``):

* ``efeds_clusters``: ``ML_BKG / ML_EXP`` of the 542 eFEDS clusters (the
  eSASS background map at the cluster, 0.2-2.3 keV counts / arcmin^2, over
  the vignetted exposure: the level per second, free of the exposure's own
  spread; Brunner et al. 2022; Liu et al. 2022): 5 / 95% at 0.895 / 1.496
  of the median of 6.0 counts / arcmin^2 per ks (ML_BKG alone, which holds
  the exposure's spread too, has 0.672 / 1.911), a tail to 8.7 (16 clusters
  above 2.4, at ordinary exposures, all inside the 90% area). Nearly
  independent of the exposure (Spearman rank correlation -0.10 over the
  542), so the mock draws the two independently. The eRASS1 primary catalogue (Bulbul et al. 2024) carries
  no background column, so it has no table here.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["BACKGROUND_QUANTILES_REL", "EXPOSURE_QUANTILES_S", "QUANTILE_LEVELS", "background_sampler",
           "exposure_sampler"]

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
#: Background level per vignetted second at those levels over its median, per catalogue (see the module
#: docstring); the median itself is the mock's background model's.
BACKGROUND_QUANTILES_REL = {
    "efeds_clusters": np.array([
        0.8159, 0.8770, 0.8951, 0.9047, 0.9114, 0.9175, 0.9245, 0.9317,
        0.9379, 0.9430, 0.9501, 0.9551, 0.9591, 0.9655, 0.9694, 0.9758,
        0.9798, 0.9837, 0.9882, 0.9947, 1.0000, 1.0056, 1.0097, 1.0168,
        1.0271, 1.0370, 1.0426, 1.0493, 1.0575, 1.0652, 1.0782, 1.0853,
        1.1033, 1.1161, 1.1287, 1.1583, 1.1906, 1.2611, 1.4962, 2.4028,
        8.7096]),
}
for _q in (*EXPOSURE_QUANTILES_S.values(), *BACKGROUND_QUANTILES_REL.values()):
    _q.setflags(write=False)


def _table_sampler(quantiles, selection_slope, n_grid):
    """Inverse CDF (log-linear between the quantiles), the density optionally weighted by value^-slope."""
    logq = np.log(quantiles)
    grid = np.linspace(logq[0], logq[-1], n_grid)
    cdf = np.interp(grid, logq, QUANTILE_LEVELS)  # the catalogue's CDF in log value
    if selection_slope:
        mid = 0.5 * (grid[1:] + grid[:-1])
        w = np.diff(cdf) * np.exp(-selection_slope * mid)
        cdf = np.concatenate([[0.0], np.cumsum(w)])
        cdf /= cdf[-1]

    def draw(u):
        return np.exp(np.interp(np.asarray(u, dtype=np.float64), cdf, grid))

    return draw


def _check_table(table, tables, what):
    if table not in tables:
        raise ValueError(f"unknown {what} table {table!r}; tables are {sorted(tables)}")


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
    _check_table(table, EXPOSURE_QUANTILES_S, "exposure")
    return _table_sampler(EXPOSURE_QUANTILES_S[table], selection_slope, n_grid)


@lru_cache(maxsize=4)
def background_sampler(table, n_grid=2001):
    """Inverse CDF of a catalogue's background level relative to its median.

    Parameters
    ----------
    table : str
        A key of :data:`BACKGROUND_QUANTILES_REL`.
    n_grid : int, default=2001
        Points of the tabulated inverse CDF (log-linear between the
        quantiles of the table).

    Returns
    -------
    callable
        ``f(u)`` mapping uniform numbers in [0, 1) to background levels
        over the median (median 1).
    """
    _check_table(table, BACKGROUND_QUANTILES_REL, "background")
    return _table_sampler(BACKGROUND_QUANTILES_REL[table], 0.0, n_grid)
