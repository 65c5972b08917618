"""The mock against the real sky: catalogues and images, one command, each depth against its catalogue.

What it compares (real data from ``../shared/data`` of the source checkout,
or ``--data DIR``):

* **eFEDS depth** against the eFEDS extended-source catalogue (542 clusters
  in ~140 deg^2 with EXT_LIKE > 6 and DET_LIKE > 5; Brunner et al. 2022, A&A
  661, A1; Liu et al. 2022, A&A 661, A2): clusters per deg^2, median z and
  two-sample Kolmogorov-Smirnov tests (D and p) of z, ML_CTS, ML_RATE, EXT,
  EXT_LIKE, DET_LIKE, ML_BKG and ML_EXP. Like with like: the mock's
  ``ML_CTS`` comes from its own likelihood fit (the ermldet analogue),
  ``ML_RATE`` is ``ML_CTS`` over the vignetted exposure, ``ML_BKG`` the
  background map at the cluster times the exposure (counts / arcmin^2), and
  ``EXT`` is clipped at 60", the largest extent of the eSASS fit (the
  catalogue's maximum).
* **eRASS1 depth** against the eRASS1 primary catalogue (12,247 clusters in
  13,116 deg^2 with EXT_LIKE >= 3 and DET_LIKE >= 5; Bulbul et al. 2024, A&A
  685, A106): clusters per deg^2, median z, KS of z, CTS500 and Exp. The
  catalogue's ``CTS500`` is a fit of the ICM within R500; the mock's
  ``counts_r500`` counts the simulated ICM photons within r500 (no
  background or AGN): the closest like, not identical.
* **The count-rate-mass-redshift mapping** at eRASS1 depth: E[log10 M |
  log10 CR500, z] fitted on the mock (a cubic polynomial in log CR500 and
  log(1+z), least squares: the forward regression, a posterior mean under
  the mock's population) applied to the real ``CR500`` and ``zBest``,
  against the catalogue's ``M500`` (the weak-lensing-calibrated count-rate
  masses of Ghirardini et al. 2024, themselves a function of CR500 and z),
  per CR500 quartile and z bin, with bootstrap intervals of the median.
* **By redshift** (z < 0.3 and 0.3-0.6, each depth): the mock's clusters
  per deg^2 over the catalogue's in bins of counts, extent, EXT_LIKE, count
  rate, mass, luminosity and r500 on the sky: where a density excess lies.
* **The images**: the real eFEDS field of ``efeds_mbproj2d`` (34' x 34',
  seven bands, unvignetted exposure maps, point-source mask) against the
  mock's background model at the same exposure: the background rate per band
  (counts / s / arcmin^2, unvignetted; point sources masked, more than 5'
  from the field's two clusters) and the counts per 1' cell (median and
  5-95%) against Poisson draws of the model on the same cells; point sources
  per deg^2 above three fluxes in the eFEDS AGN catalogue (Liu T. et al.
  2022, A&A 661, A5; 0.5-2 keV, ~140 deg^2) against the mock's log N - log S
  (Lehmer et al. 2012); and the profile of the field's bright cluster
  (eFEDS J092121.2+031726) against mock clusters of similar ML_RATE and z.

Variants: ``v1`` is the current mock (the default presets); ``v2`` the
candidate of the next mock version (``make_survey(..., sky="v2")``, see
:data:`skcluster.datasets.SKY_VERSIONS`), each change from data: the
background measured on the real field
(``background_measurement="efeds_field"``), the exposure drawn from the
catalogue's own distribution with the selection's exposure^-0.92 undone
(``exposure_table``, ``exposure_selection_slope``; the slope measured by
``--selection-slope``), each cluster's background level drawn from the
eFEDS catalogue's ML_BKG / ML_EXP (``background_table``), the eFEDS AGN
source counts, the extent fit capped at 60" as eSASS's, and at eRASS1
depth the point-source limit scaling with each cluster's exposure. ``sky``
is the first candidate: v2 with the background level a split log-normal
through ML_BKG / ML_EXP's 5 / 95% points (0.895 / 1.50 of the median).

Usage::

    python benchmarks/validate_sky.py --field-only               # the image numbers only, seconds
    python benchmarks/validate_sky.py --area-efeds 420 --area-erass1 4000 --n-jobs 2
    python benchmarks/validate_sky.py --selection-slope           # detected density against exposure

Writes ``<out>/validate_sky.json``, ``validate_sky.md`` and PNG figures
(default out: benchmarks/results/sky).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.table import Table  # noqa: E402
from astropy.wcs import WCS  # noqa: E402
from scipy.stats import ks_2samp  # noqa: E402

from skcluster.datasets import make_survey  # noqa: E402
from skcluster.datasets.background import (  # noqa: E402
    AGN_LOGNLOGS,
    background_band_rates,
)
from skcluster.datasets.parameters import resolve_parameters  # noqa: E402
from skcluster.physics.cosmology import H0_KMS_MPC, OM0, get_cosmology, theta500_arcmin  # noqa: E402
from skcluster.physics.relations import LM_RELATION_EFEDS, chiu22_lx_parameters  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: eFEDS: 542 candidates in ~140 deg^2 (Liu et al. 2022); eRASS1 primary: 12,247 in 13,116 deg^2 (Bulbul+24).
EFEDS_AREA_DEG2 = 140.0
ERASS1_AREA_DEG2 = 13116.0
#: Field bands of efeds_mbproj2d (eV, as in the file names).
FIELD_BANDS_EV = ["0300_0600", "0600_1100", "1100_1600", "1600_2200", "2200_3500", "3500_5000", "5000_7000"]
FIELD_CLUSTERS = {"eFEDS J092121.2+031726": (140.33848, 3.29060, 0.3329),
                  "eFEDS J092022.0+030106": (140.09184, 3.01860, 0.4806)}
FIELD_PIXEL_ARCSEC = 4.0
#: z bins of the count-rate-mass comparison (the issue's 0.05-0.15-0.3-0.5-1.0).
Z_BINS = (0.05, 0.15, 0.3, 0.5, 1.0)

#: The eRASS1 primary catalogue's extent cut (EXT_LIKE >= 3, Bulbul et al. 2024): the comparison's, not the mock's.
ERASS1_PRIMARY_CUT = {"ext_like_min": 3.0}
#: ``v2``: the sky-calibrated mock version (:data:`skcluster.datasets.SKY_VERSIONS`), selected by name.
VARIANTS = {
    "v1": {"efeds": {}, "erass1": ERASS1_PRIMARY_CUT},
    "v2": {"efeds": {"sky": "v2"}, "erass1": {"sky": "v2", **ERASS1_PRIMARY_CUT}},
}
#: The first candidate, measured before v2: v2 with each cluster's background level a split log-normal
#: through the 5 / 95% points of the eFEDS catalogue's ML_BKG / ML_EXP (0.895 / 1.50 of the median) instead of
#: the catalogue's measured quantiles.
SPLIT_BACKGROUND = {"background_table": "none", "background_p05_rel": 0.895, "background_p95_rel": 1.50}
VARIANTS["sky"] = {k: {**v, **SPLIT_BACKGROUND} for k, v in VARIANTS["v2"].items()}
#: Exploratory, not a calibration: the sky variant with L_X-M evolving as (1+z)^1.5 beyond E(z)^2 (the
#: normalisation moved so that L_X at z = 0.35 is unchanged), to show which way the redshift trend of the
#: residuals moves; the exponent is not from a paper.
EVOLUTION_EXPLORATORY = {"lx_1pz_slope": 1.5, "lx_log10_norm": LM_RELATION_EFEDS[0] - 1.5 * np.log10(1.35)}
VARIANTS["sky_lx1pz"] = {k: {**v, **EVOLUTION_EXPLORATORY} for k, v in VARIANTS["sky"].items()}
#: Exploratory, not a calibration: the sky variant with groups fainter than the cluster relation extrapolated,
#: L_X-M steepening to a mass slope of 2.8 below 1e14 Msun (a form the literature reports for groups; the
#: numbers are not from a paper), to test whether the low-redshift excess is the group-scale relation's.
GROUPS_EXPLORATORY = {"lx_break_msun": 1e14, "lx_slope_below_break": 2.8}
VARIANTS["sky_groups"] = {k: {**v, **GROUPS_EXPLORATORY} for k, v in VARIANTS["sky"].items()}
#: v2 with the published eFEDS L_X-M-z relation fitted with the selection modelled (Chiu et al. 2022, A&A 661, A11:
#: slope 1.44, (1+z)^-0.51 beyond E(z)^2) instead of the naive eFEDS fit: whether a published relation moves the
#: low-redshift excess.
VARIANTS["v2_chiu22"] = {k: {**v, **chiu22_lx_parameters(H0_KMS_MPC, OM0)} for k, v in VARIANTS["v2"].items()}


# -- real data ---------------------------------------------------------------------------------------------

def read_catalogues(data):
    efeds = Table.read(data / "efeds_catalogs" / "efeds_clusters_ctp_v2.1.csv")
    erass1 = Table.read(data / "erass1_catalogs" / "erass1_clusters_primary.csv")
    agn = Table.read(data / "efeds_catalogs" / "efeds_agn_liu22.fits")
    return efeds, erass1, agn


def _f(a):
    return np.asarray(a, dtype=np.float64)


def _field_geometry(data):
    """The field's folder, its point-source mask (True: kept) and each field cluster's distance map (arcmin)."""
    d = data / "efeds_mbproj2d"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(fits.getheader(d / f"img_{FIELD_BANDS_EV[1]}.fits.gz"))
    mask = fits.getdata(d / "mask.fits.gz") > 0
    yy, xx = np.mgrid[:mask.shape[0], :mask.shape[1]]
    radii = {}
    for name, (ra, dec, _) in FIELD_CLUSTERS.items():
        x, y = wcs.all_world2pix(ra, dec, 0)
        radii[name] = np.hypot(xx - x, yy - y) * FIELD_PIXEL_ARCSEC / 60.0
    return d, mask, radii


def field_background(data, exclude_arcmin=5.0, cell_pix=15):
    """Background of the real field per band: rate, and counts per cell against the model's Poisson draws."""
    d, mask, radii = _field_geometry(data)
    ny, nx = mask.shape
    far = np.all([r > exclude_arcmin for r in radii.values()], axis=0)
    pix_arcmin2 = (FIELD_PIXEL_ARCSEC / 60.0) ** 2
    rows = []
    for band in FIELD_BANDS_EV:
        img = fits.getdata(d / f"img_{band}.fits.gz").astype(np.float64)
        t = fits.getdata(d / f"expmap_norm_novig_{band}.fits.gz").astype(np.float64)
        sel = far & mask & (t > 0)
        n = img[sel].sum()
        rate = n / (t[sel].sum() * pix_arcmin2)
        # 1' cells wholly inside the selection
        k = cell_pix
        cy, cx = ny // k, nx // k
        ok = sel[:cy * k, :cx * k].reshape(cy, k, cx, k).all(axis=(1, 3))
        cells = img[:cy * k, :cx * k].reshape(cy, k, cx, k).sum(axis=(1, 3))[ok]
        texp = t[:cy * k, :cx * k].reshape(cy, k, cx, k).sum(axis=(1, 3))[ok] * pix_arcmin2
        lo, hi = (int(v) / 1000.0 for v in band.split("_"))
        rows.append({"band_keV": [lo, hi], "counts": float(n), "rate": float(rate),
                     "rate_err": float(rate / np.sqrt(max(n, 1.0))), "cells": cells, "cell_exposure": texp})
    return rows


def field_profile(data, name, rmax_arcmin=6.0, step_arcmin=0.5):
    """Counts per arcmin^2 in annuli (0.3-2.2 keV, mask applied) and the background level, of a field cluster."""
    d, mask, radii = _field_geometry(data)
    img = sum(fits.getdata(d / f"img_{b}.fits.gz").astype(np.float64) for b in FIELD_BANDS_EV[:4])
    r = radii[name]
    edges = np.arange(0.0, rmax_arcmin + 1e-9, step_arcmin)
    pa = (FIELD_PIXEL_ARCSEC / 60.0) ** 2
    prof = []
    for a, b in zip(edges[:-1], edges[1:]):
        s = (r >= a) & (r < b) & mask
        prof.append(img[s].sum() / max(s.sum() * pa, 1e-9))
    far = (r > 8.0) & (r < 12.0) & mask
    return edges, np.array(prof), img[far].sum() / (far.sum() * pa)


# -- the mock ----------------------------------------------------------------------------------------------

def mock_catalogue(preset, area, seed, n_jobs, overrides):
    t0 = time.perf_counter()
    data = make_survey(preset, area_deg2=area, random_state=seed, n_jobs=n_jobs, verbose=False, **overrides)
    print(f"  {preset} {area:g} deg^2 {overrides or 'defaults'}: {len(data.y)} clusters in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return data


def _ks(a, b):
    a, b = _f(a), _f(b)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    res = ks_2samp(a, b)
    return {"D": float(res.statistic), "p": float(res.pvalue), "median_mock": float(np.median(a)),
            "median_real": float(np.median(b)), "n_mock": int(a.size), "n_real": int(b.size)}


def efeds_columns(cat):
    exp = _f(cat["exposure"])
    return {"z": _f(cat["z"]), "ML_CTS": _f(cat["ML_CTS"]), "ML_RATE": _f(cat["ML_CTS"]) / exp,
            "EXT": np.minimum(_f(cat["EXT_arcsec"]), 60.0), "EXT_LIKE": _f(cat["EXT_LIKE"]),
            "DET_LIKE": _f(cat["DET_LIKE"]), "ML_BKG": _f(cat["background"]) * exp, "ML_EXP": exp}


def efeds_real_columns(real):
    return {"z": _f(real["Z_BEST_COMB"]), "ML_CTS": _f(real["ML_CTS"]), "ML_RATE": _f(real["ML_RATE"]),
            "EXT": _f(real["EXT"]), "EXT_LIKE": _f(real["EXT_LIKE"]), "DET_LIKE": _f(real["DET_LIKE"]),
            "ML_BKG": _f(real["ML_BKG"]), "ML_EXP": _f(real["ML_EXP"])}


def erass1_columns(cat):
    exp = _f(cat["exposure"])
    return {"z": _f(cat["z"]), "CTS500": _f(cat["counts_r500"]), "Exp": exp,
            "CR500": _f(cat["counts_r500"]) / exp, "log10_M500": _f(cat["log10_M500"]),
            "L500": _f(cat["L_X"]) / 1e42, "theta500": _f(cat["theta500_arcmin"])}


def erass1_real_columns(real):
    z, m500 = _f(real["zBest"]), _f(real["M500"]) * 1e13
    return {"z": z, "CTS500": _f(real["CTS500"]), "Exp": _f(real["Exp"]),
            "CR500": _f(real["CR500"]), "log10_M500": np.log10(m500), "L500": _f(real["L500"]),
            "theta500": theta500_arcmin(m500, np.maximum(z, 1e-3), get_cosmology())}


def domain_share(mock_cols, real_cols, quantile=0.005, margin=0.1):
    """Share of real clusters whose exposure and background per second lie in the mock's training range.

    The ranges as :class:`skcluster.preprocessing.DomainFlagger` records them (log10, the ``quantile`` to
    ``1 - quantile`` points widened by ``margin`` of the span); the background level per second of
    exposure is the catalogue's ML_BKG / ML_EXP against the mock's background map (the flagger measures
    the same level on the images).
    """
    inside = np.ones(len(real_cols["ML_EXP"]), bool)
    for _name, m, r in (("exposure", mock_cols["ML_EXP"], real_cols["ML_EXP"]),
                       ("background", mock_cols["ML_BKG"] / mock_cols["ML_EXP"],
                        real_cols["ML_BKG"] / real_cols["ML_EXP"])):
        lo, hi = np.quantile(np.log10(m), [quantile, 1.0 - quantile])
        pad = margin * (hi - lo)
        inside &= (np.log10(r) >= lo - pad) & (np.log10(r) <= hi + pad)
    return float(inside.mean())


#: Bins of the breakdown by redshift (issue 34: where the mock's excess of clusters at z < 0.3 lies): per column
#: of each depth's comparison, the bin edges (EXT and theta500 in arcsec and arcmin, L500 in 1e42 erg/s).
BREAKDOWN_BINS = {
    "efeds": {"ML_CTS": (0, 50, 100, 200, 500, np.inf), "EXT": (0, 10, 20, 30, 45, 60.01),
              "EXT_LIKE": (0, 10, 20, 50, np.inf)},
    "erass1": {"CTS500": (0, 15, 30, 60, 150, np.inf), "CR500": (0, 0.1, 0.3, 1, 3, np.inf),
               "log10_M500": (12.0, 13.5, 14.0, 14.5, 16.0), "L500": (0, 3, 10, 30, 100, np.inf),
               "theta500": (0, 2, 4, 8, 16, np.inf)},
}
BREAKDOWN_Z = ((0.0, 0.3), (0.3, 0.6))


def density_breakdown(mock, real, area_mock, area_real, bins, z_range):
    """Clusters per deg^2 of the mock over the catalogue's, per bin of each column, within a redshift range."""
    sm = (mock["z"] >= z_range[0]) & (mock["z"] < z_range[1])
    sr = (real["z"] >= z_range[0]) & (real["z"] < z_range[1])
    out = {"all": {"n_mock": int(sm.sum()), "n_real": int(sr.sum()),
                   "ratio": float(sm.sum() / area_mock / max(sr.sum() / area_real, 1e-300))}}
    for column, edges in bins.items():
        nm = np.histogram(mock[column][sm], edges)[0]
        nr = np.histogram(real[column][sr], edges)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(nr > 0, (nm / area_mock) / (nr / area_real), np.nan)
        out[column] = {"edges": [float(e) for e in edges], "n_mock": nm.tolist(), "n_real": nr.tolist(),
                       "ratio": ratio.tolist()}
    return out


def breakdown_section(mocks, er, rr, area_efeds, area_erass1, lines, results):
    """Where the density differs: mock over catalogue per bin of counts, extent, mass, L and size, by z."""
    lines += ["", "## Clusters per deg^2 by redshift: mock over catalogue per bin", "",
              "Each cell: bin, ratio of clusters per deg^2 (mock n / real n). eRASS1's M500 is its count-rate "
              "mass (Ghirardini et al. 2024), the mock's the true mass; theta500 is r500 on the sky (the "
              "catalogue's from its M500).", "",
              "| variant | depth | z | column | bins |", "|---|---|---|---|---|"]
    out = {}
    for v, (_de, _dr, mc, rc) in mocks.items():
        out[v] = {}
        for depth, mock, real, area_m, area_r in (("efeds", mc, er, area_efeds, EFEDS_AREA_DEG2),
                                                  ("erass1", rc, rr, area_erass1, ERASS1_AREA_DEG2)):
            for zr in BREAKDOWN_Z:
                b = density_breakdown(mock, real, area_m, area_r, BREAKDOWN_BINS[depth], zr)
                out[v][f"{depth}_z{zr[0]:g}-{zr[1]:g}"] = b
                a = b["all"]
                lines.append(f"| {v} | {depth} | {zr[0]:g}-{zr[1]:g} | all | {a['ratio']:.2f} "
                             f"({a['n_mock']}/{a['n_real']}) |")
                for column in BREAKDOWN_BINS[depth]:
                    c = b[column]
                    cells = [f"{lo:g}-{hi:g}: {r:.2f} ({m}/{n})" for lo, hi, r, m, n in
                             zip(c["edges"][:-1], c["edges"][1:], c["ratio"], c["n_mock"], c["n_real"])]
                    lines.append(f"| {v} | {depth} | {zr[0]:g}-{zr[1]:g} | {column} | " + "; ".join(cells) + " |")
    results["breakdown_by_z"] = out


def n_of_z(z, area, edges=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.6)):
    return (np.histogram(z, edges)[0] / area).tolist()


def _design(log_cr, z, log_exp):
    lz = np.log10(1.0 + z)
    return np.column_stack([np.ones_like(log_cr), log_cr, lz, log_cr**2, log_cr * lz, lz**2,
                            log_cr**3, log_cr**2 * lz, log_cr * lz**2, lz**3,
                            log_exp, log_exp * log_cr, log_exp * lz, log_exp**2])


def count_rate_mapping(mock, real, rng, form="forward", n_boot=1000):
    """The mock's count-rate-mass mapping applied to the real clusters; median offsets from M500 per bin.

    ``form="forward"``: E[log M | log CR500, z, log Exp] fitted on the mock, a posterior mean under the
    mock's population, which shrinks toward the typical mass. ``form="inverted"``: E[log CR500 | log M, z,
    log Exp], a power law in M whose normalisation and slope are quadratic in log(1+z) and log Exp, fitted
    on the mock and solved for M: an inverted relation (no shrinkage; flattened at low mass by the
    selection, as any relation fitted on detected clusters). Which of the two the catalogue's M500
    follows is itself a finding: the residuals of the wrong form run with CR500.

    The exposure is a regressor because a cluster detected at a given count rate in a shallow region is a
    stronger upward fluctuation than one in a deep region: comparing a shallow mock's mapping with a
    catalogue holding deep regions would not be like with like. Real clusters outside the mock's range of
    CR500, z or exposure (0.5-99.5%) are left out, and the share kept is reported.
    """
    ok = (mock["CR500"] > 0) & np.isfinite(mock["CR500"])
    lcr, z, m = np.log10(mock["CR500"][ok]), mock["z"][ok], mock["log10_M500"][ok]
    lexp = np.log10(mock["Exp"][ok])
    okr = (real["CR500"] > 0) & np.isfinite(real["log10_M500"]) & (real["z"] > 0)
    rl, rz, rm = np.log10(real["CR500"][okr]), real["z"][okr], real["log10_M500"][okr]
    rexp = np.log10(real["Exp"][okr])
    if form == "forward":
        coef, *_ = np.linalg.lstsq(_design(lcr, z, lexp), m, rcond=None)
        pred = _design(rl, rz, rexp) @ coef
    else:  # a power law in M whose normalisation and slope run with z and exposure, solved for M
        def terms(lz, le):
            return np.column_stack([np.ones_like(lz), lz, lz**2, le, le**2, le * lz])

        lz, rlz = np.log10(1.0 + z), np.log10(1.0 + rz)
        a = terms(lz, lexp)
        design = np.hstack([a, a * (m - 14.0)[:, None]])
        coef, *_ = np.linalg.lstsq(design, lcr, rcond=None)
        k = a.shape[1]
        b = terms(rlz, rexp)
        slope = b @ coef[k:]
        pred = np.where(slope > 0, 14.0 + (rl - b @ coef[:k]) / np.where(slope > 0, slope, 1.0), np.nan)

    def within(x, ref):
        return (x >= np.percentile(ref, 0.5)) & (x <= np.percentile(ref, 99.5))

    inside = within(rl, lcr) & within(rz, z) & within(rexp, lexp) & np.isfinite(pred)
    diff = pred - rm

    def summary(sel):
        d = diff[sel & inside]
        if d.size < 5:
            return {"n": int(d.size)}
        boots = np.median(d[rng.integers(0, d.size, (n_boot, d.size))], axis=1)
        return {"n": int(d.size), "median_dex": float(np.median(d)),
                "ci95": [float(v) for v in np.percentile(boots, [2.5, 97.5])]}

    q = np.percentile(real["CR500"][okr], [25, 50, 75])
    quart_edges = np.concatenate([[0.0], q, [np.inf]])
    cr = real["CR500"][okr]
    by_cr = [{"CR500": [float(a), float(b)], **summary((cr >= a) & (cr < b))}
             for a, b in zip(quart_edges[:-1], quart_edges[1:])]
    by_z = [{"z": [a, b], **summary((rz >= a) & (rz < b))} for a, b in zip(Z_BINS[:-1], Z_BINS[1:])]
    return {"by_cr500_quartile": by_cr, "by_z": by_z, "all": summary(np.ones(rz.size, bool)),
            "share_inside_mock_range": float(inside.mean()), "_diff": diff, "_inside": inside, "_z": rz, "_cr": cr}


def selection_slope(seed, n_jobs, exposures=(100.0, 400.0, 1600.0), areas=(3000.0, 800.0, 200.0)):
    """Slope of the detected density against exposure (log-log), at the sky variant's eRASS1 settings."""
    over = {**VARIANTS["sky"]["erass1"], "exposure_table": "none"}
    dens = []
    for t, a in zip(exposures, areas):
        data = mock_catalogue("erass1", a, seed, n_jobs, {**over, "exposure_log_uniform": True,
                                                         "exposure_min_s": 0.9 * t, "exposure_max_s": 1.1 * t})
        dens.append(len(data.y) / a)
    k = float(np.polyfit(np.log(exposures), np.log(dens), 1)[0])
    return {"exposure_s": list(exposures), "per_deg2": dens, "slope": k}


# -- report ------------------------------------------------------------------------------------------------

def _fmt_ks(r):
    return f"{r['median_mock']:.3g} / {r['median_real']:.3g} | {r['D']:.3f} | {r['p']:.2g}"


def image_section(data, efeds_params, out, lines, results):
    rows = field_background(data)
    bands = [tuple(r["band_keV"]) for r in rows]
    lines += ["## The real eFEDS field against the mock's background", "",
              "Background rate per band, counts / s / arcmin^2 (unvignetted), point sources masked, > 5' from the "
              "field's two clusters; counts per 1' cell (median, 5-95%) against Poisson draws of each model on the "
              "same cells and exposures.", "",
              "| band keV | field rate | " + " | ".join(f"{v} / field" for v in efeds_params) +
              " | field cell counts 5/50/95% | " + " | ".join(f"{v} cells" for v in efeds_params) + " |",
              "|---|---|" + "---|" * len(efeds_params) + "---|" + "---|" * len(efeds_params)]
    rng = np.random.default_rng(0)
    model = {v: background_band_rates(p, bands) for v, p in efeds_params.items()}
    res_rows = []
    for i, r in enumerate(rows):
        pct = np.percentile(r["cells"], [5, 50, 95])
        cells_model = {v: np.percentile(rng.poisson(model[v][i] * r["cell_exposure"]), [5, 50, 95])
                       for v in efeds_params}
        lines.append(f"| {r['band_keV'][0]:g}-{r['band_keV'][1]:g} | {r['rate']:.3e} +- {r['rate_err']:.1e} | "
                     + " | ".join(f"{model[v][i] / r['rate']:.2f}" for v in efeds_params)
                     + f" | {pct[0]:.0f} / {pct[1]:.0f} / {pct[2]:.0f} | "
                     + " | ".join("{:.0f} / {:.0f} / {:.0f}".format(*cells_model[v]) for v in efeds_params) + " |")
        res_rows.append({"band_keV": r["band_keV"], "rate": r["rate"], "rate_err": r["rate_err"],
                         "cells_p05_p50_p95": pct.tolist(),
                         **{f"{v}_over_field": float(model[v][i] / r["rate"]) for v in efeds_params},
                         **{f"{v}_cells_p05_p50_p95": cells_model[v].tolist() for v in efeds_params}})
    results["field_background"] = res_rows
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    mid = [np.mean(b) for b in bands]
    ax.errorbar(mid, [r["rate"] for r in rows], yerr=[r["rate_err"] for r in rows], fmt="ko", label="eFEDS field")
    for v in efeds_params:
        ax.plot(mid, model[v], "s-", label=f"mock {v}")
    ax.set(xscale="log", yscale="log", xlabel="energy (keV)", ylabel="counts / s / arcmin$^2$ (unvignetted)",
           title="background per band, point sources masked")
    ax.legend()
    fig.savefig(out / "sky_background.png", dpi=120)
    plt.close(fig)
    return rows


def lognlogs_section(agn, efeds_params, lines, results, out):
    s = _f(agn["FluxCorr_Med_s"])
    fluxes = [6.5e-15, 1e-14, 3e-14, 1e-13]
    tables = {v: p.agn_lognlogs for v, p in efeds_params.items()}
    rows = [{"S_cgs": f, "efeds_per_deg2": float(np.sum(s > f) / EFEDS_AREA_DEG2),
             **{f"{v}_per_deg2": float(AGN_LOGNLOGS[t].n_above(f)) for v, t in tables.items()}} for f in fluxes]
    results["lognlogs"] = rows
    lines += ["", "## Point sources per deg^2 above a 0.5-2 keV flux", "",
              "| S (erg/s/cm^2) | eFEDS AGN catalogue / 140 deg^2 | "
              + " | ".join(f"mock {v} ({t}) / eFEDS" for v, t in tables.items()) + " |",
              "|---|---|" + "---|" * len(tables)]
    lines += [f"| {r['S_cgs']:.2g} | {r['efeds_per_deg2']:.1f} | "
              + " | ".join(f"{r[v + '_per_deg2'] / r['efeds_per_deg2']:.2f}" for v in tables) + " |" for r in rows]
    grid = np.geomspace(3e-15, 3e-13, 40)
    fig, ax = plt.subplots(figsize=(5, 3.8), layout="constrained")
    ax.loglog(grid, [np.sum(s > g) / EFEDS_AREA_DEG2 for g in grid], "k-", label="eFEDS AGN (Liu T.+22)")
    for v, t in tables.items():
        ax.loglog(grid, AGN_LOGNLOGS[t].n_above(grid), "--", label=f"mock {v}: {t}")
    ax.set(xlabel="S(0.5-2 keV) erg/s/cm$^2$", ylabel="N(>S) per deg$^2$")
    ax.legend()
    fig.savefig(out / "sky_lognlogs.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="folder with efeds_catalogs, erass1_catalogs, "
                                                              "efeds_mbproj2d")
    ap.add_argument("--area-efeds", type=float, default=420.0)
    ap.add_argument("--area-erass1", type=float, default=4000.0)
    ap.add_argument("--variants", default="v1,v2", help=f"comma-separated, of {sorted(VARIANTS)}")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--field-only", action="store_true", help="only the image comparisons (no mock survey)")
    ap.add_argument("--selection-slope", action="store_true",
                    help="measure the detected density's slope against exposure and stop")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "sky"))
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/validate_sky.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; known: {sorted(VARIANTS)}")
    if args.selection_slope:
        res = selection_slope(args.seed, args.n_jobs)
        print(json.dumps(res, indent=1))
        return res
    results = {"command": command, "variants": {v: VARIANTS[v] for v in variants}}
    lines = ["# The mock against the real sky", "", f"`{command}`", ""]
    efeds_real, erass1_real, agn = read_catalogues(data)
    efeds_params = {v: resolve_parameters("efeds", **VARIANTS[v]["efeds"]) for v in variants}
    image_section(data, efeds_params, out, lines, results)
    lognlogs_section(agn, efeds_params, lines, results, out)
    if args.field_only:
        _write(out, results, lines)
        return results

    rng = np.random.default_rng(args.seed)
    er = efeds_real_columns(efeds_real)
    rr = erass1_real_columns(erass1_real)
    mocks = {}
    for v in variants:
        print(f"variant {v}:", flush=True)
        de = mock_catalogue("efeds", args.area_efeds, args.seed, args.n_jobs, VARIANTS[v]["efeds"])
        dr = mock_catalogue("erass1", args.area_erass1, args.seed, args.n_jobs, VARIANTS[v]["erass1"])
        mocks[v] = (de, dr, efeds_columns(de.catalog), erass1_columns(dr.catalog))

    # -- eFEDS depth
    lines += ["", "## eFEDS depth against the eFEDS catalogue (542 clusters / 140 deg^2 = 3.87 per deg^2)", "",
              "| variant | per deg^2 | / eFEDS | real clusters in the domain | " +
              " | ".join(f"{c} median mock / real, D, p" for c in er) + " |",
              "|---|---|---|---|" + "---|" * len(er)]
    res_e = {}
    for v, (_de, _dr, mc, _rc) in mocks.items():
        dens = len(mc["z"]) / args.area_efeds
        ks = {c: _ks(mc[c], er[c]) for c in er}
        res_e[v] = {"per_deg2": dens, "ratio": dens / (len(er["z"]) / EFEDS_AREA_DEG2), "ks": ks,
                    "real_inside_training_domain": domain_share(mc, er),
                    "n_of_z_mock": n_of_z(mc["z"], args.area_efeds),
                    "above_530_ratio": float(np.sum(mc["ML_CTS"] > 530) / args.area_efeds
                                             / (np.sum(er["ML_CTS"] > 530) / EFEDS_AREA_DEG2))}
        lines.append(f"| {v} | {dens:.2f} | {res_e[v]['ratio']:.2f} | {res_e[v]['real_inside_training_domain']:.3f} | "
                     + " | ".join(_fmt_ks(ks[c]) for c in er) + " |")
    res_e["n_of_z_real"] = n_of_z(er["z"], EFEDS_AREA_DEG2)
    results["efeds"] = res_e
    lines += ["", "n(z) per deg^2 in z bins 0-0.1-0.2-0.3-0.4-0.5-0.7-1.0-1.6:", "",
              f"* real: {np.round(res_e['n_of_z_real'], 3).tolist()}"]
    lines += [f"* {v}: {np.round(res_e[v]['n_of_z_mock'], 3).tolist()} (above 530 counts: "
              f"{res_e[v]['above_530_ratio']:.2f}x eFEDS)" for v in mocks]

    # -- eRASS1 depth
    lines += ["", "## eRASS1 depth against the eRASS1 primary catalogue (12,247 / 13,116 deg^2 = 0.93 per deg^2)", "",
              "| variant | per deg^2 | / eRASS1 | " + " | ".join(f"{c} median mock / real, D, p" for c in
                                                     ("z", "CTS500", "Exp")) + " |", "|---|---|---|---|---|---|"]
    res_r = {}
    for v, (_de, _dr, _mc, rc) in mocks.items():
        dens = len(rc["z"]) / args.area_erass1
        ks = {c: _ks(rc[c], rr[c]) for c in ("z", "CTS500", "Exp")}
        mappings = {f: count_rate_mapping(rc, rr, rng, f) for f in ("forward", "inverted")}
        res_r[v] = {"per_deg2": dens, "ratio": dens / (len(rr["z"]) / ERASS1_AREA_DEG2), "ks": ks,
                    "n_of_z_mock": n_of_z(rc["z"], args.area_erass1),
                    "count_rate_mapping": {f: {k: w for k, w in mp.items() if not k.startswith("_")}
                                           for f, mp in mappings.items()}}
        res_r[v]["_mapping"] = mappings
        lines.append(f"| {v} | {dens:.3f} | {res_r[v]['ratio']:.2f} | "
                     + " | ".join(_fmt_ks(ks[c]) for c in ("z", "CTS500", "Exp")) + " |")
    lines += ["", "Count-rate-mass mapping of each eRASS1-depth mock (forward: E[log M | CR500, z, Exp], a posterior "
              "mean; inverted: E[log CR500 | M, z, Exp] solved for M), applied to the real CR500, zBest and Exp, minus "
              "log10 of the catalogue's M500 (median, dex, bootstrap 95% interval; clusters inside the mock's CR500, "
              "z and exposure range):", "",
              "| variant, form | " + " | ".join(f"CR500 Q{i + 1}" for i in range(4)) + " | " +
              " | ".join(f"z {a}-{b}" for a, b in zip(Z_BINS[:-1], Z_BINS[1:])) + " |",
              "|---|" + "---|" * 8]
    for v in mocks:
        for form, mp in res_r[v]["count_rate_mapping"].items():
            cells = [f"{c['median_dex']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] (n={c['n']})"
                     if "median_dex" in c else f"n={c['n']}" for c in mp["by_cr500_quartile"] + mp["by_z"]]
            lines.append(f"| {v}, {form} | " + " | ".join(cells) + " |")
    res_r["n_of_z_real"] = n_of_z(rr["z"], ERASS1_AREA_DEG2)
    lines += ["", f"n(z) per deg^2, real: {np.round(res_r['n_of_z_real'], 4).tolist()}"]
    lines += [f"* {v}: {np.round(res_r[v]['n_of_z_mock'], 4).tolist()}" for v in mocks]
    breakdown_section(mocks, er, rr, args.area_efeds, args.area_erass1, lines, results)
    _figures(out, er, rr, mocks, res_r)
    profile_section(data, efeds_real, mocks, lines, results, out)
    for v in mocks:
        res_r[v].pop("_mapping")
    results["erass1"] = res_r
    _write(out, results, lines)
    return results


def mock_profile(events, sources, edges, bkg_annulus=(7.0, 9.5), band=(0.3, 2.2), mask_arcsec=30.0):
    """Background-subtracted counts per arcmin^2 in annuli of one mock box (detected point sources masked)."""
    e, x, y = events["energy_keV"], events["x_arcsec"], events["y_arcsec"]
    keep = (e >= band[0]) & (e < band[1])
    for src in sources:
        keep &= np.hypot(x - src["x_arcsec"], y - src["y_arcsec"]) > mask_arcsec
    r = np.hypot(x[keep], y[keep]) / 60.0
    # unmasked area per annulus by Monte Carlo on a fixed grid of points
    g = np.linspace(-600.0, 600.0, 601)
    gx, gy = np.meshgrid(g, g)
    ok = np.ones(gx.shape, bool)
    for src in sources:
        ok &= np.hypot(gx - src["x_arcsec"], gy - src["y_arcsec"]) > mask_arcsec
    gr = np.hypot(gx, gy)[ok] / 60.0
    cell = (g[1] - g[0]) ** 2 / 3600.0

    def density(a, b):
        area = np.sum((gr >= a) & (gr < b)) * cell
        return np.sum((r >= a) & (r < b)) / max(area, 1e-9)

    bkg = density(*bkg_annulus)
    return np.array([density(a, b) for a, b in zip(edges[:-1], edges[1:])]) - bkg


def profile_section(data, efeds_real, mocks, lines, results, out, name="eFEDS J092121.2+031726"):
    """The field's bright cluster against mock clusters of similar ML_RATE and z: profiles over ML_CTS."""
    edges, prof, bkg = field_profile(data, name)
    row = efeds_real[np.asarray(efeds_real["Name"]) == name]
    if len(row) != 1:
        return
    rate, cts, z = float(row["ML_RATE"][0]), float(row["ML_CTS"][0]), FIELD_CLUSTERS[name][2]
    real = (prof - bkg) / cts
    mid = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    ax.plot(mid, real, "ko-", label=f"{name} (z={z:.2f}, ML_RATE {rate:.2f})")
    out_rows = {"real": real.tolist(), "r_arcmin": mid.tolist(), "ML_RATE": rate, "ML_CTS": cts}
    lines += ["", f"## Profile of {name} (z = {z:.3f}, ML_RATE {rate:.3f} counts/s) against mock clusters with "
              "ML_RATE within x1.5 and z within 0.1", "",
              "Background-subtracted 0.3-2.2 keV counts per arcmin^2 over ML_CTS, per 0.5' annulus (point sources "
              "masked; background from 8-12' in the field, 7-9.5' in the mock boxes).", "",
              "| variant | n clusters | " + " | ".join(f"{a:g}-{b:g}'" for a, b in zip(edges[:-1], edges[1:]))
              + " |", "|---|---|" + "---|" * len(mid),
              "| real | 1 | " + " | ".join(f"{v:.4f}" for v in real) + " |"]
    for v, (de, _, mc, _) in mocks.items():
        sel = np.flatnonzero((mc["ML_RATE"] > rate / 1.5) & (mc["ML_RATE"] < rate * 1.5) & (np.abs(mc["z"] - z) < 0.1))
        if sel.size == 0:
            continue
        profs = np.array([mock_profile(de.X["events"][i], de.X["point_sources"][i], edges) / mc["ML_CTS"][i]
                          for i in sel])
        med = np.median(profs, axis=0)
        out_rows[v] = {"median": med.tolist(), "n": int(sel.size)}
        lines.append(f"| mock {v} | {sel.size} | " + " | ".join(f"{m:.4f}" for m in med) + " |")
        ax.plot(mid, med, "s-", label=f"mock {v}: median of {sel.size}")
    results["profile"] = out_rows
    ax.set(yscale="log", xlabel="radius (arcmin)", ylabel="counts / arcmin$^2$ / ML_CTS")
    ax.legend(fontsize=8)
    fig.savefig(out / "sky_profile.png", dpi=120)
    plt.close(fig)


def _hist_panel(ax, real, mock_cols, column, log, label):
    """Normalised histograms of one column: the catalogue's (black) and each mock variant's."""
    allv = np.concatenate([real[column]] + [m[column] for m in mock_cols.values()])
    allv = allv[np.isfinite(allv) & ((allv > 0) if log else True)]
    lo, hi = np.percentile(allv, [0.5, 99.5])
    bins = np.geomspace(lo, hi, 30) if log else np.linspace(lo, hi, 30)
    ax.hist(real[column], bins, density=True, histtype="step", color="k", lw=2, label=label)
    for v, m in mock_cols.items():
        ax.hist(m[column], bins, density=True, histtype="step", label=f"mock {v}")
    ax.set(xscale="log" if log else "linear", xlabel=column)


def _figures(out, er, rr, mocks, res_r):
    cols = [("z", False), ("ML_CTS", True), ("EXT", False), ("ML_BKG", True), ("ML_EXP", True)]
    fig, axs = plt.subplots(1, len(cols), figsize=(4 * len(cols), 3.4), layout="constrained")
    for ax, (c, log) in zip(axs, cols):
        _hist_panel(ax, er, {v: m[2] for v, m in mocks.items()}, c, log, "eFEDS")
    axs[0].legend()
    fig.suptitle("eFEDS depth: mock against the eFEDS catalogue (normalised)")
    fig.savefig(out / "sky_efeds_hist.png", dpi=110)
    plt.close(fig)
    fig, axs = plt.subplots(1, 4, figsize=(16, 3.6), layout="constrained")
    for ax, (c, log) in zip(axs[:3], [("z", False), ("CTS500", True), ("Exp", True)]):
        _hist_panel(ax, rr, {v: m[3] for v, m in mocks.items()}, c, log, "eRASS1")
    axs[0].legend()
    ax = axs[3]
    for v in mocks:
        for form, style in (("forward", ".-"), ("inverted", "x--")):
            mp = res_r[v]["_mapping"][form]
            s = mp["_inside"]
            order = np.argsort(mp["_cr"][s])
            d = mp["_diff"][s][order]
            k = max(len(d) // 30, 1)
            ax.plot([np.median(mp["_cr"][s][order][i:i + k]) for i in range(0, len(d), k)],
                    [np.median(d[i:i + k]) for i in range(0, len(d), k)], style, label=f"mock {v}, {form}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="CR500 (counts/s)", ylabel="mock mapping - log M500 (dex)")
    ax.legend()
    fig.suptitle("eRASS1 depth: mock against the eRASS1 primary catalogue")
    fig.savefig(out / "sky_erass1.png", dpi=110)
    plt.close(fig)


def _write(out, results, lines):
    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items() if not k.startswith("_")}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, np.ndarray):
            return None
        return o

    (out / "validate_sky.json").write_text(json.dumps(clean(results), indent=1, default=float))
    (out / "validate_sky.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {out / 'validate_sky.md'}, validate_sky.json and sky_*.png")


if __name__ == "__main__":
    main()
