"""Resizer, GaussianSmoother, CountScaler and RedshiftJoiner on hand-made cubes."""

import numpy as np
import pytest
from scipy import ndimage

from skcluster import ClusterSample
from skcluster.exceptions import SkclusterWarning
from skcluster.preprocessing import (
    CountScaler,
    GaussianSmoother,
    RedshiftJoiner,
    Resizer,
    overlap_matrix,
    resolve_bands,
)

K10 = resolve_bands("krippendorf10")
E7 = resolve_bands("efeds7")


def _cube(rng, n=6, bands=K10, size=50, lam=0.5, dtype=np.float32):
    images = rng.poisson(lam, (n, len(bands), size, size)).astype(dtype)
    meta = dict(bands_keV=bands, size_arcmin=20.0, pixel_arcsec=1200.0 / size, image_unit="counts")
    return ClusterSample(
        meta=meta, images=images, z=rng.uniform(0.05, 1.0, n),
        exposure=rng.uniform(800, 2000, n),
    )


# -- Resizer ----------------------------------------------------------------
def test_overlap_matrix_columns_sum_to_one():
    for n_in, n_out in [(300, 50), (300, 64), (50, 37), (10, 25), (7, 7), (5, 1)]:
        w = overlap_matrix(n_in, n_out)
        assert w.shape == (n_out, n_in) and w.dtype == np.float32
        np.testing.assert_allclose(w.sum(axis=0), 1.0, rtol=0, atol=1e-6)
        assert np.all(w >= 0)
    np.testing.assert_array_equal(overlap_matrix(6, 2), [[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    # 3 -> 2: the middle pixel splits in half
    np.testing.assert_allclose(overlap_matrix(3, 2), [[1, 0.5, 0], [0, 0.5, 1]])


def test_resizer_integer_factor_is_a_block_sum(rng):
    X = _cube(rng, n=3, size=300, lam=0.05)
    out = Resizer((50, 50)).fit_transform(X)
    blocks = X["images"].reshape(3, 10, 50, 6, 50, 6).sum(axis=(3, 5))
    np.testing.assert_array_equal(out["images"], blocks)
    assert out["images"].dtype == np.float32
    assert out.meta["pixel_arcsec"] == 24.0


@pytest.mark.parametrize("shape", [(64, 64), (37, 41), (120, 90), (1, 1)])
def test_resizer_conserves_counts_for_any_factor(rng, shape):
    X = _cube(rng, n=4, size=50, lam=2.0)
    out = Resizer(shape).fit_transform(X)["images"]
    assert out.shape == (4, 10) + shape and out.dtype == np.float32
    np.testing.assert_allclose(
        out.sum(axis=(2, 3), dtype=np.float64),
        X["images"].sum(axis=(2, 3), dtype=np.float64),
        rtol=2e-6,
    )


def test_resizer_noop_shares_the_array_and_casts_float64(rng):
    X = _cube(rng)
    out = Resizer((50, 50)).fit_transform(X)
    assert out["images"] is X["images"]
    X64 = _cube(rng, dtype=np.float64)
    out = Resizer(25).fit_transform(X64)
    assert out["images"].dtype == np.float32
    np.testing.assert_allclose(out["images"].sum(), X64["images"].sum(), rtol=1e-6)


def test_resizer_refuses_other_sizes_and_bands(rng):
    r = Resizer((25, 25)).fit(_cube(rng, size=50))
    with pytest.raises(ValueError, match="fitted on images of 50 x 50 pixels, got 60 x 60"):
        r.transform(_cube(rng, size=60))
    with pytest.raises(ValueError, match="fitted on 10 bands .* got 7"):
        r.transform(_cube(rng, bands=E7))
    with pytest.raises(ValueError, match="shape must be an int or an"):
        Resizer("big").fit(_cube(rng))


# -- GaussianSmoother -------------------------------------------------------
def test_smoother_matches_scipy_in_float64_and_keeps_flux(rng):
    X = _cube(rng, n=2, lam=1.0)
    out = GaussianSmoother(sigma=1.5).fit_transform(X)["images"]
    assert out.dtype == np.float32
    ref = np.stack([
        [ndimage.gaussian_filter(X["images"][i, b].astype(np.float64), 1.5) for b in range(10)]
        for i in range(2)
    ])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.sum(axis=(2, 3)), X["images"].sum(axis=(2, 3)), rtol=1e-5)


def test_smoother_bands_axis_and_anisotropy():
    img = np.zeros((1, 5, 21, 21), np.float32)
    img[0, 2, 10, 10] = 1.0
    X = ClusterSample(images=img)
    flat = GaussianSmoother(sigma=2.0).fit_transform(X)["images"]
    assert flat[0, [0, 1, 3, 4]].sum() == 0  # no mixing of bands
    across = GaussianSmoother(sigma=2.0, sigma_bands=1.0).fit_transform(X)["images"]
    assert across[0, 1].sum() > 0.2 and across[0, 3].sum() > 0.2
    np.testing.assert_allclose(across.sum(), 1.0, rtol=1e-5)
    cols = GaussianSmoother(sigma=(0.0, 2.0)).fit_transform(X)["images"][0, 2]
    assert cols[10].sum() == pytest.approx(1.0, rel=1e-5)  # only along the row
    assert cols[9].sum() == 0
    same = GaussianSmoother(sigma=0.0).fit_transform(X)
    assert same["images"] is X["images"]
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        GaussianSmoother(sigma=-1).fit(X)


# -- CountScaler ------------------------------------------------------------
def _reference_scaled(images, exposure, stretch, per_band):
    v = images.astype(np.float64) / exposure[:, None, None, None]
    axes = (0, 2, 3) if per_band else (0, 1, 2, 3)
    if stretch is not None:
        s = v.mean(axis=axes, keepdims=True)
        v = np.log1p(v / s) if stretch == "log" else np.arcsinh(v / s)
    mean = v.mean(axis=axes, keepdims=True)
    std = v.std(axis=axes, keepdims=True)
    return (v - mean) / std


@pytest.mark.parametrize("stretch", ["log", "asinh", None])
@pytest.mark.parametrize("per_band", [True, False])
def test_scaler_matches_a_float64_reference(rng, stretch, per_band):
    X = _cube(rng, n=8, lam=0.7)
    scaler = CountScaler(stretch=stretch, per_band=per_band)
    out = scaler.fit_transform(X)
    assert out["images"].dtype == np.float32 and out.meta["image_unit"] == "scaled"
    ref = _reference_scaled(X["images"], X["exposure"], stretch, per_band)
    np.testing.assert_allclose(out["images"], ref, rtol=1e-4, atol=1e-4)
    # applied to new data with the statistics learned in fit
    X2 = _cube(rng, n=3, lam=0.7)
    v = X2["images"].astype(np.float64) / X2["exposure"][:, None, None, None]
    if stretch is not None:
        s = scaler.softening_[None, :, None, None]
        v = np.log1p(v / s) if stretch == "log" else np.arcsinh(v / s)
    expected = (v - scaler.mean_[None, :, None, None]) / scaler.scale_[None, :, None, None]
    np.testing.assert_allclose(scaler.transform(X2)["images"], expected, rtol=1e-4, atol=1e-4)


def test_scaler_softening_and_no_exposure(rng):
    X = _cube(rng, n=4).drop("exposure")
    with pytest.raises(KeyError, match=r"CountScaler needs column\(s\) \['exposure'\]"):
        CountScaler().fit(X)
    s = CountScaler(exposure_correct=False, softening=2.0).fit(X)
    np.testing.assert_array_equal(s.softening_, 2.0)
    out = s.transform(X)["images"]
    v = np.log1p(X["images"].astype(np.float64) / 2.0)
    ref = (v - v.mean(axis=(0, 2, 3), keepdims=True)) / v.std(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf])
def test_scaler_refuses_bad_exposure_naming_rows(rng, bad):
    X = _cube(rng, n=5)
    exposure = X["exposure"].copy()
    exposure[[1, 3]] = bad
    with pytest.raises(ValueError, match=rf"row 1: {bad!r}, row 3: {bad!r}"):
        CountScaler().fit(X.assign(exposure=exposure))


def test_scaler_names_rows_with_nan_pixels_and_warns_on_empty(rng):
    X = _cube(rng, n=5)
    images = X["images"].copy()
    images[2, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="images of row 2 are NaN or infinite"):
        CountScaler().fit(X.assign(images=images))
    with pytest.warns(SkclusterWarning, match="softening of the stretch falls back to 1"):
        CountScaler().fit(X.assign(images=np.zeros_like(images)))


def test_scaler_empty_band_borrows_the_overall_level(rng):
    X = _cube(rng, n=4)
    images = X["images"].copy()
    images[:, 4] = 0
    s = CountScaler().fit(X.assign(images=images))
    assert np.all(np.isfinite(s.softening_)) and s.softening_[4] > 0
    assert s.scale_[4] == 1.0  # constant band: scale 1, no division by zero


# -- RedshiftJoiner ---------------------------------------------------------
def test_joiner_output_is_exactly_the_network_input(rng):
    X = _cube(rng, n=6).assign(extra_col=np.arange(6.0))
    j = RedshiftJoiner(extra=["exposure", ("extra_col", "linear")])
    out = j.fit_transform(X)
    assert sorted(out.keys()) == ["images", "scalars"]
    assert out["images"].dtype == np.float32 and out["images"].flags.c_contiguous
    assert out["scalars"].dtype == np.float32 and out["scalars"].shape == (6, 3)
    assert out.meta["scalar_names"] == ["log(1+z)", "log(exposure)", "extra_col"]
    for key in ("bands_keV", "pixel_arcsec", "size_arcmin", "image_unit"):
        assert out.meta[key] == X.meta[key]
    np.testing.assert_allclose(out["scalars"].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(out["scalars"].std(axis=0), 1, atol=1e-5)
    z = X["z"]
    np.testing.assert_allclose(
        out["scalars"][:, 0], (np.log1p(z) - np.log1p(z).mean()) / np.log1p(z).std(), rtol=1e-5
    )
    np.testing.assert_allclose(out["scalars"][:, 2], (np.arange(6) - 2.5) / np.arange(6).std(),
                               rtol=1e-5)


def test_joiner_without_redshift_gives_zero_scalars(rng):
    out = RedshiftJoiner(use_redshift=False).fit_transform(_cube(rng, n=3).drop("z"))
    assert out["scalars"].shape == (3, 0) and out["scalars"].dtype == np.float32
    assert out.meta["scalar_names"] == []


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -0.1])
def test_joiner_refuses_bad_redshift_naming_rows(rng, bad):
    X = _cube(rng, n=5)
    z = X["z"].copy()
    z[3] = bad
    j = RedshiftJoiner().fit(X)
    with pytest.raises(ValueError, match=rf"RedshiftJoiner \(column 'z'\).*row 3: {bad!r}"):
        j.transform(X.assign(z=z))
    with pytest.raises(ValueError, match="row 3"):
        RedshiftJoiner().fit(X.assign(z=z))


def test_joiner_other_bad_input(rng):
    X = _cube(rng, n=4)
    with pytest.raises(KeyError, match=r"RedshiftJoiner needs column\(s\) \['z'\]"):
        RedshiftJoiner().fit(X.drop("z"))
    expo = X["exposure"].copy()
    expo[2] = 0.0
    with pytest.raises(ValueError, match=r"'exposure' must be finite and > 0.*row 2: 0.0"):
        RedshiftJoiner(extra=["exposure"]).fit(X.assign(exposure=expo))
    images = X["images"].copy()
    images[1, 2, 0, 0] = np.inf
    j = RedshiftJoiner().fit(X)
    with pytest.raises(ValueError, match="images of row 1 contain NaN or infinite"):
        j.transform(X.assign(images=images))
    with pytest.raises(ValueError, match="fitted on 10 bands .* got 7"):
        j.transform(_cube(rng, bands=E7))
    with pytest.raises(ValueError, match=r"fitted with scalars \['log\(1\+z\)'\]"):
        j.set_params(extra=["exposure"]).transform(X)
    with pytest.raises(ValueError, match="column name or a"):
        RedshiftJoiner(extra=[("exposure", "sqrt")]).fit(X)


def test_mismatched_bands_with_the_same_count_are_refused(rng):
    X = _cube(rng, bands=resolve_bands("ho3"))
    s = GaussianSmoother().fit(X)
    other = [(0.3, 0.6), (0.6, 1.1), (1.1, 1.6)]
    with pytest.raises(ValueError, match=r"fitted on the bands 0.5-1.2, 1.2-2, 2-7 keV, got 0.3-0.6"):
        s.transform(_cube(rng, bands=other))
