"""Tune preprocessing and network settings together with GridSearchCV.

Every step of the standard pipeline is a scikit-learn estimator, so
``GridSearchCV`` can vary the energy bands, the smoothing and the network
at once (parameter names ``<step>__<parameter>``; the ensemble's members
are ``model__estimator__...``). Scored by the mass scatter
(``neg_mass_scatter``: greater is better) on held-out folds; the other
skcluster scorers (``neg_crps``, ``neg_coverage_error_68``, ...) work the
same way. Tiny on purpose: 4 candidates x 2 folds of a small mock.

    python examples/grid_search.py            # ~300 clusters: a few minutes on 2 cores
    python examples/grid_search.py --quick
"""

import argparse

from sklearn.model_selection import GridSearchCV, KFold

from skcluster.datasets import make_survey
from skcluster.metrics import get_scorer
from skcluster.models import make_mass_pipeline


def main(quick=False):
    n_clusters, epochs = (60, 1) if quick else (300, 8)
    data = make_survey("efeds", n_clusters=n_clusters, random_state=1)
    pipe = make_mass_pipeline(n_estimators=1, max_epochs=epochs, random_state=0,
                              channels=(8, 16), dense=(16,))
    grid = {
        "bin__bands": ["ho3", "krippendorf10"],  # 3 bands (Ho et al. 2023) or 10 (Krippendorf et al. 2023)
        "smooth__sigma": [0.5, 1.5],             # Gaussian smoothing, pixels
    }
    if not quick:
        grid["model__estimator__lr"] = [1e-3, 3e-3]
    search = GridSearchCV(pipe, grid, cv=KFold(2, shuffle=True, random_state=0),
                          scoring={"scatter": get_scorer("neg_mass_scatter"), "crps": get_scorer("neg_crps")},
                          refit="scatter")
    search.fit(data.X, data.y)
    res = search.cv_results_
    for i in range(len(res["params"])):
        print(f"{res['params'][i]}: scatter {-100 * res['mean_test_scatter'][i]:.1f}%, "
              f"CRPS {-res['mean_test_crps'][i]:.3f} dex")
    print("best:", search.best_params_)
    return search


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
