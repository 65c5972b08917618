"""The mixed-depth preset 'erosita': per-cluster exposure, background and N_H, selection at each depth.

Small samples: catalogue-level tiles (no photons, < 1 s) and a few
hundred candidate clusters simulated with photons.
"""

import math

import numpy as np
import pytest

from skcluster.datasets import PRESETS, make_survey, resolve_parameters
from skcluster.datasets.photons import CHUNK_COLUMNS, simulate_chunk
from skcluster.datasets.survey import nh_grid, point_source_limits, survey_context, tile_catalog
from skcluster.physics import thermal_band_rates


@pytest.fixture(scope="module")
def erosita():
    p = resolve_parameters("erosita", sky="v1")   # the preset's own draws (v2's background: test_sky_calibration)
    return p, tile_catalog(0, 10.0, p, 123, survey_context(p))


def test_preset_is_selectable_and_documented():
    assert "erosita" in PRESETS
    p = resolve_parameters("EROSITA", sky="v1")
    assert p.exposure_log_uniform and p.nh_vary and p.agn_mask_depth_slope > 0
    # the sourced ranges: eRASS1 equator to eRASS:4-5 poles, ML_BKG 4.7/7.0/13.3, HI4PI 1e20-1e21
    assert (p.exposure_min_s, p.exposure_max_s) == (80.0, 5000.0)
    assert p.background_p05_rel == pytest.approx(4.7 / 7.0) and p.background_p95_rel == pytest.approx(13.3 / 7.0)
    assert (p.nh_min_cm2, p.nh_max_cm2) == (1e20, 1e21)
    with pytest.raises(ValueError, match="exposure_min_s=.* must be below exposure_max_s"):
        resolve_parameters("erosita", exposure_min_s=6000.0)
    with pytest.raises(ValueError, match="nh_min_cm2=.* must be below nh_max_cm2"):
        resolve_parameters("erosita", nh_min_cm2=2e21)


def test_draws_lie_in_the_stated_ranges(erosita):
    p, cat = erosita
    n = cat["z"].size
    assert n > 3000
    t = cat["exposure"]
    assert t.min() >= 80.0 and t.max() <= 5000.0
    # log-uniform: log t uniform, so its quartiles sit at 1/4 and 3/4 of the log range
    q = np.quantile(np.log(t / 80.0) / math.log(5000.0 / 80.0), [0.25, 0.5, 0.75])
    assert np.allclose(q, [0.25, 0.5, 0.75], atol=0.03), q
    # background factor: the 5 / 50 / 95% points of the eFEDS ML_BKG spread
    rel = cat["background_rel"]
    assert np.quantile(rel, 0.05) == pytest.approx(4.7 / 7.0, rel=0.05)
    assert np.median(rel) == pytest.approx(1.0, rel=0.05)
    assert np.quantile(rel, 0.95) == pytest.approx(13.3 / 7.0, rel=0.06)
    # N_H: grid values within 1e20-1e21, every decade-twentieth used
    nh = cat["nh"]
    grid = nh_grid(p)
    assert nh.min() >= 1e20 * (1 - 1e-12) and nh.max() <= 1e21 * (1 + 1e-12)
    assert set(np.unique(nh)) == set(grid)
    # independent of one another and of the exposure
    assert abs(np.corrcoef(np.log(t), np.log(rel))[0, 1]) < 0.05
    assert abs(np.corrcoef(np.log(t), np.log(nh))[0, 1]) < 0.05
    # the point-source limit falls with depth through the eFEDS and eRASS1 limits
    lim = point_source_limits(np.array([1180.0, 108.0]), p)
    assert lim[0] == pytest.approx(6.5e-15) and lim[1] == pytest.approx(5e-14, rel=0.03)
    assert np.all(np.diff(cat["ps_limit"][np.argsort(t)]) <= 0)


def test_each_cluster_is_absorbed_by_its_own_nh(erosita):
    p, cat = erosita
    # expected detection-band counts per unit luminosity and exposure: direct folding at the cluster's N_H
    idx = np.flatnonzero((cat["T"] > 0.5) & (cat["T"] < 20))[:: 500]
    k = cat["counts_expected"][idx] / (cat["L_emit"][idx] * cat["exposure"][idx])
    direct = np.array([thermal_band_rates([1.0], [cat["T"][i]], [cat["z"][i]], [(0.2, 2.3)], nH_cm2=cat["nh"][i])[0, 0]
                       for i in idx])
    assert np.allclose(k, direct, rtol=3e-3), k / direct
    # higher N_H, fewer counts for the same cluster
    lo = thermal_band_rates([1.0], [2.0], [0.3], [(0.2, 2.3)], nH_cm2=1e20)[0, 0]
    hi = thermal_band_rates([1.0], [2.0], [0.3], [(0.2, 2.3)], nH_cm2=1e21)[0, 0]
    assert hi < 0.75 * lo
    # the efeds preset: one N_H and one background level
    e = tile_catalog(0, 2.0, resolve_parameters("efeds", sky="v1"), 123)
    assert np.all(e["nh"] == 3e20) and np.all(e["background_rel"] == 1.0)


def _candidates(p, cat, sel):
    rows = {c: cat[c][sel] for c in CHUNK_COLUMNS}
    return simulate_chunk(rows, p, 123)[0]


def test_selection_is_at_each_clusters_depth(erosita):
    """The same kind of halo passes more often, and down to lower masses, where the exposure is deeper."""
    p, cat = erosita
    z, logm, t = cat["z"], cat["log10_M500"], cat["exposure"]
    band = (z > 0.1) & (z < 0.5) & (logm > 13.5) & (logm < 14.3)
    deep, shallow = band & (t > 1500), band & (t < 250)
    assert deep.sum() > 25 and shallow.sum() > 25, (deep.sum(), shallow.sum())
    res_deep = _candidates(p, cat, deep)
    res_shallow = _candidates(p, cat, shallow)
    f_deep, f_shallow = res_deep["passed"].mean(), res_shallow["passed"].mean()
    assert f_deep > 0.5 and f_shallow < 0.5 * f_deep, (f_deep, f_shallow)
    assert np.min(logm[deep][res_deep["passed"]]) < np.min(logm[shallow][res_shallow["passed"]])


def test_detection_uses_each_clusters_background(erosita):
    """More background, same source photons: lower DET_LIKE; and the recorded level is what was simulated."""
    p, cat = erosita
    sel = np.flatnonzero((cat["counts_expected"] > 40) & (cat["counts_expected"] < 150))[:12]
    rows = {c: cat[c][sel] for c in CHUNK_COLUMNS}
    low = simulate_chunk(dict(rows, background_rel=np.full(sel.size, 0.5)), p, 7, keep_events=True)[0]
    high = simulate_chunk(dict(rows, background_rel=np.full(sel.size, 3.0)), p, 7, keep_events=True)[0]
    assert np.all(high["DET_LIKE"] <= low["DET_LIKE"] + 1e-9)
    assert np.mean(high["DET_LIKE"] < low["DET_LIKE"]) > 0.8
    # the catalogue's background column (counts / s / arcmin^2 per vignetted second) times the
    # exposure is the level the photons have: compare with the box's own count of map photons
    res, _, _ = simulate_chunk(rows, p, 7, keep_events=True)
    expected = cat["background"][sel] * cat["exposure"][sel] / 225.0  # per 4" pixel
    ratio = res["bkg_per_pixel"] / expected
    assert 0.95 < np.median(ratio) < 1.05, ratio
    assert np.all(np.abs(ratio - 1) < 0.25), ratio


def test_same_seed_same_mixed_depth_survey():
    a = make_survey(survey="erosita", area_deg2=2, random_state=4, verbose=False)
    b = make_survey(survey="erosita", area_deg2=2, random_state=4, verbose=False)
    c = make_survey(survey="erosita", area_deg2=2, random_state=5, verbose=False)
    assert len(a.y) > 3
    assert np.array_equal(a.y, b.y) and np.array_equal(a.X["exposure"], b.X["exposure"])
    for col in ("background", "nh", "exposure"):
        assert col in a.X and np.array_equal(np.asarray(a.catalog[col]), a.X[col])
    assert all(np.array_equal(x, y) for x, y in zip(a.X["events"], b.X["events"]))
    assert not np.array_equal(np.asarray(a.catalog["exposure"]), np.asarray(c.catalog["exposure"])[:len(a.y)]) \
        or len(a.y) != len(c.y)
    # every selected cluster passed the cuts at its own depth
    assert np.all(a.catalog["DET_LIKE"] > 5) and np.all(a.catalog["EXT_LIKE"] > 6)


def test_existing_presets_unchanged():
    """Fingerprints recorded with the code before the mixed-depth preset (commit d6f168e).

    eFEDS: the whole survey, photons included. eRASS1: the catalogue level
    (its photons changed on purpose: the diffuse background no longer
    subtracts the AGN between the eFEDS and eRASS1 point-source limits, see
    skcluster.datasets.background).
    """
    b = make_survey(survey="efeds", area_deg2=3, random_state=5, verbose=False, sky="v1")
    c = b.catalog
    assert len(c) == 18
    assert float(np.sum(b.y)) == pytest.approx(248.01590255782062, rel=1e-12)
    assert int(np.sum(c["counts"])) == 3075
    assert float(np.sum(c["ML_CTS"])) == pytest.approx(3837.3669563433264, rel=1e-9)
    assert int(sum(len(e) for e in b.X["events"])) == 95218
    assert np.all(b.X["nh"] == 3e20)
    for name, mu, t, agn in (("efeds", 17109.27053181771, 6377158.487378227, 4589.548775412137),
                             ("erass1", 1454.211415053071, 547101.4942642907, 394.2530141048821)):
        cat = tile_catalog(2, 10.0, resolve_parameters(name, sky="v1"), 99)
        assert cat["z"].size == 5089
        assert float(cat["counts_expected"].sum()) == pytest.approx(mu, rel=1e-12)
        assert float(cat["exposure"].sum()) == pytest.approx(t, rel=1e-12)
        assert float(cat["mu_agn_central"].sum()) == pytest.approx(agn, rel=1e-12)


def test_depth_balanced_survey_has_equal_selected_clusters_per_log_exposure_bin():
    from skcluster.datasets import make_depth_balanced_survey

    kw = dict(n_strata=3, random_state=5, verbose=False, exposure_min_s=100.0, exposure_max_s=2000.0)
    b = make_depth_balanced_survey(10, **kw)
    edges = np.geomspace(100.0, 2000.0, 4)
    np.testing.assert_allclose(b.strata, edges)
    stratum = np.asarray(b.catalog["stratum"])
    assert np.bincount(stratum).tolist() == [3, 3, 4]  # the deepest takes the remainder
    expo = np.asarray(b.X["exposure"])
    assert len(b.y) == len(expo) == len(b.catalog) == 10
    assert np.all((expo >= edges[stratum] * 0.999) & (expo <= edges[stratum + 1] * 1.001))
    # the shallow bin needs more sky for the same number of passing clusters
    assert b.area_deg2[0] > b.area_deg2[-1]
    again = make_depth_balanced_survey(10, **kw)
    np.testing.assert_array_equal(again.y, b.y)
    with pytest.raises(ValueError, match="log-uniform"):
        make_depth_balanced_survey(10, survey="efeds", verbose=False)
    with pytest.raises(ValueError, match="n_strata"):
        make_depth_balanced_survey(2, n_strata=3, verbose=False)
