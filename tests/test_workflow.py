"""The workflow layer: one reader for training and prediction, and train_mass_model as skcluster train."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skcluster.exceptions import SkclusterWarning
from skcluster.workflow import MassModel, read_training_set
from skcluster.workflow.observations import match_band_files

N = 4  # clusters of the property tests


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """Four clusters 1 deg apart, each with 40 photons in one plain event file, and a tiny fitted model."""
    from conftest import tiny_pipeline

    from skcluster.datasets import make_survey
    from skcluster.io import offsets_to_events_table

    folder = tmp_path_factory.mktemp("field")
    rng = np.random.default_rng(0)
    ra, dec = 150.0 + np.arange(N), np.linspace(-2.0, 2.0, N)
    tables = []
    for i in range(N):
        ev = np.zeros(40, dtype=[("x_arcsec", "f4"), ("y_arcsec", "f4"), ("energy_keV", "f4"), ("origin", "i1")])
        ev["x_arcsec"], ev["y_arcsec"] = rng.normal(0, 40, 40), rng.normal(0, 40, 40)
        ev["energy_keV"] = rng.uniform(0.5, 2.0, 40)
        tables.append(offsets_to_events_table(ev, ra[i], dec[i]))
    cols = [fits.Column(c, f, array=np.concatenate([t[c] for t in tables]), unit=u)
            for c, f, u in (("RA", "D", "deg"), ("DEC", "D", "deg"), ("PI", "E", "eV"))]
    events = folder / "sky.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(events)
    mock = make_survey(n_clusters=20, random_state=1, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tiny_pipeline().fit(mock.X, mock.y)
    return dict(ra=ra, dec=dec, z=np.full(N, 0.2), events=events, model=model)


def _table(f, **columns):
    return Table({"ra": f["ra"], "dec": f["dec"], "z": f["z"], "M500": np.full(N, 14.2), **columns})


def _outcome(call):
    """("refused", message) or ("accepted", the clusters with data) of one reader call."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "accepted", call()
    except ValueError as exc:
        return "refused", str(exc).split(";")[0][:40]


def _train(f, **kw):
    got = read_training_set(_table(f, **kw.pop("columns", {})), f["events"], mass_col="M500", pattern_types=None,
                            flag_mask=None, allow_empty=True, size_arcmin=4.0, **kw)
    return got.rows.tolist()


def _predict(f, **kw):
    from skcluster import predict_catalog

    out = predict_catalog(f["model"], _table(f, **kw.pop("columns", {})), events=[f["events"]],
                          pattern_types=None, flag_mask="none", **kw)
    return [i for i, r in enumerate(out["domain_reason"]) if "no exposure" not in r]


_EXPOSURES = st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e-3, 500.0, 2e4])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(_EXPOSURES, min_size=N, max_size=N))
def test_training_and_prediction_accept_and_refuse_the_same_exposure_columns(field, values):
    """An exposure column: refused by both (NaN, inf, < 0, or every cluster unexposed) or accepted by both,
    and then training keeps exactly the clusters prediction gives a mass to (0: unexposed, in neither)."""
    columns = {"texp": np.array(values)}
    train = _outcome(lambda: _train(field, columns=columns, exposure_col="texp"))
    pred = _outcome(lambda: _predict(field, columns=columns, exposure_col="texp"))
    assert train[0] == pred[0], (values, train, pred)
    if train[0] == "accepted":
        assert train[1] == pred[1] == [i for i, v in enumerate(values) if v > 0]
    else:
        assert train[1] == pred[1]  # the same message: the same rule refused it


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=st.sampled_from([0.0, -5.0, float("nan"), float("inf"), 1e-3, 1200.0]))
def test_training_and_prediction_accept_and_refuse_the_same_exposure_seconds(field, seconds):
    train = _outcome(lambda: _train(field, exposure_seconds=seconds))
    pred = _outcome(lambda: _predict(field, exposure_seconds=seconds))
    assert train[0] == pred[0] == ("accepted" if 0 < seconds < np.inf else "refused"), (seconds, train, pred)


def test_both_readers_refuse_two_sources_of_exposure_and_none(field):
    both = dict(columns={"texp": np.full(N, 100.0)}, exposure_col="texp", exposure_seconds=100.0)
    none = {}
    for kw, words in ((both, "give one source of exposure"), (none, "no exposure: give exposure maps")):
        for read in (_train, _predict):
            with pytest.raises(ValueError, match=words):
                read(field, **dict(kw))


_BANDS = [(0.5, 1.2), (1.2, 2.0), (2.0, 7.0)]


@settings(max_examples=40, deadline=None)
@given(order=st.permutations(range(3)), named=st.booleans(), given_order=st.permutations(range(3)))
def test_one_band_matcher_orders_files_as_asked(order, named, given_order):
    """Files named by band are ordered as the bands asked for, whatever order they come in; unnamed files
    take the bands given, in their order; a model's bands order them the same way."""
    names = [f"img_{int(_BANDS[k][0] * 1000):04d}_{int(_BANDS[k][1] * 1000):04d}.fits" if named else f"f{k}.fits"
             for k in order]
    if named:
        want = [_BANDS[k] for k in given_order]
        files, bands = match_band_files(names, "band images", bands=want)
        assert bands == want and files == [names[order.index(k)] for k in given_order]
        model_files, _ = match_band_files(names, "band images", target=want)
        assert model_files == files
    else:
        labels = [_BANDS[k] for k in order]
        files, bands = match_band_files(names, "band images", bands=labels)
        assert files == names and bands == labels
        with pytest.raises(ValueError, match="cannot tell the energy band"):
            match_band_files(names, "band images", target=_BANDS)


def test_band_matcher_names_missing_extra_and_doubled_bands():
    named = ["img_0500_1200.fits", "img_1200_2000.fits"]
    with pytest.raises(ValueError, match=r"missing band images for the band\(s\) 2-7 keV"):
        match_band_files(named, "band images", target=_BANDS)
    with pytest.raises(ValueError, match="also hold 1.2-2 keV"):
        match_band_files(named, "band images", target=_BANDS[:1])
    with pytest.raises(ValueError, match="several band images for the band 0.5-1.2 keV"):
        match_band_files(named + ["img_0500_1200_b.fits"], "band images", target=_BANDS[:2])
    with pytest.raises(ValueError, match="bands= says the band images hold"):
        match_band_files(named, "band images", bands=_BANDS[1:])


def test_mass_model_names_its_parts_and_predicts_through_its_own_predict(field):
    from sklearn.frozen import FrozenEstimator

    from skcluster.priors import PriorCorrectedRegressor

    pipe = field["model"]
    parts = MassModel(pipe)
    assert parts.source is pipe.named_steps["bin"] and parts.prior is None and parts.flagger is None
    assert parts.bands == [tuple(b) for b in pipe["bin"].bands_keV_] and parts.size_arcmin == 4.0
    from skcluster.datasets import make_survey

    X = make_survey(n_clusters=6, random_state=2, verbose=False).X
    cubes = parts.source.transform(X)
    np.testing.assert_allclose(parts.predict(cubes)[0], pipe.predict(X), rtol=0, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = PriorCorrectedRegressor(FrozenEstimator(pipe), target="flat").fit(X, np.linspace(14, 14.5, 6))
    parts = MassModel(wrapped)
    assert parts.prior is wrapped and parts.mass_prior == "flat" and parts.pipeline is pipe
    mean, std = parts.predict(cubes)
    want_mean, want_std = wrapped.predict(X, return_std=True)
    np.testing.assert_allclose(mean, want_mean, rtol=0, atol=1e-9)
    np.testing.assert_allclose(std, want_std, rtol=0, atol=1e-9)
    assert wrapped.estimator_.estimator is pipe  # the model was not modified


@pytest.mark.usefixtures("one_torch_thread")
def test_train_command_and_train_mass_model_give_the_same_model_file(tmp_path, capsys):
    """skcluster train and train_mass_model() from the same seed: the same model file (every parameter, weight
    and fitted array equal; only the times it took differ: the file's creation time, the epochs' and the
    members' training seconds)."""
    from skcluster import persist
    from skcluster.cli import EXIT_OK, main
    from skcluster.workflow import train_mass_model

    args = dict(n_clusters=30, bands="broad", size_arcmin=4.0, npix=8, n_estimators=1, max_epochs=1,
                channels=(2,), dense=(4,), prior="flat", random_state=4)
    cli_file, api_file = tmp_path / "cli.skc", tmp_path / "api.skc"
    assert main(["train", "--n-clusters", "30", "--bands", "broad", "--size-arcmin", "4", "--npix", "8",
                 "--n-estimators", "1", "--max-epochs", "1", "--channels", "2", "--dense", "4", "--prior", "flat",
                 "--seed", "4", "-q", "--out", str(cli_file)]) == EXIT_OK
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkclusterWarning)
        got = train_mass_model(**args)
    persist.save(got.model, api_file)
    assert got.prior == "flat" and got.masked  # the mock's detected point sources masked, as the command
    assert _members(cli_file) == _members(api_file)
    # and a different seed gives a different file: the comparison can fail
    other = train_mass_model(**{**args, "random_state": 5})
    persist.save(other.model, tmp_path / "other.skc")
    assert _members(tmp_path / "other.skc") != _members(api_file)


_TIMES = ("created", "dur", "fit_seconds_")


def _members(path):
    """The model file's tree without the times it took, and every array and tensor not a time."""
    import json
    import zipfile

    from safetensors.numpy import load

    with zipfile.ZipFile(path) as z:
        tree = json.loads(z.read("model.json"))
        arrays = {f"{n}:{k}": v.tobytes() for n in z.namelist() if n.endswith(".safetensors")
                  for k, v in load(z.read(n)).items()}
    times = []

    def strip(node):
        if isinstance(node, dict):
            for key in _TIMES:
                if key in node:
                    times.append(json.dumps(node.pop(key)))
            return {k: strip(v) for k, v in node.items()}
        return [strip(v) for v in node] if isinstance(node, list) else node

    tree = strip(tree)
    timed = {k for k in arrays if any('"%s"' % k.split(":")[1] in t for t in times)}
    assert timed, "the training seconds are saved as arrays: none found, so the test strips nothing"
    return tree, {k: v for k, v in arrays.items() if k not in timed}


def test_train_mass_model_refuses_options_that_do_nothing():
    from skcluster.workflow import train_mass_model

    for kw, words in ((dict(prior="flat", calibration_clusters=20), "only apply to the fixed-mass prior"),
                      (dict(calibration_fraction=0.2), "holds out a share of your clusters"),
                      (dict(prior="posterior"), "prior= must be one of"),
                      (dict(survey="deep"), "survey= must be one of")):
        with pytest.raises(ValueError, match=words):
            train_mass_model(**kw)


def test_model_files_that_spell_the_nh_column_the_old_way_load_and_measure_the_same(tmp_path):
    """ScalarObservables' nH_column is now nh_column; a file saved with the old name loads and measures alike."""
    import json
    import zipfile

    from skcluster import persist
    from skcluster.baselines import OBSERVABLE_BANDS_KEV, ScalarObservables
    from skcluster.datasets import make_survey

    X = make_survey(n_clusters=6, random_state=3, verbose=False).X[:2]
    X = X.assign(nh=np.array([3e20, 1e21]))  # grid nodes: two rate tables
    obs = ScalarObservables(source="events", bands_keV=OBSERVABLE_BANDS_KEV, size_arcmin=20.0, nh_column="nh").fit(X)
    persist.save(obs, tmp_path / "new.skc")
    with zipfile.ZipFile(tmp_path / "new.skc") as z:
        members = {n: z.read(n) for n in z.namelist()}
    tree = json.loads(members["model.json"])
    text = json.dumps(tree)
    assert '"nh_column": "nh"' in text and '"nH_column": "deprecated"' in text
    old = text.replace('"nh_column": "nh"', '"nh_column": null').replace('"nH_column": "deprecated"',
                                                                          '"nH_column": "nh"')
    with zipfile.ZipFile(tmp_path / "old.skc", "w") as z:
        for name, data in members.items():
            z.writestr(name, old.encode() if name == "model.json" else data)
    loaded = persist.load(tmp_path / "old.skc")
    assert loaded.nH_column == "nh" and loaded.nh_column is None
    np.testing.assert_array_equal(loaded.transform(X)["lx_erg_s"], obs.transform(X)["lx_erg_s"])


def test_moved_names_still_import_from_their_old_places_with_a_future_warning():
    import skcluster.io
    import skcluster.preprocessing
    from skcluster import models, workflow

    for module, name, home in ((skcluster.io, "read_training_set", workflow),
                               (skcluster.preprocessing, "make_preprocessing", models),
                               (skcluster.preprocessing, "STEP_NAMES", models)):
        with pytest.warns(FutureWarning, match=f"{name} moved to skcluster"):
            assert getattr(module, name) is getattr(home, name)
    with pytest.raises(AttributeError):
        skcluster.io.no_such_name  # noqa: B018
