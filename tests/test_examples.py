"""The example scripts: each is complete (docstring with usage, --quick, a main guard) and runs.

Every example runs here in its --quick form (tiny sizes, each well under a
minute on an idle 2-core machine): the mock pipeline, the real-eFEDS
prediction (skipped without the eFEDS images), the eRASS1 data path on
synthetic DR1 files, GridSearchCV, and Dask
(skipped without ``dask.distributed``). A new example in examples/ fails
``test_every_example_runs_in_the_suite`` until it gets a run test here.
"""

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skcluster.models import DEFAULT_NPIX

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
#: The examples with a run test below (test_every_example_runs_in_the_suite keeps it complete).
RUN_TESTS = {"train_on_mock", "predict_efeds", "grid_search", "dask_scaling", "predict_erass1"}


def test_the_examples_are_there():
    assert {p.stem for p in EXAMPLES} >= {"train_on_mock", "grid_search", "predict_efeds", "dask_scaling",
                                            "predict_erass1"}


def test_every_example_runs_in_the_suite():
    assert {p.stem for p in EXAMPLES} == RUN_TESTS


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_a_complete_script(path):
    source = path.read_text()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    assert doc and f"python examples/{path.name}" in doc and "--quick" in doc
    assert 'if __name__ == "__main__":' in source and '"--quick"' in source


def _run(path, tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    return subprocess.run([sys.executable, str(path), "--quick", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def test_train_on_mock_runs(tmp_path):
    proc = _run(REPO / "examples" / "train_on_mock.py", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CNN ensemble: scatter" in proc.stdout and "count rate: scatter" in proc.stdout
    assert (tmp_path / "mock_model.skc").is_file() and (tmp_path / "mock_model_performance.png").is_file()


def test_predict_efeds_runs(tmp_path, efeds_dir, efeds_agn):
    model = tmp_path / "efeds7-quick.skc"
    proc = _run(REPO / "examples" / "predict_efeds.py", tmp_path, "--data", str(efeds_dir),
                "--point-sources", str(efeds_agn), "--model", str(model))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"box 20 arcmin on {DEFAULT_NPIX} x {DEFAULT_NPIX} pixels of {1200 / DEFAULT_NPIX:.1f} arcsec" in proc.stdout
    assert "22079 point sources in efeds_agn_liu22.fits (count rates from 0.5-2 keV fluxes)" in proc.stdout
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("eFEDS J")]
    assert len(lines) == 2 and "log10 M500c/Msun = " in lines[0]
    for ln in lines:  # the catalogue's sources in each box were masked
        n_src, frac = ln.split("  ")[2].split(" point sources, ")
        assert int(n_src) > 0 and float(frac.split("%")[0]) > 0, ln
    assert "incomplete" not in lines[0] and "cut-out incomplete: coverage" in lines[1]
    # the faint cluster's box is a third off the images: no mass, as skcluster predict gives it none
    assert "no mass (outside the training domain: cut-out coverage" in lines[1]

    # the script's masses are those of skcluster predict --point-sources on the model it saved
    from skcluster import predict_catalog

    spec = importlib.util.spec_from_file_location("predict_efeds", REPO / "examples" / "predict_efeds.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _, mass, err, _ = script.main(model_path=model, data=efeds_dir, point_sources=efeds_agn)  # loads it
    images = sorted(efeds_dir.glob("img_*.fits.gz"))
    exposures = sorted(p for p in efeds_dir.glob("expmap_norm_*.fits.gz") if "novig" not in p.name)
    got = predict_catalog(model, REPO / "docs" / "data" / "efeds_two_clusters.csv", images=images,
                          exposures=exposures, exposure_vignetting="unvignetted", point_sources=efeds_agn)
    assert got.meta["MASKED_PS"]
    np.testing.assert_allclose(mass, got["log10_M500"], rtol=0, atol=1e-5)   # NaN for the faint one in both
    np.testing.assert_allclose(err, got["log10_M500_err"], rtol=0, atol=1e-5)
    assert np.isnan(mass[1]) and f"{mass[0]:.2f} +- {err[0]:.2f}" in lines[0]


def test_predict_erass1_runs(tmp_path):
    proc = _run(REPO / "examples" / "predict_erass1.py", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "4 clusters of the catalogue on the tile (2 elsewhere in the sky)" in out
    # the exposure map gives the catalogue's EXP; the DR1 filters drop the bad events
    assert "exposure from the map / the catalogue's EXP: 1.000 to 1.000" in out
    n_all, n_kept = _event_counts(out)
    assert 0.97 * n_all < n_kept < n_all
    lines = [ln for ln in out.splitlines() if ln.startswith("1eRASS J")]
    assert len(lines) == 4
    for ln in lines:
        mass, err = float(ln.split()[6]), float(ln.split()[8])
        assert 12.0 < mass < 16.0 and 0.0 < err < 2.0, ln
    assert list(tmp_path.iterdir()) == []  # the synthetic files went to a temporary folder


def _event_counts(out):
    line = next(ln for ln in out.splitlines() if " kept by the DR1 quality filters" in ln)
    return int(line.split()[0]), int(line.split(", ")[1].split()[0])


def test_grid_search_runs(tmp_path):
    proc = _run(REPO / "examples" / "grid_search.py", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{'bin__bands'")]
    assert len(lines) == 4 and all("scatter" in ln and "CRPS" in ln for ln in lines)
    assert "best: {" in proc.stdout


def test_dask_scaling_runs(tmp_path):
    pytest.importorskip("dask.distributed")
    proc = _run(REPO / "examples" / "dask_scaling.py", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "60 clusters predicted in 1 batches: scatter" in proc.stdout
