"""Physics family: a physics-marginalised ensemble against the default one on physics of other forms (issue 35).

The mock is the largest error on real data, and real data brings other
*forms* of physics, not other numbers in the same forms. This benchmark
trains on one family of physics and tests on the other:

1. Three models are trained on ``--n-train`` clusters of the eFEDS preset
   each: ``fixed``, the standard pipeline on the preset's physics;
   ``marginalised``, the same pipeline trained on
   :func:`~skcluster.datasets.make_marginalised_survey` (``--members`` physics
   draws of :data:`~skcluster.datasets.DEFAULT_PHYSICS_PRIOR`, each member on
   its own draw: ``member_groups="physics_draw"``, ``--members-per-draw``
   members per draw); and the count-rate relation
   (:func:`~skcluster.baselines.count_rate_method`, on the detection fit's
   count rate) fitted on ``fixed``'s training mock and carried over, both
   ways: ``count_rate`` inverted (L(M) fitted and inverted, as astronomers
   do) and ``count_rate_fwd`` forward (log M regressed on the rate). The
   fixed ensemble has as many members as the marginalised one. Each
   ensemble is also calibrated at fixed mass (``fixed_cal``,
   ``marginalised_cal``: what ``skcluster train --prior fixed-mass`` does,
   on ``--n-cal`` clusters drawn as its training clusters were, pooled with
   as many above 10^14.3 Msun; for the marginalised model, draws of the same
   prior). Like with like: the raw networks (posterior means) are compared
   with the forward relation, the calibrated ones with the inverted one.
2. They are tested on a held-out mock of the built-in family (the preset's
   physics, ``--n-test`` clusters, another seed: in-family) and on a mock of
   the other family (:data:`~skcluster.datasets.OTHER_PHYSICS_PRIOR`:
   Vikhlinin profiles, a Gaussian PSF, the Despali et al. 2016 mass
   function, a broken L_X-M). The other-family test mock is a mixture of
   ``--test-draws`` draws of its prior
   (``make_marginalised_survey(prior=OTHER_PHYSICS_PRIOR)``), not one draw
   (``make_survey(physics="other")``): one draw is one random point of the
   family, whose bias depends on where that draw fell; a mixture scores the
   models over the family's spread, as unknown physics of the real sky would.
3. The other way round: ``fixed_other`` (the other prior's centre,
   :data:`~skcluster.datasets.OTHER_PHYSICS`), ``marginalised_other`` (draws
   of :data:`~skcluster.datasets.OTHER_PHYSICS_PRIOR`) and ``count_rate_other``
   (fitted on ``fixed_other``'s training mock), tested on a mixture of
   ``--test-draws`` draws of the built-in prior. Every model predicts every
   test mock.
4. Per model and test mock: the slope of predicted against true log M (a
   least-squares fit of predicted on true, :func:`~skcluster.metrics.mass_slope`),
   the median bias (dex), the scatter (ln M), raw 68% and 95% coverage, the
   mean predicted std and, for the marginalised models, the mean photon,
   network and physics parts (``predict_components``); paired bootstraps
   over the same clusters of the scatter ratio of the marginalised model
   to the fixed one and to the count rate, and of the differences in
   slope, |median bias| and coverage; the issue's targets beside them.
5. The distance plot: mocks at
   :func:`~skcluster.datasets.shift_physics` (DEFAULT_PHYSICS_PRIOR, size)
   for size 0, 1, 2, 3 half-widths (``--n-shift`` clusters each, the same
   seed: paired skies), where the built-in models' 68% coverage and the
   marginalised model's mean physics and total std are measured against
   the size of the physics change.
6. ``--split-control`` adds ``fixed_split``: the fixed model's mock cut into
   ``--members`` random equal shares, each member trained on one share, as
   the marginalised members are on their draws: what the split of the
   clusters alone costs, without other physics.

The network is the cheaper one (``NETWORK``: 32 pixels, channels 8-16-32,
one dense layer of 32; 10 bands, point sources masked, radial profile),
up to 80 epochs, patience 15. Writes ``physics_family.json``,
``physics_family.md``, ``physics_family.png`` and ``predictions.npz`` to
``--out`` (refused if they exist, without ``--overwrite``), after the
built-in direction and again at the end, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from learning_curve import interval, provenance  # noqa: E402  (beside this script)
from mass_bins import bin_label  # noqa: E402
from scipy.stats import norm  # noqa: E402

from skcluster.baselines import count_rate_method  # noqa: E402
from skcluster.benchmark import catalog_scalars, paired_scatter_ratio  # noqa: E402
from skcluster.calibration import MOCK_CALIBRATION_HIGH_MASS_MIN, MOCK_CALIBRATION_RESPONSE  # noqa: E402
from skcluster.datasets import (  # noqa: E402
    DEFAULT_PHYSICS_PRIOR,
    OTHER_PHYSICS,
    OTHER_PHYSICS_PRIOR,
    make_marginalised_survey,
    make_survey,
    shift_physics,
)
from skcluster.metrics import mass_scatter  # noqa: E402
from skcluster.models import make_mass_pipeline  # noqa: E402
from skcluster.sample import ClusterSample  # noqa: E402
from skcluster.workflow.train import _with_prior  # noqa: E402

HERE = Path(__file__).resolve().parent
FILES = ("physics_family.json", "physics_family.md", "physics_family.png", "predictions.npz")

#: The cheaper network (issue 38), passed explicitly; the rest are make_mass_pipeline's defaults
#: (10 bands, point sources masked, radial profile).
NETWORK = dict(npix=32, channels=(8, 16, 32), dense=(32,))

SIZES = {
    "quick": dict(n_train=60, n_test=40, n_shift=30, n_cal=30, members=2, test_draws=2, max_epochs=2, patience=2),
    "default": dict(n_train=3000, n_test=1500, n_shift=600, n_cal=1000, members=5, test_draws=5, max_epochs=80,
                    patience=15),
}

#: The seed (plus --seed) of the fixed model's training mock (feature_distance.py simulates it again).
FIXED_TRAINING_SEED = 1000

#: Distances of the physics change, in half-widths of the prior (shift_physics).
SHIFT_SIZES = (0.0, 1.0, 2.0, 3.0)

#: model -> (what it is, the count-rate relation beside it, the fixed model beside it). Like with like: a network's
#: raw output (a posterior mean) beside the forward count-rate regression, the same kind of estimate; a network
#: calibrated at fixed mass (``*_cal``) beside the inverted count-rate relation, as astronomers fit it.
MODELS = {
    "fixed": ("preset physics", None, None),
    "marginalised": ("draws of the built-in prior", "count_rate_fwd", "fixed"),
    "fixed_cal": ("fixed, calibrated at fixed mass on clusters of the preset physics", None, None),
    "marginalised_cal": ("marginalised, calibrated at fixed mass on clusters of draws of the built-in prior",
                         "count_rate", "fixed_cal"),
    "fixed_split": ("preset physics, each member on its own 1/K share (--split-control)", None, None),
    "count_rate": ("count-rate relation, inverted (fitted as L(M) and inverted), on fixed's mock", None, None),
    "count_rate_fwd": ("count-rate relation, forward (log M regressed on the rate), on fixed's mock", None, None),
    "fixed_other": ("other family's centre", None, None),
    "marginalised_other": ("draws of the other prior", "count_rate_fwd_other", "fixed_other"),
    "fixed_other_cal": ("fixed_other, calibrated at fixed mass on clusters of the other family's centre", None,
                        None),
    "marginalised_other_cal": ("marginalised_other, calibrated at fixed mass on clusters of draws of the other "
                               "prior", "count_rate_other", "fixed_other_cal"),
    "count_rate_other": ("count-rate relation, inverted, on fixed_other's mock", None, None),
    "count_rate_fwd_other": ("count-rate relation, forward, on fixed_other's mock", None, None),
}

#: test mock -> (what it is, the models for which it is the held-out family, those for which it is in-family)
TESTS = {
    "builtin": ("built-in family, preset physics (held out: another seed)", (),
                ("marginalised", "marginalised_cal")),
    "other_mix": ("other family, mixture of draws of its prior", ("marginalised", "marginalised_cal"),
                  ("marginalised_other", "marginalised_other_cal")),
    "builtin_mix": ("built-in family, mixture of draws of its prior", ("marginalised_other", "marginalised_other_cal"),
                    ("marginalised", "marginalised_cal")),
}

#: --one-form: the preset with one ingredient of the other family (its forms at the other family's centre), which
#: names the form that the held-out family's bias comes from: test mock -> (what, the parameters it takes).
ONE_FORM = {
    "one_profile": ("the preset with the other family's profile (Vikhlinin et al. 2006, its centre)",
                    ("profile_form", "core_cusp_cc", "vik_alpha_cc", "vik_rs_r500", "vik_epsilon")),
    "one_psf": ("the preset with the other family's PSF (Gaussian)", ("psf_form",)),
    "one_mass_function": ("the preset with the other family's mass function (Despali et al. 2016)",
                          ("mass_function_model",)),
    "one_lx_m": ("the preset with the other family's L_X-M (broken power law, its centre)",
                 ("lx_break_msun", "lx_slope_below_break")),
}
TESTS.update({name: (what, (), ()) for name, (what, _) in ONE_FORM.items()})

Z68, Z95 = norm.ppf(0.84), norm.ppf(0.975)

#: Bins of true log10 M500c (Msun) of the mass-binned table: the groups, where the held-out family's L_X-M break
#: and the prior's curvature act most, then clusters near and above the pivot.
MASS_BINS = (-np.inf, 13.8, 14.1, np.inf)
#: The models of the mass-binned table (the raw networks and the count rate of the same kind beside them).
BINNED_MODELS = ("fixed", "marginalised", "count_rate_fwd")


def _log(msg):
    print(f"[physics_family {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _metric_rows(y, mean, std):
    """Slope, |median bias| (dex) and 68/95% coverage of predictions on bootstrap rows.

    ``y``, ``mean``, ``std`` have shape (..., n_clusters): the last axis is
    reduced, so a matrix of resampled clusters gives one value per resample.
    """
    x = y - y.mean(axis=-1, keepdims=True)
    r = np.abs(mean - y)
    return {"slope": np.sum(x * (mean - mean.mean(axis=-1, keepdims=True)), axis=-1) / np.sum(x * x, axis=-1),
            "abs_median_bias_dex": np.abs(np.median(mean - y, axis=-1)),
            "coverage_68": np.mean(r <= Z68 * std, axis=-1), "coverage_95": np.mean(r <= Z95 * std, axis=-1)}


def paired_differences(y, a, b, n_boot=1000, random_state=0):
    """Differences ``a - b`` of slope, |median bias| and coverage, with a paired bootstrap over clusters.

    Parameters
    ----------
    y : ndarray of shape (n_clusters,)
        True log10 M500c.
    a, b : tuple of ndarray
        ``(mean, std)`` of two models on the same clusters.
    n_boot : int, default=1000
    random_state : int, default=0

    Returns
    -------
    dict
        ``{metric: [difference, 2.5%, 97.5%]}`` for ``slope``,
        ``abs_median_bias_dex``, ``coverage_68`` and ``coverage_95`` (the
        same resampled clusters score both models).
    """
    idx = np.random.default_rng(random_state).integers(0, y.size, (n_boot, y.size))
    point = {k: va - vb for (k, va), vb in zip(_metric_rows(y, *a).items(), _metric_rows(y, *b).values())}
    boot = {k: va - vb for (k, va), vb in zip(_metric_rows(y[idx], a[0][idx], a[1][idx]).items(),
                                              _metric_rows(y[idx], b[0][idx], b[1][idx]).values())}
    return {k: [float(point[k]), *map(float, np.quantile(boot[k], [0.025, 0.975]))] for k in point}


def scores(y, pred):
    """The metrics of one model on one test mock (``pred``: mean, std and, if any, the std's parts)."""
    m = _metric_rows(y, pred["mean"], pred["std"])
    out = {k: float(v) for k, v in m.items()}
    out.update(median_bias_dex=float(np.median(pred["mean"] - y)), scatter=mass_scatter(y, pred["mean"]),
               mean_std=float(np.mean(pred["std"])))
    for part in ("photon_std", "network_std", "physics_std"):
        if part in pred:
            out[f"mean_{part}"] = float(np.mean(pred[part]))
    return out


def _with_scalars(bunch):
    """``(X, y)`` of a mock with the detection catalogue's scalars (the count rate's ``ml_rate``) joined."""
    return bunch.X.assign(**catalog_scalars(bunch.catalog)), np.asarray(bunch.y, dtype=np.float64)


def train(name, data, cfg, args):
    """Fit one model of ``MODELS`` on ``(X, y)``; returns the fitted estimator and its fit time (s)."""
    X, y = data
    t = time.perf_counter()
    if name.startswith("count_rate"):
        direction = "forward" if name.startswith("count_rate_fwd") else "inverse"
        model = count_rate_method().set_params(direction=direction).fit(X, y)
    else:
        groups = "physics_draw" if name.startswith("marginalised") or name == "fixed_split" else None
        model = make_mass_pipeline(**NETWORK, n_estimators=cfg["members"] * args.members_per_draw,
                                   member_groups=groups, random_state=args.seed, max_epochs=cfg["max_epochs"],
                                   patience=cfg["patience"], verbose=1).fit(X, y)
    seconds = time.perf_counter() - t
    _log(f"{name}: trained on {len(y)} clusters in {seconds:.0f} s")
    return model, seconds


def calibrate(name, model, data):
    """``(calibrated model, seconds)``: ``model`` calibrated at fixed mass on ``data``, as ``skcluster train`` does.

    ``data``: calibration clusters drawn as the model's training clusters
    were (the same physics, or draws of the same prior), a mock of the
    training population pooled with one above 10^14.3 Msun; the response
    bends above the hinge (``MOCK_CALIBRATION_RESPONSE``), with train's
    fallback to one bend at every redshift.
    """
    X, y = data
    t = time.perf_counter()
    try:
        cal, _ = _with_prior(model, X, y, (X, y, dict(MOCK_CALIBRATION_RESPONSE)), "fixed-mass")
    except ValueError as exc:   # a response too weak to invert: said in the report, not hidden
        _log(f"{name}: the fixed-mass calibration refused: {exc}")
        return None, str(exc)
    seconds = time.perf_counter() - t
    _log(f"{name}: calibrated on {len(y)} clusters in {seconds:.0f} s ({_bend(cal)})")
    return cal, seconds


def _bend(cal):
    """Which response a calibration kept: train's first choice, or its fallback."""
    if cal.hinge is None:
        return "a straight response"
    return ("a bend above the hinge that changes with z" if cal.bend_degree else
            "one bend at every z: the bend that changes with z refused")


def calibrated(cal, raw, X):
    """A calibrated model's prediction from its network's ``raw`` one (the std's parts scale with the std)."""
    mean, std = cal.calibrate(raw["mean"], raw["std"], np.asarray(X["z"], dtype=np.float64))
    factor = std / raw["std"]
    return {"mean": mean, "std": std, **{k: v * factor for k, v in raw.items() if k.endswith("_std") and k != "std"}}


def predict(model, X):
    """Mean, std and (for a physics-marginalised ensemble) its photon, network and physics parts."""
    if not hasattr(model, "steps"):
        mean, std = model.predict(X, return_std=True)
        return {"mean": np.asarray(mean, dtype=np.float64), "std": np.asarray(std, dtype=np.float64)}
    comp = model[-1].predict_components(model[:-1].transform(X))
    keys = ["mean", "std"] + [k for k in ("photon_std", "network_std", "physics_std") if k in comp]
    return {k: np.asarray(comp[k], dtype=np.float64) for k in keys}


def split_shares(X, y, n_shares, seed):
    """The fixed mock with a ``physics_draw`` column of ``n_shares`` random equal shares (no physics behind them).

    The control of ``--split-control``: an ensemble with
    ``member_groups="physics_draw"`` on it trains each member on 1/K of the
    clusters, as the marginalised one does, on one physics.
    """
    share = np.random.default_rng(seed).permutation(np.arange(len(y)) % n_shares)
    return X.assign(physics_draw=share.astype(np.int64)), y


def _fixed_mock(n, seed, n_jobs, **physics):
    """``(X, y)`` of ``n`` clusters of the eFEDS preset (with ``physics`` overrides), the count rate joined."""
    return _with_scalars(make_survey("efeds", n_clusters=n, random_state=seed, n_jobs=n_jobs, verbose=False,
                                     **physics))


def _mixed_mock(n, draws, seed, prior, n_jobs, **overrides):
    """``(X, y)`` of ``n`` clusters in ``draws`` physics draws of ``prior``, the count rate joined."""
    return _with_scalars(make_marginalised_survey("efeds", n_clusters=n, n_draws=draws, prior=prior,
                                                  random_state=seed, n_jobs=n_jobs, verbose=False, **overrides))


def held_out_mocks(cfg, seed, n_jobs, one_form=False):
    """``{name: (what, make)}``: the built-in direction's test mocks, ``make()`` simulating ``(X, y)``.

    In-family, the other family's mixture, with ``one_form`` the preset with one of the other family's
    forms at a time, then the mocks ``shift<size>`` of the distance table (``SHIFT_SIZES``); each from its
    own seed (``seed`` + a fixed offset), so another script can simulate the same clusters again.
    """
    n, k = cfg["n_test"], cfg["test_draws"]
    out = {"builtin": ("in-family test mock", lambda: _fixed_mock(n, 3000 + seed, n_jobs)),
           "other_mix": ("other-family test mock", lambda: _mixed_mock(n, k, 3100 + seed, OTHER_PHYSICS_PRIOR,
                                                                       n_jobs))}
    if one_form:
        for j, (name, (what, keys)) in enumerate(ONE_FORM.items()):
            out[name] = (what, lambda keys=keys, j=j: _fixed_mock(n, 3400 + j + seed, n_jobs,
                                                                  **{key: OTHER_PHYSICS[key] for key in keys}))
    for size in SHIFT_SIZES:
        out[f"shift{size:g}"] = (f"shifted mock, {size:g} half-widths", lambda size=size: _fixed_mock(
            cfg["n_shift"], 3200 + seed, n_jobs, **shift_physics(DEFAULT_PHYSICS_PRIOR, size)))
    return out


def _arguments(argv):
    """``(args, cfg)``: the parsed command line and the sizes of the run (checked)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (seconds, meaningless numbers)")
    ap.add_argument("--n-train", type=int, default=None, help="training clusters of each model (default 3000)")
    ap.add_argument("--n-test", type=int, default=None, help="clusters of each test mock (default 1500)")
    ap.add_argument("--n-shift", type=int, default=None, help="clusters of each shifted mock (default 600)")
    ap.add_argument("--n-cal", type=int, default=None,
                    help="calibration clusters of each model's fixed-mass calibration, as many again above "
                         "10^14.3 Msun (default 1000)")
    ap.add_argument("--members", type=int, default=None,
                    help="physics draws of the marginalised models (default 5); the fixed ones get as many members")
    ap.add_argument("--members-per-draw", type=int, default=1, help="members per physics draw (default 1)")
    ap.add_argument("--test-draws", type=int, default=None, help="physics draws of each mixed test mock (default 5)")
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--full-draws", action="store_true",
                    help="give every physics draw of the marginalised training mocks --n-train clusters (K times the "
                         "simulation; each member then sees as many clusters as a fixed member), not a 1/K share")
    ap.add_argument("--no-reverse", action="store_true", help="skip training on the other family")
    ap.add_argument("--one-form", action="store_true",
                    help="also test on the preset with one ingredient of the other family at a time (profile, PSF, "
                         "mass function, L_X-M; its centre's values): which form the held-out bias comes from")
    ap.add_argument("--split-control", action="store_true",
                    help="also train fixed_split: the fixed mock, each member on its own 1/K share (the marginalised "
                         "model's split of the data without its physics draws)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the paired intervals")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=None, help="workers of the simulation")
    ap.add_argument("--out", default=str(HERE / "results" / "physics_family"))
    ap.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --out")
    args = ap.parse_args(argv)
    cfg = dict(SIZES["quick" if args.quick else "default"])
    for key in ("n_train", "n_test", "n_shift", "n_cal", "members", "test_draws", "max_epochs", "patience"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    for key, value in (*((k, cfg[k]) for k in ("members", "test_draws", "max_epochs", "patience")),
                       ("members_per_draw", args.members_per_draw), ("n_boot", args.n_boot)):
        if value < 1:
            ap.error(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    for key in ("n_train", "n_test", "n_shift", "n_cal"):
        if cfg[key] < max(3, cfg["members"], cfg["test_draws"]):
            ap.error(f"--{key.replace('_', '-')}={cfg[key]} is too few: at least 3 and one per physics draw")
    return args, cfg


def main(argv=None):
    args, cfg = _arguments(argv)
    from skcluster._paths import check_output_folder

    out = check_output_folder(args.out, FILES, overwrite=args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/physics_family.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    _log(f"config {cfg}, {args.members_per_draw} member(s) per draw, network {NETWORK}")
    s = args.seed

    def fixed_mock(n, seed, **physics):
        return _fixed_mock(n, seed, args.n_jobs, **physics)

    per_draw = cfg["members"] if args.full_draws else 1   # training clusters: n_train per draw, or in all

    def mixed_mock(n, draws, seed, prior, **overrides):
        return _mixed_mock(n, draws, seed, prior, args.n_jobs, **overrides)

    def pooled(make):
        """Calibration clusters: ``make`` (seed, **overrides) of the training population and above the mass cut."""
        (Xa, ya), (Xb, yb) = make(0), make(1, log10_m500_min=MOCK_CALIBRATION_HIGH_MASS_MIN)
        return ClusterSample.concat([Xa, Xb]), np.concatenate([ya, yb])

    n_cal = cfg["n_cal"]
    run = {"models": {}, "calibrated": {}, "refused": {}, "fit_seconds": {}, "tests": {}, "preds": {}, "shift": {},
           "simulation_seconds": 0.0}

    def simulate(what, make):
        t = time.perf_counter()
        data = make()
        run["simulation_seconds"] += time.perf_counter() - t
        _log(f"simulated {what}: {len(data[1])} clusters in {time.perf_counter() - t:.0f} s")
        return data

    def calibration_sets(what, seed, prior, **physics):
        """Calibration clusters of the fixed model (``physics``) and of the marginalised one (draws of ``prior``)."""
        fixed = simulate(f"{what}fixed calibration mock", lambda: pooled(
            lambda k, **kw: fixed_mock(n_cal, seed + 10 * k + s, **physics, **kw)))
        marg = simulate(f"{what}marginalised calibration mock", lambda: pooled(
            lambda k, **kw: mixed_mock(n_cal, cfg["members"], seed + 100 + 10 * k + s, prior, **kw)))
        return fixed, marg

    def fit_and_score(directions, calibrations, tests):
        for name, data in directions:
            run["models"][name], run["fit_seconds"][name] = train(name, data, cfg, args)
        for name, data in calibrations:
            cal, seconds = calibrate(name, run["models"][name], data)
            if cal is None:
                run["refused"][f"{name}_cal"] = seconds   # (the reason it refused)
                continue
            run["calibrated"][f"{name}_cal"] = cal
            run["fit_seconds"][f"{name}_cal"] = run["fit_seconds"][name] + seconds
        for test, (X, y) in tests.items():
            run["tests"][test] = y
            for name, model in run["models"].items():
                if (test, name) not in run["preds"]:
                    run["preds"][(test, name)] = predict(model, X)
            for name, cal in run["calibrated"].items():
                if (test, name) not in run["preds"]:
                    run["preds"][(test, name)] = calibrated(cal, run["preds"][(test, name[:-4])], X)

    # the built-in family: fixed, marginalised and the count rate on the fixed model's mock
    train_fixed = simulate("fixed training mock", lambda: fixed_mock(cfg["n_train"], FIXED_TRAINING_SEED + s))
    train_marg = simulate("marginalised training mock", lambda: mixed_mock(
        cfg["n_train"] * per_draw, cfg["members"], 1100 + s, DEFAULT_PHYSICS_PRIOR))
    mocks = held_out_mocks(cfg, s, args.n_jobs, args.one_form)
    tests = {name: simulate(what, make) for name, (what, make) in mocks.items() if not name.startswith("shift")}
    cal_fixed, cal_marg = calibration_sets("", 1400, DEFAULT_PHYSICS_PRIOR)
    forward = [("fixed", train_fixed), ("marginalised", train_marg), ("count_rate", train_fixed),
               ("count_rate_fwd", train_fixed)]
    if args.split_control:
        forward.append(("fixed_split", split_shares(*train_fixed, cfg["members"], s)))
    fit_and_score(forward, [("fixed", cal_fixed), ("marginalised", cal_marg)], tests)
    for size in SHIFT_SIZES:
        X, y = simulate(*mocks[f"shift{size:g}"])
        run["shift"][size] = {"y": y, **{name: predict(run["models"][name], X) for name in ("fixed", "marginalised")}}
    _report(run, cfg, args, command, t0, out)
    if not args.no_reverse:
        # the other way round: trained on the other family, tested on draws of the built-in one
        train_fixed = simulate("other-family fixed training mock", lambda: fixed_mock(
            cfg["n_train"], 1200 + s, **OTHER_PHYSICS))
        train_marg = simulate("other-family marginalised training mock", lambda: mixed_mock(
            cfg["n_train"] * per_draw, cfg["members"], 1300 + s, OTHER_PHYSICS_PRIOR))
        tests["builtin_mix"] = simulate("built-in mixed test mock", lambda: mixed_mock(
            cfg["n_test"], cfg["test_draws"], 3300 + s, DEFAULT_PHYSICS_PRIOR))
        cal_fixed, cal_marg = calibration_sets("other-family ", 1600, OTHER_PHYSICS_PRIOR, **OTHER_PHYSICS)
        fit_and_score([("fixed_other", train_fixed), ("marginalised_other", train_marg),
                       ("count_rate_other", train_fixed), ("count_rate_fwd_other", train_fixed)],
                      [("fixed_other", cal_fixed), ("marginalised_other", cal_marg)], tests)
        _report(run, cfg, args, command, t0, out)
    print((out / "physics_family.md").read_text())
    return 0


def _targets(sc, cr, ratio, held_out):
    """The issue's targets for one row: held-out family (against the carried-over count rate) or in-family.

    The issue asks for a slope "at least the count-rate relation's", written when the carried-over count
    rate was too flat (0.80); a count rate that comes out too steep (above 1) would make "at least" ask for
    a steeper, worse slope, so the check is the distance from 1: |slope - 1| no larger than the count rate's.
    """
    if held_out:
        checks = [("slope >= 0.9", sc["slope"] >= 0.9),
                  ("|slope - 1| <= count rate's", abs(sc["slope"] - 1.0) <= abs(cr["slope"] - 1.0)),
                  ("|bias| <= count rate's", sc["abs_median_bias_dex"] <= cr["abs_median_bias_dex"]),
                  ("cov68 0.60-0.80", 0.60 <= sc["coverage_68"] <= 0.80), ("cov95 >= 0.90", sc["coverage_95"] >= 0.90)]
    else:
        checks = [("scatter <= 1.05x fixed (interval)", ratio[2] <= 1.05),
                  ("cov68 0.63-0.73", 0.63 <= sc["coverage_68"] <= 0.73)]
    return {text: bool(ok) for text, ok in checks}


def _evaluate(run, n_boot, seed):
    """Scores of every (test, model), the marginalised models' paired comparisons and targets, the distance
    table's and the mass-binned table's rows."""
    rows = []
    for (test, name), pred in run["preds"].items():
        y = run["tests"][test]
        row = {"test": test, "model": name, "scores": scores(y, pred)}
        _, cr_name, fixed_name = MODELS[name]
        split = "fixed_split" if name == "marginalised" else None
        for other, key in ((fixed_name, "vs_fixed"), (cr_name, "vs_count_rate"), (split, "vs_fixed_split")):
            if other is not None and (test, other) in run["preds"]:
                ref = run["preds"][(test, other)]
                row[key] = {"scatter_ratio": list(paired_scatter_ratio(y, pred["mean"], ref["mean"], n_boot=n_boot,
                                                                       random_state=seed)),
                            **paired_differences(y, (pred["mean"], pred["std"]), (ref["mean"], ref["std"]),
                                                 n_boot, seed)}
        held_out, in_family = TESTS[test][1:]
        if name in held_out + in_family and "vs_count_rate" in row and "vs_fixed" in row:
            cr = scores(y, run["preds"][(test, cr_name)])
            row["targets"] = _targets(row["scores"], cr, row["vs_fixed"]["scatter_ratio"], name in held_out)
        rows.append(row)
    shift = []
    for size, res in run["shift"].items():
        entry = {"size": size, "n": len(res["y"])}
        for name in ("fixed", "marginalised"):
            entry[name] = scores(res["y"], res[name])
        shift.append(entry)
    return rows, shift, _by_mass(run)


def _by_mass(run):
    """Rows ``{"test", "model", "mass_bin", "scores"}`` of the raw models in bins of true mass (``MASS_BINS``)."""
    out = []
    for (test, name), pred in run["preds"].items():
        if name not in BINNED_MODELS:
            continue
        y = run["tests"][test]
        for lo, hi in zip(MASS_BINS[:-1], MASS_BINS[1:]):
            keep = (y >= lo) & (y < hi)
            if keep.sum() >= 3:
                out.append({"test": test, "model": name, "mass_bin": bin_label(lo, hi), "n": int(keep.sum()),
                            "scores": scores(y[keep], {k: v[keep] for k, v in pred.items()})})
    return out


def _report(run, cfg, args, command, t0, out):
    """Write the table, JSON, predictions and figure of what is done so far."""
    rows, shift, by_mass = _evaluate(run, args.n_boot, args.seed)
    summary = provenance(command, {**cfg, "members_per_draw": args.members_per_draw, "full_draws": args.full_draws, "network": NETWORK,
                                   "seed": args.seed, "n_boot": args.n_boot}, t0, run["simulation_seconds"])
    summary.update(rows=rows, by_mass=by_mass, shift=shift, fit_seconds=run["fit_seconds"], calibration_refused=run["refused"],
                   calibration_response={k: _bend(cal) for k, cal in run["calibrated"].items()})
    (out / "physics_family.json").write_text(json.dumps(summary, indent=1))
    arrays = {f"{test}__y_true": y for test, y in run["tests"].items()}
    for (test, name), pred in run["preds"].items():
        arrays.update({f"{test}__{name}__{k}": v for k, v in pred.items()})
    for size, res in run["shift"].items():
        arrays[f"shift{size:g}__y_true"] = res["y"]
        for name in ("fixed", "marginalised"):
            arrays.update({f"shift{size:g}__{name}__{k}": v for k, v in res[name].items()})
    np.savez_compressed(out / "predictions.npz", **arrays)
    (out / "physics_family.md").write_text(_markdown(rows, shift, summary, cfg, args, command))
    _plot(shift, out / "physics_family.png")


def _markdown(rows, shift, summary, cfg, args, command):
    """The Markdown report: the main table, the paired comparisons with the targets, the distance table."""
    members = cfg["members"] * args.members_per_draw
    lines = [f"Command: `{command}`", "",
             f"{summary['header']}; {summary['total_seconds']:.0f} s in all, {summary['simulation_seconds']:.0f} s "
             "simulating", "",
             f"Each model trained on {cfg['n_train']} eFEDS-preset clusters"
             + (" (the marginalised ones on that many per physics draw)" if args.full_draws else "")
             + f"; ensembles of {members} members "
             f"({cfg['members']} physics draws x {args.members_per_draw} for the marginalised ones) of the network "
             f"{NETWORK} (10 bands, point sources masked, radial profile), <= {cfg['max_epochs']} epochs, patience "
             f"{cfg['patience']}. Test mocks of {cfg['n_test']} clusters; the mixed ones hold {cfg['test_draws']} "
             "physics draws. Bias: median of predicted - true log M (dex); scatter in ln M; slope of a least-squares "
             "fit of predicted on true log M; raw coverage of the predicted std.", "",
             "| test mock | model | slope | median bias | scatter | cov68 | cov95 | mean std (dex) "
             "| photon / network / physics std | fit time |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sc = r["scores"]
        parts = " / ".join(f"{sc[f'mean_{p}']:.3f}" for p in ("photon_std", "network_std", "physics_std")) \
            if "mean_physics_std" in sc else "-"
        fit = summary["fit_seconds"].get(r["model"], float("nan"))
        lines.append(f"| {r['test']} | {r['model']} | {sc['slope']:.2f} | {sc['median_bias_dex']:+.3f} | "
                     f"{100 * sc['scatter']:.1f}% | {sc['coverage_68']:.2f} | {sc['coverage_95']:.2f} | "
                     f"{sc['mean_std']:.3f} | {parts} | {fit:.0f} s |")
    present = dict.fromkeys(r["model"] for r in rows)
    lines += ["", "Models: " + "; ".join(f"`{k}`: {MODELS[k][0]}" for k in present) + ".", ""]
    lines += [f"`{k}`: the fixed-mass calibration refused ({why})." for k, why in
              summary.get("calibration_refused", {}).items()]
    lines += ["Fixed-mass calibrations: " + "; ".join(f"`{k}`: {v}" for k, v in
                                                     summary.get("calibration_response", {}).items()) + "."]
    tested = dict.fromkeys(r["test"] for r in rows)
    lines += ["", "Test mocks: " + "; ".join(f"`{k}`: {TESTS[k][0]}" for k in tested) + ".", "",
              f"Paired bootstrap over the same clusters ({args.n_boot} resamples, 95% intervals): each marginalised "
              "model against its fixed one and against the count-rate relation of the same kind carried over the "
              "same way (the raw network, a posterior mean, against the forward relation; the one calibrated at "
              "fixed mass against the inverted relation; differences are marginalised - other), and the issue's targets (held-out family: slope >= 0.9 and "
              "as close to 1 as the count rate's, |median bias| <= the count rate's, 68% coverage 0.60-0.80, 95% >= 0.90; "
              "in-family: scatter <= 1.05x fixed, upper end of the interval, 68% coverage 0.63-0.73).", "",
              "| test mock | model | against | scatter ratio | slope diff | abs(median bias) diff (dex) | cov68 diff "
              "| cov95 diff | targets |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        targets = r.get("targets")
        tick = "; ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in targets.items()) if targets else "-"
        for key, against in (("vs_fixed", MODELS[r["model"]][2]), ("vs_count_rate", MODELS[r["model"]][1]),
                             ("vs_fixed_split", "fixed_split")):
            if key in r:
                p = r[key]
                diffs = " | ".join(f"{p[k][0]:+.3f} [{p[k][1]:+.3f}, {p[k][2]:+.3f}]"
                                   for k in ("slope", "abs_median_bias_dex", "coverage_68", "coverage_95"))
                lines.append(f"| {r['test']} | {r['model']} | {against} | {interval(p['scatter_ratio'])} | {diffs} "
                             f"| {tick if key == 'vs_count_rate' else ''} |")
    lines += ["", "By true mass (log10 M500c, Msun), the raw models: where the physics the mock does not know "
              "bites (the groups, for L_X-M) the physics part should be larger.", "",
              "| test mock | model | mass bin | clusters | median bias | cov68 | mean std | mean physics std |",
              "|---|---|---|---|---|---|---|---|"]
    for r in summary["by_mass"]:
        sc = r["scores"]
        lines.append(f"| {r['test']} | {r['model']} | {r['mass_bin']} | {r['n']} | {sc['median_bias_dex']:+.3f} | "
                     f"{sc['coverage_68']:.2f} | {sc['mean_std']:.3f} | "
                     f"{sc.get('mean_physics_std', float('nan')):.3f} |")
    lines += ["", f"Distance from the training physics: mocks of {cfg['n_shift']} clusters at "
              "shift_physics(DEFAULT_PHYSICS_PRIOR, size), size in half-widths of the prior along SHIFT_DIRECTION "
              "(the same seed), predicted by the models trained on the built-in family:", "",
              "| size | fixed cov68 | marginalised cov68 | fixed mean std | marginalised mean std | "
              "marginalised mean physics std | fixed bias | marginalised bias | fixed scatter | marginalised scatter |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for e in shift:
        f, m = e["fixed"], e["marginalised"]
        lines.append(f"| {e['size']:g} | {f['coverage_68']:.2f} | {m['coverage_68']:.2f} | {f['mean_std']:.3f} | "
                     f"{m['mean_std']:.3f} | {m.get('mean_physics_std', float('nan')):.3f} | "
                     f"{f['median_bias_dex']:+.3f} | {m['median_bias_dex']:+.3f} | {100 * f['scatter']:.1f}% | "
                     f"{100 * m['scatter']:.1f}% |")
    return "\n".join(lines) + "\n"


def _plot(shift, path):
    """68% coverage, and mean total and physics std, against the size of the physics change."""
    import matplotlib.pyplot as plt

    size = [e["size"] for e in shift]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, style in (("fixed", "s-"), ("marginalised", "o-")):
        ax1.plot(size, [e[name]["coverage_68"] for e in shift], style, label=name)
    ax1.axhspan(0.63, 0.73, color="0.9", label="target 0.63-0.73")
    ax1.set_ylabel("raw 68% coverage")
    ax2.plot(size, [e["marginalised"]["mean_std"] for e in shift], "o-", label="marginalised: total")
    ax2.plot(size, [e["marginalised"].get("mean_physics_std", np.nan) for e in shift], "o--",
             label="marginalised: physics part")
    ax2.plot(size, [e["fixed"]["mean_std"] for e in shift], "s-", label="fixed: total")
    ax2.set_ylabel("mean predicted std (dex)")
    for ax in (ax1, ax2):
        ax.set_xlabel("physics change (half-widths of the prior)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
