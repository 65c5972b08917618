"""A few clusters band by band: :func:`plot_cluster_bands` (events or cubes as
they are) and :func:`plot_model_input` (what a fitted mass pipeline sees: its
own bands and pixels, before the count scaling)."""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_number

__all__ = ["plot_cluster_bands", "plot_model_input", "DEFAULT_PLOT_BANDS_KEV"]

#: Bands shown by default, keV: soft, two middle bands, hard (the 0.2-2.3 keV
#: detection band split, and the hard band where the particle background
#: dominates).
DEFAULT_PLOT_BANDS_KEV = ((0.2, 0.5), (0.5, 1.0), (1.0, 2.3), (2.3, 7.0))


def _bin_events(events, band, size_arcsec, n_pix):
    """Counts image (n_pix x n_pix, float32) of the events in one band; row follows y, col x."""
    e = events["energy_keV"]
    sel = (e >= band[0]) & (e < band[1])
    half = size_arcsec / 2.0
    img, _, _ = np.histogram2d(events["y_arcsec"][sel], events["x_arcsec"][sel], bins=n_pix,
                               range=[[-half, half], [-half, half]])
    return img.astype(np.float32)


def plot_cluster_bands(X, indices=(0, 1, 2), y=None, bands_keV=DEFAULT_PLOT_BANDS_KEV, pixel_arcsec=16.0,
                       fig=None, cmap="magma"):
    """Show a few clusters band by band (rows: clusters, columns: energy bands).

    Parameters
    ----------
    X : ClusterSample
        With ``events`` (binned here) or ``images`` (shown as they are,
        one column per band of ``X.meta["bands_keV"]``).
    indices : sequence of int, default=(0, 1, 2)
        Rows of ``X`` to show.
    y : array-like of shape (n_samples,), default=None
        log10 M500c / Msun, written into the row titles when given.
    bands_keV : sequence of (float, float), default=DEFAULT_PLOT_BANDS_KEV
        Energy bands for event lists, keV.
    pixel_arcsec : float, default=16.0
        Pixel size for binning event lists, arcsec (4 eROSITA pixels: the
        counts are sparse).
    fig : matplotlib.figure.Figure, default=None
        Figure to draw into (a new one by default).
    cmap : str, default="magma"

    Returns
    -------
    matplotlib.figure.Figure
        Counts per pixel on an asinh stretch, one colour scale per panel;
        the panel titles give the band and the total counts in it.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import AsinhNorm

    indices = [int(i) for i in np.atleast_1d(indices)]
    n = len(X)
    bad = [i for i in indices if not -n <= i < n]
    if bad:
        raise IndexError(f"indices {bad} are out of range for a sample of {n} clusters")
    if "images" in X:
        bands = [tuple(b) for b in X.meta.get("bands_keV", [(np.nan, np.nan)] * X["images"].shape[1])]
        size_arcmin = X.meta.get("size_arcmin")
    elif "events" in X:
        bands = [tuple(map(float, b)) for b in bands_keV]
        size_arcmin = X.meta.get("size_arcmin", 20.0)
        check_positive_number(pixel_arcsec, "pixel_arcsec", "plot_cluster_bands", unit="arcsec")
    else:
        raise KeyError(f"plot_cluster_bands needs column 'events' or 'images'; X has {X.columns}")
    nb = len(bands)
    if fig is None:
        fig = plt.figure(figsize=(2.3 * nb + 0.4, 2.3 * len(indices) + 0.3), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(indices), nb, squeeze=False))
    for r, i in enumerate(indices):
        if "images" in X:
            cube = np.asarray(X["images"][i], dtype=np.float32)
        else:
            size_as = 60.0 * float(size_arcmin)
            n_pix = max(int(round(size_as / pixel_arcsec)), 1)
            cube = np.stack([_bin_events(X["events"][i], b, size_as, n_pix) for b in bands])
        extent = None
        if size_arcmin is not None:
            h = float(size_arcmin) / 2.0
            extent = (-h, h, -h, h)
        for c in range(nb):
            ax = axes[r, c]
            img = cube[c]
            vmax = max(float(np.percentile(img, 99.8)), 1.0)
            ax.imshow(img, origin="lower", cmap=cmap, extent=extent,
                      norm=AsinhNorm(linear_width=0.5, vmin=0.0, vmax=vmax), interpolation="nearest")
            lo, hi = bands[c]
            ax.set_title(f"{lo:g}-{hi:g} keV: {img.sum():.0f} cts", fontsize=8)
            ax.tick_params(labelsize=7)
            if c == 0:
                label = f"#{i}"
                if "z" in X:
                    label += f"  z={float(X['z'][i]):.2f}"
                if y is not None:
                    label += f"\nlog M={float(np.asarray(y)[i]):.2f}"
                ax.set_ylabel(label + ("\narcmin" if extent else ""), fontsize=8)
    return fig


def _fmt_mass(log10_m):
    """``6.3e14`` for log10 M = 14.8 (two significant digits, as a figure title needs)."""
    m = 10.0 ** float(log10_m)
    exp = int(np.floor(np.log10(m)))
    return f"{m / 10.0 ** exp:.1f}e{exp}"


def _colorbar_ticks(vmax):
    """0 and a 1-2-5 sequence from 0.5 up to ``vmax``, at most six ticks (an asinh colour
    bar's own locator labels in powers of ten that collide near zero; below the stretch's
    linear width of 0.5 the scale is linear and further ticks would crowd)."""
    ticks = [v * 10.0 ** e for e in range(-1, 7) for v in (1.0, 2.0, 5.0)
             if 0.5 <= v * 10.0 ** e <= vmax]
    while len(ticks) > 5:
        ticks = ticks[1::2] if len(ticks) % 2 == 0 else ticks[::2]
    return [0.0] + ticks


def plot_model_input(model, X, indices=(0, 1, 2), *, y=None, theta500_arcmin=None, labels=None,
                     fig=None, cmap="magma"):
    """Show a few clusters as a fitted mass pipeline sees them: its bands, its pixels.

    The steps of ``model`` before its ``scale`` step (band binning or image
    cut-out, resize, smoothing: :func:`skcluster.models.make_mass_pipeline`)
    are applied to the chosen rows of ``X``, so each panel shows counts per
    model pixel in one of the model's energy bands, before the count-rate
    scaling and the log stretch that the network receives. One row of panels
    per cluster: the sum over all bands first, then each band.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline
        A fitted pipeline with a step named ``"scale"``
        (:class:`~skcluster.preprocessing.CountScaler`), such as the one
        :func:`~skcluster.models.make_mass_pipeline` makes.
    X : ClusterSample
        Clusters in the form ``model`` takes (event lists for the mock, or a
        catalogue for an :class:`~skcluster.preprocessing.ImageCutout` first step).
    indices : sequence of int, default=(0, 1, 2)
        Rows of ``X`` to show.
    y : array-like of shape (n_samples,), default=None
        log10 M500c / Msun of every row of ``X`` (true or predicted), written
        into the titles as M500.
    theta500_arcmin : array-like of shape (n_samples,) or str, default=None
        Angular r500 of every row of ``X`` in arcmin, or the name of a column
        of ``X`` holding it; drawn as a dashed circle around the centre.
    labels : sequence of str, default=None
        One label per shown cluster, put before its title (e.g. "most massive").
    fig : matplotlib.figure.Figure, default=None
        Figure to draw into (a new :class:`matplotlib.figure.Figure`, which
        needs no pyplot, by default).
    cmap : str, default="magma"

    Returns
    -------
    matplotlib.figure.Figure
        Rows of panels (one per cluster), each row titled with the cluster's
        M500 (when ``y`` is given), redshift and counts in the box in the
        model's bands; each panel titled with its band and counts. Axes are
        offsets from the cluster position in arcmin (x grows toward west,
        i.e. decreasing RA; y toward north), the colour scale is an asinh
        stretch of counts per pixel (one colour bar for the band sum, one
        shared by the bands of a row), the centre is marked with a cross.
    """
    from matplotlib.colors import AsinhNorm
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle
    from matplotlib.ticker import FormatStrFormatter, NullLocator

    steps = [name for name, _ in getattr(model, "steps", [])]
    if "scale" not in steps:
        raise ValueError("plot_model_input needs a fitted Pipeline with a 'scale' step (as made by "
                         f"make_mass_pipeline); got {type(model).__name__} with steps {steps}")
    indices = [int(i) for i in np.atleast_1d(indices)]
    n = len(X)
    bad = [i for i in indices if not -n <= i < n]
    if bad:
        raise IndexError(f"indices {bad} are out of range for a sample of {n} clusters")
    if labels is not None and len(labels) != len(indices):
        raise ValueError(f"labels has {len(labels)} entries for {len(indices)} clusters")
    theta = None
    if theta500_arcmin is not None:
        theta = np.asarray(X[theta500_arcmin] if isinstance(theta500_arcmin, str) else theta500_arcmin,
                           dtype=float)
        if theta.shape != (n,):
            raise ValueError(f"theta500_arcmin must have one value per row of X ({n}), got shape {theta.shape}")
    if y is not None:
        y = np.asarray(y, dtype=float)
        if y.shape != (n,):
            raise ValueError(f"y must have one value per row of X ({n}), got shape {y.shape}")

    Xt = model[:steps.index("scale")].transform(X[np.asarray(indices)])
    cubes = np.asarray(Xt["images"], dtype=np.float32)
    meta = Xt.meta
    nb = cubes.shape[1]
    bands = [tuple(map(float, b)) for b in meta.get("bands_keV", [(np.nan, np.nan)] * nb)]
    size_arcmin = float(meta.get("size_arcmin", np.nan))
    pixel_arcsec = meta.get("pixel_arcsec")
    if pixel_arcsec is None and np.isfinite(size_arcmin):
        pixel_arcsec = 60.0 * size_arcmin / cubes.shape[-1]
    smooth = dict(model.steps).get("smooth")
    sigma = getattr(smooth, "sigma", 0.0) or 0.0
    unit = f"counts per {float(pixel_arcsec):g}\" pixel" if pixel_arcsec else "counts per pixel"
    if sigma:
        unit += f"\n(smoothed, sigma {float(sigma):g} px)"
    h = size_arcmin / 2.0 if np.isfinite(size_arcmin) else cubes.shape[-1] / 2.0
    extent = (-h, h, -h, h)
    lo_all, hi_all = min(b[0] for b in bands), max(b[1] for b in bands)

    ncol = nb + 1
    if fig is None:
        fig = Figure(figsize=(1.55 * ncol + 1.8, 2.25 * len(indices) + 0.2), layout="constrained")
    rows = np.atleast_1d(fig.subfigures(len(indices), 1))
    for r, (i, sub) in enumerate(zip(indices, rows)):
        cube = cubes[r]
        total = cube.sum(axis=0)
        parts = []
        if labels is not None:
            parts.append(str(labels[r]))
        if y is not None:
            parts.append(f"M500 = {_fmt_mass(y[i])} Msun (log10 {y[i]:.2f})")
        if "z" in X:
            parts.append(f"z = {float(X['z'][i]):.3f}")
        parts.append(f"{cube.sum():.0f} counts in the box, {lo_all:g}-{hi_all:g} keV")
        if theta is not None:
            parts.append(f"r500 = {theta[i]:.2f}'")
        sub.suptitle(f"#{i}: " + ", ".join(parts), fontsize=9)
        axes = sub.subplots(1, ncol, sharex=True, sharey=True)
        vmax_sum = max(float(np.percentile(total, 99.8)), 1.0)
        vmax_band = max(float(np.percentile(cube, 99.8)), 1.0)
        norm_sum = AsinhNorm(linear_width=0.5, vmin=0.0, vmax=vmax_sum)
        norm_band = AsinhNorm(linear_width=0.5, vmin=0.0, vmax=vmax_band)
        for c, ax in enumerate(axes):
            img = total if c == 0 else cube[c - 1]
            im = ax.imshow(img, origin="lower", cmap=cmap, extent=extent, interpolation="nearest",
                           norm=norm_sum if c == 0 else norm_band)
            if c == 0:
                im_sum = im
                ax.set_title(f"all {nb} bands\n{img.sum():.0f} cts", fontsize=7)
                ax.set_ylabel("y [arcmin] (north)", fontsize=7)
            else:
                im_band = im
                lo, hi = bands[c - 1]
                ax.set_title(f"{lo:g}-{hi:g} keV\n{img.sum():.0f} cts", fontsize=7)
            if theta is not None and np.isfinite(theta[i]):
                ax.add_patch(Circle((0.0, 0.0), theta[i], fill=False, ec="cyan", lw=0.8, ls="--"))
            ax.plot([0.0], [0.0], marker="+", color="cyan", ms=7, mew=1.0)
            ax.set_xlim(-h, h)
            ax.set_ylim(-h, h)
            if c == 0:
                ax.set_xlabel("x [arcmin] (west)", fontsize=7)
            ax.tick_params(labelsize=6)
        for im, axs, kw in ((im_sum, axes[0], dict(location="left", pad=0.04)),
                            (im_band, list(axes[1:]), dict(pad=0.01))):
            cb = sub.colorbar(im, ax=axs, shrink=0.85, ticks=_colorbar_ticks(im.norm.vmax), **kw)
            cb.ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            cb.ax.yaxis.set_minor_locator(NullLocator())
            cb.ax.tick_params(labelsize=6)
        cb.set_label(unit, fontsize=7)
    return fig
