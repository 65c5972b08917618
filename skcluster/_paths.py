"""Outputs: the check, before any work, that results can be written.

:func:`check_output_file` is the pre-check of the commands that write one
file (a model, a catalogue); :func:`check_output_folder` the one pre-check of the commands and
functions that write a folder of results (the demo, the accuracy benchmark,
the speed benchmark): nothing a user wrote is replaced without
``overwrite``, and a folder that cannot be written fails at once rather than
after the computation.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_output_file", "check_output_folder"]


def _nearest_existing(path):
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_folder(out, names, overwrite=False):
    """Refuse (before any work) an output folder that would lose files or cannot be written.

    Parameters
    ----------
    out : path-like
        The folder (created later if missing).
    names : iterable of str
        Files that will be written into it.
    overwrite : bool, default=False

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    FileExistsError
        ``out`` is a file, or one of ``names`` exists there and ``overwrite``
        is false (the message names them).
    PermissionError
        ``out`` (or the folder it would be created in) is not writable.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{str(out)!r} exists and is not a folder")
    if out.is_dir() and not overwrite:
        existing = [n for n in names if (out / n).exists()]
        if existing:
            raise FileExistsError(
                f"{str(out)!r} already holds {', '.join(existing)}; pass --overwrite "
                "(overwrite=True) to replace them, or choose another folder")
    base = _nearest_existing(out)
    if not base.is_dir():
        raise FileExistsError(f"cannot create the folder {str(out)!r}: {str(base)!r} is a file")
    if not os.access(base, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder is not writable: {str(base)!r}")
    return out


def check_output_file(path, overwrite=False):
    """Refuse, before any work, an output file that exists or cannot be written.

    Temporary files that a killed earlier run left beside it are removed.

    Raises
    ------
    IsADirectoryError
        ``path`` is a folder.
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    FileNotFoundError, PermissionError
        Its folder does not exist, or cannot be written.
    """
    from .io.atomic import clean_stale

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output {str(path)!r} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"output {str(path)!r} exists; pass --overwrite (overwrite=True) to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {str(parent)!r}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder is not writable: {str(parent)!r}")
    clean_stale(path)
    return path
