"""The allow-list: every class a model file may name, and what the file may do with it.

A class moved to another module keeps older files loading through one more
line here: its old ``"module:QualName"`` path, which must resolve to a class
whose own path is also listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _bounds

__all__ = ["ALLOWED", "Allowed"]


@dataclass(frozen=True)
class Allowed:
    """What a model file may do with one class.

    Parameters
    ----------
    kind : {"estimator", "callback", "class_value"}
        ``estimator``: built from ``params`` (names from its ``__init__``
        signature, read at load time) plus fitted ``state``; ``callback``:
        the same, but only inside a network's ``callbacks`` list;
        ``class_value``: never built by the loader, only passed as the value
        of one of the ``slots`` parameters of a network (which builds it with
        its ``<slot>__<name>`` arguments, also checked against its signature).
    fixed : dict
        Parameters whose saved value must be one of the given values (a
        tuple of the allowed values).
    slots : tuple of str
        For ``class_value``: the network parameters it may fill.
    skorch : bool
        A skorch network: ``<prefix>__<name>`` arguments are checked against
        the class in its ``<prefix>`` parameter.
    check : callable or None
        Called with the built object before :func:`~skcluster.persist.load`
        returns: raises ``ValueError`` for parameters outside their valid
        ranges or inconsistent with the fitted state (``_bounds``).
    """

    kind: str = "estimator"
    fixed: dict = field(default_factory=dict)
    slots: tuple = ()
    skorch: bool = False
    check: object = None


_SKORCH_FIXED = {
    "compile": (False,),  # no torch.compile (code generation, cache files) on load
    "torch_load_kwargs": (None,),
    "warm_start": (False, True),
    "predict_nonlinearity": ("auto", None),
    "train_split": ("auto", None),
    "use_caching": ("auto", True, False),
}

#: Exact ``"module:QualName"`` of every class a model file may name, one line
#: per class. A class moved to another module needs its new path here (and
#: its old path too, to keep older files loading: the old path must resolve
#: to a class whose own path is also listed).
ALLOWED = {
    # containers
    "sklearn.pipeline:Pipeline": Allowed(fixed={"memory": (None,), "transform_input": (None,)},
                                         check=_bounds.pipeline),
    # preprocessing (a saved model starts with BandBinner; ImageCutout holds file names and is not saved)
    "skcluster.preprocessing.binning:BandBinner": Allowed(check=_bounds.band_binner),
    "skcluster.preprocessing.resize:Resizer": Allowed(check=_bounds.resizer),
    "skcluster.preprocessing.smooth:GaussianSmoother": Allowed(check=_bounds.smoother),
    "skcluster.preprocessing.scaling:CountScaler": Allowed(check=_bounds.count_scaler),
    "skcluster.preprocessing.joining:RedshiftJoiner": Allowed(check=_bounds.redshift_joiner),
    "skcluster.preprocessing.masking:PointSourceMasker": Allowed(),
    "skcluster.preprocessing.domain:DomainFlagger": Allowed(),
    "skcluster.preprocessing.profile:RadialProfile": Allowed(check=_bounds.radial_profile),
    # baselines (the first four paths are those of files written before the package split)
    "skcluster.baselines:ScalarObservables": Allowed(check=_bounds.observables),
    "skcluster.baselines:ColumnsToArray": Allowed(),
    "skcluster.baselines:ScalingRelationRegressor": Allowed(),
    "skcluster.baselines:GradientBoostingMassRegressor": Allowed(),
    "skcluster.baselines.observables:ScalarObservables": Allowed(check=_bounds.observables),
    "skcluster.baselines.features:ColumnsToArray": Allowed(),
    "skcluster.baselines.scaling:ScalingRelationRegressor": Allowed(),
    "skcluster.baselines.boosting:GradientBoostingMassRegressor": Allowed(),
    # masks under a stated prior; recalibrated uncertainties
    "skcluster.priors:PriorCorrectedRegressor": Allowed(),
    "skcluster.calibration:MassCalibratedRegressor": Allowed(),
    "skcluster.calibration:RecalibratedRegressor": Allowed(),
    "sklearn.frozen._frozen:FrozenEstimator": Allowed(),  # holds the fitted model RecalibratedRegressor wraps
    # the deep ensemble and its networks
    "skcluster.ensemble:DeepEnsembleRegressor": Allowed(check=_bounds.ensemble),
    "skcluster.nn.regressor:CNNRegressor": Allowed(skorch=True, fixed=_SKORCH_FIXED),
    "skcluster.nn.packed:PackedEnsembleRegressor": Allowed(skorch=True, fixed=_SKORCH_FIXED),
    "skcluster.nn.progress:EpochProgress": Allowed(kind="callback"),
    "skcluster.demo:EpochProgress": Allowed(kind="callback"),  # its path before it moved to skcluster.nn
    # classes a network builds itself (values of its parameters, never built by the loader)
    "skcluster.nn.module:ClusterCNN": Allowed(kind="class_value", slots=("module",)),
    "skcluster.nn.packed:PackedClusterCNN": Allowed(kind="class_value", slots=("module",)),
    "skcluster.nn.losses:GaussianNLLLoss": Allowed(kind="class_value", slots=("criterion",)),
    "torch.optim.adam:Adam": Allowed(kind="class_value", slots=("optimizer",)),
    "torch.optim.adamw:AdamW": Allowed(kind="class_value", slots=("optimizer",)),
    "torch.optim.sgd:SGD": Allowed(kind="class_value", slots=("optimizer",)),
    "torch.utils.data.dataloader:DataLoader": Allowed(kind="class_value", slots=("iterator_train", "iterator_valid")),
    "skorch.dataset:Dataset": Allowed(kind="class_value", slots=("dataset",)),
}


def _registry(trusted):
    """ALLOWED plus the caller's exact class names."""
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    registry = dict(ALLOWED)
    for t in trusted or ():
        if isinstance(t, type):
            t = f"{t.__module__}:{t.__qualname__}"
        if not isinstance(t, str) or ":" not in t or t.endswith(":"):
            raise TypeError(
                f"trusted= takes exact class names 'module:QualName' (or the classes), got {t!r}; "
                "whole modules can no longer be trusted")
        registry.setdefault(t, Allowed())
    return registry
