"""The mock survey: API, bad input, determinism, parallel equality, files, plots.

Small surveys only (a few deg^2); the realism checks on a moderately sized
sample are in test_datasets_realism.py.
"""

import dataclasses

import numpy as np
import pytest
from scipy.special import pdtrc

from skcluster.datasets import (
    PRESETS,
    SurveyParameters,
    catalog_columns,
    iter_survey,
    make_survey,
    read_survey,
    resolve_parameters,
    write_survey,
)
from skcluster.datasets import background as bg
from skcluster.datasets import morphology as morph
from skcluster.datasets.detection import detection_likelihoods, unmasked_fractions
from skcluster.datasets.point_sources import POINT_SOURCE_DTYPE
from skcluster.datasets.survey import _rate_table, simulate_tile, survey_context, tile_catalog
from skcluster.io import EVENT_DTYPE
from skcluster.physics import thermal_band_rates

BRIEF_COLUMNS = ["M500", "z", "r500_kpc", "theta500_arcmin", "L_X", "T", "counts", "background_counts",
                 "exposure", "DET_LIKE", "EXT_LIKE", "cool_core", "n_agn", "L_X_ce", "ra", "dec", "flux",
                 "disturbed", "central_agn", "rc_r500", "beta"]


@pytest.fixture(scope="module")
def small():
    """A 6 deg^2 eFEDS-like survey (one partial tile)."""
    return make_survey(area_deg2=6, random_state=3, verbose=False)


# -- bad input ---------------------------------------------------------------
def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(TypeError, match="cool_core_frac.*did you mean 'cool_core_fraction'.*valid parameters"):
        make_survey(area_deg2=1, cool_core_frac=0.5, verbose=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(survey="erass9"), "unknown survey 'erass9'; presets are"),
        (dict(area_deg2=-3), "area_deg2 must be a positive"),
        (dict(area_deg2=float("nan")), "area_deg2 must be a positive"),
        (dict(area_deg2=1e6), "exceeds the"),
        (dict(n_clusters=0), "n_clusters must be a positive integer"),
        (dict(area_deg2=1, cool_core_fraction=1.5), r"cool_core_fraction=1.5 is above its valid range"),
        (dict(area_deg2=1, sigma_ln_lx=-0.1), r"sigma_ln_lx=-0.1 is below"),
        (dict(area_deg2=1, z_min=1.0, z_max=0.5), "z_min=1.0 must be below z_max=0.5"),
        (dict(area_deg2=1, min_icm_counts=2.5), "min_icm_counts=2.5 must be an integer"),
        (dict(area_deg2=1, energy_range_keV=(0.5, 7.0)), "det_band_keV=.* must lie within energy_range_keV"),
        (dict(area_deg2=1, size_arcmin=4.0), "det_radius_arcmin=3.0 must fit in the box"),
        (dict(area_deg2=1, sigma_ln_lx=0.2), "sigma_ln_lx=0.2 cannot be reached .* reachable total ln-scatter"),
        (dict(area_deg2=1, sigma_ln_lx=0.1), "cannot be smaller than the core-excised"),
        (dict(area_deg2=1, random_state=-1), "random_state must be a non-negative"),
    ],
)
def test_bad_input_gives_clear_errors(kwargs, match):
    kwargs.setdefault("verbose", False)
    with pytest.raises(ValueError, match=match):
        make_survey(**kwargs)


def test_n_clusters_type_error():
    with pytest.raises(TypeError, match="n_clusters must be a positive integer"):
        make_survey(n_clusters=2.5, verbose=False)


def test_area_that_cannot_supply_n_clusters():
    with pytest.raises(ValueError, match=r"supplies only \d+ clusters .* fewer than n_clusters=100000"):
        make_survey(n_clusters=100_000, area_deg2=2, random_state=0, verbose=False)


def test_presets_and_overrides():
    assert set(PRESETS) == {"efeds", "erass1", "erosita"}
    e = resolve_parameters("efeds", sky="v1")
    r = resolve_parameters("ERASS1", psf_scale=1.3)
    assert e == SurveyParameters()   # the dataclass's defaults: the efeds preset of the mock version v1
    assert resolve_parameters("efeds") == resolve_parameters("efeds", sky="v2") != e
    assert r.exposure_median_s < 0.2 * e.exposure_median_s and r.psf_scale == 1.3
    assert e.replace(include_agn=False).include_agn is False
    # frozen: parameters cannot be changed in place
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.cool_core_fraction = 0.9


# -- the returned survey -----------------------------------------------------
def test_survey_structure(small):
    X, y, cat, p = small.X, small.y, small.catalog, small.params
    n = len(y)
    assert n > 10 and len(X) == n == len(cat)
    assert set(X.columns) == {"events", "point_sources", "z", "exposure", "background", "nh", "ra", "dec"}
    physics = X.meta.pop("physics")  # the preset's physics: no prior, its functional forms
    assert X.meta == {"survey": "efeds", "size_arcmin": 20.0, "energy_range_keV": (0.2, 10.0)}
    X.meta["physics"] = physics
    assert physics["draws"] == [{}] and physics["forms"] == [
        {"profile_form": "beta", "psf_form": "king", "mass_function_model": "tinker08", "lx_break_msun": 0.0,
         "lx_curvature": 0.0}]
    assert y.dtype == np.float64 and np.array_equal(y, np.asarray(cat["log10_M500"]))
    assert 13.0 <= y.min() and y.max() <= 15.2
    for c in BRIEF_COLUMNS:
        assert c in cat.colnames, c
    assert set(catalog_columns()) >= set(cat.colnames)
    assert np.all(cat["DET_LIKE"] > 5) and np.all(cat["EXT_LIKE"] > 6)
    half = 30.0 * p.size_arcmin
    for ev in X["events"]:
        assert ev.dtype == EVENT_DTYPE
        assert np.all(np.abs(ev["x_arcsec"]) < half) and np.all(np.abs(ev["y_arcsec"]) < half)
        assert ev["energy_keV"].min() >= 0.2 and ev["energy_keV"].max() <= 10.0
        assert set(np.unique(ev["origin"])) <= {0, 1, 2}
    # the detected point sources: in the box, away from the cluster position,
    # as many as the catalogue says, mostly on AGN photons
    n_agn_cells = n_cells = 0
    for ev, src, k in zip(X["events"], X["point_sources"], cat["n_point_sources"]):
        assert src.dtype == POINT_SOURCE_DTYPE and len(src) == k
        assert np.all(np.abs(src["x_arcsec"]) < half) and np.all(np.abs(src["y_arcsec"]) < half)
        assert np.all(np.hypot(src["x_arcsec"], src["y_arcsec"]) >= 30.0)
        for s in src[src["counts"] > 30]:
            cell = np.hypot(ev["x_arcsec"] - s["x_arcsec"], ev["y_arcsec"] - s["y_arcsec"]) < 16.0
            n_cells += 1
            n_agn_cells += np.mean(ev["origin"][cell] == 2) > 0.5
    assert n_cells > 10 and n_agn_cells >= 0.9 * n_cells
    # the fit that masks the detected sources and the reference with the
    # simulation's own labels agree for most clusters
    ratio = np.asarray(cat["ML_CTS"]) / np.asarray(cat["ML_CTS_truthmask"])
    assert 0.85 < np.median(ratio) < 1.2
    # catalogue photon counts agree with the events
    i = int(np.argmax(cat["counts"]))
    ev = X["events"][i]
    band = (ev["energy_keV"] >= 0.2) & (ev["energy_keV"] < 2.3)
    assert cat["counts"][i] == np.sum(band & (ev["origin"] == 1))
    # truth: L_X = L_ce + L_core, and the central AGN flag matches its luminosity
    assert np.allclose(cat["L_X"], cat["L_X_ce"] + cat["L_X_core"])
    assert np.all((cat["L_agn_central"] > 0) == cat["central_agn"])


def test_same_seed_same_survey_and_other_seed_differs(small):
    again = make_survey(area_deg2=6, random_state=3, verbose=False)
    assert len(again.y) == len(small.y)
    for c in small.catalog.colnames:
        assert np.array_equal(np.asarray(again.catalog[c]), np.asarray(small.catalog[c])), c
    for a, b in zip(again.X["events"], small.X["events"]):
        assert np.array_equal(a, b)
    other = make_survey(area_deg2=6, random_state=4, verbose=False)
    assert len(other.y) != len(small.y) or not np.array_equal(other.y, small.y)


def test_parallel_equals_serial():
    """n_jobs=2 gives the same survey bit for bit (issue 9)."""
    serial = make_survey(area_deg2=12, random_state=5, verbose=False, n_jobs=1)
    parallel = make_survey(area_deg2=12, random_state=5, verbose=False, n_jobs=2)
    assert len(serial.y) == len(parallel.y) > 0
    for c in serial.catalog.colnames:
        assert np.array_equal(np.asarray(serial.catalog[c]), np.asarray(parallel.catalog[c]), equal_nan=True), c
    for a, b in zip(serial.X["events"], parallel.X["events"]):
        assert np.array_equal(a, b)


def test_n_clusters_is_the_first_passing_clusters_of_the_sky():
    """Asking for n clusters returns exactly the first n of the same sky, whatever the rounds."""
    by_area = make_survey(area_deg2=20, random_state=6, verbose=False)
    n = min(40, len(by_area.y) - 1)
    by_n = make_survey(n_clusters=n, random_state=6, verbose=False)
    assert len(by_n.y) == n
    assert np.array_equal(by_n.y, by_area.y[:n])
    assert np.array_equal(np.asarray(by_n.catalog["ML_CTS"]), np.asarray(by_area.catalog["ML_CTS"][:n]))
    assert 0 < by_n.area_deg2 <= 20
    both = make_survey(n_clusters=n, area_deg2=20, random_state=6, verbose=False)
    assert np.array_equal(both.y, by_n.y)
    # streaming: the pieces of iter_survey are the same survey
    pieces = list(iter_survey(n_clusters=n, random_state=6, verbose=False))
    assert np.array_equal(np.concatenate([b.y for b in pieces]), by_n.y)
    assert sum(b.area_deg2 for b in pieces) == pytest.approx(by_n.area_deg2)
    assert all(np.array_equal(a, b) for a, b in zip((e for b in pieces for e in b.X["events"]), by_n.X["events"]))


def test_iter_survey_draws_the_physics_as_make_survey_does():
    """physics= (here the held-out family of other forms): the pieces of iter_survey are make_survey's survey,
    drawn under the same physics, which each piece records."""
    whole = make_survey(n_clusters=10, random_state=4, physics="other", verbose=False)
    pieces = list(iter_survey(n_clusters=10, random_state=4, physics="other", verbose=False))
    assert whole.physics_draw and whole.params.profile_form == "vikhlinin"  # the other family's forms were used
    assert all(b.physics_draw == whole.physics_draw and b.params == whole.params for b in pieces)
    assert all(b.X.meta == whole.X.meta for b in pieces) and whole.X.meta["physics"]["forms"][0]["psf_form"] == "gaussian"
    assert np.array_equal(np.concatenate([b.y for b in pieces]), whole.y)
    for c in ("ML_CTS", "z", "exposure"):
        assert np.array_equal(np.concatenate([np.asarray(b.catalog[c]) for b in pieces]), np.asarray(whole.catalog[c]))
    assert all(np.array_equal(a, b) for a, b in zip((e for b in pieces for e in b.X["events"]), whole.X["events"]))
    # not the preset's physics, and overrides win over the draw as in make_survey
    assert not np.array_equal(make_survey(n_clusters=10, random_state=4, verbose=False).y, whole.y)
    first = next(iter_survey(n_clusters=10, random_state=4, physics="other", verbose=False, lx_slope=1.5))
    assert first.params.lx_slope == 1.5 and first.physics_draw == whole.physics_draw
    with pytest.raises(ValueError, match="physics must be None, 'marginalised', 'other' or a PhysicsPrior"):
        next(iter_survey(n_clusters=10, random_state=4, physics="wrong", verbose=False))


def test_preselection_drops_no_cluster_that_would_pass():
    """Simulating every halo (no pre-selection) gives exactly the same survey."""
    p = resolve_parameters()
    ctx = survey_context(p)
    kept_all, ev_all, st_all = simulate_tile(0, 4.0, p.replace(preselect_min_counts=0.0), 11, ctx)
    kept, ev, st = simulate_tile(0, 4.0, p, 11, ctx)
    assert st_all["n_candidates"] == st_all["n_halos"] > 5 * st["n_candidates"]
    assert st["n_passed"] == st_all["n_passed"] > 0
    assert np.array_equal(kept["index"], kept_all["index"])
    for (a, sa), (b, sb) in zip(ev, ev_all):  # events and detected point sources
        assert np.array_equal(a, b) and np.array_equal(sa, sb)
    # the reported bound is the Poisson tail sum over the dropped halos, and small
    cat = tile_catalog(0, 4.0, p, 11, ctx)
    mu = cat["counts_expected"][cat["counts_expected"] < p.preselect_min_counts]
    assert st["miss_bound"] == pytest.approx(pdtrc(p.min_icm_counts - 1, mu).sum())
    assert st["miss_bound"] < 1e-4


def test_preselect_bound_is_reported(small):
    assert 0 <= small.preselect_miss_bound < 1e-3
    assert small.catalog.meta["preselect_miss_bound"] == small.preselect_miss_bound
    assert small.n_halos > small.n_candidates > len(small.y)


# -- physics pieces ----------------------------------------------------------
def test_profile_fraction_inverse_and_sampling(rng):
    x = np.geomspace(1e-3, 1e3, 50)
    for cusp, beta in [(0.0, 0.67), (0.6, 0.8), (1.2, 0.55)]:
        f = morph.enclosed_fraction(x, cusp, beta)
        assert np.all(np.diff(f) > 0) and f[-1] < 1
        assert np.allclose(morph.radius_for_fraction(f, cusp, beta), x, rtol=1e-6)
    # beta model (cusp 0): I(x) = 1 - (1 + x^2)^(-3 beta + 3/2)
    assert morph.enclosed_fraction(2.0, 0.0, 2 / 3) == pytest.approx(1 - 5 ** -0.5)
    # drawn photons follow the circular-aperture fractions of the elliptical profile
    dx, dy = morph.sample_offsets(rng, 200_000, 10.0, 0.4, 0.7, 0.6, 0.3, 30.0)
    r = np.hypot(dx, dy)
    for rad in (5.0, 20.0, 80.0):
        want = morph.aperture_fraction(np.array([rad / 10.0]), 0.4, 0.7, 0.6, 30.0)[0]
        assert np.mean(r < rad) == pytest.approx(want, abs=0.004)


def test_agn_counts_follow_lehmer(rng):
    f = bg.sample_agn_fluxes(rng, 400_000, 1e-15, 1e-11)
    n0 = bg.lehmer_n_above(1e-15) - bg.lehmer_n_above(1e-11)
    for s in (3e-15, 1e-14, 3e-14, 1e-13):
        want = (bg.lehmer_n_above(s) - bg.lehmer_n_above(1e-11)) / n0
        assert np.mean(f > s) == pytest.approx(want, rel=0.03)
    assert bg.lehmer_n_above(1e-14) == pytest.approx(81.0)
    assert bg.agn_photon_index(1e-14) == pytest.approx(1.8)


def test_background_model_reproduces_measured_rates():
    m = bg.background_model(resolve_parameters(sky="v1"))   # v1's fit (v2's: tests/test_sky_calibration.py)
    assert np.allclose(m["fit_rates"], m["measured"], rtol=0.02)
    # particle level near the eFEDS ~4e-4 counts/s/arcmin^2/keV and falling above 2.3 keV
    assert 3e-4 < m["particle_norm"] < 6e-4 and m["particle_slope"] > 0
    doubled = bg.background_model(resolve_parameters(sky="v1", background_scale=2.0))
    assert doubled["rate_full"] == pytest.approx(2 * m["rate_full"])
    no_agn = bg.background_model(resolve_parameters(sky="v1", include_agn=False))
    assert no_agn["rate_det"] > m["rate_det"]  # the AGN flux returns to the diffuse part
    assert no_agn["map_det"] == pytest.approx(m["map_det"], rel=0.02)


def test_rate_table_matches_direct_folding():
    p = resolve_parameters()
    tab = _rate_table(p.nH_cm2, p.energy_range_keV, p.det_band_keV, p.z_max)
    kT = np.array([0.4, 1.3, 3.0, 7.7, 20.0])
    z = np.array([0.02, 0.3, 0.7, 1.1, 1.45])
    direct = thermal_band_rates(np.ones(5), kT, z, [p.energy_range_keV, p.det_band_keV])
    assert np.allclose(tab(kT, z), direct, rtol=2e-3)


def test_detection_proxies_behave():
    rng = np.random.default_rng(1)
    dens = 0.021 / 16.0  # counts per arcsec^2 (eFEDS-like, per 4" pixel -> per arcsec^2)
    r_det = 180.0

    def disc(n):
        return r_det * np.sqrt(rng.random(n))

    nb = rng.poisson(dens * np.pi * r_det**2)
    bkg_only = detection_likelihoods(disc(nb), dens, r_det, 8.64, 120.0)
    assert bkg_only["DET_LIKE"] < 5
    # a bright point source: detected, not extended
    from skcluster.physics.instrument import sample_king_offsets

    px, py = sample_king_offsets(rng, 200, 8.64)
    point = detection_likelihoods(np.concatenate([disc(nb), np.hypot(px, py)]), dens, r_det, 8.64, 120.0)
    assert point["DET_LIKE"] > 100 and point["EXT_LIKE"] < 3
    # an extended source of the same counts: detected and extended
    dx, dy = morph.sample_offsets(rng, 200, 30.0, 0.0, 2 / 3, 1.0, 0.0, 20.0)
    ex, ey = sample_king_offsets(rng, 200, 8.64)
    ext = detection_likelihoods(np.concatenate([disc(nb), np.hypot(dx + ex, dy + ey)]), dens, r_det, 8.64, 120.0)
    assert ext["DET_LIKE"] > 20 and ext["EXT_LIKE"] > 20
    assert 15 < ext["EXT_arcsec"] < 60
    assert ext["ML_CTS"] == pytest.approx(200, rel=0.3)


def test_detection_fit_with_masks_recovers_the_counts():
    """Masking discs (photons and model area together) leaves ML_CTS unbiased."""
    rng = np.random.default_rng(2)
    dens, r_det = 0.021 / 16.0, 180.0
    cx, cy, cr = np.array([60.0, -90.0, 0.0]), np.array([-40.0, 70.0, 150.0]), np.array([35.0, 50.0, 40.0])
    u = unmasked_fractions(cx, cy, cr, r_det)
    assert u.shape == (45,) and np.all((u >= 0) & (u <= 1)) and u[0] == 1.0
    # total masked area from the per-bin fractions equals the discs' area in the circle
    edges = np.r_[np.arange(0.0, r_det, 4.0), r_det]
    masked = np.sum((1 - u) * np.pi * np.diff(edges**2))
    assert masked == pytest.approx(np.pi * (35.0**2 + 50.0**2 + 40.0**2), rel=0.03)
    from skcluster.physics.instrument import sample_king_offsets

    fits, plain = [], []
    for _ in range(30):
        nb = rng.poisson(dens * np.pi * r_det**2)
        r, phi = r_det * np.sqrt(rng.random(nb)), rng.uniform(0, 2 * np.pi, nb)
        bx, by = r * np.cos(phi), r * np.sin(phi)
        sx, sy = morph.sample_offsets(rng, 300, 30.0, 0.0, 2 / 3, 1.0, 0.0, 20.0)
        ex, ey = sample_king_offsets(rng, sx.size, 8.64)
        x, y = np.r_[bx, sx + ex], np.r_[by, sy + ey]
        keep = np.ones(x.size, bool)
        for a, b, rr in zip(cx, cy, cr):
            keep &= np.hypot(x - a, y - b) >= rr
        rad = np.hypot(x[keep], y[keep])
        fits.append(detection_likelihoods(rad, dens, r_det, 8.64, 120.0, unmasked=u)["ML_CTS"])
        plain.append(detection_likelihoods(rad, dens, r_det, 8.64, 120.0)["ML_CTS"])
    # the masked fit recovers the 300 counts; ignoring the lost area does not
    assert np.mean(fits) == pytest.approx(300.0, rel=0.08)
    assert np.mean(plain) < 0.92 * np.mean(fits)
    with pytest.raises(ValueError, match="one value per radial bin"):
        detection_likelihoods(rad, dens, r_det, 8.64, 120.0, unmasked=u[:-1])


def test_colossus_global_cosmology_is_restored():
    from colossus.cosmology import cosmology as cc

    cc.setCosmology("planck18", persistence="")
    make_survey(area_deg2=0.5, random_state=0, verbose=False, H0=71.0)
    assert cc.getCurrent().name == "planck18"


# -- files and plots -----------------------------------------------------------
def test_write_and_read_back_through_the_real_data_path(small, tmp_path):
    folder = tmp_path / "survey"
    write_survey(small, folder)
    assert (folder / "catalog.fits").is_file() and len(list((folder / "events").glob("*.fits"))) == len(small.y)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_survey(small, folder)
    write_survey(small, folder, overwrite=True)
    back = read_survey(folder)
    assert np.array_equal(back.y, small.y)
    assert np.allclose(back.X["ra"], small.X["ra"]) and np.allclose(back.X["exposure"], small.X["exposure"])
    assert np.array_equal(back.X["background"], small.X["background"]) and np.array_equal(back.X["nh"], small.X["nh"])
    assert back.params == small.params
    # the record of the physics the clusters were simulated with comes back (a model trained on them keeps it)
    assert small.X.meta["physics"]["forms"] and back.X.meta["physics"] == small.X.meta["physics"]
    for a, b in zip(small.X["events"], back.X["events"]):
        assert len(a) == len(b)
        oa = np.lexsort((a["energy_keV"], a["y_arcsec"], a["x_arcsec"]))
        ob = np.lexsort((b["energy_keV"], b["y_arcsec"], b["x_arcsec"]))
        assert np.allclose(a["x_arcsec"][oa], b["x_arcsec"][ob], atol=1e-3)
        assert np.allclose(a["energy_keV"][oa], b["energy_keV"][ob], atol=1e-5)
        assert np.all(b["origin"] == 255)  # eSASS files carry no origin
    # the detected point sources come back around their own cluster
    assert (folder / "point_sources.fits").is_file()
    for a, b in zip(small.X["point_sources"], back.X["point_sources"]):
        assert a.dtype == b.dtype and len(a) == len(b)
        assert np.allclose(a["x_arcsec"], b["x_arcsec"], atol=1e-3)
        assert np.allclose(a["y_arcsec"], b["y_arcsec"], atol=1e-3)
        assert np.array_equal(a["counts"], b["counts"]) and np.array_equal(a["det_like"], b["det_like"])


def test_point_source_catalogue_around_clusters(tmp_path):
    from astropy.table import Table

    from skcluster.io import point_sources_around, read_point_sources
    from skcluster.io.sky import sin_offsets_to_radec

    ra0, dec0 = np.array([140.0, 141.0]), np.array([2.0, -1.0])
    r, d = sin_offsets_to_radec(np.array([100.0, -300.0, 900.0]), np.array([50.0, 20.0, 0.0]), ra0[0], dec0[0])
    cat = Table({"RA": r, "DEC": d, "ML_RATE_1": [0.01, 0.002, 0.05], "DET_LIKE_0": [30.0, 8.0, 100.0]})
    cat.write(tmp_path / "ps.fits")
    src = read_point_sources(tmp_path / "ps.fits")
    assert set(src) == {"ra", "dec", "rate", "det_like"}
    around = point_sources_around(src, ra0, dec0, 20.0, exposure=[1000.0, 500.0])
    # the third source is 900" away: beyond the 600" half-box plus the 120" margin
    assert len(around[0]) == 2 and len(around[1]) == 0
    assert np.allclose(around[0]["x_arcsec"], [100.0, -300.0], atol=1e-3)
    assert np.allclose(around[0]["counts"], [10.0, 2.0])
    with pytest.raises(ValueError, match="exposure"):
        point_sources_around(src, ra0, dec0, 20.0)
    bad = cat.copy()
    bad["ML_RATE_1"][1] = np.nan
    with pytest.raises(ValueError, match="ML_RATE_1"):
        read_point_sources(bad)
    with pytest.raises(KeyError, match="count-rate"):
        read_point_sources(Table({"RA": r, "DEC": d}))


def test_read_survey_of_a_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder written by write_survey"):
        read_survey(tmp_path)


def test_plot_cluster_bands(small, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from skcluster.plotting import plot_cluster_bands

    fig = plot_cluster_bands(small.X, indices=[0, 1], y=small.y)
    assert len(fig.axes) == 2 * 4
    total = sum(float(im.get_array().sum()) for ax in fig.axes[:4] for im in ax.get_images())
    ev = small.X["events"][0]
    assert total == np.sum((ev["energy_keV"] >= 0.2) & (ev["energy_keV"] < 7.0))
    fig.savefig(tmp_path / "bands.png")
    with pytest.raises(IndexError, match="out of range"):
        plot_cluster_bands(small.X, indices=[10_000])


def test_other_joblib_backends_give_the_same_survey():
    """The simulation goes through sklearn.utils.parallel: a threading or dask backend gives the same survey."""
    from joblib import parallel_config

    serial = make_survey(area_deg2=11, random_state=8, verbose=False)
    with parallel_config(backend="threading", n_jobs=2):
        threaded = make_survey(area_deg2=11, random_state=8, verbose=False)
    assert np.array_equal(threaded.y, serial.y)
    assert all(np.array_equal(a, b) for a, b in zip(threaded.X["events"], serial.X["events"]))
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        with parallel_config(backend="dask"):
            on_dask = make_survey(area_deg2=11, random_state=8, verbose=False)
    assert np.array_equal(on_dask.y, serial.y)
    assert all(np.array_equal(a, b) for a, b in zip(on_dask.X["events"], serial.X["events"]))


def test_enclosed_fraction_roundtrip_property():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(f=st.floats(1e-6, 1 - 1e-6), cusp=st.floats(0.0, 1.5), beta=st.floats(0.55, 1.0))
    def check(f, cusp, beta):
        x = morph.radius_for_fraction(f, cusp, beta)
        assert np.isfinite(x) and x > 0
        assert morph.enclosed_fraction(x, cusp, beta) == pytest.approx(f, rel=1e-7, abs=1e-12)

    check()


@pytest.mark.parametrize("model", ["tinker08", "despali16", "bocquet16"])
def test_expected_halo_density_matches_a_direct_integration_of_the_mass_function(model):
    """Halos per deg^2 (M500c > 1e14 Msun, z < 1): the package's grid against colossus's mass function (Tinker et
    al. 2008 by default, or the other forms of mass_function_model) integrated over astropy's comoving volume
    here, independently (a wrong sr <-> deg^2 or h factor, or a model not passed on, fails)."""
    from astropy.cosmology import FlatLambdaCDM
    from colossus.cosmology import cosmology as ccosmo
    from colossus.lss import mass_function

    from skcluster.datasets.parameters import resolve_parameters
    from skcluster.datasets.population import expected_halos_per_deg2

    p = resolve_parameters("efeds", mass_function_model=model)
    h = p.H0 / 100.0
    previous = ccosmo.current_cosmo
    ccosmo.setCosmology("skcluster-test", {"flat": True, "H0": p.H0, "Om0": p.Om0, "Ob0": p.Ob0,
                                           "sigma8": p.sigma8, "ns": p.ns}, persistence="")
    try:
        z_edges = np.linspace(p.z_min, 1.0, 100)
        logm = np.linspace(14.0, p.log10_m500_max, 120)
        volume = FlatLambdaCDM(H0=p.H0, Om0=p.Om0, Ob0=p.Ob0)
        total = 0.0
        for z0, z1 in zip(z_edges[:-1], z_edges[1:]):
            zc = 0.5 * (z0 + z1)
            dn = mass_function.massFunction(10**logm * h, zc, mdef="500c", model=model, q_out="dndlnM") * h**3
            per_deg2 = volume.differential_comoving_volume(zc).value * (np.pi / 180.0) ** 2
            total += np.trapezoid(dn, logm * np.log(10.0)) * per_deg2 * (z1 - z0)
    finally:
        if previous is not None:
            ccosmo.setCurrent(previous)
    assert expected_halos_per_deg2(p, log10_m_min=14.0, z_max=1.0) == pytest.approx(total, rel=0.01)
    if model != "tinker08":  # another form: the counts differ by more than the tolerance above
        tinker = expected_halos_per_deg2(resolve_parameters("efeds"), log10_m_min=14.0, z_max=1.0)
        assert abs(total / tinker - 1) > 0.03


def test_broken_lx_m_relation_is_continuous_and_steeper_below_the_break():
    from skcluster.datasets.parameters import resolve_parameters
    from skcluster.datasets.scaling import mean_log_lx

    plain = resolve_parameters("efeds")
    broken = resolve_parameters("efeds", lx_break_msun=1e14, lx_slope_below_break=2.5)
    m = np.array([13.0, 13.5, 14.0, 14.5, 15.0])
    a, b = mean_log_lx(m, 0.3, plain), mean_log_lx(m, 0.3, broken)
    np.testing.assert_allclose(b[2:], a[2:])  # at and above the break: unchanged
    np.testing.assert_allclose(np.diff(b[:3]), 2.5 * 0.5)  # below: the steeper slope
    np.testing.assert_allclose(a[:2] - b[:2], (2.5 - plain.lx_slope) * np.array([1.0, 0.5]))


def test_psf_forms_keep_the_half_energy_radius_with_their_own_wings():
    """The Gaussian form drops the King wings; the Gaussian-exponential one keeps wings between the two, and its
    photons follow its closed-form enclosed fraction."""
    from scipy import stats

    from skcluster.physics.instrument import (
        _gauss_exp_half_energy_over_sigma,
        gauss_exp_enclosed_fraction,
        king_half_energy_radius,
        sample_gauss_exp_psf_offsets,
        sample_gaussian_psf_offsets,
        sample_king_offsets,
    )

    rng = np.random.default_rng(0)
    g = np.hypot(*sample_gaussian_psf_offsets(rng, 200_000, 8.0, 1.5))
    ge = np.hypot(*sample_gauss_exp_psf_offsets(rng, 200_000, 8.0, 1.5))
    k = np.hypot(*sample_king_offsets(rng, 200_000, 8.0, 1.5))
    r_half = float(king_half_energy_radius(8.0, 1.5))
    for r in (g, ge, k):
        assert np.median(r) == pytest.approx(r_half, rel=0.02)
    assert np.percentile(g, 95) < 0.3 * np.percentile(k, 95)  # no King wings
    assert np.percentile(g, 95) < 0.8 * np.percentile(ge, 95) and np.percentile(ge, 95) < 0.5 * np.percentile(k, 95)
    sigma = r_half / _gauss_exp_half_energy_over_sigma()
    assert stats.kstest(ge[:20_000], lambda r: gauss_exp_enclosed_fraction(r, sigma)).pvalue > 0.01
    data = make_survey("efeds", area_deg2=3, random_state=0, verbose=False, psf_form="gaussian")
    assert data.params.psf_form == "gaussian" and len(data.y) > 0
