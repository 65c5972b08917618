"""Masses for two real eFEDS clusters, from a model trained on the mock in the same bands.

The real data: evtool images of a 34 arcmin eFEDS patch in seven bands
(0.3-0.6, 0.6-1.1, 1.1-1.6, 1.6-2.2, 2.2-3.5, 3.5-5.0, 5.0-7.0 keV) on 4
arcsec pixels, with exposure maps (the ``examples/eFEDS`` folder of the
public repository jeremysanders/mbproj2d; where to get it and the other
public eFEDS and eRASS1 products: the user guide's real-data page). Set
``SKCLUSTER_EFEDS_DIR`` to that folder or pass ``--data DIR``.

The point sources to mask: the eFEDS point-like (AGN) catalogue of Liu T. et
al. 2022 (A&A 661, A5), ``efeds_agn_liu22.fits``, from the eROSITA Early
Data Release catalogue page (https://erosita.mpe.mpg.de/edr/eROSITAObservations/Catalogues/).
It has 0.5-2 keV fluxes only; :func:`skcluster.io.read_point_sources`
converts them to 0.2-2.3 keV count rates with the instrument response
(:func:`skcluster.io.point_sources.flux_to_rate`). Pass it with
``--point-sources FILE``; by default ``$SKCLUSTER_EFEDS_AGN``, else
``efeds_catalogs/efeds_agn_liu22.fits`` beside the images' folder. The
eFEDS main catalogue of Brunner et al. 2022 (``ML_RATE_1``) works too.

The model: the standard pipeline (:func:`skcluster.models.make_mass_pipeline`
with its defaults: the mock's detected point sources masked, a 20 arcmin box
on ``DEFAULT_NPIX`` = 32 pixels of 20 x 60 / 32 = 37.5 arcsec) trained on the
mock survey (the default mock version, ``v2``) binned in the same seven bands
(preset ``"efeds7"``). For prediction the data path is the one
``skcluster predict --images ... --point-sources ...`` takes: an
``ImageCutout`` cuts the model's box out of the real images (the 4 arcsec
pixels rebinned by area overlap to the model's grid), the catalogue's
sources in each box are listed with :func:`skcluster.io.point_sources_around`
(rates times each cluster's exposure) and masked by the fitted pipeline's
own ``PointSourceMasker`` (refilled at the local background level), and the
fitted rest of the pipeline (domain check, scaling, ensemble) predicts.

The mbproj2d ``expmap_norm_*`` maps are normalised to an ARF that already
includes the vignetting, so they are read with
``exposure_vignetting="unvignetted"`` (see ``ImageCutout``).

The fainter cluster lies near the edge of the images: its 20 arcmin box is
only partly covered, padded with the local background level and flagged
(``complete`` False, ``coverage`` < 1). Every training box was whole, so it
is outside the model's domain and gets no mass, as ``skcluster predict``
gives it none.

Nearly the same from the command line (the user guide's real-data page;
``skcluster train`` trains 80 epochs per CNN and by default calibrates the
masses at fixed mass, ``--prior fixed-mass``, where this script keeps the
ensemble's posterior mean after 30 epochs)::

    export D=/path/to/efeds_mbproj2d
    export AGN=/path/to/efeds_agn_liu22.fits
    skcluster train --bands efeds7 --n-clusters 3000 --n-estimators 5 --seed 0 --out efeds7.skc
    skcluster predict --model efeds7.skc --catalog docs/data/efeds_two_clusters.csv \\
        --images $D/img_*.fits.gz --exposure $D/expmap_norm_[0-9]*.fits.gz \\
        --exposure-vignetting unvignetted --point-sources $AGN --out masses.csv

    python examples/predict_efeds.py --data $D --point-sources $AGN           # 3000 mock clusters, 5 CNNs
    python examples/predict_efeds.py --data $D --point-sources $AGN --quick   # a tiny model, to check that it runs
    python examples/predict_efeds.py --data $D --point-sources $AGN --model efeds7.skc
        # load that model (skcluster train's too) if it exists, else train and save it there
"""

import argparse
import os
from pathlib import Path

import numpy as np

from skcluster import ClusterSample, persist
from skcluster.datasets import make_survey
from skcluster.io import point_sources_around, read_point_sources
from skcluster.models import DEFAULT_NPIX, make_mass_pipeline
from skcluster.preprocessing import ImageCutout
from skcluster.workflow import MassModel

BANDS_EV = ["0300_0600", "0600_1100", "1100_1600", "1600_2200", "2200_3500", "3500_5000", "5000_7000"]
#: The two clusters of the patch (eFEDS cluster catalogue of Liu et al. 2022).
CLUSTERS = {"eFEDS J092121.2+031726": (140.33848, 3.29060, 0.3329),   # L_X 2.1e44 erg/s, T 5.2 keV
            "eFEDS J092022.0+030106": (140.09184, 3.01860, 0.4806)}   # at the detection limit
#: The AGN catalogue's file name, and the folder it is looked for in beside the images' folder.
AGN_FILE, AGN_FOLDER = "efeds_agn_liu22.fits", "efeds_catalogs"


def data_dir(given=None):
    """The folder with the eFEDS images: ``--data``, else ``$SKCLUSTER_EFEDS_DIR``."""
    cand = given or os.environ.get("SKCLUSTER_EFEDS_DIR")
    if cand and (Path(cand) / "img_0300_0600.fits.gz").is_file():
        return Path(cand)
    where = f"{cand!r} holds no img_0300_0600.fits.gz" if cand else "no folder given"
    raise SystemExit(f"eFEDS images not found ({where}): pass --data DIR or set SKCLUSTER_EFEDS_DIR "
                     "to the folder with img_*.fits.gz and expmap_norm_*.fits.gz")


def agn_catalog(given, images_dir):
    """The point-source catalogue: ``--point-sources``, else ``$SKCLUSTER_EFEDS_AGN``, else beside the images."""
    cand = given or os.environ.get("SKCLUSTER_EFEDS_AGN") or images_dir.parent / AGN_FOLDER / AGN_FILE
    if Path(cand).is_file():
        return Path(cand)
    raise SystemExit(f"point-source catalogue not found: {str(cand)!r}. Pass --point-sources FILE or set "
                     f"SKCLUSTER_EFEDS_AGN: the eFEDS AGN catalogue of Liu T. et al. 2022 ({AGN_FILE}, "
                     "0.5-2 keV fluxes) or the eFEDS main catalogue (ML_RATE_1), from the eROSITA EDR "
                     "catalogue page https://erosita.mpe.mpg.de/edr/eROSITAObservations/Catalogues/")


def get_model(quick, model_path=None):
    """The fitted model: loaded from ``model_path`` if it exists, else trained on the mock (and saved there)."""
    if model_path and Path(model_path).is_file():
        return persist.load(model_path)
    n_clusters, n_members, epochs = (150, 1, 2) if quick else (3000, 5, 30)
    small_net = dict(channels=(8, 16), dense=(16,)) if quick else {}
    mock = make_survey("efeds", n_clusters=n_clusters, random_state=0)
    # make_mass_pipeline's defaults (the mock's detected point sources masked, 20 arcmin on DEFAULT_NPIX
    # pixels), with the training domain recorded as skcluster train records it
    pipe = make_mass_pipeline(bands="efeds7", n_estimators=n_members, max_epochs=epochs, flag_domain=True,
                              random_state=0, verbose=1, **small_net)
    pipe.fit(mock.X, mock.y)
    if model_path:
        persist.save(pipe, model_path)
    return pipe


def main(quick=False, model_path=None, data=None, point_sources=None):
    d = data_dir(data)
    agn_path = agn_catalog(point_sources, d)
    parts = MassModel(get_model(quick, model_path))    # the fitted model's steps by name (a saved file's too)
    if parts.masker is None:
        raise SystemExit("the model was trained with the point sources kept (--keep-point-sources); this "
                         "script masks the catalogue's point sources, as the default models expect")
    size, npix = parts.size_arcmin, parts.npix
    print(f"model: {len(parts.bands)} bands, box {size:g} arcmin on {npix} x {npix} pixels of "
          f"{parts.pixel_arcsec:.1f} arcsec (DEFAULT_NPIX = {DEFAULT_NPIX}), {parts.n_members} CNN(s)")

    # the model's bands and grid, cut out of the real images (4 arcsec pixels rebinned by area overlap)
    cutout = ImageCutout(images=[d / f"img_{b}.fits.gz" for b in BANDS_EV],
                         exposures=[d / f"expmap_norm_{b}.fits.gz" for b in BANDS_EV],
                         exposure_vignetting="unvignetted", size_arcmin=size, npix=npix, bands_keV=parts.bands)
    sources = read_point_sources(agn_path)   # RA_CORR, DEC_CORR; FluxCorr_Med_s -> 0.2-2.3 keV counts/s
    print(f"{len(sources['ra'])} point sources in {agn_path.name} "
          f"({'count rates from 0.5-2 keV fluxes' if 'rate' in sources else 'counts'})")

    ra, dec, z = (np.array(v) for v in zip(*CLUSTERS.values()))
    cube = cutout.transform(ClusterSample(ra=ra, dec=dec, z=z))
    # each box's sources with their counts at the cluster's (vignetted) exposure, masked and refilled
    around = point_sources_around(sources, cube["ra"], cube["dec"], size, exposure=cube["exposure"])
    cube = parts.masker.transform(cube.assign(point_sources=around))
    if parts.flagger is not None:                  # the training domain: in_domain, domain_reason
        cube = parts.flagger.transform(cube)
    else:
        cube = cube.assign(in_domain=np.ones(len(cube), bool), domain_reason=np.full(len(cube), "", object))
    mass, err = parts.predict(cube)
    ok = np.asarray(cube["in_domain"], dtype=bool)
    for i, name in enumerate(CLUSTERS):
        result = (f" = {mass[i]:.2f} +- {err[i]:.2f}  (M500 = {10 ** (mass[i] - 14):.2f}e14 Msun)" if ok[i]
                  else f": no mass (outside the training domain: {cube['domain_reason'][i]})")
        note = "" if cube["complete"][i] else f"  (cut-out incomplete: coverage {cube['coverage'][i]:.2f})"
        print(f"{name}  z={z[i]:.3f}  {len(around[i])} point sources, {cube['masked_fraction'][i]:.1%} of the "
              f"box masked  log10 M500c/Msun{result}{note}")
    # as skcluster predict: no mass outside the training domain
    return list(CLUSTERS), np.where(ok, mass, np.nan), np.where(ok, err, np.nan), cube


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tiny model, to check that it runs")
    ap.add_argument("--model", help="load this model if it exists, else train and save it there")
    ap.add_argument("--data", help="folder with the eFEDS images and exposure maps "
                                   "(default: $SKCLUSTER_EFEDS_DIR)")
    ap.add_argument("--point-sources", metavar="FILE",
                    help=f"point-source catalogue to mask, e.g. the eFEDS AGN catalogue {AGN_FILE} from the "
                         "eROSITA EDR catalogue page (default: $SKCLUSTER_EFEDS_AGN, else "
                         f"{AGN_FOLDER}/{AGN_FILE} beside the images' folder)")
    args = ap.parse_args()
    main(quick=args.quick, model_path=args.model, data=args.data, point_sources=args.point_sources)
