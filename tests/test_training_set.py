"""Training sets from a user's own simulation: any catalogue, any event files."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from skcluster.datasets import make_survey, read_survey, write_survey
from skcluster.io import offsets_to_events_table
from skcluster.io.training import read_training_set


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
    with pytest.raises(KeyError, match="exposure_seconds"):
        read_training_set(Table({k: v for k, v in base.items() if k != "exposure"} | {"M500": survey.y}),
                          tmp_path / "sky.fits")
    with pytest.raises(Exception, match="PAT_TYP"):  # the file has no pattern column: say how to skip
        read_training_set(Table({**base, "M500": survey.y}), tmp_path / "sky.fits", allow_empty=True)
