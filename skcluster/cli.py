"""The ``skcluster`` command line: demo, simulate, train, predict, benchmark.

Exit codes (stable; scripts may rely on them):

* 0: success;
* 1: unexpected internal error (a bug, or a component missing from the
  installation), with a one-line message (the traceback with ``--debug``);
* 2: usage or bad input: bad arguments, unreadable or malformed files, bad
  catalogue values, band images that do not match the model's bands, a
  cut-out wholly off the images, ...;
* 3: an output exists (and ``--overwrite`` was not given) or cannot be
  written;
* 130: interrupted (Ctrl-C, SIGINT): the whole run stops and writes nothing.

Errors print one line on stderr, ``skcluster <command>: error: <what>``.
Outputs are written to a temporary name and renamed when complete, so a
failed run leaves no partial file behind. The heavy lifting lives in the
package (:mod:`skcluster.demo`, :mod:`skcluster.datasets`,
:mod:`skcluster.models`, :mod:`skcluster.streaming`,
:mod:`skcluster.predict`); this module parses arguments, checks inputs and
outputs up front, and maps errors to exit codes. Heavy imports (torch) happen inside the subcommands, so ``--help``
is quick.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

from . import __version__

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_INTERNAL", "EXIT_INPUT", "EXIT_OUTPUT", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_OUTPUT = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

_EXIT_CODES = """\
exit codes:
  0  success
  1  unexpected internal error (run again with --debug for the traceback)
  2  usage or bad input (arguments, unreadable or malformed files, bad
     catalogue values, images whose bands do not match the model, ...)
  3  an output exists (pass --overwrite) or cannot be written
  130  interrupted (Ctrl-C): nothing was written"""


class CLIError(Exception):
    """An error with its exit code and a one-line message."""

    def __init__(self, message, code=EXIT_INPUT):
        super().__init__(message)
        self.code = code


def _message(exc):
    """One line for an exception (KeyError's repr quotes are dropped)."""
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


@contextmanager
def _input_errors(what=None):
    """Turn errors of reading or checking inputs into exit code 2."""
    from .exceptions import CutoutError, DataFormatError

    try:
        yield
    except CLIError:
        raise
    except (OSError, ValueError, KeyError, TypeError, DataFormatError, CutoutError) as exc:
        prefix = f"{what}: " if what else ""
        raise CLIError(prefix + _message(exc), EXIT_INPUT) from exc


@contextmanager
def _output_errors(path):
    """Turn errors of writing the output ``path`` into exit code 3."""
    try:
        yield
    except CLIError:
        raise
    except (FileExistsError, PermissionError, IsADirectoryError) as exc:
        raise CLIError(_message(exc), EXIT_OUTPUT) from exc
    except OSError as exc:
        why = exc.strerror or _message(exc)
        raise CLIError(f"cannot write {str(path)!r}: {why}", EXIT_OUTPUT) from exc


def _check_output_file(path, overwrite):
    """Refuse, before any work, an output file that exists or cannot be written (exit 3).

    Temporary files that a killed earlier run left beside it are removed.
    """
    from .io._util import clean_stale

    path = Path(path)
    if path.is_dir():
        raise CLIError(f"output {str(path)!r} is a folder; give a file name", EXIT_OUTPUT)
    if path.exists() and not overwrite:
        raise CLIError(f"output {str(path)!r} exists; pass --overwrite to replace it", EXIT_OUTPUT)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"output folder does not exist: {str(parent)!r}", EXIT_OUTPUT)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"output folder is not writable: {str(parent)!r}", EXIT_OUTPUT)
    clean_stale(path)


def _check_output_folder(out, names, overwrite):
    from ._paths import check_output_folder

    try:
        check_output_folder(out, names, overwrite=overwrite)
    except (FileExistsError, PermissionError) as exc:
        raise CLIError(_message(exc), EXIT_OUTPUT) from exc


def _number_type(convert, ok, expected, bad_value=None):
    """An argparse ``type``: ``convert(text)`` that must satisfy ``ok``."""
    def parse(text):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(bad_value or f"expected {expected}, got {text!r}")
        return v
    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
_nonnegative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number_type(float, lambda v: 0 < v < float("inf"), "a positive, finite number")
_open_fraction = _number_type(float, lambda v: 0 < v < 1, "a number strictly between 0 and 1")
_n_jobs = _number_type(int, lambda v: v != 0, "an integer (-1: all cores)",
                       "n-jobs must not be 0 (1: serial, -1: all cores)")


def _int_tuple(text):
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def _pattern_types(text):
    if text.strip().lower() in ("all", "none"):
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated pattern types (e.g. 1,2,3,4) or 'all', "
                                         f"got {text!r}")
    return values


def _flag_mask(text):
    if text.strip().lower() in ("none", "off"):
        return "none"
    try:
        v = int(text, 0)
    except ValueError:
        v = -1
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"expected a 32-bit mask (e.g. 0xE000F000) or 'none', got {text!r}")
    return v


def _add_bands(p):
    """``--bands`` of the commands that build a model (demo, train)."""
    p.add_argument("--bands", type=parse_bands, default="krippendorf10",
                   help="energy bands: a preset (krippendorf10, ho3, broad, efeds7) or keV ranges "
                        "0.3-0.6,0.6-1.1,...")


def parse_bands(text):
    """Bands from the command line: a preset name or ``lo-hi,lo-hi,...`` in keV.

    Returns the preset name (str) or a list of (lo, hi) pairs; raises
    ``argparse.ArgumentTypeError`` with the presets listed otherwise.
    """
    from .preprocessing.bands import BAND_PRESETS, resolve_bands

    text = text.strip()
    if text in BAND_PRESETS:
        return text
    bands = []
    for part in text.split(","):
        part = part.strip()
        pieces = part.split("-")
        try:
            if len(pieces) != 2:
                raise ValueError
            bands.append((float(pieces[0]), float(pieces[1])))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad band {part!r} in {text!r}: give a preset ({', '.join(sorted(BAND_PRESETS))}) "
                "or comma-separated keV ranges such as 0.3-0.6,0.6-1.1"
            ) from None
    try:
        return resolve_bands(bands)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: The prior of the masses ``skcluster train`` gives unless --prior says otherwise
#: (and the one it falls back to where a fixed-mass calibration cannot be made).
TRAIN_PRIOR_DEFAULT = "fixed-mass"
TRAIN_PRIOR_FALLBACK = "flat"


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Each default said once: not appended where the help already states it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or isinstance(action.default, bool) or "default" in text or "preset's" in text:
            return text
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------
def _common(p):
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or stage messages")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="print the traceback of an error")


def build_parser():
    """The ``skcluster`` argument parser (subcommands demo, simulate, train, predict, benchmark)."""
    parser = argparse.ArgumentParser(
        prog="skcluster",
        description="Galaxy-cluster masses (log10 M500c / Msun) from eROSITA X-ray data with deep "
                    "ensembles of CNNs, the scikit-learn way.",
        epilog="examples:\n"
               "  skcluster demo                         # the end-to-end demo on the built-in mock\n"
               "  skcluster predict --help               # masses for real clusters\n\n" + _EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skcluster {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="print the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # -- demo -------------------------------------------------------------
    from .demo import DEFAULTS

    p = sub.add_parser(
        "demo", formatter_class=_Formatter,
        help="simulate a mock, train a CNN ensemble, compare with the count-rate method",
        description="The end-to-end demo: simulate a small eFEDS-like mock survey, train the "
                    "standard pipeline (a deep ensemble of CNNs) on part of it, evaluate it on the "
                    "held-out clusters against the count-rate method (a scaling relation on the "
                    "detection fit's count rate), print the table and save figures, the table, "
                    "the predictions and the trained model into the output folder. The defaults "
                    "take under 10 minutes on 2 CPU cores; the seed is fixed.",
        epilog="examples:\n"
               "  skcluster demo\n"
               "  skcluster demo --out my-demo --n-clusters 4000 --n-estimators 10 --overwrite\n"
               "  skcluster demo --n-clusters 300 --n-estimators 2 --max-epochs 3   # a quick look\n\n"
               "files written into --out: model.skc (load with skcluster.persist.load or use with\n"
               "'skcluster predict'), results.md, results.json, predictions.csv, performance.png,\n"
               "clusters.png\n\n" + _EXIT_CODES,
    )
    p.add_argument("--out", default="skcluster-demo", help="output folder (created if missing)")
    p.add_argument("--n-clusters", type=_positive_int, default=DEFAULTS["n_clusters"],
                   help="clusters in the mock survey (at least 20)")
    p.add_argument("--n-estimators", type=_positive_int, default=DEFAULTS["n_estimators"],
                   help="CNNs in the deep ensemble")
    p.add_argument("--max-epochs", type=_positive_int, default=DEFAULTS["max_epochs"],
                   help="training epochs per CNN (early stopping may stop sooner)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed (mock, split, networks)")
    _add_bands(p)
    p.add_argument("--n-jobs", type=_n_jobs, default=None, help="parallel workers for the simulation")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo")
    _common(p)
    p.set_defaults(func=_cmd_demo)

    # -- simulate ---------------------------------------------------------
    p = sub.add_parser(
        "simulate", formatter_class=_Formatter,
        help="write a mock eROSITA survey (catalogue + eSASS event files)",
        description="Simulate a mock eROSITA cluster survey and write it as files: catalog.fits "
                    "(truth and observables, one row per cluster, with the name of its event "
                    "file), events/cluster_NNNNN.fits (eSASS EVENTS tables) and survey.json "
                    "(parameters). Give the number of clusters or the sky area. The folder can be "
                    "used by 'skcluster train --data'.",
        epilog="examples:\n"
               "  skcluster simulate --survey efeds --n-clusters 1000 --seed 1 --out mock_efeds\n"
               "  skcluster simulate --survey erass1 --area 100 --out mock_erass1 --n-jobs 2\n\n"
               + _EXIT_CODES,
    )
    p.add_argument("--survey", choices=("efeds", "erass1", "erosita"), default="efeds", help="survey depth preset")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--n-clusters", type=_positive_int, help="clusters passing the detection cuts")
    size.add_argument("--area", type=_positive_float, metavar="DEG2", help="sky area, deg^2")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--n-jobs", type=_n_jobs, default=None, help="parallel workers (-1: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace a survey already in --out")
    _common(p)
    p.set_defaults(func=_cmd_simulate)

    # -- train ------------------------------------------------------------
    p = sub.add_parser(
        "train", formatter_class=_Formatter,
        help="train the mass model on a mock survey or your own simulation and save it",
        description="Fit the standard pipeline (band binning, resize, smoothing, count scaling, "
                    "redshift join, deep ensemble of CNNs) on one of: a mock survey simulated on the "
                    "fly (--survey, --n-clusters); a folder written by 'skcluster simulate' (--data); "
                    "or your own simulation (--catalog: a truth catalogue with positions, redshift "
                    "and M500, with eSASS event files, --events, any number of clusters per file, or "
                    "band images, --images, with exposure maps), read through the same readers as "
                    "'skcluster predict' (skcluster.io.read_training_set). Save it in the "
                    "skcluster.persist format. The cut-out box (--size-arcmin) and the bands are "
                    "kept in the model; 'skcluster predict' uses them, from event lists or images "
                    "alike.",
        epilog="examples:\n"
               "  skcluster train --bands efeds7 --n-clusters 3000 --n-estimators 5 --max-epochs 40 \\\n"
               "      --out efeds7.skc\n"
               "  skcluster train --bands 0.5-1.2,1.2-2.0,2.0-7.0 --size-arcmin 15 --out ho3.skc\n"
               "  skcluster train --data mock_efeds --bands efeds7 --out from_files.skc\n"
               "  skcluster train --catalog truth.fits --mass-col M500 --mass-unit 1e14Msun \\\n"
               "      --events sim_*.fits --exposure expmap.fits --bands efeds7 --out sim.skc\n"
               "  skcluster train --catalog truth.fits --images img_*.fits --exposure expmap_*.fits \\\n"
               "      --out sim_images.skc    # bands from the image names\n\n"
               "Event files written by simulators often lack PAT_TYP and FLAG: pass --pattern-types all\n"
               "--flag-mask none.\n\n" + _EXIT_CODES,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--survey", choices=("efeds", "erass1", "erosita"), default=None,
                     help="mock survey depth preset (the default source: efeds); 'erosita' mixes every "
                          "depth from eRASS1 to the deep fields and joins each cluster's exposure and "
                          "measured image observables (the background level among them) beside z, so one "
                          "model serves every depth")
    src.add_argument("--data", metavar="DIR", help="train on a folder written by 'skcluster simulate'")
    src.add_argument("--catalog", metavar="CAT",
                     help="train on your own simulation: truth catalogue (ra, dec, z, M500; .fits, .ecsv, "
                          ".csv) with --events or --images")
    files = p.add_mutually_exclusive_group()
    files.add_argument("--events", nargs="+", metavar="FILE",
                       help="eSASS event files of --catalog (RA, DEC, PI in eV), any clusters per file")
    files.add_argument("--images", nargs="+", metavar="FILE",
                       help="band images of --catalog, one per band on one pixel grid (evtool layout)")
    expo = p.add_mutually_exclusive_group()
    expo.add_argument("--exposure", nargs="+", metavar="FILE",
                      help="exposure maps (s) of --catalog, one per band or one for all")
    expo.add_argument("--exposure-seconds", type=_positive_float, metavar="T",
                      help="one vignetted exposure (s) for every cluster of --catalog")
    expo.add_argument("--exposure-col", metavar="NAME",
                      help="column of --catalog with each cluster's vignetted exposure (s) (default: "
                           "exposure, texp, ...)")
    p.add_argument("--exposure-vignetting", choices=("vignetted", "unvignetted"), default="vignetted",
                   help="what the exposure maps hold (as for 'skcluster predict')")
    p.add_argument("--mass-col", metavar="NAME",
                   help="true-mass column of --catalog (default: log10_M500, M500, M500c, ...)")
    p.add_argument("--mass-unit", choices=("auto", "Msun", "log10Msun", "1e14Msun"), default="auto",
                   help="unit of --mass-col (auto: log10 if every value is in 10-17, Msun if > 1e10)")
    p.add_argument("--ra-col", help="column of RA in --catalog (default: RA, RA_CORR, RAJ2000, ...)")
    p.add_argument("--dec-col", help="column of Dec in --catalog (default: DEC, DEC_CORR, DEJ2000, ...)")
    p.add_argument("--z-col", help="column of the redshift in --catalog (default: z, REDSHIFT, ...)")
    p.add_argument("--pattern-types", type=_pattern_types, default=(1, 2, 3, 4), metavar="P1,P2,...|all",
                   help="event PAT_TYP values kept (--events); 'all' keeps every event")
    p.add_argument("--flag-mask", type=_flag_mask, default=None, metavar="MASK|none",
                   help="events with any of these FLAG bits are dropped (--events; default: the DR1 "
                        "mask 0xE000F000); 'none' keeps every event")
    p.add_argument("--allow-empty", action="store_true",
                   help="keep clusters of --catalog with no photons in their box (else an error)")
    p.add_argument("--bands", type=parse_bands, default=None,
                   help="energy bands: a preset (krippendorf10, ho3, broad, efeds7) or keV ranges "
                        "0.3-0.6,0.6-1.1,... (default: krippendorf10; with --images, the bands of the "
                        "image names)")
    p.add_argument("--n-clusters", type=_positive_int, default=None,
                   help="clusters to simulate (default 2000); with --data or --catalog: use the first "
                        "N (default: all)")
    p.add_argument("--depth-strata", type=_positive_int, default=5, metavar="K",
                   help="with --survey erosita: the mock holds equal numbers of selected clusters in K "
                        "bins of log exposure, so shallow (eRASS1-like) clusters are as many as deep "
                        "ones; 1: the preset's own draw (exposure log-uniform before the selection)")
    p.add_argument("--n-estimators", type=_positive_int, default=5, help="CNNs in the deep ensemble")
    p.add_argument("--max-epochs", type=_positive_int, default=80, help="training epochs per CNN")
    p.add_argument("--keep-point-sources", action="store_true",
                   help="train on the photons of the detected point sources too. By default, where the "
                        "training clusters come with a detected point-source list (the built-in mock and "
                        "--data folders: the mock's own detection run), those sources are masked, as "
                        "'skcluster predict --point-sources' masks a published catalogue; --catalog "
                        "simulations have no list and are never masked")
    p.add_argument("--observables", action=argparse.BooleanOptionalAction, default=None,
                   help="also measure the image observables the boosted trees read (net counts in "
                        "apertures, L_X, the background level, hardness ratios; after the point-source "
                        "mask) on each cluster's events and join them beside z (make_mass_pipeline("
                        "observables=True)); event input only, so 'skcluster predict' then needs --events. "
                        "Default: on with --survey erosita (where the background level varies), off "
                        "otherwise")
    p.add_argument("--size-arcmin", type=_positive_float, default=20.0,
                   help="side of the cut-out box, arcmin (kept in the model)")
    p.add_argument("--npix", type=_positive_int, default=50, help="network input pixels per side")
    p.add_argument("--channels", type=_int_tuple, default=None, metavar="C1,C2,...",
                   help="convolution channels per block (default: the package's, 16,32,64)")
    p.add_argument("--dense", type=_int_tuple, default=None, metavar="D1,...",
                   help="dense layer widths (default: the package's, 64)")
    p.add_argument("--prior", choices=("fixed-mass", "flat", "training"), default=None,
                   help="what the predicted masses carry. 'fixed-mass' (default): the model's mean "
                        "response at fixed true mass, measured on calibration clusters it did not train "
                        "on, inverted, so the masses are unbiased at fixed true mass whatever the "
                        "population's mass function (where the calibration clusters are too few or the "
                        "model barely responds to mass, the default falls back to 'flat' with a warning). "
                        "'flat': the training population's mass function and selection divided out (flat "
                        "in log M). 'training': the network's own posterior under the training "
                        "population")
    p.add_argument("--calibration-clusters", type=_positive_int, default=None, metavar="N",
                   help="with the fixed-mass prior on the built-in mock: a fresh mock of N clusters of the "
                        "training population and N more whose lowest mass is raised to 10^14.3 Msun (other "
                        "seeds) calibrate the response, which may bend above 10^14.4 Msun (default: a third "
                        "of the training clusters, at least the 12 a calibration needs)")
    p.add_argument("--calibration-fraction", type=_open_fraction, default=None, metavar="F",
                   help="with the fixed-mass prior on your own clusters (--data, --catalog): the share of "
                        "them held out of training to calibrate the response (default 0.3)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed")
    p.add_argument("--n-jobs", type=_n_jobs, default=None,
                   help="parallel workers for the simulation and the ensemble members")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (e.g. model.skc)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    _common(p)
    p.set_defaults(func=_cmd_train)

    # -- predict ----------------------------------------------------------
    p = sub.add_parser(
        "predict", formatter_class=_Formatter,
        help="masses for a catalogue of clusters from eROSITA images or event lists",
        description="Load a model, read a catalogue (ra, dec, z), cut each cluster out of the "
                    "eROSITA band images (evtool) or event lists in the model's box and bands, "
                    "predict in batches, and write the catalogue back with log10_M500 (log10 "
                    "M500c / Msun), log10_M500_err (dex), in_domain and domain_reason (clusters "
                    "without data -- off the images, unexposed, no photons -- or outside the "
                    "model's training range get no mass: NaN, and the reason) and, where it can be "
                    "known, cutout_complete (False where the box ran off the images or over "
                    "unexposed pixels: padded, use with care) and cutout_coverage (fraction of the "
                    "box with data). Table formats from the suffix: .fits, .fits.gz, .ecsv, .csv.",
        epilog="examples:\n"
               "  skcluster predict --model efeds7.skc --catalog clusters.csv \\\n"
               "      --images img_0300_0600.fits.gz img_0600_1100.fits.gz ... \\\n"
               "      --exposure expmap_0300_0600.fits.gz expmap_0600_1100.fits.gz ... \\\n"
               "      --out masses.fits\n"
               "  skcluster predict --model m.skc --catalog c.fits --images img_*.fits.gz \\\n"
               "      --exposure expmap_norm_*.fits.gz --exposure-vignetting unvignetted --out m.csv\n"
               "  skcluster predict --model m.skc --catalog c.fits --events eb01_*_EventList.fits.gz \\\n"
               "      --exposure-seconds 1200 --out m.ecsv\n\n"
               "Bands are read from file names such as img_0300_0600.fits (eV) or given with\n"
               "--bands, and must be the bands the model was trained on. Exposure maps: vignetted\n"
               "(eSASS expmap withvignetting=yes) by default; maps normalised to an ARF that\n"
               "includes the vignetting (srctool, as the mbproj2d expmap_norm_* maps) or\n"
               "unvignetted maps need --exposure-vignetting unvignetted.\n\n" + _EXIT_CODES,
    )
    p.add_argument("--model", required=True, help="model file (skcluster.persist format)")
    p.add_argument("--catalog", required=True, metavar="CAT", help="catalogue with ra, dec, z")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", nargs="+", metavar="FILE", help="evtool counts images, one per band")
    src.add_argument("--events", nargs="+", metavar="FILE", help="eSASS event lists")
    expo = p.add_mutually_exclusive_group()
    expo.add_argument("--exposure", nargs="+", metavar="FILE",
                      help="exposure maps (s), one per band or one for all")
    expo.add_argument("--exposure-seconds", type=_positive_float, metavar="T",
                      help="one vignetted exposure (s) for every cluster")
    expo.add_argument("--exposure-col", metavar="NAME",
                      help="catalogue column with each cluster's vignetted exposure (s)")
    p.add_argument("--exposure-vignetting", choices=("vignetted", "unvignetted"), default="vignetted",
                   help="what the exposure maps hold (see below)")
    nh = p.add_mutually_exclusive_group()
    nh.add_argument("--nh-col", metavar="NAME",
                    help="catalogue column with each cluster's Galactic N_H (cm^-2, e.g. HI4PI), for models "
                         "that convert count rates to L_X with it (train --survey erosita; default: a "
                         "column named nh, nh_cm2 or nh_hi4pi)")
    nh.add_argument("--nh-cm2", type=_positive_float, metavar="NH",
                    help="one Galactic N_H (cm^-2) for every cluster, for such models")
    p.add_argument("--bands", type=parse_bands, default=None,
                   help="bands of --images in the given order, when the file names do not tell")
    p.add_argument("--point-sources", metavar="CAT", default=None,
                   help="point-source catalogue (RA, DEC and ML_RATE_1 or counts, as the eFEDS/eRASS1 "
                        "main catalogues): its sources are masked before the model sees the data")
    p.add_argument("--pattern-types", type=_pattern_types, default=(1, 2, 3, 4), metavar="P1,P2,...|all",
                   help="event PAT_TYP values kept (--events); 'all' keeps every event, for event "
                        "lists without a PAT_TYP column")
    p.add_argument("--flag-mask", type=_flag_mask, default=None, metavar="MASK|none",
                   help="events with any of these FLAG bits are dropped (--events; default: the DR1 "
                        "mask 0xE000F000); 'none' keeps every event, for event lists without FLAG")
    p.add_argument("--ra-col", help="catalogue column of RA (default: RA, RA_CORR, RAJ2000, ...)")
    p.add_argument("--dec-col", help="catalogue column of Dec (default: DEC, DEC_CORR, DEJ2000, ...)")
    p.add_argument("--z-col", help="catalogue column of the redshift (default: z, REDSHIFT, BEST_Z, ...)")
    p.add_argument("--prefix", default="", help="prefix of the added column names")
    p.add_argument("--out", required=True, metavar="TABLE", help="output catalogue (.fits, .ecsv, .csv)")
    p.add_argument("--batch-size", type=_positive_int, default=1024, help="clusters per batch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _common(p)
    p.set_defaults(func=_cmd_predict)

    # -- benchmark --------------------------------------------------------
    p = sub.add_parser(
        "benchmark", formatter_class=_Formatter,
        help="cross-validated accuracy tables against the baselines",
        description="Run the benchmark tables (skcluster.benchmark.run_benchmark): the CNN "
                    "ensemble and the scalar-observable baselines on cross-validation folds of a "
                    "mock survey; writes results.json, results.md and figures into --out. (The speed "
                    "and memory benchmark is benchmarks/perf.py of a source checkout.)",
        epilog="examples:\n"
               "  skcluster benchmark --quick --out bench-quick\n"
               "  skcluster benchmark --device cuda --out bench-full     # seed-study scale, on a GPU\n"
               "  skcluster benchmark --preset standard --n-clusters 2400 --folds 3 --n-estimators 3 \\\n"
               "      --n-jobs 2 --rows count_rate,gbm_scalars,ensemble_10band_masked --out bench  # 2 CPU cores\n\n"
               + _EXIT_CODES,
    )
    p.add_argument("--quick", action="store_true", help="a small, fast version")
    p.add_argument("--perf", action="store_true", help=argparse.SUPPRESS)  # moved: a clear message
    p.add_argument("--yes", action="store_true",
                   help="run even when the estimate (printed first) exceeds an hour on this machine")
    p.add_argument("--out", default="skcluster-benchmark", help="output folder")
    p.add_argument("--preset", choices=("quick", "standard", "full"), default=None,
                   help="sizes: quick (<10 min on 2 cores), standard (8000 clusters, 5 members), "
                        "full (the default: the seed study's 8000 clusters and 30 members; days on "
                        "a 2-core CPU, use a GPU: --device cuda)")
    p.add_argument("--folds", type=_positive_int, default=None, help="cross-validation folds (preset's)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed")
    p.add_argument("--n-clusters", type=_positive_int, default=None, help="mock clusters (preset's)")
    p.add_argument("--n-estimators", type=_positive_int, default=None, help="ensemble members (preset's)")
    p.add_argument("--max-epochs", type=_positive_int, default=None, help="epochs per member (preset's)")
    p.add_argument("--patience", type=_positive_int, default=None, help="early-stopping patience (preset's)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="training batch size (preset's: 32)")
    p.add_argument("--rows", type=_row_names, default=None, metavar="ROW1,ROW2,...",
                   help="only these rows (names in the docs' benchmark page; e.g. the levers "
                        "ensemble_10band_masked_asinh; default: every standard row)")
    p.add_argument("--device", default=None, help="torch device of the networks, e.g. cuda (preset's: cpu)")
    p.add_argument("--n-jobs", type=_n_jobs, default=None, help="parallel workers")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in --out")
    _common(p)
    p.set_defaults(func=_cmd_benchmark)
    return parser


# ---------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------
def _cmd_demo(args):
    from .demo import DEMO_FILES, run_demo

    _check_output_folder(args.out, DEMO_FILES.values(), args.overwrite)
    with _input_errors():
        run_demo(args.out, n_clusters=args.n_clusters, n_estimators=args.n_estimators,
                 max_epochs=args.max_epochs, bands=args.bands, random_state=args.seed,
                 n_jobs=args.n_jobs, verbose=0 if args.quiet else 1, overwrite=args.overwrite)
    if args.quiet:
        print(str(Path(args.out)))
    return EXIT_OK


_SURVEY_FILES = ("catalog.fits", "survey.json", "events")


def _cmd_simulate(args):
    from .datasets import make_survey, write_survey

    out = Path(args.out)
    _check_output_folder(out, _SURVEY_FILES, args.overwrite)
    with _input_errors():
        data = make_survey(args.survey, n_clusters=args.n_clusters, area_deg2=args.area,
                           random_state=args.seed, n_jobs=args.n_jobs, verbose=not args.quiet)
    with _output_errors(out):
        _write_survey_atomically(data, out, write_survey)
    n = len(data.y)
    print(f"wrote {n} clusters ({data.area_deg2:.1f} deg^2, {args.survey} depth, seed {args.seed}) "
          f"into {str(out)!r}: catalog.fits, survey.json, events/ ({n} files)")
    return EXIT_OK


def _write_survey_atomically(data, out, write_survey):
    """write_survey into a hidden folder beside ``out``, then move the files in, all or none.

    A failure or a Ctrl-C while writing leaves ``out`` as it was (the hidden
    folder ``.<out>.skcluster-tmp-<pid>-*`` is removed; one left by a run
    killed with SIGKILL is removed by the next run). An earlier survey's
    files in ``out`` (only reached with --overwrite) are replaced, and its
    event files that the new survey does not have are removed, so the
    folder holds one consistent survey.
    """
    from .io._util import commit_folder, final_commit, staged_folder

    with staged_folder(out) as stage:
        new = stage / "survey"
        write_survey(data, new)
        remove = []
        if (out / "events").is_dir():
            names = {p.name for p in (new / "events").iterdir()}
            remove = [p for p in (out / "events").glob("cluster_*.fits") if p.name not in names]
        with final_commit():
            commit_folder(new, out, remove=remove)


_OWN_SIMULATION_OPTIONS = ("events", "images", "exposure", "exposure_seconds", "exposure_col", "mass_col",
                           "ra_col", "dec_col", "z_col")


#: read_training_set's words in its messages -> the options of 'skcluster train'
_READER_OPTIONS = (("or pass exposure_seconds", "or give exposure maps (--exposure), --exposure-seconds or "
                    "--exposure-col"),
                   ("pass allow_empty=True", "pass --allow-empty"),
                   ("pass mass_unit as one of", "pass --mass-unit, one of"),
                   ("name it with a parameter", "name it with --ra-col, --dec-col, --z-col, --mass-col or "
                    "--exposure-col"))


def _own_simulation(args):
    """(X, y, description) of --catalog with --events or --images (skcluster.io.read_training_set)."""
    from .io import read_table, read_training_set
    from .io.events import DR1_FLAG_MASK

    if not (args.events or args.images):
        raise CLIError("--catalog needs the simulation's photons: --events FILE ... or --images FILE ...",
                       EXIT_INPUT)
    for what, paths in (("catalogue", [args.catalog]), ("event file", args.events or []),
                        ("band image", args.images or []), ("exposure map", args.exposure or [])):
        for f in paths:
            if not Path(f).is_file():
                raise CLIError(f"{what} not found: {str(f)!r}", EXIT_INPUT)
    mask = DR1_FLAG_MASK if args.flag_mask is None else (None if args.flag_mask == "none" else args.flag_mask)
    with _input_errors(f"reading {args.catalog!r}"):
        table = read_table(args.catalog)
        if args.n_clusters is not None and args.n_clusters < len(table):
            table = table[: args.n_clusters]
        if len(table) == 0:
            raise ValueError("the catalogue has no rows")
    with _input_errors(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ran off the image.*")  # counted below
        try:
            data = read_training_set(
                table, events=args.events, images=args.images, exposures=args.exposure,
                mass_col=args.mass_col, mass_unit=args.mass_unit, ra=args.ra_col, dec=args.dec_col,
                z=args.z_col, exposure_col=args.exposure_col, exposure_seconds=args.exposure_seconds,
                size_arcmin=args.size_arcmin, pattern_types=args.pattern_types, flag_mask=mask,
                allow_empty=args.allow_empty, bands_keV=args.bands if args.images else None,
                npix=args.npix if args.images else None, exposure_vignetting=args.exposure_vignetting)
        except (KeyError, ValueError) as exc:  # the reader's parameter names as this command's options
            text = _message(exc)
            for name, option in _READER_OPTIONS:
                text = text.replace(name, option)
            raise CLIError(text, EXIT_INPUT) from exc
    X, y = data.X, data.y
    if "complete" in X:
        import numpy as np

        bad = np.flatnonzero(~np.asarray(X["complete"], bool) | (np.asarray(X["coverage"]) < 1))
        if bad.size:
            warnings.warn(f"{bad.size} of {len(y)} training box(es) run off the exposed sky (rows "
                          f"{bad[:5].tolist()}{' ...' if bad.size > 5 else ''}); they are padded "
                          "(images) or partly empty (events)")
    kind = f"{len(args.events)} event file(s)" if args.events else f"{len(args.images)} band image(s)"
    return X, y, f"{len(y)} clusters of {args.catalog!r} with {kind}"


def _bands_of(args, X):
    """The model's bands: --bands, else (images) the images' bands, else krippendorf10."""
    if args.bands is not None:
        return args.bands
    if "images" in X:
        bands = X.meta.get("bands_keV")
        if bands is None:
            raise CLIError("cannot tell the energy bands of --images from their names (expected e.g. "
                           "img_0300_0600.fits for 0.3-0.6 keV); pass --bands in the order of the files",
                           EXIT_INPUT)
        return [tuple(b) for b in bands]
    return "krippendorf10"


def _fit_on_images(pipe, X, y, size_arcmin, npix):
    """Fit ``pipe`` on cut-out ``images``; its first step stays the event binner.

    The images were cut in the model's bands, box and pixels, so the binner
    (stateless) is fitted on no events and put back: the saved model
    predicts from event lists and (with ``ImageCutout`` swapped in) images.
    """
    import numpy as np

    from .io import EVENT_DTYPE
    from .sample import ClusterSample

    pixel = 60.0 * size_arcmin / npix
    got = float(X.meta.get("pixel_arcsec", float("nan")))
    if not abs(got / pixel - 1.0) <= 0.02:
        raise CLIError(f"the images' pixels give {got:.2f} arcsec per network pixel, not the "
                       f"{pixel:.2f} arcsec of --npix {npix} over --size-arcmin {size_arcmin:g}; choose a "
                       "box that is a whole number of image pixels", EXIT_INPUT)
    binner = pipe.steps[0][1]
    pipe.set_params(**{pipe.steps[0][0]: "passthrough"})
    pipe.fit(X, y)
    empty = np.empty(1, dtype=object)
    empty[0] = np.zeros(0, EVENT_DTYPE)
    pipe.set_params(**{pipe.steps[0][0]: binner.fit(ClusterSample(events=empty))})
    return pipe


def _train_data(args):
    """(X, y, description) of the training sample."""
    given = [f"--{k.replace('_', '-')}" for k in _OWN_SIMULATION_OPTIONS if getattr(args, k) is not None]
    given += [f"--{k.replace('_', '-')}" for k, default in (("mass_unit", "auto"), ("allow_empty", False),
                                                             ("exposure_vignetting", "vignetted"))
              if getattr(args, k) != default]
    if given and not args.catalog:
        raise CLIError(f"{', '.join(given)} describe(s) your own simulation: give its truth catalogue "
                       "with --catalog", EXIT_INPUT)
    if args.catalog:
        return _own_simulation(args)
    if args.data:
        from .datasets import read_survey

        with _input_errors(f"reading the survey folder {args.data!r}"):
            data = read_survey(args.data)
        X, y = data.X, data.y
        if args.n_clusters is not None and args.n_clusters < len(y):
            X, y = X[: args.n_clusters], y[: args.n_clusters]
        box = float(X.meta.get("size_arcmin", float("nan")))
        if args.size_arcmin > box * (1 + 1e-6):
            raise CLIError(
                f"--size-arcmin {args.size_arcmin:g} is larger than the {box:g} arcmin boxes the "
                f"events of {args.data!r} were cut in; use --size-arcmin {box:g} or less", EXIT_INPUT)
        return X, y, f"{len(y)} clusters read from {args.data!r}"
    n = 2000 if args.n_clusters is None else args.n_clusters
    data, survey = _simulate(args, n, args.seed)
    return data.X, data.y, f"{len(data.y)} mock clusters ({survey}, seed {args.seed})"


def _simulate(args, n, random_state, **overrides):
    """(mock survey, its depth in words) of ``n`` clusters of the training population of --survey.

    ``overrides``: :class:`~skcluster.datasets.SurveyParameters` changed from
    the training population (the calibration's high-mass mock).
    """
    from .datasets import make_survey

    with _input_errors():
        size = max(20.0, float(args.size_arcmin))  # the mock's box; BandBinner cuts the centre
        survey = args.survey or "efeds"
        kw = dict(n_jobs=args.n_jobs, verbose=not args.quiet, size_arcmin=size, **overrides)
        if survey == "erosita" and args.depth_strata > 1:
            from .datasets import make_depth_balanced_survey

            data = make_depth_balanced_survey(n, n_strata=args.depth_strata, random_state=random_state, **kw)
            return data, f"erosita depths, equal numbers in {args.depth_strata} bins of log exposure"
        data = make_survey(survey, n_clusters=n, random_state=random_state, **kw)
    return data, f"{survey} depth"


def _own_clusters(args):
    """True when train reads the user's clusters (--data, --catalog), False on the built-in mock."""
    return bool(args.catalog or args.data)


def _without_fixed_mass(args, reason):
    """The fixed-mass calibration cannot be made: an input error if asked for, else a warning."""
    if args.prior is not None:
        raise CLIError(reason, EXIT_INPUT)
    warnings.warn(f"{reason}; the masses carry the {TRAIN_PRIOR_FALLBACK!r} prior instead", stacklevel=3)


def _calibration_set(args, X, y, what):
    """(X_train, y_train, (X_cal, y_cal, response) or None, what) for the fixed-mass prior.

    The built-in mock: a fresh mock of the training population pooled with
    as many clusters of one whose lowest mass is raised (seeds derived from
    --seed), and the response that may bend above the hinge
    (``MOCK_CALIBRATION_RESPONSE``). Clusters read from files: a random
    share held out of training, and a straight response (they hold no
    sample of massive clusters to measure the bend on). None (with a
    warning, or an error if --prior fixed-mass was asked for) where the
    calibration set would be too small.
    """
    import numpy as np

    from .calibration import MIN_CALIBRATION_CLUSTERS

    own = _own_clusters(args)
    n = len(y)
    fraction = 0.3 if args.calibration_fraction is None else args.calibration_fraction
    n_cal = (int(np.ceil(fraction * n)) if own else
             args.calibration_clusters or max(MIN_CALIBRATION_CLUSTERS, -(-n // 3)))
    if n_cal < MIN_CALIBRATION_CLUSTERS or (own and n - n_cal < 2):
        _without_fixed_mass(args, (
            f"a fixed-mass calibration needs at least {MIN_CALIBRATION_CLUSTERS} calibration clusters "
            f"and 2 to train on; {n} clusters with --calibration-fraction {fraction:g} give {n_cal}" if own else
            f"a fixed-mass calibration needs at least {MIN_CALIBRATION_CLUSTERS} calibration clusters, "
            f"--calibration-clusters gives {n_cal}"))
        return X, y, None, what
    if own:
        order = np.random.default_rng(args.seed).permutation(n)
        cal, train = np.sort(order[:n_cal]), np.sort(order[n_cal:])
        return (X[train], y[train], (X[cal], y[cal], {}),
                f"{what} ({n - n_cal} trained on, {n_cal} held out to calibrate)")
    from .calibration import (MOCK_CALIBRATION_HIGH_MASS_MIN, MOCK_CALIBRATION_RESPONSE,
                              MOCK_CALIBRATION_RESPONSE_DEPTHS)
    from .sample import ClusterSample

    if not args.quiet:
        print(f"simulating {n_cal} calibration clusters of the training population and {n_cal} above "
              f"10^{MOCK_CALIBRATION_HIGH_MASS_MIN} Msun", file=sys.stderr)
    data, _ = _simulate(args, n_cal, np.random.SeedSequence([args.seed, 1]))
    massive, _ = _simulate(args, n_cal, np.random.SeedSequence([args.seed, 2]),
                           log10_m500_min=MOCK_CALIBRATION_HIGH_MASS_MIN)
    response = MOCK_CALIBRATION_RESPONSE_DEPTHS if args.survey == "erosita" else MOCK_CALIBRATION_RESPONSE
    return (X, y, (ClusterSample.concat([data.X, massive.X]), np.concatenate([data.y, massive.y]), response),
            f"{what}, calibrated on {n_cal} more and {n_cal} above 10^{MOCK_CALIBRATION_HIGH_MASS_MIN}")


def _check_calibration_options(args):
    """Refuse calibration options that would do nothing (another prior, or the other kind of data)."""
    given = [f"--{k.replace('_', '-')}" for k in ("calibration_clusters", "calibration_fraction")
             if getattr(args, k) is not None]
    if given and (args.prior or TRAIN_PRIOR_DEFAULT) != "fixed-mass":
        raise CLIError(f"{' and '.join(given)} only apply to the fixed-mass prior, not --prior {args.prior}",
                       EXIT_INPUT)
    own = _own_clusters(args)
    if own and args.calibration_clusters is not None:
        raise CLIError("--calibration-clusters sizes the calibration mock of the built-in mock; with --data "
                       "or --catalog, --calibration-fraction holds out a share of your clusters", EXIT_INPUT)
    if not own and args.calibration_fraction is not None:
        raise CLIError("--calibration-fraction holds out a share of your clusters (--data, --catalog); on the "
                       "built-in mock, --calibration-clusters sizes a fresh calibration mock", EXIT_INPUT)


def _mass_model(args, pipe, X, y, calibration):
    """(model, prior): the fitted pipeline wrapped so its masses carry the asked-for prior."""
    from sklearn.frozen import FrozenEstimator

    prior = args.prior or TRAIN_PRIOR_DEFAULT
    if prior == "training":
        return pipe, prior
    if prior == "fixed-mass" and calibration is not None:
        from sklearn.pipeline import Pipeline

        from .calibration import MassCalibratedRegressor

        # cut-out images are read by the same steps after the event binner (_fit_on_images)
        reader = Pipeline([(pipe.steps[0][0], "passthrough"), *pipe.steps[1:]]) if "images" in X else pipe
        X_cal, y_cal, response = calibration
        try:
            model = MassCalibratedRegressor(FrozenEstimator(reader), **response).fit(X_cal, y_cal)
            model.estimator = model.estimator_ = FrozenEstimator(pipe)  # the same predictions
            return model, prior
        except ValueError as exc:
            _without_fixed_mass(args, f"cannot calibrate the model at fixed mass: {_message(exc)}"
                                + ("; train it longer or on more clusters, or choose --prior flat"
                                   if args.prior is not None else ""))
    from .priors import PriorCorrectedRegressor

    prior = TRAIN_PRIOR_FALLBACK if prior == "fixed-mass" else prior
    with _input_errors():  # the fitted pipeline is kept as it is; only the prior is estimated
        return PriorCorrectedRegressor(FrozenEstimator(pipe), target=prior).fit(X, y), prior


def _cmd_train(args):
    from . import persist
    from .demo import EpochProgress  # built on first use (imports skorch)
    from .models import make_mass_pipeline

    _check_output_file(args.out, args.overwrite)
    _check_calibration_options(args)
    X, y, what = _train_data(args)
    calibration = None
    if (args.prior or TRAIN_PRIOR_DEFAULT) == "fixed-mass":
        X, y, calibration, what = _calibration_set(args, X, y, what)
    mask = "point_sources" in X and "images" not in X and not args.keep_point_sources
    observables = args.survey == "erosita" if args.observables is None else args.observables
    if observables and "images" in X:
        raise CLIError("--observables measures the image observables on event lists; train on --events, "
                       "--data or a mock survey, or leave it out with --images", EXIT_INPUT)
    # every depth's mock varies the Galactic N_H: each cluster's converts its count rate to L_X and is joined
    nh = observables and args.survey == "erosita" and "nh" in X
    cnn = {"max_epochs": args.max_epochs}
    if args.channels:
        cnn["channels"] = args.channels
    if args.dense:
        cnn["dense"] = args.dense
    with _input_errors():
        pipe = make_mass_pipeline(bands=_bands_of(args, X), size_arcmin=args.size_arcmin, npix=args.npix,
                                  n_estimators=args.n_estimators, n_jobs=args.n_jobs,
                                  random_state=args.seed, verbose=0 if args.quiet else 1, flag_domain=True,
                                  extra_scalars=(("exposure",) if args.survey == "erosita" else ())
                                  + (("nh",) if nh else ()),
                                  mask_point_sources=mask, observables=observables,
                                  nh_column="nh" if nh else None, **cnn)
        if not args.quiet and (args.n_jobs in (None, 1)):
            pipe.set_params(model__estimator__callbacks=[EpochProgress()])
        if not args.quiet:
            print(f"training {args.n_estimators} CNN(s) on {what}", file=sys.stderr)
        if "images" in X:
            _fit_on_images(pipe, X, y, args.size_arcmin, args.npix)
        else:
            pipe.fit(X, y)
    from .io._util import final_commit

    model, prior = _mass_model(args, pipe, X, y, calibration)
    with _output_errors(args.out), final_commit():
        persist.save(model, args.out, overwrite=args.overwrite)
    from .preprocessing.bands import format_bands

    nh_text = ("each cluster's Galactic N_H converts its L_X and is joined (predict needs --nh-col or "
               "--nh-cm2); " if nh else "")
    print(f"saved the model to {args.out!r}: {args.n_estimators} CNN(s) trained on {what}; bands "
          f"{format_bands(pipe['bin'].bands_keV_)}; box {args.size_arcmin:g} arcmin in "
          f"{args.npix} x {args.npix} pixels; detected point sources "
          f"{'masked (give skcluster predict --point-sources)' if mask else 'not masked'}; "
          f"{'image observables measured on the events (predict needs --events); ' if observables else ''}"
          f"{nh_text}"
          f"masses carry the {prior!r} prior")
    return EXIT_OK


# -- predict -----------------------------------------------------------------
def _load_model(path):
    from . import persist

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"model file not found: {str(p)!r}", EXIT_INPUT)
    try:
        model = persist.load(p)
    except Exception as exc:  # a broken or foreign file: bad input, whatever the reader raised
        raise CLIError(f"cannot load the model {str(p)!r}: {_message(exc)}", EXIT_INPUT) from exc
    from .predict import check_model

    try:
        check_model(model)
    except ValueError as exc:
        raise CLIError(f"{str(p)!r} is {_message(exc)}", EXIT_INPUT) from None
    return model


#: predict_catalog's parameters as the command line spells them (in its messages).
_PREDICT_OPTIONS = {"exposures": "--exposure", "exposure_seconds": "--exposure-seconds",
                    "exposure_col": "--exposure-col", "prefix": "--prefix", "bands": "--bands",
                    "images": "--images", "events": "--events", "point_sources": "--point-sources",
                    "nh_col": "--nh-col", "nh_cm2": "--nh-cm2"}


def _option_words(text):
    """A library message with ``name=`` of predict_catalog's parameters as command-line options."""
    import re

    return re.sub(r"\b(" + "|".join(_PREDICT_OPTIONS) + r")=", lambda m: _PREDICT_OPTIONS[m.group(1)], text)


def _cmd_predict(args):
    from .exceptions import CutoutError, DataFormatError
    from .io import write_table
    from .io.catalog import _format_for
    from .predict import predict_catalog

    with _input_errors():
        _format_for(args.out)
    _check_output_file(args.out, args.overwrite)
    model = _load_model(args.model)
    try:
        out = predict_catalog(
            model, args.catalog, images=args.images, exposures=args.exposure, events=args.events,
            exposure_seconds=args.exposure_seconds, exposure_col=args.exposure_col,
            exposure_vignetting=args.exposure_vignetting, nh_col=args.nh_col, nh_cm2=args.nh_cm2, bands=args.bands,
            point_sources=args.point_sources, pattern_types=args.pattern_types, flag_mask=args.flag_mask,
            ra_col=args.ra_col, dec_col=args.dec_col, z_col=args.z_col, prefix=args.prefix,
            batch_size=args.batch_size, verbose=not args.quiet)
    except (OSError, ValueError, KeyError, TypeError, DataFormatError, CutoutError) as exc:
        raise CLIError(_option_words(_message(exc)), EXIT_INPUT) from exc
    from .io._util import final_commit

    with _output_errors(args.out), final_commit():
        try:
            write_table(out, args.out, overwrite=args.overwrite)
        except (ValueError, TypeError) as exc:
            raise CLIError(f"cannot write the catalogue as {args.out!r}: {_message(exc)}",
                           EXIT_INPUT) from exc
    _print_predictions(out, args.prefix, args.out)
    return EXIT_OK


def _print_predictions(out, prefix, path, limit=20):
    import numpy as np

    mean, std = np.asarray(out[prefix + "log10_M500"]), np.asarray(out[prefix + "log10_M500_err"])
    reason = np.asarray(out[prefix + "domain_reason"])
    flag = prefix + "cutout_complete"
    complete = np.asarray(out[flag]) if flag in out.colnames else None
    n = len(out)
    if n <= limit:
        ra, dec, z = (np.asarray(out[out.meta[k]], dtype=float) for k in ("RA_COL", "DEC_COL", "Z_COL"))
        print(f"{'row':>4} {'ra':>10} {'dec':>9} {'z':>6}  log10 M500c/Msun   complete")
        for i in range(n):
            mass = (f"{mean[i]:6.2f} +- {std[i]:4.2f}" if np.isfinite(mean[i])
                    else f"no mass ({reason[i]})")
            flag_text = "" if complete is None else ("yes" if complete[i] else "NO (padded)")
            print(f"{i:>4} {ra[i]:>10.5f} {dec[i]:>9.5f} {z[i]:>6.3f}  {mass:<16}  {flag_text}")
    n_bad = 0 if complete is None else int(np.sum(~complete))
    extra = f"; {n_bad} incomplete cut-out(s) flagged" if complete is not None else ""
    n_out = int(np.sum(~np.isfinite(mean)))
    extra += f"; {n_out} without a mass (see {prefix}domain_reason)" if n_out else ""
    print(f"wrote {n - n_out} masses to {path!r}{extra}")


def _cmd_benchmark(args):
    if args.perf:
        raise CLIError("the speed and memory benchmark moved out of the package: run "
                       "'python benchmarks/perf.py' in a source checkout of skcluster (it needs the "
                       "'perf' extra); nothing was run", EXIT_INPUT)
    import importlib

    mod = importlib.import_module("skcluster.benchmark")
    func = "run_benchmark"
    if hasattr(mod, "plan"):
        _check_plan(mod, args)
    run = getattr(mod, func)
    verbose = 0 if args.quiet else 1
    with _new_files_removed_on_failure(args.out):
        result = _run_benchmark(run, args, verbose)
        from .io._util import FINAL_COMMIT_HOOKS

        for hook in list(FINAL_COMMIT_HOOKS):  # its files are all written
            hook()
    table = result.get("table") if isinstance(result, dict) else None
    if table is None and isinstance(result, dict) and "rows" in result and hasattr(mod, "format_table"):
        table = mod.format_table(result)
    if isinstance(table, str) and not args.quiet:
        print(table)
    print(f"results in {str(args.out)!r}")
    return EXIT_OK


@contextmanager
def _new_files_removed_on_failure(folder):
    """Remove what a failed or interrupted run created in ``folder`` (and the folder, if it made it).

    The benchmarks write their files only at the end, each atomically; this
    undoes a run stopped between two of them, and the folder made at its
    start.
    """
    from .io._util import clean_stale

    folder = Path(folder)
    existed = folder.is_dir()
    if existed:
        clean_stale(folder / "*")  # temporary files of a killed earlier run
    before = {p.name for p in folder.iterdir()} if existed else set()
    try:
        yield
    except BaseException:
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name in before:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            if not existed and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _row_names(text):
    rows = tuple(r.strip() for r in text.split(",") if r.strip())
    if not rows:
        raise argparse.ArgumentTypeError("give at least one row name")
    return rows


def _benchmark_sizes(args):
    return {k: v for k, v in dict(preset=args.preset, n_clusters=args.n_clusters,
                                  n_estimators=args.n_estimators, max_epochs=args.max_epochs,
                                  patience=args.patience, batch_size=args.batch_size, device=args.device,
                                  rows=args.rows).items()
            if v is not None}


def _check_plan(mod, args):
    """Say what will run and how long it may take here; refuse > 1 h without --yes."""
    sizes = _benchmark_sizes(args)
    preset = sizes.pop("preset", None)
    if args.folds is not None:
        sizes["n_folds"] = args.folds
    try:
        p = mod.plan(preset=preset, quick=args.quick, **sizes)
    except ValueError as exc:  # e.g. an unknown row name
        raise CLIError(_message(exc), EXIT_INPUT) from exc
    c = p["config"]
    hours = p["seconds_max"] / 3600.0
    print(f"skcluster benchmark: preset {p['preset']!r}: {c.n_clusters} clusters, {c.n_folds} folds, "
          f"{p['n_ensemble_rows']} ensemble rows of {c.n_estimators} CNNs, up to {c.max_epochs} epochs; "
          f"training measured here at {p['cubes_per_second']:.0f} cubes/s ({c.device}): up to "
          f"{hours:.1f} h (early stopping usually ends sooner)", file=sys.stderr)
    if p["seconds_max"] > 3600 and not args.yes:
        raise CLIError(f"this run may take up to {hours:.1f} h on this machine; pass --yes to run it, "
                       "or choose a smaller one (--quick, --preset standard, --n-clusters, "
                       "--n-estimators) or a GPU (--device cuda); nothing was run", EXIT_INPUT)


def _run_benchmark(run, args, verbose):
    sizes = _benchmark_sizes(args)
    return run(args.out, quick=args.quick, n_folds=args.folds, random_state=args.seed,
               n_jobs=args.n_jobs, verbose=verbose, overwrite=args.overwrite, **sizes)


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------
class _Interrupts:
    """Ctrl-C (SIGINT) stops the whole command, even inside a network's training.

    skorch's ``NeuralNet.fit`` catches ``KeyboardInterrupt`` and returns as
    if training had ended, so an ensemble would go on with its next member
    and save a worse model. While a command runs, SIGINT sets a flag and
    raises ``KeyboardInterrupt`` as usual; once the flag is set, every skorch
    callback notification (the first comes right after skorch's catch)
    raises ``KeyboardInterrupt`` again, so the interrupt reaches the command
    line whatever the estimator code does in between.

    Once the command's outputs are in place (its last commit, see
    ``skcluster.io._util.final_commit``), a Ctrl-C no longer stops it: the
    work is done and is kept. With ``keep_ignoring`` (the program itself,
    about to exit), SIGINT stays ignored after a successful command, so that
    the interpreter's shutdown cannot turn a finished run into a traceback.
    """

    def __init__(self, keep_ignoring=False):
        self.flag = False
        self.committed = False
        self.keep_ignoring = keep_ignoring
        self._old = None
        self._patched = None

    def __enter__(self):
        from .io._util import FINAL_COMMIT_HOOKS

        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        FINAL_COMMIT_HOOKS.append(self._committed)
        return self

    def _committed(self):
        self.committed = True

    def _handler(self, signum, frame):
        if self.committed:
            return  # the outputs are written: let the command finish
        self.flag = True
        self._stop_skorch()
        raise KeyboardInterrupt

    def _stop_skorch(self):
        net = sys.modules.get("skorch.net")
        if net is None or self._patched is not None:
            return
        cls = net.NeuralNet
        original = cls.__dict__["notify"]
        guard = self

        def notify(self, *args, **kwargs):
            if guard.flag:
                raise KeyboardInterrupt
            return original(self, *args, **kwargs)

        cls.notify = notify
        self._patched = (cls, original)

    def __exit__(self, exc_type, exc, tb):
        from .io._util import FINAL_COMMIT_HOOKS

        if self._committed in FINAL_COMMIT_HOOKS:
            FINAL_COMMIT_HOOKS.remove(self._committed)
        if self._patched is not None:
            cls, original = self._patched
            cls.notify = original
            self._patched = None
        if self._old is not None:
            if self.keep_ignoring and exc_type is None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            else:
                signal.signal(signal.SIGINT, self._old)
            self._old = None
        return False


def _showwarning(message, category, filename, lineno, file=None, line=None):
    print(f"skcluster: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _output_exception(exc):
    return isinstance(exc, (FileExistsError, PermissionError, IsADirectoryError))


def main(argv=None):
    """Run the ``skcluster`` command; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INPUT
    debug = bool(getattr(args, "debug", False))
    old = warnings.showwarning
    warnings.showwarning = _showwarning
    try:
        # argv None: this is the program (the console script), which exits right after
        with _Interrupts(keep_ignoring=argv is None):
            return args.func(args)
    except CLIError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"skcluster {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"skcluster {args.command}: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line, unless --debug
        if debug:
            import traceback

            traceback.print_exc()
        if _output_exception(exc):
            print(f"skcluster {args.command}: error: {_message(exc)}", file=sys.stderr)
            return EXIT_OUTPUT
        hint = "" if debug else " (run again with --debug for the traceback)"
        print(f"skcluster {args.command}: internal error: {type(exc).__name__}: {_message(exc)}{hint}",
              file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        warnings.showwarning = old


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
