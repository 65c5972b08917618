"""Benchmark scripts: pairing two saved runs on the same test clusters (paired_ratio.py); per-mass-bin ratios (mass_bins.py); the training-levers smoke run; population_shift.py --refit on a saved run; the physics-family smoke run."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from skcluster.benchmark import paired_scatter_ratio


def _script(name):
    """Load a benchmark script as a module, with its folder on sys.path as when it runs (its _helpers import)."""
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    path = Path(folder) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"skcluster_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_ratio_pairs_groups_and_refuses_other_clusters(tmp_path, capsys):
    pr = _script("paired_ratio")
    rng = np.random.default_rng(0)
    y = {g: rng.uniform(13.5, 15.0, 200) for g in ("deep", "shallow")}
    noise = {g: rng.standard_normal(200) for g in y}
    new = {f"{g}__y_true": y[g] for g in y} | {f"{g}__ensemble__mean": y[g] + 0.10 * noise[g] for g in y}
    old = {f"{g}__y_true": y[g] for g in y} | {f"{g}__ensemble__mean": y[g] + 0.12 * noise[g] for g in y}
    old |= {f"{g}__single_depth__mean": y[g] + 0.08 * rng.standard_normal(200) for g in y}
    np.savez(tmp_path / "new.npz", **new)
    np.savez(tmp_path / "old.npz", **old)
    assert pr.main([str(tmp_path / "new.npz"), str(tmp_path / "old.npz"), "--model", "ensemble"]) == 0
    out = capsys.readouterr().out
    # the same noise scaled: a ratio of 0.10 / 0.12 on every bootstrap draw
    assert out.count("| 0.833 [0.833, 0.833] |") == 2 and "| deep |" in out and "| shallow |" in out
    with np.load(tmp_path / "new.npz") as a, np.load(tmp_path / "old.npz") as b:
        got = pr.paired_ratios(a, b, "ensemble", "single_depth")
    ref = paired_scatter_ratio(y["deep"], new["deep__ensemble__mean"], old["deep__single_depth__mean"])
    assert got["deep"][2:] == pytest.approx(ref)
    # other test clusters, or no such model: refused with the reason
    np.savez(tmp_path / "other.npz", **(old | {"deep__y_true": y["deep"] + 0.01}))
    with np.load(tmp_path / "new.npz") as a, np.load(tmp_path / "other.npz") as b:
        with pytest.raises(ValueError, match="score different clusters"):
            pr.paired_ratios(a, b, "ensemble")
        with pytest.raises(ValueError, match="no group holds 'count_rate'"):
            pr.paired_ratios(a, b, "count_rate")


def test_training_levers_quick_run_scores_each_variant_on_the_same_clusters(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    tl = _script("training_levers")
    out = tmp_path / "levers"
    assert tl.main(["--quick", "--variants", "cosine_lr,hybrid,gbm_hybrid_inputs", "--out", str(out),
                    "--n-jobs", "1"]) == 0
    table = capsys.readouterr().out
    assert "| standard | - |" in table and "| cosine_lr | lr_schedule=cosine |" in table
    assert "| hybrid | extra_scalars=" in table  # the catalogue's scalars reach the network
    import json

    res = json.loads((out / "training_levers.json").read_text())
    assert [r["variant"] for r in res["rows"]] == ["standard", "cosine_lr", "hybrid", "gbm_hybrid_inputs"]
    gbm = res["rows"][3]  # boosted trees on the hybrid network's scalars: no members, no epochs
    assert gbm["best_epochs"] == [] and np.isfinite(gbm["scores"]["scatter"])
    with np.load(out / "predictions.npz") as p:
        y = p["y_true"]
        std_ratio = paired_scatter_ratio(y, p["cosine_lr"], p["standard"], random_state=0)
        assert p["standard"].shape == p["count_rate"].shape == y.shape
    assert res["rows"][1]["ratio_to_standard"] == pytest.approx(list(std_ratio))
    assert res["rows"][0]["ratio_to_standard"][0] == pytest.approx(1.0)
    with pytest.raises(SystemExit):
        tl.main(["--quick", "--variants", "warp_drive", "--out", str(out)])
    assert "unknown ['warp_drive']" in capsys.readouterr().err


def test_mass_bins_scores_each_model_against_the_count_rate_per_bin_of_true_mass(tmp_path, capsys):
    mb = _script("mass_bins")
    rng = np.random.default_rng(1)
    y = rng.uniform(13.2, 15.0, 600)
    noise = rng.standard_normal(600)
    # half the count rate's error above 10^14.2, the same below
    model = y + 0.1 * noise * np.where(y >= 14.2, 0.5, 1.0)
    np.savez(tmp_path / "p.npz", y_true=y, bright=y > 14.5, count_rate=y + 0.1 * noise, model=model)
    assert mb.main([str(tmp_path / "p.npz")]) == 0
    out = capsys.readouterr().out
    assert out.count("| model |") == 6  # the header and the five bins; the count rate is only the reference
    assert "| model | < 13.6 |" in out and "| 1.000 [1.000, 1.000] |" in out
    assert "| model | >= 14.5 |" in out and "| 0.500 [0.500, 0.500] |" in out
    # the same predictions in skcluster benchmark's layout give the same table
    np.savez(tmp_path / "bench.npz", y_true=y, z=np.zeros_like(y), high_likelihood=y > 14.5,
             count_rate__mean=y + 0.1 * noise, count_rate__std=np.full_like(y, 0.1),
             model__mean=model, model__std=np.full_like(y, 0.1))
    assert mb.main([str(tmp_path / "bench.npz")]) == 0
    assert capsys.readouterr().out == out
    np.savez(tmp_path / "none.npz", y_true=y, model=model)
    with pytest.raises(SystemExit):
        mb.main([str(tmp_path / "none.npz")])
    assert "no count_rate" in capsys.readouterr().err


def test_population_shift_refit_fits_the_calibrations_again_on_a_saved_run(tmp_path, monkeypatch, capsys):
    """--refit: a finished run's saved predictions (here synthetic: a network whose response to the true mass has
    slope 0.7) give the fixed-mass rows again, with no training; the other rows are copied."""
    import json

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    ps = _script("population_shift")
    rng = np.random.default_rng(2)

    def network(m):
        return 14.0 + 0.7 * (m - 14.0) + rng.normal(0.0, 0.05, m.size), np.full(m.size, 0.08)

    saved = {}
    m_cal = np.concatenate([rng.normal(13.9, 0.3, 800), rng.uniform(14.3, 15.0, 400)])
    saved["calibration__mean"], saved["calibration__std"] = network(m_cal)
    saved.update(calibration__y_true=m_cal, calibration__z=rng.uniform(0.05, 1.0, m_cal.size),
                 calibration__source=np.repeat([0, 1, 2, 3], [400, 200, 400, 200]))
    for name, _, _ in ps.MOCKS:
        m = rng.uniform(13.4, 14.8, 400)
        saved[f"{name}__y_true"], saved[f"{name}__z"] = m, rng.uniform(0.05, 1.0, m.size)
        raw = network(m)
        saved[f"{name}__ensemble_training_prior__mean"], saved[f"{name}__ensemble_training_prior__std"] = raw
        saved[f"{name}__count_rate__mean"], saved[f"{name}__count_rate__std"] = m + rng.normal(0, 0.1, m.size), \
            np.full(m.size, 0.1)
    run = tmp_path / "run"
    run.mkdir()
    np.savez(run / "predictions.npz", **saved)
    base = {"command": "python benchmarks/population_shift.py", "version": "x", "git": "abc", "cpu": "x86_64",
            "seeds": {}, "train_seconds": 1.0, "weights_effective_sample_size": 1.0,
            "config": dict(ps.SIZES["default"], min_count=50)}
    (run / "population_shift.json").write_text(json.dumps(base))
    ps.main(["--refit", str(run), "--out", str(tmp_path / "refit")])
    report = json.loads((tmp_path / "refit" / "population_shift.json").read_text())
    assert report["refit_of"] == base["command"] and report["refused"] == {}
    assert report["models"] == ["ensemble_training_prior", *ps.CALIBRATIONS, "count_rate"]
    ref = report["results"]["reference"]
    assert ref["ensemble_training_prior"]["slope"] == pytest.approx(0.7, abs=0.03)
    for name in ps.CALIBRATIONS:  # calibrated at fixed true mass: the 1:1 slope
        assert ref[name]["slope"] == pytest.approx(1.0, abs=0.04), name
    md = (tmp_path / "refit" / "population_shift.md").read_text()
    assert "fitted again" in md and "| reference | ensemble_fixed_mass_hinge |" in md
    with pytest.raises(SystemExit):
        ps.main(["--refit", str(run), "--out", str(run)])
    assert "another --out" in capsys.readouterr().err


def test_depth_transfer_quick_run_calibrates_at_fixed_mass_and_reports_slopes(tmp_path, monkeypatch, capsys):
    """depth_transfer.py --observables --fixed-mass: every depth gets the raw, both calibrated (one response; one
    that depends on the exposure) and count-rate masses with slopes and mass-bin biases."""
    import json

    from skcluster import calibration

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    dt = _script("depth_transfer")
    monkeypatch.setitem(dt.SIZES, "quick", dict(n_train=60, n_test=40, n_members=1, max_epochs=1, patience=1))
    out = tmp_path / "depth"
    argv = ["--quick", "--n-jobs", "1", "--mask-point-sources", "--observables", "--fixed-mass", "--out", str(out)]
    # one epoch barely reads the mass, which the calibration would refuse (as train falls back): check off
    for name in ("MOCK_CALIBRATION_RESPONSE", "MOCK_CALIBRATION_RESPONSE_DEPTHS"):
        monkeypatch.setattr(calibration, name, dict(getattr(calibration, name), min_slope=-1e9))
    dt.main(argv)
    res = json.loads((out / "depth_transfer.json").read_text())
    assert res["fixed_mass_refused"] == {} and res["config"]["observables"] is True
    for name in [d[0] for d in dt.DEPTHS]:  # the share of clusters inside the model's DomainFlagger ranges
        assert 0.0 <= res["results"][name]["in_domain_fraction"] <= 1.0
    with np.load(out / "predictions.npz") as p:
        for name in [d[0] for d in dt.DEPTHS]:
            r = res["results"][name]
            for key in ("ensemble", "fixed_mass", "fixed_mass_depth", "count_rate", "true_lx_inverted"):
                assert np.isfinite(r[key]["slope"]) and "max_abs_bin_bias_dex" in r[key]
            assert r["true_lx_inverted"]["scatter"] == pytest.approx(
                dt.mass_scatter(p[f"{name}__y_true"], p[f"{name}__true_lx_inverted__mean"]))
            assert p[f"{name}__fixed_mass__mean"].shape == p[f"{name}__y_true"].shape == (r["ensemble"]["n"],)
            for key in ("fixed_mass", "fixed_mass_depth"):
                assert r[key]["scatter"] == pytest.approx(dt.mass_scatter(p[f"{name}__y_true"],
                                                                          p[f"{name}__{key}__mean"]))
        n_cal = p["calibration__y_true"].size   # the calibration set, kept for refitting other responses
        assert n_cal >= 24 and all(p[f"calibration__{k}"].shape == (n_cal,) for k in
                                   ("z", "exposure", "ensemble__mean", "ensemble__std"))
    assert "| deep |" in capsys.readouterr().out.split("Calibrated at fixed true mass")[1]
    # --refit: the calibrations again from the saved predictions, without training: the same numbers
    dt.main(["--refit", str(out), "--out", str(tmp_path / "refit")])
    again = json.loads((tmp_path / "refit" / "depth_transfer.json").read_text())
    assert again["refit_of"] == res["command"] and again["fixed_mass_refused"] == {}
    for name in [d[0] for d in dt.DEPTHS]:
        for key in ("fixed_mass", "fixed_mass_depth", "true_lx_inverted", "ensemble"):
            assert again["results"][name][key] == pytest.approx(res["results"][name][key], nan_ok=True)
    with np.load(out / "predictions.npz") as p, np.load(tmp_path / "refit" / "predictions.npz") as q:
        assert sorted(p.files) == sorted(q.files)
        np.testing.assert_array_equal(p["deep__fixed_mass_depth__mean"], q["deep__fixed_mass_depth__mean"])
    dt.main(["--refit", str(out), "--hinge", "13.6,14.4", "--out", str(tmp_path / "hinged")])
    hinged = json.loads((tmp_path / "hinged" / "depth_transfer.json").read_text())
    assert hinged["hinge"] == [13.6, 14.4]
    for r in hinged["results"].values():   # another response: new calibrated rows (or a reason why not)
        assert ("fixed_mass_depth" in r) != ("fixed_mass_depth" in hinged["fixed_mass_refused"])
    for bad in (["--refit", str(out), "--out", str(out)], ["--hinge", "13.5"]):
        with pytest.raises(SystemExit):
            dt.main(bad)


def test_depth_transfer_true_lx_inverted_recovers_the_mass_of_a_cluster_on_the_mean_relation():
    """The selection floor's estimator: a cluster exactly on the mock's mean L_X-M gets its own mass back, one
    0.1 dex brighter 0.1 / slope dex more."""
    from types import SimpleNamespace

    from skcluster.datasets.parameters import resolve_parameters
    from skcluster.datasets.scaling import mean_log_lx

    dt = _script("depth_transfer")
    p = resolve_parameters("erosita")
    logm, z = np.array([13.1, 14.0, 14.9]), np.array([0.05, 0.4, 1.2])
    lx = 10 ** (mean_log_lx(logm, z, p) + np.array([0.0, 0.1, 0.0]))
    got = dt.true_lx_inverted(SimpleNamespace(params=p, catalog={"z": z, "L_X": lx}))
    np.testing.assert_allclose(got, logm + np.array([0.0, 0.1 / p.lx_slope, 0.0]), atol=1e-10)


def test_surface_density_counts_clusters_per_area_against_the_published_densities(tmp_path, capsys):
    """surface_density.py: each variant's density and its ratios to eFEDS (above fixed counts too) or eRASS1."""
    import json

    from skcluster.datasets import make_survey

    sd = _script("surface_density")
    out = tmp_path / "sd"
    sd.main(["--variants", "efeds_default,erass1_default", "--area-efeds", "6", "--area-erass1", "40",
             "--out", str(out)])
    rows = {r["variant"]: r for r in json.loads((out / "surface_density.json").read_text())["rows"]}
    ref = make_survey("efeds", area_deg2=6, random_state=0, verbose=False).catalog
    e = rows["efeds_default"]
    assert e["n"] == len(ref) and e["per_deg2"] == pytest.approx(len(ref) / 6)
    assert e["ratio_to_efeds"] == pytest.approx(len(ref) / 6 / (542 / 140))
    assert e["ratio_above_105_counts"] == pytest.approx(np.sum(ref["ML_CTS"] > 105) / 6 / (0.5 * 542 / 140))
    r = rows["erass1_default"]
    assert r["per_deg2_cosmology_z"] <= r["per_deg2"]
    assert r["ratio_to_erass1_cosmology"] == pytest.approx(r["per_deg2_cosmology_z"] / (5259 / 12791))
    assert "| erass1_default |" in (out / "surface_density.md").read_text()
    # Eddington shift: masses inferred from L_X lean toward the numerous low-mass halos, so a fit against them
    # sits above the input relation, more so the larger the scatter, and not at all without scatter
    shift = e["eddington_shift_dex"]
    assert 0.0 < shift["0.30"] < shift["0.40"] < 0.2
    bunch = make_survey("efeds", area_deg2=6, random_state=0, verbose=False)
    assert shift["0.30"] == pytest.approx(sd.eddington_shift_dex(bunch, 0.30))
    assert abs(sd.eddington_shift_dex(bunch, 0.02)) < 0.1 * shift["0.30"]
    with pytest.raises(SystemExit):
        sd.main(["--variants", "nonsense", "--out", str(out)])
    assert "unknown variants ['nonsense']" in capsys.readouterr().err


def test_core_excised_reader_scores_each_proxy_against_the_count_rate(tmp_path):
    """core_excised_reader.py: every proxy is scored on the same held-out half, paired with the count rate."""
    import json

    cer = _script("core_excised_reader")
    out = tmp_path / "cer"
    cer.main(["--n-clusters", "200", "--out", str(out)])
    rows = {r["proxy"]: r for r in json.loads((out / "core_excised_reader.json").read_text())["rows"]}
    assert rows["detection fit count rate (ML_CTS)"]["ratio_to_count_rate"] == [1.0, 1.0, 1.0]
    fit = rows["Poisson fit 0.15-1.0 x the r500 estimate"]
    assert 0.05 < fit["scatter"] < 2.0 and fit["ratio_to_count_rate"][1] <= fit["ratio_to_count_rate"][0]
    assert "oracle: Poisson fit 0.15-1 x the true r500" in rows


def test_core_excised_fit_recovers_the_counts_of_a_known_profile():
    """The Poisson fit of a beta = 2/3 profile over a known background gives its counts within r500 back."""
    from types import SimpleNamespace

    from skcluster.baselines.apertures import area_in_box

    cer = _script("core_excised_reader")
    rng = np.random.default_rng(3)
    dr, half, m = 1.0, 600.0, 400
    radii = np.arange(0, 850) * dr
    rc, psf, theta = 30.0, 8.64, 150.0
    total, bkg = 400.0, 2e-4  # cluster counts (PSF-convolved model, to infinity); background per arcsec^2
    frac = 1.0 - 1.0 / np.sqrt(1.0 + (radii / (rc + psf)) ** 2)
    mu = total * np.diff(frac) + bkg * np.diff(area_in_box(radii, half))
    C = np.zeros((m, 1, radii.size))
    C[:, 0, 1:] = np.cumsum(rng.poisson(mu, (m, mu.size)), axis=1)
    net = SimpleNamespace(C=C, dr=dr, half=half, background=np.full((m, 1), bkg))
    got = cer.core_excised_fit(net, np.full(m, theta), np.array([0]), np.full(m, rc), psf)
    expected = total * (1.0 - 1.0 / np.sqrt(1.0 + (theta / rc) ** 2))
    assert np.mean(got) == pytest.approx(expected, rel=0.03)  # unbiased over 400 draws
    assert 0.05 < np.std(got) / expected < 0.5  # and noisy as ~100 counts over background are


def test_accuracy_per_flop_quick_run_counts_flops_and_pairs_each_configuration(tmp_path, monkeypatch, capsys):
    import json

    from skcluster.nn import ClusterCNN, training_flops

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    apf = _script("accuracy_per_flop")
    out = tmp_path / "apf"
    argv = ["--quick", "--configs", "standard,packed_alpha2,npix_24", "--n-boot", "100", "--out", str(out),
            "--n-jobs", "1"]
    assert apf.main(argv) == 0
    table = capsys.readouterr().out
    assert "CPU: " in table and "AVX512-BF16" in table and "the standard model runs in" in table
    res = json.loads((out / "accuracy_per_flop.json").read_text())
    rows = {r["config"]: r for r in res["rows"]}
    assert list(rows) == ["standard", "packed_alpha2", "npix_24"]
    std, packed, small = rows["standard"], rows["packed_alpha2"], rows["npix_24"]
    # 40 clusters, 2 folds of 20, a 20% validation split: 16 training cubes, 2 members, 2 epochs, 2 folds
    assert std["cube_passes"] == packed["cube_passes"] == 2 * 16 * 2 * 2
    one = training_flops(ClusterCNN, (10, 50, 50), n_scalars=std["scalars"])
    assert std["flops_per_cube_training"] == 2 * one["training"]
    assert std["training_flops"] == 2 * 2 * 2 * (16 * one["training"] + 4 * one["forward"])
    # two packed members of width alpha / M = 1: exactly two standard members' arithmetic
    assert packed["training_flops"] == std["training_flops"]
    assert small["input_shape"] == [10, 24, 24] and small["training_flops"] < 0.3 * std["training_flops"]
    assert std["vs_standard"]["scatter_ratio"] == [1.0, 1.0, 1.0]
    with np.load(out / "predictions.npz") as p:
        y = p["y_true"]
        assert p["fold"].shape == y.shape == (40,) and np.isfinite(p["npix_24__mean"]).all()
        ratio = paired_scatter_ratio(y, p["npix_24__mean"], p["standard__mean"], n_boot=100, random_state=0)
        assert (p["packed_alpha2__epistemic"] > 0).all()
    assert small["vs_standard"]["scatter_ratio"] == pytest.approx(list(ratio))
    # off the training physics: the first fold's models on 20 clusters of a fainter L_X-M population
    assert "Off the training physics: 20 clusters of `lx_norm_-0.1dex`" in table
    with np.load(out / "predictions.npz") as p:
        far = p["shifted__packed_alpha2__epistemic"]
        assert p["shifted__y_true"].shape == far.shape == (20,)
        in_fold = p["packed_alpha2__epistemic"][p["fold"] == 0]
    sh = packed["shifted"]
    assert sh["mock"] == "lx_norm_-0.1dex" and sh["epistemic_growth"] == pytest.approx(far.mean() / in_fold.mean())
    assert (out / "accuracy_per_flop.png").stat().st_size > 0
    with pytest.raises(FileExistsError):  # an earlier run's files are not replaced without --overwrite
        apf.main(argv)
    with pytest.raises(SystemExit):
        apf.main(["--quick", "--configs", "warp_drive", "--out", str(tmp_path / "x")])
    assert "unknown ['warp_drive']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        apf.main(["--quick", "--config", "tiny=[4, 8]", "--out", str(tmp_path / "x")])
    assert "expected NAME=JSON with a JSON object" in capsys.readouterr().err


def test_physics_family_quick_run_scores_both_directions_and_the_std_parts(tmp_path, monkeypatch, capsys):
    """physics_family.py: every model on every test mock, the marginalised ones' std split into its parts,
    paired comparisons recomputable from the saved predictions, the issue's targets on the held-out rows."""
    import json

    from skcluster.metrics import mass_slope

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    pf = _script("physics_family")
    monkeypatch.setitem(pf.SIZES, "quick", dict(n_train=24, n_test=12, n_shift=8, n_cal=16, members=2, test_draws=2,
                                                max_epochs=1, patience=1))
    monkeypatch.setattr(pf, "SHIFT_SIZES", (0.0, 3.0))
    # a 1-epoch network barely responds to mass: a straight response that may fall lets the calibration through
    monkeypatch.setattr(pf, "MOCK_CALIBRATION_RESPONSE", {"min_slope": -1e9})
    out = tmp_path / "family"
    argv = ["--quick", "--n-jobs", "1", "--n-boot", "50", "--one-form", "--out", str(out)]
    assert pf.main(argv) == 0
    table = capsys.readouterr().out
    res = json.loads((out / "physics_family.json").read_text())
    rows = {(r["test"], r["model"]): r for r in res["rows"]}
    assert set(rows) == {(t, m) for t in pf.TESTS for m in pf.MODELS if m != "fixed_split"}  # no --split-control
    # --one-form: the preset with one of the other family's forms, compared paired but without the targets
    assert set(pf.ONE_FORM) < set(pf.TESTS) and "`one_psf`: the preset with the other family's PSF" in table
    for name in pf.ONE_FORM:
        assert "targets" not in rows[(name, "marginalised")] and "vs_fixed" in rows[(name, "marginalised")]
    with np.load(out / "predictions.npz") as p:
        for test, name in (("other_mix", "marginalised"), ("builtin_mix", "marginalised_other")):
            y, mean = p[f"{test}__y_true"], p[f"{test}__{name}__mean"]
            std, photon, physics = (p[f"{test}__{name}__{k}"] for k in ("std", "photon_std", "physics_std"))
            assert np.isnan(p[f"{test}__{name}__network_std"]).all()  # one member per draw
            np.testing.assert_allclose(std**2, photon**2 + physics**2, rtol=1e-5)
            assert (physics > 0).all() and f"{test}__fixed__physics_std" not in p
            r, fixed = rows[(test, name)], p[f"{test}__{pf.MODELS[name][2]}__mean"]
            assert r["scores"]["median_bias_dex"] == pytest.approx(np.median(mean - y))
            assert r["scores"]["slope"] == pytest.approx(mass_slope(y, mean)["slope"])
            assert r["vs_fixed"]["slope"][0] == pytest.approx(mass_slope(y, mean)["slope"]
                                                              - mass_slope(y, fixed)["slope"])
            assert r["vs_fixed"]["scatter_ratio"] == pytest.approx(
                list(paired_scatter_ratio(y, mean, fixed, n_boot=50, random_state=0)))
            assert set(r["targets"]) == {"slope >= 0.9", "|slope - 1| <= count rate's", "|bias| <= count rate's",
                                         "cov68 0.60-0.80", "cov95 >= 0.90"}
            for model, against in ((name, "count_rate_fwd"), (f"{name}_cal", "count_rate")):  # like with like
                r = rows[(test, model)]
                cr_name = pf.MODELS[model][1]
                assert cr_name.startswith(against)
                cr = mass_slope(y, p[f"{test}__{cr_name}__mean"])["slope"]
                slope = mass_slope(y, p[f"{test}__{model}__mean"])["slope"]
                assert r["targets"]["|slope - 1| <= count rate's"] == (abs(slope - 1) <= abs(cr - 1))
            # the calibrated model's std parts scale with its std
            cal_std, cal_phys = p[f"{test}__{name}_cal__std"], p[f"{test}__{name}_cal__physics_std"]
            np.testing.assert_allclose(cal_phys / cal_std, physics / std, rtol=1e-5)
            assert not np.allclose(p[f"{test}__{name}_cal__mean"], mean)
        assert p["shift3__y_true"].shape == p["shift3__marginalised__physics_std"].shape == (8,)
    for test, name in (("builtin", "marginalised"), ("builtin_mix", "marginalised"), ("other_mix", "marginalised_other"),
                       ("builtin", "marginalised_cal"), ("other_mix", "marginalised_other_cal")):
        assert set(rows[(test, name)]["targets"]) == {"scatter <= 1.05x fixed (interval)", "cov68 0.63-0.73"}
    assert res["calibration_refused"] == {} and "`marginalised_cal`: marginalised, calibrated" in table
    assert res["calibration_response"]["marginalised_cal"] == "a straight response"   # as patched above
    assert [e["size"] for e in res["shift"]] == [0.0, 3.0]
    # by true mass: the raw models, each bin's clusters counted once, its scores those of its clusters
    binned = {(r["test"], r["model"], r["mass_bin"]): r for r in res["by_mass"]}
    assert {m for _, m, _ in binned} <= set(pf.BINNED_MODELS)
    with np.load(out / "predictions.npz") as p:
        y, mean = p["other_mix__y_true"], p["other_mix__marginalised__mean"]
        checked = [k for k in binned if k[:2] == ("other_mix", "marginalised")]
        assert checked
        for key in checked:
            lo, hi = {"< 13.8": (-np.inf, 13.8), "13.8-14.1": (13.8, 14.1), ">= 14.1": (14.1, np.inf)}[key[2]]
            keep = (y >= lo) & (y < hi)
            assert binned[key]["n"] == keep.sum() >= 3
            assert binned[key]["scores"]["median_bias_dex"] == pytest.approx(np.median(mean[keep] - y[keep]))
    assert "| other_mix | marginalised | " in table.split("By true mass")[1]

    # feature_distance.py on that run: the same clusters simulated again, each test mock's share beyond the
    # training clusters' 90% point and the coverage inside and beyond, recomputable from the run's predictions
    monkeypatch.setitem(sys.modules, "physics_family", pf)   # the patched sizes above
    fd = _script("feature_distance")
    assert fd.main(["--run", str(out), "--n-jobs", "1", "--n-boot", "50"]) == 0
    dist = json.loads((out / "feature_distance.json").read_text())
    by_test = {r["test"]: r for r in dist["rows"]}
    assert set(by_test) == {t for t in pf.TESTS if t != "builtin_mix"} | {"shift0", "shift3"}
    with np.load(out / "predictions.npz") as p:
        r = by_test["other_mix"]
        y, mean, std = (p[f"other_mix__marginalised__{k}"] if k != "y" else p["other_mix__y_true"]
                        for k in ("y", "mean", "std"))
        covered = np.abs(mean - y) <= pf.Z68 * std
        share, m = r["share_beyond"], r["marginalised"]
        inside, beyond = (0.0 if share == 1 else m["coverage_68_inside"]), (0.0 if share == 0 else
                                                                             m["coverage_68_beyond"])
        # the clusters inside and beyond make up the whole mock: their coverages average to its coverage
        assert (1 - share) * inside + share * beyond == pytest.approx(covered.mean())
    assert "| other_mix | 12 |" in (out / "feature_distance.md").read_text()
    with pytest.raises(FileExistsError):   # its files are not replaced without --overwrite
        fd.main(["--run", str(out), "--n-jobs", "1"])
    assert "Command: `python benchmarks/physics_family.py --quick" in table and "| 3 |" in table
    assert (out / "physics_family.png").stat().st_size > 0
    with pytest.raises(FileExistsError):  # an earlier run's files are not replaced without --overwrite
        pf.main(argv)
    with pytest.raises(SystemExit):
        pf.main(["--quick", "--members-per-draw", "0", "--out", str(tmp_path / "x")])
    assert "--members-per-draw must be at least 1, got 0" in capsys.readouterr().err
