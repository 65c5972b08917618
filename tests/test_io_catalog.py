import os

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from skcluster import ClusterSample
from skcluster.exceptions import DataFormatError
from skcluster.io import read_catalog, read_table, write_table


def _table():
    return Table({"ID": ["a", "b", "c"], "RA": [140.3, 140.1, 10.0],
                  "DEC": [3.29, 3.02, -5.0], "BEST_Z": [0.33, 0.48, 1.2]})


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz", ".ecsv", ".csv"])
def test_read_catalog_formats_and_spellings(tmp_path, suffix):
    path = tmp_path / f"cat{suffix}"
    write_table(_table(), path)
    X = read_catalog(path)
    assert isinstance(X, ClusterSample) and X.shape == (3,)
    np.testing.assert_allclose(X["z"], [0.33, 0.48, 1.2])
    np.testing.assert_allclose(X["dec"], [3.29, 3.02, -5.0])


def test_named_columns_units_and_extras():
    t = Table({"alpha": [2.0] * 2 * u.hourangle, "delta": [0.1, 0.2] * u.deg,
               "zz": [0.1, 0.2], "EXT_LIKE": [10.0, 70.0]})
    X = read_catalog(t, ra="alpha", dec="delta", z="zz", columns=["EXT_LIKE"])
    np.testing.assert_allclose(X["ra"], [30.0, 30.0])
    np.testing.assert_array_equal(X["EXT_LIKE"], [10.0, 70.0])
    with pytest.raises(KeyError, match=r"no redshift column 'zzz'; columns are"):
        read_catalog(t, ra="alpha", dec="delta", z="zzz")


def test_missing_and_bad_values_name_rows(tmp_path):
    t = _table()
    t.remove_column("BEST_Z")
    with pytest.raises(KeyError, match=r"no redshift column found.*columns are \['ID', 'RA', 'DEC'\]"):
        read_catalog(t)
    t = _table()
    t["BEST_Z"][1] = np.nan
    with pytest.raises(ValueError, match=r"BEST_Z.*row 1: nan"):
        read_catalog(t)
    t = _table()
    t["DEC"][2] = 95.0
    with pytest.raises(ValueError, match=r"dec must be finite.*row 2: 95.0"):
        read_catalog(t)
    t = _table()
    t["BEST_Z"][0] = -0.1
    with pytest.raises(ValueError, match=r"row 0: -0.1"):
        read_catalog(t)
    with pytest.raises(FileNotFoundError, match="nope.fits"):
        read_catalog(tmp_path / "nope.fits")
    (tmp_path / "cat.txt").write_text("ra dec z\n")
    with pytest.raises(DataFormatError, match="cannot tell the table format"):
        read_catalog(tmp_path / "cat.txt")


def test_write_never_overwrites_and_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "out.fits"
    write_table(_table(), path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_table(_table(), path)
    write_table(_table(), path, overwrite=True)
    bad = Table({"obj": np.array([object(), object()], dtype=object)})
    with pytest.raises(TypeError):  # astropy cannot write an object column to FITS
        write_table(bad, tmp_path / "bad.fits")
    assert sorted(os.listdir(tmp_path)) == ["out.fits"]
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        write_table(_table(), tmp_path / "nodir" / "x.fits")


def test_write_table_refuses_blank_column_names_in_fits(tmp_path):
    from astropy.table import Table

    from skcluster.io import write_table

    t = Table({"ra": [1.0], " ": [2]})
    with pytest.raises(ValueError, match="cannot be written to FITS"):
        write_table(t, tmp_path / "t.fits")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="equal once"):
        write_table(Table({"ra": [1.0], "RA ": [2]}), tmp_path / "t.fits")
    write_table(t, tmp_path / "t.ecsv")  # a text table keeps the name
    assert (tmp_path / "t.ecsv").is_file()


def test_a_fits_table_outside_hdu_1_is_read_with_a_clear_warning(tmp_path):
    import warnings

    from astropy.io import fits

    from skcluster.exceptions import SkclusterWarning

    t = Table({"ra": [150.0], "dec": [2.0], "z": [0.3]})
    path = tmp_path / "hdu2.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 2))), fits.table_to_hdu(t)]).writeto(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_table(path)
    assert [str(w.message) for w in caught] == [f"{str(path)!r} has no table in HDU 1; reading its only table, HDU 2"]
    assert caught[0].category is SkclusterWarning and list(back["z"]) == [0.3]
    two = tmp_path / "two.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 2))), fits.table_to_hdu(t),
                  fits.table_to_hdu(t)]).writeto(two)
    with pytest.raises(DataFormatError, match=r"no table in HDU 1 but several elsewhere \(HDU 2, HDU 3\)"):
        read_table(two)
