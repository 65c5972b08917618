"""The model file's format: its name and version, member names, size caps, and the error of a refused file."""

from __future__ import annotations

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "LIMITS", "ModelFileError"]

FORMAT_NAME = "skcluster-model"
#: Version 1 files (every file written so far) load when they name only allowed classes.
FORMAT_VERSION = 1

_JSON_NAME = "model.json"
_ARRAYS_NAME = "arrays.safetensors"
_TENSORS_NAME = "tensors.safetensors"
#: Bytes per element of the safetensors dtypes a model file may hold.
_SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2, "U32": 4, "I32": 4,
    "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}

#: Caps applied before anything is built (bytes, counts), each also named in
#: the refusal it causes. A real model of the seed study's size (30 members,
#: 60 epochs) is far below each; the model-files page of the user guide says
#: what a file at the caps costs to load.
LIMITS = {
    # the archive, read before anything is parsed
    "json_bytes": 64 * 2**20,  # model.json, uncompressed
    "json_depth": 64,  # nesting of lists/dicts in model.json (real models: about 25)
    "json_nodes": 4_000_000,  # values in model.json
    "arrays_bytes": 1 * 2**30,  # arrays.safetensors, uncompressed
    "tensors_bytes": 1 * 2**30,  # tensors.safetensors, uncompressed
    "safetensors_header_bytes": 16 * 2**20,
    "safetensors_entries": 1_000_000,
    "string_chars": 1_000_000,  # one string value
    # the object tree, checked before it is built
    "built_bytes": 2 * 2**30,  # arrays, tensors and string arrays as built, each reference counted
    "objects": 1_000,  # estimators and callbacks in one file (real models: about 40)
    "network_layers": 64,  # entries of a network's module__* sequences (channels, dense, ...; real: 2-5)
    "image_values": 2**22,  # bands x H x W of one cluster's image in any step or network (real: at most 10 x 300 x 300)
    "max_iter": 10_000,  # iterations of a step's solver per cluster (ScalarObservables; default 50)
    "physics_source_chars": 2_000,  # the source text of one parameter of a recorded physics prior (real: < 120)
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

    The message is one line, its control characters escaped (it may quote
    the file) and at most 2000 characters long.
    """

    def __init__(self, message, where=None, name=None):
        from .._text import printable

        super().__init__(printable(message))  # (it may quote the file: no raw control characters)
        self.where = where
        self.name = name
