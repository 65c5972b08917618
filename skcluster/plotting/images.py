"""A few clusters band by band: :func:`plot_cluster_bands`."""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_number

__all__ = ["plot_cluster_bands", "DEFAULT_PLOT_BANDS_KEV"]

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
