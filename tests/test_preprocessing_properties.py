"""Properties (hypothesis): conservation of events and counts, rotation symmetry."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skcluster import ClusterSample
from skcluster.io import make_events
from skcluster.preprocessing import BandBinner, Resizer, resolve_bands

SETTINGS = settings(max_examples=60, deadline=None)

_f32 = dict(width=32, allow_subnormal=True)
coords = st.one_of(
    st.floats(-800, 800, **_f32),
    st.sampled_from([-600.0, 600.0, -599.99997, 599.99997, 0.0, -0.0, 4.0, -4.0]),
    st.just(float("nan")),
)
energies = st.one_of(st.floats(0.0, 12.0, **_f32), st.sampled_from([0.25, 0.31, 2.3, 0.5, 7.0]))


def _sample(event_lists):
    events = np.empty(len(event_lists), dtype=object)
    events[:] = event_lists
    return ClusterSample(events=events)


@st.composite
def event_lists(draw, max_clusters=4, max_events=60):
    out = []
    for _ in range(draw(st.integers(1, max_clusters))):
        n = draw(st.integers(0, max_events))
        x = draw(st.lists(coords, min_size=n, max_size=n))
        y = draw(st.lists(coords, min_size=n, max_size=n))
        e = draw(st.lists(energies, min_size=n, max_size=n))
        out.append(make_events(np.array(x, np.float32), np.array(y, np.float32),
                               np.array(e, np.float32)))
    return out


@SETTINGS
@given(evs=event_lists(), npix=st.sampled_from([1, 7, 30, 64]),
       preset=st.sampled_from(["krippendorf10", "ho3", "efeds7"]))
def test_binning_conserves_the_events_inside_the_box(evs, npix, preset):
    """Every event with |x|, |y| < S/2 (float32 values) and E in a band is counted once."""
    Xt = BandBinner(bands=preset, npix=npix).fit_transform(_sample(evs))
    bands = resolve_bands(preset)
    for i, ev in enumerate(evs):
        x = ev["x_arcsec"].astype(np.float64)
        y = ev["y_arcsec"].astype(np.float64)
        box = (np.abs(x) < 600.0) & (np.abs(y) < 600.0)
        for b, (lo, hi) in enumerate(bands):
            e = ev["energy_keV"]
            expected = np.count_nonzero(box & (e >= np.float32(lo)) & (e < np.float32(hi)))
            assert Xt["images"][i, b].sum() == expected
    stats = Xt.meta["binning_stats"]
    assert stats["n_events"] == sum(len(ev) for ev in evs)
    assert stats["n_events"] == (stats["n_nonfinite"] + stats["n_outside_box"]
                                 + stats["n_outside_bands"] + stats["n_binned"])
    assert Xt["images"].sum() == stats["n_binned"]


@SETTINGS
@given(
    images=hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 3),
                                            st.integers(1, 40), st.integers(1, 40)),
                      elements=st.floats(0, 1000, width=32)),
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
)
def test_resizing_conserves_counts(images, shape):
    X = ClusterSample(images=images)
    out = Resizer(shape).fit_transform(X)["images"]
    assert out.shape == images.shape[:2] + shape and out.dtype == np.float32
    before = images.sum(axis=(2, 3), dtype=np.float64)
    after = out.sum(axis=(2, 3), dtype=np.float64)
    # float32 products: relative error of a few float32 epsilons of the total
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-3)
    assert np.all(out >= 0)


@st.composite
def off_edge_events(draw, npix):
    """Events inside the box, at least 5% of a pixel from any pixel edge."""
    n = draw(st.integers(0, 80))
    pix = 1200.0 / npix
    col = draw(hnp.arrays(np.int64, n, elements=st.integers(0, npix - 1)))
    row = draw(hnp.arrays(np.int64, n, elements=st.integers(0, npix - 1)))
    fx = draw(hnp.arrays(np.float64, n, elements=st.floats(0.05, 0.95)))
    fy = draw(hnp.arrays(np.float64, n, elements=st.floats(0.05, 0.95)))
    e = draw(hnp.arrays(np.float64, n, elements=st.floats(0.25, 2.29)))
    return make_events(-600.0 + (col + fx) * pix, -600.0 + (row + fy) * pix, e)


@SETTINGS
@given(data=st.data(), npix=st.sampled_from([2, 5, 30, 50]))
def test_rotating_events_by_90_degrees_rotates_the_image(data, npix):
    ev = data.draw(off_edge_events(npix))
    rotated = ev.copy()
    rotated["x_arcsec"] = -ev["y_arcsec"]  # (x, y) -> (-y, x): +90 degrees
    rotated["y_arcsec"] = ev["x_arcsec"]
    binner = BandBinner(npix=npix)
    img = binner.fit_transform(_sample([ev]))["images"]
    img_rot = binner.transform(_sample([rotated]))["images"]
    # rows follow y, columns follow x: new[r, c] = old[N - 1 - c, r]
    np.testing.assert_array_equal(img_rot, np.rot90(img, k=-1, axes=(2, 3)))
    np.testing.assert_array_equal(
        np.rot90(img, k=-1, axes=(2, 3))[0, :, 0, :], img[0, :, ::-1, 0]
    )
