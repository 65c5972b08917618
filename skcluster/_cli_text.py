"""The help texts of the ``skcluster`` command line: what each command does, with examples.

Kept apart from the parser (:func:`skcluster.cli.build_parser`) so that the
parser reads as the list of options; ``docs/user_guide/cli.rst`` shows them
as the parser prints them."""

from __future__ import annotations

EXIT_CODES = """\
exit codes:
  0  success
  1  unexpected internal error (run again with --debug for the traceback)
  2  usage or bad input (arguments, unreadable or malformed files, bad
     catalogue values, images whose bands do not match the model, ...)
  3  an output exists (pass --overwrite) or cannot be written
  130  interrupted (Ctrl-C): nothing was written"""

#: Each command's description and epilog (examples), by command.
HELP = {
    "demo": {
        "description": ("The end-to-end demo: simulate a small eFEDS-like mock survey, train the standard pipeline "
                        "(a deep ensemble of CNNs) on part of it, evaluate it on the held-out clusters against the "
                        "count-rate method (a scaling relation on the detection fit's count rate), print the table "
                        "and save figures, the table, the predictions and the trained model into the output folder. "
                        "The defaults take under 10 minutes on 2 CPU cores; the seed is fixed."),
        "epilog": ("examples:\n"
                   "  skcluster demo\n"
                   "  skcluster demo --out my-demo --n-clusters 4000 --n-estimators 10 --overwrite\n"
                   "  skcluster demo --n-clusters 300 --n-estimators 2 --max-epochs 3   # a quick look\n"
                   "\n"
                   "files written into --out: model.skc (load with skcluster.persist.load or use with\n"
                   "'skcluster predict'), results.md, results.json, predictions.csv, performance.png,\n"
                   "clusters.png\n"
                   "\n")
                  + EXIT_CODES,
    },
    "simulate": {
        "description": ("Simulate a mock eROSITA cluster survey and write it as files: catalog.fits (truth and "
                        "observables, one row per cluster, with the name of its event file), "
                        "events/cluster_NNNNN.fits (eSASS EVENTS tables) and survey.json (parameters). Give the "
                        "number of clusters or the sky area. The folder can be used by 'skcluster train --data'."),
        "epilog": ("examples:\n"
                   "  skcluster simulate --survey efeds --n-clusters 1000 --seed 1 --out mock_efeds\n"
                   "  skcluster simulate --survey erass1 --area 100 --out mock_erass1 --n-jobs 2\n"
                   "\n")
                  + EXIT_CODES,
    },
    "train": {
        "description": ("Fit the standard pipeline (band binning, resize, smoothing, count scaling, redshift join, "
                        "deep ensemble of CNNs) on one of: a mock survey simulated on the fly (--survey, "
                        "--n-clusters); a folder written by 'skcluster simulate' (--data); or your own simulation "
                        "(--catalog: a truth catalogue with positions, redshift and M500, with eSASS event files, "
                        "--events, any number of clusters per file, or band images, --images, with exposure maps), "
                        "read through the same readers as 'skcluster predict' "
                        "(skcluster.workflow.read_training_set). Save it in the skcluster.persist format. The "
                        "cut-out box (--size-arcmin) and the bands are kept in the model; 'skcluster predict' uses "
                        "them, from event lists or images alike."),
        "epilog": ("examples:\n"
                   "  skcluster train --bands efeds7 --n-clusters 3000 --n-estimators 5 --max-epochs 40 \\\n"
                   "      --out efeds7.skc\n"
                   "  skcluster train --bands 0.5-1.2,1.2-2.0,2.0-7.0 --size-arcmin 15 --out ho3.skc\n"
                   "  skcluster train --data mock_efeds --bands efeds7 --out from_files.skc\n"
                   "  skcluster train --catalog truth.fits --mass-col M500 --mass-unit 1e14Msun \\\n"
                   "      --events sim_*.fits --exposure expmap.fits --bands efeds7 --out sim.skc\n"
                   "  skcluster train --catalog truth.fits --images img_*.fits --exposure expmap_*.fits \\\n"
                   "      --out sim_images.skc    # bands from the image names\n"
                   "\n"
                   "Event files written by simulators often lack PAT_TYP and FLAG: pass --pattern-types all\n"
                   "--flag-mask none.\n"
                   "\n")
                  + EXIT_CODES,
    },
    "predict": {
        "description": ("Load a model, read a catalogue (ra, dec, z), cut each cluster out of the eROSITA band "
                        "images (evtool) or event lists in the model's box and bands, predict in batches, and write "
                        "the catalogue back with log10_M500 (log10 M500c / Msun), log10_M500_err (dex), in_domain "
                        "and domain_reason (clusters without data -- off the images, unexposed, no photons -- or "
                        "outside the model's training range get no mass: NaN, and the reason) and, where it can be "
                        "known, cutout_complete (False where the box ran off the images or over unexposed pixels: "
                        "padded, use with care) and cutout_coverage (fraction of the box with data); a "
                        "physics-marginalised model (train --physics-marginalised) adds log10_M500_err_photon, "
                        "_network and _physics, the parts of log10_M500_err. Table formats "
                        "from the suffix: .fits, .fits.gz, .ecsv, .csv."),
        "epilog": ("examples:\n"
                   "  skcluster predict --model efeds7.skc --catalog clusters.csv \\\n"
                   "      --images img_0300_0600.fits.gz img_0600_1100.fits.gz ... \\\n"
                   "      --exposure expmap_0300_0600.fits.gz expmap_0600_1100.fits.gz ... \\\n"
                   "      --out masses.fits\n"
                   "  skcluster predict --model m.skc --catalog c.fits --images img_*.fits.gz \\\n"
                   "      --exposure expmap_norm_*.fits.gz --exposure-vignetting unvignetted --out m.csv\n"
                   "  skcluster predict --model m.skc --catalog c.fits --events eb01_*_EventList.fits.gz \\\n"
                   "      --exposure-seconds 1200 --out m.ecsv\n"
                   "\n"
                   "Bands are read from file names such as img_0300_0600.fits (eV) or given with\n"
                   "--bands, and must be the bands the model was trained on. Exposure maps: vignetted\n"
                   "(eSASS expmap withvignetting=yes) by default; maps normalised to an ARF that\n"
                   "includes the vignetting (srctool, as the mbproj2d expmap_norm_* maps) or\n"
                   "unvignetted maps need --exposure-vignetting unvignetted.\n"
                   "\n")
                  + EXIT_CODES,
    },
    "benchmark": {
        "description": ("Run the benchmark tables (skcluster.benchmark.run_benchmark): the CNN ensemble and the "
                        "scalar-observable baselines on cross-validation folds of a mock survey; writes "
                        "results.json, results.md and figures into --out. (The speed and memory benchmark is "
                        "benchmarks/perf.py of a source checkout.)"),
        "epilog": ("examples:\n"
                   "  skcluster benchmark --quick --out bench-quick\n"
                   "  skcluster benchmark --device cuda --out bench-full     # seed-study scale, on a GPU\n"
                   "  skcluster benchmark --preset standard --n-clusters 2400 --folds 3 --n-estimators 3 \\\n"
                   "      --n-jobs 2 --rows count_rate,gbm_scalars,ensemble_10band_masked --out bench  # 2 CPU cores"
                   "\n"
                   "\n")
                  + EXIT_CODES,
    },
}

#: The longer help texts of options, by "command --option".
OPTION_HELP = {
    "train --survey":
        ("mock survey depth preset (the default source: efeds); 'erosita' mixes every depth from eRASS1 to the deep "
         "fields and joins each cluster's exposure and measured image observables (the background level among them) "
         "beside z, so one model serves every depth"),
    "--sky":
        ("mock version of the preset (default v2, the one every benchmark uses; v1: the earlier mock); v2 is "
         "calibrated on the real eFEDS and eRASS1 catalogues and images (background measured on the eFEDS images, "
         "each cluster's background level and exposure from the catalogues, the eFEDS AGN counts; "
         "skcluster.datasets.SKY_VERSIONS)"),
    "train --catalog":
        ("train on your own simulation: truth catalogue (ra, dec, z, M500; .fits, .ecsv, .csv) with --events or "
         "--images"),
    "train --exposure-col":
        "column of --catalog with each cluster's vignetted exposure (s) (default: exposure, texp, ...)",
    "train --flag-mask":
        ("events with any of these FLAG bits are dropped (--events; default: the DR1 mask 0xE000F000); 'none' keeps "
         "every event"),
    "train --bands":
        ("energy bands: a preset (krippendorf10, ho3, broad, efeds7) or keV ranges 0.3-0.6,0.6-1.1,... (default: "
         "krippendorf10; with --images, the bands of the image names)"),
    "train --n-clusters":
        "clusters to simulate (default 2000); with --data or --catalog: use the first N (default: all)",
    "train --depth-strata":
        ("with --survey erosita: the mock holds equal numbers of selected clusters in K bins of log exposure, so "
         "shallow (eRASS1-like) clusters are as many as deep ones; 1: the preset's own draw (exposure log-uniform "
         "before the selection)"),
    "train --keep-point-sources":
        ("train on the photons of the detected point sources too. By default, where the training clusters come with "
         "a detected point-source list (the built-in mock and --data folders: the mock's own detection run), those "
         "sources are masked, as 'skcluster predict --point-sources' masks a published catalogue; --catalog "
         "simulations have no list and are never masked"),
    "train --observables":
        ("also measure the image observables the boosted trees read (net counts in apertures, L_X, the background "
         "level, hardness ratios; after the point-source mask) on each cluster's events and join them beside z "
         "(make_mass_pipeline(observables=True)); event input only, so 'skcluster predict' then needs --events. "
         "Default: on with --survey erosita (where the background level varies), off otherwise"),
    "train --prior":
        ("what the predicted masses carry. 'fixed-mass' (default): the model's mean response at fixed true mass, "
         "measured on calibration clusters it did not train on, inverted, so the masses are unbiased at fixed true "
         "mass whatever the population's mass function (where the calibration clusters are too few or the model "
         "barely responds to mass, the default falls back to 'flat' with a warning). 'flat': the training "
         "population's mass function and selection divided out (flat in log M). 'training': the network's own "
         "posterior under the training population"),
    "train --calibration-clusters":
        ("with the fixed-mass prior on the built-in mock: a fresh mock of N clusters of the training population and "
         "N more whose lowest mass is raised to 10^14.3 Msun (other seeds) calibrate the response, which may bend "
         "above 10^14.4 Msun (default: a third of the training clusters, at least the 12 a calibration needs)"),
    "train --calibration-fraction":
        ("with the fixed-mass prior on your own clusters (--data, --catalog): the share of them held out of "
         "training to calibrate the response (default 0.3)"),
    "train --physics-marginalised":
        ("built-in mock: simulate the clusters in K physics draws of the package's physics prior (the published "
         "ranges of the L_X-M relation, core radii, cool cores, AGN, PSF and background, centred on the preset, "
         "a curved L_X-M and a choice of two forms each of mass function, ICM profile and PSF; "
         "skcluster.datasets.DEFAULT_PHYSICS_PRIOR), in pairs mirrored about "
         "the prior's centre (an even K pairs every draw), --n-clusters in each (K times the simulation), and train "
         "each CNN on one draw (--n-estimators a multiple of K): the ensemble's "
         "std then carries the physics the mock does not know, and predict splits it into photon, network and "
         "physics parts. The model file records the prior and the draws. Default: the preset's physics"),
    "train --physics-width":
        ("with --physics-marginalised: scale every range of the physics prior about its centre by W (default 1: "
         "the published ranges; 0: every draw at the centres)"),
    "train --physics-forms":
        ("with --physics-marginalised: 'drawn' (default) draws the prior's forms of profile, PSF, mass function "
         "and L_X-M too, which puts the mean at their mixture; 'preset' keeps the preset's forms and draws only "
         "the numbers, so that mirrored pairs centre the mean on the preset's physics"),
    "predict --nh-col":
        ("catalogue column with each cluster's Galactic N_H (cm^-2, e.g. HI4PI), for models that convert count "
         "rates to L_X with it (train --survey erosita; default: a column named nh, nh_cm2 or nh_hi4pi)"),
    "predict --point-sources":
        ("point-source catalogue (RA, DEC and ML_RATE_1 or counts, as the eFEDS/eRASS1 main catalogues): its "
         "sources are masked before the model sees the data"),
    "predict --pattern-types":
        "event PAT_TYP values kept (--events); 'all' keeps every event, for event lists without a PAT_TYP column",
    "predict --flag-mask":
        ("events with any of these FLAG bits are dropped (--events; default: the DR1 mask 0xE000F000); 'none' keeps "
         "every event, for event lists without FLAG"),
    "benchmark --preset":
        ("sizes: quick (<10 min on 2 cores), standard (8000 clusters, 5 members), full (the default: the seed "
         "study's 8000 clusters and 30 members; measured 2.2 h per ensemble row on a 2-core AVX-512 CPU in "
         "bfloat16, so about a day for every default row: pick some with --rows, or use a GPU: --device cuda)"),
    "benchmark --rows":
        ("only these rows (names in the docs' benchmark page; e.g. the levers ensemble_10band_masked_asinh; "
         "default: every standard row)"),
}
