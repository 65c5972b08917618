"""Why does the mock detect more clusters per deg^2 than eFEDS? Surface densities under single changes.

The default mock selects 7.1 clusters per deg^2 at eFEDS depth against the
542 eFEDS candidates in ~140 deg^2 (3.9; Liu et al. 2022, A&A 661, A2).
This script simulates a fixed sky area for a few variants, each changing
one thing, and reports the surface density after the cuts, the density
above fixed source counts (ML_CTS, 0.2-2.3 keV) and the count percentiles
against the published numbers:

* eFEDS (Liu et al. 2022; counts measured from the public catalogue):
  542 candidates in 140 deg^2, 47 / 105 / 530 source counts at the 5th /
  50th / 95th percentile, so 5% of 542 above 530 counts (0.19 per deg^2)
  and half above 105. About 1/5 of the candidates are contaminants (434
  optically confirmed clusters, Chiu et al. 2022, A&A 661, A11), while 346
  further clusters and groups at 0.1 < z < 1.3 were detected but
  classified as point sources (Bulbul et al. 2022, A&A 661, A10).
* eRASS1 (independent of eFEDS's cosmic variance, 30x the area): the
  cosmology sample of Ghirardini et al. 2024 (A&A 689, A298), 5259
  clusters with EXT_LIKE > 6 at 0.1 < z < 0.8 in 12,791 deg^2 (0.41 per
  deg^2). The mock's ``erass1`` preset has the survey's median depth
  only; the real footprint includes deeper regions toward the south
  ecliptic pole, so the real density at median depth is somewhat lower.

Variants (one change each against the default eFEDS preset):

* ``background_measured``: the diffuse background raised to the measured
  per-pixel level (``background_scale`` = 0.029 / the mock's median);
* ``lx_norm_-0.1dex``: every cluster 0.1 dex fainter at fixed mass;
* ``det_like_scale_0.7``: detection and extent likelihood gains x 0.7 (a
  less efficient pipeline than the ideal fixed-position fit);
* ``ext_like_min_12``: a stricter extent cut, standing in for eSASS
  classifying compact clusters as point sources;
* combinations of the fainter L_X-M and the less efficient detection, and
  the fainter L_X-M at eRASS1 depth;
* ``lx_chiu22``: the L_X-M-z relation Chiu et al. 2022 fitted with the
  eFEDS selection modelled (slope 1.44, (1+z)^-0.51 beyond E(z)^2) in
  place of the eFEDS fit the mock uses; alone, with the less efficient
  detection, and at eRASS1 depth.

Each row also gives the Eddington shift: how far above the mock's input
L_X-M a relation fitted against masses inferred from the luminosity
(posterior means under the mock's mass function) sits, for two values
of the L_X scatter (:func:`eddington_shift_dex`).

Usage::

    python benchmarks/surface_density.py --n-jobs 1 --area-efeds 560 --area-erass1 6000

Writes ``<out>/surface_density.json`` and ``.md`` (default out:
benchmarks/results/surface_density).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from skcluster.datasets import make_survey
from skcluster.datasets.parameters import resolve_parameters
from skcluster.datasets.population import halo_density_grid
from skcluster.datasets.scaling import mean_log_lx
from skcluster.datasets.validation import EFEDS_REFERENCE
from skcluster.physics.relations import LM_RELATION_EFEDS, chiu22_lx_parameters

#: The mock's L_X-M normalisation (log10 erg/s at the pivot mass, eFEDS fit; skcluster.physics.relations).
LM_NORM = LM_RELATION_EFEDS[0]
#: ln-scatters of L_X at fixed mass for the Eddington shift: the mock's default and the top of the 0.25-0.40
#: range (the eFEDS fit's 0.185 dex rms understates the scatter, its masses coming from count rates).
EDDINGTON_SIGMAS = (0.30, 0.40)
#: The selection-modelled L_X-M-z relation of Chiu et al. 2022 as mock parameters (the mock's cosmology).
_EFEDS = resolve_parameters("efeds")
CHIU22 = chiu22_lx_parameters(_EFEDS.H0, _EFEDS.Om0)

#: eRASS1 cosmology sample (Ghirardini et al. 2024, A&A 689, A298): clusters, area deg^2, z range.
ERASS1_COSMOLOGY = {"n": 5259, "area_deg2": 12791.0, "z_range": (0.1, 0.8)}
#: Mock median background per 4" pixel (0.2-2.3 keV) of the default preset (validate_mock.py).
MOCK_BKG_PER_PIXEL = 0.0213


#: eFEDS source-count thresholds (its 5th / 50th / 95th percentiles) and the fraction of candidates above each.
EFEDS_ABOVE = {EFEDS_REFERENCE["counts_p05"]: 0.95, EFEDS_REFERENCE["counts_p50"]: 0.5,
               EFEDS_REFERENCE["counts_p95"]: 0.05}


VARIANTS = {
    "efeds_default": ("efeds", {}),
    "background_measured": ("efeds", {"background_scale": EFEDS_REFERENCE["bkg_per_pixel"] / MOCK_BKG_PER_PIXEL}),
    "lx_norm_-0.1dex": ("efeds", {"lx_log10_norm": LM_NORM - 0.1}),
    "det_like_scale_0.7": ("efeds", {"det_like_scale": 0.7}),
    "ext_like_min_12": ("efeds", {"ext_like_min": 12.0}),
    "erass1_default": ("erass1", {}),
    "lx_norm_-0.1dex+det_like_scale_0.7": ("efeds", {"lx_log10_norm": LM_NORM - 0.1, "det_like_scale": 0.7}),
    "lx_norm_-0.15dex+det_like_scale_0.7": ("efeds", {"lx_log10_norm": LM_NORM - 0.15, "det_like_scale": 0.7}),
    "erass1_lx_norm_-0.1dex": ("erass1", {"lx_log10_norm": LM_NORM - 0.1}),
    "erass1_lx_norm_-0.15dex": ("erass1", {"lx_log10_norm": LM_NORM - 0.15}),
    "lx_chiu22": ("efeds", CHIU22),
    "lx_chiu22+det_like_scale_0.7": ("efeds", {**CHIU22, "det_like_scale": 0.7}),
    "erass1_lx_chiu22": ("erass1", CHIU22),
}


def eddington_shift_dex(bunch, sigma_ln_lx):
    """How far above the mock's input L_X-M a fit against count-rate-inferred masses would sit, dex.

    Each selected cluster's mass is inferred as a survey would infer it from its luminosity: the posterior
    mean of log10 M500 given L_X and z under the mock's own halo mass function (Tinker et al. 2008) and a
    log-normal L_X-M of ln-scatter ``sigma_ln_lx``. The median of log10 L_X minus the input relation at that
    inferred mass is the offset an L_X-M fit to such masses carries (Eddington bias: the inferred masses are
    pulled toward the more numerous low-mass halos).
    """
    p = bunch.params
    cat = bunch.catalog
    z = np.asarray(cat["z"], dtype=float)
    log_l = np.log10(np.asarray(cat["L_X"], dtype=float))
    z_edges, m_edges, counts = halo_density_grid(p.H0, p.Om0, p.Ob0, p.sigma8, p.ns, p.z_min, p.z_max,
                                                 p.log10_m500_min, p.log10_m500_max)
    m_mid = 0.5 * (m_edges[1:] + m_edges[:-1])
    iz = np.clip(np.searchsorted(z_edges, z) - 1, 0, len(z_edges) - 2)
    resid = (log_l[:, None] - mean_log_lx(m_mid[None, :], z[:, None], p)) / (sigma_ln_lx / np.log(10.0))
    post = np.exp(-0.5 * resid**2) * counts[iz]
    m_inferred = (post * m_mid).sum(axis=1) / post.sum(axis=1)
    return float(np.median(log_l - mean_log_lx(m_inferred, z, p)))


def summarise(name, survey, bunch, seconds):
    cat = bunch.catalog
    area = float(bunch.area_deg2)
    ml = np.asarray(cat["ML_CTS"], dtype=float)
    z = np.asarray(cat["z"], dtype=float)
    out = {"variant": name, "survey": survey, "area_deg2": area, "n": int(ml.size),
           "per_deg2": ml.size / area, "seconds": seconds,
           "ML_CTS_p05_p50_p95": [float(v) for v in np.percentile(ml, [5, 50, 95])],
           "median_z": float(np.median(z)), "median_log10_M500": float(np.median(cat["log10_M500"]))}
    if survey == "efeds":
        ref = EFEDS_REFERENCE["clusters_per_deg2"]
        out["ratio_to_efeds"] = out["per_deg2"] / ref
        for thr, frac in EFEDS_ABOVE.items():
            out[f"ratio_above_{thr:g}_counts"] = float(np.sum(ml > thr)) / area / (frac * ref)
    else:
        lo, hi = ERASS1_COSMOLOGY["z_range"]
        sel = (z > lo) & (z < hi)
        out["per_deg2_cosmology_z"] = float(sel.sum()) / area
        out["ratio_to_erass1_cosmology"] = out["per_deg2_cosmology_z"] / (
            ERASS1_COSMOLOGY["n"] / ERASS1_COSMOLOGY["area_deg2"])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    ap.add_argument("--area-efeds", type=float, default=280.0, help="deg^2 per eFEDS-depth variant")
    ap.add_argument("--area-erass1", type=float, default=2000.0, help="deg^2 for the eRASS1-depth variant")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "surface_density"))
    args = ap.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/surface_density.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    rows = []
    for name in names:
        survey, overrides = VARIANTS[name]
        area = args.area_efeds if survey == "efeds" else args.area_erass1
        t0 = time.perf_counter()
        bunch = make_survey(survey, area_deg2=area, random_state=args.seed, n_jobs=args.n_jobs, verbose=False,
                            **overrides)
        row = summarise(name, survey, bunch, time.perf_counter() - t0)
        row["overrides"] = overrides
        row["eddington_shift_dex"] = {f"{sig:.2f}": eddington_shift_dex(bunch, sig) for sig in EDDINGTON_SIGMAS}
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    (out / "surface_density.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1, default=float))
    lines = [f"Command: `{command}`", "",
             "| variant | clusters / deg^2 | / reference | > 47 / 105 / 530 counts, / eFEDS | ML_CTS 5/50/95% "
             "| median z | median log10 M500 | Eddington shift, dex (ln-scatter 0.30 / 0.40) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = " / ".join(f"{v:.0f}" for v in r["ML_CTS_p05_p50_p95"])
        if r["survey"] == "efeds":
            dens, ratio = f"{r['per_deg2']:.2f}", f"{r['ratio_to_efeds']:.2f} (eFEDS 3.87)"
            above = " / ".join(f"{r[f'ratio_above_{t:g}_counts']:.2f}" for t in EFEDS_ABOVE)
        else:
            dens = f"{r['per_deg2']:.2f} ({r['per_deg2_cosmology_z']:.2f} at 0.1<z<0.8)"
            ratio, above = f"{r['ratio_to_erass1_cosmology']:.2f} (eRASS1 0.41)", "-"
        lines.append(f"| {r['variant']} | {dens} | {ratio} | {above} | {p} | {r['median_z']:.3f} "
                     f"| {r['median_log10_M500']:.2f} | "
                     + " / ".join(f"{v:+.3f}" for v in r["eddington_shift_dex"].values()) + " |")
    (out / "surface_density.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
