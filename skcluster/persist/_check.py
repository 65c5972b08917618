"""Loading, step two: check a parsed model.json tree against the allow-list, building nothing."""

from __future__ import annotations

import importlib
import inspect
import json
import keyword
import math
import re

import numpy as np

from ._format import (
    _ARRAYS_NAME,
    _SAFETENSORS_ITEMSIZE,
    _TENSORS_NAME,
    LIMITS,
    ModelFileError,
)

_NUMPY_DTYPE = re.compile(r"^[<>|=]?(?:b1|\?|[iu][1248]|f[248]|U\d{1,6})$")
_TORCH_DTYPES = {
    "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
}
_FLOAT_WORDS = {"nan", "inf", "-inf"}
_NUMBERS = {type(None), bool, int, float}  # plain data with nothing to check (no place name formatted for them)


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


#: What a model file may set of a network's data loaders (``iterator_train__*``, ``iterator_valid__*``):
#: no worker processes, multiprocessing context, sampler or batch sampler; at prediction the network
#: also forces these off (CNNRegressor.get_iterator).
_ITERATOR_OPTIONS = {"iterator_train": ("batch_size", "shuffle", "drop_last"), "iterator_valid": ("batch_size",)}
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
        self.referenced = set()  # arrays and tensors referenced so far (each at most once, as save writes)
        self.built_bytes = 0  # what the arrays, tensors and string arrays will occupy as built
        self.n_objects = 0

    # -- errors --------------------------------------------------------------
    def fail(self, where, what, name=None):
        raise ModelFileError(f"refusing to load {self.filename!r}: {where}: {what}", where=where, name=name)

    def refuse_name(self, where, path, why):
        if not isinstance(path, str):
            self.fail(where, f"a class or function path must be a string, got {type(path).__name__}")
        self.fail(where, f"{path!r} {why}. Only the classes listed in skcluster.persist.ALLOWED "
                         "(or given by exact name in trusted=[...]) may appear in a model file", name=path)

    def count_bytes(self, where, nbytes, what):
        self.built_bytes += nbytes
        if self.built_bytes > LIMITS["built_bytes"]:
            self.fail(where, f"{what} of {nbytes} bytes brings what the file builds to {self.built_bytes} "
                             f"bytes, over the cap of {LIMITS['built_bytes']} (skcluster.persist.LIMITS)")

    def reference(self, where, key, header, member):
        """One reference to an array or tensor of the data members: each at most once, its bytes counted."""
        if key not in header:
            self.fail(where, f"{'array' if member == _ARRAYS_NAME else 'tensor'} {key!r} is not in {member}")
        if (member, key) in self.referenced:
            self.fail(where, f"{key!r} of {member} is referenced a second time (save writes every array and "
                             "tensor once; a repeated reference would build it again)")
        self.referenced.add((member, key))
        info = header[key]
        if info is not None:  # (save checks its own tree without headers)
            dtype, shape = info
            self.count_bytes(where, math.prod(shape) * _SAFETENSORS_ITEMSIZE[dtype], f"{key!r} of {member}")

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
                if type(v) not in _NUMBERS:
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
            self.count_bytes(where, np.dtype(body).itemsize, "a numpy scalar")
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
            self.reference(where, body, self.arrays, _ARRAYS_NAME)
        elif tag == "__tensor__":
            self.reference(where, body, self.tensors, _TENSORS_NAME)
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
                held = len(body) if isinstance(body, list) else "?"
                self.fail(where, f"array of shape {shape} does not hold {held} values")
            itemsize = 8 if dt == "object" else np.dtype(dt).itemsize
            self.count_bytes(where, itemsize * len(body), f"an array of {len(body)} {dt!r} values")
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
                if type(v) not in _NUMBERS:
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
        self.n_objects += 1
        if self.n_objects > LIMITS["objects"]:
            self.fail(where, f"more than {LIMITS['objects']} objects (estimators and callbacks) in one file, "
                             "over the cap (skcluster.persist.LIMITS)", name=path)
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
                defined = inspect.getattr_static(cls, key, None)
                if not (defined is None or isinstance(defined, (bool, int, float, str, tuple))):
                    self.fail(here, f"{key!r} would hide a method, property or other attribute that {path!r} "
                                    "defines under that name", name=path)
                if key == "estimators_":
                    self.distinct(value, here, path)
                self.value(value, here)
        else:
            if not callable(getattr(cls, "_persist_restore", None)):
                self.fail(where, f"{path!r} cannot restore a saved state", name=path)
            self.value(node["persist"], f"{where}.persist", objects=False)

    def distinct(self, members, where, path):
        """An ensemble's members are distinct (one saved member listed many times would be built many times)."""
        if not isinstance(members, list):
            return
        seen = {}
        for i, member in enumerate(members):
            text = json.dumps(member, sort_keys=True)
            if text in seen:
                self.fail(_sub(where, i), f"member {i} repeats member {seen[text]}: an ensemble's members are "
                                          "distinct", name=path)
            seen[text] = i

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
        if key == "batch_size":
            self.batch_option(key, value, here, path)
            return True
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
        if prefix in _ITERATOR_OPTIONS and sub not in _ITERATOR_OPTIONS[prefix]:
            self.fail(here, f"{path!r}: a model file may set only {', '.join(_ITERATOR_OPTIONS[prefix])} of the "
                            f"{prefix} data loader, not {sub!r} (worker processes, samplers and the like are "
                            "the caller's to choose)", name=path)
        if sub not in allowed:
            self.fail(here, f"{prefix} {target.__qualname__} takes no argument {sub!r} (its arguments: "
                            f"{', '.join(sorted(allowed))})", name=path)
        if prefix in _ITERATOR_OPTIONS:
            self.batch_option(sub, value, here, path)
            return True
        self.value(value, here, objects=False)
        return True

    def batch_option(self, key, value, where, path):
        """A data loader's option from the file: a batch size, or (training only) a flag."""
        if key == "batch_size":
            if isinstance(value, bool) or not isinstance(value, int) or not (value >= 1 or value == -1):
                self.fail(where, f"{path!r}: batch_size must be a positive integer (or -1 for all), got "
                                 f"{_short(value)}", name=path)
        elif not isinstance(value, bool):
            self.fail(where, f"{path!r}: {key} must be true or false, got {_short(value)}", name=path)


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
