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
