"""The standard preprocessing chain in one line (:func:`make_preprocessing`)."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from .binning import BandBinner
from .joining import RedshiftJoiner
from .masking import PointSourceMasker
from .profile import RadialProfile
from .resize import Resizer
from .scaling import CountScaler
from .smooth import GaussianSmoother

__all__ = ["make_preprocessing", "STEP_NAMES", "OBSERVABLE_BANDS_KEV", "OBSERVABLE_SCALARS"]

#: Names of the steps of :func:`make_preprocessing`, in order.
STEP_NAMES = ("bin", "resize", "smooth", "scale", "join")

#: Bands of the image observables' hardness ratios (and of the baselines'
#: counts), keV: 0.2-2.3 keV covers the eFEDS detection band (Brunner et al.
#: 2022, A&A 661, A1) in three parts, 2.3-7 keV is the hard band.
OBSERVABLE_BANDS_KEV = ((0.2, 0.5), (0.5, 1.2), (1.2, 2.3), (2.3, 7.0))

#: The image observables that ``make_preprocessing(observables=True)``
#: measures (:class:`~skcluster.baselines.ScalarObservables` on the events,
#: after the point-source mask) and joins beside z: the net counts in the
#: 2 arcmin aperture, within the r500 estimate and core-excised, L_X, the
#: background (floored at 1 count, so logged) and the hardness ratios in
#: [-1, 1] (linear); the columns the ``gbm_scalars`` baseline reads.
OBSERVABLE_SCALARS = ("counts_ap", "counts_r500", "counts_ce", "lx_erg_s", "bkg_arcmin2",
                      ("hr_0_1", "linear"), ("hr_1_2", "linear"), ("hr_2_3", "linear"))


def make_preprocessing(bands="krippendorf10", size_arcmin=20.0, npix=50, shape=(50, 50),
                       sigma=1.0, sigma_bands=0.0, stretch="log", use_redshift=True,
                       extra=(), source=None, mask_point_sources=False, profile=False, observables=False,
                       nh_column=None, verbose=True):
    """The standard chain from events (or images) to the network's input.

    ``bin`` (:class:`BandBinner`, or ``source``) -> ``resize``
    (:class:`Resizer`) -> ``smooth`` (:class:`GaussianSmoother`) -> ``scale``
    (:class:`CountScaler`) -> ``join`` (:class:`RedshiftJoiner`), as in the
    seed study (Krippendorf et al. 2023: 10 bands over a 20 arcmin box,
    50 x 50 pixels, Gaussian smoothing, redshift joined to the network). The
    events are binned straight to ``npix`` (50 by default): binning to 300
    first would need 29 GB for 8000 clusters in 10 bands, and gives the same
    50 x 50 cube after the resize.

    Parameters
    ----------
    bands : str or sequence of (float, float), default="krippendorf10"
        Band preset or explicit bands, keV (:class:`BandBinner`).
    size_arcmin : float, default=20.0
        Box side, arcmin.
    npix : int, default=50
        Pixels per side of the binned cube.
    shape : int or (int, int), default=(50, 50)
        Network input size (the resize is a no-op when it equals ``npix``).
    sigma : float or (float, float), default=1.0
        Gaussian smoothing, output pixels.
    sigma_bands : float, default=0.0
        Smoothing across bands, in bands.
    stretch : {"log", "asinh"} or None, default="log"
        :class:`CountScaler` stretch (after exposure correction).
    use_redshift : bool, default=True
        Join ``log(1 + z)`` as a scalar.
    extra : sequence, default=()
        Extra scalar columns (:class:`RedshiftJoiner`).
    source : estimator or None, default=None
        First step instead of a :class:`BandBinner`, e.g. an
        :class:`ImageCutout` for real images.
    mask_point_sources : bool, default=False
        Put a :class:`PointSourceMasker` step ``mask`` before ``bin``: the
        detected point sources of the ``point_sources`` column (the mock
        writes them; :func:`skcluster.io.point_sources_around` makes them
        from a published catalogue) are masked in the events and refilled at
        the local level. Event input only.
    profile : bool, default=False
        Put a :class:`RadialProfile` step ``profile`` right after
        ``resize`` (on the network's pixel grid, whatever the source's
        pixels) and join its ``profile`` column (log10 surface brightness of all
        bands in annuli out to the box edge) beside the redshift: the
        summed flux a CNN on stretched, max-pooled images cannot add up
        itself.
    observables : bool, default=False
        Put a :class:`~skcluster.baselines.ScalarObservables` step
        ``observables`` before ``bin`` (after ``mask``) that measures the
        image observables of :data:`OBSERVABLE_SCALARS` on each cluster's
        events (bands :data:`OBSERVABLE_BANDS_KEV`), and join them beside
        the redshift: what the boosted trees read, from the same photons.
        Event input only.
    nh_column : str, default=None
        With ``observables``: the column of each cluster's Galactic N_H
        (cm^-2) that converts its count rate to L_X
        (:class:`~skcluster.baselines.ScalarObservables` ``nH_column``);
        None assumes eFEDS's 3e20 for every cluster. Add the name to
        ``extra`` to join it beside the redshift too.
    verbose : bool, default=True
        Progress bars of the binning step (long runs only).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps named ``bin``, ``resize``, ``smooth``, ``scale``, ``join``
        (after ``mask`` with ``mask_point_sources`` and ``observables``
        with ``observables``; ``profile`` after ``resize`` with
        ``profile``), so
        that ``GridSearchCV`` can tune e.g. ``smooth__sigma`` or
        ``bin__bands`` and ``pipe.set_params(bin=ImageCutout(...))`` swaps in
        real data (with the bands and pixel grid the rest was fitted on).

    Examples
    --------
    >>> from skcluster.preprocessing import make_preprocessing
    >>> pipe = make_preprocessing(bands="ho3", sigma=1.5)
    >>> [name for name, _ in pipe.steps]
    ['bin', 'resize', 'smooth', 'scale', 'join']
    """
    first = source if source is not None else BandBinner(
        bands=bands, size_arcmin=size_arcmin, npix=npix, verbose=verbose)
    mask = [("mask", PointSourceMasker(size_arcmin=size_arcmin))] if mask_point_sources else []
    obs = []
    if observables:
        from ..baselines import ScalarObservables  # the baselines build on this subpackage

        obs = [("observables", ScalarObservables(source="events", bands_keV=OBSERVABLE_BANDS_KEV,
                                                 size_arcmin=size_arcmin, nH_column=nh_column))]
    elif nh_column is not None:
        raise ValueError("nh_column sets the N_H of the observables step: pass observables=True too")
    prof = [("profile", RadialProfile())] if profile else []
    extra = ((tuple(extra) if not isinstance(extra, str) else (extra,))
             + (OBSERVABLE_SCALARS if observables else ()) + ((("profile", "linear"),) if profile else ()))
    return Pipeline(mask + obs + [("bin", first), ("resize", Resizer(shape=shape))] + prof + [
        ("smooth", GaussianSmoother(sigma=sigma, sigma_bands=sigma_bands)),
        ("scale", CountScaler(stretch=stretch)),
        ("join", RedshiftJoiner(use_redshift=use_redshift, extra=extra)),
    ])
