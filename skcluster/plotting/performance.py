"""Figures of model performance: predicted vs true mass, residuals, calibration.

Every function takes ``y_true`` (log10 M500c / Msun) and ``predictions``,
which is one of

* an array of predicted means (one model, no error bars),
* a tuple ``(mean, std)`` (std in dex),
* a dict ``{name: mean}`` or ``{name: (mean, std)}`` to overlay models;

draws into ``ax`` when given (else a new figure) and returns the
:class:`~matplotlib.figure.Figure`. Figures are made with
:class:`matplotlib.figure.Figure` directly, not through ``pyplot``, so no
global state or interactive backend is involved; save them with
``fig.savefig("name.png", dpi=150)``.

Scatter and bias in legends follow :mod:`skcluster.metrics`
(sigma_lnM = ln 10 x std of the log10 residuals, as a percentage).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..metrics import (
    _as_1d,
    binned_mass_metrics,
    calibration_curve,
    interval_coverage,
    mass_bias,
    mass_scatter,
    mean_predicted_scatter,
)

__all__ = [
    "plot_predicted_vs_true",
    "plot_residuals",
    "plot_residuals_vs_mass",
    "plot_residuals_vs_redshift",
    "plot_calibration",
    "plot_performance",
    "plot_transfer",
]

MASS_LABEL = r"$\log_{10}\,(M_{500c}/M_\odot)$"


def _predictions(y_true, predictions):
    """Normalise to {name: (mean, std or None)} with validated arrays."""
    t = _as_1d("y_true", y_true)
    if isinstance(predictions, Mapping):
        items = list(predictions.items())
        if not items:
            raise ValueError("predictions is an empty dict; give at least one model")
    else:
        items = [("model", predictions)]
    out = {}
    for name, p in items:
        if isinstance(p, tuple):
            if len(p) != 2:
                raise ValueError(f"predictions[{name!r}] must be mean or (mean, std), got a tuple of {len(p)}")
            mean = _as_1d(f"mean of {name!r}", p[0])
            std = None if p[1] is None else _as_1d(f"std of {name!r}", p[1])
            if std is not None and np.any(std <= 0):
                i = int(np.flatnonzero(std <= 0)[0])
                raise ValueError(f"std of {name!r} must be positive; index {i} is {float(std[i])!r}")
        else:
            mean, std = _as_1d(f"mean of {name!r}", p), None
        for what, arr in (("mean", mean), ("std", std)):
            if arr is not None and arr.size != t.size:
                raise ValueError(
                    f"{what} of {name!r} has {arr.size} values but y_true has {t.size}"
                )
        out[str(name)] = (mean, std)
    return t, out


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _colors(n):
    from matplotlib import rcParams

    cycle = rcParams["axes.prop_cycle"].by_key().get("color", ["C0", "C1", "C2", "C3"])
    return [cycle[i % len(cycle)] for i in range(n)]


def _subsample(n, max_points, seed):
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def plot_predicted_vs_true(y_true, predictions, *, ax=None, max_points=1500, max_errorbars=200,
                           random_state=0, title=None, figsize=(5.5, 5.2)):
    """Predicted against true mass, with error bars and the 1:1 line.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        log10(M500c / Msun).
    predictions : array, (mean, std) or dict of these
        See the module docstring. Error bars are +-1 std.
    ax : matplotlib.axes.Axes, default=None
    max_points : int or None, default=1500
        Points drawn per model (a random subset, the same for every model);
        the legend's scatter and bias use all clusters.
    max_errorbars : int or None, default=200
        Of these, how many carry error bars (more would hide the points).
    random_state : int, default=0
        Seed of the subset.
    title : str, default=None
    figsize : (float, float), default=(5.5, 5.2)
        Inches, for a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t, preds = _predictions(y_true, predictions)
    fig, ax = _new_axes(ax, figsize)
    idx = _subsample(t.size, max_points, random_state)
    alpha = float(np.clip(30.0 / np.sqrt(idx.size), 0.15, 0.8))
    lo, hi = t.min(), t.max()
    handles = []
    for k, ((name, (mean, std)), color) in enumerate(zip(preds.items(), _colors(len(preds)))):
        label = f"{name}: scatter {100 * mass_scatter(t, mean):.1f}%, bias {100 * mass_bias(t, mean):+.1f}%"
        z_order = 2 + len(preds) - k  # the first model on top
        if std is not None:
            label += f", mean std {100 * mean_predicted_scatter(std):.1f}%"
            eb = idx[_subsample(idx.size, max_errorbars, random_state + 1)]
            rest = np.setdiff1d(idx, eb)
            ax.plot(t[rest], mean[rest], "o", ms=2.5, color=color, alpha=alpha, zorder=z_order)
            h = ax.errorbar(t[eb], mean[eb], yerr=std[eb], fmt="o", ms=2.5, color=color,
                            alpha=min(1.0, 2 * alpha), elinewidth=0.7, capsize=0, label=label, zorder=z_order)
        else:
            (h,) = ax.plot(t[idx], mean[idx], "o", ms=2.5, color=color, alpha=alpha, label=label, zorder=z_order)
        handles.append(h)
        lo, hi = min(lo, mean.min()), max(hi, mean.max())
    pad = 0.05 * (hi - lo + 1e-9)
    handles += ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="1:1", zorder=10)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("true " + MASS_LABEL)
    ax.set_ylabel("predicted " + MASS_LABEL)
    ax.legend(handles=handles, loc="upper left", fontsize="small", framealpha=0.85)
    if title:
        ax.set_title(title)
    return fig


def plot_residuals(y_true, predictions, *, x=None, xlabel=None, ax=None, bins=8, max_points=1500,
                   random_state=0, title=None, figsize=(6.0, 4.2)):
    """Residuals (predicted - true, dex) against a quantity, with running statistics.

    For each model: the residuals as points, the running median (line) and
    16th-84th percentiles (band) in ``bins`` equal-count bins of ``x``
    (:func:`skcluster.metrics.binned_mass_metrics`); the legend gives the
    overall scatter.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    predictions : array, (mean, std) or dict of these
    x : array-like of shape (n_samples,), default=None
        Quantity on the horizontal axis; the true mass by default.
    xlabel : str, default=None
    ax : matplotlib.axes.Axes, default=None
    bins : int or array-like, default=8
        Equal-count bins, or edges.
    max_points : int or None, default=1500
    random_state : int, default=0
    title : str, default=None
    figsize : (float, float), default=(6.0, 4.2)

    Returns
    -------
    matplotlib.figure.Figure
    """
    t, preds = _predictions(y_true, predictions)
    xv = t if x is None else _as_1d("x", x)
    if xv.size != t.size:
        raise ValueError(f"x has {xv.size} values but y_true has {t.size}")
    fig, ax = _new_axes(ax, figsize)
    idx = _subsample(t.size, max_points, random_state)
    alpha = float(np.clip(20.0 / np.sqrt(idx.size), 0.08, 0.6))
    ax.axhline(0.0, color="k", lw=0.8)
    for k, ((name, (mean, _)), color) in enumerate(zip(preds.items(), _colors(len(preds)))):
        r = mean - t
        ax.plot(xv[idx], r[idx], ".", ms=2.5, color=color, alpha=alpha, zorder=1 + len(preds) - k)
        b = binned_mass_metrics(t, mean, by=xv, bins=bins)
        ok = b["count"] >= 2
        centers = np.array([np.median(xv[(xv >= lo) & (xv <= hi)]) if c else np.nan
                            for lo, hi, c in zip(b["edges"][:-1], b["edges"][1:], b["count"])])
        ax.fill_between(centers[ok], b["q16_dex"][ok], b["q84_dex"][ok], color=color, alpha=0.2, lw=0,
                        zorder=20)
        ax.plot(centers[ok], b["median_dex"][ok], "-", color=color, lw=2, zorder=30,
                label=f"{name}: scatter {100 * mass_scatter(t, mean):.1f}%")
    ax.set_xlabel(xlabel or ("true " + MASS_LABEL if x is None else "x"))
    ax.set_ylabel(r"predicted $-$ true  [dex]")
    ax.legend(loc="best", fontsize="small", framealpha=0.85, title="running median, 16-84%",
              title_fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_residuals_vs_mass(y_true, predictions, *, ax=None, **kwargs):
    """Residuals against true mass; see :func:`plot_residuals`."""
    return plot_residuals(y_true, predictions, ax=ax, **kwargs)


def plot_residuals_vs_redshift(y_true, predictions, z, *, ax=None, **kwargs):
    """Residuals against redshift ``z`` (array of shape (n_samples,)); see :func:`plot_residuals`."""
    return plot_residuals(y_true, predictions, x=z, xlabel="redshift $z$", ax=ax, **kwargs)


def plot_calibration(y_true, predictions, *, levels=None, ax=None, title=None, figsize=(4.6, 4.4)):
    """Observed against nominal coverage of central predictive intervals.

    A calibrated model follows the diagonal; below it, intervals are too
    narrow (over-confident). Models without a std are skipped (a dict
    with none of them raises).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    predictions : (mean, std) or dict of these
    levels : array-like of float, default=None
        Nominal levels in (0, 1); 0.05, 0.10, ..., 0.95 by default.
    ax : matplotlib.axes.Axes, default=None
    title : str, default=None
    figsize : (float, float), default=(4.6, 4.4)

    Returns
    -------
    matplotlib.figure.Figure
    """
    t, preds = _predictions(y_true, predictions)
    with_std = {k: v for k, v in preds.items() if v[1] is not None}
    if not with_std:
        raise ValueError("plot_calibration needs predictions with a std: (mean, std) per model")
    fig, ax = _new_axes(ax, figsize)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    colors = _colors(len(preds))
    for (name, (mean, std)), color in zip(preds.items(), colors):
        if std is None:
            continue
        nominal, observed = calibration_curve(t, mean, std, levels)
        c68, c95 = interval_coverage(t, mean, std, [0.68, 0.95])
        ax.plot(nominal, observed, "o-", ms=3, color=color,
                label=f"{name}: 68% -> {100 * c68:.0f}%, 95% -> {100 * c95:.0f}%")
    for lv in (0.68, 0.95):
        ax.axvline(lv, color="0.7", lw=0.7, zorder=0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.legend(loc="upper left", fontsize="small", framealpha=0.85)
    if title:
        ax.set_title(title)
    return fig


def plot_performance(y_true, predictions, z=None, *, fig=None, title=None, figsize=(11.0, 9.5), **kwargs):
    """Four panels: predicted vs true, residuals vs mass and vs z, calibration.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    predictions : array, (mean, std) or dict of these
    z : array-like of shape (n_samples,), default=None
        Redshifts; without them the redshift panel is left out.
    fig : matplotlib.figure.Figure, default=None
        Figure to draw into (cleared first).
    title : str, default=None
    figsize : (float, float), default=(11.0, 9.5)
    **kwargs
        ``max_points``, ``random_state`` for the point panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t, preds = _predictions(y_true, predictions)
    if fig is None:
        fig = Figure(figsize=figsize, layout="constrained")
    else:
        fig.clear()
    axes = fig.subplots(2, 2).ravel()
    plot_predicted_vs_true(t, preds, ax=axes[0], **kwargs)
    plot_residuals_vs_mass(t, preds, ax=axes[1], **kwargs)
    if z is not None:
        plot_residuals_vs_redshift(t, preds, z, ax=axes[2], **kwargs)
    else:
        axes[2].set_axis_off()
    if any(std is not None for _, std in preds.values()):
        plot_calibration(t, preds, ax=axes[3])
    else:
        axes[3].set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def plot_transfer(diagnostics, *, ax=None, title=None, min_count=50, figsize=(6.0, 4.4)):
    """Bias at fixed true mass, per mass bin, for several populations or models.

    Parameters
    ----------
    diagnostics : dict
        ``{label: skcluster.metrics.transfer_diagnostics(...)}``; the legend
        gives each label with its slope of predicted against true log M.
    ax : matplotlib Axes, default=None
    title : str, default=None
    min_count : int, default=50
        Bins with fewer clusters are left out.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(diagnostics, Mapping) or not diagnostics:
        raise ValueError("diagnostics must be a non-empty dict {label: transfer_diagnostics(...)}")
    fig, ax = _new_axes(ax, figsize)
    for color, (label, d) in zip(_colors(len(diagnostics)), diagnostics.items()):
        mb = d["mass_bins"]
        edges = np.asarray(mb["edges"], dtype=np.float64)
        keep = np.asarray(mb["count"]) >= min_count
        centre = 0.5 * (edges[1:] + edges[:-1])
        ax.plot(centre[keep], np.asarray(mb["bias_dex"])[keep], "o-", color=color,
                label=f"{label} (slope {d['slope']:.2f})")
    ax.axhline(0.0, color="k", lw=0.8)
    for v in (-0.05, 0.05):
        ax.axhline(v, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("true " + MASS_LABEL)
    ax.set_ylabel("mean predicted - true (dex)")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
