"""Training sets from a user's own simulation: any catalogue, any event files."""

import functools

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from sklearn.utils import Bunch

from skcluster.datasets import make_survey, read_survey, write_survey
from skcluster.exceptions import SkclusterWarning
from skcluster.io import offsets_to_events_table
from skcluster.workflow import read_training_set


@pytest.fixture(scope="module")
def survey():
    return make_survey(n_clusters=12, random_state=5, verbose=False)


def _positions(n):
    """Far-apart sky positions (1 deg), so that the boxes do not overlap."""
    return 150.0 + np.arange(n) * 1.0, np.linspace(-5.0, 5.0, n)


def _write_plain_events(path, tables):
    """A minimal event writer of the test's own: RA, DEC, PI only, one file."""
    ra = np.concatenate([t["RA"] for t in tables])
    dec = np.concatenate([t["DEC"] for t in tables])
    pi = np.concatenate([t["PI"] for t in tables])
    cols = [fits.Column("RA", "D", array=ra, unit="deg"), fits.Column("DEC", "D", array=dec, unit="deg"),
            fits.Column("PI", "E", array=pi, unit="eV")]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)


def test_own_catalogue_and_merged_event_files_read_like_the_survey_folder(survey, tmp_path):
    n = len(survey.y)
    ra, dec = _positions(n)
    # far apart: no box sees another's photons
    survey.X["ra"][:], survey.X["dec"][:] = ra, dec
    survey.catalog["ra"][:], survey.catalog["dec"][:] = ra, dec
    folder = tmp_path / "mock"
    write_survey(survey, folder)
    ref = read_survey(folder)
    # the same clusters, as another simulation would hand them over: other
    # column names, masses in Msun, events of many clusters in two files
    tables = [offsets_to_events_table(survey.X["events"][i], ra[i], dec[i]) for i in range(n)]
    _write_plain_events(tmp_path / "sky_a.fits", tables[: n // 2])
    _write_plain_events(tmp_path / "sky_b.fits", tables[n // 2:])
    cat = Table({"RA_DEG": ra, "DEC_DEG": dec, "REDSHIFT": survey.X["z"],
                 "M500_TRUE": 10.0 ** survey.y, "TEXP": survey.X["exposure"]})
    cat.write(tmp_path / "truth.fits")
    got = read_training_set(tmp_path / "truth.fits", [tmp_path / "sky_a.fits", tmp_path / "sky_b.fits"],
                            mass_col="M500_TRUE", ra="RA_DEG", dec="DEC_DEG", z="REDSHIFT",
                            exposure_col="TEXP", pattern_types=None, flag_mask=None)
    assert np.allclose(got.y, ref.y)
    assert np.allclose(got.X["exposure"], ref.X["exposure"]) and np.allclose(got.X["z"], ref.X["z"])
    for a, b in zip(got.X["events"], ref.X["events"]):
        assert len(a) == len(b)
        oa = np.lexsort((a["energy_keV"], a["y_arcsec"], a["x_arcsec"]))
        ob = np.lexsort((b["energy_keV"], b["y_arcsec"], b["x_arcsec"]))
        assert np.allclose(a["x_arcsec"][oa], b["x_arcsec"][ob], atol=1e-3)
        assert np.allclose(a["energy_keV"][oa], b["energy_keV"][ob], atol=1e-4)


def test_mass_units_and_missing_data_are_explained(survey, tmp_path):
    n = len(survey.y)
    ra, dec = _positions(n)
    tables = [offsets_to_events_table(survey.X["events"][i], ra[i], dec[i]) for i in range(n - 1)]
    _write_plain_events(tmp_path / "sky.fits", tables)  # the last cluster has no events
    base = {"ra": ra, "dec": dec, "z": survey.X["z"], "exposure": survey.X["exposure"]}
    for unit, values in (("log10Msun", survey.y), ("Msun", 10.0 ** survey.y), ("1e14Msun", 10.0 ** (survey.y - 14))):
        cat = Table({**base, "M500": values})
        got = read_training_set(cat, tmp_path / "sky.fits", mass_unit=unit, pattern_types=None,
                                flag_mask=None, allow_empty=True)
        assert np.allclose(got.y, survey.y)
        assert len(got.X["events"][-1]) == 0
    with pytest.raises(ValueError, match="no event in any"):
        read_training_set(Table({**base, "M500": survey.y}), tmp_path / "sky.fits", pattern_types=None,
                          flag_mask=None)
    with pytest.raises(ValueError, match="cannot tell the unit"):
        read_training_set(Table({**base, "M500": 10.0 ** (survey.y - 14)}), tmp_path / "sky.fits",
                          pattern_types=None, flag_mask=None, allow_empty=True)
    with pytest.raises(KeyError, match="true-mass"):
        read_training_set(Table(base), tmp_path / "sky.fits")
    with pytest.raises(ValueError, match="no exposure: give exposure maps .*exposure_seconds="):
        read_training_set(Table({k: v for k, v in base.items() if k != "exposure"} | {"M500": survey.y}),
                          tmp_path / "sky.fits")
    with pytest.raises(Exception, match="PAT_TYP"):  # the file has no pattern column: say how to skip
        read_training_set(Table({**base, "M500": survey.y}), tmp_path / "sky.fits", allow_empty=True)


# ---------------------------------------------------------------------------
# skcluster train --catalog: one command from files the package did not write
# ---------------------------------------------------------------------------
# tiny networks, one seed: the same sample gives the same model (the flat prior: a two-epoch network
# is too weak for the default fixed-mass calibration, and every cluster trains)
# point sources kept: the folder's detected list would be masked, and the own files below have none
_TINY = ["--bands", "ho3", "--n-estimators", "1", "--max-epochs", "2", "--channels", "4,8", "--dense", "8",
         "--npix", "25", "--seed", "3", "--prior", "flat", "--keep-point-sources", "-q"]


def _predict(path, X):
    from skcluster import persist

    model = persist.load(path)
    assert model.mass_prior_ == "flat"  # as asked (--prior flat)
    pipe = model.estimator_.estimator  # PriorCorrectedRegressor(FrozenEstimator(pipeline))
    assert type(pipe.steps[0][1]).__name__ == "BandBinner"  # predicts from event lists and images alike
    return model.predict(X, return_std=True)


def _binned(X, npix=25):
    from skcluster.preprocessing import BandBinner

    return BandBinner(bands="ho3", size_arcmin=20.0, npix=npix, verbose=False).fit_transform(X)["images"]


@pytest.mark.usefixtures("one_torch_thread")
def test_train_command_on_own_catalogue_and_event_files_equals_train_from_the_survey_folder(
        survey, tmp_path, capsys):
    from skcluster.cli import EXIT_INPUT, EXIT_OK, main

    n = len(survey.y)
    ra, dec = _positions(n)
    survey.X["ra"][:], survey.X["dec"][:] = ra, dec
    survey.catalog["ra"][:], survey.catalog["dec"][:] = ra, dec
    write_survey(survey, tmp_path / "mock")
    # the same clusters as another simulation hands them over: an ECSV truth
    # catalogue with its own column names and masses in 1e14 Msun, most of the
    # clusters' photons in one event file, the rest in another
    own = tmp_path / "sixte_run"
    own.mkdir()
    tables = [offsets_to_events_table(survey.X["events"][i], ra[i], dec[i]) for i in range(n)]
    _write_plain_events(own / "lightcone_evt_all.fits", tables[:-3])
    _write_plain_events(own / "lightcone_evt_extra.fits", tables[-3:])
    Table({"RAJ2000": ra, "DEJ2000": dec, "z_cosmo": survey.X["z"], "M500c_1e14": 10.0 ** (survey.y - 14.0),
           "T_EXP": survey.X["exposure"]}).write(own / "halos.ecsv")

    # the two readers give the same sample: equal cubes, redshifts, exposures, masses
    ref = read_survey(tmp_path / "mock")
    got = read_training_set(own / "halos.ecsv", sorted(own.glob("*.fits")), mass_col="M500c_1e14",
                            mass_unit="1e14Msun", z="z_cosmo", exposure_col="T_EXP",
                            pattern_types=None, flag_mask=None)
    assert sum(len(e) for e in got.X["events"]) > 1000
    np.testing.assert_array_equal(_binned(got.X), _binned(ref.X))
    np.testing.assert_array_equal(got.X["z"], ref.X["z"])
    np.testing.assert_array_equal(got.X["exposure"], ref.X["exposure"])
    np.testing.assert_allclose(got.y, ref.y, rtol=0, atol=1e-12)

    # one command each; the same seed gives the same trained predictions
    a, b = tmp_path / "from_folder.skc", tmp_path / "from_own_files.skc"
    assert main(["train", "--data", str(tmp_path / "mock"), *_TINY, "--out", str(a)]) == EXIT_OK
    assert main(["train", "--catalog", str(own / "halos.ecsv"), "--events",
                 *map(str, sorted(own.glob("*.fits"))), "--mass-col", "M500c_1e14", "--mass-unit", "1e14Msun",
                 "--z-col", "z_cosmo", "--exposure-col", "T_EXP", "--pattern-types", "all",
                 "--flag-mask", "none", *_TINY, "--out", str(b)]) == EXIT_OK
    assert f"{n} clusters of " in capsys.readouterr().out
    mean_a, std_a = _predict(a, ref.X)
    mean_b, std_b = _predict(b, ref.X)
    assert np.all(np.isfinite(mean_a)) and np.ptp(mean_a) > 0
    np.testing.assert_allclose(mean_b, mean_a, rtol=0, atol=1e-5)
    np.testing.assert_allclose(std_b, std_a, rtol=0, atol=1e-5)
    # the default (fixed-mass) prior holds a share out of training to calibrate on: 12 clusters give 4,
    # too few, so the model trains on all 12 and carries the flat prior, and says why; asked for, an error
    default_prior = [v for v in _TINY if v not in ("--prior", "flat")]
    c = tmp_path / "default_prior.skc"
    assert main(["train", "--data", str(tmp_path / "mock"), *default_prior, "--out", str(c)]) == EXIT_OK
    err = capsys.readouterr().err
    assert "12 clusters with --calibration-fraction 0.3 give 4" in err and "'flat' prior instead" in err
    np.testing.assert_allclose(_predict(c, ref.X)[0], mean_a, rtol=0, atol=1e-5)
    assert main(["train", "--data", str(tmp_path / "mock"), *default_prior, "--prior", "fixed-mass",
                 "--out", str(tmp_path / "x.skc")]) == EXIT_INPUT
    assert "needs at least 12 calibration clusters" in capsys.readouterr().err
    assert not (tmp_path / "x.skc").exists()
    # --calibration-fraction 0.95 holds out all 12, none left to train on: refused as well
    assert main(["train", "--data", str(tmp_path / "mock"), *default_prior, "--prior", "fixed-mass",
                 "--calibration-fraction", "0.95", "--out", str(tmp_path / "x.skc")]) == EXIT_INPUT
    assert "give 12" in capsys.readouterr().err


def test_train_command_explains_wrong_sources(survey, tmp_path, capsys):
    from skcluster.cli import EXIT_INPUT, main

    out = str(tmp_path / "m.skc")
    n = len(survey.y)
    ra, dec = _positions(n)
    tables = [offsets_to_events_table(survey.X["events"][i], ra[i], dec[i]) for i in range(n)]
    _write_plain_events(tmp_path / "sky.fits", tables)
    Table({"ra": ra, "dec": dec, "z": survey.X["z"], "M500": 10.0 ** survey.y}).write(tmp_path / "t.fits")
    Table({"lon": ra, "dec": dec, "z": survey.X["z"], "M500": 10.0 ** survey.y}).write(tmp_path / "t2.fits")
    cases = [
        (["--events", str(tmp_path / "sky.fits")], "give its truth catalogue with --catalog"),
        (["--catalog", str(tmp_path / "t.fits")], "--catalog needs the simulation's photons"),
        (["--catalog", str(tmp_path / "t.fits"), "--events", str(tmp_path / "nothere.fits")],
         "event file not found"),
        (["--catalog", str(tmp_path / "t.fits"), "--events", str(tmp_path / "sky.fits"), "--exposure-seconds",
          "1000"], "no PAT_TYP column"),
        (["--catalog", str(tmp_path / "t.fits"), "--events", str(tmp_path / "sky.fits"), "--pattern-types",
          "all", "--flag-mask", "none"], "no exposure: give exposure maps (--exposure), --exposure-seconds"),
        (["--catalog", str(tmp_path / "t.fits"), "--events", str(tmp_path / "sky.fits"), "--exposure-seconds",
          "1000", "--pattern-types", "all", "--flag-mask", "none", "--mass-col", "M200"], "M200"),
        (["--catalog", str(tmp_path / "t2.fits"), "--events", str(tmp_path / "sky.fits"), "--exposure-seconds",
          "1000", "--pattern-types", "all", "--flag-mask", "none", "--mass-unit", "Msun"],
         "name it with --ra-col"),
    ]
    for extra, match in cases:
        assert main(["train", *extra, "--out", out, "-q"]) == EXIT_INPUT, extra
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as exc:  # one source only
        main(["train", "--data", str(tmp_path), "--catalog", str(tmp_path / "t.fits"), "--out", out])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--survey", "erass1", "--data", str(tmp_path), "--out", out])
    assert not (tmp_path / "m.skc").exists()


# ---------------------------------------------------------------------------
# band images with exposure maps
# ---------------------------------------------------------------------------
_PIX = 4.0       # arcsec, evtool's pixel
_NIMG = 900      # image side, pixels (60 arcmin)
_RA0, _DEC0 = 35.0, 1.0


def _wcs():
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [_RA0, _DEC0]
    w.wcs.crpix = [_NIMG / 2 + 0.5, _NIMG / 2 + 0.5]  # 0-based 449.5: a pixel corner
    w.wcs.cdelt = [-_PIX / 3600.0, _PIX / 3600.0]
    return w


@pytest.fixture(scope="module")
def image_field(tmp_path_factory):
    """Nine clusters on one pair of band images: events, images, maps, catalogue.

    The clusters sit on pixel corners of the images, so that the cut-outs are
    aligned with the binned event boxes, and each photon lies at least 0.6
    arcsec from a pixel edge of its cluster's box, so that the small
    difference between the cluster's and the image's SIN projection moves
    none across a pixel edge. The exposure map differs from cluster to cluster.
    """
    from skcluster.io import make_events

    tmp = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(2)
    w = _wcs()
    corners = np.array([[x, y] for x in (299.5, 449.5, 599.5) for y in (299.5, 449.5, 599.5)])
    ra, dec = w.all_pix2world(corners[:, 0], corners[:, 1], 0)
    n = len(ra)
    log_m = rng.uniform(13.5, 14.8, n)
    z = rng.uniform(0.1, 0.6, n)
    tables = []
    for i in range(n):
        k_cl = int(40 * 10 ** (1.5 * (log_m[i] - 13.5)))  # more photons for more massive clusters
        cl = rng.normal(0.0, 60.0, (k_cl, 2))
        bg = rng.uniform(-600.0, 600.0, (400, 2))
        xy = np.concatenate([cl, bg])
        xy = xy[np.all(np.abs(xy) < 599.0, axis=1)]
        cell = np.floor(xy / _PIX)
        xy = (cell + rng.uniform(0.15, 0.85, xy.shape)) * _PIX  # off the pixel edges
        pi = rng.integers(300, 7000, len(xy)) + 0.5  # eV, off the band edges
        ev = make_events(xy[:, 0], xy[:, 1], pi / 1000.0)
        tables.append(offsets_to_events_table(ev, ra[i], dec[i]))
    _write_plain_events(tmp / "all_photons.fits", tables)
    allev = {k: np.concatenate([t[k] for t in tables]) for k in ("RA", "DEC", "PI")}
    px, py = w.all_world2pix(allev["RA"], allev["DEC"], 0)
    ix, iy = np.floor(px + 0.5).astype(int), np.floor(py + 0.5).astype(int)
    header = w.to_header()
    images, maps = [], []
    expo = np.full((_NIMG, _NIMG), 800.0, np.float32)
    expo[:, :375] = 1500.0   # deeper to the east (low x), as a scan pattern would
    expo[:375] *= 0.5
    for lo, hi in ((500, 1200), (1200, 2000), (2000, 7000)):
        sel = (allev["PI"] >= lo) & (allev["PI"] < hi)
        img = np.zeros((_NIMG, _NIMG), np.int32)
        np.add.at(img, (iy[sel], ix[sel]), 1)
        images.append(tmp / f"sim_sky_{lo:04d}_{hi:04d}_counts.fits")
        fits.writeto(images[-1], img, header)
        maps.append(tmp / f"sim_sky_{lo:04d}_{hi:04d}_expo.fits")
        fits.writeto(maps[-1], expo, header)
    Table({"RA": ra, "DEC": dec, "Z_SPEC": z, "logM500": log_m}).write(tmp / "truth.fits")
    return Bunch(folder=tmp, events=tmp / "all_photons.fits", images=images, maps=maps,
                 catalog=tmp / "truth.fits", y=log_m)


def test_band_images_with_exposure_maps_read_like_the_event_files(image_field):
    f = image_field
    from_events = read_training_set(f.catalog, f.events, exposures=f.maps, mass_col="logM500",
                                    pattern_types=None, flag_mask=None)
    # images given in another order than the bands: put in the order asked for
    from_images = read_training_set(f.catalog, images=f.images[::-1], exposures=f.maps[::-1],
                                    mass_col="logM500", bands="ho3", npix=25)
    with pytest.warns(FutureWarning, match=r"bands_keV=\.\.\.\) is renamed bands="):  # the old name still works
        old_name = read_training_set(f.catalog, images=f.images, exposures=f.maps, mass_col="logM500",
                                     bands_keV="ho3", npix=25)
    np.testing.assert_array_equal(old_name.X["images"], from_images.X["images"])
    X = from_images.X
    assert X["images"].dtype == np.float32 and X["images"].shape == (9, 3, 25, 25)
    assert X["images"].sum() > 2000
    np.testing.assert_array_equal(X["images"], _binned(from_events.X))
    np.testing.assert_allclose(X.meta["bands_keV"], [(0.5, 1.2), (1.2, 2.0), (2.0, 7.0)])
    assert X.meta["pixel_arcsec"] == pytest.approx(48.0) and X.meta["size_arcmin"] == pytest.approx(20.0)
    # each cluster's exposure from the maps, the same through both paths
    assert sorted(set(np.round(X["exposure"], 3))) == [400.0, 750.0, 800.0, 1500.0]
    np.testing.assert_array_equal(X["exposure"], from_events.X["exposure"])
    assert X["complete"].all() and np.all(X["coverage"] == 1.0)
    np.testing.assert_array_equal(from_events.X["complete"], X["complete"])
    np.testing.assert_array_equal(X["z"], from_events.X["z"])
    np.testing.assert_array_equal(from_images.y, f.y)


@pytest.mark.filterwarnings("ignore:ImageCutout.*unexposed pixels")  # the zeroed patch
def test_band_images_errors_name_the_problem(image_field, tmp_path):
    f = image_field
    read = functools.partial(read_training_set, mass_col="logM500")
    with pytest.raises(ValueError, match="bands= says the (band images|exposure maps) hold 0.3-0.6, .* their file names say 0.5-1.2"):
        read(f.catalog, images=f.images, exposures=f.maps, bands="efeds7")
    with pytest.raises(ValueError, match="one of the two"):
        read(f.catalog, f.events, images=f.images)
    with pytest.raises(ValueError, match="one source of exposure"):
        read(f.catalog, images=f.images, exposures=f.maps, exposure_seconds=100.0)
    # a cluster over unexposed sky cannot train a model: it is left out, as prediction gives it no mass
    zero = tmp_path / "expo_zero.fits"
    data = fits.getdata(f.maps[0]).copy()
    data[400:500, 400:500] = 0.0
    fits.writeto(zero, data, fits.getheader(f.maps[0]))
    with pytest.warns(SkclusterWarning, match=r"1 of 9 cluster\(s\) have no exposure \(row 4\) and are left out"):
        got = read(f.catalog, images=f.images, exposures=[zero])
    assert got.rows.tolist() == [0, 1, 2, 3, 5, 6, 7, 8] and len(got.y) == got.X["images"].shape[0] == 8
    np.testing.assert_array_equal(got.y, f.y[got.rows])
    # a cluster without a single count in its box
    empty = tmp_path / "empty.fits"
    fits.writeto(empty, np.zeros((_NIMG, _NIMG), np.int32), fits.getheader(f.images[0]))
    with pytest.raises(ValueError, match="9 cluster.* no counts in their box"):
        read(f.catalog, images=[empty], exposures=[f.maps[0]], bands=[(0.5, 1.2)])
    got = read(f.catalog, images=[empty], exposures=[f.maps[0]], bands=[(0.5, 1.2)],
                            allow_empty=True)
    assert got.X["images"].sum() == 0


@pytest.mark.usefixtures("one_torch_thread")
def test_train_command_on_band_images_equals_training_on_the_events(image_field, tmp_path, capsys):
    from skcluster.cli import EXIT_INPUT, EXIT_OK, main

    f = image_field
    common = ["--catalog", str(f.catalog), "--mass-col", "logM500", "--exposure", *map(str, f.maps)]
    a, b = tmp_path / "from_events.skc", tmp_path / "from_images.skc"
    assert main(["train", *common, "--events", str(f.events), "--pattern-types", "all", "--flag-mask", "none",
                 *_TINY, "--out", str(a)]) == EXIT_OK
    # bands from the image names (--bands is the order asked for; here the same ho3)
    tiny = [v for v in _TINY if v not in ("--bands", "ho3")]
    assert main(["train", *common, "--images", *map(str, f.images), *tiny, "--out", str(b)]) == EXIT_OK
    assert "9 clusters of" in capsys.readouterr().out
    X = read_training_set(f.catalog, f.events, exposures=f.maps, mass_col="logM500", pattern_types=None,
                          flag_mask=None).X
    mean_a, std_a = _predict(a, X)
    mean_b, std_b = _predict(b, X)
    assert np.all(np.isfinite(mean_b)) and np.ptp(mean_b) > 0
    np.testing.assert_allclose(mean_b, mean_a, rtol=0, atol=1e-5)
    np.testing.assert_allclose(std_b, std_a, rtol=0, atol=1e-5)
    # bands the images do not have are named
    assert main(["train", *common, "--images", *map(str, f.images), *tiny, "--bands", "efeds7",
                 "--out", str(tmp_path / "c.skc")]) == EXIT_INPUT
    assert "--bands says the exposure maps hold 0.3-0.6" in capsys.readouterr().err
    assert not (tmp_path / "c.skc").exists()
