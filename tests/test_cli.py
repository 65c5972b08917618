"""The ``skcluster`` command: help, exit codes, demo (installed entry point), train, predict.

The demo and the training of the small model used by the predict tests run
through the installed console script (``skcluster ...`` in a subprocess,
with PYTHONPATH pointing at this checkout); the many predict cases run
``skcluster.cli.main`` in-process to stay fast.
"""

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from conftest import EFEDS_CLUSTERS, known_response_masses, tiny_pipeline
from sklearn.utils import Bunch

from skcluster import cli
from skcluster.cli import EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_OUTPUT, main

REPO = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("demo", "simulate", "train", "predict", "benchmark")


def _script():
    """The installed console script (next to this interpreter, else on PATH)."""
    here = Path(sys.executable).parent / "skcluster"
    path = str(here) if here.is_file() else shutil.which("skcluster")
    assert path, "the skcluster console script is not installed (pip install -e .)"
    return path


def _run(args, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([_script(), *args], capture_output=True, text=True, env=env, timeout=timeout)


def _leftovers(folder):
    """Temporary files of an interrupted write (atomic_output names them '.<name>.*')."""
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------------------
# help and exit codes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help_with_examples_and_exit_codes(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"skcluster {command}" in text.split("examples:")[1]
    assert "exit codes:" in text and "3  an output exists" in text


def test_train_npix_default_is_the_packages():
    from skcluster._cli_parser import DEFAULT_NPIX, build_parser
    from skcluster.models import DEFAULT_NPIX as PACKAGE_NPIX

    assert DEFAULT_NPIX == PACKAGE_NPIX
    assert build_parser().parse_args(["train", "--out", "m.skc"]).npix == PACKAGE_NPIX


def test_train_help_states_the_calibration_masses_the_package_uses(capsys):
    """The help spells the mock calibration's mass limits out (the parser must not import sklearn to read them)."""
    from skcluster.calibration import MOCK_CALIBRATION_HIGH_MASS_MIN, MOCK_CALIBRATION_HINGE

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"raised to 10^{MOCK_CALIBRATION_HIGH_MASS_MIN:g} Msun" in text
    assert f"may bend above 10^{MOCK_CALIBRATION_HINGE:g} Msun" in text


def test_top_level_help_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in SUBCOMMANDS)
    assert main([]) == EXIT_INPUT  # no command: help on stderr, usage error
    for argv in (["simulate", "--out", "x"],                      # neither --n-clusters nor --area
                 ["simulate", "--n-clusters", "0", "--out", "x"],  # not positive
                 ["train", "--bands", "0.3-0.6,banana", "--out", "m.skc"],
                 ["predict", "--model", "m", "--catalog", "c", "--out", "o.csv"]):  # no images/events
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == EXIT_INPUT, argv


def test_internal_errors_exit_1_in_one_line_and_debug_shows_the_traceback(monkeypatch, capsys, tmp_path):
    def broken(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli, "_cmd_simulate", broken)
    assert main(["simulate", "--n-clusters", "5", "--out", str(tmp_path / "s")]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "skcluster simulate: internal error: ZeroDivisionError: boom (run again with --debug for the "
        "traceback)"]
    assert main(["--debug", "simulate", "--n-clusters", "5", "--out", str(tmp_path / "s")]) == EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_benchmark_passes_its_options_through(monkeypatch, tmp_path, capsys):
    calls = []
    fake = types.ModuleType("skcluster.benchmark")
    fake.run_benchmark = lambda out, **kw: calls.append((out, kw)) or {"table": "| a |"}
    monkeypatch.setitem(sys.modules, "skcluster.benchmark", fake)
    out = str(tmp_path / "b")
    assert main(["benchmark", "--quick", "--out", out, "--folds", "3", "--seed", "7", "--n-jobs", "2",
                 "--overwrite"]) == EXIT_OK
    assert calls == [(out, dict(quick=True, n_folds=3, random_state=7, n_jobs=2, verbose=1,
                                overwrite=True))]
    assert "| a |" in capsys.readouterr().out
    calls.clear()
    assert main(["benchmark", "--out", out, "--preset", "standard", "--n-clusters", "4000",
                 "--n-estimators", "3", "--max-epochs", "30", "--batch-size", "64", "--device", "cuda"]) == EXIT_OK
    assert calls == [(out, dict(quick=False, n_folds=None, random_state=0, n_jobs=None, verbose=1,
                                overwrite=False, preset="standard", n_clusters=4000, n_estimators=3,
                                max_epochs=30, batch_size=64, device="cuda"))]



def test_benchmark_perf_says_where_it_moved(capsys, tmp_path):
    assert main(["benchmark", "--perf", "--out", str(tmp_path / "p")]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "python benchmarks/perf.py" in err and "nothing was run" in err
    assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------------------
# the demo, through the installed entry point
# ---------------------------------------------------------------------------
def test_demo_end_to_end_through_the_installed_command(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--n-clusters", "120", "--n-estimators", "2", "--max-epochs", "2",
            "--seed", "1"]
    proc = _run(args)
    assert proc.returncode == EXIT_OK, proc.stderr[-3000:]
    # the table on stdout, progress on stderr
    assert "| CNN deep ensemble (2 members) |" in proc.stdout
    assert "| count rate (ML_CTS / exposure) |" in proc.stdout
    for stage in ("mock survey", "ensemble members", "CNN epochs", "[demo] 4/4"):
        assert stage in proc.stderr, stage
    names = {"model.skc", "results.json", "results.md", "predictions.csv", "performance.png", "clusters.png"}
    assert {p.name for p in out.iterdir()} == names  # and no temporary leftovers
    res = json.loads((out / "results.json").read_text())
    assert res["n_train"] + res["n_test"] == 120 and res["n_test"] == 30
    for model in ("cnn_ensemble", "count_rate"):
        m = res["metrics"][model]
        assert 0 < m["scatter"] < 5 and 0 <= m["coverage_68"] <= 1 and m["mean_std"] > 0
        assert np.isfinite(m["bias"])
    pred = Table.read(out / "predictions.csv")
    assert len(pred) == 30
    assert np.all(np.isfinite(pred["log10_M500_cnn"])) and np.all(pred["log10_M500_cnn_err"] > 0)
    assert np.all((pred["log10_M500_true"] > 12.9) & (pred["log10_M500_true"] < 15.3))
    for png in ("performance.png", "clusters.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from skcluster import persist

    model = persist.load(out / "model.skc")
    assert len(model["model"].estimators_) == 2
    assert res["settings"]["bands_keV"] == [list(b) for b in model["bin"].bands_keV_]

    # a second run refuses to overwrite (exit 3, before any work), files untouched
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    proc = _run(args)
    assert proc.returncode == EXIT_OUTPUT
    assert "already holds" in proc.stderr and "--overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


# ---------------------------------------------------------------------------
# train + predict on the real eFEDS images
# ---------------------------------------------------------------------------
TRAIN = ["--bands", "efeds7", "--n-clusters", "300", "--n-estimators", "2", "--max-epochs", "8",
         "--channels", "8,16", "--dense", "16", "--seed", "0", "--prior", "flat", "--keep-point-sources"]


@pytest.fixture(scope="module")
def efeds7_model(tmp_path_factory):
    """A small model in the bands of the real eFEDS images, trained by ``skcluster train``."""
    path = tmp_path_factory.mktemp("model") / "efeds7.skc"
    proc = _run(["train", *TRAIN, "--out", str(path), "--quiet"])
    assert proc.returncode == EXIT_OK, proc.stderr[-3000:]
    assert "saved the model" in proc.stdout and "0.3-0.6, 0.6-1.1" in proc.stdout
    return path


@pytest.fixture(scope="module")
def ho3_model(tmp_path_factory):
    """A model in other bands (Ho et al. 2023's three), for the band-mismatch error."""
    from skcluster import persist
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline

    data = make_survey(n_clusters=30, random_state=2, verbose=False)
    pipe = make_mass_pipeline(bands="ho3", n_estimators=1, max_epochs=1, channels=(4,), dense=(4,),
                              random_state=0).fit(data.X, data.y)
    path = tmp_path_factory.mktemp("ho3") / "ho3.skc"
    persist.save(pipe, path)
    return path


def _catalog(folder, rows, name="clusters.csv"):
    path = Path(folder) / name
    Table(rows=rows, names=("name", "RA", "DEC", "z")).write(path)
    return path


def _two_clusters(folder):
    return _catalog(folder, [(k, v["ra"], v["dec"], v["z"]) for k, v in EFEDS_CLUSTERS.items()])


def _predict_args(model, catalog, images, exposures, out, *extra):
    return ["predict", "--model", str(model), "--catalog", str(catalog), "--images", *map(str, images),
            "--exposure", *map(str, exposures), "--exposure-vignetting", "unvignetted",
            "--out", str(out), "--quiet", *extra]


def test_predict_real_efeds_two_clusters(efeds7_model, efeds_files, tmp_path, capsys):
    images, exposures = efeds_files
    cat = _two_clusters(tmp_path)
    out = tmp_path / "masses.fits"
    # files in any order: they are matched to the model's bands by name
    code = main(_predict_args(efeds7_model, cat, images[::-1], exposures, out))
    assert code == EXIT_OK
    stdout = capsys.readouterr().out
    t = Table.read(out)
    assert list(t["name"]) == ["bright", "faint"]
    m, e = np.asarray(t["log10_M500"]), np.asarray(t["log10_M500_err"])
    print(f"\nreal eFEDS, model {TRAIN}: bright {m[0]:.3f} +- {e[0]:.3f}, faint {m[1]:.3f} +- {e[1]:.3f};"
          f" coverage {list(np.round(t['cutout_coverage'], 3))}")
    # the bright cluster gets a mass; the faint one lies near the image edge: a third of its box has
    # data, outside what the model saw in training (full boxes), so it is flagged and gets none
    assert np.isfinite(m[0]) and 13.0 < m[0] < 15.5 and 0 < e[0] < 1.5
    assert list(t["in_domain"]) == [True, False] and np.isnan(m[1]) and np.isnan(e[1])
    assert "coverage" in t["domain_reason"][1]
    assert list(t["cutout_complete"]) == [True, False]
    assert t["cutout_coverage"][0] == 1.0 and 0.1 < t["cutout_coverage"][1] < 0.9
    assert "NO (padded)" in stdout and "1 incomplete cut-out(s) flagged" in stdout
    assert t.meta["MASSPRIOR"] == "flat"  # as trained (--prior flat)
    # same numbers as the model itself with the cut-out step swapped in
    from skcluster import persist
    from skcluster.io import read_catalog
    from skcluster.models import DEFAULT_NPIX
    from skcluster.preprocessing import ImageCutout

    model = persist.load(efeds7_model)
    assert model.mass_prior_ == "flat"
    model.estimator_.estimator.set_params(bin=ImageCutout(images=images, exposures=exposures, npix=DEFAULT_NPIX,
                                                          size_arcmin=20, exposure_vignetting="unvignetted",
                                                          verbose=False))
    with pytest.warns(Warning):
        ref = model.predict(read_catalog(cat), return_std=True)
    np.testing.assert_allclose(m[0], ref[0][0], atol=1e-6)
    np.testing.assert_allclose(e[0], ref[1][0], atol=1e-6)


def test_predict_csv_and_ecsv_and_existing_output(efeds7_model, efeds_files, tmp_path, capsys):
    images, exposures = efeds_files
    cat = _two_clusters(tmp_path)
    for name in ("m.csv", "m.ecsv"):
        assert main(_predict_args(efeds7_model, cat, images, exposures, tmp_path / name)) == EXIT_OK
        assert len(Table.read(tmp_path / name)) == 2
    before = (tmp_path / "m.csv").read_bytes()
    assert main(_predict_args(efeds7_model, cat, images, exposures, tmp_path / "m.csv")) == EXIT_OUTPUT
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "m.csv").read_bytes() == before
    assert main(_predict_args(efeds7_model, cat, images, exposures, tmp_path / "m.csv",
                              "--overwrite", "--prefix", "cnn_")) == EXIT_OK
    assert "cnn_log10_M500" in Table.read(tmp_path / "m.csv").colnames


def _expect_error(argv, code, match, capsys, out):
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if "error:" in ln]
    assert len(errors) == 1 and match in errors[0], err
    assert not Path(out).exists()
    folder = Path(out).parent
    if folder.is_dir():
        assert _leftovers(folder) == []
    return errors[0]


def test_bad_input_clear_message_nonzero_exit_no_output(efeds7_model, ho3_model, efeds_files, tmp_path,
                                                        capsys):
    images, exposures = efeds_files
    good = _two_clusters(tmp_path)
    out = tmp_path / "out" / "masses.fits"
    out.parent.mkdir()

    # every catalogue position outside the images (one of them alone gets no mass: below)
    off = _catalog(tmp_path, [("far", 150.0, 3.0, 0.3), ("farther", 160.0, 3.0, 0.3)], "off.csv")
    msg = _expect_error(_predict_args(efeds7_model, off, images, exposures, out), EXIT_INPUT,
                        "all 2 catalogue position(s) lie wholly off the images", capsys, out)
    assert "row 0: (150.0, 3.0)" in msg

    # a missing band file: one band left out, and one named file that does not exist
    _expect_error(_predict_args(efeds7_model, good, images[:-1], exposures, out), EXIT_INPUT,
                  "missing band images for the band(s) 5-7 keV", capsys, out)
    gone = [*images[:-1], tmp_path / "img_5000_7000.fits.gz"]
    _expect_error(_predict_args(efeds7_model, good, gone, exposures, out), EXIT_INPUT,
                  "band image not found", capsys, out)

    # a model trained on other bands than the images provide
    _expect_error(_predict_args(ho3_model, good, images, exposures, out), EXIT_INPUT,
                  "the model was trained on other bands than the band images provide", capsys, out)

    # an unwritable output path: inside a file, and where the OS refuses the write
    _expect_error(_predict_args(efeds7_model, good, images, exposures, tmp_path / "off.csv" / "m.fits"),
                  EXIT_OUTPUT, "output folder does not exist", capsys, tmp_path / "off.csv" / "m.fits")
    if sys.platform.startswith("linux") and Path("/proc").is_dir():
        _expect_error(_predict_args(efeds7_model, good, images, exposures, "/proc/skcluster-test.fits"),
                      EXIT_OUTPUT, "cannot write '/proc/skcluster-test.fits'", capsys,
                      "/proc/skcluster-test.fits")
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if not os.access(ro, os.W_OK):  # (root may write anywhere)
            _expect_error(_predict_args(efeds7_model, good, images, exposures, ro / "m.fits"), EXIT_OUTPUT,
                          "not writable", capsys, ro / "m.fits")
    finally:
        ro.chmod(0o755)

    # bad catalogue values, missing columns, unknown formats, broken model files
    bad_z = _catalog(tmp_path, [("a", 140.33848, 3.29060, -0.2)], "bad_z.csv")
    _expect_error(_predict_args(efeds7_model, bad_z, images, exposures, out), EXIT_INPUT,
                  "z must be finite and in (0.0, 6.0]; got row 0: -0.2", capsys, out)
    _expect_error(_predict_args(efeds7_model, good, images, exposures, out, "--z-col", "zz"), EXIT_INPUT,
                  "no redshift column 'zz'", capsys, out)
    _expect_error(_predict_args(efeds7_model, good, images, exposures, tmp_path / "m.txt"), EXIT_INPUT,
                  "cannot tell the table format", capsys, tmp_path / "m.txt")
    junk = tmp_path / "junk.skc"
    junk.write_text("not a model")
    _expect_error(_predict_args(junk, good, images, exposures, out), EXIT_INPUT,
                  "cannot load the model", capsys, out)
    _expect_error(_predict_args(tmp_path / "none.skc", good, images, exposures, out), EXIT_INPUT,
                  "model file not found", capsys, out)
    assert list(out.parent.iterdir()) == []

    # one position off the images: that cluster gets no mass and a reason, the other its mass
    one_off = _catalog(tmp_path, [("in", 140.33848, 3.29060, 0.33), ("far", 150.0, 3.0, 0.3)], "one_off.csv")
    assert main(_predict_args(efeds7_model, one_off, images, exposures, out)) == EXIT_OK
    assert "1 of 2 cluster(s) have no mass" in capsys.readouterr().err
    t = Table.read(out)
    assert list(t["in_domain"]) == [True, False] and t["domain_reason"][1] == "off the images"
    m = np.ma.filled(t["log10_M500"], np.nan)  # (astropy reads a NaN of a FITS table as masked)
    assert np.isfinite(m[0]) and np.isnan(m[1])


# ---------------------------------------------------------------------------
# simulate -> train --data -> predict --events
# ---------------------------------------------------------------------------
def test_simulate_train_from_files_and_predict_from_event_lists(tmp_path, capsys):
    from skcluster import persist
    from skcluster.datasets import read_survey

    sim = tmp_path / "sim"
    assert main(["simulate", "--n-clusters", "40", "--seed", "5", "--out", str(sim), "-q"]) == EXIT_OK
    assert {p.name for p in sim.iterdir()} == {"catalog.fits", "survey.json", "point_sources.fits", "events"}
    assert len(list((sim / "events").iterdir())) == 40
    assert _leftovers(tmp_path) == []
    # an existing survey is kept without --overwrite
    assert main(["simulate", "--n-clusters", "10", "--out", str(sim), "-q"]) == EXIT_OUTPUT
    assert len(list((sim / "events").iterdir())) == 40

    model = tmp_path / "m.skc"
    # point sources kept: the predictions from the event files below must equal the pipeline's own
    assert main(["train", "--data", str(sim), "--bands", "ho3", "--n-estimators", "1", "--max-epochs", "2",
                 "--channels", "4,8", "--dense", "8", "--npix", "25", "--keep-point-sources", "--out", str(model),
                 "-q"]) == EXIT_OK
    assert "40 clusters read from" in capsys.readouterr().out
    # a box larger than the simulated one cannot be binned from these files
    assert main(["train", "--data", str(sim), "--size-arcmin", "30", "--out", str(tmp_path / "x.skc"),
                 "-q"]) == EXIT_INPUT
    assert "larger than the 20 arcmin boxes" in capsys.readouterr().err

    # predict from the event files: clusters whose boxes do not overlap another's
    # (each mock cluster has its own background photons, so overlapping boxes of
    # the stacked event lists would count two backgrounds; real event lists do not)
    data = read_survey(sim)
    cat = Table.read(sim / "catalog.fits")
    ra, dec = np.asarray(cat["ra"]), np.asarray(cat["dec"])
    sep = np.hypot((ra[:, None] - ra[None]) * np.cos(np.deg2rad(dec))[:, None], dec[:, None] - dec[None])
    np.fill_diagonal(sep, np.inf)
    alone = np.flatnonzero(sep.min(axis=1) > 30 / 60)
    assert alone.size >= 2  # enough clusters for the comparison below
    sub = cat[alone]
    sub.write(tmp_path / "alone.fits")
    files = [str(sim / str(f).strip()) for f in sub["events_file"]]
    out = tmp_path / "ev.fits"
    argv = ["predict", "--model", str(model), "--catalog", str(tmp_path / "alone.fits"), "--events", *files,
            "--exposure-col", "exposure", "--out", str(out), "-q"]
    assert main(argv) == EXIT_INPUT  # the mock catalogue has the true log10_M500 already
    assert "pass --prefix" in capsys.readouterr().err
    assert main([*argv, "--prefix", "pred_"]) == EXIT_OK
    assert "cutout_complete and cutout_coverage columns are not written" in capsys.readouterr().err
    t = Table.read(out)
    ref_mean, ref_std = persist.load(model).predict(data.X[alone], return_std=True)
    np.testing.assert_allclose(t["pred_log10_M500"], ref_mean, atol=1e-6)
    np.testing.assert_allclose(t["pred_log10_M500_err"], ref_std, atol=1e-6)
    assert "cutout_complete" not in t.colnames and "pred_cutout_complete" not in t.colnames
    # the exposure column is found by its name, as train finds it (one rule for both)
    assert main(argv[:-5] + ["--out", str(tmp_path / "e2.fits"), "--prefix", "pred_", "-q"]) == EXIT_OK
    np.testing.assert_array_equal(Table.read(tmp_path / "e2.fits")["pred_log10_M500"], t["pred_log10_M500"])
    # event lists need an exposure from somewhere
    sub.remove_column("exposure")
    sub.write(tmp_path / "no_exposure.fits")
    assert main([*argv[:4], str(tmp_path / "no_exposure.fits"), *argv[5:-5], "--out", str(tmp_path / "e3.fits"),
                 "--prefix", "p_"]) == EXIT_INPUT
    assert "no exposure: give exposure maps (--exposure), --exposure-seconds or --exposure-col" in \
        capsys.readouterr().err

    # a model that also measures the trees' image observables on the events (train --observables) predicts
    # the same from the event files as from the sample; it refuses images, whose photons it cannot measure
    obs_model = tmp_path / "obs.skc"
    assert main(["train", "--data", str(sim), "--bands", "broad", "--n-estimators", "1", "--max-epochs", "2",
                 "--channels", "4", "--dense", "8", "--npix", "25", "--keep-point-sources", "--observables",
                 "--prior", "training", "--out", str(obs_model), "-q"]) == EXIT_OK
    back = persist.load(obs_model)
    assert [name for name, _ in back.steps[:2]] == ["observables", "bin"]
    out = tmp_path / "obs.fits"
    assert main([*argv[:2], str(obs_model), *argv[3:-2], str(out), "--prefix", "pred_", "-q"]) == EXIT_OK
    t = Table.read(out)
    ref_mean, ref_std = back.predict(data.X[alone], return_std=True)
    np.testing.assert_allclose(t["pred_log10_M500"], ref_mean, atol=1e-6)
    np.testing.assert_allclose(t["pred_log10_M500_err"], ref_std, atol=1e-6)
    from skcluster.predict import predict_catalog

    with pytest.raises(ValueError, match="observables.*give events="):
        predict_catalog(obs_model, sub, images=[str(tmp_path / "img_0200_2300.fits")], exposure_seconds=100.0)


def test_benchmark_states_the_plan_and_needs_yes_for_long_runs(capsys, tmp_path):
    out = tmp_path / "b"
    assert main(["benchmark", "--out", str(out)]) == EXIT_INPUT  # the full preset: many hours on a CPU
    err = capsys.readouterr().err
    assert "preset 'full': 8000 clusters" in err and "cubes/s" in err
    assert "pass --yes" in err and "nothing was run" in err
    assert not out.exists()


def test_train_on_the_depth_balanced_erosita_mock(tmp_path, capsys):
    model = tmp_path / "m.skc"
    args = ["train", "--survey", "erosita", "--n-clusters", "12", "--depth-strata", "3", "--bands", "broad",
            "--n-estimators", "1", "--max-epochs", "1", "--channels", "4", "--dense", "4", "--npix", "25",
            "--prior", "training", "--out", str(model), "-q"]
    assert main(args) == EXIT_OK
    out = capsys.readouterr().out
    assert "12 mock clusters (erosita depths, equal numbers in 3 bins of log exposure, seed 0)" in out
    # every depth: the exposure, the Galactic N_H and the measured observables (the background level among them)
    # beside z
    from skcluster import persist

    assert "image observables measured on the events" in out
    steps = [name for name, _ in persist.load(model).steps]
    assert steps[:3] == ["mask", "observables", "bin"]
    assert persist.load(model)["join"].scalar_names_[:4] == ["log(1+z)", "log(exposure)", "log(nh)", "log(counts_ap)"]
    assert persist.load(model)["observables"].nh_column == "nh"  # each cluster's N_H converts its L_X
    assert "Galactic N_H" in out
    assert main([*args[:-3], "--no-observables", "--out", str(tmp_path / "plain.skc"), "-q"]) == EXIT_OK
    assert "observables" not in persist.load(tmp_path / "plain.skc").named_steps
    # more strata than clusters: a clear input error, no file
    assert main([*args[:5], "--depth-strata", "20", *args[7:-3], "--out", str(tmp_path / "x.skc"), "-q"]) == EXIT_INPUT
    assert "n_strata=20 is more than n_clusters=12" in capsys.readouterr().err
    assert not (tmp_path / "x.skc").exists()


def test_built_in_mock_calibration_pools_massive_clusters_and_lets_the_response_bend():
    """On the built-in mock, train's calibration set is the training population pooled with as many clusters above
    10^14.3, and the response may bend above 10^14.4 with z; held-out clusters of the user's own get a straight one."""
    from skcluster.calibration import MOCK_CALIBRATION_HIGH_MASS_MIN, MOCK_CALIBRATION_RESPONSE
    from skcluster.workflow import train

    def settings(**kw):
        return Bunch(**{**dict(survey=None, size_arcmin=4.0, depth_strata=5, n_jobs=None, verbose=0,
                               random_state=0, prior=None, calibration_clusters=None,
                               calibration_fraction=None), **kw})

    X, y, (X_cal, y_cal, response), what = train._calibration_set("X", "y", "the mock", False,
                                                                  settings(calibration_clusters=30))
    assert (X, y) == ("X", "y") and response == MOCK_CALIBRATION_RESPONSE
    assert len(y_cal) == X_cal.shape[0] == 60 and "calibrated on 30 more and 30 above 10^14.3" in what
    assert np.sum(y_cal >= MOCK_CALIBRATION_HIGH_MASS_MIN) >= 30
    # every depth: the response depends on the exposure too
    from skcluster.calibration import MOCK_CALIBRATION_RESPONSE_DEPTHS

    deep = settings(survey="erosita", depth_strata=2, calibration_clusters=12)
    _, _, (X_cal, _, response), _ = train._calibration_set("X", "y", "the mock", False, deep)
    assert response == MOCK_CALIBRATION_RESPONSE_DEPTHS and response["exposure_terms"] is True
    assert np.ptp(np.log10(np.asarray(X_cal["exposure"]))) > 1.0   # calibration clusters span the depths
    rows = np.arange(40.0)
    _, _, (_, _, response), _ = train._calibration_set(rows, rows, "your clusters", True, settings())
    assert response == {}


# ---------------------------------------------------------------------------
# skcluster train's default prior: masses calibrated at fixed true mass
# ---------------------------------------------------------------------------
_WEAK = ["--n-clusters", "40", "--bands", "broad", "--n-estimators", "1", "--max-epochs", "1", "--channels", "2",
         "--dense", "4", "--npix", "8", "--size-arcmin", "4", "-q"]


def test_train_default_falls_back_to_the_flat_prior_with_a_warning_and_explicit_fixed_mass_refuses(
        tmp_path, capsys):
    """A one-epoch network barely reads the mass: the default says so and carries the flat prior;
    asked for --prior fixed-mass, the same is an error and nothing is written."""
    from skcluster import persist

    out = tmp_path / "m.skc"
    assert main(["train", *_WEAK, "--out", str(out)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "cannot calibrate the model at fixed mass" in captured.err and "'flat' prior instead" in captured.err
    assert "carry the 'flat' prior" in captured.out and "calibrated on 14 more and 14 above 10^14.3" in captured.out
    model = persist.load(out)
    assert model.mass_prior_ == "flat"
    # the mock's detected point sources are masked by default, as predict --point-sources masks a catalogue
    assert "detected point sources masked" in captured.out
    assert type(model.estimator_.estimator.steps[0][1]).__name__ == "PointSourceMasker"
    kept = tmp_path / "kept.skc"
    assert main(["train", *_WEAK, "--prior", "training", "--keep-point-sources", "--out", str(kept)]) == EXIT_OK
    assert "detected point sources not masked" in capsys.readouterr().out
    assert type(persist.load(kept).steps[0][1]).__name__ == "BandBinner"
    for extra, words in ((["--prior", "fixed-mass"], "cannot calibrate the model at fixed mass"),
                         (["--prior", "fixed-mass", "--calibration-clusters", "5"],
                          "at least 12 calibration clusters, --calibration-clusters gives 5")):
        bad = tmp_path / "bad.skc"
        assert main(["train", *_WEAK, *extra, "--out", str(bad)]) == EXIT_INPUT
        assert words in capsys.readouterr().err
        assert not bad.exists()
    # calibration options that would do nothing are refused before anything is simulated
    for extra, words in ((["--prior", "flat", "--calibration-clusters", "20"], "only apply to the fixed-mass"),
                         (["--calibration-fraction", "0.2"], "holds out a share of your clusters")):
        assert main(["train", *_WEAK, *extra, "--out", str(tmp_path / "bad.skc")]) == EXIT_INPUT
        assert words in capsys.readouterr().err


def _fitted_tiny_pipeline():
    """(mock, fitted tiny pipeline, calibration masses any network can be inverted on)."""
    import warnings

    from skcluster.datasets import make_survey

    data = make_survey("efeds", n_clusters=40, random_state=0, verbose=False)
    pipe = tiny_pipeline()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(data.X, data.y)
    return data, pipe, known_response_masses(pipe.predict(data.X))


def test_fixed_mass_wrapping_of_a_trained_pipeline_from_events_and_from_images():
    """What train saves by default: MassCalibratedRegressor(FrozenEstimator(pipeline)) calibrated on clusters
    it did not train on; from cut-out images (the binner skipped) the same calibration as from events."""
    from skcluster.calibration import MassCalibratedRegressor
    from skcluster.workflow.train import _with_prior

    data, pipe, y_cal = _fitted_tiny_pipeline()

    model, prior = _with_prior(pipe, data.X, data.y, (data.X, y_cal, {}), None)
    assert prior == "fixed-mass" and isinstance(model, MassCalibratedRegressor)
    assert model.estimator_.estimator is pipe and model.mass_prior_ == "fixed-mass"
    np.testing.assert_allclose(model.predict(data.X), y_cal, atol=0.05)
    images = pipe.steps[0][1].transform(data.X)
    from_images, _ = _with_prior(pipe, images, data.y, (images, y_cal, {}), None)
    assert from_images.estimator_.estimator is pipe  # saved with the binner: predicts from events
    np.testing.assert_allclose(from_images.coef_, model.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(from_images.predict(data.X), model.predict(data.X), atol=1e-9)


def test_fixed_mass_falls_back_to_the_same_bend_at_every_redshift_before_the_flat_prior(monkeypatch):
    """train's response bends above a hinge by an amount that changes with z; where that fit refuses (a weak
    response at high z), the same bend at every z is tried before the masses fall back to the flat prior."""
    from skcluster.calibration import MassCalibratedRegressor
    from skcluster.workflow.train import _with_prior

    data, pipe, y_cal = _fitted_tiny_pipeline()
    hinge = float(np.median(y_cal))
    fit = MassCalibratedRegressor.fit

    def refuse_a_bend_with_z(self, X, y):
        if self.bend_degree:
            raise ValueError("the model's response to the true mass falls to 0.01 dex per dex at z = 1.0")
        return fit(self, X, y)

    monkeypatch.setattr(MassCalibratedRegressor, "fit", refuse_a_bend_with_z)
    with pytest.warns(UserWarning, match="same bend at every redshift"):
        model, prior = _with_prior(pipe, data.X, data.y, (data.X, y_cal, {"hinge": hinge, "bend_degree": 1}), None)
    assert prior == "fixed-mass" and model.hinge == hinge and model.bend_degree == 0
    # asked for explicitly, a refusal of every response is still an error
    monkeypatch.setattr(MassCalibratedRegressor, "fit", lambda self, X, y: (_ for _ in ()).throw(ValueError("no")))
    with pytest.raises(ValueError, match="cannot calibrate the model at fixed mass: no"):
        _with_prior(pipe, data.X, data.y, (data.X, y_cal, {"hinge": hinge, "bend_degree": 1}), "fixed-mass")
