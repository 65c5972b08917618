"""Streaming prediction: a fitted pipeline over a catalogue in batches, with bounded memory.

A catalogue of 10^5 clusters in 10 bands of 50 x 50 pixels is a 10 GB
float32 cube, and the event lists behind it are ~6.5 GB (65 kB per
eFEDS-depth box, :func:`skcluster.datasets.iter_survey`). Neither needs to
exist at once: :func:`predict_stream` feeds the fitted pipeline
``batch_size`` clusters at a time, so only one batch's cubes (and its
event lists or cut-outs) are in memory, and keeps only the per-cluster
results (a few float64 numbers per cluster, 3 MB for 10^5).

The input is either one :class:`~skcluster.ClusterSample` (sliced into
batches; its columns are views, not copies) or any iterable of them, e.g.
the tiles of :func:`~skcluster.datasets.iter_survey` or chunks of a
catalogue; pieces of any size are regrouped into batches of
``batch_size`` rows, so the results do not depend on how the input was
cut (tested: batched == unbatched).

For a :class:`~sklearn.pipeline.Pipeline`, the first step (``bin``: a
:class:`~skcluster.preprocessing.BandBinner` or an
:class:`~skcluster.preprocessing.ImageCutout`) runs on its own so that the
cut-out flags it adds (``complete``, ``coverage``) can be returned beside
the masses; the rest of the pipeline predicts from its output.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch

from ._validation import check_positive_int
from .sample import ClusterSample, as_sample

__all__ = ["iter_batches", "iter_predictions", "predict_stream", "DEFAULT_BATCH_SIZE"]

#: Clusters per batch by default. One batch of 1024 clusters in 10 bands of
#: 50 x 50 pixels is 100 MB of float32 per intermediate cube; the standard
#: pipeline holds about four of them at its peak.
DEFAULT_BATCH_SIZE = 1024

#: Cut-out flags collected from the first step's output when present.
FLAG_COLUMNS = ("complete", "coverage")


def _piece_sample(piece, i):
    """A ClusterSample from one item of the input iterable."""
    if isinstance(piece, ClusterSample):
        return piece
    if isinstance(piece, Mapping) and "X" in piece and isinstance(piece["X"], ClusterSample):
        return piece["X"]  # a Bunch of iter_survey / make_survey
    try:
        return as_sample(piece, step="predict_stream")
    except TypeError:
        raise TypeError(
            f"predict_stream: item {i} of the input is a {type(piece).__name__}; expected a "
            "ClusterSample (or a Bunch with one under 'X', as iter_survey yields)"
        ) from None


def iter_batches(X, batch_size=DEFAULT_BATCH_SIZE):
    """Regroup a sample, or an iterable of samples, into batches of ``batch_size`` rows.

    Parameters
    ----------
    X : ClusterSample or iterable of ClusterSample
        One sample (sliced; no copy), or pieces of any size (e.g. the tiles
        of :func:`~skcluster.datasets.iter_survey`, whose Bunches are
        accepted as they are). Pieces with no rows are skipped.
    batch_size : int, default=1024

    Yields
    ------
    ClusterSample
        Consecutive batches of ``batch_size`` rows (the last one may be
        shorter), in input order. Pieces smaller than a batch are joined
        with :meth:`ClusterSample.concat`, so all pieces need the same
        columns.
    """
    batch_size = check_positive_int(batch_size, "batch_size", "iter_batches")
    if isinstance(X, ClusterSample) or (isinstance(X, Mapping) and "X" not in X):
        X = as_sample(X, step="iter_batches")
        for start in range(0, len(X), batch_size):
            yield X[start:start + batch_size]
        return
    if isinstance(X, Mapping):  # one Bunch
        X = [X]
    if not isinstance(X, Iterable):
        raise TypeError(
            f"predict_stream: X must be a ClusterSample or an iterable of them, got {type(X).__name__}"
        )
    buffer, n_buffered = [], 0
    for i, piece in enumerate(X):
        s = _piece_sample(piece, i)
        if len(s) == 0:
            continue
        start = 0
        while start < len(s):
            take = min(batch_size - n_buffered, len(s) - start)
            buffer.append(s if (start == 0 and take == len(s)) else s[start:start + take])
            n_buffered += take
            start += take
            if n_buffered == batch_size:
                yield buffer[0] if len(buffer) == 1 else ClusterSample.concat(buffer)
                buffer, n_buffered = [], 0
    if buffer:
        yield buffer[0] if len(buffer) == 1 else ClusterSample.concat(buffer)


def _split(estimator):
    """(first step or None, the model that predicts from its output)."""
    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        first = estimator.steps[0][1]
        if first is None or first == "passthrough":
            return None, estimator[1:]
        return first, estimator[1:]
    return None, estimator


def quiet_steps(estimator):
    """Turn off the progress output of every step; returns what to restore.

    The stream shows one progress bar over all clusters; the steps' own bars
    (per batch and per ensemble member) would repeat for every batch.
    """
    restore = []
    for obj in _walk(estimator):
        if "verbose" in obj.get_params(deep=False) and obj.get_params(deep=False)["verbose"]:
            restore.append((obj, obj.verbose))
            obj.set_params(verbose=False)
    return restore


def _walk(est):
    if isinstance(est, BaseEstimator):
        yield est
    if isinstance(est, Pipeline):
        for _, step in est.steps:
            if step is not None and step != "passthrough":
                yield from _walk(step)


def iter_predictions(estimator, X, *, batch_size=DEFAULT_BATCH_SIZE, return_std=True, keep=()):
    """Predict batch by batch; yields the results of each batch as it is done.

    Parameters
    ----------
    estimator : fitted estimator
        A pipeline ending in a regressor of log10 M500c (the standard
        :func:`~skcluster.models.make_mass_pipeline`), or any estimator
        with ``predict(X[, return_std=True])``.
    X : ClusterSample or iterable of ClusterSample
        See :func:`iter_batches`.
    batch_size : int, default=1024
    return_std : bool, default=True
        Ask for ``predict(X, return_std=True)``.
    keep : sequence of str, default=()
        1-D input columns to return with each batch (e.g. ``"ra"``,
        ``"dec"``, or a ``"y"`` column added to the pieces).

    Yields
    ------
    sklearn.utils.Bunch
        ``mean`` (n_batch,) log10 M500c / Msun; ``std`` (n_batch,) dex or
        None; ``complete`` (bool) and ``coverage`` (float) from the first
        step's output, or None where it adds none; ``columns``, a dict of
        the ``keep`` columns; ``seconds``, the time the batch took (without
        producing the input).
    """
    first, model = _split(estimator)
    keep = tuple(keep)
    for batch in iter_batches(X, batch_size):
        t0 = time.perf_counter()
        missing = [c for c in keep if c not in batch]
        if missing:
            raise KeyError(f"predict_stream: keep={list(keep)} but the input has no column(s) {missing}; "
                           f"columns are {batch.columns}")
        columns = {c: np.asarray(batch[c]) for c in keep}
        Xt = batch if first is None else first.transform(batch)
        flags = {c: (np.asarray(Xt[c]) if isinstance(Xt, Mapping) and c in Xt else None)
                 for c in FLAG_COLUMNS}
        if return_std:
            mean, std = model.predict(Xt, return_std=True)
            std = np.asarray(std, dtype=np.float64).reshape(-1)
        else:
            mean, std = model.predict(Xt), None
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        if mean.shape[0] != len(batch):
            raise ValueError(
                f"predict_stream: the model returned {mean.shape[0]} predictions for a batch of "
                f"{len(batch)} clusters")
        del Xt
        yield Bunch(mean=mean, std=std, complete=flags["complete"], coverage=flags["coverage"],
                    columns=columns, seconds=time.perf_counter() - t0)


def predict_stream(estimator, X, *, batch_size=DEFAULT_BATCH_SIZE, return_std=True, keep=(),
                   total=None, verbose=True, desc="predict"):
    """Predict a fitted pipeline over a catalogue in batches, with bounded memory.

    Only one batch of clusters (its event lists or cut-outs and the cubes
    the pipeline makes from them) is in memory at a time; the results are a
    few numbers per cluster. The predictions are those of
    ``estimator.predict`` on the whole catalogue at once (the steps work
    cluster by cluster).

    Parameters
    ----------
    estimator : fitted estimator
        A pipeline ending in a regressor of log10 M500c (the standard
        :func:`~skcluster.models.make_mass_pipeline`), or any estimator
        with ``predict(X[, return_std=True])``. The steps' own progress
        output is switched off while streaming (and restored after).
    X : ClusterSample or iterable of ClusterSample
        One catalogue (sliced into batches), or pieces of any size: the
        Bunches of :func:`~skcluster.datasets.iter_survey` (their ``X``),
        chunks of a catalogue, ...
    batch_size : int, default=1024
        Clusters per batch. Memory grows with it (about 0.4 MB per cluster
        for the standard pipeline with 10 bands), speed barely does beyond
        a few hundred.
    return_std : bool, default=True
        Also predict the standard deviation (``predict(X, return_std=True)``).
    keep : sequence of str, default=()
        1-D input columns to collect beside the predictions (e.g. ``"y"``
        added to ``iter_survey`` pieces to compare with the truth).
    total : int, default=None
        Number of clusters, for the progress bar when ``X`` is an iterator
        (``len(X)`` is used for a sample).
    verbose : bool, default=True
        One progress bar over the clusters (tqdm on stderr).
    desc : str, default="predict"
        Label of the progress bar.

    Returns
    -------
    sklearn.utils.Bunch
        ``mean`` : ndarray of shape (n,), log10 M500c / Msun.
        ``std`` : ndarray of shape (n,) in dex, or None without ``return_std``.
        ``complete`` : ndarray of bool, shape (n,), or None. False where the
        first step padded an incomplete cut-out
        (:class:`~skcluster.preprocessing.ImageCutout`).
        ``coverage`` : ndarray of shape (n,), or None. Fraction of the box
        with data in every band.
        ``columns`` : dict of the ``keep`` columns, each (n,).
        ``n_batches`` : int.
        ``predict_seconds`` : float, time spent predicting (without the
        time taken to produce the input, e.g. simulating it).

    Examples
    --------
    >>> from skcluster.datasets import iter_survey                  # doctest: +SKIP
    >>> tiles = iter_survey(n_clusters=100_000, random_state=1)      # doctest: +SKIP
    >>> res = predict_stream(pipe, tiles, total=100_000)             # doctest: +SKIP
    >>> res.mean.shape, res.std.shape                                # doctest: +SKIP
    ((100000,), (100000,))
    """
    from tqdm.auto import tqdm

    batch_size = check_positive_int(batch_size, "batch_size", "predict_stream")
    if total is None and isinstance(X, ClusterSample):
        total = len(X)
    means, stds, complete, coverage = [], [], [], []
    cols = {c: [] for c in keep}
    n_batches, seconds = 0, 0.0
    restore = quiet_steps(estimator)
    bar = tqdm(total=total, desc=desc, unit="cluster", disable=not verbose, smoothing=0.05)
    try:
        for res in iter_predictions(estimator, X, batch_size=batch_size, return_std=return_std,
                                    keep=keep):
            n_batches += 1
            seconds += res.seconds
            means.append(res.mean)
            stds.append(res.std)
            complete.append(res.complete)
            coverage.append(res.coverage)
            for c in keep:
                cols[c].append(res.columns[c])
            bar.update(res.mean.shape[0])
    finally:
        bar.close()
        for obj, value in restore:
            obj.set_params(verbose=value)

    def join(parts, dtype):
        if not parts:
            return np.zeros(0, dtype=dtype)
        if any(p is None for p in parts):
            return None
        return np.concatenate(parts).astype(dtype, copy=False)

    return Bunch(
        mean=join(means, np.float64),
        std=join(stds, np.float64) if return_std else None,
        complete=join(complete, bool),
        coverage=join(coverage, np.float64),
        columns={c: (np.concatenate(v) if v else np.zeros(0)) for c, v in cols.items()},
        n_batches=n_batches,
        predict_seconds=seconds,
    )
