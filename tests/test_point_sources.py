"""Point-source detection on photons and the masker that every method shares."""

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from skcluster.datasets.point_sources import (
    POINT_SOURCE_DTYPE,
    detect_point_sources,
    king_surface_density,
    mask_radius_arcsec,
)
from skcluster.io.events import ORIGIN_AGN, ORIGIN_BACKGROUND, ORIGIN_CLUSTER, make_events
from skcluster.physics.instrument import king_enclosed_fraction, sample_king_offsets
from skcluster.preprocessing import BandBinner
from skcluster.preprocessing.masking import PointSourceMasker, mask_events
from skcluster.sample import ClusterSample

HALF = 600.0  # arcsec: a 20' box
BKG = 0.029 / 16.0  # counts / arcsec^2: the eFEDS background level per 4" pixel


def _background(rng, density=BKG, half=HALF):
    n = rng.poisson(density * (2 * half) ** 2)
    return make_events(rng.uniform(-half, half, n), rng.uniform(-half, half, n),
                       rng.uniform(0.3, 2.2, n), ORIGIN_BACKGROUND)


def _point(rng, x0, y0, counts, half=HALF):
    k = rng.poisson(counts)
    dx, dy = sample_king_offsets(rng, k)
    ev = make_events(x0 + dx, y0 + dy, rng.uniform(0.3, 2.2, k), ORIGIN_AGN)
    return ev[(np.abs(ev["x_arcsec"]) < half) & (np.abs(ev["y_arcsec"]) < half)]


def _objects(*arrays):
    out = np.empty(len(arrays), dtype=object)
    out[:] = list(arrays)
    return out


def test_king_surface_density_integrates_to_enclosed_fraction():
    r = np.linspace(0.0, 60.0, 60001)
    inner = np.trapezoid(2 * np.pi * r * king_surface_density(r), r)
    assert inner == pytest.approx(float(king_enclosed_fraction(60.0)), rel=1e-4)


def test_mask_radius_grows_with_brightness_and_is_clipped():
    r = mask_radius_arcsec([1.0, 30.0, 300.0, 3e5], BKG)
    assert r[0] == 20.0 and r[-1] == 120.0
    assert np.all(np.diff(r) >= 0) and r[2] > r[1]


def test_bright_source_found_with_position_and_counts():
    rng = np.random.default_rng(3)
    ev = np.concatenate([_background(rng), _point(rng, 250.0, -180.0, 300)])
    src = detect_point_sources(ev["x_arcsec"], ev["y_arcsec"], HALF, BKG)
    assert src.dtype == POINT_SOURCE_DTYPE
    d = np.hypot(src["x_arcsec"] - 250.0, src["y_arcsec"] + 180.0)
    j = int(np.argmin(d))
    assert d[j] < 5.0
    assert src["counts"][j] == pytest.approx(300.0, rel=0.2)
    assert src["det_like"][j] > 50


def test_chance_detections_and_completeness_on_many_fields():
    # 40 fields of 0.11 deg^2: sources of 40 counts are nearly always found,
    # background-only fields give few chance detections (a few per deg^2 at
    # the default threshold, measured ~17 / deg^2)
    rng = np.random.default_rng(4)
    found, false = 0, 0
    for _ in range(40):
        ev = np.concatenate([_background(rng), _point(rng, -300.0, 300.0, 40)])
        src = detect_point_sources(ev["x_arcsec"], ev["y_arcsec"], HALF, BKG)
        d = np.hypot(src["x_arcsec"] + 300.0, src["y_arcsec"] - 300.0)
        found += int(np.any(d < 15.0))
        false += int(np.sum(d >= 15.0))
    assert found >= 36
    per_deg2 = false / (40 * (2 * HALF / 3600.0) ** 2)
    assert per_deg2 < 40.0


def test_cluster_centre_and_extended_emission_are_not_point_sources():
    rng = np.random.default_rng(5)
    # a compact source at the cluster position: the cluster's own detection
    centre = _point(rng, 5.0, -4.0, 200)
    # an extended blob (Gaussian, sigma 40") off centre: not point-like
    n = 400
    blob = make_events(rng.normal(-250.0, 40.0, n), rng.normal(200.0, 40.0, n),
                       rng.uniform(0.3, 2.2, n), ORIGIN_CLUSTER)
    ev = np.concatenate([_background(rng), centre, blob])
    src = detect_point_sources(ev["x_arcsec"], ev["y_arcsec"], HALF, BKG)
    assert not np.any(np.hypot(src["x_arcsec"], src["y_arcsec"]) < 30.0)
    assert not np.any(np.hypot(src["x_arcsec"] + 250.0, src["y_arcsec"] - 200.0) < 60.0)


def test_empty_photon_list_gives_empty_list():
    src = detect_point_sources([], [], HALF, BKG)
    assert src.shape == (0,) and src.dtype == POINT_SOURCE_DTYPE


def test_mask_removes_source_photons_and_refills_at_local_level():
    rng = np.random.default_rng(6)
    dens = []
    agn_left = []
    for _ in range(30):
        ev = np.concatenate([_background(rng), _point(rng, 150.0, 100.0, 400)])
        src = detect_point_sources(ev["x_arcsec"], ev["y_arcsec"], HALF, BKG)
        out, frac = mask_events(ev, src, HALF, rng=rng)
        assert 0.0 < frac < 0.1
        d = np.hypot(out["x_arcsec"] - 150.0, out["y_arcsec"] - 100.0)
        dens.append(np.sum(d < 40.0) / (np.pi * 40.0**2))
        agn_left.append(np.sum(out["origin"] == ORIGIN_AGN) / 400.0)
    # before masking the central 40" hold ~80% of 400 photons (~90x the
    # background); after it, the background level plus a little PSF wing
    assert 0.8 < np.mean(dens) / BKG < 1.4
    assert np.mean(agn_left) < 0.12


def test_fill_none_leaves_a_hole():
    rng = np.random.default_rng(7)
    ev = np.concatenate([_background(rng), _point(rng, 0.0, 300.0, 200)])
    src = detect_point_sources(ev["x_arcsec"], ev["y_arcsec"], HALF, BKG)
    out, _ = mask_events(ev, src, HALF, fill="none", rng=rng)
    assert np.sum(np.hypot(out["x_arcsec"], out["y_arcsec"] - 300.0) < 20.0) == 0


def _sample(rng, n=3):
    evs, srcs = [], []
    for i in range(n):
        ev = np.concatenate([_background(rng), _point(rng, 100.0 * i - 100, 200.0, 300)])
        evs.append(ev)
        srcs.append(detect_point_sources(ev["x_arcsec"], ev["y_arcsec"], HALF, BKG))
    srcs[-1] = srcs[-1][:0]  # a cluster without detected sources
    return ClusterSample(events=_objects(*evs), point_sources=_objects(*srcs), z=np.full(n, 0.3))


def test_masker_transformer_is_deterministic_and_batch_independent():
    rng = np.random.default_rng(8)
    X = _sample(rng)
    m = PointSourceMasker(random_state=1)
    a = m.fit_transform(X)
    b = m.transform(X[1:])
    assert np.array_equal(a["events"][1], b["events"][0])
    assert a["events"][2] is X["events"][2]  # no sources: untouched
    assert a["masked_fraction"][2] == 0.0 and a["masked_fraction"][0] > 0.0
    assert len(a["events"][0]) < len(X["events"][0])


def test_masker_composes_with_binner():
    rng = np.random.default_rng(9)
    X = _sample(rng)
    pipe = make_pipeline(PointSourceMasker(), BandBinner(bands="broad", npix=50))
    img = pipe.fit_transform(X)["images"]
    raw = BandBinner(bands="broad", npix=50).fit_transform(X)["images"]
    # the masked sources' flux is gone, the rest of the image is the same level
    assert img[0].sum() < raw[0].sum() - 150
    assert img[2].sum() == raw[2].sum()


def test_masker_errors_name_the_problem():
    rng = np.random.default_rng(10)
    X = _sample(rng)
    with pytest.raises(KeyError, match="point_sources"):
        PointSourceMasker().fit(ClusterSample(events=X["events"]))
    with pytest.raises(ValueError, match="fill"):
        PointSourceMasker(fill="zero").fit(X)
    with pytest.raises(ValueError, match="max_radius_arcsec"):
        PointSourceMasker(min_radius_arcsec=50.0, max_radius_arcsec=10.0).fit(X)
    bad = X.assign(point_sources=_objects([1, 2], None, None))
    with pytest.raises(ValueError, match="structured array"):
        PointSourceMasker().fit_transform(bad)
    nofield = np.zeros(1, dtype=[("ra", "f8")])
    with pytest.raises(ValueError, match="x_arcsec"):
        mask_events(X["events"][0], nofield, HALF)


def test_standard_pipeline_masks_when_asked():
    from skcluster.models import make_preprocessing

    assert [n for n, _ in make_preprocessing().steps] == ["bin", "resize", "smooth", "scale", "join"]
    pipe = make_preprocessing(bands="broad", mask_point_sources=True)
    assert [n for n, _ in pipe.steps][:2] == ["mask", "bin"]
    rng = np.random.default_rng(11)
    X = _sample(rng)
    X = X.assign(exposure=np.full(len(X), 1000.0))
    out = pipe.fit_transform(X)
    assert out["images"].shape[0] == len(X)


def test_flux_only_catalogue_is_converted_like_the_mocks_agn():
    """A catalogue with 0.5-2 keV fluxes only (as the eFEDS point-like catalogue) becomes detection-band rates
    through the same response the mock's AGN photons are drawn with."""
    from astropy.table import Table

    from skcluster.datasets.background import agn_tables, quantise_gamma
    from skcluster.io.point_sources import flux_to_rate, read_point_sources

    flux = np.array([1e-15, 1e-14, 5e-14])
    table = Table({"RA_CORR": [10.0, 10.1, 10.2], "DEC_CORR": [1.0, 1.1, 1.2], "FluxCorr_Med_s": flux})
    got = read_point_sources(table)
    assert set(got) == {"ra", "dec", "rate", "det_like"}
    tab = agn_tables(3e20, (0.2, 10.0), (0.2, 2.3))
    mock_rate = flux * tab["rate_det"][quantise_gamma(1.8)]
    np.testing.assert_allclose(got["rate"], mock_rate, rtol=1e-3)
    np.testing.assert_allclose(flux_to_rate(2 * flux), 2 * got["rate"])
    # a softer spectrum gives more 0.2-2.3 keV counts per 0.5-2 keV flux, the more absorbed fewer
    assert flux_to_rate(1e-14, photon_index=2.2) > flux_to_rate(1e-14) > flux_to_rate(1e-14, nh_cm2=3e21)
    table["FluxCorr_Med_s"][1] = np.nan
    with pytest.raises(ValueError, match="FluxCorr_Med_s.*rows \\[1\\]"):
        read_point_sources(table)
    with pytest.raises(KeyError, match="flux"):
        read_point_sources(Table({"RA": [1.0], "DEC": [1.0], "other": [1.0]}))
