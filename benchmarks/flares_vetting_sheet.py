"""A vetting sheet of our unmatched events on the held-out stars, for people to judge.

    python benchmarks/flares_vetting_sheet.py DATA_DIR [--out DIR] [--threshold 0.5]

For the validation (held-out) light curves of ``DATA_DIR`` that
``benchmarks/flares_vs_peers.py`` reads, with the event rule of its "flares-cnn (ours)"
row (``events_ours``: ``find_flares``' defaults, ``min_sigma=3``, ``--min-run`` 2), every
event that matches no candidate of ``vetted_flares.csv`` (the benchmark's ``evaluate``:
no overlap within 3 cadences with a real, rejected or unvetted candidate) is listed,
isolated ones and echoes (within 50 cadences of a candidate) alike. Written into ``DIR``
(default ``benchmarks/results/vetting/``):

* ``flares_unvetted_events.csv``, one row per event: ``file``, ``tic``, ``sector``,
  ``event_id``, ``kind`` (isolated / echo), ``flare_like`` (at least 3 consecutive
  cadences above 3 sigma of the detrended flux within the event +- 2 cadences, the
  benchmark's criterion), ``tpeak_btjd``, ``tstart_btjd``, ``tstop_btjd`` (the event's
  first and last cadence above the threshold), ``cpeak``, ``cstart``, ``cstop``
  (cadence numbers), ``amplitude`` (relative, as ``find_flares`` measures it),
  ``peak_sigma`` (detrended flux at the peak in units of the local scatter),
  ``longest_run_3sigma`` (longest run of consecutive cadences above 3 sigma within the
  event +- 2 cadences), ``prob_peak`` (ensemble-mean probability at the peak cadence),
  ``prob_max`` (its maximum over the event, ``find_flares``' ``prob``) and an empty
  ``verdict`` column for the vetters: ``1`` a real flare, ``-1`` not a flare, blank
  undecided;
* ``<light-curve file stem>.png`` for each light curve with such events: one panel per
  event, relative flux within +- 60 cadences of the peak, the event span shaded, the
  running-median trend and the trend + 3 sigma level of the detrended flux drawn, nearby
  vetted candidates shaded in grey.

A filled copy of the CSV goes back into the benchmark with ``--revetted FILE``. The
sheet is for people other than the developers; nothing (threshold, rule, training) is
tuned on it.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from astroml_affiliated.flares import core  # noqa: E402
from astroml_affiliated.training import flares as tr  # noqa: E402
from flares_vs_peers import _score, evaluate, events_ours, held_out  # noqa: E402

COLUMNS = ["file", "tic", "sector", "event_id", "kind", "flare_like", "tpeak_btjd",
           "tstart_btjd", "tstop_btjd", "cpeak", "cstart", "cstop", "amplitude",
           "peak_sigma", "longest_run_3sigma", "prob_peak", "prob_max", "verdict"]
HALF_WINDOW = 60  # cadences either side of the peak in the figures


def _grid_lookup(segs, n):
    """For each source index: its segment number and grid cell (-1 where not scored)."""
    seg_of = np.full(n, -1, dtype=np.int64)
    cell_of = np.full(n, -1, dtype=np.int64)
    for k, seg in enumerate(segs):
        cells = np.flatnonzero(seg.mask)
        seg_of[seg.index[cells]] = k
        cell_of[seg.index[cells]] = cells
    return seg_of, cell_of


def lightcurve_events(models, data_dir, rec, rows, threshold, min_run):
    """Our unmatched events on one light curve (dicts with the sheet's columns, less
    ``event_id``), and the arrays the figures need."""
    t, f, e, cad = tr.load_lightcurve(data_dir, rec["file"])
    events = events_ours(models, t, f, e, [threshold], min_run)[threshold]
    segs, means, _ = _score(models, t, f, e)
    z = np.zeros(t.size)
    for sg in segs:
        z[sg.index[sg.mask]] = sg.z[sg.mask]
    seg_of, cell_of = _grid_lookup(segs, t.size)
    total = evaluate(events, cad, rows, z)
    out = []
    for a, b, pk in events:
        one = evaluate([(a, b, pk)], cad, rows, z)
        if one["echo"] + one["isolated"] == 0:
            continue
        k = seg_of[pk]
        seg, pm = segs[k], means[k]
        ga, gb, gp = cell_of[a], cell_of[b], cell_of[pk]
        ampl = core.event_properties(seg, min(ga, gp), max(gb, gp), gp,
                                     tr.CADENCE * 86400.0)[2]
        run = core.longest_run(z[max(0, a - 2):b + 3] > 3.0)
        out.append({"file": rec["file"], "tic": rec["tic"], "sector": rec["sector"],
                    "kind": "echo" if one["echo"] else "isolated",
                    "flare_like": bool(tr._has_run(z, a, b, 3.0, 3)),
                    "tpeak_btjd": f"{t[pk]:.6f}", "tstart_btjd": f"{t[a]:.6f}",
                    "tstop_btjd": f"{t[b]:.6f}", "cpeak": int(cad[pk]),
                    "cstart": int(cad[a]), "cstop": int(cad[b]),
                    "amplitude": f"{ampl:.5g}", "peak_sigma": f"{z[pk]:.2f}",
                    "longest_run_3sigma": run, "prob_peak": f"{pm[gp]:.3f}",
                    "prob_max": f"{pm[min(ga, gp):max(gb, gp) + 1].max():.3f}",
                    "verdict": "", "_span": (a, b, pk)})
    # the per-event split must add up to the benchmark's counts for the light curve
    assert sum(r["kind"] == "isolated" for r in out) == total["isolated"]
    assert sum(r["kind"] == "echo" for r in out) == total["echo"]
    assert sum(r["kind"] == "isolated" and r["flare_like"] for r in out) == \
        total["isolated_flarelike"]
    return out, (t, f, cad, segs)


def plot_lightcurve(path, rec, events, arrays, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, f, cad, segs = arrays
    level = float(np.median(f))
    half = HALF_WINDOW * tr.CADENCE
    ncol = min(4, len(events))
    nrow = -(-len(events) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(3.6 * ncol, 7.5), 2.9 * nrow + 0.4),
                             squeeze=False)
    for ax, ev in zip(axes.ravel(), events):
        a, b, pk = ev["_span"]
        t0 = t[pk]
        sel = np.abs(t - t0) <= half
        x = (t[sel] - t0) * 1440.0
        y = f[sel] / level
        ax.plot(x, y, ".-", color="k", lw=0.6, ms=2.5)
        # y range: the event (+- 2 cadences) and the bulk of the window, so that a far
        # larger excursion elsewhere in the panel does not flatten the event
        ev_y = f[max(0, a - 2):b + 3] / level
        mid, sd = np.median(y), core.robust_std(y)
        lo, hi = min(mid - 5 * sd, ev_y.min()), max(mid + 5 * sd, ev_y.max())
        lo, hi = max(y.min(), lo - 0.5 * (hi - lo)), min(y.max(), hi + 0.5 * (hi - lo))
        clipped = y.min() < lo or y.max() > hi
        ax.set_ylim(lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo))
        if clipped:
            ax.text(0.02, 0.96, "y clipped", transform=ax.transAxes, fontsize=6,
                    va="top", color="0.4")
        for seg in segs:
            g = np.abs(seg.time - t0) <= half
            if g.any():
                xs = (seg.time[g] - t0) * 1440.0
                ax.plot(xs, seg.trend[g] / level, color="tab:blue", lw=0.8)
                ax.plot(xs, (seg.trend[g] + 3 * seg.scatter[g]) / level, "--",
                        color="tab:red", lw=0.8)
        pad = tr.CADENCE / 2
        ax.axvspan((t[a] - pad - t0) * 1440.0, (t[b] + pad - t0) * 1440.0,
                   color="tab:orange", alpha=0.3, lw=0)
        for r in rows:
            ca = np.searchsorted(cad, r["cstart"])
            cb = np.searchsorted(cad, r["cstop"], "right") - 1
            if ca >= cad.size or cb < ca:
                continue
            ta, tb = t[ca] - pad - t0, t[cb] + pad - t0
            if tb >= -half and ta <= half:
                ax.axvspan(ta * 1440.0, tb * 1440.0, color="0.6", alpha=0.35, lw=0)
        ax.set_xlim(-half * 1440.0, half * 1440.0)
        ax.set_title(f"{ev['event_id']}  BTJD {t0:.4f}\n{ev['kind']}, "
                     f"flare_like={ev['flare_like']}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("minutes from peak", fontsize=7)
        ax.set_ylabel("flux / median", fontsize=7)
    for ax in axes.ravel()[len(events):]:
        ax.set_visible(False)
    fig.suptitle(f"TIC {rec['tic']} sector {rec['sector']}: unmatched flares-cnn events\n"
                 "orange: event span, blue: trend, red dashed: trend + 3 sigma, grey: "
                 "vetted candidates", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vetting"))
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--min-run", type=int, default=2,
                    help="our event rule, as the benchmark's --min-run")
    ap.add_argument("--max-lcs", type=int, default=0, help="debug: first N light curves")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)

    from astroml_affiliated.weights import load_models

    cands, val_tics, val_files = held_out(args.data_dir, args.max_lcs)
    models, info = load_models("flares-cnn", device="cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(val_files)} held-out light curves of {len(val_tics)} stars; "
          f"{info['model']} {info['version']}, threshold {args.threshold}, "
          f"min_run {args.min_run}")
    sheet = []
    for rec in val_files:
        rows = cands.get((rec["tic"], rec["sector"]), [])
        events, arrays = lightcurve_events(models, args.data_dir, rec, rows,
                                           args.threshold, args.min_run)
        for k, ev in enumerate(events, 1):
            ev["event_id"] = f"TIC{rec['tic']}-S{rec['sector']:02d}-{k:02d}"
        if events and not args.no_plots:
            plot_lightcurve(out / (Path(rec["file"]).stem + ".png"), rec, events, arrays,
                            rows)
        print(f"  TIC {rec['tic']} s{rec['sector']}: {len(events)} unmatched "
              f"({sum(ev['kind'] == 'isolated' for ev in events)} isolated)", flush=True)
        sheet += events
    path = out / "flares_unvetted_events.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(sheet)

    n = len(val_files)
    counts = {}
    for kind in ("isolated", "echo"):
        sub = [ev for ev in sheet if ev["kind"] == kind]
        counts[kind] = (len(sub), sum(ev["flare_like"] for ev in sub))
    print(f"wrote {path} ({len(sheet)} events) over {n} light curves:")
    for kind, (m, fl) in counts.items():
        print(f"  {kind}: {m} ({m / n:.2f} per LC), flare-like {fl} ({fl / n:.2f} per LC)")
    bench = ROOT / "benchmarks" / "flares_vs_peers.json"
    if bench.exists():
        r = json.loads(bench.read_text())
        s = r["summary"]["ours"].get(str(args.threshold))
        if s is not None and r.get("min_run") == args.min_run:
            ours = (counts["isolated"][0] / n, counts["isolated"][1] / n, counts["echo"][0] / n)
            theirs = (s["isolated_per_lc"], s["isolated_flarelike_per_lc"], s["echo_per_lc"])
            same = np.allclose(ours, theirs, rtol=0, atol=1e-9)
            verdict = ("not compared (not the same light curves)"
                       if n != r["n_lightcurves"] else "same" if same else "DIFFERENT")
            print(f"benchmark ({bench.name}, {r['n_lightcurves']} LCs): isolated "
                  f"{theirs[0]:.2f}, flare-like {theirs[1]:.2f}, echoes {theirs[2]:.2f} "
                  f"per LC -> {verdict}")
    return sheet


if __name__ == "__main__":
    main()
