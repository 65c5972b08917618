"""The demo's cluster figure: the model's own bands and pixels (``plot_model_input``)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from skcluster.datasets import make_survey  # noqa: E402
from skcluster.models import make_mass_pipeline  # noqa: E402
from skcluster.plotting import plot_model_input  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    data = make_survey(area_deg2=3, random_state=3, verbose=False)
    pipe = make_mass_pipeline(bands="ho3", npix=25, n_estimators=1, max_epochs=1)
    pipe[:-1].fit(data.X, data.y)  # only the preprocessing is needed for the figure
    return data, pipe


def test_panels_show_the_model_input_before_scaling(fitted, tmp_path):
    data, pipe = fitted
    theta = np.asarray(data.catalog["theta500_arcmin"])
    fig = plot_model_input(pipe, data.X, indices=[0, 2], y=data.y, theta500_arcmin=theta,
                           labels=["first", "third"])
    upto_scale = [name for name, _ in pipe.steps].index("scale")
    expected = pipe[:upto_scale].transform(data.X[[0, 2]])["images"]  # bin, resize, (profile,) smooth
    nb = expected.shape[1]
    assert nb == 3 and expected.shape[-1] == 25
    image_axes = [ax for ax in fig.axes if ax.get_images() and ax.get_title()]
    assert len(image_axes) == 2 * (nb + 1)
    for r in range(2):
        row = image_axes[r * (nb + 1):(r + 1) * (nb + 1)]
        shown = [np.asarray(ax.get_images()[0].get_array()) for ax in row]
        np.testing.assert_allclose(shown[0], expected[r].sum(axis=0), rtol=1e-5)
        for b in range(nb):
            np.testing.assert_array_equal(shown[b + 1], expected[r, b])
        # arcmin axes over the 20 arcmin box, the r500 circle, the centre marked
        assert row[0].get_images()[0].get_extent() == [-10.0, 10.0, -10.0, 10.0]
        assert "arcmin" in row[0].get_xlabel() and "arcmin" in row[0].get_ylabel()
        i = [0, 2][r]
        circles = [p for p in row[1].patches if type(p).__name__ == "Circle"]
        assert len(circles) == 1 and circles[0].get_radius() == pytest.approx(theta[i])
        assert any(line.get_marker() == "+" for line in row[1].get_lines())
        assert "keV" in row[1].get_title() and "cts" in row[1].get_title()
    titles = [sf.get_suptitle() for sf in fig.subfigs]
    for i, title in zip([0, 2], titles):
        m = 10 ** data.y[i]
        assert f"{m / 10 ** np.floor(np.log10(m)):.1f}e" in title and "Msun" in title
        assert f"z = {data.X['z'][i]:.3f}" in title and "counts in the box" in title
    # one colour bar for the band sum and one for the bands, per row, labelled in counts per pixel
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 4
    assert any("counts per 48\" pixel" in ax.get_ylabel() for ax in colorbars)
    fig.savefig(tmp_path / "clusters.png", dpi=60)
    assert (tmp_path / "clusters.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_is_named(fitted):
    data, pipe = fitted
    with pytest.raises(ValueError, match="'scale' step"):
        plot_model_input(pipe["model"], data.X)
    with pytest.raises(IndexError, match="out of range"):
        plot_model_input(pipe, data.X, indices=[10_000])
    with pytest.raises(ValueError, match="theta500_arcmin must have one value per row"):
        plot_model_input(pipe, data.X, indices=[0], theta500_arcmin=[1.0, 2.0])
    with pytest.raises(ValueError, match="labels has 2 entries for 1 clusters"):
        plot_model_input(pipe, data.X, indices=[0], labels=["a", "b"])
