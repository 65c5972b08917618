"""skcluster.explain: attributions, their geometry, and the summaries (tiny networks)."""

import numpy as np
import pytest
import torch

from skcluster import explain
from skcluster.ensemble import DeepEnsembleRegressor
from skcluster.nn import CNNRegressor, make_toy_sample


def _net(**kw):
    params = dict(input_scaling="log1p", max_epochs=3, random_state=0, module__channels=(4, 8),
                  module__dense=(16,), batch_size=32)
    params.update(kw)
    return CNNRegressor(**params)


@pytest.fixture(scope="module")
def toy():
    X, y = make_toy_sample(96, n_bands=2, image_size=16, random_state=0)
    ens = DeepEnsembleRegressor(_net(), n_estimators=2, random_state=0).fit(X, y)
    return X, y, ens


def test_saliency_shapes_finite_and_nonnegative(toy):
    X, _, ens = toy
    s = explain.saliency(ens, X[:10], batch_size=4)
    assert s.shape == (10, 2, 16, 16) and s.dtype == np.float32
    assert np.isfinite(s).all() and (s >= 0).all() and s.max() > 0
    # a single member gives its own saliency; the ensemble's is the members' mean
    parts = [explain.saliency(m, X[:10]) for m in ens.estimators_]
    np.testing.assert_allclose(s, np.mean(parts, axis=0), rtol=1e-5, atol=1e-7)


def test_saliency_matches_finite_difference(toy):
    X, _, ens = toy
    net = ens.estimators_[0]
    g = explain.saliency(net, X[:1], absolute=False)[0]
    b, r, c = np.unravel_index(np.argmax(np.abs(g)), g.shape)
    eps = 1e-2
    Xp, Xm = X[:1].copy(), X[:1].copy()
    Xp["images"] = X["images"][:1].copy()
    Xm["images"] = X["images"][:1].copy()
    Xp["images"][0, b, r, c] += eps
    Xm["images"][0, b, r, c] -= eps
    fd = (net.predict(Xp)[0] - net.predict(Xm)[0]) / (2 * eps)
    assert fd == pytest.approx(g[b, r, c], rel=0.05, abs=1e-6)


def test_dropout_is_off_and_training_flag_restored(toy):
    X, _, _ = toy
    net = _net(module__dropout=0.5).fit(*make_toy_sample(64, n_bands=2, image_size=16, random_state=1))
    net.module_.train()
    a = explain.saliency(net, X[:4])
    b = explain.saliency(net, X[:4])
    np.testing.assert_array_equal(a, b)  # eval mode: deterministic
    assert net.module_.training  # the caller's mode is restored


def test_integrated_gradients_completeness(toy):
    X, _, ens = toy
    attr, delta = explain.integrated_gradients(ens, X[:8], n_steps=64, batch_size=3,
                                               return_convergence_delta=True)
    assert attr.shape == (8, 2, 16, 16) and attr.dtype == np.float32 and np.isfinite(attr).all()
    # completeness: sum of attributions = f(x) - f(baseline), checked against predict
    f_x = ens.predict(X[:8])
    Xb = X[:8].copy()
    Xb["images"] = np.zeros_like(X["images"][:8])
    f_b = ens.predict(Xb)
    total = attr.reshape(8, -1).sum(axis=1, dtype=np.float64)
    scale = np.abs(f_x - f_b).max()
    assert scale > 1e-4  # a trivial network would make the test vacuous
    np.testing.assert_allclose(total, f_x - f_b, atol=0.02 * scale + 1e-5)
    assert np.abs(delta).max() < 0.02 * scale + 1e-5


def test_integrated_gradients_array_baseline_and_midpoint(toy):
    X, _, ens = toy
    base = X["images"][20]  # another cluster as the baseline, (B, H, W)
    # the path between two clusters crosses many ReLU kinks: the midpoint rule needs many steps
    attr, delta = explain.integrated_gradients(ens, X[:4], baseline=base, n_steps=64, method="midpoint",
                                               return_convergence_delta=True)
    f_x = ens.predict(X[:4])
    Xb = X[:4].copy()  # the baseline keeps each cluster's own redshift
    Xb["images"] = np.repeat(base[None], 4, axis=0)
    f_b = ens.predict(Xb)
    total = attr.reshape(4, -1).sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(total, f_x - f_b, atol=0.03 * np.abs(f_x - f_b).max() + 1e-5)
    np.testing.assert_allclose(delta, total - (f_x - f_b), atol=1e-4)  # delta is what it says
    with pytest.raises(ValueError, match="baseline array must have shape"):
        explain.integrated_gradients(ens, X[:4], baseline=np.zeros((3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="pass the fitted Pipeline"):
        explain.integrated_gradients(ens, X[:4], baseline="background")


def test_rejects_non_network_models(toy):
    from sklearn.linear_model import BayesianRidge

    X, _, _ = toy
    with pytest.raises(TypeError, match="CNNRegressor"):
        explain.saliency(BayesianRidge(), X[:2])
    with pytest.raises(Exception, match="not fitted"):
        explain.saliency(DeepEnsembleRegressor(_net(), n_estimators=2), X[:2])


def test_pixel_radius_is_centred():
    r = explain.pixel_radius((4, 4))
    assert r[1, 1] == pytest.approx(np.sqrt(0.5)) and r[2, 2] == pytest.approx(np.sqrt(0.5))
    assert r[0, 0] == pytest.approx(np.hypot(1.5, 1.5))
    np.testing.assert_allclose(r, r[::-1, ::-1])


def test_radial_profile_of_known_maps():
    npix, pixel_arcsec = 60, 24.0
    theta500 = np.array([2.0, 3.0, 4.0])  # arcmin -> 5, 7.5, 10 pixels
    r = explain.pixel_radius((npix, npix))
    # map = r / r500: each annulus averages r/r500 over its pixels, i.e. the area-weighted
    # mean radius 2/3 (b^3 - a^3) / (b^2 - a^2) of the annulus [a, b), up to pixelisation
    maps = np.stack([r / (60.0 * t / pixel_arcsec) for t in theta500]).astype(np.float32)
    bins = (0.5, 1.0, 1.5, 2.0, 2.5)
    prof = explain.radial_profile(maps, theta500, pixel_arcsec, bins, normalize=False)
    assert prof.profiles.shape == (3, 4)
    a, b = prof.edges[:-1], prof.edges[1:]
    expect = 2.0 / 3.0 * (b**3 - a**3) / (b**2 - a**2)
    np.testing.assert_allclose(prof.profiles, np.broadcast_to(expect, (3, 4)), atol=0.02)
    np.testing.assert_allclose(prof.mean, expect, atol=0.01)
    # a top hat inside r500: 1 in the bins inside, 0 outside, whatever theta500
    hat = (maps < 1.0).astype(np.float32)
    p = explain.radial_profile(hat, theta500, pixel_arcsec, (0, 0.5, 1.0, 2.0, 3.0), normalize=False)
    np.testing.assert_allclose(p.mean, [1, 1, 0, 0])
    # pixel counts follow the annulus area (pi (r2^2 - r1^2) r500_pix^2) to within the pixel noise
    area = np.pi * np.diff(np.square(p.edges)) * (60 * theta500[2] / pixel_arcsec) ** 2
    np.testing.assert_allclose(p.n_pixels[2], area, rtol=0.1)
    # normalisation divides by the mean within the last edge; 4-D maps are summed over bands
    p4 = explain.radial_profile(np.stack([hat, hat], axis=1), theta500, pixel_arcsec, (0, 0.5, 1.0, 2.0, 3.0))
    inside = p.n_pixels[:, :2].sum(axis=1) / p.n_pixels.sum(axis=1)  # share of pixels inside r500
    np.testing.assert_allclose(p4.profiles[:, 0] * inside, 1.0)


def test_radial_profile_marks_empty_annuli_and_bad_input():
    maps = np.ones((2, 10, 10), np.float32)
    # theta500 of 10 pixels: nothing beyond 0.71 r500 in a 10-pixel box
    p = explain.radial_profile(maps, [4.0, 4.0], 24.0, (0, 0.5, 1.0, 2.0), normalize=False)
    assert np.isnan(p.profiles[:, 2]).all() and p.n_clusters[2] == 0
    with pytest.raises(ValueError, match="theta500_arcmin must be finite and > 0"):
        explain.radial_profile(maps, [4.0, -1.0], 24.0)
    with pytest.raises(ValueError, match="bins must be increasing"):
        explain.radial_profile(maps, 4.0, 24.0, (0, 1, 1))


def test_core_weight_detects_a_down_weighted_core():
    rng = np.random.default_rng(0)
    n, npix, pix = 40, 40, 24.0
    theta = rng.uniform(2.0, 4.0, n)
    r = explain.pixel_radius((npix, npix))
    rr = r[None] / (60 * theta[:, None, None] / pix)
    counts = (1.0 / (1 + (rr / 0.2) ** 2) ** 1.5).astype(np.float32)
    bins = explain.DEFAULT_R500_BINS
    # importance proportional to counts except in the core, where it is 4x smaller
    imp = counts * np.where(rr < 0.25, 0.25, 1.0) * rng.uniform(0.9, 1.1, counts.shape)
    pi, pc = explain.radial_profile(imp, theta, pix, bins), explain.radial_profile(counts, theta, pix, bins)
    cw = explain.core_weight(pi, pc, n_boot=200)
    assert cw["ratio"] == pytest.approx(0.25, rel=0.1)
    assert cw["ci95"][1] < 1 and explain.report._verdict(cw) == "down-weighted"
    same = explain.core_weight(pc, pc, n_boot=50)
    assert same["ratio"] == pytest.approx(1.0) and explain.report._verdict(same) == "consistent with the count profile"


def test_band_importance_shares():
    a = np.zeros((2, 3, 4, 4), np.float32)
    a[:, 0] = 1.0
    a[:, 2] = -3.0  # absolute values count
    c = np.ones_like(a)
    b = explain.band_importance(a, c)
    np.testing.assert_allclose(b.mean, [0.25, 0.0, 0.75])
    np.testing.assert_allclose(b.count_share, [1 / 3] * 3)


def test_origin_importance_radius_matched():
    n, npix = 2, 20
    r = explain.pixel_radius((npix, npix))
    icm = np.broadcast_to(10.0 / (1 + r**2), (n, npix, npix)).astype(np.float32)
    bkg = np.full((n, npix, npix), 0.5, np.float32)
    agn = np.zeros((n, npix, npix), np.float32)
    agn[:, 3, 15] = 50.0  # a bright point source far from the centre
    oc = np.stack([bkg, icm, agn], axis=1)
    # the network ignores the AGN: importance follows the ICM only
    imp = icm.copy()
    res = explain.origin_importance(imp, oc)
    assert res["AGN"]["n_pixels"] == 2
    assert res["AGN"]["rel_counts"] > 5  # far brighter than its ring
    assert res["AGN"]["rel_importance"] == pytest.approx(1.0, rel=0.05)
    assert res["AGN"]["importance_per_count"] < 0.2
    assert res["ICM"]["n_pixels"] + res["background"]["n_pixels"] + res["AGN"]["n_pixels"] \
        + res["mixed"]["n_pixels"] == n * npix * npix
    with pytest.raises(ValueError, match="non-negative"):
        explain.origin_importance(-imp, oc)


def test_origin_images_and_pipeline_explanation():
    """End to end on a tiny mock: origins add up to the counts cube; IG with the background baseline."""
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline

    data = make_survey(area_deg2=6, random_state=3, verbose=False)
    X, y, cat = data.X, data.y, data.catalog
    assert len(y) >= 12
    # profile=False: integrated gradients attribute over the images; RadialProfile's sums would enter
    # through the scalars, which the attributions do not cover
    pipe = make_mass_pipeline(bands="ho3", npix=20, sigma=1.0, n_estimators=1, random_state=0, max_epochs=2,
                              channels=(4,), dense=(8,), batch_size=16, fast=False, profile=False,
                              mask_point_sources=False)  # pipe[:3] below: bin -> resize -> smooth
    pipe.set_params(bin__verbose=False)
    pipe.fit(X, y)
    oc = explain.origin_images(pipe, X[:5])
    assert oc.shape == (5, 3, 3, 20, 20) and oc.dtype == np.float32
    smoothed = pipe[:3].transform(X[:5])["images"]  # bin -> resize -> smooth: linear in the counts
    np.testing.assert_allclose(oc.sum(axis=1), smoothed, rtol=1e-4, atol=1e-4)
    raw = explain.origin_images(pipe, X[:5], linear_steps=False)
    np.testing.assert_allclose(raw.sum(axis=1), pipe[0].transform(X[:5])["images"])
    res = explain.explain_predictions(pipe, X[:6], cat["theta500_arcmin"][:6], method="integrated_gradients",
                                      baseline="background", n_steps=24)
    assert res.attributions.shape == (6, 3, 20, 20)
    f_x = pipe.predict(X[:6])
    Xb = explain.origins._select_origins(X[:6], (0,), "test")
    f_b = pipe.predict(Xb)
    np.testing.assert_allclose(res.attributions.reshape(6, -1).sum(axis=1), f_x - f_b,
                               atol=0.03 * np.abs(f_x - f_b).max() + 1e-5)
    s = res.summary
    assert s["n_clusters"] == 6 and len(s["importance_profile"]) == len(explain.DEFAULT_R500_BINS) - 1
    assert set(s["origins"]) >= {"background", "ICM", "AGN", "mixed", "empty"}
    assert s["core_verdict_vs_counts"] in ("down-weighted", "up-weighted", "consistent with the count profile",
                                           "undetermined (no cluster with every bin defined)")
    import json

    json.dumps(s)  # JSON-able
    # figures draw without error
    from skcluster.plotting import plot_attribution_maps, plot_explanation

    plot_explanation(res, pipe[0].bands_keV_)
    plot_attribution_maps(res.counts, res.attributions, cat["theta500_arcmin"][:6], res.pixel_arcsec, (0, 1))
    # real-data style events without origin give a clear error
    ev = X["events"][0]
    bare = np.empty(1, dtype=object)
    bare[0] = ev[["x_arcsec", "y_arcsec", "energy_keV"]]
    with pytest.raises(ValueError, match="no 'origin' field"):
        explain.origin_images(pipe, X[:1].assign(events=bare))


def test_a_pipeline_that_masks_point_sources_first_is_explained_from_its_masked_events():
    """skcluster train's default model masks the detected point sources before binning: explained as it predicts."""
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline

    data = make_survey(area_deg2=6, random_state=3, verbose=False)
    X, y, cat = data.X, data.y, data.catalog
    pipe = make_mass_pipeline(bands="ho3", npix=20, n_estimators=1, random_state=0, max_epochs=2, channels=(4,),
                              dense=(8,), batch_size=16, profile=False, mask_point_sources=True, observables=True)
    pipe.set_params(bin__verbose=False)
    pipe.fit(X, y)
    assert [name for name, _ in pipe.steps[:5]] == ["mask", "observables", "bin", "resize", "smooth"]
    res = explain.explain_predictions(pipe, X[:5], cat["theta500_arcmin"][:5])
    masked = pipe[:2].transform(X[:5])
    np.testing.assert_array_equal(res.counts_raw, pipe[2:3].transform(masked)["images"])
    np.testing.assert_allclose(res.counts, pipe[2:5].transform(masked)["images"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(res.attributions, explain.saliency(pipe, X[:5]))
    # the origins' maps hold every photon but the mask's fill (origin unknown)
    oc = explain.origin_images(pipe, X[:5])
    assert np.all(oc.sum(axis=1) <= res.counts + 1e-4) and oc.sum() > 0.9 * res.counts.sum()


def test_no_grad_leaks_into_parameters(toy):
    X, _, ens = toy
    net = ens.estimators_[0]
    for p in net.module_.parameters():
        p.grad = None
    explain.integrated_gradients(net, X[:2], n_steps=4)
    explain.saliency(net, X[:2])
    assert all(p.grad is None for p in net.module_.parameters())
    assert torch.is_grad_enabled()
