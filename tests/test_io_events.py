import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from skcluster.exceptions import DataFormatError
from skcluster.io import (
    DR1_FLAG_MASK,
    EVENT_DTYPE,
    cutout_events,
    events_to_offsets,
    filter_events,
    offsets_to_events_table,
    read_events,
    write_events,
)
from skcluster.io.sky import sin_offsets_arcsec, sin_offsets_to_radec

RA0, DEC0 = 140.3, 3.3


def _events(rng, n=500, spread_deg=0.2):
    t = Table()
    t["TIME"] = np.sort(rng.uniform(0, 1e4, n))
    t["RA"] = RA0 + rng.uniform(-spread_deg, spread_deg, n)
    t["DEC"] = DEC0 + rng.uniform(-spread_deg, spread_deg, n)
    t["PI"] = rng.uniform(200, 10000, n).astype(np.float32)
    t["PAT_TYP"] = rng.integers(1, 5, n).astype(np.int16)
    t["FLAG"] = np.zeros(n, dtype=np.uint32)
    t["TM_NR"] = rng.integers(1, 8, n).astype(np.uint8)
    return t


def test_write_read_round_trip_is_identical(tmp_path, rng):
    ev = _events(rng)
    ev["FLAG"][:3] = [0, 0x80000000, 0xFFFFFFFF]
    path = tmp_path / "ev.fits"
    write_events(path, ev, RA0, DEC0)
    back = read_events(path, apply_filters=False)
    for c in ev.colnames:
        np.testing.assert_array_equal(np.asarray(back[c]), np.asarray(ev[c]), err_msg=c)
    assert back["RA"].dtype == np.float64


def test_write_refuses_to_overwrite(tmp_path, rng):
    path = tmp_path / "ev.fits"
    write_events(path, _events(rng), RA0, DEC0)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_events(path, _events(rng), RA0, DEC0)
    assert path.read_bytes() == before
    write_events(path, _events(rng), RA0, DEC0, overwrite=True)


def test_xy_pixel_list_wcs_round_trips(tmp_path, rng):
    """X/Y with their TC* keywords map back to RA/DEC through astropy's WCS."""
    ev = _events(rng, spread_deg=1.0)
    path = tmp_path / "ev.fits"
    write_events(path, ev, RA0, DEC0)
    with fits.open(path) as hdul:
        h = hdul["EVENTS"].header
        data = hdul["EVENTS"].data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = WCS(h, keysel=["pixel"], colsel=[4, 5])
        assert h["TCTYP4"] == "RA---SIN" and h["TCTYP5"] == "DEC--SIN"
        assert abs(h["TCDLT4"] * 3600 + 0.05) < 1e-12
        # X/Y hold FITS (1-based) pixel coordinates, as in eSASS files
        ra, dec = w.all_pix2world(data["X"], data["Y"], 1)
    np.testing.assert_allclose(ra, ev["RA"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(dec, ev["DEC"], rtol=0, atol=1e-9)


def test_filters_keep_and_drop_the_right_rows():
    t = Table()
    t["RA"] = np.full(8, RA0)
    t["DEC"] = np.full(8, DEC0)
    t["PI"] = np.full(8, 1000.0)
    t["PAT_TYP"] = np.array([1, 2, 3, 4, 0, 5, 1, 1], dtype=np.int16)
    # row 6 carries bit 0x00001000 (masked), row 7 bit 0x00000010 (allowed)
    t["FLAG"] = np.array([0, 0, 0, 0, 0, 0, 0x00001000, 0x00000010], dtype=np.uint32)
    kept = filter_events(t)
    np.testing.assert_array_equal(kept["PAT_TYP"], [1, 2, 3, 4, 1])
    np.testing.assert_array_equal(kept["FLAG"], [0, 0, 0, 0, 0x10])


def test_flag_filter_handles_signed_int32_high_bit():
    t = Table()
    t["RA"] = np.full(3, RA0)
    t["DEC"] = np.full(3, DEC0)
    t["PI"] = np.full(3, 1000.0)
    t["PAT_TYP"] = np.ones(3, dtype=np.int16)
    # 0x80000000 stored as a signed int32 is negative
    t["FLAG"] = np.array([0, np.int32(-2147483648), 0x4000], dtype=np.int32)
    kept = filter_events(t, flag_mask=DR1_FLAG_MASK)
    assert len(kept) == 1


def test_read_applies_filters_and_energy_range(tmp_path, rng):
    ev = _events(rng)
    ev["PAT_TYP"][:10] = 7
    path = tmp_path / "ev.fits"
    write_events(path, ev, RA0, DEC0)
    got = read_events(path, energy_range_keV=(0.5, 2.0))
    expect = (ev["PAT_TYP"] <= 4) & (ev["PI"] >= 500) & (ev["PI"] < 2000)
    assert len(got) == expect.sum()


def test_scaled_integer_radec_are_unscaled(tmp_path):
    ra = np.array([140.1, 140.2, 140.3])
    dec = np.array([3.1, 3.2, 3.3])
    scale = 1e-6
    cols = [
        fits.Column("RA", "J", unit="deg", array=np.round(ra / scale).astype(np.int32)),
        fits.Column("DEC", "J", unit="deg", array=np.round(dec / scale).astype(np.int32)),
        fits.Column("PI", "E", unit="eV", array=np.array([500.0, 1000.0, 2000.0])),
    ]
    path = tmp_path / "old.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(path)
    for i in (1, 2):  # mark the integers as scaled, as older eSASS products do
        fits.setval(path, f"TSCAL{i}", value=scale, ext=1)
        fits.setval(path, f"TZERO{i}", value=0.0, ext=1)
    with fits.open(path) as h:
        assert h["EVENTS"].columns["RA"].format == "J"
        assert h["EVENTS"].header["TSCAL1"] == scale
    got = read_events(path, apply_filters=False)
    np.testing.assert_allclose(got["RA"], ra, atol=1e-6)
    np.testing.assert_allclose(got["DEC"], dec, atol=1e-6)
    assert got["RA"].dtype == np.float64


def _write_raw(path, cols, name="EVENTS"):
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name=name)]).writeto(path)


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fits"):
        read_events(tmp_path / "nope.fits")
    p = tmp_path / "wrong_hdu.fits"
    _write_raw(p, [fits.Column("RA", "D", array=[1.0])], name="STDGTI")
    with pytest.raises(DataFormatError, match=r"no extension 'EVENTS'.*STDGTI"):
        read_events(p)
    p = tmp_path / "no_pi.fits"
    _write_raw(p, [fits.Column("RA", "D", array=[1.0]), fits.Column("DEC", "D", array=[1.0])])
    with pytest.raises(DataFormatError, match=r"lacks column\(s\) \['PI'\]"):
        read_events(p)
    p = tmp_path / "chan.fits"
    _write_raw(p, [fits.Column("RA", "D", array=[1.0] * 3), fits.Column("DEC", "D", array=[1.0] * 3),
                   fits.Column("PI", "J", unit="chan", array=[10, 50, 100])])
    with pytest.raises(DataFormatError, match="channels"):
        read_events(p, apply_filters=False)
    p = tmp_path / "chan_nounit.fits"
    _write_raw(p, [fits.Column("RA", "D", array=[1.0] * 3), fits.Column("DEC", "D", array=[1.0] * 3),
                   fits.Column("PI", "J", array=[10, 50, 100])])
    with pytest.raises(DataFormatError, match="looks like channels"):
        read_events(p, apply_filters=False)
    p = tmp_path / "nopat.fits"
    _write_raw(p, [fits.Column("RA", "D", array=[1.0]), fits.Column("DEC", "D", array=[1.0]),
                   fits.Column("PI", "E", unit="eV", array=[1000.0])])
    with pytest.raises(DataFormatError, match="PAT_TYP"):
        read_events(p)


def test_sin_offsets_invert(rng):
    x = rng.uniform(-900, 900, 100)
    y = rng.uniform(-900, 900, 100)
    ra, dec = sin_offsets_to_radec(x, y, RA0, DEC0)
    x2, y2 = sin_offsets_arcsec(ra, dec, RA0, DEC0)
    np.testing.assert_allclose(x2, x, atol=1e-6)
    np.testing.assert_allclose(y2, y, atol=1e-6)
    # west (smaller RA) is +x, north is +y
    xw, yn = sin_offsets_arcsec([RA0 - 0.01], [DEC0 + 0.01], RA0, DEC0)
    assert xw[0] > 0 and yn[0] > 0


def test_cutout_events_recovers_offsets_and_box(rng):
    n = 2000
    x = rng.uniform(-800, 800, n)
    y = rng.uniform(-800, 800, n)
    e = rng.uniform(0.2, 10, n)
    ra, dec = sin_offsets_to_radec(x, y, RA0, DEC0)
    table = Table({"RA": ra, "DEC": dec, "PI": e * 1000})
    out = cutout_events(table, [RA0, 10.0], [DEC0, -40.0], size_arcmin=20)
    assert out.shape == (2,)
    ev = out[0]
    assert ev.dtype == EVENT_DTYPE
    inside = (np.abs(x) < 600) & (np.abs(y) < 600)
    assert len(ev) == inside.sum()
    order = np.argsort(ev["x_arcsec"])
    np.testing.assert_allclose(ev["x_arcsec"][order], np.sort(x[inside]), atol=1e-3)
    np.testing.assert_allclose(np.sort(ev["energy_keV"]), np.sort(e[inside]), rtol=1e-6)
    assert len(out[1]) == 0 and out[1].dtype == EVENT_DTYPE  # empty list -> empty array
    one = events_to_offsets(table, RA0, DEC0, 20, energy_range_keV=(0.5, 2.0))
    assert len(one) == (inside & (e >= 0.5) & (e < 2.0)).sum()


def test_cutout_events_bad_positions():
    table = Table({"RA": [1.0], "DEC": [1.0], "PI": [1000.0]})
    with pytest.raises(ValueError, match=r"dec must be finite.*row 1: nan"):
        cutout_events(table, [1.0, 2.0], [1.0, np.nan], 20)
    with pytest.raises(ValueError, match=r"^cutout_events: size_arcmin must be a positive finite number of arcmin, got -1$"):
        cutout_events(table, [1.0], [1.0], -1)


def test_offsets_to_table_round_trip(tmp_path, rng):
    ev = np.zeros(50, dtype=EVENT_DTYPE)
    ev["x_arcsec"] = rng.uniform(-500, 500, 50)
    ev["y_arcsec"] = rng.uniform(-500, 500, 50)
    ev["energy_keV"] = rng.uniform(0.2, 9, 50)
    t = offsets_to_events_table(ev, RA0, DEC0)
    write_events(tmp_path / "c.fits", t, RA0, DEC0)
    back = events_to_offsets(read_events(tmp_path / "c.fits"), RA0, DEC0, 20)
    back = np.sort(back, order="x_arcsec")
    ev = np.sort(ev, order="x_arcsec")
    np.testing.assert_allclose(back["x_arcsec"], ev["x_arcsec"], atol=1e-3)
    np.testing.assert_allclose(back["y_arcsec"], ev["y_arcsec"], atol=1e-3)
    np.testing.assert_allclose(back["energy_keV"], ev["energy_keV"], rtol=1e-6)


def test_events_with_non_finite_coordinates_are_left_out_with_a_warning(rng):
    from skcluster.exceptions import SkclusterWarning

    x, y = rng.uniform(-100, 100, 6), rng.uniform(-100, 100, 6)
    ra, dec = sin_offsets_to_radec(x, y, RA0, DEC0)
    ra[1], dec[3] = np.nan, np.inf
    pi = np.full(6, 1000.0)
    pi[5] = np.nan
    with pytest.warns(SkclusterWarning, match="3 of 6 events have a non-finite RA, DEC or PI"):
        out = cutout_events(Table({"RA": ra, "DEC": dec, "PI": pi}), [RA0], [DEC0], size_arcmin=20)
    assert len(out[0]) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # finite events: no warning
        cutout_events(Table({"RA": ra[[0, 2, 4]], "DEC": dec[[0, 2, 4]], "PI": pi[[0, 2, 4]]}), [RA0], [DEC0], 20)
