"""Performance figures: they are made, saved as PNG, and reject bad input."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from skcluster.plotting import (  # noqa: E402
    plot_calibration,
    plot_performance,
    plot_predicted_vs_true,
    plot_residuals_vs_mass,
    plot_residuals_vs_redshift,
)


@pytest.fixture(scope="module")
def models():
    """Two synthetic models: a calibrated one (0.08 dex) and an over-confident, biased one."""
    rng = np.random.default_rng(0)
    n = 600
    y = rng.uniform(13.3, 15.0, n)
    z = rng.uniform(0.05, 1.2, n)
    s1 = rng.uniform(0.05, 0.11, n)
    m1 = y + rng.normal(0, 1, n) * s1
    m2 = y + 0.1 * (14.2 - y) + rng.normal(0, 0.18, n) + 0.05 * z
    return y, z, {"ensemble": (m1, s1), "count_rate": (m2, np.full(n, 0.09)), "counts": m2 + 0.03}


def _save(fig, path):
    fig.savefig(path, dpi=80)
    assert path.is_file() and path.stat().st_size > 10_000
    return path


def test_performance_figures_are_written(models, tmp_path):
    y, z, preds = models
    figs = {
        "pred_vs_true": plot_predicted_vs_true(y, preds),
        "resid_mass": plot_residuals_vs_mass(y, preds),
        "resid_z": plot_residuals_vs_redshift(y, preds, z),
        "calibration": plot_calibration(y, preds),
        "summary": plot_performance(y, preds, z, title="synthetic models"),
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        _save(fig, tmp_path / f"{name}.png")
    # the legend carries the metrics of each model
    texts = [t.get_text() for t in figs["pred_vs_true"].axes[0].get_legend().get_texts()]
    assert any(t.startswith("ensemble: scatter") for t in texts) and "1:1" in texts
    # calibration skips models without a std (two curves + the diagonal)
    assert len(figs["calibration"].axes[0].get_lines()) == 3 + 2  # + the 68% and 95% guide lines


def test_single_model_and_given_axes(models, tmp_path):
    y, z, preds = models
    fig = Figure(figsize=(11, 5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    out = plot_predicted_vs_true(y, preds["ensemble"], ax=ax1)
    assert out is fig
    plot_residuals_vs_redshift(y, preds["counts"], z, ax=ax2)
    _save(fig, tmp_path / "axes.png")


def test_bad_input_is_refused(models):
    y, z, preds = models
    with pytest.raises(ValueError, match="has 10 values but y_true has 600"):
        plot_predicted_vs_true(y, preds["counts"][:10])
    with pytest.raises(ValueError, match="needs predictions with a std"):
        plot_calibration(y, preds["counts"])
    with pytest.raises(ValueError, match="std of 'model' must be positive"):
        plot_predicted_vs_true(y, (preds["counts"], np.zeros_like(y)))
    with pytest.raises(ValueError, match="x has 3 values"):
        plot_residuals_vs_redshift(y, preds["counts"], z[:3])


def test_transfer_figure(tmp_path):
    from skcluster.metrics import transfer_diagnostics
    from skcluster.plotting import plot_transfer

    rng = np.random.default_rng(1)
    t = rng.uniform(13.0, 15.0, 1000)
    diags = {"flat": transfer_diagnostics(t, t + rng.normal(0, 0.1, t.size)),
             "shrunk": transfer_diagnostics(t, 14 + 0.6 * (t - 14) + rng.normal(0, 0.1, t.size))}
    fig = plot_transfer(diags, title="test")
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("flat (slope 1.0") and labels[1].startswith("shrunk (slope 0.6")
    fig.savefig(tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 0
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_transfer({})
