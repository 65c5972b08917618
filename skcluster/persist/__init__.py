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

What a file can cost is bounded before it is built (:data:`LIMITS`): the
bytes every array, tensor and string array will occupy (each array and
tensor referenced once), the number of objects, a network's size (built
first on torch's ``meta`` device and compared with the saved weights), and
each step's parameters against its valid ranges and fitted state
(``_bounds``). Any other failure while checking or building is a
``ModelFileError`` too. Prediction settings are not the file's: a network
uses only the batch size of its prediction loader.

What the safe format stores follows the project convention that fitted
state is only arrays, numbers, strings, None and lists/tuples/dicts of these
(plus torch modules in networks). Anything else (a ``RandomState`` instance
as a parameter, a lambda) is refused at save time with the path of the
offending attribute.

The package's modules, one step each: :mod:`~skcluster.persist.registry`
(the allow-list :data:`ALLOWED`), ``_encode`` (object tree to JSON and
arrays), ``_archive`` (the zip container, read with caps), ``_check`` (the
tree against the allow-list), ``_build`` (the checked tree to objects) and
``_bounds`` (each built step's parameters against its fitted state);
this module holds the public functions.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json

from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._archive import _read_archive, _safetensors_header, _write_archive
from ._build import _Builder
from ._check import _Checker
from ._encode import _Encoder
from ._format import _ARRAYS_NAME, _TENSORS_NAME, FORMAT_NAME, FORMAT_VERSION, LIMITS, ModelFileError
from .registry import ALLOWED, Allowed, _registry  # noqa: F401 (Allowed: for extending ALLOWED)

__all__ = [
    "ALLOWED", "FORMAT_NAME", "FORMAT_VERSION", "LIMITS", "ModelFileError",
    "check_file", "load", "read_manifest", "save",
]


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
    return _write_archive(path, text, arrays, tensors, overwrite)


def read_manifest(path):
    """The JSON part of a saved model (versions, classes, parameters), without building anything.

    The archive caps of :data:`LIMITS` apply; the content is not checked
    against the registry (see :func:`check_file`).
    """
    return _read_archive(path)[0]


def _check(path, trusted):
    registry = _registry(trusted)
    manifest, raw_arrays, raw_tensors = _read_archive(path)
    filename = str(path)
    arrays = _safetensors_header(raw_arrays, _ARRAYS_NAME, LIMITS["arrays_bytes"], filename)
    tensors = _safetensors_header(raw_tensors, _TENSORS_NAME, LIMITS["tensors_bytes"], filename)
    checker = _Checker(registry, arrays, tensors, filename)
    try:
        checker.value(manifest["root"], "root")
    except ModelFileError:
        raise
    except (RecursionError, TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise ModelFileError(f"refusing to load {filename!r}: a malformed object tree ({type(exc).__name__}: "
                             f"{exc})", where="root") from exc
    if not (isinstance(manifest["root"], dict) and "__object__" in manifest["root"]):
        raise ModelFileError(f"refusing to load {filename!r}: root: a model file's root is an estimator, not "
                             f"{type(manifest['root']).__name__} data", where="root")
    return manifest, raw_arrays, raw_tensors, checker


def _version_tuple(text):
    """(major, minor, patch) of a version string ("2.13.0+cpu" -> (2, 13, 0)); None if unreadable."""
    parts = []
    for piece in str(text).split("+")[0].split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def _warn_if_newer(manifest, filename):
    """Warn when the file was written by a newer skcluster, torch, skorch, scikit-learn or numpy."""
    import sys
    import warnings

    from ..exceptions import SkclusterWarning

    saved = manifest.get("versions")
    if not isinstance(saved, dict):
        return
    here = {name: getattr(sys.modules.get(name), "__version__", None)  # the packages this process uses
            for name in ("skcluster", "sklearn", "skorch", "torch", "numpy")}
    newer = []
    for name, version in here.items():
        theirs, ours = _version_tuple(saved.get(name, "")), _version_tuple(version)
        if theirs is not None and ours is not None and theirs > ours:
            newer.append(f"{name} {str(saved[name])[:40]!r} (here {version})")
    if newer:
        warnings.warn(f"{filename!r} was written by a newer {', '.join(newer)}: it loaded, but an older version "
                      "may predict differently; upgrade to match", SkclusterWarning, stacklevel=3)


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
        raw_arrays = None  # (each blob is freed once parsed: the peak holds one blob twice, not all of them)
        tensors = {}
        if raw_tensors:
            import safetensors.torch

            tensors = safetensors.torch.load(raw_tensors)
        raw_tensors = None
    except Exception as exc:  # the header was checked; the data itself is malformed
        raise ModelFileError(f"refusing to load {filename!r}: cannot read its arrays: {exc}") from exc
    builder = _Builder(checker, arrays, tensors, device, filename)
    try:
        model = builder.build(manifest["root"])
    except ModelFileError:
        raise
    except Exception as exc:  # (RecursionError, MemoryError, ... outside any one object)
        raise ModelFileError(f"refusing to load {filename!r}: building it failed: {type(exc).__name__}: {exc}",
                             where="root") from exc
    _warn_if_newer(manifest, filename)
    return model
