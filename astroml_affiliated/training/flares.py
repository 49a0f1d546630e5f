"""Train the flare CNN ensemble: ``python -m astroml_affiliated.training.flares DATA_DIR``.

``DATA_DIR`` holds ``lc/*.fits`` (TESS 2-min light curves), ``lc_index.csv`` and
``vetted_flares.csv`` (see the project's data README). The run is seeded and writes
``flares-cnn-1.3.0-m{k}.weights.h5`` and a training log into ``--out``; ``--registry``
also writes the registry entry (only once the model card's release rule has held).

Version 1.3.0 (the released command: ``--members 3 --epochs 4 --variants 2 --mine-with
<the five 1.2.0 files>``) takes the cadence as a third input channel and is trained on
every training light curve at 2 min and binned (exposure integration,
`core.bin_exposures`) to 200 s, 10 min and 30 min; vetted flares stay positives at a
cadence while a binned cadence overlapping them is >= 3 sigma above the trend
(`detectable`), else weight 0; injected flares are integrated over each exposure;
box-shaped flat-topped artefacts are extra negatives; synthetic bright fast rotators
(`synthetic_rotator`) are added; preprocessing uses the shrinking window at segment ends
and the adaptive trend width. Split: `split_v13` (fixed star lists of the model card);
hard negatives are mined on the 2-min training light curves with ``--mine-with``
weights (1.3.0: the 1.2.0 ensemble). What follows describes the 1.2.0 recipe, which
1.3.0 keeps otherwise.

Version 1.2.0 was trained in two rounds (hard-negative mining), both in one command:

1. a first-round ensemble (the 1.0.0 recipe) was trained on the training stars and
   scored them (the released 1.1.0 was mined with the 1.0.0 weights from git history);
2. its events (p >= ``--mine-threshold``, peak >= 2 sigma) that overlap no vetted or
   unvetted candidate and have no ``--mine-run`` consecutive cadences above
   ``--mine-sigma`` sigma within the event +- 2 cadences (1.2.0: no 2 above 2.5 sigma,
   i.e. single-cadence blips and shapeless excursions; 1.1.0 used no 3 above 3 sigma)
   become hard negatives: crops are centred on them and their cadences (+- 3) get
   weight ``--hard-weight`` (1.2.0: 2; 1.1.0: 3); the ensemble is then trained again
   with the same seeds and recipe.

A development subset of the training stars (every fourth training star from the
second, ordered like the split) is used for neither training nor mining; at the end
both ensembles are scored on it (``dev`` in the training log). Held-out stars are never
read.

Split: by star. Stars are ordered by (number of vetted real flares, sha256 of the TIC)
and every fourth star, starting with the second, is held out for validation
(stratified by flare count, about 25% of the stars). Held-out stars are never read here.

Training examples are crops of ``crop`` output cadences from the preprocessed light
curves of the training stars, with a label and a weight per cadence:

* positives: vetted real flares (``real == 1``, span ``cstart..cstop``) and synthetic
  flares (Davenport 2014 and Mendoza 2022 templates, averaged over the exposure) injected
  into the real light curves with amplitudes of 1.5-300 times the local scatter and
  FWHM of 1-60 minutes; a synthetic flare is a positive where its model exceeds the local
  scatter, when its peak is at least 4 sigma and it spans at least 2 cadences, and
  "don't care" (weight 0) when it is fainter but not invisible;
* negatives: everything else, up-weighted on the human-rejected candidates
  (``real == -1``) and on injected artefacts: single- and two-point outliers (3-100
  sigma), flux jumps, slow bumps (spot-like), scattered-light ramps at segment edges
  (5-3000 sigma);
* weight 0 (never a negative): unvetted candidates, and stretches with at least three
  consecutive cadences more than 3 sigma above the running median that no candidate
  covers (probably flares the vetted table missed).
"""

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..flares import core
from ._flares_data import (CADENCE, CADENCES_S, WINDOW, _crops, _labels_for,  # noqa: F401
                           binned_versions, build_dataset, detectable, excursions,
                           files_before_2026_12_06, load_index, load_lightcurve,
                           prepare_at, split_dev, split_stars, split_v13, synthetic_rotator,
                           vetted_spans)

__all__ = ["load_index", "split_stars", "split_dev", "load_lightcurve", "mine_hard_negatives",
           "dev_metrics", "load_members", "main"]

VERSION = "1.3.0"
NAME = "flares-cnn"


# --------------------------------------------------------------------------------------
# scoring with an ensemble: mining hard negatives, development metrics


def _ensemble_events(models, t, f, e, threshold, *, min_len, min_peak, min_run=1):
    """Events ``(start, stop, peak)`` (indices into ``t``) and the clean ``z`` per cadence."""
    from ..flares._high_level import _score_arrays

    segs, means, _ = _score_arrays(t, f, e, CADENCE, models)
    z = np.zeros(t.size)
    out = []
    for seg, pm in zip(segs, means):
        z[seg.index[seg.mask]] = seg.z[seg.mask]
        out += [core.source_indices(seg, *ev) for ev in core.segment_events(
            seg, pm, threshold, min_sigma=min_peak, min_run=min_run, min_len=min_len)]
    return out, z


def _classify(events, cad, rows, z):
    """Per event: 'real', 'rej', 'unv' (overlaps such a candidate within 3 cadences),
    'echo' (within 50 cadences of one) or 'iso'; and whether it is flare-like."""
    spans = [(np.searchsorted(cad, r["cstart"]),
              np.searchsorted(cad, r["cstop"], "right") - 1, r["real"]) for r in rows]
    out = []
    for a, b, _ in events:
        kind = None
        for ca, cb, rr in spans:
            if a <= cb + 3 and b >= ca - 3:
                kind = {1: "real", -1: "rej"}.get(rr, "unv")
                if rr == 1:
                    break
        if kind is None:
            kind = ("echo" if any(a <= cb + 50 and b >= ca - 50 for ca, cb, _ in spans)
                    else "iso")
        out.append((kind, _has_run(z, a, b, 3.0, 3)))
    return out


def _has_run(z, a, b, nsig, nrun):
    """Whether ``z`` has ``nrun`` consecutive cells above ``nsig`` in ``a - 2 .. b + 2``."""
    return core.longest_run(z[max(0, a - 2):b + 3] > nsig) >= nrun


def mine_hard_negatives(data_dir, files, cands, models, *, threshold=0.3, min_peak=2.0,
                        run=2, run_sigma=2.5):
    """False alarms of ``models`` on ``files``: ``(tic, sector)`` -> ``[(start, stop)]``.

    Kept: events overlapping no candidate (vetted or not) with no ``run`` consecutive
    cadences above ``run_sigma`` within the event +- 2 cadences (``run=3,
    run_sigma=3`` is the "not flare-like" criterion that 1.1.0 used).
    """
    hard, counts = {}, Counter()
    for rec in files:
        t, f, e, cad = load_lightcurve(data_dir, rec["file"])
        rows = cands.get((rec["tic"], rec["sector"]), [])
        ev, z = _ensemble_events(models, t, f, e, threshold, min_len=1, min_peak=min_peak)
        keep = []
        for (a, b, _), (kind, flarelike) in zip(ev, _classify(ev, cad, rows, z)):
            counts[kind + ("_flarelike" if flarelike else "")] += 1
            if kind in ("echo", "iso") and not flarelike:
                if _has_run(z, a, b, run_sigma, run):
                    counts["spared_" + kind] += 1
                else:
                    keep.append((a, b))
        hard[(rec["tic"], rec["sector"])] = keep
    return hard, dict(counts)


def dev_metrics(data_dir, files, cands, models, *, threshold=0.5, min_sigma=3.0, min_run=2):
    """Recall of vetted real flares and unmatched events per light curve (as the
    benchmark counts them, with ``find_flares``' defaults)."""
    n_real = found = iso = flarelike = echo = rej = 0
    for rec in files:
        t, f, e, cad = load_lightcurve(data_dir, rec["file"])
        rows = cands.get((rec["tic"], rec["sector"]), [])
        ev, z = _ensemble_events(models, t, f, e, threshold, min_len=2, min_peak=min_sigma,
                                 min_run=min_run)
        kinds = _classify(ev, cad, rows, z)
        for r in rows:
            if r["real"] != 1:
                continue
            n_real += 1
            ca = np.searchsorted(cad, r["cstart"])
            cb = np.searchsorted(cad, r["cstop"], "right") - 1
            found += any(a <= cb + 3 and b >= ca - 3 for a, b, _ in ev)
        iso += sum(k == "iso" for k, _ in kinds)
        flarelike += sum(k == "iso" and fl for k, fl in kinds)
        echo += sum(k == "echo" for k, _ in kinds)
        rej += sum(k == "rej" for k, _ in kinds)
    n = max(1, len(files))
    return {"threshold": threshold, "min_sigma": min_sigma, "min_run": min_run,
            "n_lightcurves": len(files),
            "n_real": n_real, "recovered": found, "recall": found / max(1, n_real),
            "isolated_per_lc": iso / n, "isolated_flarelike_per_lc": flarelike / n,
            "echo_per_lc": echo / n, "on_rejected": rej}


def load_members(paths, window=WINDOW, n_channels=None):
    """Ensemble members built in code with the given weights files (the number of
    input channels is read from the first file when not given: 2 up to 1.2.0, 3 from
    1.3.0)."""
    from ..flares.models import build_flare_cnn

    models = []
    for p in paths:
        nc = n_channels or _file_channels(p)
        m = build_flare_cnn(window, n_channels=nc)
        m.load_weights(p)
        models.append(m)
    return models


def _file_channels(path):
    """Input channels of a saved flare CNN (the first convolution's kernel shape)."""
    import h5py

    with h5py.File(path, "r") as h:
        # Keras 3 files: layers/<conv1d...>/vars/0 is a kernel (kernel, channels, filters);
        # the first convolution's is the one with a 9-or-more-wide kernel and 16 filters
        kernels = [h[f"layers/{k}/vars/0"].shape for k in h.get("layers", {})
                   if k.startswith("conv1d") and f"layers/{k}/vars/0" in h]
    firsts = [s for s in kernels if len(s) == 3 and s[1] in (2, 3) and s[0] >= 9]
    return int(firsts[0][1]) if firsts else 2


def _train_members(X, Y, W, args, out, version, log=print, n_channels=3):
    from ..device import import_keras
    from ..flares.models import build_flare_cnn

    keras = import_keras()
    paths, histories = [], []
    for k in range(args.members):
        path = Path(out) / f"{NAME}-{version}-m{k}.weights.h5"
        if getattr(args, "resume", False) and path.exists():
            # checkpoint: members already trained by an interrupted run are kept
            paths.append(path)
            histories.append({"resumed": True})
            log(f"member {k}: kept {path}")
            continue
        keras.utils.set_random_seed(args.seed + 1000 * k)
        rng = np.random.default_rng(args.seed + k)
        # bagging: each member sees a bootstrap sample of the crops
        sel = rng.integers(0, X.shape[0], X.shape[0])
        model = build_flare_cnn(WINDOW, n_channels=n_channels, seed=args.seed + k)
        model.compile(optimizer=keras.optimizers.Adam(2e-3),
                      loss=keras.losses.BinaryCrossentropy(),
                      weighted_metrics=[])
        t0 = time.time()
        hist = model.fit(X[sel], Y[sel], sample_weight=W[sel], batch_size=args.batch,
                         epochs=args.epochs, verbose=2, shuffle=True)
        # a short fine-tune at a lower learning rate
        model.optimizer.learning_rate.assign(5e-4)
        hist2 = model.fit(X[sel], Y[sel], sample_weight=W[sel], batch_size=args.batch,
                          epochs=2, verbose=2, shuffle=True)
        model.save_weights(path)
        paths.append(path)
        histories.append({"loss": [float(v) for v in hist.history["loss"]
                                   + hist2.history["loss"]],
                          "seconds": round(time.time() - t0, 1)})
        log(f"member {k}: {time.time() - t0:.0f} s, final loss "
            f"{histories[-1]['loss'][-1]:.4f} -> {path}")
    return paths, histories


def registry_input():
    """The 1.3.0 registry entry's ``input`` specification."""
    # trained at every cadence of CADENCES_S; released for those that passed the rule
    # of the model card (200 s did not)
    return {"cadences_s": [120.0, 600.0, 1800.0], "trained_cadences_s": list(CADENCES_S),
            "window": WINDOW,
            "channels": ["asinh(z)", "mask", "log2(cadence / 120 s) / 4"],
            "trend_width": "core.trend_width_for(cadence): 73 at 2 min, 45 at 200 s, "
                           "15 at 10 min, 13 at 30 min",
            "trend_edge": "shrink", "adaptive_trend": True, "max_gap": 10}


def write_registry(out, paths, summary, registry_path):
    """Write the 1.3.0 registry entry (called once the release rule has held)."""
    from ..weights import write_registry_entry

    write_registry_entry(
        NAME, version=VERSION,
        architecture="astroml_affiliated.flares.models:build_flare_cnn",
        architecture_kwargs={"window": WINDOW, "n_channels": 3},
        files=paths,
        description="Fully convolutional CNN ensemble finding stellar flares in TESS "
                    "20-s/2-min/10-min/30-min and Kepler/K2 1-min/30-min light curves "
                    "(the cadence is an input).",
        input=registry_input(),
        training={"command": summary["command"],
                  "data": "70 TESS 2-min light curves of 45 M dwarfs with vetted flares "
                          "(TESS_UCD_flares), binned to 200 s, 10 min and 30 min; "
                          "synthetic flares integrated over each exposure, artefacts "
                          "(box-shaped ones included) and synthetic bright fast rotators; "
                          "hard negatives mined with 1.2.0",
                  "split": "by star: the 12 held-out stars of 1.2.0 and 13 fresh "
                           "validation stars (rule in the model card) are never read",
                  "validation_tics": summary["validation_tics"],
                  "seed": summary["seed"], "epochs": summary["epochs"],
                  "members": summary["n_members"],
                  "seconds": summary["seconds_total"], "date": "2026-12-07"},
        model_card="docs/models/flares-cnn.rst",
        registry_path=registry_path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m astroml_affiliated.training.flares",
        description="Train the cadence-aware flare CNN ensemble (1.3.0) on real TESS "
                    "2-min light curves and their binned copies.")
    parser.add_argument("data_dir", help="directory with lc/, lc_index.csv, vetted_flares.csv")
    parser.add_argument("--out", default="weights", help="output directory (weights/)")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4,
                        help="epochs at learning rate 2e-3 (then 2 at 5e-4)")
    parser.add_argument("--variants", type=int, default=2,
                        help="augmented copies of each training light curve")
    parser.add_argument("--synthetic", type=int, default=6,
                        help="synthetic bright fast rotators per augmented copy")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mine-with", nargs="+", default=None, metavar="FILE",
                        help="weights files of the ensemble that mines hard negatives on "
                             "the 2-min training light curves (1.3.0: the 1.2.0 files)")
    parser.add_argument("--mine-threshold", type=float, default=0.3)
    parser.add_argument("--mine-run", type=int, default=2)
    parser.add_argument("--mine-sigma", type=float, default=2.5)
    parser.add_argument("--hard-weight", type=float, default=2.0)
    parser.add_argument("--resume", action="store_true",
                        help="keep members whose weights file exists in --out")
    parser.add_argument("--registry", action="store_true",
                        help="write the registry entry into --out/registry.json (only "
                             "after the release rule has held)")
    args = parser.parse_args(argv)

    os.environ.setdefault("PYTHONHASHSEED", str(args.seed))
    from ..device import import_tensorflow

    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files, cands = load_index(args.data_dir)
    train_tics, val_tics, old_tics = split_v13(files)
    train_files = [f for f in files if f["tic"] in set(train_tics)]
    n_real = sum(r["real"] == 1 for f in train_files
                 for r in cands.get((f["tic"], f["sector"]), []))
    print(f"{len(train_tics)} training stars ({len(train_files)} light curves, {n_real} "
          f"vetted real flares); never read: {len(val_tics)} validation stars {val_tics} "
          f"and {len(old_tics)} held-out stars of 1.2.0 {old_tics}")
    t_start = time.time()
    hard, mined = {}, {}
    if args.mine_with:
        first = load_members(args.mine_with)
        hard, mined = mine_hard_negatives(args.data_dir, train_files, cands, first,
                                          threshold=args.mine_threshold,
                                          run=args.mine_run, run_sigma=args.mine_sigma)
    n_hard = sum(len(v) for v in hard.values())
    print(f"mined {n_hard} hard negatives on {len(train_files)} training light curves "
          f"(events by kind: {mined})")
    t_data0 = time.time()
    X, Y, W, counts = build_dataset(args.data_dir, train_files, cands, seed=args.seed,
                                    n_variants=args.variants, crop=args.crop, hard=hard,
                                    hard_weight=args.hard_weight,
                                    n_synthetic=args.synthetic)
    t_data = time.time() - t_data0
    print(f"dataset: {X.shape[0]} crops {counts}, positive cadences "
          f"{float((Y[..., 0] * (W > 0)).sum()):.0f} of {float((W > 0).sum()):.0f} "
          f"weighted; built in {t_data:.0f} s", flush=True)
    paths, histories = _train_members(X, Y, W, args, out, VERSION)
    t_total = time.time() - t_start
    print(f"total training time {t_total:.0f} s")
    cmd = (f"python -m astroml_affiliated.training.flares DATA_DIR --out weights/ "
           f"--members {args.members} --epochs {args.epochs} --variants {args.variants}")
    if args.mine_with:
        cmd += " --mine-with " + " ".join(Path(p).name for p in args.mine_with)
    summary = {"version": VERSION, "command": cmd, "seconds_total": round(t_total, 1),
               "seconds_dataset": round(t_data, 1), "seed": args.seed,
               "epochs": args.epochs + 2, "n_members": args.members,
               "members": histories, "n_crops": int(X.shape[0]), "dataset": counts,
               "train_tics": train_tics, "validation_tics": val_tics,
               "old_heldout_tics": old_tics,
               "n_train_lightcurves": len(train_files), "n_train_real_flares": n_real,
               "mine_with": [Path(p).name for p in args.mine_with or []],
               "mine_threshold": args.mine_threshold, "mine_run": args.mine_run,
               "mine_sigma": args.mine_sigma, "hard_weight": args.hard_weight,
               "n_hard_negatives": n_hard, "mined_events": mined}
    with open(out / f"{NAME}-{VERSION}-training-log.json", "w") as fh:
        json.dump(summary, fh, indent=1)
    if args.registry:
        write_registry(out, paths, summary, out / "registry.json")
    return summary


if __name__ == "__main__":
    main()
