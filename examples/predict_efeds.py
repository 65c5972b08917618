"""Masses for two real eFEDS clusters, from a model trained on the mock in the same bands.

The real data: evtool images of a 34 arcmin eFEDS patch in seven bands
(0.3-0.6, 0.6-1.1, 1.1-1.6, 1.6-2.2, 2.2-3.5, 3.5-5.0, 5.0-7.0 keV) on 4
arcsec pixels, with exposure maps (the ``examples/eFEDS`` folder of the
public repository jeremysanders/mbproj2d; where to get it and the other
public eFEDS and eRASS1 products: the user guide's real-data page). Set
``SKCLUSTER_EFEDS_DIR`` to that folder or pass ``--data DIR``. The model:
the standard pipeline trained on the mock survey binned in the same seven bands (preset ``"efeds7"``) over the same 20 arcmin box
and 50 x 50 pixels of 24 arcsec, i.e. the same pixel size as the real
images after 6 x 6 rebinning. For prediction the pipeline's first step, which
bins mock event lists, is swapped for an ``ImageCutout`` that cuts the same
box out of the real images; the fitted rest is kept.

The mbproj2d ``expmap_norm_*`` maps are normalised to an ARF that already
includes the vignetting, so they are read with
``exposure_vignetting="unvignetted"`` (see ``ImageCutout``).

The fainter cluster lies near the edge of the images: its 20 arcmin box is
only partly covered, padded with the local background level and flagged
(``complete`` False, ``coverage`` < 1): treat its mass with care.

The same from the command line::

    skcluster train --bands efeds7 --n-clusters 3000 --n-estimators 5 --keep-point-sources --out efeds7.skc
    skcluster predict --model efeds7.skc --catalog docs/data/efeds_two_clusters.csv \\
        --images $D/img_*.fits.gz --exposure $D/expmap_norm_[0-9]*.fits.gz \\
        --exposure-vignetting unvignetted --out masses.csv

    python examples/predict_efeds.py --data $D            # 3000 mock clusters, 5 CNNs: ~10-15 min on 2 cores
    python examples/predict_efeds.py --data $D --quick    # a tiny model, to check that it runs
"""

import argparse
import os
from pathlib import Path

import numpy as np

from skcluster import ClusterSample, persist
from skcluster.datasets import make_survey
from skcluster.models import make_mass_pipeline
from skcluster.preprocessing import ImageCutout

BANDS_EV = ["0300_0600", "0600_1100", "1100_1600", "1600_2200", "2200_3500", "3500_5000", "5000_7000"]
#: The two clusters of the patch (eFEDS cluster catalogue of Liu et al. 2022).
CLUSTERS = {"eFEDS J092121.2+031726": (140.33848, 3.29060, 0.3329),   # L_X 2.1e44 erg/s, T 5.2 keV
            "eFEDS J092022.0+030106": (140.09184, 3.01860, 0.4806)}   # at the detection limit


def data_dir(given=None):
    """The folder with the eFEDS images: ``--data``, else ``$SKCLUSTER_EFEDS_DIR``."""
    cand = given or os.environ.get("SKCLUSTER_EFEDS_DIR")
    if cand and (Path(cand) / "img_0300_0600.fits.gz").is_file():
        return Path(cand)
    where = f"{cand!r} holds no img_0300_0600.fits.gz" if cand else "no folder given"
    raise SystemExit(f"eFEDS images not found ({where}): pass --data DIR or set SKCLUSTER_EFEDS_DIR "
                     "to the folder with img_*.fits.gz and expmap_norm_*.fits.gz")


def main(quick=False, model_path=None, data=None):
    d = data_dir(data)
    if model_path and Path(model_path).is_file():
        pipe = persist.load(model_path)
    else:
        n_clusters, n_members, epochs = (150, 1, 2) if quick else (3000, 5, 30)
        small_net = dict(channels=(8, 16), dense=(16,)) if quick else {}
        mock = make_survey("efeds", n_clusters=n_clusters, random_state=0)
        # the images come without a detected-source column: no mask step (predict_catalog masks a catalogue)
        pipe = make_mass_pipeline(mask_point_sources=False, bands="efeds7", size_arcmin=20.0, npix=50, n_estimators=n_members,
                                  max_epochs=epochs, random_state=0, verbose=1, **small_net)
        pipe.fit(mock.X, mock.y)
        if model_path:
            persist.save(pipe, model_path)

    cutout = ImageCutout(images=[d / f"img_{b}.fits.gz" for b in BANDS_EV],
                         exposures=[d / f"expmap_norm_{b}.fits.gz" for b in BANDS_EV],
                         exposure_vignetting="unvignetted",
                         size_arcmin=pipe["bin"].size_arcmin, npix=pipe["bin"].npix)
    pipe.set_params(bin=cutout)  # same bands and grid as the fitted steps expect

    names = list(CLUSTERS)
    ra, dec, z = (np.array(v) for v in zip(*CLUSTERS.values()))
    catalog = ClusterSample(ra=ra, dec=dec, z=z)
    flags = pipe["bin"].transform(catalog)           # the cut-out flags live in the first step's output
    mass, err = pipe.predict(catalog, return_std=True)
    for i, name in enumerate(names):
        note = "" if flags["complete"][i] else f"  (cut-out incomplete: coverage {flags['coverage'][i]:.2f})"
        print(f"{name}  z={z[i]:.3f}  log10 M500c/Msun = {mass[i]:.2f} +- {err[i]:.2f}  "
              f"(M500 = {10 ** (mass[i] - 14):.2f}e14 Msun){note}")
    return names, mass, err, flags


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tiny model, to check that it runs")
    ap.add_argument("--model", help="load this model if it exists, else train and save it there")
    ap.add_argument("--data", help="folder with the eFEDS images and exposure maps "
                                   "(default: $SKCLUSTER_EFEDS_DIR)")
    args = ap.parse_args()
    main(quick=args.quick, model_path=args.model, data=args.data)
