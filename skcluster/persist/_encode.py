"""Saving: an object tree to JSON-able data plus the arrays and tensors it holds."""

from __future__ import annotations

import importlib
import inspect
import math
import types

import numpy as np


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
