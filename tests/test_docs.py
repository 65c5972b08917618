"""The documentation site builds: Sphinx + numpydoc + sphinx-gallery + pydata-sphinx-theme.

Builds docs/ into a temporary folder (HTML, quiet) and checks that the landing
page, an API page generated from ``__all__`` and a gallery page exist. The
gallery examples are shown, not run (they train networks), so the build takes
well under a minute. Skipped, saying why, when the ``docs`` extra is not
installed (``pip install -e ".[docs]"``).

Warnings are errors (``-W``), as in ``docs/build.sh -W``.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NEEDED = ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme", "myst_parser")
MISSING = [m for m in NEEDED if importlib.util.find_spec(m) is None]

pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"documentation tools not installed ({', '.join(MISSING)}): "
                          'pip install -e ".[docs]"')


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-d", str(doctrees), str(DOCS), str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return proc, out


def test_docs_build_cleanly(built):
    proc, _ = built
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


def test_landing_page_exists(built):
    proc, out = built
    index = out / "index.html"
    assert index.is_file(), proc.stderr[-3000:]
    html = index.read_text(encoding="utf-8")
    assert "skcluster" in html and "make_mass_pipeline" in html


def test_api_page_is_generated_from_the_docstrings(built):
    _, out = built
    page = out / "generated" / "skcluster.ensemble.DeepEnsembleRegressor.html"
    assert page.is_file()
    html = page.read_text(encoding="utf-8")
    # numpydoc rendered the Parameters section of the class docstring
    assert "Parameters" in html and "n_estimators" in html and "return_std" in html
    # every public module has its page
    for mod in ("skcluster", "skcluster.datasets", "skcluster.preprocessing", "skcluster.nn",
                "skcluster.baselines", "skcluster.metrics", "skcluster.explain",
                "skcluster.calibration", "skcluster.persist", "skcluster.io",
                "skcluster.plotting", "skcluster.streaming", "skcluster.workflow"):
        assert (out / "api" / f"{mod}.html").is_file(), mod


def test_gallery_page_shows_every_example_without_running_it(built):
    _, out = built
    for path in sorted((REPO / "examples").glob("*.py")):
        page = out / "auto_examples" / f"{path.stem}.html"
        assert page.is_file(), path.name
    html = (out / "auto_examples" / "train_on_mock.html").read_text(encoding="utf-8")
    assert "make_mass_pipeline" in html and "<h1>" in html
    assert "--quick" in html


def test_cli_page_holds_the_generated_help(built):
    _, out = built
    html = (out / "user_guide" / "cli.html").read_text(encoding="utf-8")
    for cmd in ("demo", "simulate", "train", "predict", "benchmark"):
        assert f"usage: skcluster {cmd}" in html, cmd
