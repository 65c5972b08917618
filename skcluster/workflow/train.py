"""What ``skcluster train`` does, from Python: :func:`train_mass_model`."""

from __future__ import annotations

import sys
import warnings

import numpy as np
from sklearn.utils import Bunch

from ..models import DEFAULT_NPIX

__all__ = ["train_mass_model", "PRIORS", "PRIOR_DEFAULT", "PRIOR_FALLBACK", "SURVEYS"]

#: The priors the masses may carry (``prior=``).
PRIORS = ("fixed-mass", "flat", "training")
#: The prior of the masses unless ``prior=`` says otherwise (and the one the
#: default falls back to where a fixed-mass calibration cannot be made).
PRIOR_DEFAULT = "fixed-mass"
PRIOR_FALLBACK = "flat"
#: Depth presets of the built-in mock (``survey=``).
SURVEYS = ("efeds", "erass1", "erosita")
#: Share of the user's clusters held out to calibrate the fixed-mass prior, by default.
CALIBRATION_FRACTION = 0.3
#: Clusters of the built-in mock simulated for training, by default.
N_CLUSTERS_DEFAULT = 2000


def _log(verbose, text):
    if verbose:
        print(text, file=sys.stderr, flush=True)


def _check_options(own, prior, calibration_clusters, calibration_fraction, survey, sky=None):
    """Refuse options that would do nothing (another prior, or the other kind of data)."""
    if prior is not None and prior not in PRIORS:
        raise ValueError(f"prior= must be one of {PRIORS}, got {prior!r}")
    if survey is not None and survey not in SURVEYS:
        raise ValueError(f"survey= must be one of {SURVEYS}, got {survey!r}")
    if own and survey is not None:
        raise ValueError("survey= chooses the built-in mock; your clusters (X, y) were given")
    if own and sky is not None:
        raise ValueError("sky= chooses the version of the built-in mock; your clusters (X, y) were given")
    given = [k for k, v in (("calibration_clusters=", calibration_clusters),
                            ("calibration_fraction=", calibration_fraction)) if v is not None]
    if given and (prior or PRIOR_DEFAULT) != "fixed-mass":
        raise ValueError(f"{' and '.join(given)} only apply to the fixed-mass prior, not prior={prior}")
    if own and calibration_clusters is not None:
        raise ValueError("calibration_clusters= sizes the calibration mock of the built-in mock; with your "
                         "own clusters, calibration_fraction= holds out a share of them")
    if not own and calibration_fraction is not None:
        raise ValueError("calibration_fraction= holds out a share of your clusters; on the built-in mock, "
                         "calibration_clusters= sizes a fresh calibration mock")


#: ``physics_forms`` -> the physics prior a physics-marginalised model draws (names of skcluster.datasets).
PHYSICS_FORMS = {"drawn": "DEFAULT_PHYSICS_PRIOR", "preset": "PRESET_FORMS_PHYSICS_PRIOR"}


def _check_physics(own, draws, width, forms, n_estimators):
    """``physics_marginalised`` a number of draws that divides ``n_estimators``, on the built-in mock only."""
    from .._validation import check_positive_int, check_positive_number

    if not (isinstance(forms, str) and forms in PHYSICS_FORMS):
        raise ValueError(f"physics_forms must be one of {sorted(PHYSICS_FORMS)}, got {forms!r}")
    if draws is None:
        for name, value, default in (("physics_width", width, 1.0), ("physics_forms", forms, "drawn")):
            if value != default:
                raise ValueError(f"{name}={value!r} sets the physics prior of physics_marginalised=, "
                                 "which was not given")
        return
    draws = check_positive_int(draws, "physics_marginalised")
    check_positive_number(width, "physics_width", allow_zero=True)
    if own:
        raise ValueError("physics_marginalised= draws the built-in mock's physics; your clusters (X, y) were given")
    if n_estimators % draws:
        raise ValueError(f"physics_marginalised={draws} needs n_estimators a multiple of {draws} (as many CNNs "
                         f"for each physics draw), got n_estimators={n_estimators}")


def _simulate(n, random_state, survey, size_arcmin, depth_strata, n_jobs, verbose, sky=None, physics_draws=None,
              physics_width=1.0, physics_forms="drawn", **overrides):
    """(mock survey, its depth in words) of ``n`` clusters of the training population of ``survey``.

    ``sky``: the mock version (:data:`~skcluster.datasets.SKY_VERSIONS`; None: the default).
    ``physics_draws``: that many physics draws of the prior that
    ``physics_forms`` names (:data:`PHYSICS_FORMS`;
    :func:`~skcluster.datasets.make_marginalised_survey`), None: the
    preset's physics. ``overrides``: :class:`~skcluster.datasets.SurveyParameters`
    changed from the training population (the calibration's high-mass mock).
    """
    from ..datasets import make_survey

    size = max(20.0, float(size_arcmin))  # the mock's box; BandBinner cuts the centre
    survey = survey or "efeds"
    kw = dict(n_jobs=n_jobs, verbose=bool(verbose), size_arcmin=size, sky=sky, **overrides)
    version = f", mock {sky}" if sky else ""
    if physics_draws is not None:
        from .. import datasets

        strata = depth_strata if survey == "erosita" else 1
        data = datasets.make_marginalised_survey(survey, n, n_draws=physics_draws, width=physics_width,
                                                 prior=getattr(datasets, PHYSICS_FORMS[physics_forms]),
                                                 depth_strata=strata, random_state=random_state, **kw)
        forms = "" if physics_forms == "drawn" else ", the preset's forms"
        return data, (f"{survey} depth{'s, balanced' if strata > 1 else ''}{version}, {physics_draws} physics "
                      f"draws (width {physics_width:g}{forms})")
    if survey == "erosita" and depth_strata > 1:
        from ..datasets import make_depth_balanced_survey

        data = make_depth_balanced_survey(n, n_strata=depth_strata, random_state=random_state, **kw)
        return data, f"erosita depths, equal numbers in {depth_strata} bins of log exposure{version}"
    return make_survey(survey, n_clusters=n, random_state=random_state, **kw), f"{survey} depth{version}"


def _without_fixed_mass(asked, reason):
    """The fixed-mass calibration cannot be made: an error if asked for, else a warning."""
    if asked:
        raise ValueError(reason)
    warnings.warn(f"{reason}; the masses carry the {PRIOR_FALLBACK!r} prior instead", stacklevel=4)


def _calibration_set(X, y, what, own, s):
    """(X_train, y_train, (X_cal, y_cal, response) or None, what) for the fixed-mass prior.

    The built-in mock: a fresh mock of the training population pooled with
    as many clusters of one whose lowest mass is raised (seeds derived from
    ``random_state``), and the response that may bend above the hinge
    (``MOCK_CALIBRATION_RESPONSE``). The user's clusters: a random share
    held out of training, and a straight response (they hold no sample of
    massive clusters to measure the bend on). None (with a warning, or an
    error if ``prior="fixed-mass"`` was asked for) where the calibration set
    would be too small.
    """
    from ..calibration import MIN_CALIBRATION_CLUSTERS

    n = len(y)
    fraction = CALIBRATION_FRACTION if s.calibration_fraction is None else s.calibration_fraction
    n_cal = (int(np.ceil(fraction * n)) if own else
             s.calibration_clusters or max(MIN_CALIBRATION_CLUSTERS, -(-n // 3)))
    if n_cal < MIN_CALIBRATION_CLUSTERS or (own and n - n_cal < 2):
        _without_fixed_mass(s.prior is not None, (
            f"a fixed-mass calibration needs at least {MIN_CALIBRATION_CLUSTERS} calibration clusters "
            f"and 2 to train on; {n} clusters with calibration_fraction={fraction:g} give {n_cal}" if own else
            f"a fixed-mass calibration needs at least {MIN_CALIBRATION_CLUSTERS} calibration clusters, "
            f"calibration_clusters= gives {n_cal}"))
        return X, y, None, what
    if own:
        order = np.random.default_rng(s.random_state).permutation(n)
        cal, train = np.sort(order[:n_cal]), np.sort(order[n_cal:])
        return (X[train], y[train], (X[cal], y[cal], {}),
                f"{what} ({n - n_cal} trained on, {n_cal} held out to calibrate)")
    from ..calibration import (
        MOCK_CALIBRATION_HIGH_MASS_MIN,
        MOCK_CALIBRATION_RESPONSE,
        MOCK_CALIBRATION_RESPONSE_DEPTHS,
    )
    from ..sample import ClusterSample

    _log(s.verbose, f"simulating {n_cal} calibration clusters of the training population and {n_cal} above "
                    f"10^{MOCK_CALIBRATION_HIGH_MASS_MIN} Msun")
    mock = dict(survey=s.survey, sky=s.get("sky"), size_arcmin=s.size_arcmin, depth_strata=s.depth_strata,
                n_jobs=s.n_jobs, verbose=s.verbose, physics_draws=s.get("physics_draws"),
                physics_width=s.get("physics_width", 1.0), physics_forms=s.get("physics_forms", "drawn"))
    data, _ = _simulate(n_cal, np.random.SeedSequence([s.random_state, 1]), **mock)
    massive, _ = _simulate(n_cal, np.random.SeedSequence([s.random_state, 2]),
                           log10_m500_min=MOCK_CALIBRATION_HIGH_MASS_MIN, **mock)
    response = MOCK_CALIBRATION_RESPONSE_DEPTHS if s.survey == "erosita" else MOCK_CALIBRATION_RESPONSE
    return (X, y, (ClusterSample.concat([data.X, massive.X]), np.concatenate([data.y, massive.y]), response),
            f"{what}, calibrated on {n_cal} more and {n_cal} above 10^{MOCK_CALIBRATION_HIGH_MASS_MIN}")


def _bands_of(bands, X):
    """The model's bands: ``bands``, else (images) the images' bands, else krippendorf10."""
    if bands is not None:
        return bands
    if "images" in X:
        found = X.meta.get("bands_keV")
        if found is None:
            raise ValueError("cannot tell the energy bands of the images from their names (expected e.g. "
                             "img_0300_0600.fits for 0.3-0.6 keV); pass bands= in the order of the files")
        return [tuple(b) for b in found]
    return "krippendorf10"


def _fit_on_images(pipe, X, y, size_arcmin, npix):
    """Fit ``pipe`` on cut-out ``images``; its data source stays the event binner.

    The images were cut in the model's bands, box and pixels, so the binner
    (stateless) is fitted on no events and put back: the saved model
    predicts from event lists and (with ``ImageCutout`` swapped in) images.
    """
    from ..io import EVENT_DTYPE
    from ..sample import ClusterSample

    pixel = 60.0 * size_arcmin / npix
    got = float(X.meta.get("pixel_arcsec", float("nan")))
    if not abs(got / pixel - 1.0) <= 0.02:
        raise ValueError(f"the images' pixels give {got:.2f} arcsec per network pixel, not the "
                         f"{pixel:.2f} arcsec of npix={npix} over size_arcmin={size_arcmin:g}; choose a "
                         "box that is a whole number of image pixels")
    binner = pipe.named_steps["bin"]
    pipe.set_params(bin="passthrough")
    pipe.fit(X, y)
    empty = np.empty(1, dtype=object)
    empty[0] = np.zeros(0, EVENT_DTYPE)
    pipe.set_params(bin=binner.fit(ClusterSample(events=empty)))
    return pipe


def _with_prior(pipe, X, y, calibration, asked):
    """(model, prior): the fitted pipeline wrapped so its masses carry the asked-for prior."""
    from sklearn.frozen import FrozenEstimator

    prior = asked or PRIOR_DEFAULT
    if prior == "training":
        return pipe, prior
    if prior == "fixed-mass" and calibration is not None:
        from ..calibration import MassCalibratedRegressor

        # cut-out images are read by the same steps after the event binner (_fit_on_images)
        reader = pipe
        if "images" in X:
            reader = type(pipe)([(name, "passthrough" if name == "bin" else step) for name, step in pipe.steps])
        X_cal, y_cal, response = calibration
        # a bend that changes with z rests on the few calibration clusters at high z, where a weak model's response
        # can fall below min_slope; the same bend at every z is then the next best response (population_shift.py)
        responses = [response] + ([{k: v for k, v in response.items() if k != "bend_degree"}]
                                  if response.get("bend_degree") else [])
        for i, kw in enumerate(responses):
            try:
                model = MassCalibratedRegressor(FrozenEstimator(reader), **kw).fit(X_cal, y_cal)
            except ValueError as exc:
                if i + 1 < len(responses):
                    warnings.warn(f"the fixed-mass calibration with a bend that changes with z refused ({exc}); "
                                  "calibrating with the same bend at every redshift", stacklevel=3)
                    continue
                _without_fixed_mass(asked is not None, f"cannot calibrate the model at fixed mass: {exc}"
                                    + ("; train it longer or on more clusters, or choose prior='flat'"
                                       if asked is not None else ""))
                break
            model.estimator = model.estimator_ = FrozenEstimator(pipe)  # the same predictions
            return model, prior
    from ..priors import PriorCorrectedRegressor

    prior = PRIOR_FALLBACK if prior == "fixed-mass" else prior
    # the fitted pipeline is kept as it is; only the prior is estimated
    return PriorCorrectedRegressor(FrozenEstimator(pipe), target=prior).fit(X, y), prior


def train_mass_model(X=None, y=None, *, survey=None, sky=None, n_clusters=None, depth_strata=5, bands=None,
                     size_arcmin=20.0, npix=DEFAULT_NPIX, n_estimators=5, max_epochs=80, channels=None, dense=None,
                     mask_point_sources=True, observables=None, prior=None, calibration_clusters=None,
                     calibration_fraction=None, physics_marginalised=None, physics_width=1.0,
                     physics_forms="drawn", random_state=0,
                     n_jobs=None, verbose=0, description=None):
    """Train the mass model as ``skcluster train`` does; the same seed gives the same model.

    The standard pipeline (:func:`skcluster.models.make_mass_pipeline`, with
    a :class:`~skcluster.preprocessing.DomainFlagger`) is trained on the
    built-in mock (``X`` None) or on your clusters, and wrapped so that its
    masses carry the asked-for prior.

    Parameters
    ----------
    X, y : ClusterSample and array-like, default=None
        Your clusters: events (:func:`~skcluster.datasets.read_survey` of a
        folder that ``skcluster simulate`` wrote, or
        :func:`~skcluster.workflow.read_training_set`) or cut-out ``images``
        (:func:`~skcluster.workflow.read_training_set` with ``images``), and
        their log10 M500c / Msun. None: a mock survey simulated here.
    survey : {"efeds", "erass1", "erosita"}, default=None
        Depth preset of the built-in mock (None: ``"efeds"``). ``"erosita"``
        mixes every depth and joins each cluster's exposure, its measured
        image observables and Galactic N_H beside z.
    sky : {"v1", "v2"}, default=None
        Version of the built-in mock (:data:`~skcluster.datasets.SKY_VERSIONS`;
        None: :data:`~skcluster.datasets.DEFAULT_SKY`, ``"v2"``, calibrated on
        the real eFEDS and eRASS1 data; ``"v1"``: the earlier mock).
    n_clusters : int, default=None
        Clusters to simulate (None: 2000); with ``X``, the first
        ``n_clusters`` are used (None: all).
    depth_strata : int, default=5
        With ``survey="erosita"``: equal numbers of clusters in this many bins
        of log exposure (1: the preset's own draw).
    bands : str or sequence of (float, float), default=None
        Band preset or keV pairs (None: the images' bands, else
        ``"krippendorf10"``).
    size_arcmin : float, default=20.0
        Side of the cut-out box, arcmin (kept in the model).
    npix : int, default=DEFAULT_NPIX (32)
        Network input pixels per side.
    n_estimators, max_epochs : int, default=5, 80
        CNNs in the ensemble, training epochs per CNN.
    channels, dense : tuple of int, default=None
        Convolution channels and dense widths (None: the package's).
    mask_point_sources : bool, default=True
        Mask the detected point sources where the clusters come with a
        detected list (the built-in mock and ``read_survey`` folders), as
        ``skcluster predict --point-sources`` masks a published catalogue.
    observables : bool, default=None
        Measure the image observables on the events and join them beside z
        (``make_mass_pipeline(observables=True)``; event input only). None:
        on with ``survey="erosita"``.
    prior : {"fixed-mass", "flat", "training"}, default=None
        What the predicted masses carry (None: ``"fixed-mass"``, falling back
        to ``"flat"`` with a warning where it cannot be calibrated; asked
        for explicitly, a failure is an error). See ``skcluster train
        --help``.
    calibration_clusters : int, default=None
        Built-in mock with the fixed-mass prior: the size of each of the two
        calibration mocks (None: a third of the training clusters, at least
        the 12 a calibration needs).
    calibration_fraction : float, default=None
        Your clusters with the fixed-mass prior: the share held out of
        training to calibrate (None: 0.3).
    physics_marginalised : int, default=None
        Built-in mock only: K physics draws of
        :data:`~skcluster.datasets.DEFAULT_PHYSICS_PRIOR`, each simulating
        ``n_clusters`` clusters (K times the simulation, so that each CNN
        trains on as many clusters as without the draws: a 1/K share of
        them cost 1.14x the scatter in ``benchmarks/physics_family.py``)
        (:func:`~skcluster.datasets.make_marginalised_survey`; the
        fixed-mass calibration clusters are marginalised too, in all as
        many as without the draws), and each of the
        ``n_estimators`` CNNs (a multiple of K) trained on one draw's
        clusters (``make_mass_pipeline(member_groups="physics_draw")``):
        the ensemble's spread then carries the physics the mock does not
        know, and the model file records the prior and the draws. None: the
        preset's physics.
    physics_width : float, default=1.0
        With ``physics_marginalised``: scales every range of the prior about
        its centre (0: all draws at the centres).
    physics_forms : {"drawn", "preset"}, default="drawn"
        With ``physics_marginalised``: ``"drawn"`` draws the prior's forms
        too (profile, PSF, mass function, a curved L_X-M:
        :data:`~skcluster.datasets.DEFAULT_PHYSICS_PRIOR`), which puts the
        ensemble's mean at the prior's mixture of forms; ``"preset"`` keeps
        the preset's forms and draws only the numbers
        (:data:`~skcluster.datasets.PRESET_FORMS_PHYSICS_PRIOR`), so that
        mirrored pairs centre the mean on the preset's physics.
    random_state : int, default=0
        Seeds the mocks, the hold-out split and the networks.
    n_jobs : int, default=None
        Workers for the simulation and the ensemble members.
    verbose : int, default=0
        1: stage messages and progress bars on stderr.
    description : str, default=None
        Your clusters in words, for the returned ``description``.

    Returns
    -------
    sklearn.utils.Bunch
        ``model`` (what ``skcluster train`` saves), ``prior`` (the prior its
        masses carry), ``pipeline`` (the fitted pipeline inside), ``bands``,
        ``masked`` (point sources masked), ``observables``, ``nh`` (each
        cluster's Galactic N_H joined), ``description`` (the training data in
        words), ``physics`` (the physics prior and draws a physics-marginalised
        ensemble trained on, else None; a model of one physics keeps the
        mock's record too, in its ensemble's ``physics_``).

    Raises
    ------
    ValueError
        Options that do not go together or do nothing, data that cannot
        train a model, a fixed-mass calibration asked for that cannot be
        made.
    """
    from ..models import make_mass_pipeline

    own = X is not None
    if own != (y is not None):
        raise ValueError("give your clusters as X and y together, or neither (the built-in mock)")
    _check_options(own, prior, calibration_clusters, calibration_fraction, survey, sky)
    _check_physics(own, physics_marginalised, physics_width, physics_forms, n_estimators)
    s = Bunch(survey=survey, sky=sky, size_arcmin=size_arcmin, depth_strata=depth_strata, n_jobs=n_jobs,
              verbose=verbose, random_state=random_state, prior=prior, calibration_clusters=calibration_clusters,
              calibration_fraction=calibration_fraction, physics_draws=physics_marginalised,
              physics_width=physics_width, physics_forms=physics_forms)
    if own:
        y = np.asarray(y, dtype=np.float64)
        if n_clusters is not None and n_clusters < len(y):
            X, y = X[:n_clusters], y[:n_clusters]
        box = float(X.meta.get("size_arcmin", float("nan")))
        if "events" in X and size_arcmin > box * (1 + 1e-6):
            raise ValueError(f"size_arcmin={size_arcmin:g} is larger than the {box:g} arcmin boxes the events "
                             f"were cut in; use size_arcmin={box:g} or less")
        what = description or f"{len(y)} clusters"
    else:
        n = N_CLUSTERS_DEFAULT if n_clusters is None else n_clusters
        # physics-marginalised: n clusters in each draw (K times the simulation), so that each CNN trains on as
        # many clusters as one of the preset's (benchmarks/physics_family.py: a 1/K share cost 1.14x the scatter)
        n_sim = n * physics_marginalised if physics_marginalised is not None else n
        data, depth = _simulate(n_sim, random_state, survey, size_arcmin, depth_strata, n_jobs, verbose, sky,
                                physics_marginalised, physics_width, physics_forms)
        X, y, what = data.X, data.y, f"{len(data.y)} mock clusters ({depth}, seed {random_state})"
    calibration = None
    if (prior or PRIOR_DEFAULT) == "fixed-mass":
        X, y, calibration, what = _calibration_set(X, y, what, own, s)
    mask = bool(mask_point_sources) and "point_sources" in X and "images" not in X
    observables = survey == "erosita" if observables is None else bool(observables)
    if observables and "images" in X:
        raise ValueError("observables=True measures the image observables on event lists; train on events "
                         "or the built-in mock, or leave it out with images")
    # every depth's mock varies the Galactic N_H: each cluster's converts its count rate to L_X and is joined
    nh = observables and survey == "erosita" and "nh" in X
    cnn = {"max_epochs": max_epochs}
    if channels:
        cnn["channels"] = tuple(channels)
    if dense:
        cnn["dense"] = tuple(dense)
    pipe = make_mass_pipeline(bands=_bands_of(bands, X), size_arcmin=size_arcmin, npix=npix,
                              n_estimators=n_estimators, n_jobs=n_jobs, random_state=random_state,
                              verbose=1 if verbose else 0, flag_domain=True,
                              extra_scalars=(("exposure",) if survey == "erosita" else ()) + (("nh",) if nh else ()),
                              mask_point_sources=mask, observables=observables,
                              nh_column="nh" if nh else None,
                              member_groups=None if physics_marginalised is None else "physics_draw", **cnn)
    if verbose and n_jobs in (None, 1):
        from ..nn.progress import EpochProgress

        pipe.set_params(model__estimator__callbacks=[EpochProgress()])
    _log(verbose, f"training {n_estimators} CNN(s) on {what}")
    if "images" in X:
        _fit_on_images(pipe, X, y, size_arcmin, npix)
    else:
        pipe.fit(X, y)
    model, used = _with_prior(pipe, X, y, calibration, prior)
    return Bunch(model=model, prior=used, pipeline=pipe, bands=[tuple(b) for b in pipe["bin"].bands_keV_],
                 masked=mask, observables=observables, nh=nh, description=what,
                 physics=getattr(pipe[-1], "physics_", None) if getattr(pipe[-1], "member_groups_", None) is not None
                 else None)
