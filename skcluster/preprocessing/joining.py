"""The last preprocessing step: images + scalars for the network (:class:`RedshiftJoiner`).

Its output is exactly what the network's ``forward(images, scalars)`` takes
(docs/architecture.md): a :class:`~skcluster.ClusterSample` with only

* ``images``: float32, shape (n, B, H, W), C-contiguous;
* ``scalars``: float32, shape (n, K), standardised; ``K = 0`` is allowed
  (the no-redshift ablation);

and the :data:`~skcluster.sample.LABEL_COLUMNS` the input has (a
physics-marginalised mock's ``physics_draw``), which the network ignores
and an ensemble may read in ``fit``.

The redshift enters as ``log(1 + z)``, the extra columns as ``log(value)``
(positive quantities such as the exposure in seconds) or as they are; each
scalar is standardised with the mean and standard deviation learned in
``fit``. ``meta`` keeps ``bands_keV``, ``pixel_arcsec``, ``size_arcmin`` and
``image_unit`` and gains ``scalar_names``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._validation import rows_text
from ..io.catalog import check_redshift
from ..sample import LABEL_COLUMNS
from ._base import ImageStepMixin, check_flag, iter_chunks, rows_per_chunk

__all__ = ["RedshiftJoiner"]

_TRANSFORMS = ("log", "linear")


def _parse_extra(extra, step):
    """``extra`` -> list of (column, transform)."""
    if isinstance(extra, str):
        extra = (extra,)
    try:
        items = list(extra)
    except TypeError:
        raise ValueError(f"{step}: extra must be a sequence of column names, got {extra!r}") from None
    out = []
    for item in items:
        if isinstance(item, str):
            name, how = item, "log"
        else:
            try:
                name, how = item
            except (TypeError, ValueError):
                raise ValueError(
                    f"{step}: each entry of extra must be a column name or a "
                    f"(name, 'log'|'linear') pair, got {item!r}"
                ) from None
        if not isinstance(name, str) or how not in _TRANSFORMS:
            raise ValueError(
                f"{step}: each entry of extra must be a column name or a "
                f"(name, 'log'|'linear') pair, got {item!r}"
            )
        out.append((name, how))
    names = [n for n, _ in out]
    if len(set(names)) != len(names) or "z" in names:
        raise ValueError(
            f"{step}: extra names a column twice or names 'z' (use use_redshift): {names}"
        )
    return out


class RedshiftJoiner(ImageStepMixin, TransformerMixin, BaseEstimator):
    """Join the redshift (and other scalars) with the images for the network.

    Parameters
    ----------
    use_redshift : bool, default=True
        Put ``log(1 + z)`` (standardised) first among the scalars, as the
        seed study concatenated the redshift into the first dense layer
        (Krippendorf et al. 2023). False gives no redshift (an ablation).
        z must be finite and in (0, 6] (:func:`skcluster.io.check_redshift`);
        other values raise an error naming the rows.
    extra : sequence of str or of (str, {"log", "linear"}), default=()
        Further scalar columns. A bare name is taken as ``log(value)``
        (it must be > 0, e.g. ``"exposure"`` in seconds); ``(name,
        "linear")`` takes the value as it is. A 2-D column (n, K), such as
        :class:`RadialProfile`'s ``profile``, gives K scalars. Each is
        standardised.

    Attributes
    ----------
    n_bands_ : int
    image_shape_ : (int, int)
    bands_keV_ : list of (float, float) or None
    scalar_names_ : list of str
        Names of the ``scalars`` columns, e.g. ``["log(1+z)", "log(exposure)"]``.
    scalar_mean_ : numpy.ndarray of float64, shape (K,)
    scalar_scale_ : numpy.ndarray of float64, shape (K,)
        Standard deviation of each transformed scalar in ``fit`` (1 where 0).

    Examples
    --------
    >>> import numpy as np
    >>> from skcluster import ClusterSample
    >>> from skcluster.preprocessing import RedshiftJoiner
    >>> X = ClusterSample(images=np.zeros((3, 2, 4, 4), np.float32),
    ...                   z=np.array([0.1, 0.3, 0.5]), exposure=np.array([900.0, 1200, 1500]))
    >>> Xt = RedshiftJoiner(extra=["exposure"]).fit_transform(X)
    >>> sorted(Xt.keys()), Xt["scalars"].shape, Xt.meta["scalar_names"]
    (['images', 'scalars'], (3, 2), ['log(1+z)', 'log(exposure)'])
    """

    def __init__(self, use_redshift=True, extra=()):
        self.use_redshift = use_redshift
        self.extra = extra

    def _raw_scalars(self, X):
        """(n, K) float64 transformed (not yet standardised) scalars and names."""
        step = self._step
        use_z = check_flag(self.use_redshift, "use_redshift", step)
        extra = _parse_extra(self.extra, step)
        needed = (["z"] if use_z else []) + [name for name, _ in extra]
        X.require(*needed, step=step)
        n = len(X)
        cols, names = [], []
        if use_z:
            z = np.asarray(X["z"], dtype=np.float64)
            if z.shape != (n,):
                raise ValueError(f"{step}: column 'z' must be 1-D, got shape {z.shape}")
            check_redshift(z, where=f"{step} (column 'z')")
            cols.append(np.log1p(z))
            names.append("log(1+z)")
        for name, how in extra:
            v = np.asarray(X[name])
            if v.ndim not in (1, 2) or v.shape[0] != n or v.dtype.kind not in "fiub":
                raise ValueError(
                    f"{step}: extra column {name!r} must be one number (or one row of numbers) "
                    f"per cluster, got dtype {v.dtype} and shape {v.shape}"
                )
            v = v.astype(np.float64)
            bad = ~np.isfinite(v)
            if how == "log":
                bad |= v <= 0
            if np.any(bad):
                need = "finite and > 0 (it enters as a log)" if how == "log" else "finite"
                where = (rows_text(np.flatnonzero(bad), v.tolist()) if v.ndim == 1
                         else f"bad entries in {rows_text(np.flatnonzero(bad.any(axis=1)))}")
                raise ValueError(f"{step}: column {name!r} must be {need}; got {where}")
            v = np.log(v) if how == "log" else v
            label = f"log({name})" if how == "log" else name
            if v.ndim == 1:
                cols.append(v)
                names.append(label)
            else:  # a 2-D column (e.g. RadialProfile's ``profile``): one scalar per column of it
                cols += list(v.T)
                names += [f"{label}[{k}]" for k in range(v.shape[1])]
        raw = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
        return raw, names

    def _check_finite_images(self, images):
        chunk = rows_per_chunk(int(np.prod(images.shape[1:])))
        for sl in iter_chunks(images.shape[0], chunk):
            bad = ~np.isfinite(images[sl]).all(axis=(1, 2, 3))
            if np.any(bad):
                raise ValueError(
                    f"{self._step}: images of {rows_text(np.flatnonzero(bad) + sl.start)} "
                    "contain NaN or infinite pixels; the network cannot take them"
                )

    def fit(self, X, y=None):
        """Learn the mean and scale of each scalar; record the image contract.

        Parameters
        ----------
        X : ClusterSample
            With ``images`` and the scalar columns (``z``, ``extra``).
        y : ignored

        Returns
        -------
        self : RedshiftJoiner
        """
        X, images = self._images_of(X)
        raw, names = self._raw_scalars(X)
        self._record_images(X, images)
        self.scalar_names_ = names
        self.scalar_mean_ = raw.mean(axis=0) if raw.shape[1] else np.zeros(0)
        scale = raw.std(axis=0) if raw.shape[1] else np.zeros(0)
        scale[~(scale > 0)] = 1.0
        self.scalar_scale_ = scale
        return self

    def transform(self, X):
        """Build the network input.

        Parameters
        ----------
        X : ClusterSample

        Returns
        -------
        ClusterSample
            Only ``images`` (float32, (n, B, H, W)) and ``scalars`` (float32,
            (n, K)), and the input's label columns (``physics_draw``) where it
            has them; ``meta`` plus ``scalar_names``.
        """
        X, images = self._images_of(X)
        self._check_images(X, images)
        raw, names = self._raw_scalars(X)
        if names != self.scalar_names_:
            raise ValueError(
                f"{self._step} was fitted with scalars {self.scalar_names_}, got {names}"
            )
        self._check_finite_images(images)
        scalars = ((raw - self.scalar_mean_) / self.scalar_scale_).astype(np.float32)
        images = np.ascontiguousarray(images, dtype=np.float32)
        meta = dict(X.meta)
        meta["scalar_names"] = list(names)
        labels = {c: X[c] for c in LABEL_COLUMNS if c in X}
        return type(X)(meta=meta, images=images, scalars=scalars, **labels)
