"""Training data of the flare CNN: the data directory's index and split, light curves,
their binned cadences and labels, and the augmented crops (`build_dataset`).

Used by `astroml_affiliated.training.flares` (which re-exports these names) and by the
flare benchmarks.
"""

import csv
import hashlib
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..flares import core

CADENCE = 2.0 / 60 / 24  # days
WINDOW = 200

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
                "tstart": float(row["tstart"]), "tstop": float(row["tstop"]),
                "real": int(float(real)) if real else 0})
    return files, dict(cands)


#: The 12 held-out stars of 1.2.0 (never trained on; "old held-out" for 1.3.0).
HELDOUT_1_2 = (5630425, 35858101, 77111651, 77959225, 117733581, 142052876, 201688405,
               234307350, 248350761, 259901346, 345925651, 420001446)
#: The fresh validation stars of 1.3.0 (13 of the 24 stars added on 2026-12-06; the rule
#: is in the model card, written before any result on them).
VALIDATION_1_3 = (2470992, 29928567, 73118477, 77842052, 117733072, 140478472, 143029977,
                  220429097, 272349442, 284678097, 328254412, 396862832, 401945077)


#: The new training stars of 1.3.0 (the other 11 of the 24 added on 2026-12-06).
NEW_TRAIN_1_3 = (29780677, 30101427, 125835702, 170675902, 270511002, 280801342,
                 298907057, 369863567, 387220832, 410898932, 416744592)


def files_before_2026_12_06(files):
    """The light curves of the 46 stars of the data set up to 1.2.0 (for the 1.2.0
    split rules and the benchmarks that reproduce 1.2.0's figures)."""
    new = set(VALIDATION_1_3) | set(NEW_TRAIN_1_3)
    return [f for f in files if f["tic"] not in new]


def split_v13(files):
    """``(train_tics, validation_tics, old_heldout_tics)`` of 1.3.0: every star that is
    neither a fresh validation star nor a 1.2.0 held-out star is a training star."""
    tics = sorted({f["tic"] for f in files})
    val = [t for t in tics if t in VALIDATION_1_3]
    old = [t for t in tics if t in HELDOUT_1_2]
    train = [t for t in tics if t not in VALIDATION_1_3 and t not in HELDOUT_1_2]
    return train, val, old


def split_stars(files, cands):
    """``(train_tics, validation_tics)``: every 4th star from the 2nd, ordered by
    (number of vetted real flares, sha256 of the TIC) - the 1.2.0 rule; applied to the
    46 stars of that time it gives `HELDOUT_1_2` (use `split_v13` for 1.3.0)."""
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

#: Cadences (s) that training uses: the real 2-min light curves, and the same binned by
#: integrating over longer exposures.
CADENCES_S = (120.0, 200.0, 600.0, 1800.0)


def binned_versions(t, f, e, cadences_s=CADENCES_S):
    """``[(cadence_s, t, f, e), ...]``: the 2-min arrays and their exposure-integrated
    bins at each longer cadence (`core.bin_exposures`)."""
    out = []
    for c in cadences_s:
        if c == 120.0:
            out.append((c, t, f, e))
        else:
            tb, fb, eb, _ = core.bin_exposures(t, f, e, CADENCE, c / 86400.0)
            out.append((c, tb, fb, eb))
    return out


def prepare_at(t, f, e, cadence_s):
    """`core.prepare` with the 1.3.0 preprocessing at a cadence."""
    from ..flares._high_level import _preprocessing

    prep, _ = _preprocessing(cadence_s, True)
    return core.prepare(t, f, e, cadence=cadence_s / 86400.0, **prep)


def vetted_spans(rows, t, cadence_s, cad=None):
    """Index spans ``(a, b)`` (``b`` exclusive) of candidate rows in arrays at a cadence:
    by cadence number at 2 min (``cad`` given), else the cadences whose exposure
    overlaps the candidate's ``tstart..tstop``."""
    half = cadence_s / 86400.0 / 2
    out = []
    for r in rows:
        if cad is not None:
            a = int(np.searchsorted(cad, r["cstart"]))
            b = int(np.searchsorted(cad, r["cstop"], side="right"))
        else:
            a = int(np.searchsorted(t + half, r["tstart"]))
            b = int(np.searchsorted(t - half, r["tstop"], side="right"))
        out.append((a, min(b, t.size)))
    return out


def detectable(zc, a, b, nsig=3.0):
    """The rule of the model card: a vetted flare remains detectable (and a positive)
    at a cadence if a cadence overlapping its span lies >= 3 sigma above the trend."""
    return b > a and float(np.max(zc[a:b])) >= nsig


def synthetic_rotator(rng, n=19000):
    """A bright, fast-rotating star's 2-min light curve with white noise and no flares
    (two TESS orbits with a gap): ``t, f, e``."""
    t = 1400.0 + np.arange(n) * CADENCE
    keep = np.ones(n, bool)
    g0 = n // 2 + int(rng.integers(-500, 500))
    keep[g0:g0 + int(rng.integers(300, 900))] = False
    level = float(np.exp(rng.uniform(np.log(2e3), np.log(2e5))))
    noise = float(np.exp(rng.uniform(np.log(3e-4), np.log(3e-3))))
    period = float(np.exp(rng.uniform(np.log(0.15), np.log(3.0))))
    amp = float(np.exp(rng.uniform(np.log(3e-3), np.log(6e-2))))
    ph = rng.uniform(0, 2 * np.pi, 2)
    rot = amp * (np.sin(2 * np.pi * t / period + ph[0])
                 + 0.3 * np.sin(4 * np.pi * t / period + ph[1]))
    # slow red noise (spot evolution, pointing): a random walk smoothed over ~1 h
    walk = np.cumsum(rng.normal(0, noise * 0.05, n))
    walk = np.convolve(walk - walk.mean(), np.ones(31) / 31, mode="same")
    f = level * (1 + rot + walk + rng.normal(0, noise, n))
    e = np.full(n, level * noise)
    return t[keep], f[keep], e[keep]


def _labels_for(t, f, e, cad, cand_rows, rng, *, inject=True, n_per=400, hard=(),
                hard_weight=2.0, cadence_s=120.0):
    """Inject events into one light curve at a cadence; return prepared segments with
    y and w (and the crop centres). ``cad`` (cadence numbers) only at 2 min."""
    n = t.size
    cadence = cadence_s / 86400.0
    scale = 120.0 / cadence_s  # 2-min margins in cadences -> this cadence

    def sc(k, least):
        return max(least, int(round(k * scale)))

    y = np.zeros(n, dtype="float32")
    w = np.ones(n, dtype="float32")
    f = f.copy()
    long = cadence_s >= 300.0

    # clean preprocessing: unlabelled excursions, injection scale, detectability
    segs = prepare_at(t, f, e, cadence_s)
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
    spans = vetted_spans(cand_rows, t, cadence_s, cad)
    counts = Counter()
    for r, (a, b) in zip(cand_rows, spans):
        if r["real"] == 1 and detectable(zc, a, b):
            y[a:b] = 1
            w[a:b] = 3.0
            w[max(0, a - 2):a] = 0
            w[b:b + sc(5, 1)] = 0
            counts["real_positive"] += 1
        elif r["real"] == 1:
            # too small to survive the binning: neither positive nor negative
            w[max(0, a - 2):b + sc(5, 1)] = 0
            counts["real_undetectable"] += 1
        elif r["real"] == -1:
            w[max(0, a - 3):b + 3] = 5.0
        else:
            w[max(0, a - sc(5, 1)):b + sc(20, 2)] = 0
        busy[max(0, a - sc(100, 10)):b + sc(150, 15)] = True
    covered = busy.copy()
    for a, b in excursions(zc, np.ones(n, bool), nmin=1 if long else 3):
        if not covered[a:b + 1].any():
            w[max(0, a - sc(5, 1)):b + sc(25, 2)] = 0
        busy[max(0, a - sc(100, 10)):b + sc(150, 15)] = True
    for a, b in hard:  # mined false alarms (indices into t): up-weighted negatives
        sl = slice(max(0, a - 3), b + 4)
        w[sl] = np.where(w[sl] > 0, np.maximum(w[sl], hard_weight), 0.0)
        busy[max(0, a - 100):b + 150] = True
    events = []  # (kind, index) for crop centres
    for r, (a, b) in zip(cand_rows, spans):
        if a < n:
            events.append(("real" if r["real"] == 1 else "rej" if r["real"] == -1 else "unv",
                           a))
    for a, b in hard:
        events.append(("hard", (a + b) // 2))
    if inject:
        n_inj = max(1, n // max(25, int(n_per * scale)))
        tries = 0
        placed = 0
        while placed < n_inj and tries < 20 * n_inj:
            tries += 1
            if rng.random() < 0.15 and seg_bounds:
                s0, s1 = seg_bounds[rng.integers(len(seg_bounds))]
                i = (s1 - int(rng.integers(0, sc(25, 3))) if rng.random() < 0.6
                     else s0 + int(rng.integers(0, sc(10, 2))))
            else:
                i = int(rng.integers(0, n))
            if i < 0 or i >= n or busy[i] or not np.isfinite(trend[i]):
                continue
            sig_rel = scatter[i] / trend[i]
            if not 0 < sig_rel < 1:
                continue  # no positive flux level here (a bad aperture)
            kind = rng.choice(["flare", "outlier", "jump", "bump", "ramp", "box"],
                              p=[0.58, 0.12, 0.08, 0.08, 0.05, 0.09])
            lo, hi = max(0, i - sc(150, 10)), min(n, i + sc(250, 20))
            if kind == "flare":
                amp_sig = float(np.exp(rng.uniform(np.log(1.5), np.log(300))))
                fwhm = float(np.exp(rng.uniform(np.log(1.0), np.log(60.0)))) / 1440
                tpl = "davenport2014" if rng.random() < 0.5 else "mendoza2022"
                tpk = t[i] + rng.uniform(-0.5, 0.5) * cadence
                # the template integrated over this cadence's exposure
                model = core.flare_template(t[lo:hi], tpk, fwhm, amp_sig * sig_rel,
                                            template=tpl, exptime=cadence)
                f[lo:hi] += model * trend[lo:hi]
                mz = model * trend[lo:hi] / scatter[lo:hi]
                big = mz >= 1
                if mz.max() >= 4 and big.sum() >= (1 if long else 2):
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
                w[i:i + k + 1] = 3.0 if not long else 1.0
                events.append(("outlier", i))
            elif kind == "jump":
                amp = rng.uniform(3, 30) * rng.choice([-1, 1])
                length = int(rng.integers(sc(20, 3), sc(400, 30)))
                f[i:i + length] += amp * scatter[i]
                w[max(0, i - 5):i + 10] = 2.0
                events.append(("jump", i))
            elif kind == "box":
                # a flat-topped, box-shaped artefact (spacecraft, scattered light):
                # sharp rise and fall, 5 sigma to 80x the flux level, 6 min to 12 h
                amp = float(np.exp(rng.uniform(np.log(5 * sig_rel), np.log(80.0))))
                length = max(1, int(round(np.exp(rng.uniform(np.log(6), np.log(720)))
                                          / (cadence_s / 60))))
                if long and length < 2:
                    length = 2  # a one-cadence box is an outlier at long cadence
                f[i:i + length] += amp * trend[i]
                w[max(0, i - 3):i + length + 3] = np.where(
                    w[max(0, i - 3):i + length + 3] > 0, 3.0, 0.0)
                events.append(("box", i))
            elif kind == "bump":
                amp = rng.uniform(2, 20) * rng.choice([-1, 1])
                width = rng.uniform(8, 60) * scale + 1
                j = np.arange(lo, hi)
                f[lo:hi] += amp * scatter[i] * np.exp(-0.5 * ((j - i) / width) ** 2)
                w[max(0, i - sc(30, 3)):i + sc(30, 3)] = 2.0
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
            busy[max(0, i - sc(150, 10)):i + sc(250, 20)] = True
            placed += 1
    segs = prepare_at(t, f, e, cadence_s)
    code = core.cadence_code(cadence_s)
    out = []
    for s in segs:
        gy = np.zeros(s.size, dtype="float32")
        gw = np.zeros(s.size, dtype="float32")
        m = s.mask
        gy[m] = y[s.index[m]]
        gw[m] = w[s.index[m]]
        out.append((core.pad_input(s.channels(code), WINDOW), gy, gw, s.index))
    return out, events, counts


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
                  hard=None, hard_weight=2.0, n_synthetic=6, long_n_per=800, log=print):
    """Stack training crops from ``n_variants`` augmented copies of each light curve,
    at every cadence of `CADENCES_S`, plus ``n_synthetic`` synthetic bright fast
    rotators per copy.

    ``hard``: ``(tic, sector)`` -> list of ``(start, stop)`` mined hard negatives (2-min
    indices). ``long_n_per``: at binned cadences one injection per this many 2-min
    cadences' worth of time.
    """
    hard = hard or {}
    rng = np.random.default_rng(seed)
    X, Y, W = [], [], []
    counts = Counter()

    def add(t, f, e, cad, rows, hard_sp=()):
        for c, tb, fb, eb in binned_versions(t, f, e):
            prepared, events, cnt = _labels_for(
                tb, fb, eb, cad if c == 120.0 else None, rows, rng, inject=True,
                n_per=400 if c == 120.0 else long_n_per,
                hard=hard_sp if c == 120.0 else (), hard_weight=hard_weight, cadence_s=c)
            for key, v in cnt.items():
                counts[f"{key}_{int(c)}s"] += v
            xs, ys, ws = _crops(prepared, events, rng, crop, n_random)
            counts[f"crops_{int(c)}s"] += len(xs)
            X.extend(xs)
            Y.extend(ys)
            W.extend(ws)

    for v in range(n_variants):
        t0 = time.time()
        for rec in files:
            t, f, e, cad = load_lightcurve(data_dir, rec["file"])
            rows = cands.get((rec["tic"], rec["sector"]), [])
            add(t, f, e, cad, rows, hard.get((rec["tic"], rec["sector"]), ()))
        for _ in range(n_synthetic):
            t, f, e = synthetic_rotator(rng)
            add(t, f, e, None, [])
        log(f"  variant {v + 1}/{n_variants}: {len(X)} crops so far "
            f"({time.time() - t0:.1f} s)")
    X = np.stack(X).astype("float32")
    Y = np.stack(Y).astype("float32")[..., None]
    W = np.stack(W).astype("float32")
    return X, Y, W, dict(counts)
