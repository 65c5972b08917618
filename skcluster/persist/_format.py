"""The model file's format: its name and version, member names, size caps, and the error of a refused file."""

from __future__ import annotations

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "LIMITS", "ModelFileError"]

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
