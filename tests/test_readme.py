"""The README's promises: its two set-up commands, and CI running the test one."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_starts_with_two_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert cmds[0].endswith("skcluster demo")
    assert cmds[1].endswith("python -m pytest")
    assert "pip install torch==2.13.0" in cmds[0] and "pip install torch==2.13.0" in cmds[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci


def test_version_from_the_installed_package():
    out = subprocess.run(
        [sys.executable, "-c", "import skcluster; print(skcluster.__version__)"],
        capture_output=True, text=True, check=True,
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*\n", out.stdout)


def test_headline_benchmark_block_says_where_it_comes_from():
    text = (REPO / "README.md").read_text()
    start, end = text.index("<!-- headline-benchmark -->"), text.index("<!-- /headline-benchmark -->")
    block = text[start:end]
    assert "Mock version:" in block and "skcluster benchmark " in block
    rows = [ln for ln in block.splitlines() if ln.startswith("| ")]
    assert rows[0].startswith("| model | scatter") and len(rows) > 5


def test_readme_is_one_screen_and_its_links_exist():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 140
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]*)\)", text)
    assert links and all((REPO / link).exists() for link in links), [
        link for link in links if not (REPO / link).exists()]
