"""Saving and loading fitted models, with a format that loads without running code.

Two ways to keep a fitted estimator (a ``CNNRegressor``, a
``DeepEnsembleRegressor`` of them, or a whole ``Pipeline`` of skcluster and
scikit-learn steps):

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

  :func:`load` imports only classes and functions from an allow-list of
  module prefixes (:data:`DEFAULT_TRUSTED`, extended with ``trusted=``),
  checks that each resolved object really lives there, and never
  unpickles anything, so a shared model file cannot run code of its own.

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
import math
import types
import zipfile
from pathlib import Path

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .io._util import atomic_output

__all__ = ["DEFAULT_TRUSTED", "FORMAT_NAME", "FORMAT_VERSION", "load", "read_manifest", "save"]

FORMAT_NAME = "skcluster-model"
FORMAT_VERSION = 1

#: Module prefixes whose classes and functions :func:`load` may import.
DEFAULT_TRUSTED = (
    "skcluster.",
    "sklearn.",
    "skorch.",
    "torch.nn.",
    "torch.optim.",
    "torch.utils.data.",
    "numpy.",
)
#: Single builtins allowed as values (dtype-like parameters such as ``dtype=float``).
_TRUSTED_BUILTINS = {"float", "int", "bool", "str", "complex", "object"}

_JSON_NAME = "model.json"
_ARRAYS_NAME = "arrays.safetensors"
_TENSORS_NAME = "tensors.safetensors"


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


class _Decoder:
    def __init__(self, arrays, tensors, trusted, device):
        self.arrays = arrays
        self.tensors = tensors
        self.trusted = tuple(trusted)
        self.device = device

    def _allowed(self, module):
        for prefix in self.trusted:
            if module == prefix.rstrip(".") or module.startswith(prefix if prefix.endswith(".") else prefix + "."):
                return True
        return False

    def resolve(self, ref, kind):
        module, _, qualname = ref.partition(":")
        if module == "builtins":
            if qualname not in _TRUSTED_BUILTINS:
                raise _untrusted(ref, self.trusted)
            import builtins

            return getattr(builtins, qualname)
        if not qualname or not self._allowed(module):
            raise _untrusted(ref, self.trusted)
        try:
            obj = _getattr_path(importlib.import_module(module), qualname)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"the model file refers to {ref!r}, which cannot be imported here: {exc}") from exc
        # The object must really live in the trusted module (no re-exported os.system).
        real_module = getattr(obj, "__module__", None) or "?"
        if not self._allowed(real_module) or getattr(obj, "__qualname__", None) != qualname:
            raise _untrusted(f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}", self.trusted)
        if kind == "class" and not isinstance(obj, type):
            raise ValueError(f"the model file says {ref!r} is a class, but it is {type(obj).__name__}")
        if kind == "function" and isinstance(obj, type):
            raise ValueError(f"the model file says {ref!r} is a function, but it is a class")
        return obj

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or len(node) == 0:
            raise ValueError(f"malformed model file: unexpected node {node!r}")
        if "__float__" in node:
            return float(node["__float__"])
        if "__npscalar__" in node:
            return np.array(self.decode(node["value"]), dtype=np.dtype(node["__npscalar__"]))[()]
        if "__ndarray__" in node:
            arr = self.arrays[node["__ndarray__"]]
            return arr if arr.flags.writeable else arr.copy()
        if "__ndarray_values__" in node:
            values = [self.decode(v) for v in node["__ndarray_values__"]]
            shape = tuple(node["shape"])
            if node["dtype"] == "object":
                out = np.empty(len(values), dtype=object)
                out[:] = values
                return out.reshape(shape)
            return np.array(values, dtype=np.dtype(node["dtype"])).reshape(shape)
        if "__dtype__" in node:
            return np.dtype(object if node["__dtype__"] == "object" else node["__dtype__"])
        if "__tuple__" in node:
            return tuple(self.decode(v) for v in node["__tuple__"])
        if "__dict__" in node:
            return {k: self.decode(v) for k, v in node["__dict__"].items()}
        if "__dict_items__" in node:
            return {_hashable(self.decode(k)): self.decode(v) for k, v in node["__dict_items__"]}
        if "__class__" in node:
            return self.resolve(node["__class__"], "class")
        if "__function__" in node:
            return self.resolve(node["__function__"], "function")
        if "__tensor__" in node:
            return self.tensors[node["__tensor__"]]
        if "__torch_dtype__" in node:
            import torch

            dtype = getattr(torch, node["__torch_dtype__"], None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"malformed model file: unknown torch dtype {node['__torch_dtype__']!r}")
            return dtype
        if "__object__" in node:
            cls = self.resolve(node["__object__"], "class")
            params = self.decode(node["params"])
            if "persist" in node:
                if not hasattr(cls, "_persist_restore"):
                    raise ValueError(f"malformed model file: {node['__object__']} cannot restore a saved state")
                return cls._persist_restore(params, self.decode(node["persist"]), device=self.device)
            obj = cls(**params)
            obj.__dict__.update(self.decode(node["state"]))
            return obj
        raise ValueError(f"malformed model file: unknown node with keys {sorted(node)}")


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def _untrusted(ref, trusted):
    return ValueError(
        f"refusing to load {ref!r}: it is not in a trusted module ({', '.join(trusted)} and a few "
        "builtins). If you trust the file and that code, pass its module prefix in trusted=..."
    )


def _versions():
    out = {}
    for name in ("skcluster", "sklearn", "skorch", "torch", "numpy"):
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # pragma: no cover - optional
            pass
    return out


def save(estimator, path, *, overwrite=False):
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

    Returns
    -------
    path : Path

    Raises
    ------
    NotFittedError
        If ``estimator`` is not fitted.
    TypeError
        If some attribute cannot be stored (its path is named).

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


def _open(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{str(path)!r} is not a skcluster model file (expected a zip written by "
            "skcluster.persist.save; pickles are read with joblib.load)"
        )
    zf = zipfile.ZipFile(path)
    names = set(zf.namelist())
    if _JSON_NAME not in names:
        zf.close()
        raise ValueError(f"{str(path)!r} is a zip file but has no {_JSON_NAME}: not a skcluster model file")
    manifest = json.loads(zf.read(_JSON_NAME))
    if manifest.get("format") != FORMAT_NAME:
        zf.close()
        raise ValueError(f"{str(path)!r}: unknown format {manifest.get('format')!r}")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        zf.close()
        raise ValueError(
            f"{str(path)!r} was written in format version {manifest['format_version']}; this "
            f"skcluster reads up to version {FORMAT_VERSION}: upgrade skcluster"
        )
    return zf, manifest


def read_manifest(path):
    """The JSON part of a saved model (versions, classes, parameters), without loading it."""
    zf, manifest = _open(path)
    zf.close()
    return manifest


def load(path, *, trusted=(), device=None):
    """Load an estimator written by :func:`save`, without running code from the file.

    Parameters
    ----------
    path : str or Path
    trusted : sequence of str, default=()
        Extra module prefixes (e.g. ``("mypackage.",)``) whose classes the
        file may name, on top of :data:`DEFAULT_TRUSTED`.
    device : str, default=None
        Device for the networks (e.g. ``"cpu"``, ``"cuda"``). ``None`` keeps
        the saved device, falling back to the CPU (with a warning) when a
        saved CUDA device is not available.

    Returns
    -------
    estimator
    """
    zf, manifest = _open(path)
    with zf:
        import safetensors.numpy

        raw = zf.read(_ARRAYS_NAME) if _ARRAYS_NAME in zf.namelist() else b""
        arrays = safetensors.numpy.load(raw) if raw else {}
        raw = zf.read(_TENSORS_NAME) if _TENSORS_NAME in zf.namelist() else b""
        tensors = {}
        if raw:
            import safetensors.torch

            tensors = safetensors.torch.load(raw)
    dec = _Decoder(arrays, tensors, (*DEFAULT_TRUSTED, *trusted), device)
    return dec.decode(manifest["root"])

