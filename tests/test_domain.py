"""DomainFlagger: clusters outside the training domain are flagged with a reason."""

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from skcluster.datasets import make_survey
from skcluster.preprocessing import BandBinner
from skcluster.preprocessing.domain import DomainFlagger
from skcluster.sample import ClusterSample


def _sample(rng, n=200, exposure=(800.0, 2000.0), z=(0.05, 1.0), rate=0.05):
    exp = rng.uniform(*exposure, n)
    img = rng.poisson(rate * exp[:, None, None, None] / 100.0, (n, 2, 20, 20)).astype(np.float32)
    return ClusterSample(meta={"bands_keV": [(0.2, 1.0), (1.0, 2.3)]}, images=img, exposure=exp,
                         z=rng.uniform(*z, n))


def test_training_sample_is_in_domain_and_outliers_are_named():
    rng = np.random.default_rng(0)
    train = _sample(rng)
    f = DomainFlagger().fit(train)
    assert set(f.ranges_) == {"z", "exposure", "counts", "background"}
    out = f.transform(train)
    assert out["in_domain"].mean() > 0.98
    test = _sample(rng, n=6)
    test["z"][1] = 5.0
    test["z"][2] = 0.0001
    test["images"][3] = 0.0
    test["exposure"][4] = 100.0  # eRASS1 depth from an eFEDS-depth model
    test["images"][5] *= 8.0  # a background eight times higher
    flags = f.transform(test)
    assert list(flags["in_domain"]) == [True, False, False, False, False, False]
    assert "z=5 above" in flags["domain_reason"][1]
    assert "z=0.0001 below" in flags["domain_reason"][2]
    assert flags["domain_reason"][3].startswith("no photons")
    assert "exposure=100 below" in flags["domain_reason"][4]
    assert "background=" in flags["domain_reason"][5] and "above" in flags["domain_reason"][5]
    assert flags["domain_reason"][0] == ""
    # the sample passes through otherwise untouched
    assert flags["images"] is test["images"]


def test_coverage_and_bad_parameters():
    rng = np.random.default_rng(1)
    train = _sample(rng).assign(coverage=np.ones(200))
    f = DomainFlagger().fit(train)
    test = _sample(rng, n=2).assign(coverage=np.array([1.0, 0.4]))
    flags = f.transform(test)
    assert list(flags["in_domain"]) == [True, False]
    assert "coverage 0.40 below 0.9" in flags["domain_reason"][1]
    with pytest.raises(ValueError, match="quantile"):
        DomainFlagger(quantile=0.7).fit(train)
    with pytest.raises(ValueError, match="bands"):
        f.transform(test.assign(images=test["images"][:, :1]))


def test_galactic_nh_outside_the_training_range_is_flagged():
    rng = np.random.default_rng(3)
    # one N_H in training (the eFEDS mock's): the same value passes, a few per cent off too, 2x does not
    one = DomainFlagger().fit(_sample(rng).assign(nh=np.full(200, 3e20)))
    test = _sample(rng, n=3).assign(nh=np.array([3e20, 3.1e20, 6e20]))
    flags = one.transform(test)
    assert list(flags["in_domain"]) == [True, True, False]
    assert "nh=6e+20 above 3.14" in flags["domain_reason"][2]
    # a range of N_H (the erosita mock's 1e20-1e21): inside passes, a Galactic-plane column does not
    wide = DomainFlagger().fit(_sample(rng).assign(nh=10 ** rng.uniform(20, 21, 200)))
    flags = wide.transform(test.assign(nh=np.array([2e20, 8e20, 5e21])))
    assert list(flags["in_domain"]) == [True, True, False] and "nh=5e+21 above" in flags["domain_reason"][2]
    # a sample without N_H is not checked for it
    assert list(wide.transform(test.drop("nh"))["in_domain"]) == [True, True, True]


def test_on_the_mock_after_binning():
    data = make_survey(n_clusters=60, random_state=2, verbose=False)
    pipe = make_pipeline(BandBinner(bands="broad", npix=25), DomainFlagger())
    out = pipe.fit_transform(data.X)
    assert out["in_domain"].mean() > 0.9
    deeper = data.X.assign(exposure=data.X["exposure"] * 20.0)
    assert not pipe.transform(deeper)["in_domain"].any()
