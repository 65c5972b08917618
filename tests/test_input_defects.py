"""Bad or unusual input files: clear messages naming the file, exit code 2, nothing written."""

import gzip
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from skcluster import cli
from skcluster.exceptions import DataFormatError
from skcluster.io import read_catalog, read_events, read_image, read_table, write_table
from skcluster.io.images import cutout_slices
from skcluster.predict import _read_events


def _image(path, n=60, pix_arcsec=4.0, ra0=150.0, dec0=2.0):
    """An evtool-like counts image (SIN projection) around (ra0, dec0)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    w.wcs.cdelt = [-pix_arcsec / 3600.0, pix_arcsec / 3600.0]
    data = np.random.default_rng(0).poisson(1.0, (n, n)).astype(np.float32)
    fits.PrimaryHDU(data, header=w.to_header()).writeto(path)
    return path


class _Model:
    """Enough of a fitted mass pipeline (one band, 2 arcmin in 10 pixels) for predict's checks."""

    def __init__(self):
        from sklearn.pipeline import Pipeline

        from skcluster.preprocessing import BandBinner

        b = BandBinner(bands=[(0.5, 2.0)], size_arcmin=2.0, npix=10)
        b.bands_keV_ = [(0.5, 2.0)]
        b.image_shape_ = (10, 10)
        b.pixel_arcsec_ = 12.0
        self.steps = Pipeline([("bin", b)]).steps

    def set_params(self, **kw):
        return self


def _predict(tmp_path, monkeypatch, catalog_text, *extra, images=None):
    monkeypatch.setattr(cli, "_load_model", lambda p: _Model())
    cat = tmp_path / "cat.csv"
    cat.write_bytes(catalog_text)
    out = tmp_path / "out.csv"
    images = images or [str(_image(tmp_path / "img_0500_2000.fits"))]
    code = cli.main(["predict", "--model", "m.skc", "--catalog", str(cat), "--images", *images,
                     "--exposure-seconds", "1000", "--out", str(out), "--quiet", *extra])
    assert not out.exists()
    return code


def test_a_position_far_off_the_images_gets_the_off_image_message(tmp_path, monkeypatch, capsys):
    assert cutout_slices((np.nan, np.nan), 10, (60, 60))["overlap"] == 0
    # the antipode of the image centre has no SIN pixel position at all (NaN); with every
    # position off the images there is nothing to predict (a single one off gets no mass,
    # tests/test_predict_api.py)
    text = b"ra,dec,z\n160.0,2.0,0.3\n330.0,-2.0,0.3\n"
    assert _predict(tmp_path, monkeypatch, text) == cli.EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert "all 2 catalogue position(s) lie wholly off the images" in err and "row 1: (330.0, -2.0)" in err
    assert "NaN" not in err and len(err.splitlines()) == 1


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfra,dec,z\n150.0,2.0,0.3\n")
    assert read_table(path).colnames == ["ra", "dec", "z"]
    assert read_catalog(path)["ra"].tolist() == [150.0]
    path.write_bytes("ra,dec,z\n150.0,2.0,0.3\n".encode("utf-16"))
    assert read_table(path).colnames == ["ra", "dec", "z"]
    path.write_bytes("ra,dec,z,name\n150.0,2.0,0.3,Abell \xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"excel.csv'.*not UTF-8 text \(byte 0xe9"):
        read_table(path)
    gz = tmp_path / "cat.csv.gz"
    gz.write_bytes(gzip.compress(b"\xef\xbb\xbfra,dec,z\n1,2,0.3\n"))
    assert read_table(gz).colnames == ["ra", "dec", "z"]


@pytest.mark.parametrize("name", ["x.csv.gz", "x.ecsv.gz", "x.fits.gz"])
def test_gz_outputs_are_gzipped(tmp_path, name):
    t = Table({"ra": [1.0, 2.0], "name": ["a", "b"]})
    write_table(t, tmp_path / name)
    raw = (tmp_path / name).read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw)  # a complete gzip stream
    back = read_table(tmp_path / name)
    assert back["ra"].tolist() == [1.0, 2.0] and back["name"].tolist() == ["a", "b"]


def _events(path, columns=("RA", "DEC", "PI")):
    n = 5
    cols = {"RA": np.full(n, 150.0), "DEC": np.full(n, 2.0), "PI": np.full(n, 1000.0, np.float32),
            "PAT_TYP": np.ones(n, np.int16), "FLAG": np.zeros(n, np.int32)}
    hdu = fits.BinTableHDU(Table({c: cols[c] for c in columns}), name="EVENTS")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def test_event_lists_without_pat_typ_or_flag_can_be_read_from_the_command_line(tmp_path, capsys):
    path = _events(tmp_path / "ev.fits")
    with pytest.raises(DataFormatError, match=r"no PAT_TYP column.*--pattern-types all"):
        read_events(path)
    with pytest.raises(DataFormatError, match=r"no FLAG column.*--flag-mask none"):
        read_events(path, pattern_types=None)
    args = cli.build_parser().parse_args(
        ["predict", "--model", "m", "--catalog", "c", "--events", str(path), "--exposure-seconds", "1",
         "--out", "o.csv", "--pattern-types", "all", "--flag-mask", "none"])
    assert args.pattern_types is None and args.flag_mask == "none"
    assert [len(t) for t in _read_events([path], args.pattern_types, args.flag_mask)] == [5]
    with pytest.raises(DataFormatError, match=r"reading .*ev.fits.*--pattern-types all"):
        _read_events([path])
    full = _events(tmp_path / "full.fits", ("RA", "DEC", "PI", "PAT_TYP", "FLAG"))
    args = cli.build_parser().parse_args(
        ["predict", "--model", "m", "--catalog", "c", "--events", str(full), "--exposure-seconds", "1",
         "--out", "o.csv", "--pattern-types", "1,2", "--flag-mask", "0x1"])
    assert args.pattern_types == (1, 2) and args.flag_mask == 1
    assert [len(t) for t in _read_events([full], args.pattern_types, args.flag_mask)] == [5]
    for bad in (["--pattern-types", "x"], ["--flag-mask", "-3"], ["--flag-mask", "0x1ffffffff"]):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["predict", "--model", "m", "--catalog", "c", "--events", "e",
                                           "--out", "o.csv", *bad])


@pytest.mark.parametrize("damage", ["not_fits", "truncated", "empty"])
def test_unreadable_fits_files_are_named(tmp_path, monkeypatch, capsys, damage):
    img = _image(tmp_path / "good.fits")
    ev = _events(tmp_path / "good_ev.fits", ("RA", "DEC", "PI", "PAT_TYP", "FLAG"))
    for good, bad in ((img, tmp_path / "img_0500_2000.fits"), (ev, tmp_path / "events.fits")):
        raw = good.read_bytes()
        bad.write_bytes({"not_fits": b"<html>404 not found</html>" * 200, "truncated": raw[: len(raw) // 2 + 100],
                         "empty": b""}[damage])
        reader = read_image if bad.name.startswith("img") else read_events
        with pytest.raises(DataFormatError, match=rf"'[^']*{bad.name}'"):
            reader(bad)
    code = _predict(tmp_path, monkeypatch, b"ra,dec,z\n150.0,2.0,0.3\n",
                    images=[str(tmp_path / "img_0500_2000.fits")])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_INPUT and "img_0500_2000.fits" in err and len(err.splitlines()) == 1


def test_impossible_survey_sizes_are_refused_before_simulating(tmp_path, capsys):
    from skcluster.datasets import make_survey

    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"n_clusters=1000000000 is far more than the about \d+ clusters that "
                                         r"the whole \d+ deg\^2"):
        make_survey(n_clusters=10**9, verbose=False)
    with pytest.raises(ValueError, match=r"area_deg2=1 supplies only \d+ clusters.*far fewer than "
                                         r"n_clusters=5000; enlarge the area"):
        make_survey(n_clusters=5000, area_deg2=1, verbose=False)
    assert time.perf_counter() - t0 < 120  # one tile's halo catalogue each, not a whole-sky run
    code = cli.main(["simulate", "--n-clusters", "1000000000", "--out", str(tmp_path / "sky"), "--quiet"])
    assert code == cli.EXIT_INPUT
    assert "far more than" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
