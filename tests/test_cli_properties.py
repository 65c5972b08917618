"""Property-based: whatever catalogue and event list a user gives, ``skcluster predict`` never
fails with an internal error (exit 1) and never leaves a partial file.

Random catalogues (columns, names, types, NaN and out-of-range values,
sizes, CSV/ECSV/FITS, gzip, UTF-8 with and without a byte-order mark,
UTF-16, Latin-1, random bytes) and event tables (columns present or not,
types, NaN, sizes, other extensions, truncated files) go through
``skcluster.cli.main`` in-process with a real fitted mass pipeline (tiny,
fitted once). Allowed outcomes: 0 (and then a complete output with one row
per catalogue row), 2 (bad input) or 3 (output problem), each with nothing
else left in the folder.
"""

import gzip
import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.table import Table
from conftest import tiny_pipeline
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skcluster import cli
from skcluster.io import read_table

N_EXAMPLES = int(os.environ.get("SKCLUSTER_PROPERTY_EXAMPLES", "500"))


@pytest.fixture(scope="module")
def model():
    """A real fitted standard pipeline (3 bands, 8 x 8 pixels, one tiny CNN)."""
    from skcluster.datasets import make_survey

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    data = make_survey("efeds", n_clusters=30, random_state=0, verbose=False)
    pipe = tiny_pipeline(bands="ho3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(data.X, data.y)
    yield pipe
    torch.set_num_threads(old)


RA0, DEC0 = 150.0, 2.0

_names = st.sampled_from(["ra", "RA", "RA_CORR", "dec", "DEC", "DEJ2000", "z", "REDSHIFT", "BEST_Z", "exposure",
                          "name", "flux", "é", "Ω", " ", "log10_M500", "ra ", "ra"])


def _values(kind, n):
    floats = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=64),
        st.floats(RA0 - 0.05, RA0 + 0.05), st.floats(DEC0 - 0.05, DEC0 + 0.05), st.floats(0.01, 1.5),
    )
    return {
        "float": st.lists(floats, min_size=n, max_size=n),
        "int": st.lists(st.integers(-2**40, 2**40), min_size=n, max_size=n),
        "str": st.lists(st.text(max_size=6), min_size=n, max_size=n),
        "bool": st.lists(st.booleans(), min_size=n, max_size=n),
    }[kind]


@st.composite
def catalogues(draw):
    good = draw(st.booleans())  # half of them usable, so that many examples reach the prediction
    n = draw(st.integers(1 if good else 0, 4))
    columns = {}
    if good or draw(st.booleans()):
        columns["ra"] = draw(st.lists(st.floats(RA0 - 0.02, RA0 + 0.02), min_size=n, max_size=n))
        columns["dec"] = draw(st.lists(st.floats(DEC0 - 0.02, DEC0 + 0.02), min_size=n, max_size=n))
        columns["z"] = draw(st.lists(st.floats(0.02, 1.2), min_size=n, max_size=n))
    for _ in range(draw(st.integers(0, 1 if good else 3))):
        name = draw(st.sampled_from(["name", "flux", "é", "Ω"]) if good else _names)
        columns.setdefault(name, draw(_values(draw(st.sampled_from(["float", "int", "str", "bool"])), n)))
    if good:
        columns["exposure"] = draw(st.lists(st.floats(100.0, 5000.0), min_size=n, max_size=n))
    fmt = draw(st.sampled_from([".csv", ".ecsv", ".fits", ".csv.gz"] + ([] if good else [".fits.gz", ".txt"])))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"] + ([] if good else ["latin-1"])))
    garbage = None if good else draw(st.one_of(st.none(), st.binary(max_size=64)))
    return columns, fmt, encoding, garbage


@st.composite
def event_tables(draw):
    good = draw(st.booleans())
    n = draw(st.integers(0, 40))
    keep = draw(st.sets(st.sampled_from(["RA", "DEC", "PI", "PAT_TYP", "FLAG", "TM_NR", "X"]), min_size=0))
    keep |= {"RA", "DEC", "PI", "PAT_TYP", "FLAG"} if good else draw(
        st.sampled_from([set(), {"RA", "DEC", "PI"}, {"RA", "DEC", "PI", "PAT_TYP", "FLAG"}]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    cols = {
        "RA": RA0 + rng.normal(0, 0.01, n), "DEC": DEC0 + rng.normal(0, 0.01, n),
        "PI": rng.uniform(100, 9000, n).astype(np.float32), "PAT_TYP": rng.integers(0, 5, n).astype(np.int16),
        "FLAG": rng.integers(0, 2**31, n).astype(np.int64), "TM_NR": rng.integers(1, 8, n).astype(np.int16),
        "X": rng.normal(size=n),
    }
    if n and not good and draw(st.booleans()):  # NaN or nonsense in one column
        c = draw(st.sampled_from(["RA", "DEC", "PI"]))
        cols[c] = cols[c].astype(np.float64)
        cols[c][draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf, -1.0, 1e30]))
    if not good and draw(st.booleans()):  # a column of the wrong type
        c = draw(st.sampled_from(["RA", "PI", "PAT_TYP"]))
        cols[c] = np.array([str(v) for v in cols[c]])
    extname = "EVENTS" if good else draw(st.sampled_from(["EVENTS", "OTHER"]))
    damage = None if good else draw(st.sampled_from([None, "truncate", "bytes"]))
    return {c: cols[c] for c in sorted(keep)}, extname, damage


def _write_catalogue(folder, columns, fmt, encoding, garbage):
    path = folder / f"cat{fmt}"
    if garbage is not None:
        path.write_bytes(garbage)
        return path
    t = Table({k: np.asarray(v) for k, v in columns.items()}) if columns else Table()
    if fmt.startswith(".fits"):
        try:
            t.write(path, format="fits")
        except Exception:  # a table astropy cannot write as FITS: give the raw text instead
            path.write_bytes(b"SIMPLE  = T")
        return path
    buf = io.StringIO()
    try:
        t.write(buf, format="ascii.ecsv" if fmt == ".ecsv" else "ascii.csv")
        text = buf.getvalue()
    except Exception:
        text = ",".join(columns) + "\n"
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if fmt.endswith(".gz") else data)
    return path


def _write_events(folder, cols, extname, damage):
    path = folder / "events.fits"
    hdu = fits.BinTableHDU(Table(cols) if cols else Table({"DUMMY": np.zeros(1)}), name=extname)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    if damage == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: max(len(raw) // 2, 10)])
    elif damage == "bytes":
        path.write_bytes(b"\x00garbage" * 10)
    return path


@settings(max_examples=N_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(cat=catalogues(), events=event_tables(),
       expo=st.sampled_from([["--exposure-seconds", "1200"], ["--exposure-col", "exposure"]]),
       filters=st.sampled_from([[], ["--pattern-types", "all", "--flag-mask", "none"]]),
       out_name=st.sampled_from(["out.csv", "out.fits", "out.ecsv", "out.csv.gz"] * 3 + ["out.txt", "missing/out.csv"]),
       prefix=st.sampled_from([[], ["--prefix", "pred_"]]))
def test_predict_never_fails_internally_and_leaves_no_partial_file(model, monkeypatch, cat, events, expo,
                                                                   filters, out_name, prefix):
    monkeypatch.setattr(cli, "_load_model", lambda path: model)
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = Path(d)
        catalogue = _write_catalogue(folder, *cat)
        ev = _write_events(folder, *events)
        before = sorted(p.name for p in folder.iterdir())
        out = folder / out_name
        argv = ["predict", "--model", "model.skc", "--catalog", str(catalogue), "--events", str(ev),
                *expo, *filters, *prefix, "--out", str(out), "--quiet", "--batch-size", "2"]
        err = io.StringIO()
        try:
            import contextlib

            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        event(f"exit {code}")
        if code == cli.EXIT_INPUT:
            event(err.getvalue().split("error: ")[-1].replace(d, "")[:50])
        assert code in (cli.EXIT_OK, cli.EXIT_INPUT, cli.EXIT_OUTPUT), err.getvalue()
        after = sorted(p.name for p in folder.iterdir())
        if code == cli.EXIT_OK:
            assert after == sorted(before + [out.name])
            back = read_table(out)
            n_rows = len(read_table(catalogue))
            assert len(back) == n_rows
            mass = np.asarray(back[("pred_" if prefix else "") + "log10_M500"], float)
            # (a CSV reads its booleans back as the words True and False)
            ok = np.array([str(v) in ("True", "1") for v in back[("pred_" if prefix else "") + "in_domain"]])
            # a mass wherever the model has data to predict from; NaN (and a reason) elsewhere
            assert np.all(np.isfinite(mass[ok])) and np.all(np.isnan(mass[~ok]))
        else:
            assert after == before, err.getvalue()
            assert len(err.getvalue().strip().splitlines()) >= 1
