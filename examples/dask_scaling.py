"""Scale out with Dask: simulate, train and predict on a dask.distributed cluster.

skcluster parallelises with joblib (through scikit-learn's ``Parallel``), so
the same code runs on a Dask cluster inside
``joblib.parallel_config(backend="dask")``: the mock survey's sky tiles and
the ensemble's members become Dask tasks, and the results are the same as on
one machine for the same seeds. Here a ``LocalCluster`` of 2 workers stands
in for a real cluster: point ``Client`` at your scheduler's address instead
(``Client("tcp://scheduler:8786")``). Needs ``pip install "skcluster[dask]"``.

Prediction streams a large catalogue tile by tile (``iter_survey``) through
the fitted pipeline in batches (``predict_stream``), so memory stays bounded
however many clusters there are.

    python examples/dask_scaling.py           # 1000 training clusters, 4 CNNs, 5000 to predict
    python examples/dask_scaling.py --quick
"""

import argparse

import joblib
import numpy as np

from skcluster.datasets import iter_survey, make_survey
from skcluster.metrics import mass_scatter
from skcluster.models import make_mass_pipeline
from skcluster.streaming import predict_stream


def main(quick=False):
    from dask.distributed import Client, LocalCluster

    n_train, n_members, epochs, n_predict = (60, 2, 1, 60) if quick else (1000, 4, 20, 5000)
    small_net = dict(channels=(8, 16), dense=(16,)) if quick else {}
    # (in a script the workers are new processes: keep this under `if __name__ == "__main__":`)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client:
        print("dashboard:", client.dashboard_link)
        with joblib.parallel_config(backend="dask"):
            # sky tiles simulated on the workers; the same survey as with n_jobs=1
            data = make_survey("efeds", n_clusters=n_train, random_state=0, n_jobs=-1)
            # ensemble members trained on the workers (torch threads set per worker)
            pipe = make_mass_pipeline(n_estimators=n_members, max_epochs=epochs, n_jobs=-1, random_state=0,
                                      verbose=1, **small_net)
            pipe.fit(data.X, data.y)
            # a new catalogue, simulated tile by tile on the workers, predicted here in batches
            truth = []

            def tiles():
                for b in iter_survey("efeds", n_clusters=n_predict, random_state=1, n_jobs=-1, verbose=False):
                    truth.append(b.y)
                    yield b.X

            res = predict_stream(pipe, tiles(), batch_size=512, total=n_predict)
    y = np.concatenate(truth)
    print(f"{len(y)} clusters predicted in {res.n_batches} batches: scatter {100 * mass_scatter(y, res.mean):.1f}%, "
          f"mean std {np.mean(res.std):.3f} dex")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
