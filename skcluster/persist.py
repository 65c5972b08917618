"""Saving and loading fitted models, with a format that loads without running code.

Two ways to keep a fitted estimator (a ``CNNRegressor``, a
``DeepEnsembleRegressor`` of them, or a whole ``Pipeline`` of skcluster
steps):

* ``pickle`` / ``joblib.dump``: complete, fast, but loading a pickle can run
  arbitrary code, so only load pickles you made yourself. A net fitted on a
  GPU unpickles on a CPU-only machine (skorch maps the weights to the CPU).
* :func:`save` / :func:`load`: a zip file that holds

  ``model.json``
      the tree of estimators: class import paths, constructor parameters
      and fitted attributes (numbers, strings, lists, dicts, None);
  ``arrays.safetensors``
      every numpy array of the tree (safetensors: raw bytes plus a JSON
      header, no code);
  ``tensors.safetensors``
      torch weights and optimizer states.

How :func:`load` trusts a file (the trusted-types model of skops): it
first reads the archive with a cap on every member's size, then checks the
whole JSON tree, and only then builds anything. The check accepts

* objects only of the exact classes in :data:`ALLOWED` (the package's
  transformers and regressors, the network, ``sklearn.pipeline.Pipeline``
  and the package's progress callback), each with constructor arguments
  whose names its ``__init__`` signature has (read at load time) and with
  the values its entry permits (no file paths: ``Pipeline(memory=...)`` must
  be None, a network may not compile or carry other callbacks);
* classes as values only in the network's ``module``, ``criterion``,
  ``optimizer``, ``iterator_*`` and ``dataset`` parameters, and only those
  listed there (the network builds them);
* otherwise only plain data: None, bools, numbers, strings, lists, tuples,
  dicts, numpy scalars, dtypes and arrays of numbers or strings, torch
  tensors (read from safetensors, never memory-mapped) and dtypes.

Every function reference, every other class (any ``sklearn``, ``numpy``,
``builtins`` or ``torch`` name not listed, skorch's ``Checkpoint`` and
other callbacks that write files), any value that is not plain data, an
archive member over its size cap, JSON deeper or larger than its cap and a
safetensors header that disagrees with its data are refused with
:class:`ModelFileError`, naming the place in the file and the class, before
any object is built. Extra classes of your own can be trusted by exact
name: ``load(path, trusted=["mypackage.module:MyTransformer"])``.

What the safe format stores follows the project convention that fitted
state is only arrays, numbers, strings, None and lists/tuples/dicts of these
(plus torch modules in networks). Anything else (a ``RandomState`` instance
as a parameter, a lambda) is refused at save time with the path of the
offending attribute.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import json
import keyword
import math
import re
import struct
import types
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .io._util import atomic_output

__all__ = [
    "ALLOWED", "DEFAULT_TRUSTED", "FORMAT_NAME", "FORMAT_VERSION", "LIMITS", "ModelFileError",
    "check_file", "load", "read_manifest", "save",
]

FORMAT_NAME = "skcluster-model"
#: Version 1 files (every file written so far) load when they name only allowed classes.
FORMAT_VERSION = 1

_JSON_NAME = "model.json"
_ARRAYS_NAME = "arrays.safetensors"
_TENSORS_NAME = "tensors.safetensors"

#: Caps applied before anything is built (bytes, counts). A real model of
#: the seed study's size (30 members, 60 epochs) is far below each.
LIMITS = {
    "json_bytes": 64 * 2**20,  # model.json, uncompressed
    "json_depth": 64,  # nesting of lists/dicts in model.json (real models: about 25)
    "json_nodes": 4_000_000,  # values in model.json
    "arrays_bytes": 1 * 2**30,  # arrays.safetensors, uncompressed
    "tensors_bytes": 1 * 2**30,  # tensors.safetensors, uncompressed
    "safetensors_header_bytes": 16 * 2**20,
    "safetensors_entries": 1_000_000,
    "string_chars": 1_000_000,  # one string value
}


class ModelFileError(ValueError):
    """A model file that :func:`load` refuses (untrusted content, malformed, too large).

    Attributes
    ----------
    where : str or None
        Place in the file's object tree (``root.params['steps'][2][1]``) or
        archive member.
    name : str or None
        The class or function path the file named there, if any.
    """

    def __init__(self, message, where=None, name=None):
        super().__init__(message)
        self.where = where
        self.name = name


# ---------------------------------------------------------------------------
# the registry of allowed classes
# ---------------------------------------------------------------------------
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
    """

    kind: str = "estimator"
    fixed: dict = field(default_factory=dict)
    slots: tuple = ()
    skorch: bool = False


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
    "sklearn.pipeline:Pipeline": Allowed(fixed={"memory": (None,), "transform_input": (None,)}),
    # preprocessing (a saved model starts with BandBinner; ImageCutout holds file names and is not saved)
    "skcluster.preprocessing.binning:BandBinner": Allowed(),
    "skcluster.preprocessing.resize:Resizer": Allowed(),
    "skcluster.preprocessing.smooth:GaussianSmoother": Allowed(),
    "skcluster.preprocessing.scaling:CountScaler": Allowed(),
    "skcluster.preprocessing.joining:RedshiftJoiner": Allowed(),
    "skcluster.preprocessing.masking:PointSourceMasker": Allowed(),
    "skcluster.preprocessing.domain:DomainFlagger": Allowed(),
    # baselines (the first four paths are those of files written before the package split)
    "skcluster.baselines:ScalarObservables": Allowed(),
    "skcluster.baselines:ColumnsToArray": Allowed(),
    "skcluster.baselines:ScalingRelationRegressor": Allowed(),
    "skcluster.baselines:GradientBoostingMassRegressor": Allowed(),
    "skcluster.baselines.observables:ScalarObservables": Allowed(),
    "skcluster.baselines.features:ColumnsToArray": Allowed(),
    "skcluster.baselines.scaling:ScalingRelationRegressor": Allowed(),
    "skcluster.baselines.boosting:GradientBoostingMassRegressor": Allowed(),
    # masks under a stated prior; recalibrated uncertainties
    "skcluster.priors:PriorCorrectedRegressor": Allowed(),
    "skcluster.calibration:RecalibratedRegressor": Allowed(),
    "sklearn.frozen._frozen:FrozenEstimator": Allowed(),  # holds the fitted model RecalibratedRegressor wraps
    # the deep ensemble and its networks
    "skcluster.ensemble:DeepEnsembleRegressor": Allowed(),
    "skcluster.nn.regressor:CNNRegressor": Allowed(skorch=True, fixed=_SKORCH_FIXED),
    "skcluster.demo:EpochProgress": Allowed(kind="callback"),
    # classes a network builds itself (values of its parameters, never built by the loader)
    "skcluster.nn.module:ClusterCNN": Allowed(kind="class_value", slots=("module",)),
    "skcluster.nn.losses:GaussianNLLLoss": Allowed(kind="class_value", slots=("criterion",)),
    "torch.optim.adam:Adam": Allowed(kind="class_value", slots=("optimizer",)),
    "torch.optim.adamw:AdamW": Allowed(kind="class_value", slots=("optimizer",)),
    "torch.optim.sgd:SGD": Allowed(kind="class_value", slots=("optimizer",)),
    "torch.utils.data.dataloader:DataLoader": Allowed(kind="class_value", slots=("iterator_train", "iterator_valid")),
    "skorch.dataset:Dataset": Allowed(kind="class_value", slots=("dataset",)),
}

#: The allowed class paths (kept for code that used the earlier name).
DEFAULT_TRUSTED = tuple(ALLOWED)

_NUMPY_DTYPE = re.compile(r"^[<>|=]?(?:b1|\?|[iu][1248]|f[248]|U\d{1,6})$")
_TORCH_DTYPES = {
    "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
}
_SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2, "U32": 4, "I32": 4,
    "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}
_FLOAT_WORDS = {"nan", "inf", "-inf"}


class _Encoder:
    """Turn an object tree into JSON-able data plus arrays and tensors."""

    def __init__(self):
        self.arrays = {}
        self.tensors = {}

    def _fail(self, path, obj, why=""):
        raise TypeError(
            f"cannot save {path}: {type(obj).__module__}.{type(obj).__qualname__} "
            f"{why or 'is not supported by the safe format'} (it stores arrays, numbers, "
            "strings, None, lists/tuples/dicts of these, estimators and torch weights); "
            "use joblib.dump for objects you only load yourself"
        )

    def encode(self, obj, path):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int) and not isinstance(obj, bool):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, np.generic):
            return self._np_scalar(obj, path)
        if isinstance(obj, np.ndarray):
            return self._ndarray(obj, path)
        if isinstance(obj, np.dtype):
            return {"__dtype__": obj.str if obj.kind != "O" else "object"}
        if isinstance(obj, list):
            return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            return self._dict(obj, path)
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            return self._ref(obj, path)
        torch = _torch()
        if torch is not None and isinstance(obj, torch.Tensor):
            key = f"t{len(self.tensors)}"
            self.tensors[key] = obj.detach().cpu().contiguous().clone()
            return {"__tensor__": key}
        if torch is not None and isinstance(obj, torch.device):
            return str(obj)  # "cpu", "cuda:0": torch accepts the string wherever a device goes
        if torch is not None and isinstance(obj, torch.dtype):
            return {"__torch_dtype__": str(obj).replace("torch.", "")}
        return self._object(obj, path)

    def _np_scalar(self, obj, path):
        if obj.dtype.kind in "biuf":
            value = obj.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = {"__float__": repr(value)}
            return {"__npscalar__": obj.dtype.str, "value": value}
        if obj.dtype.kind == "U":
            return {"__npscalar__": obj.dtype.str, "value": str(obj)}
        self._fail(path, obj)

    def _ndarray(self, arr, path):
        if arr.dtype.kind in "biuf" and arr.dtype.kind != "c":
            key = f"a{len(self.arrays)}"
            if not arr.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
                arr = arr.copy(order="C")
            if arr.dtype.byteorder not in ("=", "|", "<"):
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            self.arrays[key] = arr
            return {"__ndarray__": key}
        if arr.dtype.kind in "UO":
            values = [self.encode(v, f"{path}[{i}]") for i, v in enumerate(arr.ravel().tolist())]
            return {
                "__ndarray_values__": values,
                "dtype": "object" if arr.dtype.kind == "O" else arr.dtype.str,
                "shape": list(arr.shape),
            }
        self._fail(path, arr, f"(dtype {arr.dtype}) is not supported")

    def _dict(self, obj, path):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: self.encode(v, f"{path}[{k!r}]") for k, v in obj.items()}}
        return {
            "__dict_items__": [
                [self.encode(k, f"{path}.<key>"), self.encode(v, f"{path}[{k!r}]")]
                for k, v in obj.items()
            ]
        }

    def _ref(self, obj, path):
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if not module or not qualname or "<" in qualname:
            self._fail(path, obj, f"({obj!r}) cannot be referenced by an import path")
        try:
            found = _getattr_path(importlib.import_module(module), qualname)
        except (ImportError, AttributeError):
            found = None
        if found is not obj:
            self._fail(path, obj, f"({module}.{qualname}) cannot be re-imported by that name")
        tag = "__class__" if isinstance(obj, type) else "__function__"
        return {tag: f"{module}:{qualname}"}

    def _object(self, obj, path):
        cls = type(obj)
        ref = self._ref(cls, f"{path} (its class)")["__class__"]
        if hasattr(obj, "_persist_state") and hasattr(cls, "_persist_restore"):
            params = obj._persist_params() if hasattr(obj, "_persist_params") else obj.get_params(deep=False)
            state = obj._persist_state()
            return {
                "__object__": ref,
                "params": self.encode(params, f"{path}.<params>"),
                "persist": self.encode(state, path),
            }
        if hasattr(obj, "get_params"):
            params = obj.get_params(deep=False)
        else:
            try:
                names = [
                    p.name
                    for p in inspect.signature(cls).parameters.values()
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                ]
            except (TypeError, ValueError):
                names = None
            if names is None or not all(hasattr(obj, n) for n in names) or not hasattr(obj, "__dict__"):
                self._fail(path, obj)
            params = {n: getattr(obj, n) for n in names}
        state = {k: v for k, v in vars(obj).items() if k not in params}
        return {
            "__object__": ref,
            "params": self.encode(params, f"{path}.<params>"),
            "state": self.encode(state, path),
        }


def _torch():
    import sys

    return sys.modules.get("torch")


def _getattr_path(obj, qualname):
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj




# ---------------------------------------------------------------------------
# loading: read with caps, check everything, then build
# ---------------------------------------------------------------------------
def _init_names(cls):
    """Constructor argument names of ``cls`` (following ``**kwargs`` up the MRO)."""
    names = set()
    for klass in cls.__mro__:
        if klass is object:
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):  # pragma: no cover - a C-level __init__
            break
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    names.discard("self")
    return names


_SKORCH_PREFIXES = ("module", "criterion", "optimizer", "iterator_train", "iterator_valid", "dataset")
_OBJECT_KEYS = ({"__object__", "params", "state"}, {"__object__", "params", "persist"})
_TAG_KEYS = {
    "__float__": {"__float__"},
    "__npscalar__": {"__npscalar__", "value"},
    "__ndarray__": {"__ndarray__"},
    "__ndarray_values__": {"__ndarray_values__", "dtype", "shape"},
    "__dtype__": {"__dtype__"},
    "__tuple__": {"__tuple__"},
    "__dict__": {"__dict__"},
    "__dict_items__": {"__dict_items__"},
    "__class__": {"__class__"},
    "__function__": {"__function__"},
    "__tensor__": {"__tensor__"},
    "__torch_dtype__": {"__torch_dtype__"},
    "__object__": {"__object__", "params", "state", "persist"},
}


def _sub(where, key):
    return f"{where}[{key!r}]" if isinstance(key, str) else f"{where}[{key}]"


class _Checker:
    """Check a parsed model.json tree against the registry; build nothing."""

    def __init__(self, registry, arrays, tensors, filename):
        self.registry = registry
        self.arrays = arrays  # name -> (dtype, shape) from the safetensors header
        self.tensors = tensors
        self.filename = filename
        self.classes = {}  # path -> class, for the builder

    # -- errors --------------------------------------------------------------
    def fail(self, where, what, name=None):
        raise ModelFileError(f"refusing to load {self.filename!r}: {where}: {what}", where=where, name=name)

    def refuse_name(self, where, path, why):
        if not isinstance(path, str):
            self.fail(where, f"a class or function path must be a string, got {type(path).__name__}")
        self.fail(where, f"{path!r} {why}. Only the classes listed in skcluster.persist.ALLOWED "
                         "(or given by exact name in trusted=[...]) may appear in a model file", name=path)

    # -- classes -------------------------------------------------------------
    def resolve(self, path, where):
        """The class registered as ``path`` (imported only because it is registered)."""
        if not isinstance(path, str):
            self.fail(where, f"a class path must be a string, got {type(path).__name__}")
        if path in self.classes:
            return self.classes[path]
        if path not in self.registry:
            self.refuse_name(where, path, "is not an allowed class")
        module, _, qualname = path.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            self.fail(where, f"{path!r} is allowed but cannot be imported here: {exc}", name=path)
        if not isinstance(obj, type):
            self.fail(where, f"{path!r} is not a class", name=path)
        own = f"{obj.__module__}:{obj.__qualname__}"
        if own != path and own not in self.registry:
            self.refuse_name(where, path, f"resolves to {own!r}, which is not an allowed class")
        self.classes[path] = obj
        return obj

    # -- values --------------------------------------------------------------
    def value(self, node, where, objects=True):
        """Plain data, or (where ``objects``) allowed estimators nested in it."""
        if node is None or isinstance(node, (bool, int, float)):
            return
        if isinstance(node, str):
            if len(node) > LIMITS["string_chars"]:
                self.fail(where, f"a string of {len(node)} characters (cap {LIMITS['string_chars']})")
            return
        if isinstance(node, list):
            for i, v in enumerate(node):
                self.value(v, _sub(where, i), objects)
            return
        if not isinstance(node, dict) or not node:
            self.fail(where, f"malformed node {type(node).__name__}")
        tag = next((k for k in node if k in _TAG_KEYS), None)
        if tag is None:
            self.fail(where, f"malformed node with keys {sorted(node)[:5]}")
        if tag == "__object__":
            if not objects:
                self.fail(where, f"an object ({node.get('__object__')!r}) where only plain data may be",
                          name=node.get("__object__"))
            return self.object(node, where)
        if set(node) != _TAG_KEYS[tag]:
            self.fail(where, f"malformed {tag} node with keys {sorted(node)[:5]}")
        body = node[tag]
        if tag == "__function__":
            self.refuse_name(where, body, "is a function reference; a model file may hold no functions")
        elif tag == "__class__":
            self.refuse_name(where, body, "is a class given as a value, which a model file may only do for "
                                          "a network's module, criterion, optimizer, iterator and dataset")
        elif tag == "__float__":
            if body not in _FLOAT_WORDS:
                self.fail(where, f"__float__ must be one of {sorted(_FLOAT_WORDS)}, got {body!r}")
        elif tag == "__npscalar__":
            self.dtype(body, where)
            v = node["value"]
            if isinstance(v, dict):
                if set(v) != {"__float__"} or v["__float__"] not in _FLOAT_WORDS:
                    self.fail(where, "malformed numpy scalar")
            elif not isinstance(v, (bool, int, float, str)):
                self.fail(where, "malformed numpy scalar")
        elif tag == "__dtype__":
            if body != "object":
                self.dtype(body, where)
        elif tag == "__ndarray__":
            if body not in self.arrays:
                self.fail(where, f"array {body!r} is not in {_ARRAYS_NAME}")
        elif tag == "__tensor__":
            if body not in self.tensors:
                self.fail(where, f"tensor {body!r} is not in {_TENSORS_NAME}")
        elif tag == "__torch_dtype__":
            if body not in _TORCH_DTYPES:
                self.fail(where, f"torch dtype {body!r} is not allowed")
        elif tag == "__ndarray_values__":
            dt, shape = node["dtype"], node["shape"]
            if dt != "object":
                self.dtype(dt, where)
                if not dt.lstrip("<>|=").startswith("U"):
                    self.fail(where, f"value arrays hold strings or plain objects, not {dt!r}")
            if (not isinstance(shape, list) or len(shape) > 32
                    or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
                self.fail(where, f"malformed array shape {shape!r}")
            if not isinstance(body, list) or math.prod(shape) != len(body):
                self.fail(where, f"array of shape {shape} does not hold {len(body) if isinstance(body, list) else '?'} values")
            for i, v in enumerate(body):
                self.value(v, _sub(where, i), objects=False)
        elif tag == "__tuple__":
            if not isinstance(body, list):
                self.fail(where, "malformed tuple")
            for i, v in enumerate(body):
                self.value(v, _sub(where, i), objects)
        elif tag == "__dict__":
            if not isinstance(body, dict):
                self.fail(where, "malformed dict")
            for k, v in body.items():
                self.value(v, _sub(where, k), objects)
        elif tag == "__dict_items__":
            if not isinstance(body, list):
                self.fail(where, "malformed dict")
            for i, item in enumerate(body):
                if not isinstance(item, list) or len(item) != 2:
                    self.fail(_sub(where, i), "malformed dict item")
                self.value(item[0], f"{where}.<key {i}>", objects=False)
                if isinstance(item[0], dict) and "__tuple__" not in item[0] and "__npscalar__" not in item[0]:
                    self.fail(f"{where}.<key {i}>", "a dict key must be a number, string, None or tuple")
                self.value(item[1], _sub(where, i), objects)

    def dtype(self, text, where):
        if not isinstance(text, str) or not _NUMPY_DTYPE.match(text):
            self.fail(where, f"numpy dtype {text!r} is not allowed (numbers, bools and unicode strings only)")

    # -- objects -------------------------------------------------------------
    def object(self, node, where, callback=False):
        path = node.get("__object__")
        if set(node) not in _OBJECT_KEYS:
            self.fail(where, f"malformed object node with keys {sorted(node)[:5]}")
        cls = self.resolve(path, where)
        entry = self.registry[path]
        if entry.kind == "class_value":
            self.refuse_name(where, path, "may only be named as a network's parameter, not built from the file")
        if (entry.kind == "callback") != callback:
            what = "a callback, allowed only in a network's callbacks" if entry.kind == "callback" else \
                "not an allowed callback"
            self.refuse_name(where, path, f"is {what}")
        params = node["params"]
        if not (isinstance(params, dict) and set(params) == {"__dict__"} and isinstance(params["__dict__"], dict)):
            self.fail(where, f"malformed parameters of {path!r}", name=path)
        params = params["__dict__"]
        names = _init_names(cls)
        for key, value in params.items():
            here = f"{where}.params[{key!r}]"
            if entry.skorch and self.skorch_param(cls, key, value, params, here, path):
                continue
            if key not in names:
                self.fail(here, f"{path!r} takes no argument {key!r} (its arguments: "
                                f"{', '.join(sorted(names))})", name=path)
            if key in entry.fixed:
                if not (value is None or isinstance(value, (bool, str))) or not any(
                        value == f and type(value) is type(f) for f in entry.fixed[key]):
                    self.fail(here, f"{path!r}: {key} must be one of {list(entry.fixed[key])} in a model "
                                    f"file, got {_short(value)}", name=path)
                continue
            self.value(value, here)
        if "state" in node:
            state = node["state"]
            if not (isinstance(state, dict) and set(state) == {"__dict__"} and isinstance(state["__dict__"], dict)):
                self.fail(where, f"malformed state of {path!r}", name=path)
            for key, value in state["__dict__"].items():
                here = f"{where}.state[{key!r}]"
                if not key.isidentifier() or keyword.iskeyword(key) or key.startswith("__") or key in names:
                    self.fail(here, f"{key!r} is not a fitted attribute name", name=path)
                if isinstance(inspect.getattr_static(cls, key, None), (types.FunctionType, property,
                                                                        classmethod, staticmethod)):
                    self.fail(here, f"{key!r} would hide a method of {path!r}", name=path)
                self.value(value, here)
        else:
            if not callable(getattr(cls, "_persist_restore", None)):
                self.fail(where, f"{path!r} cannot restore a saved state", name=path)
            self.value(node["persist"], f"{where}.persist", objects=False)

    def skorch_param(self, cls, key, value, params, here, path):
        """Check a network parameter that is special to skorch; False if it is an ordinary one."""
        if key in _SKORCH_PREFIXES:
            if isinstance(value, dict) and set(value) == {"__class__"}:
                ref = value["__class__"]
                self.resolve(ref, here)
                if key not in self.registry[ref].slots:
                    self.refuse_name(here, ref, f"may not be the {key} of a network")
                return True
            if value is None and key in ("iterator_valid", "dataset"):
                self.fail(here, f"{path!r}: {key} must be a class")
            self.fail(here, f"{path!r}: {key} must be one of the allowed classes, got {_short(value)}",
                      name=path)
        if key == "callbacks":
            if value is None:
                return True
            if not isinstance(value, list):
                self.fail(here, f"{path!r}: callbacks must be None or a list of allowed callbacks")
            for i, cb in enumerate(value):
                if not (isinstance(cb, dict) and "__object__" in cb):
                    self.fail(_sub(here, i), "a callback must be an allowed callback object")
                self.object(cb, _sub(here, i), callback=True)
            return True
        prefix, sep, sub = key.partition("__")
        if not sep:
            return False
        if prefix not in _SKORCH_PREFIXES or not sub or "__" in sub:
            self.fail(here, f"{path!r} takes no argument {key!r}", name=path)
        ref = params.get(prefix)
        if isinstance(ref, dict) and set(ref) == {"__class__"}:
            target = self.resolve(ref["__class__"], here)
        else:
            default = inspect.signature(cls).parameters.get(prefix)
            target = default.default if default is not None else None
        if not isinstance(target, type):
            self.fail(here, f"{path!r}: {key!r} given, but its {prefix} is not a known class", name=path)
        allowed = _init_names(target) - {"params"}
        if sub not in allowed:
            self.fail(here, f"{prefix} {target.__qualname__} takes no argument {sub!r} (its arguments: "
                            f"{', '.join(sorted(allowed))})", name=path)
        self.value(value, here, objects=False)
        return True


def _short(value):
    text = json.dumps(value)[:80]
    return text


class _Builder:
    """Build the checked tree (only classes the checker resolved)."""

    def __init__(self, classes, arrays, tensors, device, filename):
        self.classes = classes
        self.arrays = arrays
        self.tensors = tensors
        self.device = device
        self.filename = filename

    def build(self, node, where="root"):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.build(v, _sub(where, i)) for i, v in enumerate(node)]
        if "__float__" in node:
            return float(node["__float__"])
        if "__npscalar__" in node:
            return np.array(self.build(node["value"]), dtype=np.dtype(node["__npscalar__"]))[()]
        if "__ndarray__" in node:
            arr = self.arrays[node["__ndarray__"]]
            return np.array(arr, copy=True)
        if "__ndarray_values__" in node:
            values = [self.build(v) for v in node["__ndarray_values__"]]
            shape = tuple(node["shape"])
            if node["dtype"] == "object":
                out = np.empty(len(values), dtype=object)
                out[:] = values
                return out.reshape(shape)
            return np.array(values, dtype=np.dtype(node["dtype"])).reshape(shape)
        if "__dtype__" in node:
            return np.dtype(object if node["__dtype__"] == "object" else node["__dtype__"])
        if "__tuple__" in node:
            return tuple(self.build(v, _sub(where, i)) for i, v in enumerate(node["__tuple__"]))
        if "__dict__" in node:
            return {k: self.build(v, _sub(where, k)) for k, v in node["__dict__"].items()}
        if "__dict_items__" in node:
            return {_hashable(self.build(k)): self.build(v) for k, v in node["__dict_items__"]}
        if "__class__" in node:
            return self.classes[node["__class__"]]
        if "__tensor__" in node:
            return self.tensors[node["__tensor__"]]
        if "__torch_dtype__" in node:
            import torch

            return getattr(torch, node["__torch_dtype__"])
        if "__object__" in node:
            path = node["__object__"]
            cls = self.classes[path]
            params = self.build(node["params"], f"{where}.params")
            try:
                if "persist" in node:
                    return cls._persist_restore(params, self.build(node["persist"]), device=self.device)
                obj = cls(**params)
                obj.__dict__.update(self.build(node["state"], f"{where}.state"))
                return obj
            except ModelFileError:
                raise
            except Exception as exc:
                raise ModelFileError(
                    f"refusing to load {self.filename!r}: {where}: building {path!r} from the file failed: "
                    f"{type(exc).__name__}: {exc}", where=where, name=path) from exc
        raise ModelFileError(f"{self.filename!r}: {where}: malformed node")  # pragma: no cover - checked


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def _versions():
    out = {}
    for name in ("skcluster", "sklearn", "skorch", "torch", "numpy"):
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # pragma: no cover - optional
            pass
    return out


def save(estimator, path, *, overwrite=False, trusted=()):
    """Save a fitted estimator in the safe format (zip of JSON + safetensors).

    Parameters
    ----------
    estimator : estimator
        Fitted: a ``CNNRegressor``, ``DeepEnsembleRegressor``, ``Pipeline``,
        or any scikit-learn estimator whose fitted state follows the project
        convention (arrays, numbers, strings, None, lists/tuples/dicts).
    path : str or Path
        The file to write (``.skc`` by convention; any name works).
    overwrite : bool, default=False
        Replace an existing file. Without it an existing file raises
        ``FileExistsError``.
    trusted : sequence of str or type, default=()
        Classes outside :data:`ALLOWED` that the file may name (as for
        :func:`load`, which needs the same list).

    Returns
    -------
    path : Path

    Raises
    ------
    NotFittedError
        If ``estimator`` is not fitted.
    TypeError
        If some attribute cannot be stored, or :func:`load` would refuse
        the file (its path and class are named).

    Notes
    -----
    The file appears only when everything was written (a temporary file is
    renamed into place); a failure leaves nothing behind and an existing
    file untouched.
    """
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise NotFittedError(f"refusing to save an unfitted {type(estimator).__name__}: {exc}") from None
    enc = _Encoder()
    root = enc.encode(estimator, "estimator")
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "estimator": f"{type(estimator).__module__}:{type(estimator).__qualname__}",
        "root": root,
    }
    text = json.dumps(manifest, allow_nan=False, indent=1)
    checker = _Checker(_registry(trusted), dict.fromkeys(enc.arrays), dict.fromkeys(enc.tensors), str(path))
    try:  # write nothing that load would refuse
        checker.value(root, "root")
    except ModelFileError as exc:
        raise TypeError(
            f"cannot save {str(path)!r}: skcluster.persist.load would refuse it: {exc.args[0].split(': ', 1)[1]}"
            + (f" (pass trusted=[{exc.name!r}] to save and load if you trust it)" if exc.name else "")
        ) from None
    import safetensors.numpy

    arrays = safetensors.numpy.save(enc.arrays) if enc.arrays else b""
    tensors = b""
    if enc.tensors:
        import safetensors.torch

        tensors = safetensors.torch.save(enc.tensors)
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(_JSON_NAME, text, compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr(_ARRAYS_NAME, arrays, compress_type=zipfile.ZIP_STORED)
            zf.writestr(_TENSORS_NAME, tensors, compress_type=zipfile.ZIP_STORED)
    return path


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


def _read_member(zf, info, cap, filename):
    """A zip member's bytes, refusing more than ``cap`` (the header and the stream both)."""
    if info.file_size > cap:
        raise ModelFileError(
            f"refusing to load {filename!r}: {info.filename} is {info.file_size} bytes uncompressed, over "
            f"the cap of {cap} (skcluster.persist.LIMITS)", where=info.filename)
    with zf.open(info) as f:
        data = f.read(cap + 1)
    if len(data) > cap or len(data) != info.file_size:
        raise ModelFileError(
            f"refusing to load {filename!r}: {info.filename} holds {'more than ' if len(data) > cap else ''}"
            f"{len(data)} bytes, but its zip header says {info.file_size}", where=info.filename)
    return data


def _json_shape_check(text, filename):
    """Refuse JSON nested or sized over the caps, before parsing it."""
    stripped = re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', text)
    codes = np.frombuffer(stripped, dtype=np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    closes = (codes == ord("]")) | (codes == ord("}"))
    n_values = int(opens.sum()) + int(np.count_nonzero(codes == ord(","))) + 1
    if n_values > LIMITS["json_nodes"]:
        raise ModelFileError(
            f"refusing to load {filename!r}: {_JSON_NAME} holds about {n_values} values, over the cap of "
            f"{LIMITS['json_nodes']} (skcluster.persist.LIMITS)", where=_JSON_NAME)
    if codes.size:
        depth = int(np.max(np.cumsum(opens.astype(np.int64) - closes.astype(np.int64))))
        if depth > LIMITS["json_depth"]:
            raise ModelFileError(
                f"refusing to load {filename!r}: {_JSON_NAME} is nested {depth} deep, over the cap of "
                f"{LIMITS['json_depth']} (skcluster.persist.LIMITS)", where=_JSON_NAME)


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _safetensors_header(raw, member, cap, filename):
    """name -> (dtype, shape) from a safetensors blob, checked against its data."""
    if not raw:
        return {}

    def bad(why):
        return ModelFileError(f"refusing to load {filename!r}: {member}: {why}", where=member)

    if len(raw) < 8:
        raise bad("too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(LIMITS["safetensors_header_bytes"], len(raw) - 8):
        raise bad(f"its header claims {n} bytes (file {len(raw)} bytes, cap "
                  f"{LIMITS['safetensors_header_bytes']})")
    try:
        header = json.loads(raw[8:8 + n], object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise bad(f"malformed header ({exc})") from None
    if not isinstance(header, dict):
        raise bad("malformed header")
    header.pop("__metadata__", None)
    if len(header) > LIMITS["safetensors_entries"]:
        raise bad(f"{len(header)} entries, over the cap of {LIMITS['safetensors_entries']}")
    data_len = len(raw) - 8 - n
    spans = []
    out = {}
    for name, info in header.items():
        if not (isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"}):
            raise bad(f"malformed entry {name!r}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _SAFETENSORS_DTYPES:
            raise bad(f"entry {name!r} has dtype {dtype!r}, which is not allowed")
        if not (isinstance(shape, list) and len(shape) <= 32
                and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
            raise bad(f"entry {name!r} has a malformed shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise bad(f"entry {name!r} has data offsets {offsets!r} outside its {data_len} bytes of data")
        size = math.prod(shape) * _SAFETENSORS_DTYPES[dtype]
        if size != offsets[1] - offsets[0] or size > cap:
            raise bad(f"entry {name!r} declares shape {shape} of {dtype} ({size} bytes) but "
                      f"{offsets[1] - offsets[0]} bytes of data")
        spans.append(tuple(offsets))
        out[name] = (dtype, tuple(shape))
    spans.sort()
    end = 0
    for a, b in spans:
        if a != end:
            raise bad("its entries overlap or leave gaps in the data")
        end = b
    if end != data_len:
        raise bad(f"its entries cover {end} of its {data_len} bytes of data")
    return out


_MEMBERS = {_JSON_NAME: "json_bytes", _ARRAYS_NAME: "arrays_bytes", _TENSORS_NAME: "tensors_bytes"}


def _read_archive(path):
    """(manifest, raw arrays, raw tensors) of a model file, with every cap applied."""
    path = Path(path)
    filename = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {filename!r}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{filename!r} is not a skcluster model file (expected a zip written by "
            "skcluster.persist.save; pickles are read with joblib.load)")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFileError(f"{filename!r} is not a readable zip file: {exc}") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if _JSON_NAME not in names:
            raise ModelFileError(f"{filename!r} is a zip file but has no {_JSON_NAME}: not a skcluster model file")
        extra = sorted(set(names) - set(_MEMBERS))
        if extra or len(names) != len(set(names)):
            raise ModelFileError(
                f"refusing to load {filename!r}: unexpected archive members "
                f"{extra or sorted(n for n in names if names.count(n) > 1)}", where=(extra or names)[0])
        raw = {}
        for info in infos:
            if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ModelFileError(f"refusing to load {filename!r}: {info.filename} is encrypted or "
                                     "compressed with an unsupported method", where=info.filename)
            try:
                raw[info.filename] = _read_member(zf, info, LIMITS[_MEMBERS[info.filename]], filename)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
                raise ModelFileError(f"refusing to load {filename!r}: {info.filename} cannot be read: "
                                     f"{exc}", where=info.filename) from None
    text = raw[_JSON_NAME]
    _json_shape_check(text, filename)
    try:
        manifest = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"refusing to load {filename!r}: {_JSON_NAME} is not valid JSON: {exc}",
                             where=_JSON_NAME) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelFileError(f"{filename!r}: unknown format {got!r} (not a skcluster model file)")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{filename!r}: malformed format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{filename!r} was written in format version {version}; this skcluster reads up to version "
            f"{FORMAT_VERSION}: upgrade skcluster")
    if "root" not in manifest:
        raise ModelFileError(f"{filename!r}: {_JSON_NAME} has no 'root'")
    return manifest, raw.get(_ARRAYS_NAME, b""), raw.get(_TENSORS_NAME, b"")


def read_manifest(path):
    """The JSON part of a saved model (versions, classes, parameters), without building anything.

    The archive caps of :data:`LIMITS` apply; the content is not checked
    against the registry (see :func:`check_file`).
    """
    return _read_archive(path)[0]


def _check(path, trusted):
    manifest, raw_arrays, raw_tensors = _read_archive(path)
    filename = str(path)
    arrays = _safetensors_header(raw_arrays, _ARRAYS_NAME, LIMITS["arrays_bytes"], filename)
    tensors = _safetensors_header(raw_tensors, _TENSORS_NAME, LIMITS["tensors_bytes"], filename)
    checker = _Checker(_registry(trusted), arrays, tensors, filename)
    checker.value(manifest["root"], "root")
    return manifest, raw_arrays, raw_tensors, checker


def check_file(path, *, trusted=()):
    """Check a model file as :func:`load` does, building nothing.

    Returns
    -------
    list of str
        The class paths the file names.

    Raises
    ------
    ModelFileError
        Naming the place in the file and the class that is refused.
    """
    return sorted(_check(path, trusted)[3].classes)


def load(path, *, trusted=(), device=None):
    """Load an estimator written by :func:`save`, without running code from the file.

    The archive is read with the caps of :data:`LIMITS`, and its whole
    object tree is checked against :data:`ALLOWED` (classes, their
    arguments, plain-data values) before anything is built.

    Parameters
    ----------
    path : str or Path
    trusted : sequence of str or type, default=()
        Extra classes, by exact name ``"module:QualName"`` (or the class
        objects), that the file may name as estimators besides
        :data:`ALLOWED`. Their arguments and state are checked the same way
        (names from the signature, plain data only).
    device : str, default=None
        Device for the networks (e.g. ``"cpu"``, ``"cuda"``). ``None`` keeps
        the saved device, falling back to the CPU (with a warning) when a
        saved CUDA device is not available.

    Returns
    -------
    estimator

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFileError
        (a ``ValueError``) If the file is refused: not a model file, over a
        size cap, or naming something not allowed; the message names the
        place in the file and the class.
    """
    manifest, raw_arrays, raw_tensors, checker = _check(path, trusted)
    import safetensors.numpy

    filename = str(path)
    try:
        arrays = safetensors.numpy.load(raw_arrays) if raw_arrays else {}
        tensors = {}
        if raw_tensors:
            import safetensors.torch

            tensors = safetensors.torch.load(raw_tensors)
    except Exception as exc:  # the header was checked; the data itself is malformed
        raise ModelFileError(f"refusing to load {filename!r}: cannot read its arrays: {exc}") from exc
    builder = _Builder(checker.classes, arrays, tensors, device, filename)
    return builder.build(manifest["root"])
