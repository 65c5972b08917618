"""Small helpers shared by the readers and writers."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._validation import rows_text

ARCSEC_PER_DEG = 3600.0


def existing_file(path, what="file"):
    """Return ``Path(path)``, raising ``FileNotFoundError`` that names it if absent."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: {str(p)!r}")
    return p


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


@contextmanager
def deferred_interrupts():
    """Hold SIGINT back while the body runs; yields a callable telling whether one came.

    Used around the renames that put outputs in place, so that a Ctrl-C
    cannot leave half of them: the caller checks and undoes its work. Outside
    the main thread (where signals cannot be handled) nothing is deferred.
    """
    pending = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    old = signal.getsignal(signal.SIGINT)
    if old in (signal.SIG_IGN, None):
        yield lambda: False
        return
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))

    def taken():
        if pending:
            pending.clear()
            return True
        return False

    try:
        yield taken
    finally:
        signal.signal(signal.SIGINT, old)
        if pending and callable(old):  # one the body did not take: deliver it now
            old(signal.SIGINT, None)


#: Called (no arguments) after a commit made inside :func:`final_commit` succeeded; the
#: command line registers one so that a Ctrl-C after its outputs are in place no longer
#: reports "nothing was written".
FINAL_COMMIT_HOOKS = []
_final = threading.local()


@contextmanager
def final_commit():
    """Mark the commits made in the body as a command's last step (see ``FINAL_COMMIT_HOOKS``)."""
    old = getattr(_final, "on", False)
    _final.on = True
    try:
        yield
    finally:
        _final.on = old


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
        if getattr(_final, "on", False):
            for hook in list(FINAL_COMMIT_HOOKS):
                hook()


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
def fits_errors(path, what):
    """Re-raise errors of reading a FITS file (truncated, not FITS at all) as DataFormatError naming it."""
    from ..exceptions import DataFormatError

    try:
        yield
    except (DataFormatError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, AttributeError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise DataFormatError(f"cannot read {str(path)!r} as {what}: {why}") from exc


def native(arr):
    """Return ``arr`` in native byte order (FITS data are big-endian)."""
    arr = np.asarray(arr)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def sin_offsets_arcsec(ra_deg, dec_deg, ra0_deg, dec0_deg):
    """Offsets of (ra, dec) from (ra0, dec0) in the SIN (orthographic) projection.

    Returns ``(x, y)`` in arcsec with ``x`` along the sky-pixel X axis of
    eROSITA products (increasing toward *decreasing* RA, i.e. west, as for a
    negative CDELT1/TCDLT) and ``y`` toward north. This is the projection of
    eSASS images and event X/Y (``RA---SIN``/``DEC--SIN``, Brunner et al.
    2022, A&A 661, A1), so offsets agree with image pixels.
    """
    ra = np.deg2rad(np.asarray(ra_deg, dtype=np.float64))
    dec = np.deg2rad(np.asarray(dec_deg, dtype=np.float64))
    ra0 = np.deg2rad(ra0_deg)
    dec0 = np.deg2rad(dec0_deg)
    dra = ra - ra0
    cos_dec = np.cos(dec)
    xi = cos_dec * np.sin(dra)  # toward east
    eta = np.sin(dec) * np.cos(dec0) - cos_dec * np.sin(dec0) * np.cos(dra)
    scale = np.rad2deg(1.0) * ARCSEC_PER_DEG
    return -xi * scale, eta * scale


def sin_offsets_to_radec(x_arcsec, y_arcsec, ra0_deg, dec0_deg):
    """Inverse of :func:`sin_offsets_arcsec`: sky-pixel offsets -> (ra, dec) deg."""
    scale = np.deg2rad(1.0) / ARCSEC_PER_DEG
    xi = -np.asarray(x_arcsec, dtype=np.float64) * scale
    eta = np.asarray(y_arcsec, dtype=np.float64) * scale
    dec0 = np.deg2rad(dec0_deg)
    rho2 = xi**2 + eta**2
    if np.any(rho2 > 1):
        raise ValueError("offsets beyond 90 degrees cannot be deprojected (SIN)")
    cosc = np.sqrt(1.0 - rho2)
    dec = np.arcsin(cosc * np.sin(dec0) + eta * np.cos(dec0))
    ra = np.deg2rad(ra0_deg) + np.arctan2(xi, cosc * np.cos(dec0) - eta * np.sin(dec0))
    return np.mod(np.rad2deg(ra), 360.0), np.rad2deg(dec)


def check_sky_position(ra, dec, where="position"):
    """Raise ``ValueError`` naming the rows whose ra/dec are NaN or out of range."""
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    bad_ra = ~np.isfinite(ra) | (ra < -360) | (ra > 360)
    bad_dec = ~np.isfinite(dec) | (dec < -90) | (dec > 90)
    for name, bad, vals, rng in (
        ("ra", bad_ra, ra, "[0, 360) deg"),
        ("dec", bad_dec, dec, "[-90, 90] deg"),
    ):
        if np.any(bad):
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{where}: {name} must be finite and within {rng}; got {rows_text(rows, vals.tolist())}"
            )
