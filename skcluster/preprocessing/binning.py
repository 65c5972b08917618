"""Per-cluster event lists -> counts cubes (:class:`BandBinner`).

Geometry (docs/architecture.md): a box of side ``S = 60 size_arcmin`` arcsec
centred on the cluster, ``npix`` pixels a side. Pixel (row r, col c) covers
``x in [-S/2 + c S/N, -S/2 + (c+1) S/N)`` and likewise ``y`` with r, where
``x_arcsec`` grows toward decreasing RA (the column axis of evtool images)
and ``y_arcsec`` toward north (the row axis). The box is open: an event with
``|x| >= S/2`` or ``|y| >= S/2`` (compared on the float32 offsets as stored,
so an offset that rounded onto the edge is outside) is dropped, as
:func:`skcluster.io.cutout_events` does.

Memory: the seed study's 300 x 300 cut-outs (Krippendorf et al. 2023) in 10
bands take 3.6 MB per cluster in float32, 29 GB for 8000 clusters. The
standard chain (:func:`~skcluster.models.make_preprocessing`) therefore
bins straight to 32 x 32 pixels of 37.5 arcsec (41 kB per cluster, 330 MB for
8000; the seed study's 50 x 50 would be 100 kB and 800 MB, and equals binning at
300 and then summing 6 x 6 blocks exactly, the
:class:`~skcluster.preprocessing.Resizer` for an integer factor).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._validation import check_positive_int, check_positive_number, rows_text
from ..exceptions import SkclusterWarning
from ..sample import as_sample
from ._base import SampleInputMixin, check_flag, iter_chunks, rows_per_chunk
from .bands import resolve_bands

__all__ = ["BandBinner", "bin_events"]

_FIELDS = ("x_arcsec", "y_arcsec", "energy_keV")

#: Size of the int64 count buffer of one chunk, bytes: small enough to stay in
#: the CPU cache, which makes ``bincount`` and the float32 copy-out faster.
_BINCOUNT_BYTES = 2 * 2**20

#: Above this many bins per event a chunk is counted by sorting its pixel
#: indices rather than with a dense ``bincount`` (measured crossover ~20-40).
_SPARSE_RATIO = 32


def _band_lookup(bands):
    """Interval -> band map for non-overlapping bands, else None.

    The interval of an energy is the number of sorted band edges at or below
    it (``0`` below all edges; NaN compares false everywhere and lands there
    too; +inf lands above all). Energies are compared in float32 against
    float32 edges, so that an event of exactly ``PI = 600 eV`` stored as
    ``float32(0.6)`` falls in the band starting at 0.6 keV (as in an evtool
    image of ``PI >= 600``).

    Returns
    -------
    (breaks32, interval_band) or None
        Sorted unique edges (float32) and, for each of the ``len(breaks) + 1``
        intervals, the band index or -1 (a gap, or outside all bands).
    """
    order = sorted(range(len(bands)), key=lambda b: bands[b][0])
    for a, b in zip(order[:-1], order[1:]):
        if bands[b][0] < bands[a][1]:
            return None  # overlapping bands
    breaks = sorted({v for band in bands for v in band})
    breaks32 = np.asarray(breaks, dtype=np.float32)
    if np.unique(breaks32).size != breaks32.size:
        return None  # edges closer than float32 resolution: use the general path
    interval_band = np.full(len(breaks) + 1, -1, dtype=np.int64)
    for b, (lo, hi) in enumerate(bands):
        # energies with breaks[i0] <= e < breaks[i1] have intervals i0 + 1 .. i1
        interval_band[breaks.index(lo) + 1 : breaks.index(hi) + 1] = b
    return breaks32, interval_band


def _interval(e, breaks32):
    """Number of ``breaks32`` at or below each energy, as uint8 (branch-free).

    A sum of comparisons is 4-5x faster than ``numpy.searchsorted`` for the
    few (<= 255) edges of a band set.
    """
    k = np.zeros(e.shape, dtype=np.uint8)
    tmp = np.empty(e.shape, dtype=bool)
    for edge in breaks32:
        np.greater_equal(e, edge, out=tmp)
        k += tmp.view(np.uint8)
    return k


def _concat_fields(events):
    """Offsets (float64, exact copies of the float32 values) and energies (float32).

    Concatenates field by field (a strided copy per cluster, much faster than
    concatenating the packed 13-byte records). Fields stored with another
    precision are first cast to float32, the precision of the event contract.
    """
    out = []
    for f, final in (("x_arcsec", np.float64), ("y_arcsec", np.float64),
                     ("energy_keV", np.float32)):
        views = [ev[f] for ev in events]
        if all(v.dtype == np.float32 for v in views):
            out.append(np.concatenate(views, dtype=final))
        else:
            out.append(np.concatenate(views, dtype=np.float32, casting="same_kind")
                       .astype(final, copy=False))
    return out


def bin_events(events, bands_keV, size_arcmin, npix, out=None, chunk_size=None,
               verbose=False):
    """Bin per-cluster event lists into a float32 counts cube.

    Vectorised over clusters: the events of a chunk of clusters are
    concatenated once and counted with one flat ``numpy.bincount`` over
    (cluster, band, row, col); the loop runs over chunks only, to bound the
    scratch memory and keep it in cache.

    Parameters
    ----------
    events : sequence of structured arrays, length n
        Each with fields ``x_arcsec``, ``y_arcsec``, ``energy_keV``
        (:data:`skcluster.io.EVENT_DTYPE`); an empty array gives an empty
        image.
    bands_keV : list of (float, float)
        Half-open bands ``lo <= E < hi``, keV (validated by the caller).
    size_arcmin : float
        Side of the box, arcmin.
    npix : int
        Pixels per side.
    out : numpy.ndarray of float32, shape (n, n_bands, npix, npix), default=None
        Output array (allocated when not given).
    chunk_size : int, default=None
        Clusters per chunk; by default sized so that the int64 count buffer
        stays within 2 MB (10 clusters at 10 x 50 x 50).
    verbose : bool, default=False
        Progress bar for long runs.

    Returns
    -------
    images : numpy.ndarray of float32, shape (n, n_bands, npix, npix)
    stats : dict
        ``n_events`` (all events), ``n_nonfinite`` (NaN/inf offset or
        energy), ``n_outside_box``, ``n_outside_bands`` (in the box but in
        no band) and ``n_binned`` (events counted at least once), all ints.
    """
    n = len(events)
    n_bands = len(bands_keV)
    half = 30.0 * float(size_arcmin)  # arcsec, S / 2
    side = 2.0 * half
    pix = side / npix  # arcsec
    plane = npix * npix
    bins_per_cluster = n_bands * plane
    if out is None:
        out = np.empty((n, n_bands, npix, npix), dtype=np.float32)
    if chunk_size is None:
        chunk_size = rows_per_chunk(8 * bins_per_cluster, budget=_BINCOUNT_BYTES)
    lookup = _band_lookup(bands_keV)
    if lookup is not None:
        breaks32, interval_band = lookup
        offset_lut = np.where(interval_band >= 0, interval_band * plane, -(2**62))
    # t_max: the largest float64 t = x + S/2 < S whose pixel t / pix is below
    # npix (the float64 division may round up onto npix within 1e-16 of the
    # edge), so that the box test t <= t_max needs no clipping of the index
    t_max = np.nextafter(side, 0.0)
    while t_max / pix >= npix:
        t_max = np.nextafter(t_max, 0.0)
    edges32 = np.asarray(bands_keV, dtype=np.float32)
    stats = dict(n_events=0, n_nonfinite=0, n_outside_box=0, n_outside_bands=0, n_binned=0)
    flat_out = out.reshape(n, bins_per_cluster)
    for sl in iter_chunks(n, chunk_size, verbose, desc="BandBinner"):
        evs = list(events[sl])
        m = len(evs)
        lengths = np.fromiter((ev.shape[0] for ev in evs), dtype=np.int64, count=m)
        total = int(lengths.sum())
        stats["n_events"] += total
        if total == 0:
            flat_out[sl] = 0.0
            continue
        tx, ty, e = _concat_fields(evs)
        n_finite = int(np.count_nonzero(np.isfinite(tx) & np.isfinite(ty) & np.isfinite(e)))
        # box test on t = offset + S/2 (exact in float64): 0 < t < S, i.e. |x| < S/2
        tx += half
        ty += half
        box = (tx > 0) & (tx <= t_max) & (ty > 0) & (ty <= t_max)
        in_box = int(np.count_nonzero(box & np.isfinite(e)))
        stats["n_nonfinite"] += total - n_finite
        stats["n_outside_box"] += n_finite - in_box
        # pixel index by division by the pixel size (exact when it is a power
        # of two times an integer, e.g. 4 or 24 arcsec); garbage outside the box
        tx /= pix
        ty /= pix
        with np.errstate(invalid="ignore"):
            row = ty.astype(np.int64)
            col = tx.astype(np.int64)
        row *= npix
        row += col  # pixel within the plane
        row += np.repeat(np.arange(m, dtype=np.int64) * bins_per_cluster, lengths)
        dump = m * bins_per_cluster  # one extra bin collects every dropped event
        if lookup is not None:
            # band offset, or a large negative number outside every band
            row += np.take(offset_lut, _interval(e, breaks32))
            valid = row >= 0
            valid &= box
            # idx = row where valid, else dump; branch-free (a masked
            # assignment with a random mask is 3-5x slower)
            row -= dump
            row *= valid
            row += dump
            idx = row
            n_binned = int(np.count_nonzero(valid))
        else:
            parts = []
            any_band = np.zeros(total, dtype=bool)
            for b in range(n_bands):
                sel = box & (e >= edges32[b, 0]) & (e < edges32[b, 1])
                any_band |= sel
                parts.append(row[sel] + b * plane)
            idx = np.concatenate(parts)
            n_binned = int(np.count_nonzero(any_band))
        stats["n_outside_bands"] += in_box - n_binned
        stats["n_binned"] += n_binned
        if dump > _SPARSE_RATIO * idx.size:
            # far more pixels than events (e.g. 300 x 300 x 10 bins for ~5000
            # events): sort and count the occupied pixels instead of
            # clearing and copying a dense int64 count buffer
            _count_sparse(idx, flat_out[sl].reshape(-1), dump)
        else:
            counts = np.bincount(idx, minlength=dump + 1)
            flat_out[sl] = counts[:dump].reshape(m, bins_per_cluster)
    return out, stats


def _count_sparse(idx, out_flat, dump):
    """``out_flat[:] = bincount(idx)[:dump]`` by sorting (for sparse histograms)."""
    out_flat[:] = 0.0
    if idx.size == 0:
        return
    s = np.sort(idx)
    first = np.empty(s.size, dtype=bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    values = s[starts]
    counts = np.diff(np.append(starts, s.size))
    keep = values < dump
    out_flat[values[keep]] = counts[keep]


def _check_events_column(events, step):
    """Raise a clear error for rows that are not event tables."""
    if not isinstance(events, np.ndarray) or events.ndim != 1:
        raise ValueError(
            f"{step}: column 'events' must be a 1-D object array with one event "
            f"table per cluster, got {type(events).__name__} of shape "
            f"{getattr(events, 'shape', None)}"
        )
    bad = []
    for i, ev in enumerate(events):
        names = getattr(getattr(ev, "dtype", None), "names", None)
        if names is None or ev.ndim != 1 or any(f not in names for f in _FIELDS):
            bad.append(i)
    if bad:
        first = events[bad[0]]
        got = getattr(getattr(first, "dtype", None), "names", None) or type(first).__name__
        raise ValueError(
            f"{step}: column 'events' needs a structured array with fields "
            f"{list(_FIELDS)} (skcluster.io.EVENT_DTYPE, see skcluster.io.make_events) "
            f"in every row; not so in {rows_text(bad)} (row {bad[0]} has {got})"
        )


class BandBinner(SampleInputMixin, TransformerMixin, BaseEstimator):
    """Bin per-cluster event lists into counts cubes, one image per energy band.

    Reads the ``events`` column (one :data:`skcluster.io.EVENT_DTYPE` array
    per cluster: offsets ``x_arcsec`` toward decreasing RA, ``y_arcsec``
    north, ``energy_keV``) and adds ``images``, float32 of shape
    (n_clusters, n_bands, npix, npix), in counts. All other columns pass
    through. The binner learns nothing from the data (it is stateless:
    ``transform`` works without ``fit``).

    Parameters
    ----------
    bands : str or sequence of (float, float), default="krippendorf10"
        A preset of :data:`~skcluster.preprocessing.BAND_PRESETS`
        (``"krippendorf10"``, ``"ho3"``, ``"broad"``, ``"efeds7"``) or
        explicit half-open bands ``lo <= E < hi`` in keV. Overlapping bands
        are allowed (an event then counts in each).
    size_arcmin : float, default=20.0
        Side of the box centred on the cluster, arcmin (20 arcmin = 300
        pixels of 4 arcsec in Krippendorf et al. 2023).
    npix : int, default=300
        Pixels per side. 300 gives the native 4 arcsec evtool pixels; the
        standard chain bins straight to 50 (24 arcsec) to keep 8000
        clusters in 800 MB instead of 29 GB. For an integer ratio, binning
        to the coarse grid equals binning at the fine grid and summing blocks.
    chunk_size : int, default=None
        Clusters binned at once; by default chosen so that the scratch count
        buffer stays within 64 MB (e.g. 335 clusters at 10 x 50 x 50).
    verbose : bool, default=True
        Show a progress bar when binning takes longer than a second.

    Attributes
    ----------
    bands_keV_ : list of (float, float)
        The bands, keV.
    n_bands_ : int
    image_shape_ : (int, int)
        ``(npix, npix)``.
    pixel_arcsec_ : float
        Pixel side, arcsec.

    Notes
    -----
    Events outside the box or outside every band, and events with a
    non-finite offset or energy, are dropped, not errors; ``transform``
    reports how many in the output's ``meta["binning_stats"]`` (keys
    ``n_events``, ``n_nonfinite``, ``n_outside_box``, ``n_outside_bands``,
    ``n_binned``). The output ``meta`` gets ``bands_keV``, ``size_arcmin``,
    ``pixel_arcsec`` and ``image_unit="counts"``.

    Pixel edges are placed by float64 division of ``x + S/2`` by the pixel
    size, so an event exactly on an inner pixel edge goes to the pixel on
    its positive side.

    Examples
    --------
    >>> import numpy as np
    >>> from skcluster import ClusterSample
    >>> from skcluster.io import make_events
    >>> from skcluster.preprocessing import BandBinner
    >>> ev = make_events([0.0, 100.0, 700.0], [0.0, -50.0, 0.0], [1.0, 0.7, 1.0])
    >>> X = ClusterSample(events=np.array([ev, ev[:0]], dtype=object), z=np.array([0.1, 0.2]))
    >>> Xt = BandBinner(bands="broad", npix=50).fit_transform(X)
    >>> Xt["images"].shape, Xt["images"].sum(axis=(1, 2, 3)).tolist()
    ((2, 1, 50, 50), [2.0, 0.0])
    >>> Xt.meta["binning_stats"]["n_outside_box"]
    1
    """

    _requires_fit = False  # stateless: transform works without fit

    def __init__(self, bands="krippendorf10", size_arcmin=20.0, npix=300, chunk_size=None,
                 verbose=True):
        self.bands = bands
        self.size_arcmin = size_arcmin
        self.npix = npix
        self.chunk_size = chunk_size
        self.verbose = verbose

    def _params(self):
        step = type(self).__name__
        bands = resolve_bands(self.bands, step=step)
        size = check_positive_number(self.size_arcmin, "size_arcmin", step)
        npix = check_positive_int(self.npix, "npix", step)
        if self.chunk_size is not None:
            check_positive_int(self.chunk_size, "chunk_size", step)
        check_flag(self.verbose, "verbose", step)
        return bands, size, npix

    def _events_of(self, X):
        step = type(self).__name__
        X = as_sample(X, step=step)
        X.require("events", step=step)
        events = X["events"]
        _check_events_column(events, step)
        return X, events

    def fit(self, X, y=None):
        """Check the parameters and the ``events`` column; learn nothing else.

        Parameters
        ----------
        X : ClusterSample
            With an ``events`` column.
        y : ignored

        Returns
        -------
        self : BandBinner
        """
        bands, size, npix = self._params()
        self._events_of(X)
        self.bands_keV_ = bands
        self.n_bands_ = len(bands)
        self.image_shape_ = (npix, npix)
        self.pixel_arcsec_ = 60.0 * size / npix
        return self

    def transform(self, X):
        """Bin the events of every cluster.

        Parameters
        ----------
        X : ClusterSample
            With an ``events`` column.

        Returns
        -------
        ClusterSample
            ``X`` with ``images`` float32 (n_clusters, n_bands, npix, npix)
            added (counts) and the metadata described in the class notes.
        """
        bands, size, npix = self._params()
        X, events = self._events_of(X)
        images, stats = bin_events(events, bands, size, npix, chunk_size=self.chunk_size,
                                   verbose=self.verbose)
        if stats["n_nonfinite"]:
            warnings.warn(f"{type(self).__name__}: {stats['n_nonfinite']} of {stats['n_events']} events have a "
                          "non-finite offset or energy and are not binned", SkclusterWarning, stacklevel=2)
        meta = dict(bands_keV=bands, size_arcmin=size, pixel_arcsec=60.0 * size / npix,
                    image_unit="counts", binning_stats=stats)
        return X.assign(images=images, meta=meta)
