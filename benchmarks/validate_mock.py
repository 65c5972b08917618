"""Validate the mock eROSITA survey against eFEDS and the literature.

Generates an eFEDS-like survey (default: the seed study's ~8000 clusters
after the cuts), times it and measures its peak memory, then prints and
writes the realism numbers and figures:

* counts (fitted ML_CTS and true ICM counts), background, theta500 and z
  against the eFEDS numbers measured from the public eFEDS products;
* the L_X-M relation recovered from the catalogue (all halos of a few tiles,
  and the detected sample with its selection bias);
* the fraction of ICM counts above 2 keV against temperature;
* count-based mass estimates (power law in count rate plus redshift terms,
  fitted on half the clusters, scatter on the other half) against the
  literature (Krippendorf+23 count rate 19.7%; Ho+23 photon counts 40%,
  counts in r500 34%);
* the pass fraction against expected ICM counts, and a check that
  simulating every halo (no pre-selection) gives the same clusters;
* a few clusters band by band.

Usage::

    python benchmarks/validate_mock.py                      # 8000 clusters, n_jobs=2
    python benchmarks/validate_mock.py --area 200 --n-jobs 2  # a quicker look

Writes ``<out>/validate_mock.json``, ``<out>/validate_mock.md`` and PNG
figures (default out: benchmarks/results/mock).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from perf_harness import PeakRSS  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from skcluster.datasets import make_survey  # noqa: E402
from skcluster.datasets.photons import CHUNK_COLUMNS, simulate_chunk  # noqa: E402
from skcluster.datasets.survey import simulate_tile, survey_context, tile_catalog  # noqa: E402
from skcluster.datasets.validation import (  # noqa: E402
    EFEDS_REFERENCE,
    count_mass_scatter,
    fit_scaling_relation,
    hard_fraction_by_temperature,
    survey_summary,
)
from skcluster.physics import efunc  # noqa: E402
from skcluster.plotting import plot_cluster_bands  # noqa: E402


def selection_check(params, n_tiles, seed):
    """Pass fraction by expected counts, and survey equality without pre-selection."""
    ctx = survey_context(params)
    same = True
    n_pass = 0
    mus, passed = [], []
    for k in range(n_tiles):
        a, ev_a, st_a = simulate_tile(k, 10.0, params, seed, ctx)
        b, ev_b, st_b = simulate_tile(k, 10.0, params.replace(preselect_min_counts=0.0), seed, ctx)
        same &= bool(np.array_equal(a["index"], b["index"])
                     and all(np.array_equal(x, y) and np.array_equal(sx, sy)
                             for (x, sx), (y, sy) in zip(ev_a, ev_b)))
        n_pass += st_a["n_passed"]
        # outcome of every halo expecting >= 1 count (detection decision only)
        cat = tile_catalog(k, 10.0, params, seed, ctx)
        sel = cat["counts_expected"] >= 1.0
        res, _, _ = simulate_chunk({c: cat[c][sel] for c in CHUNK_COLUMNS}, params, seed)
        mus.append(cat["counts_expected"][sel])
        passed.append(res["passed"])
    mu, ok = np.concatenate(mus), np.concatenate(passed)
    edges = np.array([1, 2, 3, 4, 6, 8, 10, 15, 20, 30, 40, 60, 100, 200, 1e9])
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        s = (mu >= lo) & (mu < hi)
        rows.append({"mu_lo": float(lo), "mu_hi": float(hi), "n": int(s.sum()), "passed": int(ok[s].sum())})
    return {"tiles": n_tiles, "identical_without_preselection": same, "n_passed": n_pass,
            "pass_by_expected_counts": rows, "min_mu_passed": float(mu[ok].min()) if ok.any() else None}


#: eFEDS main catalogue: 27,910 sources with DET_LIKE > 6 in 0.2-2.3 keV over
#: ~140 deg^2 (Brunner et al. 2022, A&A 661, A1).
EFEDS_POINT_SOURCES_PER_DEG2 = 27910 / 140.0


def point_source_summary(data):
    """Density of the detected point sources and how many sit on AGN photons.

    A source counts as real when most photons of its 16" cell are AGN
    photons (origin 2), as spurious otherwise (background or ICM).
    """
    size_deg = data.params.size_arcmin / 60.0
    n_src, n_agn, counts = 0, 0, []
    for ev, src in zip(data.X["events"], data.X["point_sources"]):
        n_src += len(src)
        counts.append(src["counts"])
        for s in src:
            cell = np.hypot(ev["x_arcsec"] - s["x_arcsec"], ev["y_arcsec"] - s["y_arcsec"]) < 16.0
            n_agn += bool(np.mean(ev["origin"][cell] == 2) > 0.5) if cell.any() else 0
    counts = np.concatenate(counts) if counts else np.zeros(0)
    return {"per_deg2": n_src / (len(data.y) * size_deg**2), "n_sources": int(n_src),
            "fraction_on_agn_photons": n_agn / max(n_src, 1),
            "counts_p05_p50_p95": [float(v) for v in np.percentile(counts, [5, 50, 95])] if n_src else None,
            "efeds_per_deg2": EFEDS_POINT_SOURCES_PER_DEG2}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-clusters", type=int, default=8000)
    ap.add_argument("--area", type=float, default=None, help="simulate this area (deg^2) instead")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--selection-tiles", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "mock"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/validate_mock.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))

    size_kw = {"area_deg2": args.area} if args.area else {"n_clusters": args.n_clusters}
    make_survey(area_deg2=0.5, random_state=args.seed, verbose=False)  # warm the caches of this process
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        data = make_survey(random_state=args.seed, n_jobs=args.n_jobs, verbose=True, **size_kw)
    elapsed = time.perf_counter() - t0
    n = len(data.y)
    n_photons = int(sum(len(e) for e in data.X["events"]))
    speed = {"n_clusters": n, "area_deg2": data.area_deg2, "n_halos": data.n_halos,
             "n_candidates": data.n_candidates, "seconds": elapsed, "clusters_per_s": n / elapsed,
             "peak_rss_GB": mem.peak / 1e9, "n_jobs": args.n_jobs, "cpu_count": os.cpu_count(),
             "photons": n_photons, "events_GB": n_photons * data.X["events"][0].dtype.itemsize / 1e9,
             "load_average_1min_after": os.getloadavg()[0], "preselect_miss_bound": data.preselect_miss_bound}
    print(f"\ngenerated {n} clusters ({data.n_halos} halos, {data.n_candidates} simulated with photons) "
          f"in {elapsed:.1f} s = {n / elapsed:.1f} clusters/s with n_jobs={args.n_jobs}; peak RSS "
          f"{mem.peak / 1e9:.2f} GB; load average now {os.getloadavg()[0]:.1f}")

    p = data.params
    summary = survey_summary(data)
    cat = data.catalog
    ps = point_source_summary(data)

    # -- L_X-M: all halos of a few tiles (no selection) and the detected sample
    halos = [tile_catalog(k, 10.0, p, args.seed + 1000) for k in range(3)]
    hl = {c: np.concatenate([h[c] for h in halos]) for c in ("log10_M500", "z", "L_X", "L_X_ce", "T")}
    lm_all = fit_scaling_relation(hl["log10_M500"], hl["z"], hl["L_X"], p)
    lm_ce = fit_scaling_relation(hl["log10_M500"], hl["z"], hl["L_X_ce"], p)
    lm_det = fit_scaling_relation(cat["log10_M500"], cat["z"], cat["L_X"], p)
    massive = np.asarray(cat["M500"]) > 2e14
    lm_det_massive = fit_scaling_relation(cat["log10_M500"][massive], cat["z"][massive], cat["L_X"][massive], p)
    scaling = {
        "input": {"log10_norm": p.lx_log10_norm, "slope": p.lx_slope, "sigma_ln": p.sigma_ln_lx,
                  "sigma_ln_ce": p.sigma_ln_lx_ce},
        "all_halos": dict(zip(("log10_norm", "slope", "sigma_ln"), lm_all)),
        "all_halos_core_excised": dict(zip(("log10_norm", "slope", "sigma_ln"), lm_ce)),
        "detected": dict(zip(("log10_norm", "slope", "sigma_ln"), lm_det)),
        "detected_M_gt_2e14": dict(zip(("log10_norm", "slope", "sigma_ln"), lm_det_massive)),
        "n_halos_fit": int(hl["z"].size),
    }
    t_c, t_f, t_n = hard_fraction_by_temperature(data)

    # -- count-based mass estimates
    exposure = np.asarray(data.X["exposure"])
    counts_methods = {
        "count rate from the detection fit (ML_CTS/exposure)": count_mass_scatter(data, counts=cat["ML_CTS"]),
        "the same fit masking the simulation's AGN labels (reference)": count_mass_scatter(
            data, counts=cat["ML_CTS_truthmask"]),
        "aperture counts, 1 arcmin, 0.5-2 keV, local background": count_mass_scatter(data, "fixed", 60.0),
        "aperture counts, 2 arcmin": count_mass_scatter(data, "fixed", 120.0),
        "aperture counts within the true r500": count_mass_scatter(data, "r500"),
        "all photons in the 20' box (background-subtracted)": count_mass_scatter(data, "box"),
        "ICM photons within r500 only (no background, no AGN)": count_mass_scatter(data, counts=cat["counts_r500"]),
        "true flux within r500 (noise-free L_X)": count_mass_scatter(data, counts=np.asarray(cat["flux"]) * exposure),
        "true core-excised L (noise-free)": count_mass_scatter(
            data, counts=np.asarray(cat["L_X_ce"]) / np.asarray(cat["L_X"]) * np.asarray(cat["flux"]) * exposure),
    }

    # -- selection function and the pre-selection check
    sel = selection_check(p, args.selection_tiles, args.seed + 2000)

    results = {"command": command, "speed": speed, "summary": summary, "efeds_reference": EFEDS_REFERENCE,
               "scaling_lx_m": scaling,
               "hard_fraction_vs_T": {"T_median_keV": t_c, "fraction_above_2keV": t_f, "n": t_n},
               "count_mass_scatter": counts_methods, "selection": sel, "point_sources": ps,
               "params": p.to_dict()}
    (out / "validate_mock.json").write_text(json.dumps(results, indent=1, default=float))

    # -- figures
    figs = {}
    fig, axs = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    bins = np.geomspace(5, 5000, 40)
    axs[0].hist(cat["ML_CTS"], bins, histtype="step", lw=1.5, label="ML_CTS (detection fit)")
    axs[0].hist(np.maximum(cat["counts"], 1), bins, histtype="step", lw=1.5, label="true ICM counts")
    for q, v in (("5%", 47), ("50%", 105), ("95%", 530)):
        axs[0].axvline(v, color="k", ls=":", lw=1)
        axs[0].text(v, axs[0].get_ylim()[1] * 0.9, f"eFEDS {q}", rotation=90, fontsize=7, ha="right")
    axs[0].set_xscale("log")
    axs[0].set_xlabel("source counts, 0.2-2.3 keV")
    axs[0].legend(fontsize=8)
    axs[1].hist(cat["z"], np.linspace(0, 1.5, 31), histtype="step", lw=1.5)
    axs[1].axvline(0.35, color="k", ls=":", label="eFEDS median")
    axs[1].axvline(summary["z_median"], color="C1", label="mock median")
    axs[1].set_xlabel("z")
    axs[1].legend(fontsize=8)
    axs[2].hist(cat["theta500_arcmin"], np.geomspace(0.5, 20, 31), histtype="step", lw=1.5)
    axs[2].axvline(2.3, color="k", ls=":", label="eFEDS median")
    axs[2].axvline(summary["theta500_median_arcmin"], color="C1", label="mock median")
    axs[2].set_xscale("log")
    axs[2].set_xlabel("theta500 (arcmin)")
    axs[2].legend(fontsize=8)
    fig.suptitle(f"Mock eFEDS after DET_LIKE > 5, EXT_LIKE > 6: {n} clusters in {data.area_deg2:.0f} deg^2")
    figs["counts_z_theta500"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
    ez_all = efunc(hl["z"])
    ax.scatter(hl["log10_M500"], np.log10(hl["L_X"]) - 2 * np.log10(ez_all), s=1, alpha=0.15, color="0.5",
               label=f"all halos ({hl['z'].size})")
    ax.scatter(cat["log10_M500"], np.log10(cat["L_X"]) - 2 * np.log10(efunc(cat["z"])), s=2, alpha=0.5,
               color="C3", label=f"detected ({n})")
    xx = np.linspace(13, 15.2, 10)
    ax.plot(xx, p.lx_log10_norm + p.lx_slope * (xx - np.log10(p.lx_pivot_msun)), "k-", label="input relation")
    ax.set_xlabel("log10 M500 / Msun")
    ax.set_ylabel("log10 L_X(0.5-2 keV, <r500) E(z)^-2 [erg/s]")
    ax.set_title(f"all halos: slope {lm_all[1]:.3f}, scatter {lm_all[2]:.3f}; detected: {lm_det[1]:.2f}, "
                 f"{lm_det[2]:.2f}", fontsize=8)
    ax.legend(fontsize=8, markerscale=5)
    figs["lx_mass"] = fig

    fig, ax = plt.subplots(figsize=(5, 3.8), layout="constrained")
    ax.plot(t_c, t_f, "o-")
    ax.set_xscale("log")
    ax.set_xlabel("T (keV), median of bin")
    ax.set_ylabel("fraction of ICM photons above 2 keV")
    figs["hard_fraction_vs_T"] = fig

    fig, axs = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    sel_rows = sel["pass_by_expected_counts"]
    mid = [np.sqrt(r["mu_lo"] * min(r["mu_hi"], 1e3)) for r in sel_rows]
    frac = [r["passed"] / max(r["n"], 1) for r in sel_rows]
    axs[0].plot(mid, frac, "o-")
    axs[0].axvline(p.preselect_min_counts, color="k", ls=":", label="pre-selection threshold")
    axs[0].set_xscale("log")
    axs[0].set_xlabel("expected ICM counts (0.2-2.3 keV, whole profile)")
    axs[0].set_ylabel("fraction passing the cuts")
    axs[0].legend(fontsize=8)
    ml_rate = np.log10(np.asarray(cat["ML_CTS"]) / exposure)
    sc = axs[1].scatter(ml_rate, data.y, s=2, c=cat["z"], cmap="viridis", vmax=1.0)
    fig.colorbar(sc, ax=axs[1], label="z")
    axs[1].set_xlabel("log10 ML_CTS / exposure (counts/s)")
    axs[1].set_ylabel("log10 M500 / Msun")
    axs[1].set_title("count rate vs mass (detected clusters)", fontsize=9)
    figs["selection_and_count_rate"] = fig

    order = np.argsort(np.asarray(cat["ML_CTS"]))
    pick = [int(order[int(0.05 * n)]), int(order[n // 2]), int(order[int(0.95 * n)])]
    figs["clusters_band_by_band"] = plot_cluster_bands(data.X, pick, y=data.y)
    for name, f in figs.items():
        f.savefig(out / f"{name}.png", dpi=100)
        plt.close(f)

    # -- Markdown table
    s = summary
    md = [
        "# Mock survey validation (skcluster.datasets)", "",
        f"Command: `{command}`", "",
        f"{n} clusters passing DET_LIKE > 5 and EXT_LIKE > 6 in {data.area_deg2:.1f} deg^2 "
        f"({data.n_halos} halos, {data.n_candidates} simulated with photons); seed {args.seed}.", "",
        "| quantity | mock | eFEDS (measured) | ratio / difference |", "|---|---|---|---|",
        f"| ML_CTS 5/50/95% (0.2-2.3 keV) | {s['ML_CTS_p05']:.0f} / {s['ML_CTS_p50']:.0f} / {s['ML_CTS_p95']:.0f} "
        f"| 47 / 105 / 530 | {' / '.join(f'{r:.2f}' for r in s['ratio_counts'])} |",
        f"| true ICM counts 5/50/95% | {s['counts_true_p05']:.0f} / {s['counts_true_p50']:.0f} / "
        f"{s['counts_true_p95']:.0f} | (47 / 105 / 530) | "
        f"{s['counts_true_p05'] / 47:.2f} / {s['counts_true_p50'] / 105:.2f} / {s['counts_true_p95'] / 530:.2f} |",
        f"| background per 4\" pixel (median) | {s['bkg_per_pixel_median']:.4f} | 0.029 | {s['ratio_bkg']:.2f} |",
        f"| median theta500 (arcmin) | {s['theta500_median_arcmin']:.2f} | 2.3 | {s['ratio_theta500']:.2f} |",
        f"| median z | {s['z_median']:.3f} | 0.35 | {s['delta_z']:+.3f} |",
        f"| clusters per deg^2 | {s['clusters_per_deg2']:.2f} | 3.9 (542/140, candidates) | "
        f"{s['ratio_density']:.2f} |", "",
        "## Detected point sources (masked by every method)", "",
        f"{ps['per_deg2']:.0f} per deg^2 (eFEDS main catalogue: {ps['efeds_per_deg2']:.0f}, Brunner et al. 2022); "
        f"{100 * ps['fraction_on_agn_photons']:.1f}% sit on AGN photons (the rest are chance detections on "
        f"background or ICM fluctuations); source counts 5/50/95%: "
        + (" / ".join(f"{v:.0f}" for v in ps["counts_p05_p50_p95"]) if ps["counts_p05_p50_p95"] else "-")
        + ".", "",
        "## L_X-M (0.5-2 keV, < r500)", "",
        "| sample | log10 norm | slope | sigma_ln |", "|---|---|---|---|",
        f"| input | {p.lx_log10_norm} | {p.lx_slope} | {p.sigma_ln_lx} |",
        *[f"| {k} | {v['log10_norm']:.3f} | {v['slope']:.3f} | {v['sigma_ln']:.3f} |"
          for k, v in scaling.items() if isinstance(v, dict) and k != "input"], "",
        "## Fraction of ICM photons above 2 keV by temperature", "",
        "| T (keV) | " + " | ".join(f"{t:.1f}" for t in t_c) + " |",
        "|---|" + "---|" * len(t_c),
        "| fraction | " + " | ".join(f"{f:.3f}" for f in t_f) + " |", "",
        "## Count-based mass estimates (fit on half, scatter on the other half)", "",
        "| method | sigma_lnM | slope in log count rate | non-positive counts |", "|---|---|---|---|",
        *[f"| {k} | {v['sigma_lnM']:.3f} | {v['slope']:.2f} | {v['n_nonpositive']} |"
          for k, v in counts_methods.items()], "",
        "Literature: Krippendorf+23 count-rate method 19.7%; Ho+23 photon counts 40%, counts in r500 34%, "
        "idealised L_X 26%.", "",
        "## Selection function and pre-selection", "",
        f"{sel['tiles']} tiles simulated with and without the pre-selection "
        f"(expected ICM counts >= {p.preselect_min_counts:g}): identical surveys: "
        f"**{sel['identical_without_preselection']}**; smallest expected counts of a passing cluster: "
        f"{sel['min_mu_passed']:.1f}; bound on expected misses in the survey above: "
        f"{data.preselect_miss_bound:.2g}.", "",
        "| expected ICM counts | halos | passed | fraction |", "|---|---|---|---|",
        *[f"| {r['mu_lo']:g}-{r['mu_hi']:g} | {r['n']} | {r['passed']} | {r['passed'] / max(r['n'], 1):.4f} |"
          for r in sel_rows], "",
        "## Speed and memory", "",
        f"{n} clusters in {elapsed:.1f} s ({n / elapsed:.1f} clusters/s) with n_jobs={args.n_jobs} on "
        f"{os.cpu_count()} CPUs; peak RSS (process + workers) {mem.peak / 1e9:.2f} GB; "
        f"{n_photons / 1e6:.1f} M photons ({speed['events_GB']:.2f} GB of events); load average after the run "
        f"{speed['load_average_1min_after']:.1f} (the machine is shared: timings are provisional).", "",
    ]
    (out / "validate_mock.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"\nwrote {out}/validate_mock.json, validate_mock.md and {len(figs)} figures")
    print(f"reproduce with: {command}")
    return results


if __name__ == "__main__":
    main()
