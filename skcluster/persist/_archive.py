"""The container: a zip of model.json and two safetensors blobs, written atomically and read with caps.

Loading, step one: every member is read with a cap on its size, the JSON
is checked for depth and size before it is parsed, and the safetensors
headers are checked against their data, before anything is interpreted.
"""

from __future__ import annotations

import collections
import json
import math
import struct
import zipfile
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_output
from ._format import (
    _ARRAYS_NAME,
    _JSON_NAME,
    _SAFETENSORS_ITEMSIZE,
    _TENSORS_NAME,
    FORMAT_NAME,
    FORMAT_VERSION,
    LIMITS,
    ModelFileError,
)


def _read_member(zf, info, cap, filename):
    """A zip member's bytes, refusing more than ``cap`` (the header and the stream both)."""
    if info.file_size > cap:
        raise ModelFileError(
            f"refusing to load {filename!r}: {info.filename} is {info.file_size} bytes uncompressed, over "
            f"the cap of {cap} (skcluster.persist.LIMITS)", where=info.filename)
    with zf.open(info) as f:
        data = f.read(cap + 1)
    if len(data) > cap or len(data) != info.file_size:
        raise ModelFileError(
            f"refusing to load {filename!r}: {info.filename} holds {'more than ' if len(data) > cap else ''}"
            f"{len(data)} bytes, but its zip header says {info.file_size}", where=info.filename)
    return data


_SCAN_CHUNK = 2**20  # bytes of model.json scanned at a time (bounds the scan's own memory)


def _json_shape_check(text, filename):
    """Refuse JSON nested or sized over the caps, before parsing it: one linear pass over its bytes.

    Strings are found without a regular expression: a quote ends a string
    unless an odd run of backslashes precedes it, the runs measured with a
    cumulative maximum (no backtracking). Only brackets and commas outside
    strings count towards the depth and the number of values. The bytes are
    scanned in chunks of ``_SCAN_CHUNK``, carrying the state across.
    """
    n_values, depth, max_depth, in_string, run = 1, 0, 0, 0, 0
    for start in range(0, len(text), _SCAN_CHUNK):
        codes = np.frombuffer(text, dtype=np.uint8, count=min(_SCAN_CHUNK, len(text) - start), offset=start)
        quote = codes == ord('"')
        backslash = codes == ord("\\")
        if run or backslash.any():
            idx = np.arange(codes.size, dtype=np.int64)
            # the index of the last byte that is not a backslash (a run carried in starts at -1 - run)
            last_plain = np.maximum.accumulate(np.where(backslash, -1 - run, idx))
            before = np.empty(codes.size, dtype=np.int64)  # backslashes just before each byte
            before[0] = run
            before[1:] = idx[:-1] - last_plain[:-1]
            run = int(idx[-1] - last_plain[-1])
            quote &= before % 2 == 0
            del idx, last_plain, before
        n_quotes = np.cumsum(quote) + in_string
        outside = ((n_quotes - quote) % 2 == 0) & ~quote  # neither in a string nor a quote
        in_string = int(n_quotes[-1]) % 2
        del n_quotes, quote
        opens = outside & ((codes == ord("[")) | (codes == ord("{")))
        closes = outside & ((codes == ord("]")) | (codes == ord("}")))
        n_values += int(opens.sum()) + int(np.count_nonzero(outside & (codes == ord(","))))
        levels = np.cumsum(opens.astype(np.int64) - closes) + depth
        max_depth = max(max_depth, int(levels.max()))
        depth = int(levels[-1])
    if in_string:
        raise ModelFileError(f"refusing to load {filename!r}: {_JSON_NAME} ends inside a string",
                             where=_JSON_NAME)
    if n_values > LIMITS["json_nodes"]:
        raise ModelFileError(
            f"refusing to load {filename!r}: {_JSON_NAME} holds about {n_values} values, over the cap of "
            f"{LIMITS['json_nodes']} (skcluster.persist.LIMITS)", where=_JSON_NAME)
    if max_depth > LIMITS["json_depth"]:
        raise ModelFileError(
            f"refusing to load {filename!r}: {_JSON_NAME} is nested {max_depth} deep, over the cap of "
            f"{LIMITS['json_depth']} (skcluster.persist.LIMITS)", where=_JSON_NAME)


def _no_constants(name):
    """json's hook for NaN, Infinity and -Infinity, which save never writes."""
    raise ValueError(f"the JSON constant {name} is not allowed (save writes non-finite numbers as "
                     "{\"__float__\": ...})")


def _parse_json(raw, filename):
    """model.json's bytes as a tree: UTF-8 only, checked for shape first, no NaN/Infinity constants."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"refusing to load {filename!r}: {_JSON_NAME} is not UTF-8 ({exc.reason} at "
                             f"byte {exc.start})", where=_JSON_NAME) from None
    _json_shape_check(raw, filename)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"refusing to load {filename!r}: {_JSON_NAME} is not valid JSON: {exc}",
                             where=_JSON_NAME) from None


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _safetensors_header(raw, member, cap, filename):
    """name -> (dtype, shape) from a safetensors blob, checked against its data."""
    if not raw:
        return {}

    def bad(why):
        return ModelFileError(f"refusing to load {filename!r}: {member}: {why}", where=member)

    if len(raw) < 8:
        raise bad("too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(LIMITS["safetensors_header_bytes"], len(raw) - 8):
        raise bad(f"its header claims {n} bytes (file {len(raw)} bytes, cap "
                  f"{LIMITS['safetensors_header_bytes']})")
    try:
        header = json.loads(raw[8:8 + n], object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise bad(f"malformed header ({exc})") from None
    if not isinstance(header, dict):
        raise bad("malformed header")
    header.pop("__metadata__", None)
    if len(header) > LIMITS["safetensors_entries"]:
        raise bad(f"{len(header)} entries, over the cap of {LIMITS['safetensors_entries']}")
    data_len = len(raw) - 8 - n
    spans = []
    out = {}
    for name, info in header.items():
        if not (isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"}):
            raise bad(f"malformed entry {name!r}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _SAFETENSORS_ITEMSIZE:
            raise bad(f"entry {name!r} has dtype {dtype!r}, which is not allowed")
        if not (isinstance(shape, list) and len(shape) <= 32
                and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
            raise bad(f"entry {name!r} has a malformed shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise bad(f"entry {name!r} has data offsets {offsets!r} outside its {data_len} bytes of data")
        size = math.prod(shape) * _SAFETENSORS_ITEMSIZE[dtype]
        if size != offsets[1] - offsets[0] or size > cap:
            raise bad(f"entry {name!r} declares shape {shape} of {dtype} ({size} bytes) but "
                      f"{offsets[1] - offsets[0]} bytes of data")
        spans.append(tuple(offsets))
        out[name] = (dtype, tuple(shape))
    spans.sort()
    end = 0
    for a, b in spans:
        if a != end:
            raise bad("its entries overlap or leave gaps in the data")
        end = b
    if end != data_len:
        raise bad(f"its entries cover {end} of its {data_len} bytes of data")
    return out


_MEMBERS = {_JSON_NAME: "json_bytes", _ARRAYS_NAME: "arrays_bytes", _TENSORS_NAME: "tensors_bytes"}


def _declared_entries(path):
    """The entry count of the zip's end-of-directory record (read before the directory), or None."""
    end_record = getattr(zipfile, "_EndRecData", None)  # (the reader zipfile itself uses)
    if end_record is None:  # pragma: no cover - a Python without it: the member check below still holds
        return None
    try:
        with open(path, "rb") as f:
            record = end_record(f)
    except (OSError, ValueError, struct.error):
        return None
    return int(record[4]) if record else None  # (zipfile._ECD_ENTRIES_TOTAL)


def _check_members(names, filename):
    """The archive's member names: model.json, at most once each of the three members (linear time)."""
    counts = collections.Counter(names)
    if _JSON_NAME not in counts:
        raise ModelFileError(f"{filename!r} is a zip file but has no {_JSON_NAME}: not a skcluster model file")
    extra = [n for n in counts if n not in _MEMBERS]
    twice = [n for n, c in counts.items() if c > 1]
    if extra or twice:
        shown = extra or twice
        listed = ", ".join(repr(n[:80]) for n in shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        raise ModelFileError(
            f"refusing to load {filename!r}: unexpected archive members{'' if extra else ' (listed twice or more)'}"
            f" among its {len(names)} entries: {listed} (a model file holds {', '.join(_MEMBERS)}, each once)",
            where=shown[0][:80])


def _read_archive(path):
    """(manifest, raw arrays, raw tensors) of a model file, with every cap applied."""
    path = Path(path)
    filename = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {filename!r}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{filename!r} is not a skcluster model file (expected a zip written by "
            "skcluster.persist.save; pickles are read with joblib.load)")
    n_entries = _declared_entries(path)
    if n_entries is not None and n_entries > len(_MEMBERS):
        raise ModelFileError(f"refusing to load {filename!r}: unexpected archive members: its zip directory "
                             f"declares {n_entries} entries; a "
                             f"model file holds at most {len(_MEMBERS)} ({', '.join(_MEMBERS)})", where="zip")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFileError(f"{filename!r} is not a readable zip file: {exc}") from None
    with zf:
        infos = zf.infolist()
        _check_members([i.filename for i in infos], filename)
        raw = {}
        for info in infos:
            if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ModelFileError(f"refusing to load {filename!r}: {info.filename} is encrypted or "
                                     "compressed with an unsupported method", where=info.filename)
            try:
                raw[info.filename] = _read_member(zf, info, LIMITS[_MEMBERS[info.filename]], filename)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
                raise ModelFileError(f"refusing to load {filename!r}: {info.filename} cannot be read: "
                                     f"{exc}", where=info.filename) from None
    manifest = _parse_json(raw[_JSON_NAME], filename)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelFileError(f"{filename!r}: unknown format {got!r} (not a skcluster model file)")
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{filename!r}: malformed format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{filename!r} was written in format version {version}; this skcluster reads up to version "
            f"{FORMAT_VERSION}: upgrade skcluster")
    if "root" not in manifest:
        raise ModelFileError(f"{filename!r}: {_JSON_NAME} has no 'root'")
    return manifest, raw.get(_ARRAYS_NAME, b""), raw.get(_TENSORS_NAME, b"")


def _write_archive(path, text, arrays, tensors, overwrite):
    """Write the zip (JSON deflated, safetensors stored) atomically: all of it, or nothing."""
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(_JSON_NAME, text, compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr(_ARRAYS_NAME, arrays, compress_type=zipfile.ZIP_STORED)
            zf.writestr(_TENSORS_NAME, tensors, compress_type=zipfile.ZIP_STORED)
    return path
