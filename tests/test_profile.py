"""RadialProfile: summed counts in annuli, joined beside the redshift."""

import numpy as np
import pytest

from skcluster import ClusterSample
from skcluster.models import make_mass_pipeline, make_preprocessing
from skcluster.preprocessing import RadialProfile, RedshiftJoiner, annulus_index


def _sample(images, exposure, pixel_arcsec=24.0, unit="counts"):
    n = images.shape[0]
    return ClusterSample(images=images.astype(np.float32), exposure=np.asarray(exposure, float),
                         z=np.full(n, 0.2), meta={"image_unit": unit, "pixel_arcsec": pixel_arcsec})


def test_annuli_cover_the_box_once():
    index, area = annulus_index((50, 50), 24.0, (0.5, 1.0, 2.0, 4.0, 8.0))
    assert index.min() == 0 and index.max() == 5
    assert area.sum() == pytest.approx((50 * 24.0 / 60) ** 2)
    # a disc's area approaches pi r^2 where it is many pixels wide
    assert area[:5].sum() == pytest.approx(np.pi * 8.0**2, rel=0.02)


def test_pixel_centres_on_an_edge_do_not_move_with_rounding_of_the_pixel_size():
    a = annulus_index((25, 25), 48.0, (0.5, 1.0, 2.0, 4.0, 8.0))
    b = annulus_index((25, 25), 60.0 * 19.999999999999797 / 25, (0.5, 1.0, 2.0, 4.0, 8.0))
    np.testing.assert_array_equal(a[0], b[0])


def test_profile_counts_photons_where_they_are():
    rng = np.random.default_rng(0)
    images = np.zeros((2, 3, 50, 50))
    images[0, 1, 25, 25] = 99.0            # a point 0.28' from the centre: the inner disc
    images[1, 0, 0, 0] = 99.0              # a corner: the outermost annulus
    images += rng.poisson(0.0, images.shape)
    X = _sample(images, [1000.0, 500.0])
    P = RadialProfile(radii_arcmin=(0.5, 1.0, 2.0, 4.0, 8.0)).fit_transform(X)
    _, area = annulus_index((50, 50), 24.0, (0.5, 1.0, 2.0, 4.0, 8.0))
    expect0 = np.log10(np.r_[100.0, np.ones(5)] / (area * 1000.0))
    expect1 = np.log10(np.r_[np.ones(5), 100.0] / (area * 500.0))
    np.testing.assert_allclose(P["profile"], np.stack([expect0, expect1]))
    np.testing.assert_array_equal(P["images"], X["images"])   # images pass through


def test_joiner_takes_a_2d_column_as_one_scalar_each():
    X = _sample(np.ones((4, 2, 50, 50)), [1000.0, 1500.0, 2000.0, 3000.0])
    P = RadialProfile(radii_arcmin=(2.0, 6.0)).fit_transform(X)
    J = RedshiftJoiner(extra=[("profile", "linear")]).fit(P)
    assert J.scalar_names_ == ["log(1+z)", "profile[0]", "profile[1]", "profile[2]"]
    S = J.transform(P)["scalars"]
    assert S.shape == (4, 4)
    # standardised; a brighter exposure-normalised profile sorts the same way
    assert np.all(np.diff(S[:, 1]) < 0)


def test_joiner_names_the_rows_of_a_bad_2d_column():
    X = _sample(np.ones((3, 1, 50, 50)), [1000.0, 1000.0, 1000.0])
    P = RadialProfile().fit_transform(X)
    bad = P["profile"].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"column 'profile' must be finite; got bad entries in row 1"):
        RedshiftJoiner(extra=[("profile", "linear")]).fit(P.assign(profile=bad))
    with pytest.raises(ValueError, match=r"one number \(or one row of numbers\) per cluster"):
        RedshiftJoiner(extra=[("profile", "linear")]).fit(P.assign(profile=np.ones((3, 2, 2))))


@pytest.mark.parametrize("radii, match", [((2.0, 1.0), "must increase"), ((), "must not be empty"),
                                          ((0.0, 1.0), "radii_arcmin\\[0\\]"), ((1.0, 30.0), "holds no pixel")])
def test_bad_radii_are_named(radii, match):
    X = _sample(np.ones((2, 1, 50, 50)), [1000.0, 1000.0])
    with pytest.raises(ValueError, match=match):
        RadialProfile(radii_arcmin=radii).fit(X)


def test_default_radii_are_those_inside_the_box():
    X = _sample(np.ones((2, 1, 50, 50)), [1000.0, 1000.0])           # 20 arcmin
    assert RadialProfile().fit(X).radii_arcmin_ == [0.5, 1.0, 2.0, 4.0, 8.0]
    X = _sample(np.ones((2, 1, 10, 10)), [1000.0, 1000.0])           # 4 arcmin
    assert RadialProfile().fit(X).radii_arcmin_ == [0.5, 1.0]
    X = _sample(np.ones((2, 1, 16, 16)), [1000.0, 1000.0], pixel_arcsec=75.0)   # no pixel centre within 0.5'
    assert RadialProfile().fit(X).radii_arcmin_ == [1.0, 2.0, 4.0, 8.0]
    X = _sample(np.ones((2, 1, 2, 2)), [1000.0, 1000.0], pixel_arcsec=12.0)   # 0.4 arcmin
    with pytest.raises(ValueError, match="smaller than the smallest default annulus"):
        RadialProfile().fit(X)


def test_other_pixels_same_box_pass_another_box_is_refused():
    prof = RadialProfile().fit(_sample(np.ones((2, 1, 50, 50)), [1000.0, 1000.0]))   # 20' at 24"
    fine = prof.transform(_sample(np.ones((1, 1, 300, 300)) / 36.0, [1000.0], pixel_arcsec=4.0))
    coarse = prof.transform(_sample(np.ones((1, 1, 50, 50)), [1000.0]))
    np.testing.assert_allclose(fine["profile"][0, 2:], coarse["profile"][0, 2:], atol=0.03)
    with pytest.raises(ValueError, match="fitted on boxes of 20 x 20 arcmin, got 12 x 12"):
        prof.transform(_sample(np.ones((1, 1, 30, 30)), [1000.0]))


def test_needs_counts_and_exposure():
    X = _sample(np.ones((2, 1, 50, 50)), [1000.0, 1000.0], unit="counts/s")
    with pytest.raises(ValueError, match="needs images in counts"):
        RadialProfile().fit(X)
    X = _sample(np.ones((2, 1, 50, 50)), [1000.0, 0.0])
    with pytest.raises(ValueError, match="exposure.*row 1"):
        RadialProfile().fit_transform(X)


def test_pipelines_put_the_profile_on_the_network_pixel_grid():
    pre = make_preprocessing(profile=True, mask_point_sources=True)
    assert [n for n, _ in pre.steps] == ["mask", "bin", "resize", "profile", "smooth", "scale", "join"]
    assert ("profile", "linear") in pre.named_steps["join"].extra
    pipe = make_mass_pipeline(flag_domain=True, n_estimators=1)   # the standard model has it
    assert [n for n, _ in pipe.steps][:5] == ["mask", "bin", "domain", "resize", "profile"]
