"""evtool count images and expmap exposure maps, and cut-outs from them.

eSASS ``evtool`` writes counts images and ``expmap`` exposure maps (seconds)
on 4 arcsec pixels (``rebin=80`` sky pixels of 0.05 arcsec) with a
``RA---SIN``/``DEC--SIN`` WCS (Brunner et al. 2022, A&A 661, A1). A band is
one file; :class:`BandImageStack` holds several bands (and their exposure
maps) on one pixel grid and cuts clusters out of them.

Cut-out convention: the box of ``npix`` pixels is aligned to the image grid
and centred as closely as the grid allows (within half a pixel) on the
cluster; the residual offset is reported. A box that runs off the image edge
is padded with zero counts and zero exposure and flagged (``complete`` is
false), or refused with ``mode="strict"``; it is never shifted.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .._validation import check_positive_number, rows_text
from ..exceptions import CutoutError, DataFormatError, IncompleteCutoutWarning
from .fitsfiles import existing_file, fits_errors, native
from .sky import ARCSEC_PER_DEG, check_sky_position

__all__ = [
    "SkyImage",
    "BandImageStack",
    "Cutout",
    "read_image",
    "band_from_filename",
    "cutout_slices",
]

_BAND_RE = re.compile(r"(?<!\d)(\d{3,5})[_-](\d{3,5})(?!\d)")


def band_from_filename(path):
    """Parse an energy band in eV from a file name such as ``img_0300_0600.fits``.

    Returns
    -------
    (lo_keV, hi_keV) or None
        ``None`` when the name holds no ``LLLL_HHHH`` pattern.
    """
    matches = _BAND_RE.findall(Path(path).name)
    if not matches:
        return None
    lo, hi = (int(v) for v in matches[-1])
    if hi <= lo:
        return None
    return lo / 1000.0, hi / 1000.0


@dataclass
class SkyImage:
    """A 2-D image with its celestial WCS.

    Attributes
    ----------
    data : numpy.ndarray of float32, shape (ny, nx)
    wcs : astropy.wcs.WCS
    pixel_arcsec : float
        Pixel side, arcsec.
    path : str or None
    band_keV : (float, float) or None
    """

    data: np.ndarray
    wcs: WCS
    pixel_arcsec: float
    path: str | None = None
    band_keV: tuple | None = None


def read_image(path, hdu=0, band_keV=None):
    """Read a 2-D FITS image (counts or exposure) with a celestial WCS.

    Parameters
    ----------
    path : str or path-like
    hdu : int or str, default=0
    band_keV : (float, float), default=None
        Energy band; parsed from the file name when not given.

    Returns
    -------
    SkyImage
    """
    path = existing_file(path, "image file")
    with fits_errors(path, "a FITS image"), fits.open(path, memmap=False) as hdul:
        try:
            ext = hdul[hdu]
        except (KeyError, IndexError):
            raise DataFormatError(
                f"{str(path)!r} has no HDU {hdu!r}; HDUs are {[h.name for h in hdul]}"
            ) from None
        if ext.data is None or ext.data.ndim != 2:
            shape = None if ext.data is None else ext.data.shape
            raise DataFormatError(f"{str(path)!r}[{hdu}] is not a 2-D image (shape {shape})")
        data = native(ext.data).astype(np.float32, copy=False)
        header = ext.header
    with fits_errors(path, "a FITS image with a WCS"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITSFixedWarning on RADECSYS etc.
        wcs = WCS(header, naxis=2)
    if not wcs.has_celestial:
        raise DataFormatError(
            f"{str(path)!r}: header has no celestial WCS (CTYPE1/2 such as RA---SIN/DEC--SIN)"
        )
    scales = proj_plane_pixel_scales(wcs) * ARCSEC_PER_DEG
    if not np.isclose(scales[0], scales[1], rtol=1e-3):
        raise DataFormatError(f"{str(path)!r}: non-square pixels {scales} arcsec")
    if band_keV is None:
        band_keV = band_from_filename(path)
    return SkyImage(data, wcs, float(scales[0]), str(path), band_keV)


def _same_grid(a, b):
    wa, wb = a.wcs.wcs, b.wcs.wcs
    return (
        a.data.shape == b.data.shape
        and list(wa.ctype) == list(wb.ctype)
        and np.allclose(wa.crval, wb.crval, rtol=0, atol=1e-9)
        and np.allclose(wa.crpix, wb.crpix, rtol=0, atol=1e-6)
        and np.allclose(a.wcs.pixel_scale_matrix, b.wcs.pixel_scale_matrix, rtol=1e-7, atol=0)
    )


def cutout_slices(center_pix, npix, shape):
    """Index ranges of an ``npix`` box around a 0-based pixel position.

    Parameters
    ----------
    center_pix : (float, float)
        (x, y) pixel position, 0-based, pixel centres at integers.
    npix : int
        Box side in pixels.
    shape : (int, int)
        (ny, nx) of the image.

    Returns
    -------
    dict
        ``lo`` (x0, y0) first pixel of the box in image indices (may be
        negative or beyond the image), ``src``/``dst`` slices for copying the
        overlap, ``complete`` (the box lies wholly inside) and ``overlap``
        (number of box pixels inside the image).
    """
    x, y = (float(v) for v in center_pix)
    ny, nx = shape
    if not (np.isfinite(x) and np.isfinite(y)):
        # no pixel position at all (a sky position more than 90 deg from the
        # projection centre of a SIN image): the box is wholly off the image
        x = y = -float(npix + max(nx, ny))
    # box edges at centre -/+ npix/2; pixel i spans [i - 0.5, i + 0.5)
    x0 = int(np.floor(x - npix / 2.0 + 1.0))
    y0 = int(np.floor(y - npix / 2.0 + 1.0))
    sx0, sx1 = max(x0, 0), min(x0 + npix, nx)
    sy0, sy1 = max(y0, 0), min(y0 + npix, ny)
    ox = max(sx1 - sx0, 0)
    oy = max(sy1 - sy0, 0)
    return {
        "lo": (x0, y0),
        "src": (slice(sy0, sy0 + oy), slice(sx0, sx0 + ox)),
        "dst": (slice(sy0 - y0, sy0 - y0 + oy), slice(sx0 - x0, sx0 - x0 + ox)),
        "complete": x0 >= 0 and y0 >= 0 and x0 + npix <= nx and y0 + npix <= ny,
        "overlap": ox * oy,
        # offset of the box centre from the cluster position, pixels
        "offset_pix": (x0 + (npix - 1) / 2.0 - x, y0 + (npix - 1) / 2.0 - y),
    }


@dataclass
class Cutout:
    """One cluster cut out of a :class:`BandImageStack`.

    Attributes
    ----------
    counts : numpy.ndarray of float32, shape (n_bands, npix, npix)
    exposure_map : numpy.ndarray of float32, same shape, or None
        Seconds; zero where the box runs off the image.
    exposure : float
        Vignetted exposure at the cluster position in the reference band,
        seconds (median within 1 arcmin); NaN without exposure maps.
    complete : bool
        The box lies wholly inside the image.
    coverage : float
        Fraction of box pixels inside the image and (with exposure maps)
        with non-zero exposure in every band.
    offset_pix : (float, float)
        Box centre minus cluster position, pixels (abs(offset) <= 0.5).
    """

    counts: np.ndarray
    exposure_map: np.ndarray | None
    exposure: float
    complete: bool
    coverage: float
    offset_pix: tuple


class BandImageStack:
    """Counts images of several energy bands (plus exposure maps) on one grid.

    Parameters
    ----------
    images : list of SkyImage
        One per band, all on the same pixel grid and WCS.
    exposures : list of SkyImage, default=None
        Exposure maps (seconds), one per band, on the same grid. A single
        map is used for every band.
    bands_keV : list of (float, float), default=None
        Energy bands; taken from the images (file names) when not given.

    Examples
    --------
    >>> stack = BandImageStack.from_files(                       # doctest: +SKIP
    ...     ["img_0300_0600.fits.gz", "img_0600_1100.fits.gz"],
    ...     exposures=["expmap_norm_0300_0600.fits.gz", "expmap_norm_0600_1100.fits.gz"])
    >>> cut = stack.cutout(140.33848, 3.29060, size_arcmin=20)  # doctest: +SKIP
    >>> cut.counts.shape                                          # doctest: +SKIP
    (2, 300, 300)
    """

    def __init__(self, images, exposures=None, bands_keV=None):
        images = list(images)
        if not images:
            raise ValueError("BandImageStack needs at least one band image")
        ref = images[0]
        for im in images[1:]:
            if not _same_grid(ref, im):
                raise DataFormatError(
                    f"band images are not on one pixel grid: {im.path!r} differs "
                    f"from {ref.path!r} (shape or WCS)"
                )
        if exposures is not None:
            exposures = list(exposures)
            if len(exposures) == 1 and len(images) > 1:
                exposures = exposures * len(images)
            if len(exposures) != len(images):
                raise ValueError(
                    f"got {len(images)} band images but {len(exposures)} exposure maps"
                )
            for ex in exposures:
                if not _same_grid(ref, ex):
                    raise DataFormatError(
                        f"exposure map {ex.path!r} is not on the pixel grid of {ref.path!r}"
                    )
                if np.any(~np.isfinite(ex.data)) or np.any(ex.data < 0):
                    raise DataFormatError(
                        f"exposure map {ex.path!r} has negative or non-finite values"
                    )
        if bands_keV is None:
            bands_keV = [im.band_keV for im in images]
            if any(b is None for b in bands_keV):
                bands_keV = None
        if bands_keV is not None:
            bands_keV = [tuple(float(v) for v in b) for b in bands_keV]
            if len(bands_keV) != len(images):
                raise ValueError(f"got {len(images)} images but {len(bands_keV)} bands")
        self.wcs = ref.wcs
        self.pixel_arcsec = ref.pixel_arcsec
        self.shape = ref.data.shape
        self.paths = [im.path for im in images]
        self.bands_keV = bands_keV
        self.counts = np.stack([im.data for im in images]).astype(np.float32, copy=False)
        self.exposure = (
            None
            if exposures is None
            else np.stack([ex.data for ex in exposures]).astype(np.float32, copy=False)
        )

    @classmethod
    def from_files(cls, images, exposures=None, bands_keV=None, hdu=0):
        """Read band images (and exposure maps) from FITS files.

        Parameters
        ----------
        images : list of path-like
            One counts image per band (bands parsed from names like
            ``img_0300_0600.fits.gz`` unless ``bands_keV`` is given).
        exposures : list of path-like, default=None
        bands_keV : list of (float, float), default=None
        hdu : int or str, default=0
        """
        ims = [read_image(p, hdu=hdu) for p in images]
        exs = None if exposures is None else [read_image(p, hdu=hdu) for p in exposures]
        return cls(ims, exs, bands_keV)

    @property
    def n_bands(self):
        return self.counts.shape[0]

    def npix_for(self, size_arcmin):
        """Box side in pixels for a box of ``size_arcmin``."""
        check_positive_number(size_arcmin, "size_arcmin", unit="arcmin")
        return int(round(size_arcmin * 60.0 / self.pixel_arcsec))

    def world_to_pixel(self, ra, dec):
        """0-based (x, y) pixel positions of sky positions (deg)."""
        x, y = self.wcs.all_world2pix(np.atleast_1d(ra), np.atleast_1d(dec), 0)
        return x, y

    def pixel_to_world(self, x, y):
        """(ra, dec) in deg of 0-based pixel positions."""
        ra, dec = self.wcs.all_pix2world(np.atleast_1d(x), np.atleast_1d(y), 0)
        return ra, dec

    def reference_band(self, energy_keV=1.0):
        """Index of the band whose centre is closest to ``energy_keV``."""
        if self.bands_keV is None:
            return 0
        centres = np.array([(lo + hi) / 2.0 for lo, hi in self.bands_keV])
        return int(np.argmin(np.abs(centres - energy_keV)))

    def cutout(self, ra, dec, size_arcmin=20.0, mode="pad", reference_keV=1.0):
        """Cut one cluster out of every band.

        Parameters
        ----------
        ra, dec : float
            Cluster position, deg.
        size_arcmin : float, default=20.0
            Box side, arcmin (300 pixels of 4 arcsec, Krippendorf et al. 2023).
        mode : {"pad", "strict"}, default="pad"
            What to do when the box runs off the image: pad with zeros and
            flag (``complete=False``), or raise :class:`CutoutError`.
        reference_keV : float, default=1.0
            Energy whose band gives the scalar ``exposure``.

        Returns
        -------
        Cutout
        """
        if mode not in ("pad", "strict"):
            raise ValueError(f"mode must be 'pad' or 'strict', got {mode!r}")
        check_sky_position([ra], [dec], where="cutout")
        npix = self.npix_for(size_arcmin)
        x, y = self.world_to_pixel(ra, dec)
        s = cutout_slices((float(x[0]), float(y[0])), npix, self.shape)
        where = f"cut-out of {size_arcmin} arcmin at ra={ra:.5f}, dec={dec:.5f}"
        if s["overlap"] == 0:
            raise CutoutError(
                f"{where} lies wholly off the image {self.paths[0]!r} "
                f"(pixel position {x[0]:.1f}, {y[0]:.1f}; image is "
                f"{self.shape[1]} x {self.shape[0]} pixels)"
            )
        if not s["complete"] and mode == "strict":
            raise CutoutError(
                f"{where} runs off the edge of the image {self.paths[0]!r} "
                f"({s['overlap'] / npix**2:.0%} of the box inside); use mode='pad' "
                "to pad and flag it"
            )
        counts = np.zeros((self.n_bands, npix, npix), dtype=np.float32)
        counts[(slice(None),) + s["dst"]] = self.counts[(slice(None),) + s["src"]]
        inside = np.zeros((npix, npix), dtype=bool)
        inside[s["dst"]] = True
        if self.exposure is not None:
            expo = np.zeros_like(counts)
            expo[(slice(None),) + s["dst"]] = self.exposure[(slice(None),) + s["src"]]
            covered = np.all(expo > 0, axis=0)
            yy, xx = np.mgrid[:npix, :npix]
            c = (npix - 1) / 2.0
            r_pix = 60.0 / self.pixel_arcsec
            central = ((xx - c) ** 2 + (yy - c) ** 2) <= r_pix**2
            band = self.reference_band(reference_keV)
            vals = expo[band][central & covered]
            exposure = float(np.median(vals)) if vals.size else 0.0
        else:
            expo = None
            covered = inside
            exposure = float("nan")
        return Cutout(
            counts=counts,
            exposure_map=expo,
            exposure=exposure,
            complete=bool(s["complete"]),
            coverage=float(covered.mean()),
            offset_pix=s["offset_pix"],
        )

    def cutouts(self, ra, dec, size_arcmin=20.0, mode="pad", exposure_maps=False,
                reference_keV=1.0):
        """Cut many clusters out; returns a dict of stacked columns.

        Returns
        -------
        dict
            ``images`` float32 (n, n_bands, npix, npix); ``exposure`` (n,)
            seconds; ``complete`` (n,) bool; ``coverage`` (n,) float; and
            ``exposure_maps`` float32 like ``images`` when requested.
        """
        ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
        dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
        check_sky_position(ra, dec, where="cutouts")
        npix = self.npix_for(size_arcmin)
        n = ra.size
        images = np.empty((n, self.n_bands, npix, npix), dtype=np.float32)
        emaps = np.empty_like(images) if exposure_maps and self.exposure is not None else None
        exposure = np.empty(n)
        complete = np.empty(n, dtype=bool)
        coverage = np.empty(n)
        for i in range(n):
            c = self.cutout(ra[i], dec[i], size_arcmin, mode, reference_keV)
            images[i] = c.counts
            if emaps is not None:
                emaps[i] = c.exposure_map
            exposure[i], complete[i], coverage[i] = c.exposure, c.complete, c.coverage
        if not complete.all():
            bad = np.flatnonzero(~complete)
            warnings.warn(
                f"{bad.size} cut-out(s) ran off the image and were padded with "
                f"zeros ({rows_text(bad, limit=10)}); see the 'complete' column",
                IncompleteCutoutWarning,
                stacklevel=2,
            )
        out = {"images": images, "exposure": exposure, "complete": complete, "coverage": coverage}
        if emaps is not None:
            out["exposure_maps"] = emaps
        return out
