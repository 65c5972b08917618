"""Figures of what the networks look at (:mod:`skcluster.explain`).

Like :mod:`skcluster.plotting.performance`, every function draws into a
given ``ax`` (or ``fig``) or a new :class:`matplotlib.figure.Figure` (no
pyplot state) and returns the figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "plot_attribution_maps",
    "plot_band_importance",
    "plot_explanation",
    "plot_origin_importance",
    "plot_radial_importance",
]


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _paired_bars(ax, labels, importance, importance_label, counts, counts_label, ylabel, yerr=None, **tick_kw):
    """Importance (red) and, when given, the matching photon share (blue) side by side per label."""
    pos = np.arange(len(labels))
    width = 0.4
    ax.bar(pos - width / 2, importance, width, yerr=yerr, color="C3", label=importance_label)
    if counts is not None:
        ax.bar(pos + width / 2, counts, width, color="C0", label=counts_label)
    ax.set_xticks(pos)
    ax.set_xticklabels(labels, fontsize=8, **tick_kw)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)


def plot_attribution_maps(counts, attributions, theta500_arcmin, pixel_arcsec, indices=(0, 1, 2), *,
                          labels=None, fig=None, title=None, cmap="magma"):
    """Counts and attribution side by side for a few clusters, with the r500 circle.

    Parameters
    ----------
    counts : array-like of shape (n, B, H, W) or (n, H, W)
        Photon counts (summed over bands), e.g. the binning step's output.
    attributions : array-like of shape (n, B, H, W) or (n, H, W)
        Importance (absolute values are summed over bands).
    theta500_arcmin : array-like of shape (n,)
    pixel_arcsec : float
    indices : sequence of int, default=(0, 1, 2)
        Clusters shown, one row each.
    labels : sequence of str, default=None
        Row labels (e.g. the true mass).
    fig : matplotlib.figure.Figure, default=None
    title : str, default=None
    cmap : str, default="magma"

    Returns
    -------
    matplotlib.figure.Figure
    """
    c = np.asarray(counts)
    a = np.abs(np.asarray(attributions))
    c = c.sum(axis=1) if c.ndim == 4 else c
    a = a.sum(axis=1) if a.ndim == 4 else a
    idx = list(indices)
    if fig is None:
        fig = Figure(figsize=(6.4, 2.9 * len(idx)), layout="constrained")
    axes = fig.subplots(len(idx), 2, squeeze=False)
    theta = np.broadcast_to(np.asarray(theta500_arcmin, dtype=float), (c.shape[0],))
    h, w = c.shape[1:]
    for row, i in enumerate(idx):
        r_pix = 60.0 * theta[i] / pixel_arcsec
        for col, (img, name) in enumerate(((np.log1p(c[i]), "log(1 + counts)"), (a[i], "|attribution|"))):
            ax = axes[row, col]
            im = ax.imshow(img, origin="lower", cmap=cmap, extent=(-w / 2, w / 2, -h / 2, h / 2))
            for k, ls in ((1.0, "-"), (0.25, ":")):
                ax.add_patch(_circle(k * r_pix, ls))
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.8)
            if row == 0:
                ax.set_title(name)
            if col == 0 and labels is not None:
                ax.set_ylabel(labels[row])
    if title:
        fig.suptitle(title)
    return fig


def _circle(radius, ls):
    from matplotlib.patches import Circle

    return Circle((0.0, 0.0), radius, fill=False, color="cyan", lw=1.0, ls=ls)


def plot_radial_importance(radial, radial_counts, radial_icm=None, *, ax=None, title=None, figsize=(5.6, 5.4)):
    """Stacked importance profile against the count profile, in units of r500.

    Two panels: the normalised profiles (mean +- standard error over
    clusters) and their ratio, importance per count (1: the network weights
    a region as much as its photons).

    Parameters
    ----------
    radial, radial_counts : Bunch
        :func:`skcluster.explain.radial_profile` of the importance and of the
        counts.
    radial_icm : Bunch, default=None
        Profile of the cluster (ICM) photons alone, where known.
    ax : pair of matplotlib Axes, default=None
    title : str, default=None
    figsize : (float, float), default=(5.6, 5.4)

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    else:
        top, bottom = ax
        fig = top.figure
    x = radial.centers
    xerr = 0.5 * np.diff(radial.edges)
    curves = [("importance", radial, "C3"), ("all counts", radial_counts, "C0")]
    if radial_icm is not None:
        curves.append(("cluster (ICM) counts", radial_icm, "C2"))
    for name, prof, color in curves:
        top.errorbar(x, prof.mean, yerr=prof.sem, xerr=xerr, fmt="o-", ms=3, color=color, label=name)
        if prof is not radial:
            ratio = radial.mean / prof.mean
            err = ratio * np.hypot(radial.sem / radial.mean, prof.sem / prof.mean)
            bottom.errorbar(x, ratio, yerr=err, xerr=xerr, fmt="o-", ms=3, color=color,
                            label=f"importance / {name}")
    top.set_yscale("log")
    top.set_ylabel("per pixel / mean within last edge")
    top.legend(fontsize=8)
    bottom.axhline(1.0, color="0.5", lw=0.8)
    bottom.set_yscale("log")
    bottom.set_xlabel(r"$r / r_{500}$")
    bottom.set_ylabel("importance per count")
    bottom.legend(fontsize=7)
    if title:
        top.set_title(title)
    return fig


def plot_band_importance(bands, bands_keV, *, ax=None, title=None, figsize=(6.0, 3.6)):
    """Share of the importance per energy band, next to the share of the photons.

    Parameters
    ----------
    bands : Bunch
        :func:`skcluster.explain.band_importance` output.
    bands_keV : sequence of (float, float)
    ax, title, figsize : see :func:`plot_radial_importance`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _new_axes(ax, figsize)
    _paired_bars(ax, [f"{lo:g}-{hi:g}" for lo, hi in bands_keV], bands["mean"], "importance",
                 bands.get("count_share"), "photons", "share per cluster", yerr=bands["sem"],
                 rotation=45, ha="right")
    ax.set_xlabel("band, keV")
    if title:
        ax.set_title(title)
    return fig


def plot_origin_importance(origins, *, ax=None, title=None, figsize=(5.6, 3.6)):
    """Importance and counts of pixels dominated by each photon origin, relative to their ring.

    Parameters
    ----------
    origins : dict
        :func:`skcluster.explain.origin_importance` output.
    ax, title, figsize : see :func:`plot_radial_importance`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _new_axes(ax, figsize)
    names = [k for k, v in origins.items() if v.get("n_pixels") and k != "empty"]
    _paired_bars(ax, [f"{k}\n({origins[k]['n_pixels']} px)" for k in names],
                 [origins[k]["rel_importance"] for k in names], "importance / ring mean",
                 [origins[k]["rel_counts"] for k in names], "counts / ring mean",
                 "relative to pixels at the same radius")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_yscale("log")
    if title:
        ax.set_title(title)
    return fig


def plot_explanation(result, bands_keV, *, title=None, figsize=(11.0, 8.0)):
    """Four panels from :func:`skcluster.explain.explain_predictions`: radial, ratio, bands, origins."""
    fig = Figure(figsize=figsize, layout="constrained")
    gs = fig.add_gridspec(2, 2, height_ratios=(2, 1))
    top = fig.add_subplot(gs[0, 0])
    bottom = fig.add_subplot(gs[1, 0], sharex=top)
    plot_radial_importance(result.radial, result.radial_counts, result.get("radial_icm_counts"), ax=(top, bottom))
    plot_band_importance(result.bands, bands_keV, ax=fig.add_subplot(gs[0, 1]))
    ax = fig.add_subplot(gs[1, 1])
    if result.get("origins"):
        plot_origin_importance(result.origins, ax=ax)
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "photon origins unknown (real data)", ha="center", va="center")
    if title:
        fig.suptitle(title)
    return fig
