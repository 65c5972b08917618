"""The scikit-learn contract of every transformer, and the chain in GridSearchCV."""

import inspect
import pickle

import joblib
import numpy as np
import pytest
from conftest import EFEDS_BANDS
from preprocessing_helpers import FlatRidge, synthetic_sample
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from skcluster.models import DEFAULT_NPIX, STEP_NAMES, make_preprocessing
from skcluster.preprocessing import (
    BandBinner,
    CountScaler,
    GaussianSmoother,
    ImageCutout,
    RedshiftJoiner,
    Resizer,
)


@pytest.fixture(scope="module")
def sample():
    return synthetic_sample(n=30, seed=0)


@pytest.fixture(scope="module")
def binned(sample):
    X, _ = sample
    return BandBinner(bands="ho3", npix=30).fit_transform(X)


def _efeds_images():
    from conftest import _efeds_dir

    d = _efeds_dir()
    if d is None:
        pytest.skip("real eFEDS images not found")
    return [d / f"img_{b}.fits.gz" for b in EFEDS_BANDS]


# (estimator, "events" | "images" | "catalog" input, junk parameters for __init__)
CASES = {
    "BandBinner": (lambda: BandBinner(bands="ho3", npix=30), "events",
                   dict(bands="nonsense", npix=-3, size_arcmin="big")),
    "Resizer": (lambda: Resizer((20, 25)), "images", dict(shape="junk")),
    "GaussianSmoother": (lambda: GaussianSmoother(sigma=1.2, sigma_bands=0.5), "images",
                         dict(sigma=-1, sigma_bands=None, mode="bogus")),
    "CountScaler": (lambda: CountScaler(stretch="asinh"), "images",
                    dict(stretch="cube", exposure_correct="yes", softening=-2)),
    "RedshiftJoiner": (lambda: RedshiftJoiner(extra=["exposure"]), "images",
                       dict(use_redshift="maybe", extra=5)),
    "ImageCutout": (lambda: ImageCutout(_efeds_images(), npix=20, size_arcmin=4.0,
                                        exposure_seconds=1000.0), "catalog",
                    dict(images="not a list", npix=0, fill="sky")),
}

ALLOWED_SCALARS = (int, float, str, bool, type(None), np.integer, np.floating, np.bool_)


def _allowed_state(value):
    """Fitted state: numpy arrays, numbers, strings, None, and containers of these."""
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, ALLOWED_SCALARS):
        return True
    if isinstance(value, (list, tuple)):
        return all(_allowed_state(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _allowed_state(v) for k, v in value.items())
    return False


def _input(kind, sample, binned):
    X, _ = sample
    if kind == "events":
        return X
    if kind == "images":
        return binned
    return X.select("ra", "dec", "z").assign(
        ra=np.full(len(X), 140.33848), dec=np.full(len(X), 3.29060)
    )


def _assert_samples_equal(a, b):
    assert a.keys() == b.keys()
    for k in a.keys():
        if a[k].dtype == object:
            assert all(x is y or np.array_equal(x, y) for x, y in zip(a[k], b[k]))
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert joblib.hash(a.meta) == joblib.hash(b.meta)


@pytest.mark.parametrize("name", list(CASES))
def test_sklearn_api_contract(name, sample, binned):
    make, kind, junk = CASES[name]
    est = make()
    X = _input(kind, sample, binned)
    # __init__ stores the parameters as given, validates nothing
    params = est.get_params()
    assert set(params) == set(inspect.signature(type(est)).parameters)
    junk_est = type(est)(**{**params, **junk})
    for k, v in junk.items():
        assert junk_est.get_params()[k] is v
    with pytest.raises((ValueError, TypeError)):
        junk_est.fit(X)
    # clone and set_params
    c = clone(est)
    assert c is not est and c.get_params() == params
    c.set_params(**{k: params[k] for k in params})
    assert c.get_params() == params
    # fit returns self; every new attribute ends with "_" and holds plain data
    before = set(vars(est))
    assert est.fit(X) is est
    new = set(vars(est)) - before
    assert new and all(a.endswith("_") and not a.startswith("_") for a in new), new
    for a in new:
        assert _allowed_state(getattr(est, a)), (a, getattr(est, a))
    # transform changes neither the estimator nor the input
    state = joblib.hash(vars(est))
    snapshot = {k: (v.copy() if v.dtype != object else [e.copy() for e in v]) for k, v in X.items()}
    meta_before = joblib.hash(X.meta)
    out = est.transform(X)
    assert joblib.hash(vars(est)) == state
    assert joblib.hash(X.meta) == meta_before
    for k, v in snapshot.items():
        if X[k].dtype == object:
            assert all(np.array_equal(a, b) for a, b in zip(v, X[k]))
        else:
            np.testing.assert_array_equal(X[k], v)
    assert out["images"].dtype == np.float32
    # fit_transform == fit().transform()
    _assert_samples_equal(clone(est).fit_transform(X), clone(est).fit(X).transform(X))
    # pickling keeps the fitted transform
    _assert_samples_equal(pickle.loads(pickle.dumps(est)).transform(X), out)


@pytest.mark.parametrize("name", ["Resizer", "GaussianSmoother", "CountScaler", "RedshiftJoiner"])
def test_transform_before_fit_raises(name, binned):
    with pytest.raises(NotFittedError):
        CASES[name][0]().transform(binned)


def test_standard_chain_output_contract(sample):
    X, _ = sample
    out = make_preprocessing().fit_transform(X)
    assert sorted(out.keys()) == ["images", "scalars"]
    assert out["images"].shape == (30, 10, DEFAULT_NPIX, DEFAULT_NPIX) and out["images"].dtype == np.float32
    assert out["scalars"].shape == (30, 1) and out["scalars"].dtype == np.float32
    meta = out.meta
    assert len(meta["bands_keV"]) == 10 and meta["size_arcmin"] == 20.0
    assert meta["pixel_arcsec"] == 1200.0 / DEFAULT_NPIX and meta["scalar_names"] == ["log(1+z)"]
    assert meta["image_unit"] == "scaled"
    pipe = make_preprocessing()
    assert [name for name, _ in pipe.steps] == list(STEP_NAMES)
    # K = 0: the no-redshift ablation
    none = make_preprocessing(use_redshift=False, bands="broad").fit_transform(X.drop("z"))
    assert none["scalars"].shape == (30, 0)


def test_binning_straight_to_50_equals_binning_at_300_then_resizing(sample):
    X, _ = sample
    X = X[:6]
    direct = make_preprocessing(bands="ho3", npix=50, shape=50).fit_transform(X)
    via300 = make_preprocessing(bands="ho3", npix=300, shape=50).fit_transform(X)
    np.testing.assert_array_equal(direct["images"], via300["images"])
    np.testing.assert_array_equal(direct["scalars"], via300["scalars"])


def test_chain_in_gridsearchcv_over_sigma_and_band_preset(sample):
    from sklearn.pipeline import Pipeline

    X, y = sample
    pre = make_preprocessing(npix=20, shape=(20, 20), extra=["exposure"])
    model = Pipeline(pre.steps + [("model", FlatRidge(alpha=10.0))])
    grid = GridSearchCV(
        model,
        {"smooth__sigma": [0.5, 2.0], "bin__bands": ["ho3", "broad"]},
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_mean_squared_error",
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_params_["bin__bands"] in ("ho3", "broad")
    pred = grid.predict(X[:5])
    assert pred.shape == (5,) and np.all(np.isfinite(pred))
    # the counts carry the mass: better than predicting the mean
    scores = cross_val_score(model.set_params(bin__bands="broad"), X, y,
                             cv=KFold(3, shuffle=True, random_state=0), scoring="r2")
    assert scores.mean() > 0.3
