"""Train the standard mass model on the built-in mock survey and compare it with the count-rate method.

The steps of ``skcluster demo`` written out, to copy and change: simulate an
eFEDS-like mock, split it, fit the standard pipeline (band binning, resize,
smoothing, count scaling, redshift join, a deep ensemble of CNNs), fit a
count-rate scaling relation on the same clusters, compare both on the
held-out ones, save a figure and the model.

    python examples/train_on_mock.py            # 2000 clusters, 5 CNNs: ~5-10 min on 2 cores
    python examples/train_on_mock.py --quick    # a tiny run to check that it works
"""

import argparse

import numpy as np
from sklearn.model_selection import train_test_split

from skcluster import persist
from skcluster.baselines import ScalarObservables, make_baseline
from skcluster.datasets import make_survey
from skcluster.metrics import interval_coverage, mass_bias, mass_scatter
from skcluster.models import make_mass_pipeline
from skcluster.plotting import plot_performance


def main(quick=False, out="mock_model"):
    n_clusters, n_members, epochs = (100, 1, 2) if quick else (2000, 5, 30)
    small_net = dict(channels=(8, 16), dense=(16,)) if quick else {}

    # 1. a mock eFEDS survey: event lists per cluster (X), true masses (y), catalogue
    data = make_survey("efeds", n_clusters=n_clusters, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, test_size=0.25, random_state=0)

    # 2. the CNN deep ensemble: bins the events itself (BandBinner is the first step)
    pipe = make_mass_pipeline(bands="krippendorf10", n_estimators=n_members, max_epochs=epochs,
                              random_state=0, verbose=1, **small_net)
    pipe.fit(X_train, y_train)
    mean, std = pipe.predict(X_test, return_std=True)  # log10 M500c / Msun and its std (dex)

    # 3. the traditional method: a count-rate scaling relation, the rate measured within r500
    #    from the same events in the eFEDS detection band (0.2-2.3 keV)
    observables = ScalarObservables(source="events", bands_keV=[(0.2, 2.3)])
    baseline = make_baseline("count_rate", observables=observables).fit(X_train, y_train)
    mean_cr, std_cr = baseline.predict(X_test, return_std=True)

    for name, (m, s) in {"CNN ensemble": (mean, std), "count rate": (mean_cr, std_cr)}.items():
        print(f"{name:>13}: scatter {100 * mass_scatter(y_test, m):5.1f}%  "
              f"bias {100 * mass_bias(y_test, m):+5.1f}%  "
              f"68% coverage {interval_coverage(y_test, m, s):.2f}")

    fig = plot_performance(y_test, {"CNN ensemble": (mean, std), "count rate": (mean_cr, std_cr)},
                           z=np.asarray(X_test["z"]))
    fig.savefig(f"{out}_performance.png", dpi=110)
    persist.save(pipe, f"{out}.skc", overwrite=True)  # loads with persist.load; no pickle
    print(f"wrote {out}_performance.png and {out}.skc")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to check that it runs")
    ap.add_argument("--out", default="mock_model", help="prefix of the files written")
    args = ap.parse_args()
    main(quick=args.quick, out=args.out)
