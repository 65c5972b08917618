"""Where a benchmark's numbers came from: the git revision and the CPU (shared by the scripts)."""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def git_revision():
    """Short hash of the checked-out commit of this tree ("unknown" outside git)."""
    try:
        return subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
