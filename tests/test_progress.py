"""EpochProgress, the skorch callback of the networks (skcluster.nn.progress; before, skcluster.demo)."""

import json
import warnings
import zipfile

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_epoch_summary_gives_the_losses_and_training_cubes_per_second():
    from skcluster.nn.progress import epoch_summary

    row = {"train_loss": 1.23456, "valid_loss": 0.5, "dur": 0.5,
           "batches": [{"train_batch_size": 32, "train_loss": 1.0}, {"train_batch_size": 16, "train_loss": 1.0},
                       {"valid_batch_size": 8, "valid_loss": 1.0}]}
    assert epoch_summary(row) == {"train": "1.235", "valid": "0.500", "cubes/s": "96"}  # (32 + 16) / 0.5 s
    assert "cubes/s" not in epoch_summary({"train_loss": 1.0, "batches": [], "dur": 0.5})


def test_the_bar_shows_cubes_per_second_while_a_network_trains():
    from skcluster.nn import CNNRegressor, make_toy_sample
    from skcluster.nn.progress import EpochProgress

    shown = []

    class Recording(EpochProgress):
        def on_epoch_end(self, net, **kwargs):
            super().on_epoch_end(net, **kwargs)
            shown.append(self._bar.postfix)

    X, y = make_toy_sample(n_samples=64, random_state=0)
    net = CNNRegressor(max_epochs=2, batch_size=16, random_state=0, callbacks=[Recording()],
                       module__channels=(2,), module__dense=(4,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y)
    assert len(shown) == 2 and all("train=" in s and "valid=" in s and "cubes/s=" in s for s in shown), shown


def test_model_files_naming_the_old_path_of_epoch_progress_load_as_the_moved_class(tmp_path):
    """Files written before the move name skcluster.demo:EpochProgress; they load, and predict the same."""
    from skcluster import persist
    from skcluster.datasets import make_survey
    from skcluster.models import make_mass_pipeline
    from skcluster.nn.progress import EpochProgress

    data = make_survey("efeds", n_clusters=30, random_state=0, verbose=False)
    pipe = make_mass_pipeline(n_estimators=1, max_epochs=1, channels=(2,), dense=(4,), npix=8, size_arcmin=4.0,
                              random_state=0, verbose=0)
    pipe.set_params(model__estimator__callbacks=[EpochProgress()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(data.X, data.y)
    new = persist.save(pipe, tmp_path / "new.skc")
    with zipfile.ZipFile(new) as z:
        members = {n: z.read(n) for n in z.namelist()}
    text = members["model.json"].decode()
    assert "skcluster.nn.progress:EpochProgress" in text
    with zipfile.ZipFile(tmp_path / "old.skc", "w") as z:
        for name, raw in members.items():
            z.writestr(name, text.replace("skcluster.nn.progress:EpochProgress",
                                          "skcluster.demo:EpochProgress").encode() if name == "model.json" else raw)
    assert "skcluster.demo:EpochProgress" in json.dumps(json.loads(zipfile.ZipFile(tmp_path / "old.skc")
                                                                   .read("model.json")))
    old = persist.load(tmp_path / "old.skc")
    callbacks = old["model"].estimator.callbacks
    assert len(callbacks) == 1 and type(callbacks[0]) is EpochProgress
    import skcluster.demo

    assert skcluster.demo.EpochProgress is EpochProgress  # the old name resolves to the moved class
    np.testing.assert_array_equal(old.predict(data.X[:5]), pipe.predict(data.X[:5]))
