"""The mock's sky-calibration ingredients against the real data they come from.

The background measured on the real eFEDS field, the exposure distributions
of the real catalogues (and the selection they carry), and the eFEDS AGN
source counts; the data live in ``../shared/data`` (tests that need them
skip when it is absent).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from skcluster.datasets import background as bg
from skcluster.datasets import make_survey
from skcluster.datasets.parameters import resolve_parameters
from skcluster.physics.exposure import EXPOSURE_QUANTILES_S, QUANTILE_LEVELS, exposure_sampler
from skcluster.physics.instrument import vignetting_factor

REPO = Path(__file__).resolve().parents[1]
DATA = next((p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data"))
             if (p / "efeds_catalogs").is_dir()), None)
needs_data = pytest.mark.skipif(DATA is None, reason="../shared/data (real eFEDS/eRASS1 catalogues) not found")


def _sky_script():
    folder = str(REPO / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("skcluster_bench_validate_sky", Path(folder) / "validate_sky.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_field_background_model_reproduces_the_measured_bands():
    p = resolve_parameters("efeds", background_measurement="efeds_field")
    bands = list(bg.MEASURED_BACKGROUND_FIELD)
    got = bg.background_band_rates(p, bands)
    want = np.array(list(bg.MEASURED_BACKGROUND_FIELD.values()))
    assert np.all(np.abs(got / want - 1.0) < 0.05), got / want
    # the mock's earlier rates fall short in the soft bands: the deficit the real images show
    old = bg.background_band_rates(resolve_parameters("efeds"), bands)
    assert old[0] / want[0] < 0.5 and old[1] / want[1] < 0.75


def test_unknown_background_measurement_is_refused_by_name():
    with pytest.raises(ValueError, match="background_measurement='nope' must be one of"):
        resolve_parameters("efeds", background_measurement="nope")


@needs_data
def test_field_measurement_is_what_the_constants_say():
    rows = _sky_script().field_background(DATA)
    for r, (band, rate) in zip(rows, bg.MEASURED_BACKGROUND_FIELD.items()):
        assert tuple(r["band_keV"]) == band
        assert r["rate"] == pytest.approx(rate, rel=0.01)


@needs_data
def test_field_background_matches_the_catalogue_ml_bkg():
    """An independent check: the eSASS background level at the 542 eFEDS clusters (ML_BKG / ML_EXP)."""
    from astropy.table import Table

    cat = Table.read(DATA / "efeds_catalogs" / "efeds_clusters_ctp_v2.1.csv")
    real_per_ks = float(np.median(np.asarray(cat["ML_BKG"]) / np.asarray(cat["ML_EXP"]))) * 1e3
    per_ks = {m: bg.background_model(resolve_parameters("efeds", background_measurement=m))["map_det"]
              / float(vignetting_factor(1.0)) * 1e3 for m in ("mock_v1", "efeds_field")}
    assert per_ks["efeds_field"] == pytest.approx(real_per_ks, rel=0.05)
    assert per_ks["mock_v1"] < 0.7 * real_per_ks


@pytest.mark.parametrize("table", sorted(EXPOSURE_QUANTILES_S))
def test_exposure_sampler_reproduces_the_table_and_undoes_a_selection(table):
    rng = np.random.default_rng(0)
    q = EXPOSURE_QUANTILES_S[table]
    t = exposure_sampler(table)(rng.random(200_000))
    levels = QUANTILE_LEVELS[2:-2]
    np.testing.assert_allclose(np.quantile(t, levels), q[2:-2], rtol=0.01)
    # drawn with the selection undone (t^-k), then selected again (weight t^k): the catalogue's quantiles
    k = 0.9
    ts = np.sort(exposure_sampler(table, k)(rng.random(400_000)))
    assert np.median(ts) < np.median(t)
    w = np.cumsum(ts**k)
    w /= w[-1]
    np.testing.assert_allclose(np.interp(levels, w, ts), q[2:-2], rtol=0.03)


def test_exposure_table_is_drawn_by_the_mock():
    data = make_survey("erass1", area_deg2=60, random_state=0, verbose=False, exposure_table="erass1_clusters",
                       ext_like_min=3.0)
    exp = np.asarray(data.catalog["exposure"])
    q = EXPOSURE_QUANTILES_S["erass1_clusters"]
    assert exp.min() >= q[0] - 1e-6 and exp.max() <= q[-1] + 1e-6
    assert np.median(exp) > 130.0  # the split log-normal of the preset stops at 135 s


def test_efeds_source_counts_join_lehmer_below_the_limit():
    lo = np.geomspace(1e-16, 6.4e-15, 20)
    # equal below the limit up to the 6.5e-15 knot (the catalogue's 125.93 against Lehmer's 125.92)
    np.testing.assert_allclose(bg.agn_n_above(lo, "efeds"), bg.lehmer_n_above(lo), rtol=1e-4)
    assert bg.agn_n_above(6.5e-15, "efeds") == pytest.approx(bg.lehmer_n_above(6.5e-15), rel=1e-3)
    assert bg.agn_n_above(3e-14, "efeds") / bg.lehmer_n_above(3e-14) == pytest.approx(26.31 / 17.0)
    rng = np.random.default_rng(1)
    f = bg.sample_agn_fluxes(rng, 300_000, 1e-15, 1e-11, "efeds")
    n0 = bg.agn_n_above(1e-15, "efeds") - bg.agn_n_above(1e-11, "efeds")
    for s in (3e-15, 1e-14, 5e-14):
        want = (bg.agn_n_above(s, "efeds") - bg.agn_n_above(1e-11, "efeds")) / n0
        assert np.mean(f > s) == pytest.approx(want, rel=0.03)


@needs_data
def test_efeds_source_counts_are_the_catalogues():
    from astropy.table import Table

    s = np.asarray(Table.read(DATA / "efeds_catalogs" / "efeds_agn_liu22.fits")["FluxCorr_Med_s"], float)
    for flux in (1e-14, 3e-14, 1e-13):
        assert bg.agn_n_above(flux, "efeds") == pytest.approx(np.sum(s > flux) / 140.0, rel=0.01)


@needs_data
def test_validate_sky_report_runs_and_the_sky_variant_has_the_real_background(tmp_path):
    """The mock-versus-sky report end to end on small areas: tables, JSON and figures written."""
    res = _sky_script().main(["--variants", "sky", "--area-efeds", "8", "--area-erass1", "40", "--out", str(tmp_path),
                              "--data", str(DATA)])
    md = (tmp_path / "validate_sky.md").read_text()
    for section in ("## eFEDS depth", "## eRASS1 depth", "## The real eFEDS field", "## Point sources per deg^2",
                    "sky, forward", "sky, inverted"):
        assert section in md
    for fig in ("sky_background.png", "sky_lognlogs.png", "sky_efeds_hist.png", "sky_erass1.png"):
        assert (tmp_path / fig).stat().st_size > 0
    ks = res["efeds"]["sky"]["ks"]["ML_BKG"]
    # the catalogue's background level at the clusters (median 6.98 counts/arcmin^2); the old mock's was 4.85
    assert ks["median_mock"] == pytest.approx(ks["median_real"], rel=0.15)
    assert 0.0 < res["efeds"]["sky"]["per_deg2"] and res["efeds"]["sky"]["real_inside_training_domain"] > 0.5
