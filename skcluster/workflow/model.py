"""A fitted mass model with its parts named: :class:`MassModel`.

What ``skcluster train`` saves (and :func:`~skcluster.workflow.train_mass_model`
returns) is a fitted :class:`~sklearn.pipeline.Pipeline` of
:func:`~skcluster.models.make_mass_pipeline`, possibly wrapped so that its
masses carry a stated prior (:class:`~skcluster.priors.PriorCorrectedRegressor`
or :class:`~skcluster.calibration.MassCalibratedRegressor` around a frozen
pipeline). :class:`MassModel` names its parts by what they are, not by
their position, for the code that reads data into it
(:func:`skcluster.predict_catalog`):

* ``masker`` and ``observables``: the steps before the data source
  (:class:`~skcluster.preprocessing.PointSourceMasker`,
  :class:`~skcluster.baselines.ScalarObservables`), or None;
* ``source``: the step that turns a cluster's data into a counts cube
  (:class:`~skcluster.preprocessing.BandBinner`), with the model's bands
  and box;
* ``flagger``: the :class:`~skcluster.preprocessing.DomainFlagger` right after
  it, or None;
* ``network``: the steps after those, ending in the ensemble of CNNs;
* ``prior``: the wrapper that gives the masses their prior, or None.

:meth:`MassModel.predict` predicts the counts cubes the data source made
through the model's own ``predict`` (the wrapper's, where there is one);
:meth:`MassModel.predict_with_parts` gives the same with the std's photon,
network and physics parts of a physics-marginalised ensemble, from one pass
of the networks.
"""

from __future__ import annotations

import copy

__all__ = ["MassModel"]


class MassModel:
    """The parts of a fitted mass model, by name.

    Parameters
    ----------
    model : Pipeline, PriorCorrectedRegressor or MassCalibratedRegressor
        A fitted mass model; it is not modified.

    Raises
    ------
    ValueError
        ``model`` is not a fitted skcluster mass pipeline.
    """

    def __init__(self, model):
        from sklearn.frozen import FrozenEstimator

        from ..baselines import ScalarObservables
        from ..calibration import MassCalibratedRegressor
        from ..preprocessing import DomainFlagger, PointSourceMasker
        from ..priors import PriorCorrectedRegressor

        self.model = model
        # a model whose masses carry a stated prior wraps the pipeline (skcluster train --prior)
        self.prior = model if isinstance(model, (PriorCorrectedRegressor, MassCalibratedRegressor)) else None
        pipe = model
        if self.prior is not None:
            pipe = getattr(model, "estimator_", None)
            pipe = pipe.estimator if isinstance(pipe, FrozenEstimator) else pipe
        self.pipeline = pipe
        steps = list(getattr(pipe, "steps", None) or [])
        kinds = {"masker": PointSourceMasker, "observables": ScalarObservables}
        i = 0
        for name, kind in kinds.items():
            step = steps[i][1] if i < len(steps) and isinstance(steps[i][1], kind) else None
            setattr(self, name, step)
            i += step is not None
        self.source = steps[i][1] if i < len(steps) else None
        if self.source is None or not hasattr(self.source, "bands_keV_") or not hasattr(self.source, "size_arcmin"):
            raise ValueError(
                "not a fitted skcluster mass pipeline (a Pipeline whose first step bins events or "
                "cuts images: skcluster train / skcluster.models.make_mass_pipeline)")
        self.source_name = steps[i][0]
        self.flagger = steps[i + 1][1] if i + 1 < len(steps) and isinstance(steps[i + 1][1], DomainFlagger) else None
        self._network_start = i + 1 + (self.flagger is not None)

    # -- what the model was trained on -------------------------------------------
    @property
    def network(self):
        """The steps after the data source (and flagger): from a counts cube to masses."""
        return self.pipeline[self._network_start:]

    @property
    def bands(self):
        """The model's bands, [(lo, hi), ...] keV."""
        return [tuple(float(v) for v in b) for b in self.source.bands_keV_]

    @property
    def npix(self):
        """Pixels per side of the counts cube."""
        return int(self.source.image_shape_[0])

    @property
    def size_arcmin(self):
        """Side of the cut-out box, arcmin."""
        return float(self.source.size_arcmin)

    @property
    def pixel_arcsec(self):
        """Pixel side of the counts cube, arcsec."""
        return float(getattr(self.source, "pixel_arcsec_", 60.0 * self.size_arcmin / self.npix))

    @property
    def bins_events(self):
        """True where the data source bins event lists (a BandBinner)."""
        return type(self.source).__name__ == "BandBinner"

    @property
    def nh_column(self):
        """The column of each cluster's Galactic N_H the observables read, or None."""
        obs = self.observables
        if obs is None:
            return None
        old = getattr(obs, "nH_column", "deprecated")  # the old name, in files saved before nh_column
        return obs.nh_column if isinstance(old, str) and old == "deprecated" else old

    @property
    def mass_prior(self):
        """The prior the masses carry: the wrapper's target, else the training population's."""
        return "training" if self.prior is None else str(self.prior.mass_prior_)

    @property
    def _final_step(self):
        """The pipeline's last step (the ensemble)."""
        return self.pipeline.steps[-1][1]

    @property
    def n_members(self):
        """Networks in the ensemble."""
        return len(getattr(self._final_step, "estimators_", []))

    @property
    def physics(self):
        """What the ensemble recorded of its training physics (prior, width, draws, forms), or None.

        A physics-marginalised ensemble records the draws its member groups
        trained on; an ensemble of one physics the mock's record (one draw:
        the preset's functional forms, or its draw of ``make_survey(physics=)``);
        a model trained on clusters that record no physics, None.
        """
        return getattr(self._final_step, "physics_", None)

    @property
    def splits_std(self):
        """True where the ensemble's members trained on groups (physics draws): its std splits in three."""
        return getattr(self._final_step, "member_groups_", None) is not None

    # -- prediction ---------------------------------------------------------------
    def from_cubes(self):
        """The model as it predicts from the data source's output (the wrapper's predict, where one)."""
        if self.prior is None:
            return self.network
        wrapper = copy.copy(self.prior)  # shallow: the fitted calibration is shared, the model not modified
        wrapper.estimator_ = self.network
        return wrapper

    def predict(self, cubes, return_std=True):
        """Masses of the counts cubes ``cubes`` (the data source's output), through the model's own predict.

        Parameters
        ----------
        cubes : ClusterSample
            After the data source (and flagger): ``images``, ``z``, ``exposure``, ...
        return_std : bool, default=True

        Returns
        -------
        mean : ndarray of shape (n,), log10 M500c / Msun
        std : ndarray of shape (n,), dex; only with ``return_std``
        """
        return self.from_cubes().predict(cubes, return_std=return_std)

    def std_parts(self, cubes):
        """The ensemble's std of ``cubes`` and its photon, network and physics parts.

        A prior wrapper (:attr:`prior`) rescales the std that :meth:`predict`
        returns; rescale each part with it (``part * std / total``) and the
        squares of the parts still add up to its square. To get the masses
        too, :meth:`predict_with_parts` runs the networks once for both.

        Parameters
        ----------
        cubes : ClusterSample
            As :meth:`predict`'s.

        Returns
        -------
        dict
            ``{"total", "photon", "network", "physics"}``: ndarrays of shape
            (n,), dex (network NaN with one member per physics draw), from
            the ensemble's ``predict_components``.
        """
        return _parts_of(self._components(cubes))

    def predict_with_parts(self, cubes):
        """Masses of ``cubes``, their std and, for a physics-marginalised model, its parts, in one pass.

        The ensemble's ``predict_components`` runs once; the masses and std
        are what :meth:`predict` returns (the wrapper's prior or
        calibration applied to the same components), the parts those of
        :meth:`std_parts`. ``cubes`` (a ClusterSample) are :meth:`predict`'s.

        Returns
        -------
        mean : ndarray of shape (n,), log10 M500c / Msun
        std : ndarray of shape (n,), dex
        parts : dict or None
            As :meth:`std_parts` returns (the ensemble's, before the
            wrapper's rescaling); None where the std does not split
            (:attr:`splits_std` False), and then the model's own predict ran.
        """
        if not self.splits_std:
            mean, std = self.predict(cubes, return_std=True)
            return mean, std, None
        comp = self._components(cubes)
        # the ensemble's predict is the mixture's moments; a wrapper applies its prior or calibration to them
        mean, std = (comp.mean, comp.std) if self.prior is None else self.prior.predict_from_components(comp, cubes)
        return mean, std, _parts_of(comp)

    def _components(self, cubes):
        """The ensemble's ``predict_components`` of ``cubes`` (through the network's transforms)."""
        net = self.network
        return net[-1].predict_components(net[:-1].transform(cubes) if len(net.steps) > 1 else cubes)


def _parts_of(comp):
    """``{"total", "photon", "network", "physics"}`` of an ensemble's grouped ``predict_components``."""
    return {"total": comp.std, **{k: comp[f"{k}_std"] for k in ("photon", "network", "physics")}}
