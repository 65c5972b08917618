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
failed run leaves no partial file behind. The work is the library's
(:mod:`skcluster.demo`, :mod:`skcluster.datasets`,
:func:`skcluster.workflow.train_mass_model`, :func:`skcluster.predict_catalog`,
:mod:`skcluster.benchmark`); this module parses the arguments
(:mod:`skcluster._cli_parser`), calls the library, prints, and maps errors to
exit codes. Heavy imports (torch) happen inside the subcommands, so
``--help`` is quick.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from ._cli_parser import build_parser, parse_bands  # noqa: F401  (parse_bands: the --bands converter)
from ._text import printable

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_INTERNAL", "EXIT_INPUT", "EXIT_OUTPUT", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_OUTPUT = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it



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
    return printable(text)


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
    from ._paths import check_output_file

    try:
        check_output_file(path, overwrite)
    except (OSError, ValueError) as exc:
        raise CLIError(_message(exc), EXIT_OUTPUT) from exc


def _check_output_folder(out, names, overwrite):
    from ._paths import check_output_folder

    try:
        check_output_folder(out, names, overwrite=overwrite)
    except (FileExistsError, PermissionError) as exc:
        raise CLIError(_message(exc), EXIT_OUTPUT) from exc


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
    from .datasets import make_survey
    from .datasets.files import write_survey_atomically

    out = Path(args.out)
    _check_output_folder(out, _SURVEY_FILES, args.overwrite)
    with _input_errors():
        data = make_survey(args.survey, n_clusters=args.n_clusters, area_deg2=args.area, sky=args.sky,
                           random_state=args.seed, n_jobs=args.n_jobs, verbose=not args.quiet)
    with _output_errors(out):
        write_survey_atomically(data, out)
    n = len(data.y)
    version = f", mock {args.sky}" if args.sky else ""
    print(f"wrote {n} clusters ({data.area_deg2:.1f} deg^2, {args.survey} depth{version}, seed {args.seed}) "
          f"into {str(out)!r}: catalog.fits, survey.json, events/ ({n} files)")
    return EXIT_OK


_OWN_SIMULATION_OPTIONS = ("events", "images", "exposure", "exposure_seconds", "exposure_col", "mass_col",
                           "ra_col", "dec_col", "z_col")

#: The library's parameter names -> the command line's options, in the messages of train and predict.
_OPTIONS = {"exposures": "--exposure", "exposure_seconds": "--exposure-seconds", "exposure_col": "--exposure-col",
            "prefix": "--prefix", "bands": "--bands", "images": "--images", "events": "--events",
            "point_sources": "--point-sources", "nh_col": "--nh-col", "nh_cm2": "--nh-cm2",
            "allow_empty": "--allow-empty", "mass_unit": "--mass-unit", "size_arcmin": "--size-arcmin",
            "npix": "--npix", "prior": "--prior", "calibration_clusters": "--calibration-clusters",
            "calibration_fraction": "--calibration-fraction", "observables": "--observables",
            "physics_marginalised": "--physics-marginalised", "physics_width": "--physics-width",
            "physics_forms": "--physics-forms"}


def _option_words(text):
    """A library message with ``name=`` of its parameters as command-line options."""
    import re

    names = "|".join(_OPTIONS)
    text = re.sub(r"\b(" + names + r")=(?=[^\s,;)])", lambda m: _OPTIONS[m.group(1)] + " ", text)
    text = text.replace("pass mass_unit as one of", "pass --mass-unit, one of").replace(
        "name it with a parameter", "name it with --ra-col, --dec-col, --z-col, --mass-col or --exposure-col")
    return re.sub(r"\b(" + names + r")=", lambda m: _OPTIONS[m.group(1)], text)


@contextmanager
def _library_errors():
    """The library's input errors as exit code 2, its parameter names as this command's options."""
    from .exceptions import CutoutError, DataFormatError

    try:
        yield
    except CLIError:
        raise
    except (OSError, ValueError, KeyError, TypeError, DataFormatError, CutoutError) as exc:
        raise CLIError(_option_words(_message(exc)), EXIT_INPUT) from exc


def _own_simulation(args):
    """(X, y, description) of --catalog with --events or --images (skcluster.workflow.read_training_set)."""
    from .io import read_table
    from .io.events import DR1_FLAG_MASK
    from .workflow import read_training_set

    if not (args.events or args.images):
        raise CLIError("--catalog needs the simulation's photons: --events FILE ... or --images FILE ...",
                       EXIT_INPUT)
    mask = DR1_FLAG_MASK if args.flag_mask is None else (None if args.flag_mask == "none" else args.flag_mask)
    with _input_errors(f"reading {args.catalog!r}"):
        if not Path(args.catalog).is_file():
            raise FileNotFoundError(f"catalogue not found: {args.catalog!r}")
        table = read_table(args.catalog)
        if args.n_clusters is not None and args.n_clusters < len(table):
            table = table[: args.n_clusters]
        if len(table) == 0:
            raise ValueError("the catalogue has no rows")
    with _library_errors():
        data = read_training_set(
            table, events=args.events, images=args.images, exposures=args.exposure,
            mass_col=args.mass_col, mass_unit=args.mass_unit, ra=args.ra_col, dec=args.dec_col,
            z=args.z_col, exposure_col=args.exposure_col, exposure_seconds=args.exposure_seconds,
            size_arcmin=args.size_arcmin, pattern_types=args.pattern_types, flag_mask=mask,
            allow_empty=args.allow_empty, bands=args.bands if args.images else None,
            npix=args.npix if args.images else None, exposure_vignetting=args.exposure_vignetting)
    X, y = data.X, data.y
    kind = f"{len(args.events)} event file(s)" if args.events else f"{len(args.images)} band image(s)"
    return X, y, f"{len(y)} clusters of {args.catalog!r} with {kind}"


def _train_data(args):
    """(X, y, description) of the user's training sample, or (None, None, None) for the built-in mock."""
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
        n = len(data.y) if args.n_clusters is None else min(args.n_clusters, len(data.y))
        return data.X, data.y, f"{n} clusters read from {args.data!r}"
    return None, None, None


def _cmd_train(args):
    from . import persist
    from .workflow.train import train_mass_model

    _check_output_file(args.out, args.overwrite)
    X, y, what = _train_data(args)
    with _library_errors():
        got = train_mass_model(
            X, y, survey=args.survey, sky=args.sky, n_clusters=args.n_clusters, depth_strata=args.depth_strata,
            bands=args.bands, size_arcmin=args.size_arcmin, npix=args.npix, n_estimators=args.n_estimators,
            max_epochs=args.max_epochs, channels=args.channels, dense=args.dense,
            mask_point_sources=not args.keep_point_sources, observables=args.observables, prior=args.prior,
            calibration_clusters=args.calibration_clusters, calibration_fraction=args.calibration_fraction,
            physics_marginalised=args.physics_marginalised, physics_width=args.physics_width,
            physics_forms=args.physics_forms,
            random_state=args.seed, n_jobs=args.n_jobs, verbose=0 if args.quiet else 1, description=what)
    from .io.interrupts import final_commit

    with _output_errors(args.out), final_commit():
        persist.save(got.model, args.out, overwrite=args.overwrite)
    from .preprocessing.bands import format_bands

    nh_text = ("each cluster's Galactic N_H converts its L_X and is joined (predict needs --nh-col or "
               "--nh-cm2); " if got.nh else "")
    print(f"saved the model to {args.out!r}: {args.n_estimators} CNN(s) trained on {got.description}; bands "
          f"{format_bands(got.bands)}; box {args.size_arcmin:g} arcmin in "
          f"{args.npix} x {args.npix} pixels; detected point sources "
          f"{'masked (give skcluster predict --point-sources)' if got.masked else 'not masked'}; "
          f"{'image observables measured on the events (predict needs --events); ' if got.observables else ''}"
          f"{nh_text}"
          f"{_physics_text(got.physics)}"
          f"masses carry the {got.prior!r} prior")
    return EXIT_OK


def _physics_text(physics):
    """What ``skcluster train`` says of a physics-marginalised model (empty for one physics)."""
    if physics is None:
        return ""
    return (f"physics marginalised over {len(physics['draws'])} draws of a prior of "
            f"{len(physics['prior']['ranges'])} parameters (width {physics['width']:g}; recorded in the model; "
            "predict writes the photon, network and physics parts of the std); ")


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


def _cmd_predict(args):
    from .io import write_table
    from .io.catalog import format_for
    from .predict import predict_catalog

    with _input_errors():
        format_for(args.out)
    _check_output_file(args.out, args.overwrite)
    model = _load_model(args.model)
    with _library_errors():
        out = predict_catalog(
            model, args.catalog, images=args.images, exposures=args.exposure, events=args.events,
            exposure_seconds=args.exposure_seconds, exposure_col=args.exposure_col,
            exposure_vignetting=args.exposure_vignetting, nh_col=args.nh_col, nh_cm2=args.nh_cm2, bands=args.bands,
            point_sources=args.point_sources, pattern_types=args.pattern_types, flag_mask=args.flag_mask,
            ra_col=args.ra_col, dec_col=args.dec_col, z_col=args.z_col, prefix=args.prefix,
            batch_size=args.batch_size, verbose=not args.quiet)
    from .io.interrupts import final_commit

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
    from .io.atomic import new_files_removed_on_failure
    from .io.interrupts import committed

    with new_files_removed_on_failure(args.out):
        result = _run_benchmark(run, args, verbose)
        committed()  # its files are all written
    table = result.get("table") if isinstance(result, dict) else None
    if table is None and isinstance(result, dict) and "rows" in result and hasattr(mod, "format_table"):
        table = mod.format_table(result)
    if isinstance(table, str) and not args.quiet:
        print(table)
    print(f"results in {str(args.out)!r}")
    return EXIT_OK


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
def _showwarning(message, category, filename, lineno, file=None, line=None):
    print(f"skcluster: warning: {_option_words(printable(message))}", file=sys.stderr)


def _output_exception(exc):
    return isinstance(exc, (FileExistsError, PermissionError, IsADirectoryError))


def main(argv=None):
    """Run the ``skcluster`` command; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INPUT
    from .io.interrupts import CommandInterrupts

    debug = bool(getattr(args, "debug", False))
    old = warnings.showwarning
    warnings.showwarning = _showwarning
    try:
        # argv None: this is the program (the console script), which exits right after
        with CommandInterrupts(keep_ignoring=argv is None):
            return globals()[f"_cmd_{args.func}"](args)  # the command's function, by name
    except CLIError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"skcluster {args.command}: error: {printable(exc)}", file=sys.stderr)
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
