"""Issue 35: the physics-marginalised training set, the ensemble whose members train on its draws, and the std split."""

import json
import warnings
import zipfile

import numpy as np
import pytest
from astropy.table import Table
from conftest import known_response_masses, tiny_pipeline
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import GridSearchCV, KFold

from skcluster import ClusterSample, persist
from skcluster.cli import EXIT_INPUT, EXIT_OK, main
from skcluster.datasets import DEFAULT_PHYSICS_PRIOR, make_marginalised_survey
from skcluster.datasets.physics_prior import FORM_PARAMETERS
from skcluster.ensemble import DeepEnsembleRegressor
from skcluster.mixture import mixture_group_components, mixture_moments
from skcluster.nn import CNNRegressor, make_toy_sample
from skcluster.persist import ModelFileError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class RowRecorder(RegressorMixin, BaseEstimator):
    """Predicts the mean y of its training rows; remembers which rows (the ``row`` column) and columns it saw."""

    def fit(self, X, y):
        self.rows_ = np.asarray(X["row"])
        self.columns_ = sorted(X.keys())
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        assert "physics_draw" not in X  # the labels never reach a member
        return np.full(len(X["row"]), self.mean_)


def _grouped(n=30, k=3, seed=0):
    """Rows 0..n-1 in k draws (draw = row mod k), y far apart by draw: each member's mean says whose rows it saw."""
    draw = np.arange(n) % k
    y = 13.0 + 1.0 * draw + np.random.default_rng(seed).normal(0, 0.01, n)
    return ClusterSample(row=np.arange(n), physics_draw=draw.astype(np.int64)), y


# ------------------------------------------------------------------------- the variance split
def test_group_split_is_the_law_of_total_variance():
    rng = np.random.default_rng(3)
    k, m, n = 3, 4, 7
    means = rng.normal(14.0, 0.3, (k * m, n))
    variances = rng.uniform(0.01, 0.09, (k * m, n))
    groups = np.arange(k * m) % k  # member i -> draw i mod k, as the ensemble assigns them
    parts = mixture_group_components(means, variances, groups)
    _, alea, epi = mixture_moments(means, variances)
    total = alea + epi
    np.testing.assert_allclose(parts.photon_std**2 + parts.network_std**2 + parts.physics_std**2, total, rtol=1e-12)
    np.testing.assert_allclose(parts.photon_std**2, alea, rtol=1e-12)
    # the parts computed directly: the variance of the draws' means, and the mean within-draw variance
    draw_means = np.stack([means[groups == g].mean(axis=0) for g in range(k)])
    np.testing.assert_allclose(parts.physics_std**2, draw_means.var(axis=0), rtol=1e-12)
    within = np.mean([means[groups == g].var(axis=0) for g in range(k)], axis=0)
    np.testing.assert_allclose(parts.network_std**2, within, rtol=1e-12)
    assert parts.members_per_group == m
    # draws with identical members: no network part; all members equal: no physics part either
    same = draw_means[groups]
    assert np.allclose(mixture_group_components(same, variances, groups).network_std, 0.0)
    flat = np.broadcast_to(means[:1], means.shape)
    assert np.allclose(mixture_group_components(flat, variances, groups).physics_std, 0.0)


def test_one_member_per_draw_has_no_network_part_and_unequal_groups_are_refused():
    rng = np.random.default_rng(4)
    means, variances = rng.normal(14, 0.2, (3, 5)), rng.uniform(0.01, 0.04, (3, 5))
    parts = mixture_group_components(means, variances, np.arange(3))
    assert np.isnan(parts.network_std).all()
    np.testing.assert_allclose(parts.physics_std**2, mixture_moments(means)[2], rtol=1e-12)
    with pytest.raises(ValueError, match="equally many members"):
        mixture_group_components(means, variances, np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="one label per member"):
        mixture_group_components(means, variances, np.array([0, 1]))


# ------------------------------------------------------------------------- members on their draw
@pytest.mark.parametrize("bootstrap", [False, True])
def test_each_member_trains_on_its_own_draw_only(bootstrap):
    X, y = _grouped()
    ens = DeepEnsembleRegressor(RowRecorder(), n_estimators=6, member_groups="physics_draw", bootstrap=bootstrap,
                                random_state=0).fit(X, y)
    draw = np.asarray(X["physics_draw"])
    assert ens.member_groups_.tolist() == [0, 1, 2, 0, 1, 2]
    for i, member in enumerate(ens.estimators_):
        assert set(draw[member.rows_]) == {i % 3}
        if not bootstrap:
            np.testing.assert_array_equal(member.rows_, np.flatnonzero(draw == i % 3))
        assert "physics_draw" not in member.columns_
    assert ens.physics_ is None  # a sample without meta["physics"] records none
    # the split: members of one draw agree exactly (no bootstrap), the draws' means differ by 1 dex steps
    parts = ens.predict_components(X)
    if not bootstrap:
        np.testing.assert_allclose(parts.network_std, 0.0, atol=1e-12)
    np.testing.assert_allclose(parts.physics_std, np.std([13.0, 14.0, 15.0]), atol=0.02)
    np.testing.assert_allclose(parts.std**2, parts.photon_std**2 + parts.network_std**2 + parts.physics_std**2)


def test_without_member_groups_every_member_sees_every_row_as_before():
    X, y = _grouped()
    ens = DeepEnsembleRegressor(RowRecorder(), n_estimators=3, bootstrap=True, random_state=0).fit(X, y)
    assert ens.member_groups_ is None and "photon_std" not in ens.predict_components(X.drop("physics_draw"))
    for seed, member in zip(ens.seeds_, ens.estimators_):  # the bootstrap rows of today's code, unchanged
        np.testing.assert_array_equal(member.rows_, np.random.RandomState(seed).randint(0, 30, 30))
    assert "physics_draw" in ens.estimators_[0].columns_  # (without member_groups the column is data like any)


def test_bad_member_groups_are_clear_errors():
    X, y = _grouped()
    with pytest.raises(ValueError, match="must be a multiple of 3"):
        DeepEnsembleRegressor(RowRecorder(), n_estimators=4, member_groups="physics_draw").fit(X, y)
    with pytest.raises(ValueError, match="names a column of X.*'physics_draw'"):
        DeepEnsembleRegressor(RowRecorder(), n_estimators=3, member_groups="draw").fit(X, y)
    with pytest.raises(ValueError, match="one integer label per row"):
        DeepEnsembleRegressor(RowRecorder(), n_estimators=3, member_groups="physics_draw").fit(
            X.assign(physics_draw=np.asarray(X["physics_draw"], dtype=float)), y)
    with pytest.raises(ValueError, match="member_groups must be None or the name of a column"):
        DeepEnsembleRegressor(RowRecorder(), n_estimators=3, member_groups=3).fit(X, y)


def _toy_draws(n=48, k=2):
    """The toy CNN sample in k draws of equal size; draw d's masses shifted by 2 d dex (separable by y alone)."""
    X, y = make_toy_sample(n, n_bands=1, image_size=8, random_state=0)
    draw = (np.arange(n) % k).astype(np.int64)
    return X.assign(physics_draw=draw), y + 2.0 * draw


def _tiny_cnn(**kw):
    return CNNRegressor(module__channels=(2,), module__dense=(4,), input_scaling="log1p", batch_size=16,
                        max_epochs=2, **kw)


@pytest.mark.parametrize("vectorize", [True, False])
def test_cnn_members_train_on_their_draw_vectorised_and_sequential(vectorize):
    X, y = _toy_draws()
    ens = DeepEnsembleRegressor(_tiny_cnn(), n_estimators=4, member_groups="physics_draw", vectorize=vectorize,
                                random_state=0).fit(X, y)
    assert ens.vectorised_ is vectorize
    draw = np.asarray(X["physics_draw"])
    for i, member in enumerate(ens.estimators_):  # each network standardised y on its own rows
        assert member.y_mean_ == pytest.approx(y[draw == i % 2].mean(), abs=1e-9)
    parts = ens.predict_components(X)
    np.testing.assert_allclose(parts.std**2, parts.photon_std**2 + parts.network_std**2 + parts.physics_std**2,
                               rtol=1e-9)
    np.testing.assert_allclose(parts.photon_std, parts.aleatoric_std)
    assert parts.members_per_group == 2 and np.isfinite(parts.network_std).all()
    mean, std = ens.predict(X, return_std=True)  # predict keeps giving the total std
    np.testing.assert_allclose(std, parts.std)
    np.testing.assert_allclose(ens.predict(X.drop("physics_draw")), mean)  # no labels needed to predict


def test_vectorised_training_needs_draws_of_equal_size():
    X, y = _toy_draws(n=47)
    with pytest.raises(ValueError, match="hold different numbers of rows \\(23 to 24\\)"):
        DeepEnsembleRegressor(_tiny_cnn(), n_estimators=2, member_groups="physics_draw", vectorize=True).fit(X, y)
    ens = DeepEnsembleRegressor(_tiny_cnn(), n_estimators=2, member_groups="physics_draw", random_state=0).fit(X, y)
    assert ens.vectorised_ is False  # "auto": one member after another


def test_member_groups_none_is_todays_ensemble_bit_for_bit():
    """The labels column, present or not, changes nothing without member_groups (vectorised CNN members)."""
    X, y = _toy_draws()
    kw = dict(n_estimators=2, random_state=0)
    with_labels = DeepEnsembleRegressor(_tiny_cnn(), **kw).fit(X, y)
    without = DeepEnsembleRegressor(_tiny_cnn(), **kw).fit(X.drop("physics_draw"), y)
    for a, b in zip(with_labels.predict(X, return_std=True), without.predict(X.drop("physics_draw"),
                                                                             return_std=True)):
        np.testing.assert_array_equal(a, b)
    assert DeepEnsembleRegressor().get_params()["member_groups"] is None


# ------------------------------------------------------------------------- the mock and the pipeline
@pytest.fixture(scope="module")
def mock():
    return make_marginalised_survey("efeds", n_clusters=24, n_draws=2, random_state=0, verbose=False)


def test_marginalised_survey_records_its_draws(mock):
    draw = np.asarray(mock.X["physics_draw"])
    assert draw.dtype == np.int64 and np.bincount(draw).tolist() == [12, 12]
    assert np.array_equal(draw, np.asarray(mock.catalog["physics_draw"])) and len(mock.y) == 24
    record = mock.X.meta["physics"]
    ranged = [{k: d[k] for k in DEFAULT_PHYSICS_PRIOR.ranges} for d in mock.physics_draws]
    assert record["draws"] == ranged and len(record["draws"]) == 2 and record["width"] == 1.0
    assert record["prior"]["ranges"] == {k: list(v) for k, v in DEFAULT_PHYSICS_PRIOR.ranges.items()}
    assert record["prior"]["choices"] == {"mass_function_model": ["tinker08", "bocquet16"],
                                          "profile_form": ["beta", "sersic"], "psf_form": ["king", "gauss_exp"]}
    # the chosen forms, mirrored: one draw of each mass function, profile and PSF, as recorded
    for name, values in DEFAULT_PHYSICS_PRIOR.choices.items():
        assert {d[name] for d in mock.physics_draws} == set(values)
        assert [f[name] for f in record["forms"]] == [d[name] for d in mock.physics_draws]
    a, b = mock.physics_draws
    assert a != b  # two draws, two physics
    for name, (lo, hi) in DEFAULT_PHYSICS_PRIOR.ranges.items():
        assert lo <= a[name] <= hi and lo <= b[name] <= hi
        assert a[name] + b[name] == pytest.approx(lo + hi, rel=1e-12)  # antithetic: mirrored about the centre
    # each draw's clusters were simulated under its physics (the draw's own realisation, as make_survey gives it)
    from skcluster.datasets import make_survey

    children = np.random.SeedSequence(mock.entropy).spawn(2)
    first = make_survey("efeds", n_clusters=12, random_state=children[0].spawn(2)[1], verbose=False, **a)
    np.testing.assert_array_equal(first.y, mock.y[draw == 0])


def test_marginalised_survey_overrides_win_and_bad_arguments_are_refused():
    data = make_marginalised_survey("efeds", n_clusters=4, n_draws=2, random_state=1, verbose=False,
                                    lx_slope=1.5, width=0.0)
    assert [d["lx_slope"] for d in data.physics_draws] == [1.5, 1.5]
    centre = np.mean(DEFAULT_PHYSICS_PRIOR.ranges["beta_mean"])
    assert [d["beta_mean"] for d in data.physics_draws] == pytest.approx([centre, centre])  # width 0: centres
    with pytest.raises(ValueError, match="n_draws=5 is more than n_clusters=4"):
        make_marginalised_survey(n_clusters=4, n_draws=5, verbose=False)
    with pytest.raises(TypeError, match="prior must be a PhysicsPrior"):
        make_marginalised_survey(n_clusters=4, n_draws=2, prior={"lx_slope": (1, 2)}, verbose=False)
    with pytest.raises(ValueError, match="width must be a finite number >= 0"):
        make_marginalised_survey(n_clusters=4, n_draws=2, width=-1, verbose=False)


def test_independent_draws_and_an_odd_number_of_draws():
    from skcluster.datasets.physics_prior import buildable_draw, buildable_pair

    def physics_rng(data, k):
        return np.random.default_rng(np.random.SeedSequence(data.entropy).spawn(len(data.physics_draws))[k].spawn(2)[0])

    odd = make_marginalised_survey("efeds", n_clusters=3, n_draws=3, random_state=2, verbose=False)
    a, b, c = odd.physics_draws
    assert (a, b) == buildable_pair(DEFAULT_PHYSICS_PRIOR, physics_rng(odd, 0))[0]
    assert c == buildable_draw(DEFAULT_PHYSICS_PRIOR, physics_rng(odd, 2))[0]   # the last one alone
    plain = make_marginalised_survey("efeds", n_clusters=3, n_draws=3, random_state=2, verbose=False,
                                     antithetic=False)
    assert plain.physics_draws == [buildable_draw(DEFAULT_PHYSICS_PRIOR, physics_rng(plain, k))[0]
                                   for k in range(3)]
    assert plain.physics_draws[1] != b   # not the mirror
    with pytest.raises(TypeError, match="antithetic must be True or False"):
        make_marginalised_survey(n_clusters=4, n_draws=2, antithetic="yes", verbose=False)


def test_a_prior_with_fixed_forms_is_drawn_and_recorded_as_numbers():
    """(Independent draws here and in the other family's tests below: its mirrored pairs are both buildable only
    about 15% of the time, and each refused pair costs core calibrations; these tests are about the record.)"""
    from skcluster.datasets import OTHER_PHYSICS_PRIOR

    data = make_marginalised_survey("efeds", n_clusters=4, n_draws=2, prior=OTHER_PHYSICS_PRIOR, random_state=0,
                                    verbose=False, antithetic=False)
    assert [d["profile_form"] for d in data.physics_draws] == ["vikhlinin", "vikhlinin"]  # the forms were used
    record = data.X.meta["physics"]
    for used, kept in zip(data.physics_draws, record["draws"]):
        assert list(kept) == list(OTHER_PHYSICS_PRIOR.ranges)  # the ranged parameters only, as numbers
        assert all(isinstance(v, float) and kept[k] == used[k] for k, v in kept.items())


def test_draws_the_mock_cannot_build_are_drawn_again(monkeypatch):
    """An L_X scatter the drawn structure cannot give (too small, or too large for the L-T correlation) cannot
    be built: the stream draws again."""
    from skcluster.datasets import PhysicsPrior, draw_physics, physics_prior, resolve_parameters
    from skcluster.datasets.scaling import core_calibration

    prior = PhysicsPrior(ranges={"sigma_ln_lx": (0.25, 0.45)}, sources={"sigma_ln_lx": "test"})
    draw, tries = physics_prior.buildable_draw(prior, np.random.default_rng(5))
    assert tries == 3
    core_calibration(resolve_parameters("efeds", **draw))  # buildable
    rng = np.random.default_rng(5)
    for _ in range(2):  # the stream's first two draws were not
        with pytest.raises(ValueError, match="cannot be reached|above 1 in size"):
            core_calibration(resolve_parameters("efeds", **draw_physics(prior, rng)))
    assert draw == draw_physics(prior, rng)  # the third is the one kept
    monkeypatch.setattr(physics_prior, "MAX_DRAW_TRIES", 2)
    with pytest.raises(ValueError, match="none of 2 draws of the physics prior gives physics the mock can build"):
        physics_prior.buildable_draw(prior, np.random.default_rng(5))


@pytest.fixture(scope="module")
def fitted(mock):
    pipe = tiny_pipeline(n_estimators=4, member_groups="physics_draw")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(mock.X, mock.y)
    return pipe


def test_pipeline_carries_the_draws_to_the_ensemble(mock, fitted):
    ens = fitted[-1]
    assert ens.member_groups_.tolist() == [0, 1, 0, 1] and ens.vectorised_
    assert ens.physics_["draws"] == mock.X.meta["physics"]["draws"] and ens.physics_ is not mock.X.meta["physics"]
    assert [f["mass_function_model"] for f in ens.physics_["forms"]] == [d["mass_function_model"]
                                                                          for d in mock.physics_draws]
    Xt = fitted[:-1].transform(mock.X)
    assert sorted(Xt.keys()) == ["images", "physics_draw", "scalars"]  # the joiner passes the labels on
    parts = ens.predict_components(Xt)
    np.testing.assert_allclose(parts.std**2, parts.photon_std**2 + parts.network_std**2 + parts.physics_std**2,
                               rtol=1e-9)
    # clone and grid search keep the parameter; each fold's draws train their own members
    assert clone(fitted).get_params()["model__member_groups"] == "physics_draw"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(tiny_pipeline(n_estimators=2, member_groups="physics_draw"),
                              {"model__bootstrap": [False, True]}, cv=KFold(2, shuffle=True, random_state=0))
        search.fit(mock.X, mock.y)
    assert search.best_estimator_[-1].member_groups_.tolist() == [0, 1]


# ------------------------------------------------------------------------- the model file
def test_model_file_keeps_the_groups_and_the_physics(mock, fitted, tmp_path):
    path = persist.save(fitted, tmp_path / "m.skc")
    back = persist.load(path)
    assert back[-1].member_groups == "physics_draw"
    np.testing.assert_array_equal(back[-1].member_groups_, fitted[-1].member_groups_)
    assert back[-1].physics_ == fitted[-1].physics_
    a = fitted[-1].predict_components(fitted[:-1].transform(mock.X))
    b = back[-1].predict_components(back[:-1].transform(mock.X))
    for key in ("mean", "std", "photon_std", "network_std", "physics_std"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6)


def _ensemble_state(manifest):
    model = manifest["root"]["params"]["__dict__"]["steps"][-1]["__tuple__"][1]
    return model["state"]["__dict__"]


def _forged(fitted, tmp_path, edit):
    path = persist.save(fitted, tmp_path / "real.skc", overwrite=True)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["model.json"])
    edit(manifest)
    members["model.json"] = json.dumps(manifest).encode()
    out = tmp_path / "forged.skc"
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def _physics(state):
    return state["physics_"]["__dict__"]


def _set(path_in_physics, value):
    def edit(manifest):
        node = _physics(_ensemble_state(manifest))
        for key in path_in_physics[:-1]:
            node = node[key]["__dict__"] if isinstance(node[key], dict) and "__dict__" in node[key] else node[key]
        node[path_in_physics[-1]] = value
    return edit


@pytest.mark.parametrize("edit, match", [
    # a forged huge prior: a source of 100,000 characters, a range the parameter cannot take, an unknown parameter
    (_set(["prior", "sources", "lx_slope"], "x" * 100_000), "at most 2000 characters"),
    (_set(["prior", "ranges", "lx_slope"], [1.0, 1e300]), "leaves the parameter's valid range"),
    (lambda m: _physics(_ensemble_state(m))["prior"]["__dict__"]["ranges"]["__dict__"].update(
        {"not_a_parameter": [0, 1]}), "one source for each range|not a SurveyParameters field"),
    # wrong types and shapes
    (_set(["width"], "wide"), "width.*1 finite numbers"),
    (_set(["width"], -1.0), "width.*must be >= 0"),
    (_set(["draws"], [{"__dict__": {}}]), "one draw per member group"),
    (_set(["prior", "ranges", "lx_slope"], [1.0, "2"]), "range of 'lx_slope' must be 2 finite numbers"),
    (_set(["prior", "ranges", "lx_slope"], [1.0, 2.0, 3.0]), "range of 'lx_slope' must be 2 finite numbers"),
    (lambda m: _ensemble_state(m).update(physics_="a prior"), "physics_ must be a dict"),
    (lambda m: _ensemble_state(m).update(member_groups_=[0, 1, 0, 1]), "member_groups_ must be an integer array"),
    (lambda m: _ensemble_state(m).update(member_groups_=None), "physics_ is recorded, but no member_groups_"),
])
def test_forged_physics_records_are_refused(fitted, tmp_path, edit, match):
    with pytest.raises(ModelFileError, match=match):
        persist.load(_forged(fitted, tmp_path, edit))


# ------------------------------------------------------------------------- the forms in the record
_BUILT_IN_FORMS = {"profile_form": "beta", "psf_form": "king", "mass_function_model": "tinker08", "lx_break_msun": 0.0,
                   "lx_curvature": 0.0}


@pytest.fixture(scope="module")
def other_fitted():
    """A tiny ensemble trained the other way round: on two draws of the other family of forms."""
    from skcluster.datasets import OTHER_PHYSICS_PRIOR

    data = make_marginalised_survey("efeds", n_clusters=12, n_draws=2, prior=OTHER_PHYSICS_PRIOR, random_state=0,
                                    verbose=False, antithetic=False)
    pipe = tiny_pipeline(n_estimators=2, member_groups="physics_draw")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(data.X, data.y)
    return data, pipe


def test_the_record_names_the_forms_each_draw_was_simulated_with(mock, fitted, other_fitted, tmp_path):
    from skcluster.datasets import OTHER_PHYSICS_PRIOR

    # the built-in family: no fixed values, the preset's forms but for those each draw chose or curved
    record = fitted[-1].physics_
    assert record["prior"]["fixed"] == {}
    assert record["forms"] == [{**_BUILT_IN_FORMS, **{k: d[k] for k in (*DEFAULT_PHYSICS_PRIOR.choices, "lx_curvature")}}
                               for d in mock.physics_draws]
    # the other family: its fixed forms and sources, and each draw's own L_X-M break
    data, pipe = other_fitted
    record = pipe[-1].physics_
    assert record["prior"]["fixed"] == OTHER_PHYSICS_PRIOR.fixed
    assert set(record["prior"]["sources"]) == set(OTHER_PHYSICS_PRIOR.ranges) | set(OTHER_PHYSICS_PRIOR.fixed)
    for used, forms in zip(data.physics_draws, record["forms"]):
        assert forms == {"profile_form": "vikhlinin", "psf_form": "gaussian", "mass_function_model": "despali16",
                         "lx_break_msun": used["lx_break_msun"], "lx_curvature": 0.0}
    back = persist.load(persist.save(pipe, tmp_path / "other.skc"))
    assert back[-1].physics_ == record
    # an override wins over a fixed form, and the record says what was used
    over = make_marginalised_survey("efeds", n_clusters=4, n_draws=2, prior=OTHER_PHYSICS_PRIOR, random_state=0,
                                    verbose=False, psf_form="king", antithetic=False)
    assert [f["psf_form"] for f in over.X.meta["physics"]["forms"]] == ["king", "king"]


def test_a_record_written_before_the_forms_still_loads(fitted, tmp_path):
    def old(manifest):
        physics = _physics(_ensemble_state(manifest))
        prior = physics["prior"]["__dict__"]
        del physics["forms"], prior["fixed"], prior["choices"]
        for name in DEFAULT_PHYSICS_PRIOR.choices:
            del prior["sources"]["__dict__"][name]

    back = persist.load(_forged(fitted, tmp_path, old))
    assert set(back[-1].physics_) == {"prior", "width", "draws"}
    assert back[-1].physics_["draws"] == fitted[-1].physics_["draws"]


def test_forms_written_before_the_curvature_was_a_form_still_load(fitted, tmp_path):
    def old(manifest):
        for form in _physics(_ensemble_state(manifest))["forms"]:
            del form["__dict__"]["lx_curvature"]

    back = persist.load(_forged(fitted, tmp_path, old))
    assert [set(f) for f in back[-1].physics_["forms"]] == [set(FORM_PARAMETERS) - {"lx_curvature"}] * 2


def _form(k, name, value):
    def edit(manifest):
        _physics(_ensemble_state(manifest))["forms"][k]["__dict__"][name] = value
    return edit


def _fixed(name, value, source="test"):
    def edit(manifest):
        prior = _physics(_ensemble_state(manifest))["prior"]["__dict__"]
        prior["fixed"]["__dict__"][name] = value
        if source is not None:
            prior["sources"]["__dict__"][name] = source
    return edit


def _choice(name, values, source="test"):
    def edit(manifest):
        prior = _physics(_ensemble_state(manifest))["prior"]["__dict__"]
        if values is None:
            del prior["choices"]["__dict__"][name]
        else:
            prior["choices"]["__dict__"][name] = values
        if source is None:
            prior["sources"]["__dict__"].pop(name, None)
    return edit


@pytest.mark.parametrize("edit, match", [
    (_choice("mass_function_model", ["tinker08", "watson13"]), r"mass_function_model='watson13' must be one of"),
    (_choice("mass_function_model", ["tinker08", "bocquet16", "despali16"] * 3), "list of 2 to 8 values"),
    (_choice("mass_function_model", "tinker08"), "list of 2 to 8 values"),
    (_choice("mass_function_model", ["tinker08", "x" * 100_000]), "text of at most 2000 characters"),
    (_choice("mass_function_model", ["tinker08", "tinker08"]), "2 to 8 distinct values"),
    (_choice("mass_function_model", ["tinker08", "bocquet16"], source=None), "one source for each range, fixed"),
    (_choice("mass_function_model", None), "one source for each range, fixed value and choice"),
    (_choice("lx_slope", [1.5, 1.6]), "'lx_slope' is both chosen and drawn or fixed"),
])
def test_forged_choices_of_form_are_refused(fitted, tmp_path, edit, match):
    with pytest.raises(ModelFileError, match=match):
        persist.load(_forged(fitted, tmp_path, edit))


@pytest.mark.parametrize("edit, match", [
    (_form(0, "profile_form", "nfw"), r"forms of draw 0: .*profile_form='nfw' must be one of \['beta', 'vikhlinin', 'sersic'\]"),
    (_form(1, "mass_function_model", "x" * 100_000), "text of at most 2000 characters"),
    (_form(0, "lx_break_msun", [1, 2]), "must be a text of at most 2000 characters or a finite number"),
    (_form(0, "not_a_form", "beta"), "must name exactly"),
    (lambda m: _physics(_ensemble_state(m))["forms"].pop(), "a list of the forms of each draw"),
    (lambda m: _physics(_ensemble_state(m)).update(forms="beta"), "a list of the forms of each draw"),
    (lambda m: _physics(_ensemble_state(m)).update(extra=1), "physics_ must be a dict of"),
    (_fixed("psf_form", "airy"), r"psf_form='airy' must be one of \['king', 'gaussian', 'gauss_exp'\]"),
    (_fixed("not_a_parameter", "beta"), "fixed 'not_a_parameter' is not a SurveyParameters field"),
    (_fixed("core_cusp_cc", 0.0, source=None), "one source for each range, fixed value and choice"),
    (_fixed("lx_slope", 1.5), "'lx_slope' is both fixed and drawn"),
    (_fixed("profile_form", {"__dict__": {}}), "must be a text of at most 2000 characters or a finite number"),
])
def test_forged_forms_and_fixed_values_are_refused(fitted, tmp_path, edit, match):
    with pytest.raises(ModelFileError, match=match):
        persist.load(_forged(fitted, tmp_path, edit))


def test_forms_that_contradict_their_draw_are_refused(other_fitted, tmp_path):
    _, pipe = other_fitted
    with pytest.raises(ModelFileError, match=r"forms of draw 1 give lx_break_msun=2\d+\.0, but the draw has \d"):
        persist.load(_forged(pipe, tmp_path, _form(1, "lx_break_msun", 2e14)))


def test_a_model_of_one_physics_records_the_forms_it_trained_under(tmp_path):
    """make_survey's sample records its physics (the preset's forms, or its draw of physics=); a model trained on
    it keeps the record in its file, a tampered one is refused, and samples of different physics stacked lose it."""
    from skcluster.datasets import OTHER_PHYSICS_PRIOR, make_survey

    plain = make_survey("efeds", n_clusters=8, random_state=0, verbose=False)
    other = make_survey("efeds", n_clusters=8, random_state=0, verbose=False, physics="other")
    pipe = tiny_pipeline(n_estimators=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(other.X, other.y)
    record = pipe[-1].physics_
    assert pipe[-1].member_groups_ is None
    assert record["forms"] == [{"profile_form": "vikhlinin", "psf_form": "gaussian", "mass_function_model": "despali16",
                                "lx_break_msun": other.physics_draw["lx_break_msun"], "lx_curvature": 0.0}]
    assert record["prior"]["fixed"] == OTHER_PHYSICS_PRIOR.fixed and record["width"] == 1.0
    assert record["draws"] == [{k: other.physics_draw[k] for k in OTHER_PHYSICS_PRIOR.ranges}]
    back = persist.load(persist.save(pipe, tmp_path / "one.skc"))
    assert back[-1].physics_ == record
    from skcluster.workflow import MassModel

    assert MassModel(back).physics == record and not MassModel(back).splits_std
    with pytest.raises(ModelFileError, match=r"psf_form='airy' must be one of"):
        persist.load(_forged(pipe, tmp_path, _form(0, "psf_form", "airy")))
    with pytest.raises(ModelFileError, match="at least one draw without member groups"):
        persist.load(_forged(pipe, tmp_path, lambda m: _physics(_ensemble_state(m)).update(draws=[], forms=[])))
    # the preset's physics: an empty prior and the preset's forms
    assert plain.X.meta["physics"]["forms"] == [_BUILT_IN_FORMS] and plain.X.meta["physics"]["draws"] == [{}]
    # stacked samples keep a record they share, and drop one they do not (no record says what a mix is)
    assert ClusterSample.concat([plain.X[:4], plain.X[4:]]).meta["physics"] == plain.X.meta["physics"]
    assert "physics" not in ClusterSample.concat([plain.X, other.X]).meta


# ------------------------------------------------------------------------- predict: one pass
def _wrapped(fitted, mock, kind):
    """The pipeline as it is, or frozen inside a flat-prior or a fixed-mass wrapper (skcluster train --prior)."""
    from sklearn.frozen import FrozenEstimator

    from skcluster.calibration import MassCalibratedRegressor
    from skcluster.priors import PriorCorrectedRegressor

    if kind == "bare":
        return fitted
    if kind == "flat":
        return PriorCorrectedRegressor(FrozenEstimator(fitted), target="flat").fit(mock.X, mock.y)
    # a one-epoch network barely reads the mass: calibrate it on masses whose response is known
    return MassCalibratedRegressor(FrozenEstimator(fitted)).fit(mock.X, known_response_masses(fitted.predict(mock.X)))


@pytest.mark.parametrize("kind", ["bare", "flat", "fixed-mass"])
def test_predict_runs_the_networks_once_for_the_mass_and_the_std_parts(mock, fitted, kind, monkeypatch):
    """predict_catalog gets the masses, their std and the std's parts from one pass of the ensemble (before:
    two, one for the mass and one for the parts), and gives what the model's predict and std_parts give."""
    from astropy.table import vstack

    from skcluster.io.events import offsets_to_events_table
    from skcluster.predict import predict_catalog
    from skcluster.workflow import MassModel

    model = _wrapped(fitted, mock, kind)
    rows = np.arange(6)
    positions = [(10.0 + 2 * i, 0.0) for i in rows]
    events = vstack([offsets_to_events_table(mock.X["events"][i], ra, dec) for i, (ra, dec) in zip(rows, positions)])
    cat = Table({"ra": [p[0] for p in positions], "dec": [0.0] * rows.size, "z": np.asarray(mock.X["z"])[rows],
                 "exposure": np.asarray(mock.X["exposure"])[rows]})
    # the two-pass answer: the model's own predict, and the ensemble's parts rescaled to its std
    ref_mean, ref_std = model.predict(mock.X[rows], return_std=True)
    mm = MassModel(model)
    ref_parts = mm.std_parts(mm.source.transform(mock.X[rows]))

    calls = []
    forward = DeepEnsembleRegressor._member_predictions

    def counted(self, X):
        calls.append(len(X["images"]))
        return forward(self, X)

    monkeypatch.setattr(DeepEnsembleRegressor, "_member_predictions", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predict_catalog(model, cat, events=events, exposure_col="exposure", pattern_types=None,
                              flag_mask="none", batch_size=4)
    assert calls == [4, 2]  # one pass per batch of clusters
    assert np.asarray(out["in_domain"]).all()
    np.testing.assert_allclose(out["log10_M500"], ref_mean, atol=1e-5)
    np.testing.assert_allclose(out["log10_M500_err"], ref_std, rtol=1e-5)
    scale = ref_std / ref_parts["total"]
    for key in ("photon", "network", "physics"):
        np.testing.assert_allclose(out[f"log10_M500_err_{key}"], scale * ref_parts[key], rtol=1e-5)
    # predict_with_parts is the model's predict, bit for bit, on the same cubes
    cubes = mm.source.transform(mock.X[rows])
    mean, std, parts = mm.predict_with_parts(cubes)
    a, b = mm.predict(cubes)
    np.testing.assert_array_equal(mean, a)
    np.testing.assert_array_equal(std, b)
    assert sorted(parts) == ["network", "photon", "physics", "total"]


# ------------------------------------------------------------------------- the command line
_TINY = ["--bands", "broad", "--max-epochs", "1", "--channels", "2", "--dense", "4", "--npix", "8",
         "--size-arcmin", "4", "-q"]


def test_train_physics_marginalised_and_predict_writes_the_three_parts(tmp_path, capsys):
    model = tmp_path / "m.skc"
    args = ["train", "--n-clusters", "12", "--physics-marginalised", "2", "--n-estimators", "4", *_TINY]
    assert main([*args, "--prior", "training", "--out", str(model)]) == EXIT_OK
    out = capsys.readouterr().out
    # --n-clusters in each draw: each CNN trains on as many clusters as without the draws
    assert "24 mock clusters (efeds depth, 2 physics draws (width 1), seed 0)" in out
    assert "physics marginalised over 2 draws" in out
    ens = persist.load(model)[-1]
    assert ens.member_groups == "physics_draw" and ens.member_groups_.tolist() == [0, 1, 0, 1]
    assert len(ens.physics_["draws"]) == 2 and ens.physics_["prior"]["sources"]["lx_slope"]

    sim = tmp_path / "sim"
    assert main(["simulate", "--n-clusters", "8", "--seed", "5", "--out", str(sim), "-q"]) == EXIT_OK
    cat = Table.read(sim / "catalog.fits")
    files = [str(sim / str(f).strip()) for f in cat["events_file"]]
    table = tmp_path / "masses.fits"
    assert main(["predict", "--model", str(model), "--catalog", str(sim / "catalog.fits"), "--events", *files,
                 "--exposure-col", "exposure", "--prefix", "p_", "--out", str(table), "-q"]) == EXIT_OK
    t = Table.read(table)
    parts = [np.asarray(t[f"p_log10_M500_err_{k}"]) for k in ("photon", "network", "physics")]
    ok = np.isfinite(t["p_log10_M500"])
    assert ok.any()
    np.testing.assert_allclose(sum(p[ok] ** 2 for p in parts), np.asarray(t["p_log10_M500_err"])[ok] ** 2,
                               rtol=1e-6)
    assert (parts[2][ok] > 0).all()  # two physics draws disagree somewhere in every mass

    # the default prior (fixed-mass, calibrated on physics-marginalised clusters too, or flat where a one-epoch
    # network cannot be calibrated) rescales the std, and the parts with it
    wrapped = tmp_path / "wrapped.skc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--out", str(wrapped)]) == EXIT_OK
        assert "physics marginalised over 2 draws" in capsys.readouterr().out
        assert main(["predict", "--model", str(wrapped), "--catalog", str(sim / "catalog.fits"), "--events", *files,
                     "--exposure-col", "exposure", "--prefix", "p_", "--out", str(tmp_path / "w.fits"),
                     "-q"]) == EXIT_OK
    t = Table.read(tmp_path / "w.fits")
    ok = np.isfinite(t["p_log10_M500"])
    got = sum(np.asarray(t[f"p_log10_M500_err_{k}"])[ok] ** 2 for k in ("photon", "network", "physics"))
    np.testing.assert_allclose(got, np.asarray(t["p_log10_M500_err"])[ok] ** 2, rtol=1e-6)

    # a model of one physics writes no parts
    plain = tmp_path / "plain.skc"
    assert main(["train", "--n-clusters", "24", "--n-estimators", "1", *_TINY, "--prior", "training",
                 "--out", str(plain)]) == EXIT_OK
    assert main(["predict", "--model", str(plain), "--catalog", str(sim / "catalog.fits"), "--events", *files,
                 "--exposure-col", "exposure", "--prefix", "p_", "--out", str(tmp_path / "plain.fits"),
                 "-q"]) == EXIT_OK
    assert "p_log10_M500_err_physics" not in Table.read(tmp_path / "plain.fits").colnames


def test_train_physics_marginalised_refuses_what_cannot_work(tmp_path, capsys):
    bad = tmp_path / "bad.skc"
    for extra, words in ((["--physics-marginalised", "2", "--n-estimators", "3"],
                          "--physics-marginalised 2 needs n_estimators a multiple of 2"),
                         (["--physics-width", "0.5"], "--physics-width 0.5 sets the physics prior"),
                         (["--physics-forms", "preset"], "--physics-forms 'preset' sets the physics prior")):
        assert main(["train", "--n-clusters", "24", *extra, *_TINY, "--out", str(bad)]) == EXIT_INPUT
        assert words in capsys.readouterr().err
        assert not bad.exists()
    with pytest.raises(SystemExit) as exc:  # a usage error of the parser
        main(["train", "--physics-width", "-1", "--out", str(bad)])
    assert exc.value.code == 2
    assert "a finite number >= 0" in capsys.readouterr().err


def test_train_with_the_presets_forms_draws_only_the_numbers(tmp_path, capsys):
    """--physics-forms preset: every draw on the beta model, King PSF, Tinker et al. 2008 and a straight L_X-M;
    the numbers drawn and mirrored as before; the file records the prior with the forms fixed, and loads."""
    from skcluster._cli_parser import PHYSICS_FORMS
    from skcluster.datasets import PRESET_FORMS_PHYSICS_PRIOR
    from skcluster.workflow import train_mass_model
    from skcluster.workflow.train import PHYSICS_FORMS as LIBRARY_FORMS

    assert PHYSICS_FORMS == tuple(LIBRARY_FORMS)   # the parser names them without importing the library
    for bad in ("Preset", ["preset"], None):
        with pytest.raises(ValueError, match="physics_forms must be one of"):
            train_mass_model(physics_marginalised=2, n_estimators=2, physics_forms=bad)
    model = tmp_path / "m.skc"
    assert main(["train", "--n-clusters", "12", "--physics-marginalised", "2", "--n-estimators", "2", *_TINY,
                 "--physics-forms", "preset", "--prior", "training", "--out", str(model)]) == EXIT_OK
    assert "2 physics draws (width 1, the preset's forms)" in capsys.readouterr().out
    physics = persist.load(model)[-1].physics_
    assert not physics["prior"].get("choices")
    assert physics["prior"]["fixed"] == dict(PRESET_FORMS_PHYSICS_PRIOR.fixed)
    preset = {"profile_form": "beta", "psf_form": "king", "mass_function_model": "tinker08", "lx_curvature": 0.0}
    for forms in physics["forms"]:
        assert {k: forms[k] for k in preset} == preset
    a, b = (d["lx_slope"] for d in physics["draws"])
    from skcluster.datasets import SurveyParameters

    assert a != b and a + b == pytest.approx(2 * SurveyParameters().lx_slope)   # numbers still drawn, mirrored
