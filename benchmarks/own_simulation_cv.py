"""Cross-validated scatter from your own simulation's files against the survey folder.

The same mock clusters are written twice: as the folder ``skcluster
simulate`` writes (read by :func:`skcluster.datasets.read_survey`, what
``skcluster train --data`` uses) and as another simulation would hand them
over (a truth catalogue with other column names and masses in Msun, and the
photons of many clusters in each of a few event files with only ``RA``,
``DEC`` and ``PI``, written by this script's own minimal FITS writer), read by
:func:`skcluster.workflow.read_training_set` (what ``skcluster train --catalog
--events`` uses). Both samples are binned and compared pixel by pixel, and
the standard pipeline is cross-validated on each with the same folds and
seeds. A second model seed on the folder's sample shows the size of the
training noise that "equal within noise" is measured against.

Writes ``own_simulation_cv.json`` and ``own_simulation_cv.md`` to ``--out``
(default ``benchmarks/results/own_simulation_cv``) and prints the command.

    nice python benchmarks/own_simulation_cv.py                 # 300 clusters, 3 folds
    nice python benchmarks/own_simulation_cv.py --n-clusters 1000 --max-epochs 30
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from sklearn.model_selection import KFold, cross_val_predict

from skcluster._paths import check_output_folder
from skcluster.datasets import make_survey, read_survey, write_survey
from skcluster.io import offsets_to_events_table
from skcluster.metrics import mass_bias, mass_scatter
from skcluster.models import make_mass_pipeline
from skcluster.preprocessing import BandBinner
from skcluster.workflow import read_training_set

NAMES = ("own_simulation_cv.json", "own_simulation_cv.md")


def _write_plain_events(path, tables):
    """RA, DEC, PI only: the least an event file of another simulator has."""
    cols = [fits.Column(k, f, unit=unit, array=np.concatenate([np.asarray(t[k]) for t in tables]))
            for k, f, unit in (("RA", "D", "deg"), ("DEC", "D", "deg"), ("PI", "E", "eV"))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(path)


def _cv(X, y, args, seed):
    pipe = make_mass_pipeline(mask_point_sources=False, bands=args.bands, npix=args.npix, n_estimators=args.n_estimators,
                              max_epochs=args.max_epochs, random_state=seed, channels=(8, 16, 32),
                              dense=(32,))
    cv = KFold(args.folds, shuffle=True, random_state=args.seed)
    pred = cross_val_predict(pipe, X, y, cv=cv)
    return {"scatter": mass_scatter(y, pred), "bias": mass_bias(y, pred)}, pred


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-clusters", type=int, default=300)
    ap.add_argument("--survey", default="efeds")
    ap.add_argument("--clusters-per-file", type=int, default=50)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--n-estimators", type=int, default=1)
    ap.add_argument("--max-epochs", type=int, default=15)
    ap.add_argument("--bands", default="efeds7")
    ap.add_argument("--npix", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "own_simulation_cv"))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    out = check_output_folder(args.out, NAMES, overwrite=args.overwrite)
    t0 = time.time()
    mock = make_survey(args.survey, n_clusters=args.n_clusters, random_state=args.seed, verbose=False)
    n = len(mock.y)
    # one degree apart: each mock cluster carries its own background photons,
    # so boxes that overlap in a shared event file would count two backgrounds
    ra = 150.0 + (np.arange(n) % 40) * 1.0
    dec = -20.0 + (np.arange(n) // 40) * 1.0
    mock.X["ra"][:], mock.X["dec"][:] = ra, dec
    mock.catalog["ra"][:], mock.catalog["dec"][:] = ra, dec
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_survey(mock, tmp / "folder")
        tables = [offsets_to_events_table(mock.X["events"][i], ra[i], dec[i]) for i in range(n)]
        files = []
        for k, start in enumerate(range(0, n, args.clusters_per_file)):
            files.append(tmp / f"photons_{k:03d}.fits")
            _write_plain_events(files[-1], tables[start:start + args.clusters_per_file])
        Table({"RAJ2000": ra, "DEJ2000": dec, "z_true": mock.X["z"], "M500_Msun": 10.0 ** mock.y,
               "TEXP": mock.X["exposure"]}).write(tmp / "truth.ecsv")
        a = read_survey(tmp / "folder")
        b = read_training_set(tmp / "truth.ecsv", files, mass_col="M500_Msun", mass_unit="Msun",
                              z="z_true", exposure_col="TEXP", pattern_types=None, flag_mask=None)
    binner = BandBinner(bands=args.bands, npix=args.npix, verbose=False)
    ia, ib = binner.fit_transform(a.X)["images"], binner.fit_transform(b.X)["images"]
    same = {"images_equal": bool(np.array_equal(ia, ib)), "pixels_differing": int(np.sum(ia != ib)),
            "counts": float(ia.sum()), "z_equal": bool(np.array_equal(a.X["z"], b.X["z"])),
            "exposure_equal": bool(np.array_equal(a.X["exposure"], b.X["exposure"])),
            "max_abs_dy": float(np.max(np.abs(a.y - b.y)))}
    res_a, pa = _cv(a.X, a.y, args, args.seed)
    res_b, pb = _cv(b.X, b.y, args, args.seed)
    res_n, _ = _cv(a.X, a.y, args, args.seed + 1)
    result = {"sample": same, "survey_folder": res_a, "own_files": res_b, "survey_folder_other_seed": res_n,
              "max_abs_prediction_difference": float(np.max(np.abs(pa - pb))),
              "settings": vars(args), "n_event_files": len(files), "seconds": time.time() - t0,
              "command": "python benchmarks/own_simulation_cv.py " + shlex.join(sys.argv[1:] if argv is None
                                                                              else argv)}
    md = [f"# Own simulation files vs survey folder ({n} {args.survey} mock clusters, {args.folds}-fold CV)", "",
          f"Samples: images equal: {same['images_equal']} ({same['pixels_differing']} pixels differ, "
          f"{same['counts']:.0f} counts); z equal: {same['z_equal']}; exposure equal: "
          f"{same['exposure_equal']}; max |dy| = {same['max_abs_dy']:.1e} dex", "",
          "| reader | model seed | scatter (ln M) | bias (ln M) |", "|---|---|---|---|",
          f"| survey folder (read_survey) | {args.seed} | {res_a['scatter']:.4f} | {res_a['bias']:+.4f} |",
          f"| own files (read_training_set) | {args.seed} | {res_b['scatter']:.4f} | {res_b['bias']:+.4f} |",
          f"| survey folder (read_survey) | {args.seed + 1} | {res_n['scatter']:.4f} | {res_n['bias']:+.4f} |",
          "", f"Largest difference of the two readers' cross-validated predictions: "
          f"{result['max_abs_prediction_difference']:.2e} dex.", "", f"`{result['command']}`", ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / NAMES[0]).write_text(json.dumps(result, indent=1))
    (out / NAMES[1]).write_text("\n".join(md))
    print("\n".join(md))
    return result


if __name__ == "__main__":
    main()
