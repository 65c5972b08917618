"""Training levers: bfloat16 autocast (and its float32 fallback), channels-last, torch.compile's vectorised refusal."""

import numpy as np
import pytest
import torch

from skcluster import SkclusterWarning
from skcluster.nn import CNNRegressor, make_toy_sample
from skcluster.nn import regressor as regressor_module
from skcluster.nn.regressor import cpu_bfloat16_fast
from skcluster.nn.vectorised import vectorise_unsupported

KW = {"max_epochs": 3, "random_state": 0, "input_scaling": "log1p", "module__channels": (4, 8), "module__dense": (16,)}


@pytest.fixture(scope="module")
def toy():
    return make_toy_sample(128, random_state=0)


@pytest.fixture(scope="module")
def float32_net(toy):
    X, y = toy
    return CNNRegressor(**KW).fit(X, y)


@pytest.mark.skipif(not cpu_bfloat16_fast(), reason="the CPU has neither AVX512-BF16 nor AMX")
def test_bfloat16_autocast_stays_close_to_float32(toy, float32_net):
    """bfloat16 keeps 8 bits of mantissa: same weights within 1% of the target's spread, trained nets too."""
    X, y = toy
    net = float32_net
    m0, s0 = net.predict(X, return_std=True)
    try:
        net.set_params(autocast="bfloat16")
        m1, s1 = net.predict(X, return_std=True)
    finally:
        net.set_params(autocast=None)
    assert 0 < np.abs(m1 - m0).max() < 0.01 * net.y_scale_  # it did run in bfloat16, and close
    np.testing.assert_allclose(s1, s0, rtol=0.01)
    bf = CNNRegressor(autocast="bfloat16", **KW).fit(X, y)  # three epochs of training in bfloat16
    assert np.abs(bf.predict(X) - m0).max() < 0.01 * net.y_scale_
    np.testing.assert_allclose(bf.history_[:, "valid_loss"], net.history_[:, "valid_loss"], atol=0.01)


def test_bfloat16_on_a_cpu_without_it_warns_and_runs_float32(toy, float32_net, monkeypatch):
    X, y = toy
    monkeypatch.setattr(regressor_module, "cpu_bfloat16_fast", lambda: False)
    m0 = float32_net.predict(X)
    try:
        float32_net.set_params(autocast="bfloat16")
        with pytest.warns(SkclusterWarning, match="neither AVX512-BF16 nor AMX.*float32"):
            m1 = float32_net.predict(X)
    finally:
        float32_net.set_params(autocast=None)
    np.testing.assert_array_equal(m1, m0)  # float32 exactly
    with pytest.warns(SkclusterWarning, match="AVX512-BF16"):
        fitted = CNNRegressor(autocast="bfloat16", **KW).fit(X, y)
    np.testing.assert_allclose(fitted.history_[:, "valid_loss"], float32_net.history_[:, "valid_loss"], rtol=1e-6)


def test_channels_last_trains_the_same_network(toy, float32_net):
    X, y = toy
    cl = CNNRegressor(channels_last=True, **KW).fit(X, y)
    assert cl.module_.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(cl.predict(X), float32_net.predict(X), atol=1e-5)


def test_compiled_members_train_one_by_one():
    # torch.compile (skorch's compile=True) wraps each network; the stacked ensemble cannot hold it
    assert "compile=True" in vectorise_unsupported(CNNRegressor(compile=True))
    assert vectorise_unsupported(CNNRegressor()) is None
