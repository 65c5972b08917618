"""training_flops: torch's FLOP counter per training cube, against a count by hand."""

import pytest
import torch

from skcluster.nn import ClusterCNN, CNNRegressor, make_toy_sample, training_flops


def _hand_count(bands, h, w, channels, dense, n_scalars, k=3):
    """FLOPs of ClusterCNN(pool="max") per cube, 2 per multiply-add, counted layer by layer."""
    fwd = bwd = 0
    c_in = bands
    for i, c in enumerate(channels):
        conv = 2 * c * h * w * c_in * k * k  # every output pixel: c_in * k * k multiply-adds
        fwd += conv
        bwd += conv if i == 0 else 2 * conv  # the first layer's input needs no gradient: weights only
        c_in, h, w = c, h // 2, w // 2
    n_in = c_in * h * w + n_scalars
    for width in dense:  # forward: one product; backward: the input's and the weights' gradients
        fwd += 2 * n_in * width
        bwd += 4 * n_in * width
        n_in = width
    fwd += 2 * (2 * n_in)  # the mean and variance heads, one output each
    bwd += 2 * (4 * n_in)
    return fwd, bwd


@pytest.mark.parametrize("bands,size,channels,dense", [(2, 8, (4, 6), (5,)), (10, 16, (3,), (7, 4))])
def test_training_flops_equals_a_count_by_hand(bands, size, channels, dense):
    got = training_flops(ClusterCNN, (bands, size, size), n_scalars=1, channels=channels, dense=dense,
                         dropout=0.0)
    fwd, bwd = _hand_count(bands, size, size, channels, dense, 1)
    assert got["forward"] == fwd
    assert got["backward"] == bwd
    assert got["training"] == fwd + bwd
    assert got["by_module"]["ClusterCNN.features.0"] == 2 * 2 * channels[0] * size * size * bands * 9


def test_training_flops_of_the_default_network_and_of_a_fitted_regressor():
    # the numbers for the default ClusterCNN at 50x50 pixels: 48 MFLOP per training cube at 10 bands,
    # 35.5 at 1 band
    assert training_flops(ClusterCNN, (10, 50, 50))["training"] / 1e6 == pytest.approx(48.5, abs=0.05)
    assert training_flops(ClusterCNN, (1, 50, 50))["training"] / 1e6 == pytest.approx(35.5, abs=0.05)
    X, y = make_toy_sample(16, n_bands=2, image_size=8, random_state=0)
    net = CNNRegressor(max_epochs=1, random_state=0, module__channels=(4, 6), module__dense=(5,)).fit(X, y)
    before = {k: v.clone() for k, v in net.module_.state_dict().items()}
    state = torch.random.get_rng_state()
    assert training_flops(net)["training"] == sum(_hand_count(2, 8, 8, (4, 6), (5,), 1))
    assert all(torch.equal(before[k], v) for k, v in net.module_.state_dict().items())  # a copy is counted
    assert torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(ValueError, match="input_shape"):
        training_flops(ClusterCNN)
    with pytest.raises(ValueError, match=r"\(bands, H, W\)"):
        training_flops(ClusterCNN, (50, 50))
