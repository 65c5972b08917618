"""The cross-validated benchmark runs end to end (tiny sizes) and writes its schema."""

import json

import numpy as np
import pytest

from skcluster.benchmark import (
    PRESETS,
    ROWS,
    BenchmarkConfig,
    format_table,
    paired_scatter_ratio,
    run_benchmark,
)

REQUIRED = {"model", "scatter", "bias", "nll", "coverage_68", "coverage_95", "mean_std",
            "fit_seconds", "predict_seconds"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    rows = ("count_rate", "count_rate_truth_mask", "counts", "gbm_scalars", "ensemble_10band", "cnn_single",
            "ensemble_10band@high_likelihood", "hybrid", "ensemble_10band_masked_permuted", "hybrid_observables")
    res = run_benchmark(out, quick=True, n_clusters=80, n_folds=2, n_estimators=2, max_epochs=2,
                        patience=2, rows=rows, verbose=0, random_state=3)
    return out, res


def test_results_files_and_schema(tiny):
    out, res = tiny
    for name in ("results.json", "results.md", "predictions.npz", "performance.png"):
        assert (out / name).stat().st_size > 0
    data = json.loads((out / "results.json").read_text())
    assert data == json.loads(json.dumps(res))
    names = [r["model"] for r in data["rows"]]
    assert {"count_rate", "count_rate_truth_mask", "counts", "gbm_scalars", "ensemble_10band",
            "cnn_single"} <= set(names)
    for row in data["rows"]:
        assert REQUIRED <= set(row)
        for k in ("scatter", "nll", "mean_std"):
            assert np.isfinite(row[k])
        assert 0 <= row["coverage_68"] <= row["coverage_95"] <= 1
        assert row["scatter"] < 5  # a fraction, not percent
    assert data["survey"]["n_clusters"] == 80
    assert "| count_rate |" in (out / "results.md").read_text()
    assert not (out / "predictions_partial.npz").exists()   # a finished run leaves only its results


def test_a_stopped_run_leaves_what_it_measured(tmp_path, monkeypatch):
    """Killed during its second CNN fold, a run leaves the finished rows and folds in predictions_partial.npz."""
    from skcluster.ensemble import DeepEnsembleRegressor

    fit, calls = DeepEnsembleRegressor.fit, []

    def stop_on_the_second_fold(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(DeepEnsembleRegressor, "fit", stop_on_the_second_fold)
    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(out, quick=True, n_clusters=60, n_folds=2, n_estimators=1, max_epochs=1, patience=1,
                      rows=("count_rate", "ensemble_1band"), verbose=0, random_state=3)
    assert not (out / "predictions.npz").exists()
    with np.load(out / "predictions_partial.npz") as p:
        first = p["fold"] == 0
        assert np.all(np.isfinite(p["count_rate__mean"]))
        assert np.all(np.isfinite(p["ensemble_1band__mean"][first]))
        assert np.all(np.isnan(p["ensemble_1band__mean"][~first])) and (~first).any()
        assert p["y_true"].shape == p["fold"].shape == p["high_likelihood"].shape
    # a new run into the folder asks before replacing it
    with pytest.raises(FileExistsError, match="predictions_partial.npz"):
        run_benchmark(out, quick=True, rows=("count_rate",), verbose=0)


def test_hybrid_permuted_and_ratio_columns(tiny):
    _, res = tiny
    rows = {r["model"]: r for r in res["rows"]}
    # the permutation row scores the masked ensemble's own fitted folds: it brings that row along
    assert {"hybrid", "ensemble_10band_masked", "ensemble_10band_masked_permuted"} <= set(rows)
    assert rows["count_rate"]["scatter_ratio_to_count_rate"]["ratio"] == pytest.approx(1.0)
    for name in ("hybrid", "ensemble_10band", "ensemble_10band_masked_permuted"):
        q = rows[name]["scatter_ratio_to_count_rate"]
        assert q["ci95"][0] <= q["ratio"] <= q["ci95"][1]
        assert rows[name]["scatter_high_likelihood"] is None or rows[name]["scatter_high_likelihood"] > 0
    # the lever rows are measured on request only
    assert "ensemble_10band_masked_asinh" in ROWS and "ensemble_10band_masked_asinh" not in rows


def test_predictions_carry_the_bright_subset_and_the_observables_lever(tiny):
    out, res = tiny
    saved = np.load(out / "predictions.npz")
    high = saved["high_likelihood"]
    assert high.dtype == bool and high.shape == saved["y_true"].shape
    assert high.sum() == res["survey"]["n_high_likelihood"]
    rows = {r["model"]: r for r in res["rows"]}
    # the ensemble's bright-subset row is its own predictions on exactly the saved mask
    from skcluster.metrics import mass_scatter

    m = saved["ensemble_10band__mean"]
    assert rows["ensemble_10band@high_likelihood"]["scatter"] == pytest.approx(
        mass_scatter(saved["y_true"][high], m[high]))
    assert np.all(np.isfinite(saved["hybrid_observables__mean"]))
    # every whole row carries its paired ratios on the bright clusters and to the boosted trees
    from skcluster.benchmark import paired_scatter_ratio

    q = rows["hybrid"]["bright_scatter_ratio_to_count_rate"]
    assert q["ratio"] == pytest.approx(paired_scatter_ratio(
        saved["y_true"][high], saved["hybrid__mean"][high], saved["count_rate__mean"][high], random_state=3)[0])
    assert q["ratio"] == pytest.approx(rows["hybrid"]["scatter_high_likelihood"]
                                       / rows["count_rate"]["scatter_high_likelihood"])
    assert rows["gbm_scalars"]["scatter_ratio_to_gbm_scalars"]["ratio"] == pytest.approx(1.0)
    assert "bright_scatter_ratio_to_count_rate" not in rows["ensemble_10band@high_likelihood"]


def test_baselines_measure_the_events_with_the_detected_point_sources_masked():
    """Every method gets the same detected point sources: the observables of the scalar baselines too."""
    from skcluster.baselines import ScalarObservables
    from skcluster.benchmark import BASELINE_BANDS_KEV, _masked_observables, catalog_scalars
    from skcluster.datasets import make_survey

    data = make_survey("efeds", n_clusters=40, random_state=5)
    X = data.X.assign(**catalog_scalars(data.catalog))
    cfg = BenchmarkConfig(n_clusters=40)
    masked = _masked_observables(X, cfg)
    plain = ScalarObservables(source="events", bands_keV=BASELINE_BANDS_KEV,
                              size_arcmin=cfg.size_arcmin).fit_transform(X)
    # clusters with a bright detected source inside the 2' aperture lose its photons (the hole is refilled
    # at the local level)
    bright = np.array([len(s) > 0 and np.any((np.hypot(s["x_arcsec"], s["y_arcsec"]) < 100) & (s["counts"] > 30))
                       for s in X["point_sources"]])
    assert bright.sum() >= 2
    assert np.all(masked["counts_ap"][bright] < plain["counts_ap"][bright])
    # a user's baseline pipeline masks them the same way
    from skcluster.baselines import make_baseline

    obs = ScalarObservables(source="events", bands_keV=BASELINE_BANDS_KEV, size_arcmin=cfg.size_arcmin)
    pipe = make_baseline("counts", observables=obs, mask_point_sources=True)
    assert [name for name, _ in pipe.steps] == ["mask", "observables", "regressor"]
    np.testing.assert_array_equal(pipe[:-1].fit_transform(X)["counts_ap"], masked["counts_ap"])


def test_paired_scatter_ratio():
    rng = np.random.default_rng(0)
    y = rng.uniform(13, 15, 3000)
    good = y + rng.normal(0, 0.10, y.size)
    bad = y + rng.normal(0, 0.12, y.size)
    ratio, lo, hi = paired_scatter_ratio(y, good, good)
    assert (ratio, lo, hi) == (1.0, 1.0, 1.0)
    ratio, lo, hi = paired_scatter_ratio(y, bad, good)
    assert 1.0 < lo < ratio < hi < 1.5 and ratio == pytest.approx(1.2, abs=0.05)


def test_out_of_fold_predictions_cover_every_cluster(tiny):
    out, _ = tiny
    pred = np.load(out / "predictions.npz")
    y = pred["y_true"]
    for key in ("count_rate", "ensemble_10band", "cnn_single"):
        m, s = pred[f"{key}__mean"], pred[f"{key}__std"]
        assert m.shape == y.shape and np.all(np.isfinite(m)) and np.all(s > 0)
    # the ensemble's std is at least the member's aleatoric part on average
    assert np.mean(pred["ensemble_10band__std"]) > 0


def test_refuses_to_overwrite_and_checks_settings(tiny, tmp_path):
    out, _ = tiny
    with pytest.raises(FileExistsError, match="overwrite=True"):
        run_benchmark(out, quick=True, verbose=0)
    with pytest.raises(ValueError, match="unknown benchmark rows"):
        BenchmarkConfig(rows=("nope",))
    with pytest.raises(TypeError, match="unknown benchmark settings"):
        run_benchmark(tmp_path / "x", quick=True, n_cluster=10)
    with pytest.raises(ValueError, match="contradicts"):
        run_benchmark(tmp_path / "x", quick=True, preset="full")


def test_presets_and_rows():
    assert PRESETS["full"].n_estimators == 30 and PRESETS["full"].n_clusters == 8000
    assert PRESETS["quick"].n_clusters < PRESETS["standard"].n_clusters
    for name in ("count_rate", "counts", "gbm_scalars", "ensemble_10band", "ensemble_1band",
                 "ensemble_3band", "ensemble_10band_no_z", "ensemble_10band_uniform_mass",
                 "ensemble_10band_noise_0.1"):
        assert name in ROWS
    table = format_table({"rows": [dict(model="m", scatter=0.2, bias=0.01, nll=-0.5, coverage_68=0.7,
                                        coverage_95=0.95, mean_std=0.2, fit_seconds=1.0,
                                        predict_seconds=0.1, scatter_mass_bins=[{"scatter": 0.3}])]})
    assert "| m | 20.0% | - | - | +1.0% |" in table


def test_rows_are_declared_as_data():
    """Each row says where its predictions come from: one model factory, pipeline, member or subset."""
    from skcluster.baselines import OBSERVABLE_SCALARS
    from skcluster.benchmark import _ALL_ROWS, BENCHMARK_ROWS
    from skcluster.preprocessing.joining import _parse_extra

    for row in _ALL_ROWS.values():
        sources = [row.baseline is not None, row.pipeline is not None, row.member_of is not None,
                   row.of is not None, row.permuted_of is not None]
        assert sum(sources) == 1, row
        assert row.name in ROWS and ROWS[row.name] == row.description
        if row.of is not None:
            assert row.of in _ALL_ROWS and row.subset == "high_likelihood"
        for of in (row.member_of, row.permuted_of):
            if of is not None:
                assert _ALL_ROWS[of].pipeline is not None
        # a network gets the baselines' measurements from its own observables step, on masked events as theirs
        extra = {c for c, _ in _parse_extra((row.pipeline or {}).get("extra_scalars", ()), "test")}
        assert not extra & {c for c, _ in _parse_extra(OBSERVABLE_SCALARS, "test")}, row.name
        if (row.pipeline or {}).get("observables"):
            assert row.pipeline["mask_point_sources"], row.name
    assert [r.name for r in BENCHMARK_ROWS][:2] == ["counts", "counts_r500"]
    assert _ALL_ROWS["ensemble_10band_noise_0.1"].pipeline["noise_sigma"] == 0.1
