"""The ``skcluster`` argument parser: the commands, their options and the converters of their values.

:mod:`skcluster.cli` runs the commands; the help texts live in
:mod:`skcluster._cli_text`. Bad values exit with code 2 through argparse.
"""

from __future__ import annotations

import argparse

from . import __version__
from ._cli_text import EXIT_CODES as _EXIT_CODES
from ._cli_text import HELP, OPTION_HELP

#: train --physics-forms (skcluster.workflow.train.PHYSICS_FORMS; named here so that --help imports no physics).
PHYSICS_FORMS = ("drawn", "preset")
#: Mock versions (skcluster.datasets.SKY_VERSIONS; named here so that --help imports no physics).
SKY_CHOICES = ("v1", "v2")
#: The network input's pixels per side (skcluster.models.DEFAULT_NPIX; named here so that --help imports no
#: scikit-learn; tests/test_cli.py checks they agree).
DEFAULT_NPIX = 32

__all__ = ["build_parser", "parse_bands"]


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
_nonnegative_float = _number_type(float, lambda v: 0 <= v < float("inf"), "a finite number >= 0")
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
        description=HELP["demo"]["description"],
        epilog=HELP["demo"]["epilog"],
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
    p.add_argument("--n-jobs", type=_n_jobs, default=-1,
                   help="parallel workers for the simulation (-1: all cores; the mock does not depend on it)")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo")
    _common(p)
    p.set_defaults(func="demo")

    # -- simulate ---------------------------------------------------------
    p = sub.add_parser(
        "simulate", formatter_class=_Formatter,
        help="write a mock eROSITA survey (catalogue + eSASS event files)",
        description=HELP["simulate"]["description"],
        epilog=HELP["simulate"]["epilog"],
    )
    p.add_argument("--survey", choices=("efeds", "erass1", "erosita"), default="efeds", help="survey depth preset")
    p.add_argument("--sky", choices=SKY_CHOICES, default=None, help=OPTION_HELP["--sky"])
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--n-clusters", type=_positive_int, help="clusters passing the detection cuts")
    size.add_argument("--area", type=_positive_float, metavar="DEG2", help="sky area, deg^2")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--n-jobs", type=_n_jobs, default=None, help="parallel workers (-1: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace a survey already in --out")
    _common(p)
    p.set_defaults(func="simulate")

    # -- train ------------------------------------------------------------
    p = sub.add_parser(
        "train", formatter_class=_Formatter,
        help="train the mass model on a mock survey or your own simulation and save it",
        description=HELP["train"]["description"],
        epilog=HELP["train"]["epilog"],
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--survey", choices=("efeds", "erass1", "erosita"), default=None,
                     help=OPTION_HELP["train --survey"])
    src.add_argument("--data", metavar="DIR", help="train on a folder written by 'skcluster simulate'")
    p.add_argument("--sky", choices=SKY_CHOICES, default=None, help=OPTION_HELP["--sky"])
    src.add_argument("--catalog", metavar="CAT",
                     help=OPTION_HELP["train --catalog"])
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
                      help=OPTION_HELP["train --exposure-col"])
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
                   help=OPTION_HELP["train --flag-mask"])
    p.add_argument("--allow-empty", action="store_true",
                   help="keep clusters of --catalog with no photons in their box (else an error)")
    p.add_argument("--bands", type=parse_bands, default=None,
                   help=OPTION_HELP["train --bands"])
    p.add_argument("--n-clusters", type=_positive_int, default=None,
                   help=OPTION_HELP["train --n-clusters"])
    p.add_argument("--depth-strata", type=_positive_int, default=5, metavar="K",
                   help=OPTION_HELP["train --depth-strata"])
    p.add_argument("--n-estimators", type=_positive_int, default=5, help="CNNs in the deep ensemble")
    p.add_argument("--max-epochs", type=_positive_int, default=80, help="training epochs per CNN")
    p.add_argument("--keep-point-sources", action="store_true",
                   help=OPTION_HELP["train --keep-point-sources"])
    p.add_argument("--observables", action=argparse.BooleanOptionalAction, default=None,
                   help=OPTION_HELP["train --observables"])
    p.add_argument("--size-arcmin", type=_positive_float, default=20.0,
                   help="side of the cut-out box, arcmin (kept in the model)")
    p.add_argument("--npix", type=_positive_int, default=DEFAULT_NPIX,
                   help="network input pixels per side over the box (50 in the seed study)")
    p.add_argument("--channels", type=_int_tuple, default=None, metavar="C1,C2,...",
                   help="convolution channels per block (default: the package's, 16,32,64)")
    p.add_argument("--dense", type=_int_tuple, default=None, metavar="D1,...",
                   help="dense layer widths (default: the package's, 64)")
    p.add_argument("--prior", choices=("fixed-mass", "flat", "training"), default=None,
                   help=OPTION_HELP["train --prior"])
    p.add_argument("--calibration-clusters", type=_positive_int, default=None, metavar="N",
                   help=OPTION_HELP["train --calibration-clusters"])
    p.add_argument("--calibration-fraction", type=_open_fraction, default=None, metavar="F",
                   help=OPTION_HELP["train --calibration-fraction"])
    p.add_argument("--physics-marginalised", type=_positive_int, default=None, metavar="K",
                   help=OPTION_HELP["train --physics-marginalised"])
    p.add_argument("--physics-width", type=_nonnegative_float, default=1.0, metavar="W",
                   help=OPTION_HELP["train --physics-width"])
    p.add_argument("--physics-forms", choices=PHYSICS_FORMS, default="drawn",
                   help=OPTION_HELP["train --physics-forms"])
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed")
    p.add_argument("--n-jobs", type=_n_jobs, default=None,
                   help="parallel workers for the simulation and the ensemble members")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write (e.g. model.skc)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    _common(p)
    p.set_defaults(func="train")

    # -- predict ----------------------------------------------------------
    p = sub.add_parser(
        "predict", formatter_class=_Formatter,
        help="masses for a catalogue of clusters from eROSITA images or event lists",
        description=HELP["predict"]["description"],
        epilog=HELP["predict"]["epilog"],
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
                    help=OPTION_HELP["predict --nh-col"])
    nh.add_argument("--nh-cm2", type=_positive_float, metavar="NH",
                    help="one Galactic N_H (cm^-2) for every cluster, for such models")
    p.add_argument("--bands", type=parse_bands, default=None,
                   help="bands of --images in the given order, when the file names do not tell")
    p.add_argument("--point-sources", metavar="CAT", default=None,
                   help=OPTION_HELP["predict --point-sources"])
    p.add_argument("--pattern-types", type=_pattern_types, default=(1, 2, 3, 4), metavar="P1,P2,...|all",
                   help=OPTION_HELP["predict --pattern-types"])
    p.add_argument("--flag-mask", type=_flag_mask, default=None, metavar="MASK|none",
                   help=OPTION_HELP["predict --flag-mask"])
    p.add_argument("--ra-col", help="catalogue column of RA (default: RA, RA_CORR, RAJ2000, ...)")
    p.add_argument("--dec-col", help="catalogue column of Dec (default: DEC, DEC_CORR, DEJ2000, ...)")
    p.add_argument("--z-col", help="catalogue column of the redshift (default: z, REDSHIFT, BEST_Z, ...)")
    p.add_argument("--prefix", default="", help="prefix of the added column names")
    p.add_argument("--out", required=True, metavar="TABLE", help="output catalogue (.fits, .ecsv, .csv)")
    p.add_argument("--batch-size", type=_positive_int, default=1024, help="clusters per batch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _common(p)
    p.set_defaults(func="predict")

    # -- benchmark --------------------------------------------------------
    p = sub.add_parser(
        "benchmark", formatter_class=_Formatter,
        help="cross-validated accuracy tables against the baselines",
        description=HELP["benchmark"]["description"],
        epilog=HELP["benchmark"]["epilog"],
    )
    p.add_argument("--quick", action="store_true", help="a small, fast version")
    p.add_argument("--perf", action="store_true", help=argparse.SUPPRESS)  # moved: a clear message
    p.add_argument("--yes", action="store_true",
                   help="run even when the estimate (printed first) exceeds an hour on this machine")
    p.add_argument("--out", default="skcluster-benchmark", help="output folder")
    p.add_argument("--preset", choices=("quick", "standard", "full"), default=None,
                   help=OPTION_HELP["benchmark --preset"])
    p.add_argument("--folds", type=_positive_int, default=None, help="cross-validation folds (preset's)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed")
    p.add_argument("--n-clusters", type=_positive_int, default=None, help="mock clusters (preset's)")
    p.add_argument("--n-estimators", type=_positive_int, default=None, help="ensemble members (preset's)")
    p.add_argument("--max-epochs", type=_positive_int, default=None, help="epochs per member (preset's)")
    p.add_argument("--patience", type=_positive_int, default=None, help="early-stopping patience (preset's)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="training batch size (preset's: 32)")
    p.add_argument("--rows", type=_row_names, default=None, metavar="ROW1,ROW2,...",
                   help=OPTION_HELP["benchmark --rows"])
    p.add_argument("--device", default=None, help="torch device of the networks, e.g. cuda (preset's: cpu)")
    p.add_argument("--n-jobs", type=_n_jobs, default=None, help="parallel workers")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in --out")
    _common(p)
    p.set_defaults(func="benchmark")
    return parser


def _row_names(text):
    rows = tuple(r.strip() for r in text.split(",") if r.strip())
    if not rows:
        raise argparse.ArgumentTypeError("give at least one row name")
    return rows
