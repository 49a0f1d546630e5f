"""Second opinion on the held-out flare benchmark: Günther et al. (2020) as an independent list.

    python benchmarks/flares_gunther_check.py DATA_DIR --stella-models DIR

The vetted table (``vetted_flares.csv``) comes from a sigma-clipping finder plus vetting
by eye, so flares that finder missed are unlabelled and an event on one of them counts as
a false alarm in ``flares_vs_peers.py``. Günther et al. 2020 (AJ 159, 60;
``gunther2020_flares_mrt.txt`` in DATA_DIR) catalogued the flares of TESS sectors 1-2
with a different pipeline and different people. Where the held-out light curves overlap
sectors 1-2, that catalogue is a list made by people other than the developers, with no
input from any of the finders compared here.

For every held-out light curve of sectors 1-2 (the same split as ``flares_vs_peers.py``;
nothing is trained or tuned here) the three finders run as in that benchmark and their
events are matched against

* the vetted table alone (the benchmark's rule: overlap within 3 cadences of a span);
* Günther's flares alone: a flare's span runs from its peak to its peak plus
  ``max(2 cadences, 3 x FWHM)``;
* the union of both lists (real vetted flares and Günther's flares).

It reports, per method, recall of each list and unmatched events per light curve,
isolated (more than 50 cadences from any entry) and echoes, against the vetted table and
against the union. Output: ``benchmarks/results/flares_gunther_check.json`` and a table
between the markers ``.. gunther-start`` / ``.. gunther-end`` of the flares model card.
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

import flares_vs_peers as fvp  # noqa: E402

from astroml_affiliated.flares import core  # noqa: E402
from astroml_affiliated.training import flares as tr  # noqa: E402

SECTORS = (1, 2)
BTJD_OFFSET = 2457000.0
# (method, threshold) rows of the table; None = the sigma-clipping finder's own rule
ROWS = (("ours", 0.5), ("ours", 0.85), ("stella", 0.5), ("stella", 0.99),
        ("sigma", None))
NAMES = {"ours": "flares-cnn (ours)", "stella": "stella, 10 models",
         "sigma": "sigma clipping (3/2/3)"}


def read_gunther(path):
    """Günther's flares as ``(tic, sector) -> list of (tpeak_btjd, fwhm_days)``."""
    from astropy.io import ascii

    tab = ascii.read(str(path), format="mrt")
    out = {}
    for tic, sec, tp, fw in zip(tab["TESS"], tab["sector"], tab["tpeak"], tab["FWHM"]):
        out.setdefault((int(tic), int(sec)), []).append(
            (float(tp) - BTJD_OFFSET, float(fw)))
    return out


def gunther_rows(flares, t, cad):
    """Günther's flares on one light curve as candidate rows (cadence numbers, real=1).

    Flares whose peak falls outside the light curve or in a gap of more than 3 cadences
    (removed cadences of our light curve) are left out and counted."""
    rows, outside = [], 0
    dt = tr.CADENCE
    for tp, fw in flares:
        i = int(np.searchsorted(t, tp))
        if i >= t.size or i == 0 or min(abs(t[i] - tp), abs(t[i - 1] - tp)) > 3 * dt:
            outside += 1
            continue
        i = i if abs(t[i] - tp) <= abs(t[i - 1] - tp) else i - 1
        j = int(np.searchsorted(t, tp + max(2 * dt, 3 * fw), "right")) - 1
        rows.append({"cstart": int(cad[i]), "cstop": int(cad[max(i, j)]),
                     "cpeak": int(cad[i]), "real": 1})
    return rows, outside


def overlap_count(rows_a, rows_b):
    """How many rows of ``rows_a`` overlap a row of ``rows_b`` within 3 cadences."""
    return sum(any(a["cstart"] <= b["cstop"] + 3 and a["cstop"] >= b["cstart"] - 3
                   for b in rows_b) for a in rows_a)


def _near(a, b, rows, cad, pad):
    """Whether source indices ``a..b`` overlap a row's span within ``pad`` cadences."""
    return any(a <= np.searchsorted(cad, r["cstop"]) + pad
               and b >= np.searchsorted(cad, r["cstart"]) - pad for r in rows)


def isolated_events(events, t, cad, z, listed, grows):
    """Events more than 50 cadences from every entry of ``listed`` (the vetted table),
    each with its peak time, peak sigma, whether it is flare-like (3 consecutive cadences
    above 3 sigma) and whether it overlaps one of Günther's flares."""
    out = []
    for a, b, pk in events:
        if _near(a, b, listed, cad, 50):
            continue
        out.append({"tpeak_btjd": round(float(t[pk]), 5),
                    "peak_sigma": round(float(z[a:b + 1].max()), 2),
                    "flare_like": bool(tr._has_run(z, a, b, 3.0, 3)),
                    "in_gunther": bool(_near(a, b, grows, cad, 3))})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--stella-models", required=True)
    ap.add_argument("--min-run", type=int, default=2)
    ap.add_argument("--out-json",
                    default=str(ROOT / "benchmarks" / "results" / "flares_gunther_check.json"))
    ap.add_argument("--card", default=str(ROOT / "docs" / "models" / "flares-cnn.rst"))
    args = ap.parse_args(argv)

    from astroml_affiliated.weights import load_models

    data_dir = Path(args.data_dir)
    gunther = read_gunther(data_dir / "gunther2020_flares_mrt.txt")
    cands, val_tics, val_files = fvp.held_out(data_dir)
    lcs = [f for f in val_files if f["sector"] in SECTORS]
    ours, info = load_models("flares-cnn", device="cpu")
    stella, _ = fvp.load_stella(args.stella_models)
    thresholds = sorted({th for m, th in ROWS if th is not None})
    per = {(m, th): {"vetted": [], "gunther": [], "union": []} for m, th in ROWS}
    lists, ours_isolated = [], []
    for rec in lcs:
        key = (rec["tic"], rec["sector"])
        t, f, e, cad = tr.load_lightcurve(data_dir, rec["file"])
        vetted = [r for r in cands.get(key, []) if r["real"] == 1]
        others = [r for r in cands.get(key, []) if r["real"] != 1]
        grows, outside = gunther_rows(gunther.get(key, []), t, cad)
        lists.append({"tic": rec["tic"], "sector": rec["sector"],
                      "vetted_real": len(vetted), "gunther": len(grows),
                      "gunther_outside_lc": outside,
                      "gunther_in_vetted": overlap_count(grows, vetted),
                      "vetted_in_gunther": overlap_count(vetted, grows)})
        segs = core.prepare(t, f, e, cadence=tr.CADENCE)
        z = np.zeros(t.size)
        for sg in segs:
            z[sg.index[sg.mask]] = sg.z[sg.mask]
        events = {}
        ev = fvp.events_ours(ours, t, f, e, thresholds, args.min_run)
        ev_st = fvp.events_from_prob(fvp.stella_predict(stella, t, f), f, thresholds,
                                     merge_gap=0)
        for th in thresholds:
            events[("ours", th)] = ev[th]
            events[("stella", th)] = ev_st[th]
        events[("sigma", None)] = [core.source_indices(s, *x) for s in segs
                                   for x in core.sigma_clip_finder(s)]
        ours_isolated += [dict(tic=key[0], sector=key[1], **x) for x in isolated_events(
            events[("ours", 0.5)], t, cad, z, cands.get(key, []), grows)]
        for k in per:
            # rejected/unvetted candidates stay in every list so that events on them are
            # never counted as isolated false alarms or as recall
            per[k]["vetted"].append(fvp.evaluate(events[k], cad, vetted + others, z))
            per[k]["gunther"].append(fvp.evaluate(events[k], cad, grows, z))
            per[k]["union"].append(fvp.evaluate(events[k], cad, vetted + grows + others, z))
        print(f"  TIC {key[0]} s{key[1]}: vetted {len(vetted)}, Günther {len(grows)} "
              f"(in vetted {lists[-1]['gunther_in_vetted']}); ours@0.5 iso "
              f"{per[('ours', 0.5)]['vetted'][-1]['isolated']} -> "
              f"{per[('ours', 0.5)]['union'][-1]['isolated']}", flush=True)
    summary = {f"{m}@{th}": {ref: fvp.summarise(v) for ref, v in d.items()}
               for (m, th), d in per.items()}
    result = {"light_curves": lists, "n_lightcurves": len(lcs), "summary": summary,
              "ours_isolated_events": ours_isolated,
              "model": info["model"], "version": info["version"], "min_run": args.min_run,
              "date": time.strftime("%Y-%m-%d")}
    Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out_json).write_text(json.dumps(result, indent=1))
    write_card(args.card, result)
    for k, d in summary.items():
        print(f"{k:12s} vetted: recall {d['vetted']['recall']:.3f} iso/LC "
              f"{d['vetted']['isolated_per_lc']:.2f} | Günther recall "
              f"{d['gunther']['recall']:.3f} | union: recall {d['union']['recall']:.3f} "
              f"iso/LC {d['union']['isolated_per_lc']:.2f} echo/LC "
              f"{d['union']['echo_per_lc']:.2f}")
    return result


def write_card(card, r):
    s = r["summary"]
    ls = r["light_curves"]
    n_v = sum(x["vetted_real"] for x in ls)
    n_g = sum(x["gunther"] for x in ls)
    names = ", ".join(f"TIC {x['tic']} s{x['sector']}" for x in ls)
    lines = [".. gunther-start", "",
             f"Second opinion (run {r['date']}, ``benchmarks/flares_gunther_check.py``): "
             f"the {r['n_lightcurves']} held-out light curves of sectors 1-2 "
             f"({names}) checked "
             "against the Günther et al. (2020) catalogue as well as the vetted table. "
             f"The vetted table has {n_v} real flares on them, Günther {n_g}; "
             f"{sum(x['gunther_in_vetted'] for x in ls)} of Günther's flares overlap a "
             f"vetted real flare and {sum(x['vetted_in_gunther'] for x in ls)} of the "
             "vetted ones overlap one of Günther's "
             f"({sum(x['gunther_outside_lc'] for x in ls)} of Günther's peaks fall outside "
             "our light curves' cadences). Same finders, thresholds and matching rule as "
             "the benchmark above; \"union\" counts an event on either list as matched.",
             "", ".. list-table::", "   :header-rows: 1", "",
             "   * - method", "     - threshold", "     - recall, vetted",
             "     - recall, Günther", "     - isolated / LC, vetted table",
             "     - isolated / LC, union", "     - of which flare-like",
             "     - echoes / LC, union"]
    for m, th in ROWS:
        d = s[f"{m}@{th}"]
        v, g, u = d["vetted"], d["gunther"], d["union"]
        lines += [f"   * - {NAMES[m]}", f"     - {th if th is not None else '-'}",
                  f"     - {v['recall']:.3f} ({v['recovered']}/{v['n_real']})",
                  f"     - {g['recall']:.3f} ({g['recovered']}/{g['n_real']})",
                  f"     - {v['isolated_per_lc']:.2f}", f"     - {u['isolated_per_lc']:.2f}",
                  f"     - {u['isolated_flarelike_per_lc']:.2f}",
                  f"     - {u['echo_per_lc']:.2f}"]
    iso = r["ours_isolated_events"]
    fl = [x for x in iso if x["flare_like"]]
    nfl = [x for x in iso if not x["flare_like"]]
    lines += ["", f"Our {len(iso)} isolated events at p >= 0.5 on these light curves (against "
              f"the vetted table): {sum(x['in_gunther'] for x in fl)} of the {len(fl)} "
              "flare-like ones and "
              f"{sum(x['in_gunther'] for x in nfl)} of the {len(nfl)} others are flares in "
              "Günther's catalogue (listed with peak time and peak sigma in "
              "``benchmarks/results/flares_gunther_check.json``).", "", ".. gunther-end"]
    block = "\n".join(lines)
    card = Path(card)
    text = card.read_text()
    if ".. gunther-start" not in text:
        text = text.replace(".. benchmark-end", ".. benchmark-end\n\n.. gunther-start\n"
                            ".. gunther-end", 1)
    a = text.index(".. gunther-start")
    b = text.index(".. gunther-end") + len(".. gunther-end")
    card.write_text(text[:a] + block + text[b:])


if __name__ == "__main__":
    main()
