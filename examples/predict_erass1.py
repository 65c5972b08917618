"""Masses for eRASS1 clusters, read from the DR1 products in their published layouts.

Where the real files are (references; this script does not download them):
the first data release of the eROSITA all-sky survey, eRASS1 DR1, at
https://erosita.mpe.mpg.de/dr1/ , holds

* the cluster catalogue of Bulbul et al. (2024, A&A 685, A106),
  ``erass1cl_primary_v3.2.fits``: ``NAME``, ``RA``, ``DEC``, ``BEST_Z`` and
  ``BEST_Z_TYPE``, ``EXT_LIKE``, ``DET_LIKE_0``, ``EXP`` (s), ... read by
  :func:`skcluster.io.read_erass1_catalog`;
* the main (0.2-2.3 keV) source catalogue of Merloni et al. (2024, A&A 682,
  A34), ``eRASS1_Main.v1.1.fits``: ``RA``, ``DEC``, ``DET_LIKE_0``,
  ``ML_CTS_1``, ``ML_RATE_1`` (counts/s), ``ML_EXP_1``, ... read by
  :func:`skcluster.io.read_point_sources` to mask the point sources;
* per sky tile, the calibrated event list ``em01_TTTTTT_020_EventList_c010.fits``
  (an eSASS ``EVENTS`` table: ``RA``, ``DEC``, ``PI`` in eV, ``PAT_TYP``,
  ``FLAG``, ...) and the evtool images and exposure maps of the tile,
  e.g. ``em01_TTTTTT_024_ExposureMap_c010.fits`` (0.2-2.3 keV), on the
  DR1 file naming scheme (``TTTTTT``: three digits of the tile centre's RA
  and three of its distance from the north pole, deg).

These files cannot be downloaded here, so by default the script writes tiny
synthetic stand-ins in exactly those layouts into a temporary folder: a few
mock clusters at eRASS1 depth (:func:`skcluster.datasets.make_survey`,
preset ``"erass1"``) placed on one small sky tile, with their photons in one
event list (plus a few events the DR1 quality filters must drop), their
exposure in an exposure map, their detected point sources in a main
catalogue, and a cluster catalogue that also lists clusters off the tile.
It then reads them exactly as it would read the real ones: the clusters on
the tile from the catalogue, each cluster's vignetted exposure and the
coverage of its box from the exposure map, its photons from the event list
(DR1 filters), and the point sources around it from the main catalogue; and
predicts log10 M500c with a model trained on the mock at eRASS1 depth (or
loaded with ``--model``), through the public Python API.

The exposure map is read as vignetted exposure (eSASS ``expmap`` with
``withvignetting=yes``); for a map without vignetting pass
``exposure_vignetting="unvignetted"`` to ``ImageCutout`` (see its docstring).

Usage::

    python examples/predict_erass1.py            # a model of 2000 mock clusters, 5 CNNs (a long CPU run)
    python examples/predict_erass1.py --quick    # tiny sizes, well under a minute
    python examples/predict_erass1.py --model erass1.skc   # load it, or train and save it there
    python examples/predict_erass1.py --model erass1.skc --catalog erass1cl_primary_v3.2.fits \\
        --sources eRASS1_Main.v1.1.fits --events em01_052118_020_EventList_c010.fits.gz \\
        --expmap em01_052118_024_ExposureMap_c010.fits.gz      # one real tile

Nearly the same from the command line (``skcluster train`` masks the
mock's detected point sources by default): ``skcluster train --survey erass1
... --out erass1.skc`` and ``skcluster predict --model erass1.skc --catalog
erass1cl_primary_v3.2.fits --events em01_052118_020_EventList_c010.fits.gz
--exposure em01_052118_024_ExposureMap_c010.fits.gz --point-sources
eRASS1_Main.v1.1.fits --out masses.fits``.
DR1 files of the MPE+IKI sky start with ``eb01_`` instead of ``em01_``.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from skcluster import persist
from skcluster.datasets import make_survey
from skcluster.io import (
    BandImageStack,
    cutout_events,
    make_events,
    offsets_to_events_table,
    point_sources_around,
    read_erass1_catalog,
    read_events,
    read_point_sources,
    write_events,
)
from skcluster.models import make_mass_pipeline
from skcluster.preprocessing import ImageCutout

SIZE_ARCMIN = 20.0          # the model's box
PIXEL_ARCSEC = 4.0          # evtool's pixel
TILE = "052118"             # RA 52 deg, 118 deg from the north pole (Dec -28 deg)
RA0, DEC0 = 52.0, -28.0


# ---------------------------------------------------------------------------
# tiny synthetic stand-ins for the DR1 files
# ---------------------------------------------------------------------------
def _tile_wcs(npix):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [RA0, DEC0]
    w.wcs.crpix = [npix / 2 + 0.5, npix / 2 + 0.5]
    w.wcs.cdelt = [-PIXEL_ARCSEC / 3600.0, PIXEL_ARCSEC / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w


def _iau_name(ra, dec):
    """``1eRASS JHHMMSS.s+DDMMSS``, the IAU name form of the eRASS1 catalogues."""
    t = round(ra / 15.0 * 3600.0, 1)                 # seconds of time
    hh, rest = divmod(t, 3600.0)
    mm, ss = divmod(rest, 60.0)
    a = round(abs(dec) * 3600.0)                     # arcsec
    dd, rest = divmod(a, 3600)
    dm, ds = divmod(rest, 60)
    sign = "+" if dec >= 0 else "-"
    return f"1eRASS J{int(hh):02d}{int(mm):02d}{ss:04.1f}{sign}{int(dd):02d}{int(dm):02d}{int(ds):02d}"


def write_synthetic_dr1(folder, sky, rng):
    """Write the four DR1 products for the mock clusters ``sky`` onto one tile.

    Returns the paths (catalogue, main catalogue, event list, exposure map)
    and the clusters' true log10 M500 by name.
    """
    folder = Path(folder)
    n = len(sky.y)
    side = int(np.ceil(np.sqrt(n)))
    box = int(round(SIZE_ARCMIN * 60 / PIXEL_ARCSEC))         # 300 pixels
    npix = box * (side + 1)                                    # boxes on a grid, half a box of margin
    w = _tile_wcs(npix)
    # cluster positions: pixel corners one box apart, so that the boxes touch but do not overlap
    cols = np.arange(n) % side
    rows = np.arange(n) // side
    px = box * (cols + 1) - 0.5
    py = box * (rows + 1) - 0.5
    ra, dec = w.all_pix2world(px, py, 0)

    # the event list: every cluster's photons (cluster, AGN, background), in one file
    tables = [offsets_to_events_table(sky.X["events"][i], ra[i], dec[i]) for i in range(n)]
    events = {k: np.concatenate([np.asarray(t[k]) for t in tables]) for k in ("RA", "DEC", "PI")}
    m = len(events["PI"])
    events["TIME"] = np.sort(rng.uniform(6.2e8, 6.2e8 + 1.5e7, m))       # s since the mission epoch
    events["PAT_TYP"] = rng.choice([1, 2, 3, 4], m, p=[0.6, 0.25, 0.1, 0.05]).astype(np.int16)
    events["FLAG"] = np.zeros(m, np.uint32)
    events["TM_NR"] = rng.integers(1, 8, m).astype(np.uint8)
    # events that the DR1 quality filters drop: flagged, or of an invalid pattern
    bad = rng.choice(m, max(1, m // 50), replace=False)
    events["FLAG"][bad[::2]] = 0x40000000
    events["PAT_TYP"][bad[1::2]] = 0
    event_file = folder / f"em01_{TILE}_020_EventList_c010.fits"
    write_events(event_file, events, RA0, DEC0, header={"OBJECT": (f"sky tile {TILE}", "synthetic")})

    # the exposure map (0.2-2.3 keV): each cluster's exposure over its box, the mean elsewhere
    expo = np.full((npix, npix), float(np.mean(sky.X["exposure"])), np.float32)
    for i in range(n):
        r0, c0 = int(py[i] + 0.5) - box // 2, int(px[i] + 0.5) - box // 2
        expo[r0:r0 + box, c0:c0 + box] = sky.X["exposure"][i]
    header = w.to_header()
    header["BUNIT"] = "s"
    expmap = folder / f"em01_{TILE}_024_ExposureMap_c010.fits"
    fits.writeto(expmap, expo, header)

    # the main catalogue: the detected point sources around each cluster
    src = {k: [] for k in ("RA", "DEC", "ML_CTS_1", "ML_EXP_1", "DET_LIKE_0")}
    for i in range(n):
        ps = sky.X["point_sources"][i]
        if len(ps) == 0:
            continue
        pos = offsets_to_events_table(make_events(ps["x_arcsec"], ps["y_arcsec"], np.ones(len(ps))),
                                      ra[i], dec[i])
        src["RA"].append(np.asarray(pos["RA"]))
        src["DEC"].append(np.asarray(pos["DEC"]))
        src["ML_CTS_1"].append(ps["counts"].astype(np.float64))
        src["ML_EXP_1"].append(np.full(len(ps), sky.X["exposure"][i]))
        src["DET_LIKE_0"].append(ps["det_like"].astype(np.float64))
    src = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in src.items()}
    k = len(src["RA"])
    main = Table()
    main["IAUNAME"] = [_iau_name(a, b) for a, b in zip(src["RA"], src["DEC"])]
    main["DETUID"] = [f"eb01_{TILE}_020_ML{j + 1:05d}_001_c010" for j in range(k)]
    main["RA"] = src["RA"] * u.deg
    main["DEC"] = src["DEC"] * u.deg
    main["POS_ERR"] = np.full(k, 4.0, np.float32) * u.arcsec
    main["EXT"] = np.zeros(k, np.float32) * u.arcsec
    main["EXT_LIKE"] = np.zeros(k, np.float32)
    main["DET_LIKE_0"] = src["DET_LIKE_0"].astype(np.float32)
    main["ML_CTS_1"] = src["ML_CTS_1"].astype(np.float32) * u.ct
    main["ML_RATE_1"] = (src["ML_CTS_1"] / src["ML_EXP_1"]).astype(np.float32) * u.ct / u.s
    main["ML_EXP_1"] = src["ML_EXP_1"].astype(np.float32) * u.s
    sources = folder / "eRASS1_Main.v1.1.fits"
    main.write(sources)

    # the cluster catalogue: the clusters on this tile and two elsewhere in the sky
    cat_ra = np.concatenate([ra, [150.0, 200.0]])
    cat_dec = np.concatenate([dec, [-10.0, -45.0]])
    nn = len(cat_ra)
    cat = Table()
    cat["DETUID"] = [f"eb01_{TILE}_020_ML{j + 1:05d}_002_c010" for j in range(nn)]
    cat["NAME"] = [_iau_name(a, b) for a, b in zip(cat_ra, cat_dec)]
    cat["RA"] = cat_ra * u.deg
    cat["DEC"] = cat_dec * u.deg
    cat["RA_XFIT"] = cat["RA"]
    cat["DEC_XFIT"] = cat["DEC"]
    cat["EXT_LIKE"] = np.concatenate([np.asarray(sky.catalog["EXT_LIKE"]), [12.0, 30.0]]).astype(np.float32)
    cat["DET_LIKE_0"] = np.concatenate([np.asarray(sky.catalog["DET_LIKE"]), [20.0, 45.0]]).astype(np.float32)
    cat["EXP"] = np.concatenate([sky.X["exposure"], [150.0, 400.0]]).astype(np.float32) * u.s
    cat["BEST_Z"] = np.concatenate([sky.X["z"], [0.2, 0.35]]).astype(np.float32)
    cat["BEST_ZERR"] = np.full(nn, 0.01, np.float32)
    cat["BEST_Z_TYPE"] = np.where(np.arange(nn) % 2 == 0, "spec_z", "photo_z")
    catalog = folder / "erass1cl_primary_v3.2.fits"
    cat.write(catalog)
    truth = dict(zip(cat["NAME"][:n], sky.y))
    return catalog, sources, event_file, expmap, truth


# ---------------------------------------------------------------------------
# the data path: what runs on the real files too
# ---------------------------------------------------------------------------
def read_tile(catalog, sources, event_file, expmap, size_arcmin=SIZE_ARCMIN):
    """The clusters of ``catalog`` on the tile of ``expmap``, ready for a mass pipeline."""
    clusters = read_erass1_catalog(catalog)
    stack = BandImageStack.from_files([expmap])
    x, y = stack.world_to_pixel(clusters["ra"], clusters["dec"])
    ny, nx = stack.shape
    ok = np.isfinite(x) & np.isfinite(y)        # NaN: more than 90 deg from the tile
    ix = np.where(ok, np.floor(np.where(ok, x, -1.0) + 0.5), -1).astype(int)
    iy = np.where(ok, np.floor(np.where(ok, y, -1.0) + 0.5), -1).astype(int)
    on = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    on[on] = stack.counts[0][iy[on], ix[on]] > 0      # exposed at the cluster's position
    sample = clusters[np.flatnonzero(on)]
    # each cluster's vignetted exposure (median within 1 arcmin) and the coverage of its box
    got = ImageCutout(images=[expmap], exposures=[expmap], size_arcmin=size_arcmin, npix=1,
                      verbose=False).fit_transform(sample)
    ratio = got["exposure"] / sample["exposure"]
    print(f"exposure from the map / the catalogue's EXP: {np.min(ratio):.3f} to {np.max(ratio):.3f}")
    sample = sample.assign(exposure=got["exposure"], complete=got["complete"], coverage=got["coverage"])
    events = read_events(event_file)             # DR1 filters: PAT_TYP 1-4, FLAG mask 0xE000F000
    n_all = len(read_events(event_file, apply_filters=False))
    print(f"{n_all} events in {Path(event_file).name}, {len(events)} kept by the DR1 quality filters")
    sample = sample.assign(events=cutout_events(events, sample["ra"], sample["dec"], size_arcmin))
    found = read_point_sources(sources)         # RA, DEC, ML_CTS_1, DET_LIKE_0
    sample = sample.assign(point_sources=point_sources_around(found, sample["ra"], sample["dec"], size_arcmin,
                                                              exposure=sample["exposure"]))
    return sample, int(on.size - on.sum())


def get_model(quick, model_path=None):
    if model_path and Path(model_path).is_file():
        return persist.load(model_path), None
    n_train, n_members, epochs = (150, 1, 2) if quick else (2000, 5, 30)
    small = dict(channels=(4, 8), dense=(8,), npix=25) if quick else {}
    mock = make_survey("erass1", n_clusters=n_train, random_state=0, verbose=not quick)
    pipe = make_mass_pipeline(bands="ho3" if quick else "krippendorf10", size_arcmin=SIZE_ARCMIN,
                              n_estimators=n_members, max_epochs=epochs, random_state=0,
                              mask_point_sources=True, verbose=0 if quick else 1, **small)
    pipe.fit(mock.X, mock.y)
    if model_path:
        persist.save(pipe, model_path)
    return pipe, mock


def main(quick=False, model_path=None, files=None):
    pipe, _ = get_model(quick, model_path)
    truth = {}
    with tempfile.TemporaryDirectory() as tmp:
        if files is None:
            sky = make_survey("erass1", n_clusters=4 if quick else 9, random_state=1, verbose=False)
            *files_, truth = write_synthetic_dr1(tmp, sky, np.random.default_rng(1))
            print(f"synthetic DR1 files in {tmp}: " + ", ".join(Path(f).name for f in files_))
        else:
            files_ = files
        sample, n_off = read_tile(*files_, size_arcmin=pipe.steps[0][1].size_arcmin)
        print(f"{len(sample)} clusters of the catalogue on the tile ({n_off} elsewhere in the sky)")
        mass, err = pipe.predict(sample, return_std=True)
    print(f"{'NAME':<26} {'z':>6} {'z type':>7} {'exp/s':>6} {'photons':>7}  log10 M500c/Msun"
          + ("   true" if truth else ""))
    for i in range(len(sample)):
        name = str(sample["name"][i])
        line = (f"{name:<26} {sample['z'][i]:6.3f} {sample['z_type'][i]:>7} {sample['exposure'][i]:6.0f} "
                f"{len(sample['events'][i]):7d}  {mass[i]:6.2f} +- {err[i]:.2f}")
        if name in truth:
            line += f"   {truth[name]:.2f}"
        if not sample["complete"][i]:
            line += f"   (box coverage {sample['coverage'][i]:.2f})"
        print(line)
    return sample, mass, err, truth


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to check that it runs")
    ap.add_argument("--model", help="load this model if it exists, else train and save it there")
    ap.add_argument("--catalog", help="eRASS1 DR1 cluster catalogue (erass1cl_primary_v3.2.fits)")
    ap.add_argument("--sources", help="eRASS1 DR1 main catalogue (eRASS1_Main.v1.1.fits)")
    ap.add_argument("--events", help="one tile's event list (em01_*_020_EventList_c010.fits.gz)")
    ap.add_argument("--expmap", help="the tile's exposure map (em01_*_024_ExposureMap_c010.fits.gz)")
    args = ap.parse_args()
    real = [args.catalog, args.sources, args.events, args.expmap]
    if any(real) and not all(real):
        ap.error("real files need all four of --catalog, --sources, --events and --expmap")
    main(quick=args.quick, model_path=args.model, files=real if all(real) else None)
