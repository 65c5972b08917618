"""BandBinner and the band presets: geometry, edges, dropped events, exactness."""

import numpy as np
import pytest
from preprocessing_helpers import synthetic_sample

from skcluster import ClusterSample
from skcluster.io import EVENT_DTYPE, make_events
from skcluster.preprocessing import BAND_PRESETS, BandBinner, Resizer, resolve_bands


def _sample(*event_lists, **columns):
    events = np.empty(len(event_lists), dtype=object)
    events[:] = list(event_lists)
    return ClusterSample(events=events, **columns)


# -- presets ----------------------------------------------------------------
def test_presets():
    k10 = resolve_bands("krippendorf10")
    assert len(k10) == 10 and k10[0][0] == 0.25 and k10[-1][1] == 2.3
    assert all(a[1] == b[0] for a, b in zip(k10[:-1], k10[1:]))  # contiguous
    assert resolve_bands("ho3") == [(0.5, 1.2), (1.2, 2.0), (2.0, 7.0)]
    assert resolve_bands("broad") == [(0.2, 2.3)]
    assert resolve_bands("efeds7")[0] == (0.3, 0.6) and len(BAND_PRESETS["efeds7"]) == 7
    assert resolve_bands([(1, 2), (0.5, 1)]) == [(1.0, 2.0), (0.5, 1.0)]  # order kept
    with pytest.raises(ValueError, match=r"unknown band preset 'kripendorf10'.*'ho3'"):
        resolve_bands("kripendorf10")
    with pytest.raises(ValueError, match="0 < lo < hi"):
        resolve_bands([(2.0, 1.0)])


# -- geometry ---------------------------------------------------------------
def test_pixel_geometry_follows_the_contract():
    """x -> column (toward decreasing RA), y -> row; pixel c covers [-S/2 + c p, ...)."""
    # S = 1200 arcsec, 300 pixels of 4 arcsec
    ev = make_events(
        x_arcsec=[-599.0, 599.0, 0.0, -0.5, 10.0, 3.999],
        y_arcsec=[-599.0, 0.0, 0.0, -0.5, -597.0, 596.5],
        energy_keV=[1.0] * 6,
    )
    Xt = BandBinner(bands="broad", npix=300).fit_transform(_sample(ev))
    img = Xt["images"][0, 0]
    expected = np.zeros((300, 300), np.float32)
    expected[0, 0] += 1  # (-599, -599)
    expected[150, 299] += 1  # x = 599 -> last column, y = 0 -> row 150
    expected[150, 150] += 1  # (0, 0): the four central pixels meet at the centre
    expected[149, 149] += 1  # (-0.5, -0.5)
    expected[0, 152] += 1  # x = 10 -> col floor(610 / 4) = 152; y = -597 -> row 0
    expected[299, 150] += 1  # x = 3.999 -> col 150; y = 596.5 -> row 299
    np.testing.assert_array_equal(img, expected)
    assert Xt.meta["pixel_arcsec"] == 4.0 and Xt.meta["size_arcmin"] == 20.0
    assert Xt.meta["image_unit"] == "counts"


def test_box_edge_is_outside_also_after_float32_rounding():
    edge = np.float32(600.0 - 1e-5)  # rounds onto the edge in float32
    assert edge == 600.0
    inner = np.nextafter(np.float32(600.0), np.float32(0))  # largest float32 < 600
    ev = make_events(
        [-600.0, 600.0, edge, 0.0, 0.0, inner, -inner],
        [0.0, 0.0, 0.0, -600.0, 600.0, 0.0, -inner],
        [1.0] * 7,
    )
    Xt = BandBinner(bands="broad", npix=300).fit_transform(_sample(ev))
    assert Xt["images"].sum() == 2
    assert Xt["images"][0, 0, 150, 299] == 1 and Xt["images"][0, 0, 0, 0] == 1
    stats = Xt.meta["binning_stats"]
    assert stats["n_outside_box"] == 5 and stats["n_binned"] == 2


def test_energy_edges_are_half_open_like_evtool_pi_cuts():
    # energies as read from PI in eV (float64 / 1000 then float32, as io does)
    pi_eV = np.array([200, 300, 599, 600, 1100, 6999, 7000, 12000])
    ev = make_events(np.zeros(8), np.zeros(8), pi_eV / 1000.0)
    Xt = BandBinner(bands="efeds7", npix=2).fit_transform(_sample(ev))
    per_band = Xt["images"][0].sum(axis=(1, 2))
    # 0.3 and 0.599 -> band 0; 0.6 -> band 1 (0.6-1.1); 1.1 -> band 2; 6.999 -> band 6
    np.testing.assert_array_equal(per_band, [2, 1, 1, 0, 0, 0, 1])
    stats = Xt.meta["binning_stats"]
    assert stats["n_outside_bands"] == 3  # 0.2, 7.0 (upper edge excluded), 12 keV


def test_dropped_events_are_counted_not_errors():
    ev = make_events(
        [0.0, np.nan, 0.0, 0.0, 5000.0, 0.0],
        [0.0, 0.0, np.inf, 0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0, np.nan, 1.0, 50.0],
    )
    from skcluster.exceptions import SkclusterWarning

    with pytest.warns(SkclusterWarning, match="3 of 6 events have a non-finite offset or energy and are not binned"):
        Xt = BandBinner(bands="broad", npix=10).fit_transform(_sample(ev, ev[:0]))
    assert Xt["images"][0].sum() == 1 and Xt["images"][1].sum() == 0
    assert Xt.meta["binning_stats"] == dict(
        n_events=6, n_nonfinite=3, n_outside_box=1, n_outside_bands=1, n_binned=1
    )


def test_empty_event_lists_give_empty_images():
    empty = np.empty(0, dtype=EVENT_DTYPE)
    Xt = BandBinner(npix=20).fit_transform(_sample(empty, empty, z=np.array([0.1, 0.2])))
    assert Xt["images"].shape == (2, 10, 20, 20) and Xt["images"].dtype == np.float32
    assert not Xt["images"].any()
    np.testing.assert_array_equal(Xt["z"], [0.1, 0.2])  # other columns pass through


def test_matches_a_per_cluster_histogramdd_reference(rng):
    X, _ = synthetic_sample(n=7, seed=3)
    bands = resolve_bands("ho3")
    Xt = BandBinner(bands="ho3", npix=40).fit_transform(X)
    edges_xy = np.linspace(-600.0, 600.0, 41)
    for i, ev in enumerate(X["events"]):
        ref = np.stack([
            np.histogramdd(
                np.column_stack([ev["y_arcsec"], ev["x_arcsec"]])[
                    (ev["energy_keV"] >= np.float32(lo)) & (ev["energy_keV"] < np.float32(hi))
                ].astype(np.float64),
                bins=(edges_xy, edges_xy),
            )[0]
            for lo, hi in bands
        ])
        np.testing.assert_array_equal(Xt["images"][i], ref.astype(np.float32))


@pytest.mark.parametrize("factor", [2, 3, 6])
def test_binning_coarse_equals_fine_then_resize(factor):
    X, _ = synthetic_sample(n=5, seed=1)
    fine = BandBinner(npix=300).fit_transform(X)
    coarse = BandBinner(npix=300 // factor).fit_transform(X)
    resized = Resizer(shape=300 // factor).fit_transform(fine)
    np.testing.assert_array_equal(coarse["images"], resized["images"])
    assert resized.meta["pixel_arcsec"] == coarse.meta["pixel_arcsec"] == 4.0 * factor


def test_overlapping_bands_count_an_event_in_each():
    ev = make_events([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.3, 1.0, 3.0])
    bands = [(0.2, 2.3), (0.5, 1.2), (0.2, 0.6)]
    Xt = BandBinner(bands=bands, npix=4).fit_transform(_sample(ev))
    np.testing.assert_array_equal(Xt["images"][0].sum(axis=(1, 2)), [2, 1, 1])
    stats = Xt.meta["binning_stats"]
    assert stats["n_binned"] == 2 and stats["n_outside_bands"] == 1


def test_chunking_and_event_dtype_do_not_change_the_result():
    X, _ = synthetic_sample(n=9, seed=2)
    ref = BandBinner(npix=30).fit_transform(X)["images"]
    one = BandBinner(npix=30, chunk_size=1).fit_transform(X)["images"]
    np.testing.assert_array_equal(one, ref)
    # float64 fields and extra fields, in some rows only
    ev64 = X["events"].copy()
    dt = np.dtype([("energy_keV", "f8"), ("x_arcsec", "f8"), ("y_arcsec", "f8"), ("t", "f8")])
    for i in (0, 4):
        e = np.empty(len(ev64[i]), dtype=dt)
        for f in ("energy_keV", "x_arcsec", "y_arcsec"):
            e[f] = ev64[i][f]
        ev64[i] = e
    mixed = BandBinner(npix=30, chunk_size=4).fit_transform(X.assign(events=ev64))["images"]
    np.testing.assert_array_equal(mixed, ref)


def test_input_is_not_modified_and_stateless_transform():
    X, _ = synthetic_sample(n=4, seed=5)
    before = [ev.copy() for ev in X["events"]]
    out = BandBinner(npix=10).transform(X)  # no fit needed: nothing is learned
    assert "images" not in X and out["images"].shape == (4, 10, 10, 10)
    for a, b in zip(before, X["events"]):
        np.testing.assert_array_equal(a, b)


def test_bad_input_errors():
    with pytest.raises(KeyError, match=r"BandBinner needs column\(s\) \['events'\]"):
        BandBinner().fit(ClusterSample(z=np.array([0.1])))
    bad = np.empty(2, dtype=object)
    bad[:] = [make_events([0.0], [0.0], [1.0]), np.zeros(3)]
    with pytest.raises(ValueError, match=r"x_arcsec.*row 1"):
        BandBinner().fit(ClusterSample(events=bad))
    X = _sample(make_events([0.0], [0.0], [1.0]))
    for params, match in [
        (dict(npix=0), "npix must be a positive integer"),
        (dict(npix=50.5), "npix must be a positive integer"),
        (dict(size_arcmin=-1), "size_arcmin must be a positive"),
        (dict(bands="nope"), "unknown band preset"),
        (dict(bands=[(1.0,)]), "pairs"),
    ]:
        with pytest.raises(ValueError, match=match):
            BandBinner(**params).fit(X)


def test_sparse_and_dense_counting_agree(monkeypatch):
    """Sorting (many more pixels than events) and bincount give the same cube."""
    import skcluster.preprocessing.binning as binning

    X, _ = synthetic_sample(n=6, seed=8)
    results = []
    for ratio in (0, 10**12):  # always sparse, never sparse
        monkeypatch.setattr(binning, "_SPARSE_RATIO", ratio)
        results.append(BandBinner(npix=120, chunk_size=4).fit_transform(X))
    np.testing.assert_array_equal(results[0]["images"], results[1]["images"])
    assert results[0]["images"].sum() > 1000
    assert results[0].meta["binning_stats"] == results[1].meta["binning_stats"]
