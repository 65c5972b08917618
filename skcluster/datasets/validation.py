"""Realism checks of a mock survey against eFEDS and the literature.

Shared by the tests (tests/test_datasets_realism.py) and the validation
benchmark (benchmarks/validate_mock.py), so both compute the same numbers.

Reference numbers (measured from the public eFEDS products, Brunner et
al. 2022, A&A 661, A1; Liu et al. 2022, A&A 661, A2): detected clusters have
47 / 105 / 530 source counts (0.2-2.3 keV) at the 5th / 50th / 95th
percentile; background 0.029 counts per 4-arcsec pixel (0.2-2.3 keV, median
7.0 counts/arcmin^2); median theta500 2.3 arcmin; median z 0.35; 542
cluster candidates in ~140 deg^2 (Liu et al. 2022). The eFEDS counts are
source counts of the detection fit, so they are compared with the mock's
``ML_CTS`` (also with the true ICM counts, reported beside).

The surface density of the mock's clusters (all real clusters, selected by
an idealised fixed-position fit) is not like for like with the 542
candidates: about 1/5 of those are contaminants, mostly misclassified point
sources (Liu et al. 2022; 434 are optically confirmed clusters, Chiu et al.
2022, A&A 661, A11), and a further 346 clusters and groups at 0.1 < z < 1.3,
compact or faint, were detected but classified as point sources by eSASS
(Bulbul et al. 2022, A&A 661, A10).
"""

from __future__ import annotations

import numpy as np

from ..physics.cosmology import efunc, get_cosmology, luminosity_distance_cm

__all__ = [
    "EFEDS_REFERENCE",
    "survey_summary",
    "fit_scaling_relation",
    "hard_fraction_by_temperature",
    "aperture_counts",
    "count_mass_scatter",
]

#: eFEDS reference numbers (measured from the public eFEDS products; Liu et al. 2022 for the number).
EFEDS_REFERENCE = {
    "counts_p05": 47.0, "counts_p50": 105.0, "counts_p95": 530.0,
    "bkg_per_pixel": 0.029, "theta500_median_arcmin": 2.3, "z_median": 0.35,
    "clusters_per_deg2": 542.0 / 140.0,
    "confirmed_clusters_per_deg2": 434.0 / 140.0,
    "point_like_clusters_per_deg2": 346.0 / 140.0,
}


def survey_summary(bunch):
    """The headline realism numbers of a survey and their ratios to eFEDS."""
    cat = bunch.catalog
    ml = np.percentile(np.asarray(cat["ML_CTS"]), [5, 50, 95])
    true = np.percentile(np.asarray(cat["counts"]), [5, 50, 95])
    out = {
        "n_clusters": int(len(cat)), "area_deg2": float(bunch.area_deg2),
        "clusters_per_deg2": len(cat) / bunch.area_deg2,
        "ML_CTS_p05": ml[0], "ML_CTS_p50": ml[1], "ML_CTS_p95": ml[2],
        "counts_true_p05": true[0], "counts_true_p50": true[1], "counts_true_p95": true[2],
        "bkg_per_pixel_median": float(np.median(cat["bkg_per_pixel"])),
        "theta500_median_arcmin": float(np.median(cat["theta500_arcmin"])),
        "z_median": float(np.median(cat["z"])),
        "cool_core_fraction": float(np.mean(cat["cool_core"])),
        "central_agn_fraction": float(np.mean(cat["central_agn"])),
    }
    ref = EFEDS_REFERENCE
    out["ratio_counts"] = [out[f"ML_CTS_p{q}"] / ref[f"counts_p{q}"] for q in ("05", "50", "95")]
    out["ratio_bkg"] = out["bkg_per_pixel_median"] / ref["bkg_per_pixel"]
    out["ratio_theta500"] = out["theta500_median_arcmin"] / ref["theta500_median_arcmin"]
    out["delta_z"] = out["z_median"] - ref["z_median"]
    out["ratio_density"] = out["clusters_per_deg2"] / ref["clusters_per_deg2"]
    return out


def fit_scaling_relation(log10_m500, z, lum, params, ez_slope=None):
    """Least-squares ln L = a + b ln(M/M_piv) + c ln E(z) with c fixed; returns (log10 norm, slope, ln-scatter).

    Parameters
    ----------
    log10_m500, z, lum : array-like of shape (n,)
        Masses (log10 Msun), redshifts, luminosities (erg/s).
    params : SurveyParameters
        For the pivot mass and the cosmology.
    ez_slope : float, default=None
        E(z) exponent removed before the fit (``params.lx_ez_slope``).
    """
    c = params.lx_ez_slope if ez_slope is None else ez_slope
    ez = efunc(np.asarray(z), get_cosmology(params.H0, params.Om0))
    yv = np.log10(np.asarray(lum)) - c * np.log10(ez)
    x = np.asarray(log10_m500) - np.log10(params.lx_pivot_msun)
    a = np.stack([np.ones_like(x), x], axis=1)
    coef = np.linalg.lstsq(a, yv, rcond=None)[0]
    resid = yv - a @ coef
    return float(coef[0]), float(coef[1]), float(np.std(resid, ddof=2) * np.log(10.0))


def hard_fraction_by_temperature(bunch, split_keV=2.0, t_edges=(0.0, 1.5, 2.5, 4.0, 6.0, 100.0)):
    """Mean fraction of ICM photons above ``split_keV`` (of 0.2-10 keV) in bins of T.

    Returns
    -------
    centres : list of float (median T per bin, keV), fractions : list of float, counts : list of int
    """
    t = np.asarray(bunch.catalog["T"])
    frac = np.full(t.size, np.nan)
    for i, ev in enumerate(bunch.X["events"]):
        e = ev["energy_keV"][ev["origin"] == 1]
        if e.size:
            frac[i] = np.mean(e >= split_keV)
    centres, fracs, counts = [], [], []
    for lo, hi in zip(t_edges[:-1], t_edges[1:]):
        s = (t >= lo) & (t < hi) & np.isfinite(frac)
        if s.sum() >= 5:
            centres.append(float(np.median(t[s])))
            fracs.append(float(np.mean(frac[s])))
            counts.append(int(s.sum()))
    return centres, fracs, counts


def _box_area_within(size_arcmin, r_lo, r_hi):
    """Area (arcsec^2) of the annulus r_lo <= r < r_hi inside the square box (5" grid)."""
    half = 30.0 * size_arcmin
    g = np.arange(-half + 2.5, half, 5.0)
    gr = np.hypot(*np.meshgrid(g, g))
    return 25.0 * float(np.sum((gr >= r_lo) & (gr < r_hi)))


def aperture_counts(events, radius_arcsec, size_arcmin=20.0, band_keV=(0.5, 2.0),
                    bkg_annulus_arcsec=(450.0, 600.0)):
    """Background-subtracted counts of one cluster in a circular aperture (observer-like).

    All photons (any origin) in ``band_keV`` within ``radius_arcsec``, minus
    the background density measured in the annulus ``bkg_annulus_arcsec``
    (at the edge of the box, clipped to it) times the aperture area. A radius
    of ``inf`` means the whole box.
    """
    e = events["energy_keV"]
    sel = (e >= band_keV[0]) & (e < band_keV[1])
    r = np.hypot(events["x_arcsec"][sel], events["y_arcsec"][sel])
    a1, a2 = bkg_annulus_arcsec
    dens = np.sum((r >= a1) & (r < a2)) / _box_area_within(size_arcmin, a1, a2)
    if np.isinf(radius_arcsec):
        return float(r.size - dens * (60.0 * size_arcmin) ** 2)
    return float(np.sum(r < radius_arcsec) - dens * _box_area_within(size_arcmin, 0.0, radius_arcsec))


def count_mass_scatter(bunch, radius="fixed", radius_arcsec=120.0, band_keV=(0.5, 2.0), random_state=0,
                       counts=None):
    """Scatter of a count-rate mass estimate, fitted on half of the clusters, tested on the rest.

    log10 M = a + b log10(counts / exposure) + c log10 E(z) + d log10 D_L(z)
    + e log10(1 + z), the power law in count rate with redshift terms of a
    count-rate scaling relation. The scatter is sigma_lnM = ln(10) *
    std(log10 M_pred - log10 M_true) on the held-out half (the convention of
    Krippendorf et al. 2023).

    Parameters
    ----------
    bunch : Bunch from make_survey
    radius : {"fixed", "r500", "box"}, default="fixed"
        Aperture: ``radius_arcsec``; the true theta500 (idealised, as Ho et
        al. 2023's "counts in r500"); the whole box ("photon counts").
    counts : array-like of shape (n,), default=None
        Use these counts instead (e.g. ``catalog["ML_CTS"]``).

    Returns
    -------
    dict with ``sigma_lnM``, ``slope`` (b), ``n_test``, ``n_nonpositive``
    (clusters whose background-subtracted counts were <= 0, set to 1 count).
    """
    X, cat = bunch.X, bunch.catalog
    n = len(X)
    if counts is None:
        if radius == "fixed":
            rad = np.full(n, float(radius_arcsec))
        elif radius == "r500":
            rad = 60.0 * np.asarray(cat["theta500_arcmin"])
        elif radius == "box":
            rad = np.full(n, np.inf)
        else:
            raise ValueError(f"radius must be 'fixed', 'r500' or 'box', got {radius!r}")
        size = float(X.meta.get("size_arcmin", 20.0))
        counts = np.array([aperture_counts(ev, r, size, band_keV) for ev, r in zip(X["events"], rad)])
    counts = np.asarray(counts, dtype=np.float64)
    bad = counts <= 0
    cnt = np.where(bad, 1.0, counts)
    z = np.asarray(X["z"])
    cosmo = get_cosmology(bunch.params.H0, bunch.params.Om0)
    feats = np.stack([
        np.ones(n), np.log10(cnt / np.asarray(X["exposure"])), np.log10(efunc(z, cosmo)),
        np.log10(luminosity_distance_cm(z, cosmo)), np.log10(1.0 + z),
    ], axis=1)
    yv = np.asarray(bunch.y)
    order = np.random.default_rng(random_state).permutation(n)
    train, test = order[: n // 2], order[n // 2:]
    coef = np.linalg.lstsq(feats[train], yv[train], rcond=None)[0]
    resid = yv[test] - feats[test] @ coef
    return {"sigma_lnM": float(np.log(10.0) * np.std(resid)), "slope": float(coef[1]),
            "n_test": int(test.size), "n_nonpositive": int(bad.sum())}
