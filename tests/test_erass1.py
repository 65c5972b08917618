"""The eRASS1 DR1 cluster catalogue read as published (a tiny file in its layout)."""

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from skcluster.io.erass1 import read_erass1_catalog


def _dr1_like(n=4):
    """A few rows in the column layout of erass1cl_primary_v3.2.fits (Bulbul et al. 2024)."""
    rng = np.random.default_rng(0)
    t = Table()
    t["DETUID"] = [f"eb01_{i:03d}" for i in range(n)]
    t["NAME"] = [f"1eRASS J0000{i:02d}.0-380000" for i in range(n)]
    t["RA"] = rng.uniform(0, 10, n) * u.deg
    t["DEC"] = rng.uniform(-40, -30, n) * u.deg
    t["RA_XFIT"] = t["RA"] + 0.001
    t["DEC_XFIT"] = t["DEC"] - 0.001
    t["EXT_LIKE"] = rng.uniform(3, 50, n)
    t["DET_LIKE_0"] = rng.uniform(5, 80, n)
    t["EXP"] = rng.uniform(100, 600, n)
    t["BEST_Z"] = rng.uniform(0.05, 0.8, n)
    t["BEST_ZERR"] = np.full(n, 0.01)
    t["BEST_Z_TYPE"] = ["spec_z", "photo_z", "photo_z", "spec_z"][:n]
    t["PCONT"] = np.full(n, 0.1)
    t["CR300kpc"] = rng.uniform(0.01, 0.5, n)
    t["M500"] = rng.uniform(1, 50, n) * u.Unit("1e13 solMass")
    return t


def test_reads_the_published_columns(tmp_path):
    t = _dr1_like()
    t.write(tmp_path / "erass1cl_primary_v3.2.fits")
    X = read_erass1_catalog(tmp_path / "erass1cl_primary_v3.2.fits")
    assert np.allclose(X["ra"], t["RA"]) and np.allclose(X["z"], t["BEST_Z"])
    assert np.allclose(X["exposure"], t["EXP"]) and X["exposure"].dtype == np.float64
    assert list(X["z_type"]) == list(t["BEST_Z_TYPE"])
    assert np.allclose(X["count_rate_300kpc"], t["CR300kpc"]) and np.allclose(X["DET_LIKE"], t["DET_LIKE_0"])
    assert np.allclose(X["log10_M500_catalog"], np.log10(np.asarray(t["M500"]) * 1e13))
    assert "EXP" not in X and "CR300kpc" not in X
    xfit = read_erass1_catalog(t, position="xfit")
    assert np.allclose(xfit["dec"], t["DEC_XFIT"])


def test_missing_exposure_and_bad_redshift_are_named():
    t = _dr1_like()
    t.remove_column("EXP")
    with pytest.raises(KeyError, match="EXP"):
        read_erass1_catalog(t)
    t = _dr1_like()
    t["BEST_Z"][2] = np.nan
    with pytest.raises(ValueError, match="row 2"):
        read_erass1_catalog(t)
    with pytest.raises(ValueError, match="position"):
        read_erass1_catalog(_dr1_like(), position="sky")
