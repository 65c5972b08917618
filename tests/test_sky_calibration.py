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
from skcluster.datasets.parameters import DEFAULT_SKY, PRESETS, SKY_VERSIONS, SurveyParameters, resolve_parameters
from skcluster.datasets.survey import _exposures, tile_catalog
from skcluster.physics.exposure import (
    BACKGROUND_QUANTILES_REL,
    EXPOSURE_QUANTILES_S,
    QUANTILE_LEVELS,
    background_sampler,
    exposure_sampler,
)
from skcluster.physics.instrument import VIGNETTING_1KEV, vignetting_factor

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
    old = bg.background_band_rates(resolve_parameters("efeds", sky="v1"), bands)
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
def test_validate_sky_report_runs_and_the_v2_variant_has_the_real_background(tmp_path):
    """The mock-versus-sky report end to end on small areas: tables, JSON and figures written."""
    res = _sky_script().main(["--variants", "v2", "--area-efeds", "8", "--area-erass1", "40", "--out", str(tmp_path),
                              "--data", str(DATA)])
    md = (tmp_path / "validate_sky.md").read_text()
    for section in ("## eFEDS depth", "## eRASS1 depth", "## The real eFEDS field", "## Point sources per deg^2",
                    "v2, forward", "v2, inverted", "## Clusters per deg^2 by redshift", "| v2 | erass1 | 0-0.3 | CR500 |"):
        assert section in md
    for fig in ("sky_background.png", "sky_lognlogs.png", "sky_efeds_hist.png", "sky_erass1.png"):
        assert (tmp_path / fig).stat().st_size > 0
    ks = res["efeds"]["v2"]["ks"]["ML_BKG"]
    # the catalogue's background level at the clusters (median 6.98 counts/arcmin^2); the old mock's was 4.85
    assert ks["median_mock"] == pytest.approx(ks["median_real"], rel=0.15)
    assert 0.0 < res["efeds"]["v2"]["per_deg2"] and res["efeds"]["v2"]["real_inside_training_domain"] > 0.5
    low_z = res["breakdown_by_z"]["v2"]["efeds_z0-0.3"]
    assert low_z["all"]["n_mock"] == sum(low_z["ML_CTS"]["n_mock"])  # the count bins cover every cluster


# -- the sky-calibrated mock version (SKY_VERSIONS["v2"]) ------------------------------------------------------

def _table_cdf(quantiles):
    """The CDF of a quantile table (log-linear between the quantiles), for a KS test against it."""
    logq = np.log(quantiles)
    return lambda x: np.interp(np.log(x), logq, QUANTILE_LEVELS)


def test_background_sampler_reproduces_the_table():
    q = BACKGROUND_QUANTILES_REL["efeds_clusters"]
    r = background_sampler("efeds_clusters")(np.random.default_rng(0).random(200_000))
    np.testing.assert_allclose(np.quantile(r, QUANTILE_LEVELS[2:-2]), q[2:-2], rtol=0.01)
    assert np.median(r) == pytest.approx(1.0, rel=0.01)
    with pytest.raises(ValueError, match="unknown background table 'erass1_clusters'"):
        background_sampler("erass1_clusters")


@needs_data
def test_background_table_is_the_catalogues():
    """The table is the eFEDS catalogue's ML_BKG / ML_EXP over its median, at the table's levels."""
    from astropy.table import Table

    cat = Table.read(DATA / "efeds_catalogs" / "efeds_clusters_ctp_v2.1.csv")
    level = np.asarray(cat["ML_BKG"], float) / np.asarray(cat["ML_EXP"], float)
    np.testing.assert_allclose(np.quantile(level / np.median(level), QUANTILE_LEVELS),
                               BACKGROUND_QUANTILES_REL["efeds_clusters"], rtol=2e-3)


def test_sky_version_v2_is_the_default_and_v1_the_presets_as_they_were():
    assert DEFAULT_SKY == "v2"
    for name, preset in PRESETS.items():
        p = resolve_parameters(name, sky="v1")
        assert p == SurveyParameters(**preset)
        v2 = resolve_parameters(name)
        assert v2 == resolve_parameters(name, sky="v2")
        changed = {f for f in p.to_dict() if getattr(p, f) != getattr(v2, f)}
        assert changed and changed <= set(SKY_VERSIONS["v2"][name])
        assert v2.background_table == "efeds_clusters" and v2.background_measurement == "efeds_field"
        # explicit overrides win over the version
        assert resolve_parameters(name, sky="v2", background_table="none").background_table == "none"
    assert resolve_parameters("erass1", sky="v2").exposure_table == "erass1_clusters"
    assert resolve_parameters("erosita", sky="v2").exposure_log_uniform
    with pytest.raises(ValueError, match="unknown mock version sky='v3'"):
        resolve_parameters("efeds", sky="v3")
    with pytest.raises(ValueError, match="selects the version of a preset"):
        resolve_parameters(SurveyParameters(), sky="v2")


def _map_level_at_efeds_limit(cat, p):
    """Each halo's background-map level with the AGN below the eFEDS point-source limit, over the median level.

    The eFEDS catalogue's ML_BKG / ML_EXP analogue: a cluster's map holds the AGN below its own limit (preset
    erosita: falling with depth), so those are swapped for the ones below the limit of the measurement.
    """
    faint0 = float(bg.faint_agn_map_rate(p, bg.MEASURED_MASK_FLUX_CGS))
    level = (np.asarray(cat["background"]) * VIGNETTING_1KEV - bg.faint_agn_map_rate(p, np.asarray(cat["ps_limit"]))
             + faint0)
    return level / (bg.background_model(p)["rate_det"] + faint0)


@pytest.mark.parametrize("preset", ["efeds", "erosita"])
def test_sky_v2_draws_each_clusters_background_from_the_catalogue(preset):
    """Every halo's background-map level over its median follows the eFEDS ML_BKG / ML_EXP table (KS)."""
    from scipy.stats import kstest

    q = BACKGROUND_QUANTILES_REL["efeds_clusters"]
    p = resolve_parameters(preset, sky="v2")
    level = _map_level_at_efeds_limit(tile_catalog(0, 10.0, p, 123), p)
    assert level.size > 1000
    assert kstest(level, _table_cdf(q)).pvalue > 0.01
    # the v1 preset's spread is not the catalogue's (efeds: one level; erosita: the 0.67 / 1.90 split log-normal)
    spread = {k: PRESETS[preset].get(k, 1.0) for k in ("background_p05_rel", "background_p95_rel")}
    p1 = p.replace(background_table="none", **spread)
    old = _map_level_at_efeds_limit(tile_catalog(0, 10.0, p1, 123), p1)
    assert kstest(old, _table_cdf(q)).pvalue < 1e-6


def test_sky_v2_erass1_survey_spans_the_catalogues_exposures():
    """Detected clusters of the v2 eRASS1 preset have the eRASS1 primary catalogue's exposures (KS against Exp)."""
    from scipy.stats import kstest

    q = EXPOSURE_QUANTILES_S["erass1_clusters"]
    data = make_survey("erass1", area_deg2=60, random_state=0, verbose=False, sky="v2", ext_like_min=3.0)
    exp = np.asarray(data.catalog["exposure"])
    assert exp.min() >= q[0] - 1e-6 and exp.max() <= q[-1] + 1e-6
    assert kstest(exp, _table_cdf(q)).pvalue > 0.01
    lo, hi = np.quantile(exp, [0.05, 0.95])
    assert lo < 1.3 * q[2] and hi > q[-3] / 1.5  # the catalogue's 78-820 s, not the v1 preset's 81-135 s
    v1 = _exposures(np.random.default_rng(0), exp.size, resolve_parameters("erass1", sky="v1"))
    assert kstest(v1, _table_cdf(q)).pvalue < 1e-6


def test_sky_version_on_the_command_line(tmp_path):
    """``skcluster simulate --sky v2`` writes the v2 mock; train refuses a version for the user's own clusters."""
    import json

    from skcluster import cli
    from skcluster._cli_parser import SKY_CHOICES
    from skcluster.datasets import read_survey
    from skcluster.workflow.train import train_mass_model

    assert SKY_CHOICES == tuple(SKY_VERSIONS)
    out = tmp_path / "mock"
    assert cli.main(["simulate", "--survey", "erass1", "--sky", "v2", "--area", "10", "--out", str(out), "--quiet"]) == 0
    stored = json.loads((out / "survey.json").read_text())["params"]
    assert stored["exposure_table"] == "erass1_clusters" and stored["background_table"] == "efeds_clusters"
    data = read_survey(out)
    assert data.params == resolve_parameters("erass1", sky="v2")
    with pytest.raises(ValueError, match="sky= chooses the version of the built-in mock"):
        train_mass_model(data.X, data.y, sky="v2")
