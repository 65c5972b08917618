"""skcluster.predict_catalog: the Python API behind ``skcluster predict``.

Clusters without data (no photons, off the images, unexposed) or outside the
model's redshift range get no mass (NaN) and a reason, while the rest of the
catalogue is predicted as if each cluster were alone; the command line gives
the same numbers; point-source catalogues are masked in images and events.
"""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table, vstack
from astropy.wcs import WCS
from conftest import known_response_masses, tiny_pipeline
from sklearn.pipeline import Pipeline

import skcluster
from skcluster import cli
from skcluster.predict import predict_catalog

RA0, DEC0 = 150.0, 2.0
PIX = 4.0  # arcsec, evtool's
N_IMG = 240  # 16 arcmin of 4" pixels
#: catalogue: two normal clusters, one in an empty patch, one off the images, one at z = 5
ROWS = [("a", 150.0, 2.0, 0.3), ("empty", 150.0, 2.075, 0.3), ("off", 160.0, 2.0, 0.3),
        ("far_z", 149.96, 1.97, 5.0), ("b", 150.04, 1.96, 0.2)]


def _fit_quiet(pipe, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipe.fit(X, y)


@pytest.fixture(scope="module")
def survey():
    from skcluster.datasets import make_survey

    return make_survey("efeds", n_clusters=40, random_state=0, verbose=False)


@pytest.fixture(scope="module")
def model(survey):
    """The standard pipeline (one broad band, 4 arcmin in 8 pixels, one tiny CNN); no DomainFlagger."""
    return _fit_quiet(tiny_pipeline(n_estimators=2), survey.X, survey.y)


@pytest.fixture(scope="module")
def flagged_model(survey):
    """The same with a DomainFlagger right after the binning (its training ranges are used)."""
    from skcluster.preprocessing import DomainFlagger

    pipe = tiny_pipeline()
    pipe = Pipeline([pipe.steps[0], ("domain", DomainFlagger())] + pipe.steps[1:])
    return _fit_quiet(pipe, survey.X, survey.y)


def _wcs(n=N_IMG):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [RA0, DEC0]
    w.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    w.wcs.cdelt = [-PIX / 3600.0, PIX / 3600.0]
    return w


def _blob(data, w, ra, dec, counts, sigma_pix, rng):
    x, y = w.all_world2pix([ra], [dec], 0)
    pos = rng.normal([x[0], y[0]], sigma_pix, size=(rng.poisson(counts), 2))
    np.add.at(data, (np.round(pos[:, 1]).astype(int).clip(0, N_IMG - 1),
                     np.round(pos[:, 0]).astype(int).clip(0, N_IMG - 1)), 1.0)


def _images(folder, point_source=None, empty=(150.0, 2.075)):
    """One broad-band counts image and exposure map: two clusters, an empty patch, maybe a point source."""
    rng = np.random.default_rng(1)
    w = _wcs()
    data = rng.poisson(0.05, (N_IMG, N_IMG)).astype(np.float32)
    for _, ra, dec, _z in (r for r in ROWS if r[0] in ("a", "b", "far_z")):
        _blob(data, w, ra, dec, 300, 8.0, rng)
    x, y = w.all_world2pix([empty[0]], [empty[1]], 0)
    data[int(y[0]) - 45:int(y[0]) + 45, int(x[0]) - 45:int(x[0]) + 45] = 0.0  # the box is 60 pixels
    if point_source is not None:
        _blob(data, w, *point_source, 500, 1.5, rng)
    img = folder / "img_0200_2300.fits"
    fits.PrimaryHDU(data, header=w.to_header()).writeto(img, overwrite=True)
    expo = folder / "expmap_0200_2300.fits"
    fits.PrimaryHDU(np.full((N_IMG, N_IMG), 1000.0, np.float32), header=w.to_header()).writeto(
        expo, overwrite=True)
    return [str(img)], [str(expo)]


def _catalog(rows=ROWS):
    return Table(rows=rows, names=("name", "RA", "DEC", "z"))


def _predict(model, cat, images, exposures, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return predict_catalog(model, cat, images=images, exposures=exposures, **kw)


def test_clusters_without_data_get_no_mass_and_a_reason_the_rest_as_alone(model, tmp_path):
    images, exposures = _images(tmp_path)
    cat = _catalog()
    with pytest.warns(skcluster.SkclusterWarning, match=r"3 of 5 cluster\(s\) have no mass") as rec:
        out = predict_catalog(model, cat, images=images, exposures=exposures)
    assert sum("have no mass" in str(r.message) for r in rec) == 1  # warned once
    assert list(out["name"]) == [r[0] for r in ROWS] and len(out) == len(cat)
    m, e = np.asarray(out["log10_M500"]), np.asarray(out["log10_M500_err"])
    assert list(out["in_domain"]) == [True, False, False, False, True]
    reason = list(out["domain_reason"])
    assert reason[0] == reason[4] == ""
    assert reason[1] == "no photons"
    assert reason[2] == "off the images"
    assert reason[3].startswith("z=5 outside the training range")
    assert np.all(np.isnan(m[1:4])) and np.all(np.isnan(e[1:4]))
    assert np.all(np.isfinite(m[[0, 4]])) and np.all(e[[0, 4]] > 0)
    # the others: the numbers they get when predicted alone
    for i in (0, 4):
        alone = _predict(model, cat[i:i + 1], images, exposures)
        np.testing.assert_allclose(alone["log10_M500"][0], m[i], atol=1e-5)
        np.testing.assert_allclose(alone["log10_M500_err"][0], e[i], atol=1e-5)
    # and those of the pipeline itself with the cut-out swapped in
    from skcluster.io import read_catalog
    from skcluster.preprocessing import ImageCutout

    pipe = Pipeline(list(model.steps))
    pipe.set_params(bin=ImageCutout(images=images, exposures=exposures, size_arcmin=4.0, npix=8,
                                    verbose=False))
    ref_m, ref_e = pipe.predict(read_catalog(cat[[0, 4]]), return_std=True)
    np.testing.assert_allclose(m[[0, 4]], ref_m, atol=1e-5)
    np.testing.assert_allclose(e[[0, 4]], ref_e, atol=1e-5)
    # the model is not modified; the metadata says how the domain was checked
    assert type(model.steps[0][1]).__name__ == "BandBinner"
    assert out.meta["NFLAGGED"] == 3 and out.meta["BANDS"] == "0.2-2.3 keV" and out.meta["NPIX"] == 8
    assert "hard cases only" in out.meta["DOMAIN"] and "no training ranges" in out.meta["DOMAIN"]
    assert list(out["cutout_complete"]) == [True, True, False, True, True]


def test_unexposed_cluster_and_batches(model, tmp_path):
    images, exposures = _images(tmp_path)
    with fits.open(exposures[0], mode="update") as h:  # no exposure around cluster b
        w = _wcs()
        x, y = w.all_world2pix([150.04], [1.96], 0)
        h[0].data[int(y[0]) - 45:int(y[0]) + 45, int(x[0]) - 45:int(x[0]) + 45] = 0.0
    cat = _catalog()
    out = _predict(model, cat, images, exposures)
    assert "no exposure" in out["domain_reason"][4] and np.isnan(out["log10_M500"][4])
    # batches of any size give the same table
    small = _predict(model, cat, images, exposures, batch_size=2)
    for c in ("log10_M500", "log10_M500_err", "in_domain", "domain_reason"):
        np.testing.assert_array_equal(np.asarray(small[c]), np.asarray(out[c]))


def test_every_cluster_off_the_images_is_an_error(model, tmp_path):
    images, exposures = _images(tmp_path)
    cat = _catalog([("x", 160.0, 2.0, 0.3), ("y", 330.0, -2.0, 0.3)])
    with pytest.raises(ValueError, match=r"all 2 catalogue position\(s\) lie wholly off the images.*"
                                         r"row 0: \(160.0, 2.0\), row 1: \(330.0, -2.0\)"):
        predict_catalog(model, cat, images=images, exposures=exposures)


def test_library_errors_name_the_parameters(model, tmp_path):
    images, exposures = _images(tmp_path)
    cat = _catalog()
    with pytest.raises(ValueError, match="no exposure: give exposure maps"):
        predict_catalog(model, cat, images=images)
    with pytest.raises(ValueError, match="images= .* or events="):
        predict_catalog(model, cat, exposure_seconds=10.0)
    with pytest.raises(FileNotFoundError, match="band image not found"):
        predict_catalog(model, cat, images=[str(tmp_path / "img_0200_2300_x.fits")], exposure_seconds=1.0)
    with pytest.raises(FileNotFoundError, match="catalogue not found"):
        predict_catalog(model, tmp_path / "none.csv", images=images, exposure_seconds=1.0)
    cat["log10_M500"] = 1.0
    with pytest.raises(ValueError, match="pass prefix= to name"):
        predict_catalog(model, cat, images=images, exposure_seconds=1.0)
    with pytest.raises(ValueError, match="bands= says the band images hold 0.5-2 keV, their file names say"):
        predict_catalog(model, _catalog(), images=images, exposure_seconds=1.0, bands=[(0.5, 2.0)])
    with pytest.raises(ValueError, match="not a fitted skcluster mass pipeline"):
        predict_catalog(Pipeline([("x", "passthrough")]), _catalog(), images=images, exposure_seconds=1.0)


def test_command_line_gives_the_same_table(model, tmp_path, monkeypatch, capsys):
    images, exposures = _images(tmp_path)
    path = tmp_path / "cat.csv"
    _catalog().write(path)
    monkeypatch.setattr(cli, "_load_model", lambda p: model)
    out = tmp_path / "out.ecsv"
    code = cli.main(["predict", "--model", "m.skc", "--catalog", str(path), "--images", *images,
                     "--exposure", *exposures, "--out", str(out), "--quiet"])
    assert code == cli.EXIT_OK
    captured = capsys.readouterr()
    warned = [ln for ln in captured.err.splitlines() if "have no mass" in ln]
    assert len(warned) == 1 and warned[0].startswith("skcluster: warning: 3 of 5 cluster(s) have no mass")
    assert "no mass (off the images)" in captured.out and "wrote 2 masses" in captured.out
    got = Table.read(out)
    ref = _predict(model, path, images, exposures)
    for c in ("log10_M500", "log10_M500_err", "in_domain", "cutout_coverage"):
        np.testing.assert_array_equal(np.asarray(got[c]), np.asarray(ref[c]))
    # (astropy reads an empty string of a text table back as a masked value)
    reason = got["domain_reason"]
    reason = reason.filled("") if hasattr(reason, "filled") else reason
    assert list(reason) == list(ref["domain_reason"])
    assert got.meta["DOMAIN"] == ref.meta["DOMAIN"]
    # the library's parameter names come out as the command's options
    code = cli.main(["predict", "--model", "m.skc", "--catalog", str(out), "--images", *images,
                     "--exposure", *exposures, "--out", str(tmp_path / "again.csv"), "--quiet"])
    assert code == cli.EXIT_INPUT
    assert "pass --prefix to name the new columns" in capsys.readouterr().err


def _sky_events(survey, rows, positions):
    """The mock clusters' events placed at sky positions (one table, as read from event lists)."""
    from skcluster.io.events import offsets_to_events_table

    return vstack([offsets_to_events_table(survey.X["events"][i], ra, dec)
                   for i, (ra, dec) in zip(rows, positions)])


def test_events_path_with_a_domain_flagger_model(flagged_model, survey):
    rows = [0, 1, 2]
    positions = [(10.0, 0.0), (12.0, 0.0), (14.0, 0.0)]
    events = _sky_events(survey, rows, positions)
    z = np.asarray(survey.X["z"])[rows].copy()
    cat = Table({"ra": [p[0] for p in positions] + [16.0], "dec": [0.0] * 4,
                 "z": np.append(z, 5.0),
                 "exposure": np.append(np.asarray(survey.X["exposure"])[rows], 900.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predict_catalog(flagged_model, cat, events=events, exposure_col="exposure",
                              pattern_types=None, flag_mask="none")
    assert "DomainFlagger" in out.meta["DOMAIN"]
    assert not out["in_domain"][3] and "no photons" in out["domain_reason"][3]
    assert "z=5 above" in out["domain_reason"][3]  # the flagger's own training range
    ok = np.asarray(out["in_domain"])[:3]
    assert ok.any()
    ref_m, ref_e = flagged_model.predict(survey.X[rows], return_std=True)
    m = np.asarray(out["log10_M500"])[:3]
    np.testing.assert_allclose(m[ok], ref_m[ok], atol=1e-5)
    assert np.all(np.isnan(m[~ok]))
    assert "cutout_complete" not in out.colnames  # no exposure maps: not known


def test_zero_photon_events_cluster_gets_no_mass(model, survey):
    events = _sky_events(survey, [0], [(10.0, 0.0)])
    cat = Table({"ra": [10.0, 20.0], "dec": [0.0, 0.0], "z": [0.3, 0.3]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predict_catalog(model, cat, events=events, exposure_seconds=1000.0, pattern_types=None,
                              flag_mask="none")
    assert list(out["in_domain"]) == [True, False] and out["domain_reason"][1] == "no photons"
    assert np.isfinite(out["log10_M500"][0]) and np.isnan(out["log10_M500"][1])


def test_mass_calibrated_model_gives_its_own_masses_and_says_so(model, survey):
    """A MassCalibratedRegressor around the pipeline (skcluster train's default): the same numbers as its
    predict, MASSPRIOR 'fixed-mass', and the model's own (uncalibrated) masses differ."""
    from sklearn.frozen import FrozenEstimator

    from skcluster.calibration import MassCalibratedRegressor

    # a one-epoch network barely reads the mass; on masses built so that its response is known,
    # the calibration must invert it
    y_cal = known_response_masses(model.predict(survey.X))
    cal = MassCalibratedRegressor(FrozenEstimator(model)).fit(survey.X, y_cal)
    np.testing.assert_allclose(cal.predict(survey.X), y_cal, atol=0.05)
    rows = [0, 1, 2]
    positions = [(10.0, 0.0), (12.0, 0.0), (14.0, 0.0)]
    cat = Table({"ra": [p[0] for p in positions], "dec": [0.0] * 3, "z": np.asarray(survey.X["z"])[rows],
                 "exposure": np.asarray(survey.X["exposure"])[rows]})
    kw = dict(events=_sky_events(survey, rows, positions), exposure_col="exposure", pattern_types=None,
              flag_mask="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predict_catalog(cal, cat, **kw)
        raw = predict_catalog(model, cat, **kw)
    assert out.meta["MASSPRIOR"] == "fixed-mass" and raw.meta["MASSPRIOR"] == "training"
    ref_m, ref_e = cal.predict(survey.X[rows], return_std=True)
    np.testing.assert_allclose(out["log10_M500"], ref_m, atol=1e-4)
    np.testing.assert_allclose(out["log10_M500_err"], ref_e, rtol=1e-4)
    assert not np.allclose(out["log10_M500"], raw["log10_M500"], atol=1e-3)
    with pytest.raises(ValueError, match="one shape"):
        cal.calibrate(ref_m, ref_e[:2], np.asarray(cat["z"]))


# ---------------------------------------------------------------------------
# point sources
# ---------------------------------------------------------------------------
def _ps_catalog(folder, ra, dec, rate):
    path = folder / "ps.fits"
    Table({"RA": [ra], "DEC": [dec], "ML_RATE_1": [rate], "DET_LIKE_0": [100.0]}).write(path, overwrite=True)
    return path


def test_point_sources_are_masked_in_cut_out_images(model, tmp_path):
    from skcluster.io import read_catalog, read_point_sources
    from skcluster.predict import _image_cutout, _ImagesPath
    from skcluster.preprocessing import PointSourceMasker
    from skcluster.workflow import MassModel

    src = (150.0 + 90 / 3600.0 / np.cos(np.radians(2.0)), 2.0)  # 1.5 arcmin from cluster a
    clean = _images(tmp_path)
    dirty_dir = tmp_path / "dirty"
    dirty_dir.mkdir()
    dirty = _images(dirty_dir, point_source=src)
    ps = _ps_catalog(tmp_path, *src, 0.5)  # 500 counts in 1000 s
    parts = MassModel(model)
    sample = read_catalog(_catalog()[[0]])

    def cube(files, sources):
        cut, _ = _image_cutout(files[0], files[1], None, "vignetted", None, parts)
        masker = PointSourceMasker(size_arcmin=parts.size_arcmin)
        got = _ImagesPath(cut, masker, sources, parts)(sample)
        return np.asarray(got["images"][0], dtype=np.float64), got

    c_clean, _ = cube(clean, None)
    c_dirty, _ = cube(dirty, None)
    c_masked, got = cube(dirty, read_point_sources(ps))
    assert c_dirty.sum() > c_clean.sum() + 400  # the source is in the box
    assert 0.02 < float(got["masked_fraction"][0]) < 0.3
    # masked and refilled: back to the clean image's counts within Poisson noise
    assert abs(c_masked.sum() - c_clean.sum()) < 5 * np.sqrt(c_clean.sum()) + 30
    # through predict_catalog: the masked prediction is recorded in the metadata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predict_catalog(model, _catalog()[[0]], images=dirty[0], exposures=dirty[1], point_sources=ps)
    assert out.meta["MASKED_PS"] is True and np.isfinite(out["log10_M500"][0])


def test_point_sources_are_masked_in_events_from_the_command_line(model, survey, tmp_path, monkeypatch,
                                                                  capsys):
    from skcluster.io import EVENT_DTYPE
    from skcluster.io.events import offsets_to_events_table

    # cluster 0's events plus a bright point source 1 arcmin from its centre
    rng = np.random.default_rng(3)
    ps_ev = np.zeros(3000, EVENT_DTYPE)
    ps_ev["x_arcsec"], ps_ev["y_arcsec"] = rng.normal(60.0, 3.0, 3000), rng.normal(0.0, 3.0, 3000)
    ps_ev["energy_keV"] = 1.0
    base = offsets_to_events_table(survey.X["events"][0], 10.0, 0.0)
    extra = offsets_to_events_table(ps_ev, 10.0, 0.0)
    for name, t in (("clean", base), ("dirty", vstack([base, extra]))):
        t["PAT_TYP"] = np.ones(len(t), np.int16)
        t["FLAG"] = np.zeros(len(t), np.int32)
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(t, name="EVENTS")]).writeto(tmp_path / f"{name}.fits")
    from skcluster.io.sky import sin_offsets_to_radec

    ra_s, dec_s = sin_offsets_to_radec(np.array([60.0]), np.array([0.0]), 10.0, 0.0)
    ps = _ps_catalog(tmp_path, float(ra_s[0]), float(dec_s[0]), 3.0)  # 3000 counts in 1000 s
    cat = tmp_path / "cat.csv"
    Table({"ra": [10.0], "dec": [0.0], "z": [float(survey.X["z"][0])]}).write(cat)
    monkeypatch.setattr(cli, "_load_model", lambda p: model)
    masses = {}
    for name, extra_args in (("clean", []), ("dirty", []), ("masked", ["--point-sources", str(ps)])):
        out = tmp_path / f"{name}.ecsv"
        events = tmp_path / ("clean.fits" if name == "clean" else "dirty.fits")
        assert cli.main(["predict", "--model", "m", "--catalog", str(cat), "--events", str(events),
                         "--exposure-seconds", "1000", "--out", str(out), "-q", *extra_args]) == cli.EXIT_OK
        masses[name] = float(Table.read(out)["log10_M500"][0])
        assert Table.read(out).meta["MASKED_PS"] is (name == "masked")
    capsys.readouterr()
    # masking takes the source's photons out (the masked input is the clean one refilled)
    assert masses["dirty"] != masses["clean"]
    assert abs(masses["masked"] - masses["clean"]) < abs(masses["dirty"] - masses["clean"])
    code = cli.main(["predict", "--model", "m", "--catalog", str(cat), "--events", str(tmp_path / "clean.fits"),
                     "--exposure-seconds", "1000", "--out", str(tmp_path / "x.csv"), "-q",
                     "--point-sources", str(tmp_path / "nope.fits")])
    assert code == cli.EXIT_INPUT and "point-source catalogue not found" in capsys.readouterr().err


def test_predict_catalog_is_a_lazy_top_level_name():
    assert skcluster.predict_catalog is predict_catalog
    assert "predict_catalog" in skcluster.__all__


def test_model_trained_with_point_sources_masked(survey, tmp_path):
    """A model whose first step is a PointSourceMasker masks the catalogue's sources itself."""
    pipe = tiny_pipeline(mask_point_sources=True)
    pipe = _fit_quiet(pipe, survey.X, survey.y)
    events = _sky_events(survey, [0], [(10.0, 0.0)])
    cat = Table({"ra": [10.0], "dec": [0.0], "z": [float(survey.X["z"][0])]})
    kw = dict(events=events, exposure_seconds=1000.0, pattern_types=None, flag_mask="none")
    with pytest.warns(UserWarning, match="trained with point sources masked"):
        plain = predict_catalog(pipe, cat, **kw)
    # no catalogue: nothing masked, as the pipeline with an empty source list
    from skcluster.io import POINT_SOURCE_DTYPE

    none = np.empty(1, dtype=object)
    none[0] = np.zeros(0, POINT_SOURCE_DTYPE)
    X = survey.X[[0]].assign(point_sources=none, exposure=np.array([1000.0]))
    np.testing.assert_allclose(plain["log10_M500"][0], pipe.predict(X)[0], atol=1e-5)
    # a bright source in the catalogue at the cluster's centre is masked: another input, another mass
    ps = _ps_catalog(tmp_path, 10.0, 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masked = predict_catalog(pipe, cat, point_sources=ps, **kw)
    assert masked.meta["MASKED_PS"] is True and np.isfinite(masked["log10_M500"][0])
    assert masked["log10_M500"][0] != plain["log10_M500"][0]


def test_model_with_a_radial_profile_predicts_from_cut_out_images(survey, tmp_path):
    """RadialProfile on real-image cut-outs: the box the model was trained on, or a clear refusal."""
    pipe = tiny_pipeline(profile=True, flag_domain=True)
    pipe = _fit_quiet(pipe, survey.X, survey.y)
    assert pipe.named_steps["profile"].box_arcmin_ == pytest.approx((4.0, 4.0))
    assert pipe.named_steps["profile"].radii_arcmin_ == [0.5, 1.0]   # the default radii inside the box
    images, exposures = _images(tmp_path)
    cat = _catalog()[[0, 4]]
    out = _predict(pipe, cat, images, exposures)
    assert np.all(np.isfinite(out["log10_M500"])) and list(out["in_domain"]) == [True, True]
    # the profile of the cut-out is finite, one value per annulus
    from skcluster.io import read_catalog
    from skcluster.preprocessing import ImageCutout

    cut = ImageCutout(images=images, exposures=exposures, size_arcmin=4.0, npix=8, verbose=False)
    C = cut.fit_transform(read_catalog(cat))
    prof = pipe.named_steps["profile"].transform(C)["profile"]
    assert prof.shape == (2, 3) and np.all(np.isfinite(prof))
    wider = ImageCutout(images=images, exposures=exposures, size_arcmin=6.0, npix=8, verbose=False)
    with pytest.raises(ValueError, match="fitted on boxes of 4 x 4 arcmin"):
        pipe.named_steps["profile"].transform(wider.fit_transform(read_catalog(cat)))


def test_a_cluster_whose_observables_measured_no_background_gets_no_mass_and_a_reason():
    """The observables step's background enters the network as a log: none measured is flagged, not an error."""
    from types import SimpleNamespace

    from skcluster.predict import _reasons
    from skcluster.sample import ClusterSample

    cube = ClusterSample(images=np.ones((3, 1, 4, 4), np.float32), z=np.full(3, 0.3), exposure=np.full(3, 100.0),
                         bkg_arcmin2=np.array([0.0, 2.0, np.nan]))
    with_obs = _reasons(cube, SimpleNamespace(observables=object(), flagger=None), None)
    assert with_obs == [["no background photons in the box's outer annulus"], [],
                        ["no background photons in the box's outer annulus"]]
    assert _reasons(cube, SimpleNamespace(observables=None, flagger=None), None) == [[], [], []]


def test_model_with_per_cluster_nh_reads_it_from_the_catalogue(model, survey):
    """make_mass_pipeline(nh_column=...): each cluster's N_H comes from a catalogue column or one value."""
    from skcluster.models import make_mass_pipeline

    with pytest.raises(ValueError, match="observables=True"):  # N_H only converts the observables' L_X
        make_mass_pipeline(nh_column="nh")
    nh = np.resize([1e20, 3e20, 1e21], len(survey.y))  # cm^-2
    X = survey.X.assign(nh=nh)
    pipe = make_mass_pipeline(bands="broad", size_arcmin=10.0, npix=10, n_estimators=1, max_epochs=1,
                              channels=(2,), dense=(4,), random_state=0, observables=True, nh_column="nh",
                              extra_scalars=("nh",), mask_point_sources=False)
    nh_model = _fit_quiet(pipe, X, survey.y)
    rows = [0, 1, 2]
    positions = [(10.0, 0.0), (12.0, 0.0), (14.0, 0.0)]
    cat = Table({"ra": [p[0] for p in positions], "dec": [0.0] * 3, "z": np.asarray(survey.X["z"])[rows],
                 "exposure": np.asarray(survey.X["exposure"])[rows], "NH": nh[rows]})
    kw = dict(events=_sky_events(survey, rows, positions), exposure_col="exposure", pattern_types=None,
              flag_mask="none")

    def masses(m, table, **more):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(predict_catalog(m, table, **kw, **more)["log10_M500"])

    ref = nh_model.predict(X[rows])
    np.testing.assert_allclose(masses(nh_model, cat), ref, atol=1e-5)  # "NH" found, case-insensitively
    # one value for every cluster is the same as a column holding it, and differs where N_H does
    flat = cat.copy()
    flat["NH"] = 3e20
    one = masses(nh_model, cat, nh_cm2=3e20)
    np.testing.assert_allclose(one, masses(nh_model, flat), atol=1e-6)
    assert one[1] == pytest.approx(ref[1], abs=1e-5)
    # where N_H differs the mass moves beyond the rounding of the catalogue path (at equal N_H): the size of the
    # move is the one-epoch network's, not a physical one
    assert abs(one[2] - ref[2]) > max(10 * abs(one[1] - ref[1]), 1e-5)
    cat.rename_column("NH", "gal_nh")
    np.testing.assert_allclose(masses(nh_model, cat, nh_col="gal_nh"), ref, atol=1e-5)
    with pytest.raises(KeyError, match=r"Galactic N_H.*nh_col=.*nh_cm2="):
        masses(nh_model, cat)
    cat["gal_nh"][1] = 3e17
    with pytest.raises(ValueError, match=r"N_H \('gal_nh'\).*row 1: 3e\+17"):
        masses(nh_model, cat, nh_col="gal_nh")
    with pytest.raises(ValueError, match="one way"):
        masses(nh_model, cat, nh_col="gal_nh", nh_cm2=3e20)
    # a model that assumes one N_H says the given one is not used
    with pytest.warns(UserWarning, match="N_H given is not used"):
        predict_catalog(model, cat, nh_cm2=1e21, **kw)


def test_nan_or_negative_pixels_are_named_as_such_not_as_no_photons():
    from types import SimpleNamespace

    from skcluster import ClusterSample
    from skcluster.predict import _reasons

    images = np.ones((4, 1, 2, 2), np.float32)
    images[0, 0, 0, 0] = np.nan
    images[1, 0, 1, 1] = -3.0
    images[2] = 0.0
    cube = ClusterSample(images=images, z=np.full(4, 0.3), exposure=np.full(4, 1000.0))
    reasons = _reasons(cube, SimpleNamespace(observables=None, flagger=None), None)
    assert reasons == [["non-finite (NaN or infinite) pixel values"], ["negative pixel values"], ["no photons"], []]


def test_repeated_catalogue_rows_are_predicted_with_a_warning(model, survey):
    events = _sky_events(survey, [0], [(10.0, 0.0)])
    cat = Table({"ra": [10.0, 10.0, 20.0, 10.0], "dec": [0.0] * 4, "z": [0.3, 0.3, 0.3, 0.4]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = predict_catalog(model, cat, events=events, exposure_seconds=1000.0, pattern_types=None,
                              flag_mask="none")
    repeated = [str(w.message) for w in caught if "repeat" in str(w.message)]
    assert repeated == ["1 catalogue row(s) repeat an earlier row's ra, dec and z (first of each: row 0): "
                        "each is predicted again"]
    assert out["log10_M500"][0] == out["log10_M500"][1]
