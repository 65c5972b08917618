import warnings

import numpy as np
import pytest
from astropy.io import fits
from conftest import EFEDS_CLUSTERS

from skcluster.exceptions import CutoutError, DataFormatError, IncompleteCutoutWarning
from skcluster.io import BandImageStack, band_from_filename, read_image
from skcluster.io.images import cutout_slices


@pytest.fixture(scope="module")
def stack(efeds_files):
    images, exposures = efeds_files
    return BandImageStack.from_files(images, exposures)


def test_reads_seven_bands_with_sin_wcs(stack):
    assert stack.n_bands == 7
    assert stack.bands_keV[0] == (0.3, 0.6) and stack.bands_keV[-1] == (5.0, 7.0)
    assert stack.wcs.wcs.ctype[0] == "RA---SIN"
    assert stack.pixel_arcsec == pytest.approx(4.0, rel=1e-6)
    assert stack.counts.dtype == np.float32 and stack.exposure.dtype == np.float32


def test_wcs_round_trip(stack, rng):
    x = rng.uniform(0, 511, 50)
    y = rng.uniform(0, 511, 50)
    ra, dec = stack.pixel_to_world(x, y)
    x2, y2 = stack.world_to_pixel(ra, dec)
    np.testing.assert_allclose(x2, x, atol=1e-6)
    np.testing.assert_allclose(y2, y, atol=1e-6)


def test_bright_cluster_cutout_has_the_original_pixels(efeds_files, stack):
    c = EFEDS_CLUSTERS["bright"]
    cut = stack.cutout(c["ra"], c["dec"], size_arcmin=20)
    assert cut.counts.shape == (7, 300, 300)
    assert cut.complete and cut.coverage == 1.0
    assert max(abs(v) for v in cut.offset_pix) <= 0.5
    x, y = stack.world_to_pixel(c["ra"], c["dec"])
    s = cutout_slices((x[0], y[0]), 300, stack.shape)
    x0, y0 = s["lo"]
    for b, path in enumerate(efeds_files[0]):
        raw = fits.getdata(path).astype(np.float64)  # independent read
        np.testing.assert_array_equal(cut.counts[b], raw[y0:y0 + 300, x0:x0 + 300])
    # the cluster sits at the centre: the central 2 arcmin are brighter than the box
    centre = cut.counts[:, 135:165, 135:165].sum(axis=0).mean()
    assert centre > 5 * cut.counts.sum(axis=0).mean()
    assert 2000 < cut.exposure < 3000  # seconds, as in the expmap


def test_faint_cluster_near_edge_is_padded_and_flagged(stack):
    c = EFEDS_CLUSTERS["faint"]
    cut = stack.cutout(c["ra"], c["dec"], size_arcmin=20)
    assert not cut.complete
    assert 0.2 < cut.coverage < 0.5
    x, y = stack.world_to_pixel(c["ra"], c["dec"])
    s = cutout_slices((x[0], y[0]), 300, stack.shape)
    # overlap equals the image, padding is zero counts and zero exposure
    np.testing.assert_array_equal(cut.counts[(slice(None),) + s["dst"]],
                                  stack.counts[(slice(None),) + s["src"]])
    pad = np.ones((300, 300), bool)
    pad[s["dst"]] = False
    assert pad.any()
    assert np.all(cut.counts[:, pad] == 0) and np.all(cut.exposure_map[:, pad] == 0)
    with pytest.raises(CutoutError, match="runs off the edge"):
        stack.cutout(c["ra"], c["dec"], size_arcmin=20, mode="strict")
    # a small box fits in strict mode
    small = stack.cutout(c["ra"], c["dec"], size_arcmin=1, mode="strict")
    assert small.complete and small.counts.shape == (7, 15, 15)


def test_cutouts_many_warn_on_incomplete(stack):
    ra = [EFEDS_CLUSTERS["bright"]["ra"], EFEDS_CLUSTERS["faint"]["ra"]]
    dec = [EFEDS_CLUSTERS["bright"]["dec"], EFEDS_CLUSTERS["faint"]["dec"]]
    with pytest.warns(IncompleteCutoutWarning, match=r"1 cut-out\(s\) ran off the image and were padded with zeros \(row 1\);"):
        out = stack.cutouts(ra, dec, size_arcmin=10, exposure_maps=True)
    assert out["images"].shape == (2, 7, 150, 150) and out["images"].dtype == np.float32
    np.testing.assert_array_equal(out["complete"], [True, False])
    assert out["exposure_maps"].shape == out["images"].shape


def test_cutout_wholly_off_image(stack):
    with pytest.raises(CutoutError, match="wholly off the image"):
        stack.cutout(150.0, 20.0, size_arcmin=20)
    with pytest.raises(ValueError, match="dec must be finite"):
        stack.cutout(140.3, np.nan)


def test_cutout_slices_centre_convention():
    s = cutout_slices((149.5, 149.5), 300, (300, 300))
    assert s["lo"] == (0, 0) and s["complete"] and s["offset_pix"] == (0.0, 0.0)
    s = cutout_slices((10.0, 10.0), 4, (20, 20))
    assert s["lo"] == (9, 9)  # pixels 9..12 around 10 (offset +0.5)
    s = cutout_slices((1.0, 1.0), 6, (20, 20))
    assert not s["complete"] and s["overlap"] == 25


def test_grid_mismatch_and_missing_file(tmp_path, efeds_files):
    with pytest.raises(FileNotFoundError, match="missing_0300_0600"):
        read_image(tmp_path / "missing_0300_0600.fits")
    data, header = fits.getdata(efeds_files[0][0], header=True)
    header["CRPIX1"] += 3
    shifted = tmp_path / "img_0600_1100.fits"
    fits.writeto(shifted, data, header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataFormatError, match="not on one pixel grid"):
            BandImageStack.from_files([efeds_files[0][0], shifted])
    nowcs = tmp_path / "nowcs.fits"
    fits.writeto(nowcs, data)
    with pytest.raises(DataFormatError, match="no celestial WCS"):
        read_image(nowcs)


def test_band_from_filename():
    assert band_from_filename("img_0300_0600.fits.gz") == (0.3, 0.6)
    assert band_from_filename("/x/expmap_norm_novig_5000_7000.fits") == (5.0, 7.0)
    assert band_from_filename("image.fits") is None
