"""The end-to-end demo (``skcluster demo``), callable from Python as :func:`run_demo`.

What it does, in the order of the user story of the seed study (Krippendorf
et al. 2023, arXiv:2305.00016):

1. simulate a small eFEDS-like mock survey (:func:`skcluster.datasets.make_survey`,
   preset ``"efeds"``: event lists, truth, detection catalogue);
2. split it into a training and a held-out part;
3. train the standard pipeline (:func:`skcluster.models.make_mass_pipeline`:
   the mock's detected point sources masked, band binning, resize,
   smoothing, count scaling, a radial profile and the redshift joined, a
   deep ensemble of CNNs with a Gaussian likelihood) on the training part;
4. fit the traditional method on the same clusters: a count-rate scaling
   relation (:class:`~skcluster.baselines.ScalingRelationRegressor` on the
   detection fit's count rate ``ML_CTS / exposure``, column ``ml_rate``,
   with the Chiu et al. 2022 redshift terms E(z), D_L(z), 1+z);
5. compare both on the held-out clusters (scatter, bias, 68% coverage,
   mean predicted uncertainty), print the table, save figures, the table,
   the held-out predictions and the trained model.

The defaults are sized to finish in under 10 minutes on 2 CPU cores (see
``README.md`` for the measured time); :func:`run_demo`'s arguments shrink it
for tests.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ._paths import check_output_folder
from ._validation import check_positive_int

__all__ = ["run_demo", "DEMO_FILES", "DEFAULTS", "check_output_folder"]

#: Files the demo writes into its output folder.
DEMO_FILES = {
    "model": "model.skc",
    "results_json": "results.json",
    "results_md": "results.md",
    "predictions": "predictions.csv",
    "performance": "performance.png",
    "clusters": "clusters.png",
}

#: Default sizes of the demo (measured in README.md: under 10 minutes on 2 CPU cores).
DEFAULTS = dict(n_clusters=2000, n_estimators=5, max_epochs=30, test_size=0.25)

#: Literature values quoted beside the demo's table (fractional scatter in ln M):
#: Krippendorf et al. 2023 (arXiv:2305.00016), eFEDS mocks, 30-CNN ensemble
#: 18.8%, count-rate method 19.7%.
LITERATURE = {"cnn_ensemble": 0.188, "count_rate": 0.197}


def __getattr__(name):
    # EpochProgress (a skorch callback) moved to skcluster.nn.progress; model files written before
    # name it skcluster.demo:EpochProgress and load as that class. Imported when first asked for, so
    # that importing this module (the command line's --help) does not import torch.
    if name == "EpochProgress":
        from .nn.progress import EpochProgress

        return EpochProgress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _metrics(y, mean, std):
    from .metrics import interval_coverage, mass_bias, mass_scatter, mean_predicted_scatter

    return {
        "scatter": mass_scatter(y, mean),
        "bias": mass_bias(y, mean),
        "coverage_68": float(interval_coverage(y, mean, std, level=0.68)),
        "mean_std": mean_predicted_scatter(std),
    }


def _table(rows):
    """Markdown table of the held-out metrics (fractions shown as percentages)."""
    lines = ["| model | scatter sigma_lnM | bias | 68% coverage | mean predicted std |",
             "|---|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {100 * m['scatter']:.1f}% | {100 * m['bias']:+.1f}% | "
                     f"{m['coverage_68']:.2f} | {100 * m['mean_std']:.1f}% |")
    return "\n".join(lines)


def _log(verbose, msg):
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def _save_figure(fig, path):
    fig.savefig(path, dpi=110)


def _write_text(path, text):
    Path(path).write_text(text)


def run_demo(out="skcluster-demo", *, n_clusters=DEFAULTS["n_clusters"],
             n_estimators=DEFAULTS["n_estimators"], max_epochs=DEFAULTS["max_epochs"],
             test_size=DEFAULTS["test_size"], bands="krippendorf10", random_state=0, n_jobs=-1,
             cnn_params=None, verbose=1, overwrite=False):
    """Simulate a mock, train the CNN ensemble, compare with the count-rate method, save.

    Parameters
    ----------
    out : path-like, default="skcluster-demo"
        Output folder (created if missing): ``model.skc`` (the fitted
        pipeline, :mod:`skcluster.persist` format), ``results.json`` and
        ``results.md`` (metrics, settings, timings), ``predictions.csv``
        (held-out clusters: truth and both predictions), ``performance.png``
        and ``clusters.png``.
    n_clusters : int, default=2000
        Clusters of the mock survey (passing the eFEDS cuts).
    n_estimators : int, default=5
        Ensemble members (30 in the seed study).
    max_epochs : int, default=30
        Epochs per member (early stopping may end a member sooner).
    test_size : float, default=0.25
        Held-out fraction.
    bands : str or sequence of (float, float), default="krippendorf10"
        Energy bands of the network input (preset or (lo, hi) keV pairs);
        ``"efeds7"`` gives a model for the real eFEDS images.
    random_state : int, default=0
        Seeds the mock, the split and the ensemble: the same value gives the
        same demo.
    n_jobs : int, default=-1
        Parallel workers for the simulation (-1: all cores; the mock is the
        same, bit for bit, for any value; the ensemble members train
        vectorised: one stacked network already keeps 2 cores busy).
    cnn_params : dict, default=None
        Extra :func:`~skcluster.models.make_mass_pipeline` arguments (e.g. a
        smaller ``channels`` for a quick run; ``mask_point_sources=False``
        keeps the point sources in the images).
    verbose : int, default=1
        0 silent; 1 stage messages and progress bars (simulation, binning,
        members, epochs) on stderr and the table on stdout.
    overwrite : bool, default=False
        Replace the files of an earlier demo in ``out``. Without it an
        existing file stops the demo before any work.

    Returns
    -------
    dict
        ``metrics`` ({model: {scatter, bias, coverage_68, mean_std}}),
        ``table`` (Markdown), ``n_train``, ``n_test``, ``settings``,
        ``seconds`` (per stage) and ``files`` (name -> path).
    """
    from sklearn.model_selection import train_test_split

    from . import persist
    from .baselines import catalog_scalars, count_rate_method
    from .datasets import make_survey
    from .io import write_table
    from .io.atomic import commit_files, staged_folder
    from .io.interrupts import final_commit
    from .models import make_mass_pipeline
    from .plotting import plot_model_input, plot_performance

    for name, value, lo in (("n_clusters", n_clusters, 20), ("n_estimators", n_estimators, 1),
                            ("max_epochs", max_epochs, 1)):
        check_positive_int(value, name, "run_demo", minimum=lo)
    if not (isinstance(test_size, float) and 0 < test_size < 1):
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    out = Path(out)
    check_output_folder(out, DEMO_FILES.values(), overwrite=overwrite)
    seconds = {}
    t_start = time.perf_counter()

    # 1. the mock
    _log(verbose, f"[demo] 1/4 simulating an eFEDS-like mock survey of {n_clusters} clusters "
                  f"(seed {random_state})")
    t0 = time.perf_counter()
    data = make_survey("efeds", n_clusters=int(n_clusters), random_state=random_state, n_jobs=n_jobs,
                       verbose=bool(verbose))
    cat = data.catalog
    X = data.X.assign(ml_rate=catalog_scalars(cat)["ml_rate"])
    y = data.y
    seconds["simulate"] = time.perf_counter() - t0
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_size,
                                           random_state=random_state)
    X_train, X_test, y_train, y_test = X[idx_train], X[idx_test], y[idx_train], y[idx_test]

    # 2. the CNN ensemble
    _log(verbose, f"[demo] 2/4 training the CNN deep ensemble ({n_estimators} members, up to "
                  f"{max_epochs} epochs each) on {len(y_train)} clusters")
    t0 = time.perf_counter()
    params = dict(cnn_params or {})
    params.setdefault("mask_point_sources", True)  # the mock's detected point sources, as skcluster train
    pipe = make_mass_pipeline(bands=bands, n_estimators=int(n_estimators), max_epochs=int(max_epochs),
                              random_state=random_state, verbose=1 if verbose else 0, **params)
    if verbose:
        from .nn.progress import EpochProgress

        pipe.set_params(model__estimator__callbacks=[EpochProgress()])
    pipe.fit(X_train, y_train)
    seconds["train"] = time.perf_counter() - t0

    # 3. the count-rate method, and both on the held-out clusters
    _log(verbose, f"[demo] 3/4 count-rate baseline and evaluation on {len(y_test)} held-out clusters")
    t0 = time.perf_counter()
    baseline = count_rate_method()
    baseline.fit(X_train, y_train)
    from .streaming import predict_stream

    res = predict_stream(pipe, X_test, verbose=bool(verbose), desc="predict held-out")
    mean_cnn, std_cnn = res.mean, res.std
    mean_cr, std_cr = baseline.predict(X_test, return_std=True)
    seconds["evaluate"] = time.perf_counter() - t0
    names = {"cnn_ensemble": f"CNN deep ensemble ({n_estimators} members)",
             "count_rate": "count rate (ML_CTS / exposure)"}
    metrics = {"cnn_ensemble": _metrics(y_test, mean_cnn, std_cnn),
               "count_rate": _metrics(y_test, mean_cr, std_cr)}
    table = _table({names[k]: v for k, v in metrics.items()})

    # 4. files (written only now, all or none: a failure above leaves nothing behind)
    _log(verbose, f"[demo] 4/4 writing the model, table, predictions and figures into {str(out)!r}")
    t0 = time.perf_counter()
    # Every file is written into a hidden folder beside `out` and moved in at the end, all
    # or none (a failure or a Ctrl-C leaves `out` as it was).
    with staged_folder(out) as stage:
        files = {k: out / v for k, v in DEMO_FILES.items()}  # where they end up
        staged = {k: stage / v for k, v in DEMO_FILES.items()}  # where they are written
        persist.save(pipe, staged["model"])

        from astropy.table import Table

        pred = Table({
            "ra": np.asarray(X_test["ra"]), "dec": np.asarray(X_test["dec"]), "z": np.asarray(X_test["z"]),
            "log10_M500_true": y_test,
            "log10_M500_cnn": mean_cnn, "log10_M500_cnn_err": std_cnn,
            "log10_M500_count_rate": mean_cr, "log10_M500_count_rate_err": std_cr,
        })
        write_table(pred, staged["predictions"])

        fig = plot_performance(y_test, {"CNN ensemble": (mean_cnn, std_cnn), "count rate": (mean_cr, std_cr)},
                               z=np.asarray(X_test["z"]),
                               title=f"skcluster demo: {len(y_test)} held-out mock eFEDS clusters")
        _save_figure(fig, staged["performance"])

        order = np.argsort(y_test)
        show = [int(order[-1]), int(order[len(order) // 2]), int(order[0])]  # most massive, median, least
        fig = plot_model_input(pipe, X_test, indices=show, y=y_test,  # the model's bands and pixels
                               theta500_arcmin=np.asarray(cat["theta500_arcmin"])[idx_test],
                               labels=["most massive", "median", "least massive"])
        _save_figure(fig, staged["clusters"])
        seconds["write"] = time.perf_counter() - t0
        seconds["total"] = time.perf_counter() - t_start

        settings = {"n_clusters": int(n_clusters), "n_estimators": int(n_estimators),
                    "max_epochs": int(max_epochs), "test_size": float(test_size),
                    "bands_keV": [list(b) for b in pipe["bin"].bands_keV_],
                    "size_arcmin": float(pipe["bin"].size_arcmin), "npix": int(pipe["bin"].npix),
                    "random_state": random_state, "cnn_params": {k: (list(v) if isinstance(v, tuple) else v)
                                                                 for k, v in params.items()},
                    "epochs_run": [int(m.n_epochs_) for m in pipe["model"].estimators_]}
        md = "\n".join([
            f"# skcluster demo: {len(y_test)} held-out mock eFEDS clusters",
            "",
            table,
            "",
            "Scatter and bias in ln M (sigma_lnM = ln 10 x std of the log10 residuals). "
            "Literature, eFEDS mocks (Krippendorf et al. 2023): 30-CNN ensemble 18.8%, "
            "count-rate method 19.7%.",
            "",
            f"Trained on {len(y_train)} clusters; {n_estimators} members, up to {max_epochs} epochs "
            f"(epochs run: {settings['epochs_run']}); seed {random_state}. "
            f"Time: {seconds['total']:.0f} s (simulation {seconds['simulate']:.0f} s, training "
            f"{seconds['train']:.0f} s).",
            "",
        ])
        result = {
            "metrics": metrics, "model_names": names, "table": table, "n_train": int(len(y_train)),
            "n_test": int(len(y_test)), "settings": settings, "seconds": seconds,
            "literature_scatter": LITERATURE,
            "files": {k: str(v) for k, v in files.items()},
        }
        _write_text(staged["results_md"], md)
        _write_text(staged["results_json"], json.dumps(result, indent=1, default=str))
        if out.exists():
            check_output_folder(out, DEMO_FILES.values(), overwrite=overwrite)  # again: no surprise
        with final_commit():
            commit_files([(staged[k], files[k]) for k in DEMO_FILES])
    if verbose:
        print(f"\nHeld-out mock clusters ({len(y_test)}; trained on {len(y_train)}):\n")
        print(table)
        print("\n(literature, eFEDS mocks: CNN ensemble 18.8%, count rate 19.7%; Krippendorf et al. 2023)")
        print(f"\nWrote {', '.join(DEMO_FILES.values())} into {str(out)!r} in {seconds['total']:.0f} s.")
    return result
