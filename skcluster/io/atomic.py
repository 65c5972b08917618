"""Outputs written atomically: a temporary name beside the output, renamed when complete.

A failed or interrupted run leaves nothing behind (:func:`atomic_output`,
:func:`staged_folder` with :func:`commit_files` or :func:`commit_folder`),
and the temporary files of a run killed with SIGKILL are removed by the next
(:func:`clean_stale`). A commit inside
:func:`~skcluster.io.interrupts.final_commit` is a command's last: after it
the callback given to :func:`~skcluster.io.interrupts.on_final_commit` runs.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .interrupts import after_commit, deferred_interrupts

__all__ = ["atomic_output", "clean_stale", "commit_files", "commit_folder", "new_files_removed_on_failure",
           "staged_folder"]


#: Temporary names beside an output: ``.<name>.skcluster-tmp-<pid>-<random>`` (being
#: written) and ``.<name>.skcluster-old-<pid>-<random>`` (the replaced file, kept until
#: the new one is in place). A later run removes those of processes that no longer exist.
_TMP_TAG = ".skcluster-tmp-"
_OLD_TAG = ".skcluster-old-"


def _tmp_prefix(path):
    return f".{Path(path).name}{_TMP_TAG}{os.getpid()}-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove(p):
    p = Path(p)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif os.path.lexists(p):
        try:
            p.unlink()
        except OSError:
            pass


def clean_stale(path):
    """Remove the temporary files a killed skcluster left beside ``path``.

    Temporary files and folders (``.<name>.skcluster-tmp-<pid>-*``) of a
    process that no longer runs are deleted (a run killed with SIGKILL
    cannot clean up after itself); a kept original
    (``.<name>.skcluster-old-<pid>-*``) is put back where ``path`` is
    missing, else deleted. ``path`` named ``*`` (``folder / "*"``) cleans
    those of every name in the folder. Returns the paths removed or restored.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    name = re.escape(path.name) if path.name != "*" else ".+?"
    pattern = re.compile(r"^\.(" + name + r")\.skcluster-(tmp|old)-(\d+)-")
    done = []
    try:
        entries = list(parent.iterdir()) if parent.is_dir() else []
    except OSError:
        return done
    for p in entries:
        m = pattern.match(p.name)
        if not m or int(m[3]) == os.getpid() or _alive(int(m[3])):
            continue
        target = parent / m[1]
        if m[2] == "old" and not os.path.lexists(target):
            os.replace(p, target)
        else:
            _remove(p)
        done.append(p)
    return done


def commit_files(moves):
    """Move staged files into place, all or none.

    Parameters
    ----------
    moves : list of (src, dst)
        ``src`` (a file or folder) replaces ``dst``; ``src=None`` removes
        ``dst``. Missing folders above ``dst`` are created.

    Notes
    -----
    Each replaced ``dst`` is first renamed to ``.<name>.skcluster-old-*``;
    if any step fails or a SIGINT arrives (held back meanwhile), every step
    is undone (new files go back to their ``src``, the originals return) and
    the error, or ``KeyboardInterrupt``, is raised. The kept originals are
    deleted once everything is in place.
    """
    done = []
    made = []
    with deferred_interrupts() as interrupted:
        try:
            for src, dst in moves:
                dst = Path(dst)
                missing = []
                d = dst.parent
                while not d.exists():
                    missing.append(d)
                    d = d.parent
                for d in reversed(missing):
                    d.mkdir()
                    made.append(d)
                bak = None
                if os.path.lexists(dst):
                    bak = dst.parent / f".{dst.name}{_OLD_TAG}{os.getpid()}-{secrets.token_hex(4)}"
                    os.replace(dst, bak)
                done.append((src, dst, bak))
                if src is not None:
                    os.replace(src, dst)
            if interrupted():
                raise KeyboardInterrupt
        except BaseException:
            for src, dst, bak in reversed(done):
                if src is not None and os.path.lexists(dst) and not os.path.lexists(src):
                    os.replace(dst, src)
                if bak is not None:
                    os.replace(bak, dst)
            for d in reversed(made):
                try:
                    d.rmdir()
                except OSError:
                    pass
            raise
        for _, _, bak in done:
            if bak is not None:
                _remove(bak)
        after_commit()


@contextmanager
def atomic_output(path, overwrite=False):
    """Yield a temporary path next to ``path``; move it into place on success.

    Nothing is left behind when the body raises (or is interrupted), and an
    existing file is only replaced when ``overwrite`` is true (a
    ``FileExistsError`` names it otherwise). The temporary file keeps the
    suffixes of ``path`` so that writers which infer the format from the
    name (astropy) still work. Temporary files that a killed earlier run
    left beside ``path`` are removed first.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} exists; pass overwrite=True (--overwrite on the "
            "command line) to replace it"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {str(parent)!r}")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"output folder is not writable: {str(parent)!r}")
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=suffix, dir=parent)
    os.close(fd)
    os.unlink(tmp)  # writers refuse to write over an existing file
    try:
        yield Path(tmp)
        commit_files([(tmp, path)])
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


@contextmanager
def staged_folder(out):
    """Yield an empty hidden folder beside ``out`` to write into; nothing reaches ``out`` until committed.

    The caller moves the files in with :func:`commit_files` (or
    :func:`commit_folder`); whatever is left in the stage is deleted on exit,
    also after an error or a Ctrl-C. Stages of killed earlier runs beside
    ``out`` are removed first.
    """
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    made = []
    d = parent
    while not d.exists():
        made.append(d)
        d = d.parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    stage = Path(tempfile.mkdtemp(prefix=_tmp_prefix(out), dir=parent))
    ok = False
    try:
        yield stage
        ok = True
    finally:
        _remove(stage)
        if not ok:  # folders made for the stage, unless the commit put something there
            for d in made:
                try:
                    d.rmdir()
                except OSError:
                    break


def commit_folder(stage, out, remove=()):
    """Move every file under ``stage`` to the same place under ``out`` (all or none).

    A missing ``out`` receives the whole stage in one rename; ``remove``
    lists files in ``out`` to delete in the same step.
    """
    stage, out = Path(stage), Path(out)
    if not os.path.lexists(out) and not remove:
        commit_files([(stage, out)])
        return
    moves = [(p, out / p.relative_to(stage)) for p in sorted(stage.rglob("*")) if not p.is_dir()]
    moves += [(None, Path(p)) for p in remove]
    commit_files(moves)


@contextmanager
def new_files_removed_on_failure(folder):
    """Remove what a failed or interrupted run created in ``folder`` (and the folder, if it made it).

    The benchmarks write their files only at the end, each atomically; this
    undoes a run stopped between two of them, and the folder made at its
    start.
    """
    folder = Path(folder)
    existed = folder.is_dir()
    if existed:
        clean_stale(folder / "*")  # temporary files of a killed earlier run
    before = {p.name for p in folder.iterdir()} if existed else set()
    try:
        yield
    except BaseException:
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name in before:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            if not existed and not any(folder.iterdir()):
                folder.rmdir()
        raise
