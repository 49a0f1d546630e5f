"""Train the flare CNN ensemble: ``python -m astroml_affiliated.training.flares DATA_DIR``.

``DATA_DIR`` holds ``lc/*.fits`` (TESS 2-min light curves), ``lc_index.csv`` and
``vetted_flares.csv`` (see the project's data README). The run is seeded and writes
``flares-cnn-1.2.0-m{k}.weights.h5`` and the registry entry into ``--out`` (``weights/``).

Version 1.2.0 is trained in two rounds (hard-negative mining), both in this one command:

1. a first-round ensemble (the 1.0.0 recipe, ``--members`` members) is trained on the
   training stars and scores them (``--mine-with FILE...`` uses given weights files
   instead; that is for experiments only: the released 1.1.0 was mined with the 1.0.0
   weights from git history, 1.2.0 is not);
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
import csv
import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..flares import core

__all__ = ["load_index", "split_stars", "split_dev", "load_lightcurve", "mine_hard_negatives",
           "dev_metrics", "load_members", "main"]

CADENCE = 2.0 / 60 / 24  # days
WINDOW = 200
VERSION = "1.2.0"
NAME = "flares-cnn"


# --------------------------------------------------------------------------------------
# data helpers (also used by benchmarks/flares_vs_peers.py)


def load_index(data_dir):
    """Light curves (newest file per star and sector) and vetted candidates.

    Returns
    -------
    files : list of dict
        ``file``, ``tic``, ``sector`` per light curve.
    cands : dict
        ``(tic, sector)`` -> list of dict with ``cstart``, ``cstop``, ``cpeak`` (cadence
        numbers) and ``real`` (1, -1 or 0 for unvetted).
    """
    data_dir = Path(data_dir)
    newest = {}
    with open(data_dir / "lc_index.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            key = (int(row["tic"]), int(row["sector"]))
            stamp = row["file"].split("_")[1].split("-")[0]
            if key not in newest or stamp > newest[key][0]:
                newest[key] = (stamp, row["file"])
    files = [{"file": f, "tic": k[0], "sector": k[1]} for k, (_, f) in sorted(newest.items())]
    cands = defaultdict(list)
    with open(data_dir / "vetted_flares.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            real = row["real"].strip()
            cands[(int(row["TIC"]), int(row["sector"]))].append({
                "cstart": int(row["cstart"]), "cstop": int(row["cstop"]),
                "cpeak": int(row["cpeak"]), "tpeak": float(row["tpeak_btjd"]),
                "real": int(float(real)) if real else 0})
    return files, dict(cands)


def split_stars(files, cands):
    """``(train_tics, validation_tics)``: every 4th star from the 2nd, ordered by
    (number of vetted real flares, sha256 of the TIC)."""
    nreal = Counter()
    for (tic, _), rows in cands.items():
        nreal[tic] += sum(r["real"] == 1 for r in rows)
    tics = sorted({f["tic"] for f in files},
                  key=lambda t: (nreal[t], hashlib.sha256(str(t).encode()).hexdigest()))
    val = set(tics[1::4])
    return sorted(set(tics) - val), sorted(val)


def split_dev(train_tics, files, cands):
    """``(fit_tics, dev_tics)``: the training stars split again by the same rule."""
    sub = [f for f in files if f["tic"] in set(train_tics)]
    return split_stars(sub, cands)


def load_lightcurve(data_dir, fname):
    """``time, flux, flux_err, cadenceno`` arrays of one light curve (finite, QUALITY 0)."""
    from astropy.io import fits

    with fits.open(Path(data_dir) / "lc" / fname) as hdul:
        d = hdul[1].data
        t = np.array(d["TIME"], dtype=float)
        f = np.array(d["FLUX"], dtype=float)
        e = np.array(d["FLUX_ERR"], dtype=float)
        c = np.array(d["CADENCENO"], dtype=np.int64)
        q = np.array(d["QUALITY"], dtype=np.int64)
    good = np.isfinite(t) & np.isfinite(f) & (q == 0)
    return t[good], f[good], e[good], c[good]


def excursions(z, mask, *, nsig=3.0, nmin=3):
    """Runs of at least ``nmin`` consecutive cells with ``z > nsig`` (start, stop)."""
    hi = (z > nsig) & mask
    idx = np.flatnonzero(hi)
    if idx.size == 0:
        return []
    out = []
    for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
        if run.size >= nmin:
            out.append((int(run[0]), int(run[-1])))
    return out


# --------------------------------------------------------------------------------------
# one augmented copy of a light curve, with labels


def _labels_for(t, f, e, cad, cand_rows, rng, *, inject=True, n_per=400, hard=(),
                hard_weight=2.0):
    """Inject events into one light curve; return prepared segments with y and w."""
    n = t.size
    y = np.zeros(n, dtype="float32")
    w = np.ones(n, dtype="float32")
    f = f.copy()

    def span(c0, c1):
        i0 = np.searchsorted(cad, c0)
        i1 = np.searchsorted(cad, c1, side="right")
        return max(i0, 0), min(i1, n)

    # clean preprocessing: unlabelled excursions, injection scale
    segs = core.prepare(t, f, e, cadence=CADENCE)
    trend = np.full(n, np.nan)
    scatter = np.full(n, np.nan)
    zc = np.zeros(n)
    seg_bounds = []
    for s in segs:
        m = s.mask
        trend[s.index[m]] = s.trend[m]
        scatter[s.index[m]] = s.scatter[m]
        zc[s.index[m]] = s.z[m]
        seg_bounds.append((int(s.index[m][0]), int(s.index[m][-1])))
    busy = np.zeros(n, dtype=bool)  # no injection near these
    for r in cand_rows:
        a, b = span(r["cstart"], r["cstop"])
        if r["real"] == 1:
            y[a:b] = 1
            w[a:b] = 3.0
            w[max(0, a - 2):a] = 0
            w[b:b + 5] = 0
        elif r["real"] == -1:
            w[max(0, a - 3):b + 3] = 5.0
        else:
            w[max(0, a - 5):b + 20] = 0
        busy[max(0, a - 100):b + 150] = True
    covered = busy.copy()
    for a, b in excursions(zc, np.ones(n, bool)):
        if not covered[a:b + 1].any():
            w[max(0, a - 5):b + 25] = 0
        busy[max(0, a - 100):b + 150] = True
    for a, b in hard:  # mined false alarms (indices into t): up-weighted negatives
        sl = slice(max(0, a - 3), b + 4)
        w[sl] = np.where(w[sl] > 0, np.maximum(w[sl], hard_weight), 0.0)
        busy[max(0, a - 100):b + 150] = True
    events = []  # (kind, index) for crop centres
    for r in cand_rows:
        a, b = span(r["cstart"], r["cstop"])
        if a < n:
            events.append(("real" if r["real"] == 1 else "rej" if r["real"] == -1 else "unv",
                           a))
    for a, b in hard:
        events.append(("hard", (a + b) // 2))
    if inject:
        n_inj = max(1, n // n_per)
        # candidate positions: random, plus some at segment edges
        tries = 0
        placed = 0
        while placed < n_inj and tries < 20 * n_inj:
            tries += 1
            if rng.random() < 0.15 and seg_bounds:
                s0, s1 = seg_bounds[rng.integers(len(seg_bounds))]
                i = (s1 - int(rng.integers(0, 25)) if rng.random() < 0.6
                     else s0 + int(rng.integers(0, 10)))
            else:
                i = int(rng.integers(0, n))
            if i < 0 or i >= n or busy[i] or not np.isfinite(trend[i]):
                continue
            sig_rel = scatter[i] / trend[i]
            kind = rng.choice(["flare", "outlier", "jump", "bump", "ramp"],
                              p=[0.62, 0.14, 0.09, 0.09, 0.06])
            lo, hi = max(0, i - 150), min(n, i + 250)
            if kind == "flare":
                amp_sig = float(np.exp(rng.uniform(np.log(1.5), np.log(300))))
                fwhm = float(np.exp(rng.uniform(np.log(1.0), np.log(60.0)))) / 1440
                tpl = "davenport2014" if rng.random() < 0.5 else "mendoza2022"
                tpk = t[i] + rng.uniform(-0.5, 0.5) * CADENCE
                model = core.flare_template(t[lo:hi], tpk, fwhm, amp_sig * sig_rel,
                                            template=tpl, exptime=CADENCE)
                f[lo:hi] += model * trend[lo:hi]
                mz = model * trend[lo:hi] / scatter[lo:hi]
                big = mz >= 1
                if mz.max() >= 4 and big.sum() >= 2:
                    pk = int(np.argmax(mz))
                    a = pk
                    while a > 0 and big[a - 1]:
                        a -= 1
                    b = pk
                    while b < big.size - 1 and big[b + 1]:
                        b += 1
                    w[lo:hi][(mz >= 0.3) & ~big] = 0
                    y[lo + a:lo + b + 1] = 1
                    w[lo + a:lo + b + 1] = 1.5
                    events.append(("flare", lo + pk))
                elif mz.max() >= 1.5 or big.sum() >= 1:
                    w[lo:hi][mz >= 0.3] = 0
                    events.append(("faint", lo + int(np.argmax(mz))))
            elif kind == "outlier":
                k = 1 if rng.random() < 0.7 else 2
                amp = np.exp(rng.uniform(np.log(3), np.log(100))) * \
                    (1 if rng.random() < 0.8 else -1)
                f[i:i + k] += amp * scatter[i]
                w[i:i + k + 1] = 3.0
                events.append(("outlier", i))
            elif kind == "jump":
                amp = rng.uniform(3, 30) * rng.choice([-1, 1])
                length = int(rng.integers(20, 400))
                f[i:i + length] += amp * scatter[i]
                w[max(0, i - 5):i + 10] = 2.0
                events.append(("jump", i))
            elif kind == "bump":
                amp = rng.uniform(2, 20) * rng.choice([-1, 1])
                width = rng.uniform(8, 60)
                j = np.arange(lo, hi)
                f[lo:hi] += amp * scatter[i] * np.exp(-0.5 * ((j - i) / width) ** 2)
                w[max(0, i - 30):i + 30] = 2.0
                events.append(("bump", i))
            else:  # ramp towards the nearest segment edge
                amp = np.exp(rng.uniform(np.log(5), np.log(3000)))
                tau = rng.uniform(0.02, 0.3)
                s0, s1 = min(seg_bounds, key=lambda sb: min(abs(sb[0] - i), abs(sb[1] - i)))
                if abs(s0 - i) < abs(s1 - i):
                    dt = np.clip(t[s0:s1 + 1] - t[s0], 0, None)
                    f[s0:s1 + 1] += amp * scatter[i] * np.exp(-dt / tau)
                    events.append(("ramp", s0))
                else:
                    dt = np.clip(t[s1] - t[s0:s1 + 1], 0, None)
                    f[s0:s1 + 1] += amp * scatter[i] * np.exp(-dt / tau)
                    events.append(("ramp", s1))
            busy[max(0, i - 150):i + 250] = True
            placed += 1
    segs = core.prepare(t, f, e, cadence=CADENCE)
    out = []
    for s in segs:
        gy = np.zeros(s.size, dtype="float32")
        gw = np.zeros(s.size, dtype="float32")
        m = s.mask
        gy[m] = y[s.index[m]]
        gw[m] = w[s.index[m]]
        out.append((core.pad_input(s.channels(), WINDOW), gy, gw, s.index))
    return out, events


def _crops(prepared, events, rng, crop, n_random):
    """Crops (x, y, w) centred on events, at segment edges, and at random places."""
    xs, ys, ws = [], [], []

    def take(seg_i, s0):
        x, gy, gw, _ = prepared[seg_i]
        n = gy.size
        if n < crop:
            return
        s0 = int(np.clip(s0, 0, n - crop))
        xs.append(x[s0:s0 + crop + WINDOW - 1])
        ys.append(gy[s0:s0 + crop])
        ws.append(gw[s0:s0 + crop])

    # map original index -> (segment, grid position)
    where = {k: index for k, (_, _, _, index) in enumerate(prepared)}
    for kind, i in events:
        for k, index in where.items():
            g = np.flatnonzero(index == i)
            if g.size:
                reps = 3 if kind == "real" else 2 if kind in ("rej", "hard") else 1
                for _ in range(reps):
                    take(k, g[0] - int(rng.integers(16, crop - 16)))
                break
    for k, (_, gy, _, _) in enumerate(prepared):
        n = gy.size
        if n >= crop:
            take(k, 0)
            take(k, n - crop)
            for _ in range(max(1, n_random * n // 15000)):
                take(k, int(rng.integers(0, n - crop + 1)))
    return xs, ys, ws


def build_dataset(data_dir, files, cands, *, seed, n_variants, crop, n_random=12,
                  hard=None, hard_weight=2.0, log=print):
    """Stack training crops from ``n_variants`` augmented copies of each light curve.

    ``hard``: ``(tic, sector)`` -> list of ``(start, stop)`` mined hard negatives.
    """
    hard = hard or {}
    rng = np.random.default_rng(seed)
    X, Y, W = [], [], []
    for v in range(n_variants):
        t0 = time.time()
        for rec in files:
            t, f, e, cad = load_lightcurve(data_dir, rec["file"])
            rows = cands.get((rec["tic"], rec["sector"]), [])
            prepared, events = _labels_for(t, f, e, cad, rows, rng, inject=True,
                                           hard=hard.get((rec["tic"], rec["sector"]), ()),
                                           hard_weight=hard_weight)
            xs, ys, ws = _crops(prepared, events, rng, crop, n_random)
            X += xs
            Y += ys
            W += ws
        log(f"  variant {v + 1}/{n_variants}: {len(X)} crops so far "
            f"({time.time() - t0:.1f} s)")
    X = np.stack(X).astype("float32")
    Y = np.stack(Y).astype("float32")[..., None]
    W = np.stack(W).astype("float32")
    return X, Y, W


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


def load_members(paths, window=WINDOW):
    """Ensemble members built in code with the given weights files."""
    from ..flares.models import build_flare_cnn

    models = []
    for p in paths:
        m = build_flare_cnn(window)
        m.load_weights(p)
        models.append(m)
    return models


def _train_members(X, Y, W, args, out, version, log=print):
    from ..device import import_keras
    from ..flares.models import build_flare_cnn

    keras = import_keras()
    paths, histories = [], []
    for k in range(args.members):
        keras.utils.set_random_seed(args.seed + 1000 * k)
        rng = np.random.default_rng(args.seed + k)
        # bagging: each member sees a bootstrap sample of the crops
        sel = rng.integers(0, X.shape[0], X.shape[0])
        model = build_flare_cnn(WINDOW, seed=args.seed + k)
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
        path = Path(out) / f"{NAME}-{version}-m{k}.weights.h5"
        model.save_weights(path)
        paths.append(path)
        histories.append({"loss": [float(v) for v in hist.history["loss"]
                                   + hist2.history["loss"]],
                          "seconds": round(time.time() - t0, 1)})
        log(f"member {k}: {time.time() - t0:.0f} s, final loss "
            f"{histories[-1]['loss'][-1]:.4f} -> {path}")
    return paths, histories


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m astroml_affiliated.training.flares",
        description="Train the flare CNN ensemble on real TESS 2-min light curves.")
    parser.add_argument("data_dir", help="directory with lc/, lc_index.csv, vetted_flares.csv")
    parser.add_argument("--out", default="weights", help="output directory (weights/)")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--variants", type=int, default=5,
                        help="augmented copies of each training light curve")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mine-with", nargs="+", default=None, metavar="FILE",
                        help="weights files of the first-round ensemble used for mining "
                             "(default: train the first round here)")
    parser.add_argument("--mine-threshold", type=float, default=0.3)
    parser.add_argument("--mine-run", type=int, default=2,
                        help="a mined event has no this many consecutive cadences ...")
    parser.add_argument("--mine-sigma", type=float, default=2.5,
                        help="... above this many sigma")
    parser.add_argument("--hard-weight", type=float, default=2.0,
                        help="weight of the mined hard negatives' cadences")
    parser.add_argument("--no-registry", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("PYTHONHASHSEED", str(args.seed))
    from ..device import import_tensorflow

    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files, cands = load_index(args.data_dir)
    train_tics, val_tics = split_stars(files, cands)
    fit_tics, dev_tics = split_dev(train_tics, files, cands)
    train_files = [f for f in files if f["tic"] in set(fit_tics)]
    dev_files = [f for f in files if f["tic"] in set(dev_tics)]
    n_real = sum(r["real"] == 1 for f in train_files
                 for r in cands.get((f["tic"], f["sector"]), []))
    print(f"{len(fit_tics)} training stars ({len(train_files)} light curves, {n_real} "
          f"vetted real flares); {len(dev_tics)} development stars ({len(dev_files)} light "
          f"curves): {dev_tics}; {len(val_tics)} validation stars held out: {val_tics}")
    t_start = time.time()
    round1 = {}
    if args.mine_with:
        first = load_members(args.mine_with)
        round1["weights"] = [Path(p).name for p in args.mine_with]
    else:
        X, Y, W = build_dataset(args.data_dir, train_files, cands, seed=args.seed,
                                n_variants=args.variants, crop=args.crop)
        r1dir = out / "round1"
        r1dir.mkdir(exist_ok=True)
        paths1, hist1 = _train_members(X, Y, W, args, r1dir, "round1")
        first = load_members(paths1)
        round1 = {"weights": [str(p) for p in paths1], "members": hist1}
        del X, Y, W
    hard, mined = mine_hard_negatives(args.data_dir, train_files, cands, first,
                                      threshold=args.mine_threshold,
                                      run=args.mine_run, run_sigma=args.mine_sigma)
    n_hard = sum(len(v) for v in hard.values())
    print(f"mined {n_hard} hard negatives on {len(train_files)} training light curves "
          f"(events by kind: {mined})")
    t_data0 = time.time()
    X, Y, W = build_dataset(args.data_dir, train_files, cands, seed=args.seed,
                            n_variants=args.variants, crop=args.crop, hard=hard,
                            hard_weight=args.hard_weight)
    t_data = time.time() - t_data0
    print(f"dataset: {X.shape[0]} crops, positive cadences {float((Y[..., 0] * (W > 0)).sum()):.0f}"
          f" of {float((W > 0).sum()):.0f} weighted; built in {t_data:.0f} s")
    paths, histories = _train_members(X, Y, W, args, out, VERSION)
    t_total = time.time() - t_start
    print(f"total training time {t_total:.0f} s")
    dev = {"first_round": dev_metrics(args.data_dir, dev_files, cands, first),
           VERSION: dev_metrics(args.data_dir, dev_files, cands, load_members(paths))}
    print(f"development stars: {json.dumps(dev, indent=1)}")
    summary = {"version": VERSION, "seconds_total": round(t_total, 1),
               "seconds_dataset": round(t_data, 1),
               "members": histories, "n_crops": int(X.shape[0]),
               "train_tics": fit_tics, "dev_tics": dev_tics, "validation_tics": val_tics,
               "n_train_lightcurves": len(train_files), "n_train_real_flares": n_real,
               "round1": round1, "mine_threshold": args.mine_threshold,
               "mine_run": args.mine_run, "mine_sigma": args.mine_sigma,
               "hard_weight": args.hard_weight,
               "n_hard_negatives": n_hard, "mined_events": mined, "dev": dev}
    if not args.no_registry:
        from ..weights import write_registry_entry

        cmd = "python -m astroml_affiliated.training.flares DATA_DIR --out weights/"
        if args.mine_with:
            cmd += " --mine-with " + " ".join(Path(p).name for p in args.mine_with)
        write_registry_entry(
            NAME, version=VERSION,
            architecture="astroml_affiliated.flares.models:build_flare_cnn",
            architecture_kwargs={"window": WINDOW},
            files=paths,
            description="Fully convolutional CNN ensemble finding stellar flares in "
                        "TESS 2-minute light curves.",
            input={"cadence_s": 120.0, "window": WINDOW, "channels": ["asinh(z)", "mask"],
                   "trend_width": 73, "max_gap": 10},
            training={"command": cmd,
                      "data": "81 TESS 2-min light curves of 46 M dwarfs with vetted "
                              "flares (TESS_UCD_flares), synthetic injected flares and "
                              "artefacts, hard negatives mined with a first-round "
                              "ensemble",
                      "split": "by star: every 4th star from the 2nd ordered by (number "
                               "of vetted real flares, sha256(TIC)) held out; the rest "
                               "split again by the same rule into training and "
                               "development stars",
                      "validation_tics": val_tics, "dev_tics": dev_tics,
                      "seed": args.seed,
                      "epochs": args.epochs + 2, "members": args.members,
                      "seconds": round(t_total, 1), "date": "2026-11-25"},
            model_card="docs/models/flares-cnn.rst",
            registry_path=out / "registry.json")
    with open(out / f"{NAME}-training-log.json", "w") as fh:
        json.dump(summary, fh, indent=1)
    return summary


if __name__ == "__main__":
    main()
