"""Injection-recovery tests: how complete is the flare finder on a given light curve?"""

import numpy as np

from . import core
from ._high_level import (_DEFAULT_MODEL, _bin_factor, _binned, _cadence_aware,
                          _check_integer, _check_min_run, _check_threshold, _default_rule,
                          _load, _numeric_time_format, _parse_lightcurve, _preprocessing,
                          _score_arrays)

__all__ = ["injection_recovery", "recovery_probability", "amplitude_at_recovery"]


def _finder_events(t, f, e, cadence_days, finder, models, threshold, min_run=None):
    """Events ``(segment, start, stop, peak)`` found in plain arrays (``min_run`` None:
    the default event rule at this cadence)."""
    if finder == "cnn":
        segs, means, _ = _score_arrays(t, f, e, cadence_days, models)
        min_run, min_len = _default_rule(cadence_days * 86400.0, min_run)
        out = []
        for seg, pm in zip(segs, means):
            out += [(seg, *ev) for ev in core.segment_events(seg, pm, threshold,
                                                             min_run=min_run,
                                                             min_len=min_len)]
        return segs, out
    # sigma clipping on the cadence-aware preprocessing (trend width for the cadence,
    # shrinking window at segment ends, adaptive trend)
    prep, _ = _preprocessing(cadence_days * 86400.0, True)
    segs = core.prepare(t, f, e, cadence=cadence_days, **prep)
    out = []
    for seg in segs:
        out += [(seg, *ev) for ev in core.sigma_clip_finder(seg)]
    return segs, out


def injection_recovery(lc, *, n_flares=100, per_round=10, amplitude_sigma=(1.0, 50.0),
                       fwhm_minutes=(2.0, 60.0), template="davenport2014",
                       threshold=0.5, finder="cnn", min_run=None, model=_DEFAULT_MODEL,
                       device=None, seed=0, quality_bitmask="default"):
    """Inject synthetic flares into a light curve and test which are recovered.

    Like AltaiPony's ``sample_flare_recovery``: flares with log-uniform peak amplitudes
    (in units of the local scatter) and FWHMs are injected, ``per_round`` at a time and
    at least 200 two-minute cadences apart (at least 20 cadences at long cadences;
    away from flares already found), into a copy of the flux; the finder runs on each
    copy. An injected flare is recovered when an event's
    span comes within 3 cadences of its peak.

    Parameters
    ----------
    lc : `lightkurve.LightCurve`
        The light curve (not modified); same requirements as `find_flares`.
    n_flares : int
        Number of flares to inject in all.
    per_round : int
        Flares injected into one copy.
    amplitude_sigma : (float, float)
        Range of peak amplitudes in units of the local scatter (log-uniform).
    fwhm_minutes : (float, float)
        Range of FWHM in minutes (log-uniform).
    template : {'davenport2014', 'mendoza2022'}
        Flare template (averaged over each exposure).
    threshold : float
        Probability threshold of the CNN finder.
    finder : {'cnn', 'sigma'}
        The CNN ensemble, or the sigma-clipping finder (AltaiPony's N1=3, N2=2, N3=3).
    min_run : int
        Event rule of the CNN finder, as for `find_flares` (default: 2 below 5-min
        cadence, 1 from 5 min on).
    model, device, quality_bitmask
        As for `find_flares`; ``model`` may also be a list of built Keras members
        (weights that are not in the registry, e.g. while training).
    seed : int
        Seed of the random draws.

    Returns
    -------
    `~astropy.table.QTable`
        One row per injected flare: ``tpeak`` (time value in the light curve's time
        format; JD where that format is not a number, e.g. ISO), ``amplitude``
        (relative), ``amplitude_sigma``, ``fwhm`` [min], ``ed_injected`` [s],
        ``recovered`` (bool), ``ed_recovered`` [s], ``ed_ratio``,
        ``amplitude_recovered``, ``tpeak_offset`` [min] (found peak time minus the
        injected one). Use `recovery_probability` to bin it.
    """
    from astropy import units as u
    from astropy.table import QTable

    from ..device import device_scope
    from ..errors import AstroMLWarning, InputError

    if finder not in ("cnn", "sigma"):
        raise InputError(f"finder must be 'cnn' or 'sigma', not {finder!r}")
    _check_integer("n_flares", n_flares, 0)
    _check_integer("per_round", per_round, 1)
    for name, rng_ in (("amplitude_sigma", amplitude_sigma), ("fwhm_minutes", fwhm_minutes)):
        try:
            lo_, hi_ = (float(x) for x in rng_)
        except (TypeError, ValueError):
            lo_ = hi_ = np.nan
        if not (0 < lo_ <= hi_ < np.inf):
            raise InputError(f"{name} must be a range (low, high) with 0 < low <= high, "
                             f"not {rng_!r}")
    threshold = _check_threshold(threshold)
    min_run = _check_min_run(min_run)
    p = _parse_lightcurve(lc, quality_bitmask=quality_bitmask)
    models = None
    if finder == "cnn":
        models, _ = _load(model, device)
    k = _bin_factor(p["cadence_s"], finder == "sigma" or _cadence_aware(models))
    if k == 1:
        idx = np.flatnonzero(p["good"])
        t, f, e = p["time"][idx], p["flux"][idx], p["flux_err"][idx]
        cad = p["cadence_s"] / 86400.0
    else:
        t, f, e, _, cad = _binned(p, k)
    rng = np.random.default_rng(seed)
    # spacing and margins in cadences: 200 (100 before, 150 after an event) at 2 min,
    # the same time span at longer cadences, at least 20
    scale = min(1.0, 120.0 / (cad * 86400.0))
    spacing = max(20, int(round(200 * scale)))
    before, after = max(10, int(round(100 * scale))), max(15, int(round(150 * scale)))
    rows = []
    with device_scope(device if finder == "cnn" else "cpu"):
        segs, events = _finder_events(t, f, e, cad, finder, models, threshold, min_run)
        n = t.size
        trend = np.full(n, np.nan)
        scatter = np.full(n, np.nan)
        busy = np.zeros(n, dtype=bool)
        for seg in segs:
            m = seg.mask
            trend[seg.index[m]] = seg.trend[m]
            scatter[seg.index[m]] = seg.scatter[m]
        for seg, start, stop, peak in events:
            s_o, e_o = core.source_indices(seg, start, stop)
            busy[max(0, s_o - before):e_o + after] = True
        # no injection where nothing is scored (cadences flagged as systematics)
        busy |= ~(np.isfinite(trend) & np.isfinite(scatter))
        n_rounds = int(np.ceil(n_flares / per_round))
        for _ in range(n_rounds):
            free = np.flatnonzero(~busy)
            if free.size == 0:
                break
            chosen = []
            for i in rng.permutation(free):
                if all(abs(i - c) >= spacing for c in chosen):
                    chosen.append(int(i))
                if len(chosen) >= per_round:
                    break
            fi = f.copy()
            truth = []
            for i in chosen:
                a_sig = float(np.exp(rng.uniform(*np.log(amplitude_sigma))))
                fwhm = float(np.exp(rng.uniform(*np.log(fwhm_minutes)))) / 1440
                tpk = t[i] + rng.uniform(-0.5, 0.5) * cad
                rel = a_sig * scatter[i] / trend[i]
                lo, hi = max(0, i - 20), min(n, i + 400)
                model_rel = core.flare_template(t[lo:hi], tpk, fwhm, rel,
                                                template=template, exptime=cad)
                fi[lo:hi] += model_rel * np.where(np.isfinite(trend[lo:hi]),
                                                  trend[lo:hi], trend[i])
                ed = float(np.trapezoid(core.flare_template(
                    np.linspace(tpk - fwhm, tpk + 30 * fwhm, 20000), tpk, fwhm, rel,
                    template=template), np.linspace(tpk - fwhm, tpk + 30 * fwhm, 20000))
                    * 86400)
                truth.append((i, tpk, rel, a_sig, fwhm * 1440, ed))
            segs_i, ev_i = _finder_events(t, fi, e, cad, finder, models, threshold,
                                          min_run)
            found = []
            for seg, start, stop, peak in ev_i:
                s_o, e_o = core.source_indices(seg, start, stop)
                _, _, ampl, ed_r, _ = core.event_properties(seg, start, stop, peak,
                                                            cad * 86400)
                found.append((s_o, e_o, ed_r, ampl, seg.time[peak]))
            for i, tpk, rel, a_sig, fwhm_min, ed in truth:
                match = [x for x in found if x[0] - 3 <= i <= x[1] + 3]
                rec = bool(match)
                ed_r = match[0][2] if rec else np.nan
                amp_r = match[0][3] if rec else np.nan
                dt_r = (match[0][4] - tpk) * 1440.0 if rec else np.nan
                rows.append((tpk, rel, a_sig, fwhm_min, ed, rec, ed_r, amp_r, dt_r))
    if rows and p["time_obj"].format not in ("btjd", "bkjd"):
        # the arrays above are JD: give tpeak in the light curve's own time format
        from astropy.time import Time

        tobj = p["time_obj"]
        tpk = Time([r[0] for r in rows], format="jd",
                   scale=tobj.scale).to_value(_numeric_time_format(tobj))
        rows = [(float(v), *r[1:]) for v, r in zip(tpk, rows)]
    if len(rows) < n_flares:
        import warnings

        warnings.warn(f"only {len(rows)} of the {n_flares} flares requested were injected: "
                      "the light curve has too few free cadences for more at "
                      f"{spacing} cadences apart ({n_rounds} rounds of up to {per_round}); raise per_round",
                      AstroMLWarning, stacklevel=2)
    tab = QTable(rows=rows if rows else None,
                 names=("tpeak", "amplitude", "amplitude_sigma", "fwhm", "ed_injected",
                        "recovered", "ed_recovered", "amplitude_recovered",
                        "tpeak_offset"),
                 dtype=(float, float, float, float, float, bool, float, float, float))
    tab["tpeak_offset"].unit = u.min
    tab["fwhm"].unit = u.min
    tab["ed_injected"].unit = u.s
    tab["ed_recovered"].unit = u.s
    tab["ed_ratio"] = (tab["ed_recovered"] / tab["ed_injected"]).value
    tab.meta.update({"finder": finder, "threshold": threshold, "template": template,
                     "min_run": min_run if finder == "cnn" else None, "seed": seed,
                     "n_injected": len(tab)})
    return tab


def recovery_probability(table, column="amplitude_sigma", bins=None):
    """Fraction of injected flares recovered, binned in ``column``.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        The result of `injection_recovery`.
    column : str
        ``'amplitude_sigma'``, ``'amplitude'``, ``'ed_injected'`` or ``'fwhm'``.
    bins : array, optional
        Bin edges (default: 10 logarithmic bins over the column's range).

    Returns
    -------
    `~astropy.table.QTable`
        ``low``, ``high``, ``n``, ``recovered_fraction``, ``ed_ratio_median``.
    """
    from astropy.table import QTable

    x = np.asarray(getattr(table[column], "value", table[column]), dtype=float)
    if bins is None:
        lo, hi = np.nanmin(x), np.nanmax(x)
        bins = np.geomspace(max(lo, 1e-12), hi * 1.0001, 11)
    bins = np.asarray(bins, dtype=float)
    rec = np.asarray(table["recovered"], dtype=bool)
    ratio = np.asarray(table["ed_ratio"], dtype=float)
    rows = []
    for a, b in zip(bins[:-1], bins[1:]):
        sel = (x >= a) & (x < b)
        nsel = int(sel.sum())
        frac = float(rec[sel].mean()) if nsel else np.nan
        r = ratio[sel & rec]
        rows.append((a, b, nsel, frac, float(np.median(r)) if r.size else np.nan))
    return QTable(rows=rows, names=("low", "high", "n", "recovered_fraction",
                                    "ed_ratio_median"))


def amplitude_at_recovery(table, fraction=0.5, column="amplitude_sigma"):
    """The ``column`` value at which the recovered fraction first reaches ``fraction``
    (logistic fit of recovered vs log10(column)); NaN if it cannot be fitted."""
    from scipy.optimize import minimize

    x = np.log10(np.asarray(getattr(table[column], "value", table[column]), dtype=float))
    y = np.asarray(table["recovered"], dtype=float)
    if x.size < 5 or y.min() == y.max():
        return np.nan

    def nll(p):
        z = np.clip(p[1] * (x - p[0]), -50, 50)
        q = 1 / (1 + np.exp(-z))
        q = np.clip(q, 1e-9, 1 - 1e-9)
        return -np.sum(y * np.log(q) + (1 - y) * np.log(1 - q))

    res = minimize(nll, [np.median(x), 5.0], method="Nelder-Mead")
    x0, s = res.x
    if s <= 0:
        return np.nan
    return float(10 ** (x0 + np.log(fraction / (1 - fraction)) / s))
