"""Shared fixtures.

Real eFEDS products live outside the repository (they are not copied in):
``$SKCLUSTER_EFEDS_DIR``, else ``../shared/data/efeds_mbproj2d`` next to the
checkout, else ``/work/shared/data/efeds_mbproj2d``; the eFEDS AGN catalogue
(Liu T. et al. 2022) at ``efeds_catalogs/efeds_agn_liu22.fits`` beside that
folder. Tests that need them are skipped, with the paths tried, when they
are absent.
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
def efeds_agn(efeds_dir):
    """The eFEDS AGN catalogue (0.5-2 keV fluxes) beside the images' folder."""
    agn = efeds_dir.parent / "efeds_catalogs" / "efeds_agn_liu22.fits"
    if not agn.is_file():
        pytest.skip(f"the eFEDS AGN catalogue is not at {agn}")
    return agn


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


def tiny_pipeline(bands="broad", n_estimators=1, **settings):
    """The standard mass pipeline at its smallest (4 arcmin in 8 pixels, one 2-channel block, one epoch).

    Seconds to fit; it barely reads the mass. ``settings`` go to ``make_mass_pipeline``.
    """
    from skcluster.models import make_mass_pipeline

    settings.setdefault("mask_point_sources", False)
    return make_mass_pipeline(bands=bands, size_arcmin=4.0, npix=8, n_estimators=n_estimators, max_epochs=1,
                              channels=(2,), dense=(4,), random_state=0, verbose=0, **settings)


def known_response_masses(pred, slope=0.5, seed=0):
    """Calibration masses to which the predictions ``pred`` respond with ``slope`` (about 14.0, 0.01 dex noise).

    A fixed-mass calibration (MassCalibratedRegressor) of any network, however weak, on these
    masses must give them back (within the noise over the slope).
    """
    pred = np.asarray(pred, dtype=np.float64)
    return 14.0 + (pred - pred.mean()) / slope + 0.01 * np.random.default_rng(seed).standard_normal(pred.size)
