"""Writing a mock survey as eSASS-format files, and reading it back.

:func:`write_survey` writes, into one folder,

* ``catalog.fits``: the catalogue (:func:`~skcluster.datasets.catalog_columns`)
  plus ``events_file``, the name of each cluster's event file;
* ``events/cluster_NNNNN.fits``: one eSASS ``EVENTS`` file per cluster
  (RA/DEC, sky X/Y in 0.05-arcsec pixels with the RA---SIN/DEC--SIN
  pixel-list WCS about the cluster, PI in eV; written with
  :func:`skcluster.io.write_events`);
* ``point_sources.fits``: the point sources the simulation detected in each
  cluster's box (``CLUSTER`` row, ``RA``, ``DEC``, ``ML_CTS_1``,
  ``ML_RATE_1``, ``DET_LIKE_0`` as in the eROSITA main catalogues, and
  ``BKG_ARCSEC2``, the local level they were detected against);
* ``survey.json``: the parameters, the preset and the survey statistics.

:func:`read_survey` reads such a folder through the real-data path
(:func:`skcluster.io.read_catalog`, :func:`skcluster.io.read_events`,
:func:`skcluster.io.cutout_events`), so that the whole reading chain can be
tested end to end on data with a known truth. eSASS event files have no
column for a photon's origin: events read back have origin 255
(unknown), like real data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from astropy.table import Table
from sklearn.utils import Bunch

from ..io import (
    POINT_SOURCE_DTYPE,
    cutout_events,
    offsets_to_events_table,
    read_catalog,
    read_events,
    write_events,
)
from ..io.catalog import read_table, write_table
from ..io.sky import sin_offsets_arcsec, sin_offsets_to_radec
from ..sample import ClusterSample
from .parameters import resolve_parameters

__all__ = ["write_survey", "read_survey"]

_CATALOG = "catalog.fits"
_META = "survey.json"
_EVENTS_DIR = "events"
_POINT_SOURCES = "point_sources.fits"


def write_survey(bunch, folder, overwrite=False):
    """Write a survey from :func:`make_survey` as eSASS-format files.

    Parameters
    ----------
    bunch : sklearn.utils.Bunch
        The result of :func:`~skcluster.datasets.make_survey` (``X``,
        ``catalog``, ``params``).
    folder : str or path-like
        Output folder; created if missing (its parent must exist).
    overwrite : bool, default=False
        Replace files of an earlier survey in ``folder``. Without it a
        ``FileExistsError`` names the first file that exists, and nothing
        is written.

    Returns
    -------
    pathlib.Path
        The catalogue file.
    """
    for key in ("X", "catalog", "params"):
        if key not in bunch:
            raise ValueError(
                f"write_survey needs the Bunch returned by make_survey (with X, catalog and "
                f"params); {key!r} is missing")
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise FileNotFoundError(f"parent folder does not exist: {str(folder.parent)!r}")
    X, cat = bunch.X, bunch.catalog
    X.require("events", "ra", "dec", step="write_survey")
    n = len(X)
    if len(cat) != n:
        raise ValueError(f"catalog has {len(cat)} rows but X has {n}")
    names = [f"cluster_{i:05d}.fits" for i in range(n)]
    targets = [folder / _CATALOG, folder / _META, folder / _POINT_SOURCES] + [
        folder / _EVENTS_DIR / nm for nm in names]
    if not overwrite:
        existing = [t for t in targets if t.exists()]
        if existing:
            raise FileExistsError(
                f"{str(existing[0])!r} exists ({len(existing)} file(s) of an earlier survey); pass "
                "overwrite=True to replace them")
    (folder / _EVENTS_DIR).mkdir(parents=True, exist_ok=True)
    ra = np.asarray(X["ra"], dtype=np.float64)
    dec = np.asarray(X["dec"], dtype=np.float64)
    exposure = np.asarray(X["exposure"], dtype=np.float64) if "exposure" in X else np.full(n, np.nan)
    for i in range(n):
        table = offsets_to_events_table(X["events"][i], ra[i], dec[i])
        header = {"OBJECT": (f"mock cluster {i}", "skcluster mock survey"),
                  "EXPOSURE": (float(exposure[i]), "[s] vignetted exposure at 1 keV (mock)"),
                  "RA_OBJ": (float(ra[i]), "[deg]"), "DEC_OBJ": (float(dec[i]), "[deg]")}
        write_events(folder / _EVENTS_DIR / names[i], table, ra[i], dec[i], header=header,
                     overwrite=overwrite)
    out = cat.copy(copy_data=True)
    out.meta = {"SURVEY": str(cat.meta.get("survey", "")), "AREA": float(cat.meta.get("area_deg2", np.nan)),
                "NHALOS": int(cat.meta.get("n_halos", -1)), "CREATOR": "skcluster.datasets.write_survey"}
    out["events_file"] = [f"{_EVENTS_DIR}/{nm}" for nm in names]
    write_table(out, folder / _CATALOG, overwrite=overwrite)
    if "point_sources" in X:
        write_table(_point_source_table(X["point_sources"], ra, dec, exposure), folder / _POINT_SOURCES,
                    overwrite=overwrite)
    meta = {
        "survey": X.meta.get("survey"), "size_arcmin": X.meta.get("size_arcmin"),
        "energy_range_keV": list(X.meta.get("energy_range_keV", ())),
        "params": bunch.params.to_dict(),
        **{k: bunch.get(k) for k in ("area_deg2", "n_halos", "n_candidates", "preselect_miss_bound")},
        "entropy": str(bunch.get("entropy")),
        "writer": "skcluster.datasets.write_survey",
    }
    if X.meta.get("physics") is not None:   # the physics the clusters were simulated with (read_survey restores it)
        meta["physics"] = X.meta["physics"]
    tmp = folder / (_META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(folder / _META)
    return folder / _CATALOG


def _point_source_table(sources, ra, dec, exposure):
    """One table of every cluster's detected point sources (sky positions)."""
    cols = {k: [] for k in ("CLUSTER", "RA", "DEC", "ML_CTS_1", "ML_RATE_1", "DET_LIKE_0", "BKG_ARCSEC2")}
    for i, src in enumerate(sources):
        if src is None or len(src) == 0:
            continue
        r, d = sin_offsets_to_radec(src["x_arcsec"], src["y_arcsec"], ra[i], dec[i])
        cols["CLUSTER"].append(np.full(len(src), i, dtype=np.int64))
        cols["RA"].append(r)
        cols["DEC"].append(d)
        cols["ML_CTS_1"].append(src["counts"].astype(np.float64))
        cols["ML_RATE_1"].append(src["counts"] / exposure[i] if exposure[i] > 0 else np.full(len(src), np.nan))
        cols["DET_LIKE_0"].append(src["det_like"].astype(np.float64))
        cols["BKG_ARCSEC2"].append(src["bkg_per_arcsec2"].astype(np.float64))
    table = Table({k: (np.concatenate(v) if v else np.zeros(0, np.int64 if k == "CLUSTER" else np.float64))
                   for k, v in cols.items()})
    table["RA"].unit = table["DEC"].unit = "deg"
    table["ML_RATE_1"].unit = "ct / s"
    table.meta["BAND"] = ("0.2-2.3 keV", "detection band")
    return table


def _read_point_sources(path, ra, dec):
    """Per-cluster offsets of the sources of :func:`_point_source_table`."""
    table = read_table(path)
    cluster = np.asarray(table["CLUSTER"], dtype=np.int64)
    out = np.empty(len(ra), dtype=object)
    for i in range(len(ra)):
        rows = np.flatnonzero(cluster == i)
        arr = np.zeros(rows.size, POINT_SOURCE_DTYPE)
        if rows.size:
            x, y = sin_offsets_arcsec(np.asarray(table["RA"])[rows], np.asarray(table["DEC"])[rows], ra[i], dec[i])
            arr["x_arcsec"], arr["y_arcsec"] = x, y
            arr["counts"] = np.asarray(table["ML_CTS_1"])[rows]
            arr["det_like"] = np.asarray(table["DET_LIKE_0"])[rows]
            arr["bkg_per_arcsec2"] = np.asarray(table["BKG_ARCSEC2"])[rows]
        out[i] = arr
    return out


def read_survey(folder, energy_range_keV=None):
    """Read a folder written by :func:`write_survey` through the real-data path.

    Parameters
    ----------
    folder : str or path-like
    energy_range_keV : (float, float), default=None
        Keep only events in this range (all by default).

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (ClusterSample with ``events`` cut out of each file around the
        catalogue position, ``z``, ``exposure``, ``background`` and ``nh``
        (where the catalogue has them), ``ra``, ``dec``, and
        ``point_sources`` where the folder has them), ``y``
        (log10 M500c / Msun), ``catalog`` and ``params``.
    """
    folder = Path(folder)
    meta_path = folder / _META
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{str(meta_path)!r} not found: {str(folder)!r} is not a folder written by write_survey")
    meta = json.loads(meta_path.read_text())
    # every parameter is stored; one newer than the folder takes its v1 value (the mock the folder was made with)
    params = resolve_parameters(sky="v1", **{k: (tuple(v) if isinstance(v, list) else v)
                                             for k, v in meta["params"].items()})
    cat = read_table(folder / _CATALOG)
    depth = tuple(c for c in ("background", "nh") if c in cat.colnames)  # older folders lack them
    sample = read_catalog(cat, columns=("exposure",) + depth)
    size = float(meta["size_arcmin"])
    events = np.empty(len(cat), dtype=object)
    for i, name in enumerate(cat["events_file"]):
        name = str(name).strip()
        ev = read_events(folder / name, energy_range_keV=energy_range_keV)
        events[i] = cutout_events(ev, [sample["ra"][i]], [sample["dec"][i]], size)[0]
    extra = {}
    if (folder / _POINT_SOURCES).is_file():
        extra["point_sources"] = _read_point_sources(folder / _POINT_SOURCES, sample["ra"], sample["dec"])
    X = ClusterSample(
        meta={"survey": meta.get("survey"), "size_arcmin": size,
              "energy_range_keV": tuple(energy_range_keV or meta["energy_range_keV"]),
              **({"physics": meta["physics"]} if meta.get("physics") is not None else {})},
        events=events, z=sample["z"], exposure=np.asarray(sample["exposure"], dtype=np.float64),
        ra=sample["ra"], dec=sample["dec"],
        **{c: np.asarray(sample[c], dtype=np.float64) for c in depth}, **extra)
    return Bunch(X=X, y=np.asarray(cat["log10_M500"], dtype=np.float64), catalog=cat, params=params,
                 DESCR=f"Mock survey read back from {str(folder)!r}")


def write_survey_atomically(data, out):
    """write_survey into a hidden folder beside ``out``, then move the files in, all or none.

    A failure or a Ctrl-C while writing leaves ``out`` as it was (the hidden
    folder ``.<out>.skcluster-tmp-<pid>-*`` is removed; one left by a run
    killed with SIGKILL is removed by the next run). An earlier survey's
    files in ``out`` (only reached with --overwrite) are replaced, and its
    event files that the new survey does not have are removed, so the
    folder holds one consistent survey.
    """
    from ..io.atomic import commit_folder, staged_folder
    from ..io.interrupts import final_commit

    out = Path(out)
    with staged_folder(out) as stage:
        new = stage / "survey"
        write_survey(data, new)
        remove = []
        if (out / "events").is_dir():
            names = {p.name for p in (new / "events").iterdir()}
            remove = [p for p in (out / "events").glob("cluster_*.fits") if p.name not in names]
        with final_commit():
            commit_folder(new, out, remove=remove)
