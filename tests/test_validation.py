"""skcluster._validation: the shared parameter checks and their messages."""

import numpy as np
import pytest

from skcluster._validation import (
    InvalidParameterError,
    check_fraction,
    check_positive_int,
    check_positive_number,
    rows_text,
)


def test_positive_int_accepts_integers_and_refuses_bools_and_floats():
    assert check_positive_int(np.int64(3), "batch_size") == 3
    assert type(check_positive_int(np.int64(3), "batch_size")) is int
    assert check_positive_int(None, "n", allow_none=True) is None
    assert check_positive_int(0, "n", minimum=0) == 0
    for bad in (True, 0, -1, 2.0, "3", None):
        with pytest.raises(ValueError, match=r"^Step: batch_size must be a positive integer, got "):
            check_positive_int(bad, "batch_size", "Step")
    with pytest.raises(ValueError, match=r"^n must be None or a positive integer, got 0$"):
        check_positive_int(0, "n", allow_none=True)
    with pytest.raises(ValueError, match=r"^n must be a non-negative integer, got -1$"):
        check_positive_int(-1, "n", minimum=0)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 20, got 5$"):
        check_positive_int(5, "n", minimum=20)


def test_wrong_type_is_also_a_type_error_and_a_bad_value_is_not():
    for bad in (True, 2.5, "3", None):
        with pytest.raises(InvalidParameterError):
            check_positive_int(bad, "n")
        with pytest.raises(TypeError):
            check_positive_int(bad, "n")
    for bad in (True, "1", None):
        with pytest.raises(TypeError, match="tol must be a positive finite number"):
            check_positive_number(bad, "tol")
    for bad_int, bad_number in ((0, 0.0), (-3, float("nan"))):
        with pytest.raises(ValueError) as excinfo:
            check_positive_int(bad_int, "n")
        assert not isinstance(excinfo.value, TypeError)
        with pytest.raises(ValueError) as excinfo:
            check_positive_number(bad_number, "tol")
        assert not isinstance(excinfo.value, TypeError)


def test_positive_number():
    assert check_positive_number(np.float32(0.5), "tol") == 0.5
    assert check_positive_number(0, "psf", allow_zero=True) == 0.0
    for bad in (0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match=r"^S: tol must be a positive finite number, got "):
            check_positive_number(bad, "tol", "S")
    with pytest.raises(ValueError, match=">= 0"):
        check_positive_number(-1, "psf", allow_zero=True)


def test_rows_text():
    v = [0.0, np.nan, 2.0, -1.0]
    assert rows_text([1, 3], v) == "row 1: nan, row 3: -1.0"
    assert rows_text(np.arange(8)) == "row 0, row 1, row 2, row 3, row 4 and 3 more"


def test_fraction():
    assert check_fraction(np.float64(0.25), "level") == 0.25
    for bad in (0, 1, 1.5, -0.1, float("nan"), True, "0.5", None):
        with pytest.raises(ValueError, match=r"^S: level must be a number strictly between 0 and 1, got "):
            check_fraction(bad, "level", "S")


def test_number_with_unit():
    with pytest.raises(ValueError, match=r"^size_arcmin must be a positive finite number of arcmin, got 0$"):
        check_positive_number(0, "size_arcmin", unit="arcmin")


def test_check_finite_names_and_counts_bad_rows_across_chunks(monkeypatch):
    from skcluster.nn import _data

    monkeypatch.setattr(_data, "_CHUNK_ELEMENTS", 8)  # 2 rows of 4 values per chunk
    arr = np.zeros((30, 2, 2), np.float32)
    bad = [1, 4, 5, 9, 12, 13, 17, 20, 21, 25, 28, 29]
    arr[bad, 1, 0] = np.nan
    with pytest.raises(ValueError) as excinfo:
        _data.check_finite(arr, "images", "Net.fit")
    msg = str(excinfo.value)
    assert msg.startswith("Net.fit: column 'images' contains NaN or infinite values in row 1, row 4, ")
    assert "row 25 and 2 more (first: row 1, index (1, 0) = " in msg


def test_predict_mean_std_passes_a_bad_parameter_error_through():
    from sklearn.base import BaseEstimator, RegressorMixin

    from skcluster.metrics import predict_mean_std

    class Net(RegressorMixin, BaseEstimator):
        def __init__(self, batch_size=2.5):
            self.batch_size = batch_size

        def predict(self, X, return_std=False):
            check_positive_int(self.batch_size, "batch_size", "Net")
            return np.zeros(len(X)), np.ones(len(X))

    with pytest.raises(InvalidParameterError, match=r"^Net: batch_size must be a positive integer, got 2.5$"):
        predict_mean_std(Net(), np.zeros((3, 1)), "test")
