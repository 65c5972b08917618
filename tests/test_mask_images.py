"""Point-source masks on cut-out images: the same masks, and in distribution the same fill, as on events."""

import numpy as np
import pytest

from skcluster.datasets.point_sources import detect_point_sources
from skcluster.io.events import ORIGIN_AGN, ORIGIN_BACKGROUND, make_events
from skcluster.physics.instrument import sample_king_offsets
from skcluster.preprocessing import BandBinner
from skcluster.preprocessing.masking import PointSourceMasker, mask_events, mask_images
from skcluster.sample import ClusterSample

HALF = 600.0  # arcsec: a 20' box
BKG = 0.029 / 16.0  # counts / arcsec^2: the eFEDS background level per 4" pixel
SRC = (150.0, 100.0)


def _events(rng, density=4 * BKG, counts=400):
    n = rng.poisson(density * (2 * HALF) ** 2)
    bkg = make_events(rng.uniform(-HALF, HALF, n), rng.uniform(-HALF, HALF, n), rng.uniform(0.3, 2.2, n),
                      ORIGIN_BACKGROUND)
    k = rng.poisson(counts)
    dx, dy = sample_king_offsets(rng, k)
    src = make_events(SRC[0] + dx, SRC[1] + dy, rng.uniform(0.3, 2.2, k), ORIGIN_AGN)
    src = src[(np.abs(src["x_arcsec"]) < HALF) & (np.abs(src["y_arcsec"]) < HALF)]
    return np.concatenate([bkg, src])


def _bin(events_list):
    X = ClusterSample(events=_objects(*events_list), z=np.full(len(events_list), 0.3))
    return BandBinner(bands="broad", npix=60, verbose=False).fit_transform(X)["images"]


def _objects(*arrays):
    out = np.empty(len(arrays), dtype=object)
    out[:] = list(arrays)
    return out


def _disc_counts(img, radius):
    n = img.shape[-1]
    c = -HALF + (np.arange(n) + 0.5) * 2 * HALF / n
    xx, yy = np.meshgrid(c, c)
    return float(img[..., np.hypot(xx - SRC[0], yy - SRC[1]) < radius].sum())


def test_images_get_the_masks_and_fill_of_the_events():
    rng = np.random.default_rng(11)
    a_disc, b_disc, a_tot, b_tot, fa, fb, raw_disc = [], [], [], [], [], [], []
    for _ in range(20):
        ev = _events(rng)
        src = detect_point_sources(ev["x_arcsec"], ev["y_arcsec"], HALF, BKG)
        assert len(src) >= 1
        masked_ev, f_ev = mask_events(ev, src, HALF, rng=rng)  # the mock's masking, then binning
        img_a = _bin([masked_ev])[0]
        raw = _bin([ev])[0]
        img_b, f_img = mask_images(raw, src, 2 * HALF / 60.0, rng=rng)  # binning, then masking
        a_disc.append(_disc_counts(img_a, 40.0))
        b_disc.append(_disc_counts(img_b, 40.0))
        raw_disc.append(_disc_counts(raw, 40.0))
        a_tot.append(img_a.sum())
        b_tot.append(img_b.sum())
        fa.append(f_ev)
        fb.append(f_img)
    # the same masks: the fraction of the box masked agrees (the event one is a 1% Monte Carlo)
    assert abs(np.mean(fa) - np.mean(fb)) < 0.01 and np.mean(fb) > 0.005
    # the source is gone from both: its central 40" held ~300 photons over a level of ~35
    assert np.mean(raw_disc) > 5 * np.mean(a_disc)
    level = 4 * BKG * np.pi * 40.0**2
    for got in (a_disc, b_disc):
        assert 0.7 < np.mean(got) / level < 1.5
    # and the same counts overall, within the noise of the fill
    diff = np.asarray(a_tot) - np.asarray(b_tot)
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(diff.size) + 2


def test_fill_none_leaves_a_hole_and_partial_pixels_keep_their_share():
    rng = np.random.default_rng(12)
    ev = _events(rng)
    src = detect_point_sources(ev["x_arcsec"], ev["y_arcsec"], HALF, BKG)
    src = src[[np.argmin(np.hypot(src["x_arcsec"] - SRC[0], src["y_arcsec"] - SRC[1]))]]  # ours only
    raw = _bin([ev])[0]
    out, frac = mask_images(raw, src, 20.0, fill="none", rng=rng)
    assert 0 < frac < 0.1
    assert _disc_counts(out, 20.0) == 0.0
    # outside every mask nothing changes; nothing grows anywhere
    far = _disc_counts(raw, 1e9) - _disc_counts(raw, 200.0)
    assert far == pytest.approx(_disc_counts(out, 1e9) - _disc_counts(out, 200.0))
    assert np.all(out <= raw + 1e-6)


def test_masker_on_images_is_deterministic_batch_independent_and_checks_its_input():
    rng = np.random.default_rng(13)
    evs = [_events(rng) for _ in range(3)]
    srcs = [detect_point_sources(e["x_arcsec"], e["y_arcsec"], HALF, BKG) for e in evs]
    srcs[2] = srcs[2][:0]
    images = _bin(evs)
    X = ClusterSample(images=images, point_sources=_objects(*srcs), z=np.full(3, 0.3),
                      meta={"size_arcmin": 20.0, "image_unit": "counts"})
    m = PointSourceMasker(random_state=1)
    a = m.fit_transform(X)
    b = m.transform(X[1:])
    np.testing.assert_array_equal(a["images"][1], b["images"][0])
    np.testing.assert_array_equal(a["images"][2], images[2])  # no sources: untouched
    assert a["masked_fraction"][2] == 0.0 and a["masked_fraction"][0] > 0.0
    assert a["images"].dtype == np.float32 and a["images"].shape == images.shape
    assert not np.array_equal(a["images"][0], images[0])
    assert X["images"] is images and np.array_equal(X["images"], _bin(evs))  # input untouched
    with pytest.raises(ValueError, match="counts cube"):
        m.transform(X.assign(meta={"image_unit": "scaled"}))
