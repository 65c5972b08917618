"""Features for generic regressors: chosen columns and redshift terms as a 2-D array.

* :func:`redshift_terms`: z, log10(1+z), log10 E(z) and log10 D_L(z)
  columns, optionally relative to a pivot redshift.
* :class:`ColumnsToArray`: chosen columns of a
  :class:`~skcluster.ClusterSample` (shell-style wildcards, optional log10)
  plus redshift terms as a float64 array for any scikit-learn regressor.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import rows_text
from ..physics import cosmology
from ..preprocessing._base import SampleInputMixin
from ..sample import as_sample
from ._checks import expand_columns, observable_columns

__all__ = ["ColumnsToArray", "catalog_scalars", "redshift_terms"]

_Z_TERMS = ("z", "1+z", "E", "DL")


def redshift_terms(z, terms, z_pivot=None):
    """Redshift features, one column per term.

    Parameters
    ----------
    z : array-like of shape (n_samples,)
    terms : sequence of {"z", "1+z", "E", "DL"}
        "z": z itself; "1+z": log10(1+z); "E": log10 E(z); "DL": log10 of the
        luminosity distance in Mpc (flat LambdaCDM, H0 = 70, Om0 = 0.3,
        :mod:`skcluster.physics.cosmology`).
    z_pivot : float, default=None
        If given, the logarithmic terms are taken relative to their value at
        ``z_pivot`` (log10 E(z)/E(z_pivot), ...) and "z" becomes z - z_pivot.

    Returns
    -------
    numpy.ndarray of float64, shape (n_samples, len(terms))
    """
    z = np.asarray(z, dtype=np.float64)
    bad = ~np.isfinite(z) | (z < 0)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"redshift must be finite and >= 0; {rows.size} bad value(s): {rows_text(rows, z.tolist())}")
    unknown = [t for t in terms if t not in _Z_TERMS]
    if unknown:
        raise ValueError(f"unknown redshift term(s) {unknown}; choose from {list(_Z_TERMS)}")
    if "DL" in terms and np.any(z <= 0):
        i = int(np.flatnonzero(z <= 0)[0])
        raise ValueError(f"the 'DL' term needs z > 0; row {i} has z = {float(z[i])!r}")

    def one(term, zz):
        if term == "z":
            return zz
        if term == "1+z":
            return np.log10(1.0 + zz)
        if term == "E":
            return np.log10(cosmology.efunc(zz))
        return np.log10(cosmology.luminosity_distance_cm(zz) / 3.0856775814913673e24)  # cm per Mpc

    cols = []
    for t in terms:
        v = one(t, z)
        if z_pivot is not None:
            v = v - one(t, np.asarray([float(z_pivot)]))[0]
        cols.append(v)
    return np.stack(cols, axis=1) if cols else np.empty((z.size, 0))


class ColumnsToArray(SampleInputMixin, TransformerMixin, BaseEstimator):
    """Turn chosen columns of a ClusterSample (and redshift terms) into a 2-D array.

    Parameters
    ----------
    columns : sequence of str, default=None
        Columns to take, in order; shell-style wildcards (``"hr_*"``) expand
        to the matching columns. 2-D columns contribute one feature per
        column of theirs. ``None`` takes ``X.meta["observable_columns"]``
        (written by :class:`ScalarObservables`).
    log : bool or sequence of str, default=False
        Take log10 of all the columns (True) or of the named ones; values
        <= 0 then raise an error naming the column, row and value.
    z_terms : sequence of {"z", "1+z", "E", "DL"}, default=()
        Redshift features appended after the columns (see
        :func:`redshift_terms`); needs a ``z`` column.

    Attributes
    ----------
    columns_ : list of str
        Expanded column names.
    feature_names_out_ : list of str
    n_features_out_ : int
    """

    def __init__(self, columns=None, log=False, z_terms=()):
        self.columns = columns
        self.log = log
        self.z_terms = z_terms

    _step = "ColumnsToArray"

    def _columns(self, X):
        if self.columns is None:
            return observable_columns(X, self._step)
        if isinstance(self.columns, str):
            raise TypeError(f"{self._step}: columns must be a list of names, got the string {self.columns!r}")
        return expand_columns(X, self.columns, self._step)

    def fit(self, X, y=None):
        """Record the columns and their widths.

        Parameters
        ----------
        X : ClusterSample
        y : ignored
        """
        X = as_sample(X, step=self._step)
        cols = self._columns(X)
        X.require(*cols, step=self._step)
        unknown = [t for t in self.z_terms if t not in _Z_TERMS]
        if unknown:
            raise ValueError(f"{self._step}: unknown z_terms {unknown}; choose from {list(_Z_TERMS)}")
        if self.z_terms:
            X.require("z", step=self._step)
        logged = self._logged(cols)
        names = []
        for c in cols:
            v = np.asarray(X[c])
            if v.ndim > 2:
                raise ValueError(f"{self._step}: column {c!r} has shape {v.shape}; only 1-D or 2-D columns")
            base = f"log10_{c}" if c in logged else c
            names += [base] if v.ndim == 1 else [f"{base}[{k}]" for k in range(v.shape[1])]
        names += [{"z": "z", "1+z": "log10_1pz", "E": "log10_E", "DL": "log10_DL_Mpc"}[t] for t in self.z_terms]
        self.columns_ = cols
        self.feature_names_out_ = names
        self.n_features_out_ = len(names)
        return self

    def _logged(self, cols):
        if self.log is True:
            return set(cols)
        if self.log is False or self.log is None:
            return set()
        logged = set(self.log)
        missing = logged - set(cols)
        if missing:
            raise ValueError(f"{self._step}: log names columns {sorted(missing)} that are not in columns {cols}")
        return logged

    def transform(self, X):
        """Return the float64 array of shape (n_samples, n_features_out_)."""
        check_is_fitted(self, "columns_")
        X = as_sample(X, step=self._step)
        X.require(*self.columns_, step=self._step)
        logged = self._logged(self.columns_)
        parts = []
        for c in self.columns_:
            v = np.asarray(X[c], dtype=np.float64)
            v = v[:, None] if v.ndim == 1 else v
            bad = ~np.isfinite(v)
            if c in logged:
                bad |= v <= 0
            if bad.any():
                rows = np.flatnonzero(bad.any(axis=1))
                need = "finite and positive (log=True)" if c in logged else "finite"
                raise ValueError(
                    f"{self._step}: column {c!r} must be {need}; {int(bad.sum())} bad value(s): "
                    f"{rows_text(rows, {int(r): float(v[r][bad[r]][0]) for r in rows[:5]})}"
                )
            parts.append(np.log10(v) if c in logged else v)
        if self.z_terms:
            parts.append(redshift_terms(X["z"], self.z_terms))
        out = np.concatenate(parts, axis=1) if parts else np.empty((len(X), 0))
        if out.shape[1] != self.n_features_out_:
            raise ValueError(
                f"{self._step} was fitted with {self.n_features_out_} features but this sample "
                f"gives {out.shape[1]} (a 2-D column changed width)"
            )
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)


def catalog_scalars(catalog):
    """Detection-catalogue scalars an astronomer has for every cluster.

    What eSASS's source fit reports (Brunner et al. 2022): the count rate of
    the likelihood fit (``ml_rate`` = ML_CTS / exposure, counts/s; the
    traditional mass proxy of Krippendorf et al. 2023 and Chiu et al.
    2022), the fitted extent (``ext_arcsec``) and the detection and extent
    likelihoods. The strong baseline (``gbm_scalars``) may use them all. For
    a mock, ``ml_rate_truthmask`` is the same fit with the simulation's own
    labels of bright AGN photons left out instead of the detected point
    sources: a reference row only, since no real pipeline has those labels.
    """
    exposure = np.asarray(catalog["exposure"], dtype=np.float64)
    out = {
        "ml_rate": np.asarray(catalog["ML_CTS"], dtype=np.float64) / exposure,
        "ext_arcsec": np.asarray(catalog["EXT_arcsec"], dtype=np.float64),
        "det_like": np.asarray(catalog["DET_LIKE"], dtype=np.float64),
        "ext_like": np.asarray(catalog["EXT_LIKE"], dtype=np.float64),
    }
    if "ML_CTS_truthmask" in catalog.colnames:  # a mock: the reference fit with truth labels
        out["ml_rate_truthmask"] = np.asarray(catalog["ML_CTS_truthmask"], dtype=np.float64) / exposure
    return out
