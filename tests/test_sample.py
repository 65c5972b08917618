import numpy as np
import pytest
from astropy.table import Table
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold, cross_validate, train_test_split

from skcluster import ClusterSample, as_sample


def _sample(n=10):
    rng = np.random.default_rng(0)
    ev = np.empty(n, dtype=object)
    for i in range(n):
        ev[i] = rng.normal(size=i + 1)
    return ClusterSample(
        images=rng.random((n, 2, 4, 4), dtype=np.float32),
        z=np.linspace(0.1, 1.0, n),
        events=ev,
    )


def test_shape_and_len():
    X = _sample(7)
    assert X.shape == (7,)
    assert len(X) == 7
    assert X.n_samples == 7


def test_unequal_lengths_name_the_columns():
    with pytest.raises(ValueError, match=r"'images': 3.*'z': 4"):
        ClusterSample(images=np.zeros((3, 1, 2, 2)), z=np.zeros(4))


def test_setitem_checks_length():
    X = _sample(5)
    with pytest.raises(ValueError, match="'exposure' has 4 rows but the sample has 5"):
        X["exposure"] = np.ones(4)
    X["exposure"] = np.ones(5)
    assert X["exposure"].shape == (5,)


def test_integer_indexing_is_refused_with_a_hint():
    X = _sample(5)
    for key in (2, np.int64(2)):
        with pytest.raises(TypeError, match=r"X\[2:3\]"):
            X[key]


def test_slicing_by_indices_masks_and_slices():
    X = _sample(6)
    idx = np.array([4, 0, 2])
    sub = X[idx]
    assert isinstance(sub, ClusterSample)
    np.testing.assert_array_equal(sub["z"], X["z"][idx])
    np.testing.assert_array_equal(sub["images"], X["images"][idx])
    assert sub["events"][0] is X["events"][4]
    mask = X["z"] > 0.5
    assert X[mask].shape == (mask.sum(),)
    assert X[1:3].shape == (2,)
    assert X[[1, 2]].shape == (2,)
    with pytest.raises(IndexError, match="boolean mask of shape"):
        X[np.array([True, False])]


def test_missing_column_message():
    with pytest.raises(KeyError, match=r"no column 'exposure'.*columns are"):
        _sample(3)["exposure"]
    with pytest.raises(KeyError, match=r"BandBinner needs column\(s\) \['events_x'\]"):
        _sample(3).require("events_x", step="BandBinner")


def test_assign_does_not_modify_input():
    X = _sample(4)
    Y = X.assign(exposure=np.ones(4))
    assert "exposure" in Y and "exposure" not in X
    assert Y["images"] is X["images"]
    Z = Y.drop("events")
    assert set(Z.columns) == {"images", "z", "exposure"}


class _MeanZ(RegressorMixin, BaseEstimator):
    """Predicts y from z by least squares: needs the container to survive CV."""

    def fit(self, X, y):
        self.coef_ = np.polyfit(X["z"], y, 1)
        return self

    def predict(self, X):
        return np.polyval(self.coef_, X["z"])


def test_passes_through_sklearn_model_selection():
    X = _sample(20)
    y = 2.0 * X["z"] + 1.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    assert isinstance(Xtr, ClusterSample) and Xtr.shape == (15,)
    res = cross_validate(_MeanZ(), X, y, cv=KFold(4, shuffle=True, random_state=0))
    assert np.all(res["test_score"] > 0.999)


def test_skorch_unpacks_into_forward():
    import torch
    from skorch import NeuralNetRegressor

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2 * 4 * 4 + 1, 1)

        def forward(self, images, z):
            return self.lin(torch.cat([images.flatten(1), z[:, None]], 1))

    X = _sample(8).drop("events")
    X["z"] = X["z"].astype(np.float32)
    y = np.zeros((8, 1), dtype=np.float32)
    net = NeuralNetRegressor(M, max_epochs=1, train_split=None, batch_size=4, verbose=0)
    net.fit(X, y)
    assert net.predict(X).shape == (8, 1)


def test_table_round_trip():
    X = _sample(5).drop("events")
    t = X.to_table()
    assert isinstance(t, Table) and len(t) == 5
    assert t["images"].shape == (5, 2, 4, 4)
    back = ClusterSample.from_table(t)
    assert back == X


def test_from_table_masked_float_becomes_nan():
    t = Table({"z": [0.1, 0.2, 0.3]}, masked=True)
    t["z"].mask = [False, True, False]
    X = ClusterSample.from_table(t)
    assert np.isnan(X["z"][1])


def test_as_sample_rejects_arrays():
    with pytest.raises(TypeError, match=r"expects a ClusterSample.*ndarray with shape \(3, 2\)"):
        as_sample(np.zeros((3, 2)), step="BandBinner")
    assert isinstance(as_sample({"z": np.zeros(2)}), ClusterSample)


def test_concat():
    X = _sample(3).drop("events")
    both = ClusterSample.concat([X, X])
    assert both.shape == (6,)
    with pytest.raises(ValueError, match="different columns"):
        ClusterSample.concat([X, X.drop("z")])


def test_meta_survives_slicing_assign_and_pickle():
    import pickle

    X = _sample(6)
    X.meta["bands_keV"] = [(0.5, 2.0), (2.0, 7.0)]
    for Y in (X[1:3], X[np.array([0, 5])], X.assign(a=np.ones(6)), X.drop("events"),
              X.select("z"), X.copy(), pickle.loads(pickle.dumps(X))):
        assert Y.meta == X.meta
    Y = X.assign(meta={"pixel_arcsec": 24.0})
    assert Y.meta["pixel_arcsec"] == 24.0 and "pixel_arcsec" not in X.meta
    Xtr, _ = train_test_split(X, test_size=0.5, random_state=0)
    assert Xtr.meta == X.meta
    t = X.drop("events").to_table()
    assert ClusterSample.from_table(t).meta == X.meta


def test_list_of_event_tables_becomes_one_object_per_row():
    from skcluster.io import make_events

    ragged = [make_events(np.zeros(n), np.zeros(n), np.ones(n)) for n in (3, 0, 5)]
    X = ClusterSample(events=ragged, z=[0.1, 0.2, 0.3])
    assert X["events"].dtype == object and X["events"].shape == (3,)
    assert len(X["events"][2]) == 5
    same = [make_events(np.zeros(2), np.zeros(2), np.ones(2)) for _ in range(3)]
    Y = ClusterSample(events=same)
    assert Y["events"].dtype == object and Y["events"].shape == (3,)
    assert Y["events"][0].dtype.names[0] == "x_arcsec"


def test_import_skcluster_does_not_import_torch():
    """Workers that only simulate or bin must not pay for torch (seconds, ~400 MB)."""
    import subprocess
    import sys

    code = "import sys, skcluster; assert 'torch' not in sys.modules and 'skorch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
