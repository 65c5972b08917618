"""Shared fixtures.

Real eFEDS products live outside the repository (they are not copied in):
``$SKCLUSTER_EFEDS_DIR``, else ``../shared/data/efeds_mbproj2d`` next to the
checkout, else ``/work/shared/data/efeds_mbproj2d``. Tests that need them are
skipped, with the paths tried, when none exists.
"""

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    os.environ.get("SKCLUSTER_EFEDS_DIR"),
    REPO.parent / "shared" / "data" / "efeds_mbproj2d",
    Path("/work/shared/data/efeds_mbproj2d"),
]

#: Bands of the real eFEDS images, keV (file names img_LLLL_HHHH in eV).
EFEDS_BANDS = ["0300_0600", "0600_1100", "1100_1600", "1600_2200", "2200_3500", "3500_5000", "5000_7000"]
#: The two clusters of the eFEDS patch (Liu et al. 2022; README of the data).
EFEDS_CLUSTERS = {
    "bright": dict(ra=140.33848, dec=3.29060, z=0.3329),
    "faint": dict(ra=140.09184, dec=3.01860, z=0.4806),
}


def _efeds_dir():
    for cand in _CANDIDATES:
        if cand and (Path(cand) / "img_0300_0600.fits.gz").is_file():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def efeds_dir():
    d = _efeds_dir()
    if d is None:
        pytest.skip(f"real eFEDS images not found in {[str(c) for c in _CANDIDATES if c]}")
    return d


@pytest.fixture(scope="session")
def efeds_files(efeds_dir):
    images = [efeds_dir / f"img_{b}.fits.gz" for b in EFEDS_BANDS]
    exposures = [efeds_dir / f"expmap_norm_{b}.fits.gz" for b in EFEDS_BANDS]
    return images, exposures


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks on a shared 2-core machine run fastest on one thread
    (modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
