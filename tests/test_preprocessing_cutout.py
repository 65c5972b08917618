"""ImageCutout: agreement with BandBinner through a FITS image, real eFEDS images."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from conftest import EFEDS_CLUSTERS
from preprocessing_helpers import synthetic_sample

from skcluster import ClusterSample
from skcluster.exceptions import CutoutError, IncompleteCutoutWarning, SkclusterWarning
from skcluster.io import BandImageStack, make_events, offsets_to_events_table
from skcluster.models import DEFAULT_NPIX, make_preprocessing
from skcluster.preprocessing import BandBinner, ImageCutout, resolve_bands

RA0, DEC0 = 140.2, 3.1
PIX_ARCSEC = 4.0
NIMG = 400  # image side, pixels; the cluster sits at the corner of pixels 199/200


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [RA0, DEC0]
    w.wcs.crpix = [NIMG / 2 + 0.5, NIMG / 2 + 0.5]  # 1-based: 0-based 199.5 = pixel corner
    w.wcs.cdelt = [-PIX_ARCSEC / 3600.0, PIX_ARCSEC / 3600.0]
    return w


def _events_off_pixel_edges(rng, n, half_box_pix):
    """Events at random pixels of the image, kept 0.6 arcsec from pixel edges."""
    col = rng.integers(-half_box_pix, half_box_pix, n)
    row = rng.integers(-half_box_pix, half_box_pix, n)
    x = (col + rng.uniform(0.15, 0.85, n)) * PIX_ARCSEC
    y = (row + rng.uniform(0.15, 0.85, n)) * PIX_ARCSEC
    pi_eV = rng.integers(200, 8000, n)
    return make_events(x, y, pi_eV / 1000.0)


def _write_images(tmp_path, events, bands, exposure_s=1500.0):
    """Image the events through the WCS (evtool-like) into one FITS file per band."""
    w = _wcs()
    table = offsets_to_events_table(events, RA0, DEC0)
    px, py = w.all_world2pix(table["RA"], table["DEC"], 0)
    ix = np.floor(px + 0.5).astype(int)
    iy = np.floor(py + 0.5).astype(int)
    ok = (ix >= 0) & (ix < NIMG) & (iy >= 0) & (iy < NIMG)
    header = w.to_header()
    images, exposures = [], []
    for lo, hi in bands:
        tag = f"{round(lo * 1000):04d}_{round(hi * 1000):04d}"
        pi = np.round(np.asarray(table["PI"])).astype(int)
        sel = ok & (pi >= round(lo * 1000)) & (pi < round(hi * 1000))
        img = np.zeros((NIMG, NIMG), np.int32)
        np.add.at(img, (iy[sel], ix[sel]), 1)
        images.append(tmp_path / f"img_{tag}.fits")
        fits.writeto(images[-1], img, header)
        exposures.append(tmp_path / f"expmap_{tag}.fits")
        fits.writeto(exposures[-1], np.full((NIMG, NIMG), exposure_s, np.float32), header)
    return images, exposures


@pytest.fixture(scope="module")
def synthetic_field(tmp_path_factory):
    rng = np.random.default_rng(7)
    events = _events_off_pixel_edges(rng, 20000, NIMG // 2)
    tmp = tmp_path_factory.mktemp("field")
    images, exposures = _write_images(tmp, events, resolve_bands("ho3"))
    return events, images, exposures


@pytest.mark.parametrize("npix", [None, 50])
def test_binned_events_equal_the_cut_out_fits_image(synthetic_field, npix):
    events, images, exposures = synthetic_field
    ev = np.empty(1, dtype=object)
    ev[0] = events
    binned = BandBinner(bands="ho3", npix=npix or 300).fit_transform(ClusterSample(events=ev))
    catalog = ClusterSample(ra=np.array([RA0]), dec=np.array([DEC0]), z=np.array([0.3]))
    cut = ImageCutout(images, exposures=exposures, npix=npix).fit_transform(catalog)
    assert binned["images"].sum() > 5000  # most events are inside the 20' box
    np.testing.assert_array_equal(cut["images"], binned["images"])
    np.testing.assert_allclose(cut.meta["bands_keV"], binned.meta["bands_keV"])
    for key in ("size_arcmin", "pixel_arcsec"):
        assert cut.meta[key] == pytest.approx(binned.meta[key]), key
    assert cut.meta["image_unit"] == "counts"
    assert cut["complete"][0] and cut["coverage"][0] == 1.0 and cut["exposure"][0] == 1500.0
    np.testing.assert_array_equal(cut["z"], [0.3])


def test_padding_with_the_background_level(tmp_path):
    """A box hanging off the image is filled with the measured background, flat."""
    rng = np.random.default_rng(11)
    w = _wcs()
    lam = [0.2, 0.05]  # background counts per pixel in two bands
    images, exposures = [], []
    for tag, level in zip(["0500_1200", "1200_2000"], lam):
        img = rng.poisson(level, (NIMG, NIMG)).astype(np.int32)
        expo = np.full((NIMG, NIMG), 1000.0, np.float32)
        expo[:, 390:] = 0.0  # an unexposed stripe inside the image
        images.append(tmp_path / f"img_{tag}.fits")
        exposures.append(tmp_path / f"exp_{tag}.fits")
        fits.writeto(images[-1], img, w.to_header())
        fits.writeto(exposures[-1], expo, w.to_header())
    # cluster 40 pixels from the left edge (ra increases toward the left)
    ra, dec = w.all_pix2world([39.5, 339.5], [199.5, 199.5], 0)
    X = ClusterSample(ra=ra, dec=dec, z=np.array([0.2, 0.3]))
    with pytest.warns(IncompleteCutoutWarning, match=r"row 0: 0.633, row 1: 0.667"):
        out = ImageCutout(images, exposures=exposures).fit_transform(X)
    assert not out["complete"][0] and not out["complete"][1]
    # box columns 0..109 of the first cut-out are off the image
    native = out["images"][0]
    pad = native[:, :, :110]
    for k in range(2):
        assert np.all(pad[k] == pad[k, 0, 0])  # flat: no structure that could look like a source
        assert pad[k, 0, 0] == pytest.approx(lam[k], rel=0.05)
    # observed pixels are untouched; the unexposed stripe is filled as well
    stack = BandImageStack.from_files(images, exposures)
    raw = stack.cutout(ra[0], dec[0], 20.0)
    np.testing.assert_array_equal(native[:, :, 110:], raw.counts[:, :, 110:])
    second = out["images"][1]
    # box columns 0..299 are image columns 190..489: 200..209 unexposed, 210.. off
    assert np.all(second[:, :, 200:] == second[:, :1, -1:])
    assert not np.all(second[:, :, 199] == second[:, :1, -1:])
    zeros = ImageCutout(images, exposures=exposures, fill="zeros")
    with pytest.warns(IncompleteCutoutWarning):
        assert zeros.fit_transform(X)["images"][0][:, :, :110].sum() == 0


def test_no_exposure_maps(synthetic_field):
    _, images, _ = synthetic_field
    X = ClusterSample(ra=np.array([RA0]), dec=np.array([DEC0]))
    with pytest.warns(SkclusterWarning, match="exposure column is NaN"):
        out = ImageCutout(images, npix=30).fit_transform(X)
    assert np.isnan(out["exposure"][0])
    out = ImageCutout(images, npix=30, exposure_seconds=900.0).fit_transform(X)
    assert out["exposure"][0] == 900.0
    out = ImageCutout(images, npix=30).fit_transform(X.assign(exposure=np.array([777.0])))
    assert out["exposure"][0] == 777.0
    with pytest.raises(ValueError, match="give one source of exposure, not exposures= and exposure_seconds="):
        ImageCutout(images, exposures=images, exposure_seconds=1.0).fit(X)


# -- real eFEDS images ------------------------------------------------------
@pytest.fixture(scope="module")
def efeds_catalog():
    c = list(EFEDS_CLUSTERS.values())
    return ClusterSample(
        ra=np.array([v["ra"] for v in c]), dec=np.array([v["dec"] for v in c]),
        z=np.array([v["z"] for v in c]),
    )


@pytest.fixture(scope="module")
def efeds_cut(efeds_files, efeds_catalog):
    images, exposures = efeds_files
    with pytest.warns(IncompleteCutoutWarning, match=r"coverage of row 1: 0.34"):
        return ImageCutout(images, exposures=exposures).fit_transform(efeds_catalog)


def test_efeds_bright_cluster(efeds_files, efeds_catalog, efeds_cut):
    images, exposures = efeds_files
    stack = BandImageStack.from_files(images, exposures)
    c = EFEDS_CLUSTERS["bright"]
    raw = stack.cutout(c["ra"], c["dec"], 20.0)
    np.testing.assert_array_equal(efeds_cut["images"][0], raw.counts)
    assert efeds_cut["complete"][0] and efeds_cut["coverage"][0] == 1.0
    assert 2000 < efeds_cut["exposure"][0] < 3000  # s, as in the expmap
    assert efeds_cut.meta["bands_keV"] == resolve_bands("efeds7")
    assert efeds_cut.meta["pixel_arcsec"] == pytest.approx(4.0)
    # rebinned on the fly: 6 x 6 block sums of the native cut-out
    with pytest.warns(IncompleteCutoutWarning):
        coarse = ImageCutout(images, exposures=exposures, npix=50).fit_transform(efeds_catalog)
    blocks = efeds_cut["images"].reshape(2, 7, 50, 6, 50, 6).sum(axis=(3, 5))
    np.testing.assert_array_equal(coarse["images"][0], blocks[0])  # integer counts: exact
    np.testing.assert_allclose(coarse["images"][1], blocks[1], rtol=1e-6)  # float fill
    assert coarse.meta["pixel_arcsec"] == pytest.approx(24.0)


def test_efeds_faint_cluster_is_flagged_and_padded_with_background(efeds_cut):
    img = efeds_cut["images"][1]
    assert not efeds_cut["complete"][1]
    assert 0.25 < efeds_cut["coverage"][1] < 0.45  # README: ~34% of the box inside
    fill = img[:, 0, 0]  # the box corner is off the image
    pad = np.all(img == fill[:, None, None], axis=0)
    assert 0.5 < pad.mean() < 0.75
    # the fill equals the background measured outside 5' in the observed part
    yy, xx = np.mgrid[:300, :300]
    outer = np.hypot(xx - 149.5, yy - 149.5) * 4.0 >= 300.0
    observed_outer = outer & ~pad
    np.testing.assert_allclose(fill, img[:, observed_outer].mean(axis=1), rtol=0.05)
    # ... and is an eFEDS-like sky: 0.3-2.2 keV counts per arcmin^2 within the
    # 5-95% range 4.7-13.3 of eFEDS, and within 50% of the
    # background around the bright cluster in the same field
    per_arcmin2 = fill[:4].sum() * 225.0
    assert 4.7 < per_arcmin2 < 13.3
    bright_outer = efeds_cut["images"][0][:4][:, outer].mean(axis=1).sum() * 225.0
    assert 0.67 < per_arcmin2 / bright_outer < 1.5
    # the filled region is not brighter than the observed sky: no source appears
    assert img[:, pad].sum(axis=0).max() <= np.percentile(img[:, ~pad].sum(axis=0), 99)


def test_efeds_strict_and_off_image(efeds_files, efeds_catalog):
    images, exposures = efeds_files
    with pytest.raises(CutoutError, match="row 1: .*runs off the edge"):
        ImageCutout(images, exposures=exposures, mode="strict").fit_transform(efeds_catalog)
    far = ClusterSample(ra=np.array([140.3, 150.0]), dec=np.array([3.3, 20.0]))
    with pytest.raises(CutoutError, match="row 1: .*wholly off the image"):
        ImageCutout(images).transform(far)
    with pytest.raises(KeyError, match=r"ImageCutout needs column\(s\) \['dec'\]"):
        ImageCutout(images).transform(far.drop("dec"))
    with pytest.raises(ValueError, match="dec must be finite"):
        ImageCutout(images).transform(far.assign(dec=np.array([3.3, np.nan])))
    with pytest.raises(FileNotFoundError, match="nothere_0300_0600"):
        ImageCutout(["nothere_0300_0600.fits"]).fit()
    with pytest.raises(ValueError, match="7 images but 3 bands"):
        ImageCutout(images, bands_keV="ho3").fit()


def test_swap_the_first_step_of_a_fitted_pipeline_for_real_images(efeds_files, efeds_catalog):
    images, exposures = efeds_files
    X, y = synthetic_sample(n=12, seed=4)
    pipe = make_preprocessing(bands="efeds7").fit(X, y)
    pipe.set_params(bin=ImageCutout(images, exposures=exposures, npix=DEFAULT_NPIX))
    with pytest.warns(IncompleteCutoutWarning):
        out = pipe.transform(efeds_catalog)
    assert sorted(out.keys()) == ["images", "scalars"]
    assert out["images"].shape == (2, 7, DEFAULT_NPIX, DEFAULT_NPIX) and out["scalars"].shape == (2, 1)
    assert np.all(np.isfinite(out["images"])) and np.all(np.isfinite(out["scalars"]))
    # the bright cluster's centre stands out after the whole chain
    c = DEFAULT_NPIX // 2
    centre = out["images"][0][:, c - 2:c + 2, c - 2:c + 2].mean()
    assert centre > out["images"][0].mean() + 2.0
    # a chain fitted on other bands refuses the real images
    k10 = make_preprocessing().fit(X, y)
    k10.set_params(bin=ImageCutout(images, exposures=exposures, npix=DEFAULT_NPIX))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteCutoutWarning)
        with pytest.raises(ValueError, match="fitted on 10 bands .* got 7"):
            k10.transform(efeds_catalog)


def test_exposure_vignetting_converts_maps_to_vignetted_exposure(efeds_files):
    """expmap_norm maps are normalised to an ARF that includes vignetting: with
    exposure_vignetting="unvignetted" the exposure becomes 0.54 of the map."""
    from skcluster import ImageCutout
    from skcluster.physics.instrument import vignetting_factor

    images, exposures = efeds_files
    X = ClusterSample(ra=np.array([140.33848]), dec=np.array([3.29060]), z=np.array([0.3329]))
    plain = ImageCutout(images, exposures, npix=50, verbose=False).fit_transform(X)
    vig = ImageCutout(images, exposures, npix=50, verbose=False,
                      exposure_vignetting="unvignetted").fit_transform(X)
    assert vig["exposure"][0] == pytest.approx(plain["exposure"][0] * vignetting_factor(1.0))
    assert 1300 < vig["exposure"][0] < 1600  # eFEDS: 2.2-2.7 ks unvignetted x 0.54
    np.testing.assert_array_equal(vig["images"], plain["images"])
    with pytest.raises(ValueError, match="exposure_vignetting must be"):
        ImageCutout(images, exposures, exposure_vignetting="half").fit(X)
