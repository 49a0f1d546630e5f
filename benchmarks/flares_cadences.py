"""Benchmark per cadence: the flare CNN against sigma clipping (and stella at 2 min),
on the fresh validation stars of 1.3.0 and the old held-out stars of 1.2.0.

    python benchmarks/flares_cadences.py DATA_DIR [--stella-models DIR]
        [--ours FILE ...] [--legacy FILE ...] [--injection N] [--injection-lcs K]

This extends ``flares_vs_peers.py`` (same matching rule, same ``evaluate`` counts) to
every cadence the package supports. ``--ours`` defaults to the registry's
``flares-cnn``; ``--legacy`` to the 1.2.0 weights files in ``weights/`` (2 min only).
``DIR`` holds stella's 10 published models (see ``flares_vs_peers.py``).

* 2 min: the validation light curves as they are. Ours, 1.2.0, sigma clipping
  (AltaiPony's N1=3, N2=2, N3=3; N3=2 beside it) and stella (10 models, p >= 0.5).
* 200 s, 10 min, 30 min: the same light curves binned by integrating the flux over each
  exposure (``core.bin_exposures``). A vetted flare counts (is "detectable") if a binned
  cadence overlapping its span is >= 3 sigma above the trend (the model card's rule);
  events on the others count as matched but they are not in recall's denominator.
  The 2-min matching margins (3 cadences; echoes within 50) are scaled to the same
  time at each cadence (at least 1 and 3 cadences).
* ``long_cadence/``: the real Kepler and K2 30-min light curves (no labels), read with
  ``lightkurve.read``: events per light curve of each finder.
* ``--injection N``: injection-recovery at each cadence on the first ``K`` validation
  light curves (``injection_recovery``, Davenport template integrated over each
  exposure, amplitude 1-50 sigma of the cadence's own scatter, FWHM 2-60 min): the 50%
  recovery amplitude of ours and of sigma clipping, and, for ours, the median ratio of
  recovered to injected equivalent duration and amplitude and the median peak-time
  offset.

Results: ``benchmarks/results/flares_cadences.json`` and a printed table.
"""

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from astroml_affiliated.flares import core  # noqa: E402
from astroml_affiliated.training import flares as tr  # noqa: E402

CADENCES = (120.0, 200.0, 600.0, 1800.0)
#: star classes of the model card's rule (validation stars)
CLASSES = {
    "bright fast rotators": (29928567, 272349442),
    "faint": (2470992, 77842052, 117733072, 220429097, 284678097, 328254412),
    "very active": (29928567, 272349442, 328254412),
    "other": (140478472, 396862832, 73118477, 143029977, 401945077),
}


def events_cnn(models, t, f, e, cadence_s, threshold=0.5):
    """Events ``(a, b, peak)`` (indices into ``t``) with find_flares' default rule."""
    from astroml_affiliated.flares._high_level import _default_rule, _score_arrays

    segs, means, _ = _score_arrays(t, f, e, cadence_s / 86400.0, models)
    min_run, min_len = _default_rule(cadence_s, None)
    out = []
    for seg, pm in zip(segs, means):
        out += [core.source_indices(seg, *ev) for ev in core.segment_events(
            seg, pm, threshold, min_run=min_run, min_len=min_len)]
    return out


def events_sigma(segs, n3=3):
    return [core.source_indices(s, *x) for s in segs for x in core.sigma_clip_finder(s, n3=n3)]


def evaluate_spans(events, spans, cadence_s):
    """Counts for one finder on one light curve; ``spans``: ``(a, b, real, detectable)``
    with ``b`` exclusive."""
    scale = 120.0 / cadence_s
    margin = max(1, int(round(3 * scale)))
    echo = max(3, int(round(50 * scale)))
    real = [(a, b - 1) for a, b, r, d in spans if r == 1 and d]
    hit = np.zeros(len(real), int)
    iso = ech = 0
    for a, b, _ in events:
        matched = False
        for k, (ca, cb) in enumerate(real):
            if a <= cb + margin and b >= ca - margin:
                hit[k] += 1
                matched = True
        for ca, cb1, r, d in spans:
            if a <= cb1 - 1 + margin and b >= ca - margin:
                matched = True
        if not matched:
            if any(a <= cb1 - 1 + echo and b >= ca - echo for ca, cb1, _, _ in spans):
                ech += 1
            else:
                iso += 1
    return {"n_real": len(real), "recovered": int((hit > 0).sum()), "isolated": iso,
            "echo": ech, "n_events": len(events),
            "hits": [bool(h) for h in hit]}


def total(per):
    n = max(1, len(per))
    nr = sum(d["n_real"] for d in per)
    rc = sum(d["recovered"] for d in per)
    return {"recall": rc / max(1, nr), "recovered": rc, "n_real": nr,
            "isolated_per_lc": sum(d["isolated"] for d in per) / n,
            "echo_per_lc": sum(d["echo"] for d in per) / n,
            "events_per_lc": sum(d["n_events"] for d in per) / n, "n_lightcurves": len(per)}


def run_set(name, files, cands, data_dir, finders, stella=None, log=print):
    """Per cadence and finder: per-light-curve counts (and per-star for the classes)."""
    res = {c: {k: [] for k in finders} for c in CADENCES}
    stars = {c: {k: {} for k in finders} for c in CADENCES}
    secs = {"ours": [], "stella": []}
    if stella is not None:
        res[120.0]["stella"] = []
        stars[120.0]["stella"] = {}
    for rec in files:
        t, f, e, cad = tr.load_lightcurve(data_dir, rec["file"])
        rows = cands.get((rec["tic"], rec["sector"]), [])
        for c, tb, fb, eb in tr.binned_versions(t, f, e, CADENCES):
            segs = tr.prepare_at(tb, fb, eb, c)
            z = np.zeros(tb.size)
            for s in segs:
                z[s.index[s.mask]] = s.z[s.mask]
            sp = tr.vetted_spans(rows, tb, c, cad if c == 120.0 else None)
            spans = [(a, b, r["real"], tr.detectable(z, a, b) if c != 120.0 else True)
                     for r, (a, b) in zip(rows, sp)]
            evs = {}
            for k, fin in finders.items():
                if fin[0] == "cnn":
                    if c != 120.0 and not fin[2]:
                        continue
                    a0 = time.perf_counter()
                    evs[k] = events_cnn(fin[1], tb, fb, eb, c)
                    if k == "ours" and c == 120.0:
                        secs["ours"].append(time.perf_counter() - a0)
                else:
                    evs[k] = events_sigma(segs, n3=fin[1])
            if c == 120.0 and stella is not None:
                from flares_vs_peers import events_from_prob, stella_predict

                a0 = time.perf_counter()
                prob = stella_predict(stella, tb, fb)
                secs["stella"].append(time.perf_counter() - a0)
                evs["stella"] = events_from_prob(prob, fb, [0.5], merge_gap=0)[0.5]
            for k, ev in evs.items():
                r = evaluate_spans(ev, spans, c)
                res[c][k].append(r)
                st = stars[c][k].setdefault(rec["tic"], [0, 0])
                st[0] += r["recovered"]
                st[1] += r["n_real"]
        o = res[120.0]["ours"][-1]
        log(f"  {name} TIC {rec['tic']} s{rec['sector']}: real {o['n_real']} ours "
            f"{o['recovered']} iso {o['isolated']} | 30 min: ours "
            f"{res[1800.0]['ours'][-1]['recovered']}/{res[1800.0]['ours'][-1]['n_real']} "
            f"sigma {res[1800.0]['sigma3'][-1]['recovered']}", flush=True)
    summary = {str(int(c)): {k: total(v) for k, v in d.items() if v} for c, d in res.items()}
    classes = {}
    for c in CADENCES:
        for k, per_star in stars[c].items():
            for cname, tics in CLASSES.items():
                rc = sum(per_star.get(t, [0, 0])[0] for t in tics)
                nr = sum(per_star.get(t, [0, 0])[1] for t in tics)
                if nr:
                    classes.setdefault(str(int(c)), {}).setdefault(k, {})[cname] = \
                        [rc, nr, rc / nr]
    per_star = {str(int(c)): {k: {str(t): v for t, v in d.items()}
                              for k, d in stars[c].items()} for c in CADENCES}
    return {"summary": summary, "classes": classes, "per_star": per_star,
            "seconds_per_lc": {k: float(np.mean(v)) for k, v in secs.items() if v}}


def long_cadence(data_dir, models):
    """Events per real Kepler/K2 long-cadence light curve (no labels)."""
    import lightkurve as lk

    from astroml_affiliated.flares import find_flares

    out = []
    for p in sorted(glob.glob(str(Path(data_dir) / "long_cadence" / "*.fits"))):
        lc = lk.read(p)
        tab = find_flares(lc, model=models)
        t = np.asarray(lc.time.value, dtype=float)
        f = np.asarray(lc.flux.value, dtype=float)
        e = np.asarray(lc.flux_err.value, dtype=float)
        ok = np.isfinite(t) & np.isfinite(f)
        cad = float(np.median(np.diff(t[ok]))) * 86400
        segs = tr.prepare_at(t[ok], f[ok], e[ok], 1800.0)
        out.append({"file": Path(p).name, "cadence_s": round(cad, 1),
                    "n_cadences": int(ok.sum()), "ours": len(tab),
                    "ours_tpeak": [round(float(x), 4) for x in tab["tpeak"].value],
                    "sigma3": len(events_sigma(segs, 3)), "sigma2": len(events_sigma(segs, 2))})
        print(f"  {out[-1]}", flush=True)
    return out


def injection(data_dir, files, models, n, seed=0):
    """Injection-recovery per cadence (ours and sigma clipping)."""
    import lightkurve as lk
    from astropy.time import Time

    from astroml_affiliated.flares import amplitude_at_recovery, injection_recovery

    out = {}
    for c in CADENCES:
        tabs = {"ours": [], "sigma": []}
        for rec in files:
            t, f, e, _ = tr.load_lightcurve(data_dir, rec["file"])
            for cc, tb, fb, eb in tr.binned_versions(t, f, e, (c,)):
                lc = lk.LightCurve(time=Time(tb, format="btjd", scale="tdb"), flux=fb,
                                   flux_err=eb)
                per_round = max(5, min(20, n // 5))
                for k, finder in (("ours", "cnn"), ("sigma", "sigma")):
                    tabs[k].append(injection_recovery(
                        lc, n_flares=n, per_round=per_round, amplitude_sigma=(1.0, 50.0),
                        fwhm_minutes=(2.0, 60.0), finder=finder, model=models,
                        seed=seed + rec["tic"] % 1000))
        from astropy.table import vstack

        res = {}
        for k, ts in tabs.items():
            tab = vstack(ts)
            rec_ = np.asarray(tab["recovered"])
            res[k] = {"n": len(tab), "recovered": float(rec_.mean()),
                      "a50_sigma": float(amplitude_at_recovery(tab, 0.5)),
                      "ed_ratio_median": float(np.nanmedian(np.asarray(tab["ed_ratio"])[rec_])),
                      "amplitude_ratio_median": float(np.nanmedian(
                          np.asarray(tab["amplitude_recovered"])[rec_]
                          / np.asarray(tab["amplitude"])[rec_])),
                      "tpeak_offset_median_min": float(np.nanmedian(
                          np.asarray(tab["tpeak_offset"].value)[rec_])),
                      "tpeak_offset_mad_min": float(1.4826 * np.nanmedian(np.abs(
                          np.asarray(tab["tpeak_offset"].value)[rec_]
                          - np.nanmedian(np.asarray(tab["tpeak_offset"].value)[rec_]))))}
        out[str(int(c))] = res
        print(f"  injection {int(c)} s: {res}", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--ours", nargs="+", default=None, metavar="FILE")
    ap.add_argument("--legacy", nargs="+", default=None, metavar="FILE")
    ap.add_argument("--stella-models", default=None)
    ap.add_argument("--sets", nargs="+", default=["validation", "old_heldout"],
                    choices=["validation", "old_heldout", "debug"])
    ap.add_argument("--injection", type=int, default=0)
    ap.add_argument("--injection-lcs", type=int, default=6)
    ap.add_argument("--out-json",
                    default=str(ROOT / "benchmarks" / "results" / "flares_cadences.json"))
    args = ap.parse_args(argv)

    from astroml_affiliated.weights import load_models

    if args.ours:
        ours = tr.load_members(args.ours)
        ours_name = [Path(p).name for p in args.ours]
    else:
        ours, info = load_models("flares-cnn", device="cpu")
        ours_name = f"{info['model']} {info['version']}"
    legacy_paths = args.legacy or sorted(glob.glob(str(ROOT / "weights" /
                                                       "flares-cnn-1.2.0-m*.weights.h5")))
    legacy = tr.load_members(legacy_paths)
    stella = None
    if args.stella_models:
        from flares_vs_peers import load_stella

        stella, _ = load_stella(args.stella_models)
    files, cands = tr.load_index(args.data_dir)
    train, val, old = tr.split_v13(files)
    # "debug": 3 training stars, to check the script without looking at held-out stars
    sets = {"validation": val, "old_heldout": old, "debug": train[:3]}
    finders = {"ours": ("cnn", ours, True), "v1.2.0": ("cnn", legacy, False),
               "sigma3": ("sigma", 3), "sigma2": ("sigma", 2)}
    result = {"ours": ours_name, "legacy": [Path(p).name for p in legacy_paths],
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    # warm-up outside the timings
    t0, f0, e0, _ = tr.load_lightcurve(args.data_dir, files[0]["file"])
    events_cnn(ours, t0[:3000], f0[:3000], e0[:3000], 120.0)
    for name in args.sets:
        fl = [f for f in files if f["tic"] in set(sets[name])]
        result[name] = run_set(name, fl, cands, args.data_dir, finders,
                               stella if name != "old_heldout" else None)
        print(json.dumps({name: result[name]["summary"]}, indent=1), flush=True)
        print(json.dumps({name: result[name]["classes"]}, indent=1), flush=True)
    result["long_cadence"] = long_cadence(args.data_dir, ours)
    if args.injection:
        inj = train[:3] if args.sets == ["debug"] else val
        fl = [f for f in files if f["tic"] in set(inj)][:args.injection_lcs]
        result["injection"] = injection(args.data_dir, fl, ours, args.injection)
    Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out_json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
