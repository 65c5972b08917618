"""``DeepEnsembleRegressor``: independently seeded members combined as a Gaussian mixture.

A deep ensemble (Lakshminarayanan et al. 2017, arXiv:1612.01474; used for
cluster masses by Krippendorf et al. 2023, arXiv:2305.00016, with 30 CNNs)
trains the same network several times from different random seeds. Each
member i predicts a Gaussian N(mu_i, sigma_i^2); the ensemble predicts the
equally weighted mixture, whose mean and variance are::

    mu    = mean_i mu_i
    var   = mean_i (sigma_i^2 + mu_i^2) - mu^2
          = mean_i sigma_i^2          (aleatoric: noise the members see)
          + mean_i (mu_i - mu)^2      (epistemic: the members' disagreement)

Members of :class:`~skcluster.nn.CNNRegressor` train by default as one
vectorised network (:mod:`skcluster.nn.vectorised`): every layer holds the M
members' weights, each member keeps its own seed, validation split,
shuffling, augmentation and early stopping, and the fitted members are
ordinary ``CNNRegressor`` objects. Otherwise members run one after another
or in parallel through :mod:`sklearn.utils.parallel`, so
``joblib.parallel_config(backend="dask")`` sends them to a Dask cluster.

A physics-marginalised ensemble (``member_groups="physics_draw"``) trains
each member on the clusters of one physics draw of the mock
(:func:`skcluster.datasets.make_marginalised_survey`): with K draws and
K * m members, member i trains on draw i mod K. Its spread then carries
the physics the mock does not know, and :meth:`predict_components` splits
the variance by the law of total variance, over draws and then members::

    var = mean_i sigma_i^2                        (photon noise: the members' own)
        + mean_k mean_{i in k} (mu_i - mu_k)^2    (network: members of one draw disagree)
        + mean_k (mu_k - mu)^2                    (physics: the draws' means disagree)
"""

from __future__ import annotations

import copy
import inspect
import os
import sys
import threading
import time
from collections.abc import Mapping

import numpy as np
from joblib import effective_n_jobs
from joblib.parallel import get_active_backend
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _assert_all_finite,
    _check_sample_weight,
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    has_fit_parameter,
    validate_data,
)

from ._validation import check_positive_int
from .mixture import mixture_components, mixture_group_components, mixture_moments
from .sample import ClusterSample

__all__ = ["DeepEnsembleRegressor", "EnsembleFitError", "mixture_components", "mixture_moments"]

_MAX_SEED = np.iinfo(np.int32).max


class EnsembleFitError(RuntimeError):
    """A worker process died (killed, out of memory) while training members.

    Errors raised by a member's own ``fit`` propagate unchanged (with a note
    naming the member).
    """


def _check_rows(means, variances, n):
    """The members' predictions, one per row of the input each, or RuntimeError."""
    for what, values in (("means", means), ("variances", variances)):
        if values is not None and values.shape[1:] != (n,):
            raise RuntimeError(f"DeepEnsembleRegressor: the members' {what} have shape {values.shape}, "
                               f"not one per each of the {n} input rows")
    return means, variances


def _final_estimator(est):
    while hasattr(est, "_final_estimator"):  # Pipeline
        est = est._final_estimator
    return est


def _predicts_std(est):
    """Whether ``est.predict`` takes ``return_std`` (looking through Pipelines)."""
    final = _final_estimator(est)
    predict = getattr(final, "predict", None)
    if predict is None:
        return False
    try:
        return "return_std" in inspect.signature(predict).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _member_seeds(estimator, seed):
    """Params setting every ``random_state`` inside ``estimator`` from ``seed``."""
    rs = np.random.RandomState(seed)
    out = {}
    for key in sorted(estimator.get_params(deep=True)):
        if key == "random_state" or key.endswith("__random_state"):
            out[key] = int(rs.randint(_MAX_SEED))
    return out


def _fit_member(estimator, X, y, indices, fit_params, torch_threads, index, caller_pid, sample_weight=None):
    """Fit one member (runs in a worker). Returns ``(fitted, seconds, pid)``."""
    start = time.perf_counter()
    if indices is not None:
        X = _safe_indexing(X, indices)
        y = y[indices]
        sample_weight = None if sample_weight is None else sample_weight[indices]
    if sample_weight is not None:
        fit_params = {**fit_params, "sample_weight": sample_weight}
    old_threads = None
    # torch's thread count is per process: set it in worker processes and in
    # the caller's own thread (sequential), not from threads sharing the
    # caller's process (threading backend), where it would race.
    own_process = os.getpid() != caller_pid or threading.current_thread() is threading.main_thread()
    if torch_threads and own_process and "torch" in sys.modules:
        torch = sys.modules["torch"]
        old_threads = torch.get_num_threads()
        torch.set_num_threads(int(torch_threads))
    try:
        estimator.fit(X, y, **fit_params)
    except Exception as exc:
        # Keep the member's exception type (sklearn's checks and users catch
        # ValueError & co.); say which member it was.
        if hasattr(exc, "add_note"):
            exc.add_note(f"(while fitting ensemble member {index}, {type(estimator).__name__})")
        raise
    finally:
        if old_threads is not None:
            sys.modules["torch"].set_num_threads(old_threads)
    return estimator, time.perf_counter() - start, os.getpid()


def _without_column(X, name):
    """The mapping ``X`` without its column ``name`` (a new one; ``X`` is not modified)."""
    if isinstance(X, ClusterSample):
        return X.drop(name)
    return type(X)(**{k: v for k, v in X.items() if k != name})


def _is_worker_death(exc):
    name = type(exc).__name__
    return name in ("TerminatedWorkerError", "KilledWorker", "BrokenProcessPool", "WorkerLostError")


class DeepEnsembleRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """Deep ensemble: ``n_estimators`` seeded copies of a regressor, mixed.

    Parameters
    ----------
    estimator : estimator object, default=None
        The member (cloned ``n_estimators`` times). Members with
        ``predict(X, return_std=True)`` (:class:`~skcluster.nn.CNNRegressor`,
        ``BayesianRidge``, ``GaussianProcessRegressor``, or a Pipeline ending
        in one) contribute their own variance; others only their spread.
        ``None`` means ``CNNRegressor()``.
    n_estimators : int, default=5
        Number of members: 5, the package's recommended default on CPUs
        (``make_mass_pipeline``, ``skcluster train``); Krippendorf et al.
        2023 used 30 (pass 30 on a GPU).
    bootstrap : bool, default=False
        Fit each member on a bootstrap resample of the rows instead of all of
        them (deep ensembles usually rely on the random seeds alone).
    n_jobs : int, default=None
        Members trained in parallel (joblib semantics; ``None`` is 1 unless
        inside a ``joblib.parallel_config`` context). Inside
        ``joblib.parallel_config(backend="dask")`` the members run on the Dask
        cluster. The fitted members do not depend on ``n_jobs`` except through
        the number of torch threads (see ``torch_threads``).
    random_state : int, RandomState instance or None, default=None
        Draws one seed per member, once, up front; each member's
        ``random_state`` parameters (also nested ones) are set from it.
    torch_threads : int, default=None
        torch threads inside each member's fit. ``None``: the number of CPUs
        divided by the number of members running at once (all CPUs when
        sequential). Float sums depend on the thread count at the 1e-7
        level, so bit-identical members across different ``n_jobs`` need a
        fixed ``torch_threads`` (e.g. 1).
    verbose : int, default=0
        > 0 shows a progress bar (tqdm) and a summary line: over members when
        they train one by one, over epochs (with the number of members still
        training and the best validation loss) when they train vectorised.
    vectorize : {"auto", True, False}, default="auto"
        Train (and predict with) all members as one stacked network
        (:class:`~skcluster.nn.stacked.StackedClusterCNN`) instead of one
        after another. "auto" does so when the member is a
        :class:`~skcluster.nn.CNNRegressor` the vectorised path supports and
        the members would otherwise run in one process (``n_jobs`` 1 or
        None, no Dask backend); True requires it (``ValueError`` naming the
        reason if the member is not supported; ``n_jobs`` is then unused);
        False always trains and predicts member by member. Not supported
        (sequential under "auto"): members other than ``CNNRegressor`` with
        the ``ClusterCNN`` module and ``GaussianNLLLoss``, optimizers other
        than Adam, AdamW and SGD, callbacks other than progress displays
        (learning-rate schedulers, gradient clipping, checkpoints; progress
        callbacks are not run, the ensemble's progress bar replaces them),
        float16 autocast, ``warm_start``, a custom
        ``train_split`` or iterator, and fit parameters. Each vectorised
        member gets the initial weights, validation split, shuffling,
        augmentation and dropout draws, and early stopping a sequential fit
        with the same seed gives it; the results differ from the
        sequential ones only by float rounding (the order of operations
        differs), which many epochs of training amplify: on the learning
        curve's 8000 training clusters the same three seeds stopped at
        best epochs 36, 25, 20 vectorised (one thread) and 47, 25, 44 in separate
        processes (``n_jobs=2``), and the scatter of the two ensembles
        differed by 0.8% (paired ratio 1.008 [1.002, 1.013]). Compare
        models trained the same way. The members' own ``verbose`` epoch tables are replaced by
        the ensemble's progress bar (``verbose``). Memory: the M members'
        activations of one batch at once (about M times one member's).
        Prediction runs all members in one stacked forward whenever they are
        ``CNNRegressor`` networks of identical architecture and settings
        (also for members trained sequentially), unless ``vectorize=False``.
    member_groups : None or str, default=None
        ``None``: every member trains on all rows (or its bootstrap of
        them). A column name of ``X`` (a mapping such as a
        :class:`~skcluster.ClusterSample`), e.g. ``"physics_draw"`` of
        :func:`~skcluster.datasets.make_marginalised_survey`: integer
        labels of K groups of rows; ``n_estimators`` must be a multiple
        K * m of K, and member i trains only on the rows of the (i mod K)-th
        label in sorted order (its bootstrap of them with ``bootstrap``).
        The column is not passed to the members, in ``fit`` or
        ``predict``, and is not needed to predict. Vectorised training
        needs groups of equal size (under "auto" unequal ones train one
        member after another). :meth:`predict_components` then also splits
        the std into photon, network and physics parts.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members.
    seeds_ : ndarray of shape (n_estimators,)
        The seed of each member.
    member_has_std_ : bool
        Whether members predict their own standard deviation.
    fit_seconds_ : ndarray of shape (n_estimators,)
        Wall-clock training time of each member (vectorised: from the start
        until the member stopped, the members training at the same time).
    vectorised_ : bool
        Whether the members were trained vectorised.
    member_groups_ : ndarray of shape (n_estimators,) or None
        With ``member_groups``: the group label each member trained on.
    physics_ : dict or None
        With a sample whose ``meta["physics"]`` records its physics
        (:func:`~skcluster.datasets.make_survey`,
        :func:`~skcluster.datasets.make_marginalised_survey`): ``{"prior":
        {"ranges", "sources", "fixed"}, "width", "draws", "forms"}``
        (:func:`~skcluster.datasets.physics_prior.physics_record`): with
        ``member_groups``, the draws (and the functional forms each was
        simulated with) of the groups the members trained on, in label
        order; without, the sample's record as it is (one draw for a
        :func:`~skcluster.datasets.make_survey` sample: the preset's forms,
        or its draw of ``physics=``). None for a sample that records no
        physics (your own clusters). The model file keeps it.
    n_features_in_ : int
        Number of features (only when fitted on a 2-D array).
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Only when fitted on a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import BayesianRidge
    >>> from skcluster.ensemble import DeepEnsembleRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 3)); y = X @ [1.0, 2.0, 0.0] + rng.normal(0, 0.1, 50)
    >>> ens = DeepEnsembleRegressor(BayesianRidge(), n_estimators=5, bootstrap=True,
    ...                             random_state=0).fit(X, y)
    >>> mean, std = ens.predict(X[:2], return_std=True)
    >>> parts = ens.predict_components(X[:2])
    >>> bool(np.allclose(parts.std**2, parts.aleatoric_std**2 + parts.epistemic_std**2))
    True
    """

    def __init__(
        self,
        estimator=None,
        n_estimators=5,
        *,
        bootstrap=False,
        n_jobs=None,
        random_state=None,
        torch_threads=None,
        verbose=0,
        vectorize="auto",
        member_groups=None,
    ):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.torch_threads = torch_threads
        self.verbose = verbose
        self.vectorize = vectorize
        self.member_groups = member_groups

    # ----------------------------------------------------------------- helpers
    def __sklearn_is_fitted__(self):
        # Fitted means: members exist. (``n_features_in_`` is set before the
        # members are trained and stays after a failed fit.)
        return hasattr(self, "estimators_")

    def _member_template(self):
        if self.estimator is None:
            from .nn import CNNRegressor

            return CNNRegressor()
        return self.estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        member = self._member_template()
        try:
            mtags = get_tags(member)
        except Exception:  # pragma: no cover - a member without tags
            return tags
        tags.input_tags.allow_nan = mtags.input_tags.allow_nan
        tags.input_tags.sparse = mtags.input_tags.sparse
        tags.input_tags.two_d_array = mtags.input_tags.two_d_array
        tags.input_tags.string = mtags.input_tags.string
        tags.input_tags.categorical = mtags.input_tags.categorical
        return tags

    def _validate_X_y(self, X, y, reset):
        """Arrays are checked like any sklearn input; mappings go to the members.

        So do arrays for members that do not take 2-D matrices (a
        CNNRegressor takes a bare (n, B, H, W) cube).
        """
        where = f"{type(self).__name__}.{'fit' if reset else 'predict'}"
        tags = self.__sklearn_tags__()
        if isinstance(X, Mapping) or not tags.input_tags.two_d_array:
            if reset:
                for attr in ("n_features_in_", "feature_names_in_"):
                    if hasattr(self, attr):
                        delattr(self, attr)
                if y is None:
                    raise ValueError(
                        f"{where}: {type(self).__name__} requires y to be passed, but the target y is None"
                    )
                y = column_or_1d(y, warn=True)
                if y.dtype.kind not in "fiub":
                    raise TypeError(f"{where}: y must be numeric, got dtype {y.dtype}")
                y = y.astype(np.float64)
                _assert_all_finite(y, input_name="y")
                check_consistent_length(X, y)
            return X, y
        kwargs = dict(
            accept_sparse=["csr", "csc"] if tags.input_tags.sparse else False,
            # numeric members get numbers (object arrays of numbers converted);
            # members taking strings/categories get X as it is
            dtype=None if (tags.input_tags.string or tags.input_tags.categorical) else "numeric",
            ensure_all_finite=not tags.input_tags.allow_nan,
            reset=reset,
        )
        if reset:
            X, y = validate_data(self, X, y, y_numeric=True, multi_output=False, **kwargs)
            y = np.asarray(y, dtype=np.float64)
            return X, y
        return validate_data(self, X, **kwargs), None

    def _torch_threads(self, n_parallel):
        if self.torch_threads is not None:
            return int(self.torch_threads)
        if n_parallel <= 1:
            return None  # leave the caller's setting alone
        return max(1, (os.cpu_count() or 1) // n_parallel)

    # --------------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit ``n_estimators`` seeded clones of ``estimator``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or ClusterSample
            Anything the member accepts and sklearn can index by rows.
        y : array-like of shape (n_samples,)
            The target (log10 M500c for cluster masses).
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to each member's ``fit`` (its bootstrap rows' weights when
            ``bootstrap``); the member must accept ``sample_weight``.
        **fit_params : dict
            Passed to each member's ``fit``.

        Returns
        -------
        self : DeepEnsembleRegressor

        Raises
        ------
        EnsembleFitError
            When a worker process dies (killed, out of memory). Errors of a
            member's own ``fit`` propagate with their type. Either way no
            member is kept: the estimator is left unfitted, so nothing
            partial can be saved.
        """
        for attr in ("estimators_", "seeds_", "member_has_std_", "fit_seconds_", "vectorised_", "member_groups_",
                     "physics_"):
            if hasattr(self, attr):  # a failed refit must not leave the old model
                delattr(self, attr)
        check_positive_int(self.n_estimators, "n_estimators")
        check_positive_int(self.torch_threads, "torch_threads", allow_none=True)
        if not (isinstance(self.vectorize, (bool, np.bool_)) or self.vectorize == "auto"):
            raise ValueError(f"vectorize must be 'auto', True or False, got {self.vectorize!r}")
        X, y = self._validate_X_y(X, y, reset=True)
        n = _num_samples(X)
        if n < 1:
            raise ValueError(f"{type(self).__name__}.fit: X has no rows")
        X, group_rows, physics = self._group_rows(X, n)
        template = self._member_template()
        if sample_weight is not None:
            if not has_fit_parameter(template, "sample_weight"):
                raise TypeError(f"{type(self).__name__}.fit: sample_weight was given, but the member "
                                f"{type(template).__name__} does not take sample_weight in fit")
            sample_weight = _check_sample_weight(sample_weight, y, dtype=np.float64)

        rs = check_random_state(self.random_state)
        seeds = rs.randint(_MAX_SEED, size=self.n_estimators)
        members, index_sets = [], []
        for i, seed in enumerate(seeds):
            member = clone(template)
            params = _member_seeds(member, int(seed))
            if params:
                member.set_params(**params)
            members.append(member)
            if group_rows is None:
                index_sets.append(np.random.RandomState(seed).randint(0, n, n) if self.bootstrap else None)
            else:
                rows = group_rows[i % len(group_rows)][1]
                index_sets.append(rows[np.random.RandomState(seed).randint(0, rows.size, rows.size)]
                                  if self.bootstrap else rows)
        groups = None if group_rows is None else np.array([group_rows[i % len(group_rows)][0]
                                                           for i in range(self.n_estimators)])

        if self._use_vectorised(template, fit_params, index_sets):
            self._fit_vectorised(members, X, y, index_sets, seeds, sample_weight)
            return self._set_groups(groups, physics)

        n_parallel = min(self.n_estimators, effective_n_jobs(self.n_jobs))
        threads = self._torch_threads(n_parallel)
        backend = get_active_backend()[0]
        use_generator = self.verbose > 0 and getattr(backend, "supports_return_generator", False)
        parallel = Parallel(
            n_jobs=self.n_jobs, return_as="generator" if use_generator else "list"
        )
        tasks = (
            delayed(_fit_member)(m, X, y, idx, fit_params, threads, i, os.getpid(), sample_weight)
            for i, (m, idx) in enumerate(zip(members, index_sets))
        )
        start = time.perf_counter()
        try:
            results = parallel(tasks)
            if use_generator:
                from tqdm.auto import tqdm

                results = list(
                    tqdm(results, total=self.n_estimators, desc="ensemble members", unit="member")
                )
        except Exception as exc:
            if _is_worker_death(exc):
                raise EnsembleFitError(
                    f"a worker process died while training the ensemble "
                    f"({type(exc).__name__}: {exc}). It was killed or ran out of memory; "
                    "no member was kept and nothing was saved. Retry with fewer parallel "
                    "jobs (n_jobs) or more memory per worker."
                ) from exc
            raise
        fitted = [r[0] for r in results]
        self.fit_seconds_ = np.array([r[1] for r in results])
        self.seeds_ = seeds
        self.member_has_std_ = all(_predicts_std(m) for m in fitted)
        self.vectorised_ = False
        self.estimators_ = fitted
        if self.verbose:
            pids = len({r[2] for r in results})
            print(
                f"[DeepEnsembleRegressor] {self.n_estimators} members in "
                f"{time.perf_counter() - start:.1f} s on {pids} process(es), "
                f"torch threads per member: {threads or 'unchanged'}"
            )
        return self._set_groups(groups, physics)

    def _group_rows(self, X, n):
        """``(X without the group column, [(label, rows), ...] or None, physics record or None)``."""
        col = self.member_groups
        record = X.meta.get("physics") if hasattr(X, "meta") else None
        if not (isinstance(record, Mapping) and {"prior", "width", "draws"} <= set(record)
                and isinstance(record["draws"], list)):
            record = None
        if col is None:  # one set of members for all rows: the sample's whole record (make_survey's one draw)
            keep = ("prior", "width", "draws", "forms")
            return X, None, None if record is None else copy.deepcopy({k: record[k] for k in keep if k in record})
        where = f"{type(self).__name__}.fit"
        if not isinstance(col, str):
            raise ValueError(f"member_groups must be None or the name of a column of X, got {col!r}")
        if not isinstance(X, Mapping) or col not in X:
            have = sorted(X.keys()) if isinstance(X, Mapping) else f"a {type(X).__name__}, not a mapping"
            raise ValueError(f"{where}: member_groups={col!r} names a column of X, but X has none of that "
                             f"name ({have}); a physics-marginalised sample "
                             "(skcluster.datasets.make_marginalised_survey) has 'physics_draw'")
        labels = np.asarray(X[col])
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"{where}: column {col!r} must hold one integer label per row, got dtype "
                             f"{labels.dtype} and shape {labels.shape}")
        values = np.unique(labels)
        if self.n_estimators % values.size:
            raise ValueError(f"{where}: X has {values.size} groups in {col!r} ({values.tolist()[:10]}), so "
                             f"n_estimators={self.n_estimators} must be a multiple of {values.size} (an equal "
                             "number of members per group)")
        physics = None
        if record is not None and all(0 <= v < len(record["draws"]) for v in values.tolist()):
            # (a make_marginalised_survey record, of the draws the members train on)
            physics = {"prior": record["prior"], "width": record["width"],
                       "draws": [record["draws"][int(v)] for v in values]}
            if isinstance(record.get("forms"), list) and len(record["forms"]) == len(record["draws"]):
                physics["forms"] = [record["forms"][int(v)] for v in values]  # (the forms each draw used)
            physics = copy.deepcopy(physics)
        return _without_column(X, col), [(v, np.flatnonzero(labels == v)) for v in values], physics

    def _set_groups(self, groups, physics):
        self.member_groups_ = groups
        self.physics_ = physics
        return self

    def _vectorise_unsupported(self, template, fit_params):
        """Why the members cannot train vectorised (None: they can)."""
        if not type(template).__module__.startswith("skcluster.nn"):
            return f"the member is a {type(template).__name__}, not a CNNRegressor"
        from .nn.vectorised import vectorise_unsupported

        return vectorise_unsupported(template, fit_params)

    def _use_vectorised(self, template, fit_params, index_sets=()):
        if self.vectorize is False or self.vectorize is np.False_:
            return False
        why = self._vectorise_unsupported(template, fit_params)
        sizes = sorted({len(idx) for idx in index_sets if idx is not None})
        if not why and len(sizes) > 1:
            why = (f"the groups of member_groups={self.member_groups!r} hold different numbers of rows "
                   f"({sizes[0]} to {sizes[-1]})")
        if self.vectorize is True or self.vectorize is np.True_:
            if why:
                raise ValueError(f"{type(self).__name__}: vectorize=True, but {why}; use vectorize='auto' or False")
            return True
        if why:
            return False
        backend = type(get_active_backend()[0]).__name__
        return effective_n_jobs(self.n_jobs) == 1 and "Dask" not in backend

    def _fit_vectorised(self, members, X, y, index_sets, seeds, sample_weight=None):
        from .nn.vectorised import fit_vectorised

        threads = self._torch_threads(1)
        old_threads = None
        if threads:
            import torch

            old_threads = torch.get_num_threads()
            torch.set_num_threads(threads)
        start = time.perf_counter()
        try:
            fitted, seconds = fit_vectorised(members, X, y, index_sets, verbose=self.verbose,
                                             sample_weight=sample_weight)
        finally:
            if old_threads is not None:
                sys.modules["torch"].set_num_threads(old_threads)
        self.fit_seconds_ = np.asarray(seconds, dtype=float)
        self.seeds_ = seeds
        self.member_has_std_ = all(_predicts_std(m) for m in fitted)
        self.vectorised_ = True
        self.estimators_ = fitted
        if self.verbose:
            epochs = [m.n_epochs_ for m in fitted]
            print(
                f"[DeepEnsembleRegressor] {self.n_estimators} members in "
                f"{time.perf_counter() - start:.1f} s, vectorised in one process "
                f"({min(epochs)}-{max(epochs)} epochs), torch threads: {threads or 'unchanged'}"
            )
        return self

    # ----------------------------------------------------------------- predict
    def _stacked_predictions(self, X):
        """(means, variances) from one stacked forward, or None (members not stackable)."""
        if self.vectorize is False or self.vectorize is np.False_ or not self.member_has_std_:
            return None
        members = self.estimators_
        if len(members) < 2 or not type(members[0]).__module__.startswith("skcluster.nn"):
            return None
        from .nn.vectorised import stacked_predict

        return stacked_predict(self, members, X)

    def _member_predictions(self, X):
        check_is_fitted(self, "estimators_")
        X, _ = self._validate_X_y(X, None, reset=False)
        if getattr(self, "member_groups_", None) is not None and isinstance(X, Mapping) \
                and self.member_groups in X:  # the training labels are not the members' input
            X = _without_column(X, self.member_groups)
        n = _num_samples(X)
        stacked = self._stacked_predictions(X)
        if stacked is not None:
            return _check_rows(*stacked, n)
        means, variances = [], []
        members = self.estimators_
        if self.verbose > 0 and len(members) > 1:
            from tqdm.auto import tqdm

            members = tqdm(members, desc="ensemble predict", unit="member")
        for est in members:
            if self.member_has_std_ and hasattr(est, "predict_members"):
                # a packed ensemble: each of its members joins the mixture
                mus, var = est.predict_members(X)
                means.extend(np.asarray(mus, dtype=np.float64))
                variances.extend(np.asarray(var, dtype=np.float64))
                continue
            if self.member_has_std_:
                mu, sd = est.predict(X, return_std=True)
                variances.append(np.asarray(sd, dtype=np.float64).reshape(-1) ** 2)
            else:
                mu = est.predict(X)
            mu = np.asarray(mu, dtype=np.float64)
            if mu.ndim != 1:
                mu = mu.reshape(mu.shape[0], -1)
                if mu.shape[1] != 1:
                    raise ValueError(f"members must predict one value per row, got shape {mu.shape}")
                mu = mu[:, 0]
            means.append(mu)
        return _check_rows(np.stack(means), (np.stack(variances) if variances else None), n)

    def predict(self, X, return_std=False):
        """Mixture mean (and standard deviation) of the members' predictions.

        Parameters
        ----------
        X : array-like or ClusterSample
        return_std : bool, default=False
            Also return the mixture standard deviation sqrt(aleatoric +
            epistemic variance).

        Returns
        -------
        mean : ndarray of shape (n_samples,)
        std : ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        means, variances = self._member_predictions(X)
        mean, alea, epi = mixture_moments(means, variances)
        if return_std:
            return mean, np.sqrt(alea + epi)
        return mean

    def predict_components(self, X):
        """Mixture mean with the total, aleatoric and epistemic uncertainty.

        Parameters
        ----------
        X : array-like or ClusterSample

        Returns
        -------
        result : sklearn.utils.Bunch
            ``mean``, ``std`` (total), ``aleatoric_std`` (sqrt of the mean
            member variance; zeros for members without their own std),
            ``epistemic_std`` (the members' spread, ddof=0), each of shape
            (n_samples,); ``member_means`` and ``member_stds`` (or None) of
            shape (n_estimators, n_samples), or (n_estimators * n_members,
            n_samples) for :class:`~skcluster.nn.PackedEnsembleRegressor`
            members, whose own members join the mixture one by one.
            Members trained on groups (``member_groups``) add the split of
            :func:`~skcluster.mixture.mixture_group_components`:
            ``photon_std`` (the members' own std, = ``aleatoric_std``),
            ``network_std`` (the spread of the members of one group, pooled
            over the groups; NaN with one member per group) and
            ``physics_std`` (the spread of the groups' mean predictions),
            with ``std**2 == photon_std**2 + network_std**2 + physics_std**2``
            (network taken as 0 where NaN); and ``members_per_group``. The
            physics part measures only the spread of the prior the draws came
            from, not how far the real sky lies from it.
        """
        means, variances = self._member_predictions(X)
        out = mixture_components(means, variances)
        groups = getattr(self, "member_groups_", None)
        if groups is not None:
            # packed members: each of their own members belongs to its member's group
            out.update(mixture_group_components(means, variances, np.repeat(groups, len(means) // len(groups))))
        return out
