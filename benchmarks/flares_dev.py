"""Development-star evaluation of flare CNN ensembles (the model card's decision rule).

    python benchmarks/flares_dev.py DATA_DIR --ensemble NAME=W0,W1,... [--ensemble ...]
        [--stella-models DIR] [--injection 200] [--out-json FILE]

Only the development stars of the training split are read (the training stars split
again: every fourth from the second, ordered by number of vetted real flares and sha256
of the TIC); held-out stars never. For each ensemble (weights files built into
``build_flare_cnn`` in code), at ``find_flares``' defaults (p >= 0.5, ``min_sigma=3``):

* recall of vetted real flares, isolated unmatched events per light curve (and the
  flare-like ones among them: at least 3 consecutive cadences above 3 sigma), echoes
  per light curve, events on rejected candidates
  (``astroml_affiliated.training.flares.dev_metrics``);
* injection-recovery into every development light curve (Davenport 2014 flares,
  ``--injection`` per light curve, amplitude 1-30 sigma, FWHM 2-40 min, log-uniform,
  seed = light-curve number, the same for every ensemble): recovered fraction at
  amplitude >= 5 sigma and FWHM >= 4 min, amplitude of 50% and 90% recovery, median ED
  ratio;
* seconds per light curve (events at p >= 0.5, preprocessing included) and, with
  ``--stella-models``, the ratio to stella's 10-model ensemble, all timed in this run,
  interleaved, 2 repeats, fastest kept.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from astroml_affiliated.training import flares as tr  # noqa: E402


def dev_files(data_dir):
    files, cands = tr.load_index(data_dir)
    files = tr.files_before_2026_12_06(files)  # 1.2.0's development stars
    train_tics, _ = tr.split_stars(files, cands)
    _, dev_tics = tr.split_dev(train_tics, files, cands)
    return [f for f in files if f["tic"] in set(dev_tics)], cands, dev_tics


def injection(data_dir, files, models, n):
    import lightkurve as lk
    from astropy.table import vstack

    from astroml_affiliated.flares import injection_recovery
    from flares_vs_peers import injection_summary

    tabs = []
    for k, rec in enumerate(files):
        t, f, e, _ = tr.load_lightcurve(data_dir, rec["file"])
        lc = lk.LightCurve(time=t, flux=f, flux_err=e)
        lc.time.format = "btjd"
        tabs.append(injection_recovery(lc, n_flares=n, finder="cnn", model=models, seed=k,
                                       amplitude_sigma=(1.0, 30.0),
                                       fwhm_minutes=(2.0, 40.0)))
    return injection_summary(vstack(tabs))


def timing(data_dir, files, ensembles, stella, repeats=2):
    from flares_vs_peers import _score, events_ours, stella_predict

    t0, f0, e0, _ = tr.load_lightcurve(data_dir, files[0]["file"])
    for models in ensembles.values():
        _score(models, t0[:3000], f0[:3000], e0[:3000])
    if stella:
        stella_predict(stella, t0[:3000], f0[:3000])
    secs = {name: [] for name in ensembles}
    if stella:
        secs["stella"] = []
    for rec in files:
        t, f, e, _ = tr.load_lightcurve(data_dir, rec["file"])
        best = {k: np.inf for k in secs}
        for _ in range(repeats):
            for name, models in ensembles.items():
                a = time.perf_counter()
                events_ours(models, t, f, e, [0.5])
                best[name] = min(best[name], time.perf_counter() - a)
            if stella:
                a = time.perf_counter()
                stella_predict(stella, t, f)
                best["stella"] = min(best["stella"], time.perf_counter() - a)
        for k in secs:
            secs[k].append(best[k])
    return {k: float(np.mean(v)) for k, v in secs.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--ensemble", action="append", required=True, metavar="NAME=W0,W1,...")
    ap.add_argument("--stella-models", default=None)
    ap.add_argument("--injection", type=int, default=200,
                    help="injected flares per development light curve")
    ap.add_argument("--out-json", default=None)
    args = ap.parse_args(argv)

    files, cands, dev_tics = dev_files(args.data_dir)
    ensembles = {}
    for item in args.ensemble:
        name, paths = item.split("=", 1)
        ensembles[name] = tr.load_members(paths.split(","))
    stella = None
    if args.stella_models:
        from flares_vs_peers import load_stella

        stella, _ = load_stella(args.stella_models)
    print(f"{len(files)} development light curves of {len(dev_tics)} stars: {dev_tics}")
    out = {"dev_tics": dev_tics, "n_lightcurves": len(files), "ensembles": {}}
    secs = timing(args.data_dir, files, ensembles, stella)
    out["seconds_per_lc"] = secs
    for name, models in ensembles.items():
        m = tr.dev_metrics(args.data_dir, files, cands, models)
        m["rule_false_alarms_per_lc"] = (m["isolated_per_lc"] - m["isolated_flarelike_per_lc"]
                                         + m["echo_per_lc"])
        m["members"] = len(models)
        m["injection"] = injection(args.data_dir, files, models, args.injection)
        m["seconds_per_lc"] = secs[name]
        if "stella" in secs:
            m["speed_ratio_vs_stella"] = secs["stella"] / secs[name]
        out["ensembles"][name] = m
        print(name, json.dumps(m, indent=1), flush=True)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
