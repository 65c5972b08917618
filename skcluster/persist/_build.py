"""Loading, step three: build the checked tree (only the classes the checker resolved)."""

from __future__ import annotations

import inspect

import numpy as np

from . import _bounds
from ._check import _sub
from ._format import ModelFileError

_SCALARS = {type(None), bool, int, float, str}  # (built as they are: no place name formatted for them)


class _Builder:
    """Build the checked tree (only classes the checker resolved)."""

    def __init__(self, checker, arrays, tensors, device, filename):
        self.classes = checker.classes
        self.registry = checker.registry
        self.arrays = arrays
        self.tensors = tensors
        self.device = device
        self.filename = filename

    def build(self, node, where="root"):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [v if type(v) in _SCALARS else self.build(v, _sub(where, i)) for i, v in enumerate(node)]
        if "__float__" in node:
            return float(node["__float__"])
        if "__npscalar__" in node:
            return np.array(self.build(node["value"]), dtype=np.dtype(node["__npscalar__"]))[()]
        if "__ndarray__" in node:  # (referenced once, as checked: the parsed array itself, not a copy)
            arr = self.arrays.pop(node["__ndarray__"])
            return arr if arr.flags.writeable and arr.flags.aligned else np.array(arr, copy=True)
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
            return {k: v if type(v) in _SCALARS else self.build(v, _sub(where, k)) for k, v in node["__dict__"].items()}
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
            try:
                params = self.build(node["params"], f"{where}.params")
                if "persist" in node:
                    restore = cls._persist_restore
                    extra = {"check": _bounds.network} if "check" in inspect.signature(restore).parameters else {}
                    return restore(params, self.build(node["persist"]), device=self.device, **extra)
                obj = cls(**params)
                obj.__dict__.update(self.build(node["state"], f"{where}.state"))
                _bounds.images(obj)
                check = self.registry[path].check
                if check is not None:
                    check(obj)
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
