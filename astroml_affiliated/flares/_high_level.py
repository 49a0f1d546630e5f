"""Public flare-finding functions that take lightkurve objects."""

import numpy as np
from astropy import units as u
from astropy.table import QTable

from ..errors import InputError
from . import core

__all__ = ["find_flares", "flare_probability", "find_flares_collection", "FlareTable",
           "SUPPORTED_CADENCE_S", "NATIVE_CADENCES_S", "count_coincident",
           "count_overlapping"]

#: The cadence the network was trained on, seconds.
SUPPORTED_CADENCE_S = 120.0
#: Relative tolerance on a cadence to count as a given cadence.
_CADENCE_TOL = 0.05
#: Cadences that are binned to 2 minutes: 20-s TESS (6 cadences), Kepler 1-min (2).
_BINNABLE = {20.0: 6, 58.85: 2, 60.0: 2}
_DEFAULT_MODEL = "flares-cnn"
_BITMASK_NAMES = ("none", "default", "hard", "hardest")


# --------------------------------------------------------------------------------------
# the result table


class FlareTable(QTable):
    """Flares found in a light curve: one row per flare (an `astropy.table.QTable`).

    Notes
    -----
    The columns are:

    tpeak, tstart, tstop : `~astropy.time.Time`
        Peak, start and stop of the flare (start and stop of the span used for the
        equivalent duration).
    peak_index : int
        Row of the peak in the light curve that was searched.
    cadenceno : int
        Cadence number of the peak (-1 when the light curve has none).
    amplitude : Quantity (dimensionless)
        Peak relative amplitude ``(flux - trend) / trend``.
    amplitude_sigma : float
        Peak amplitude in units of the local scatter.
    ed, ed_err : Quantity [s]
        Equivalent duration and its uncertainty.
    prob, prob_std : float
        The highest ensemble-mean probability within the event and the ensemble's
        standard deviation at that cadence.

    ``meta`` records the model, version, sha256 of each weights file, threshold,
    cadence, device and number of ensemble members.
    """

    _lightcurve = None

    def _new_from_slice(self, slice_):
        # ``flares[flares["prob"] > 0.9].plot()`` still knows its light curve
        out = super()._new_from_slice(slice_)
        out._lightcurve = self._lightcurve
        return out

    def plot(self, lc=None, ax=None, **kwargs):
        """Plot the light curve with the flares marked.

        Parameters
        ----------
        lc : `lightkurve.LightCurve`, optional
            The light curve (by default the one the table was made from, if known).
        ax : `matplotlib.axes.Axes`, optional

        Returns
        -------
        `matplotlib.axes.Axes`
        """
        import matplotlib.pyplot as plt

        lc = lc if lc is not None else self._lightcurve
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 3.5))
        if lc is not None:
            flux = _float_values(lc.flux)
            # one numeric time format for the light curve and the table (the table's
            # Time columns may be in another format, e.g. after a collection)
            fmt = _numeric_time_format(lc.time)
            t = np.asarray(lc.time.to_value(fmt), dtype=float)
            # break the line at gaps (more than 10 median cadences)
            dt = np.diff(t)
            if dt.size:
                cut = np.flatnonzero(dt > 10 * np.nanmedian(dt)) + 1
                tp = np.insert(t.astype(float), cut, np.nan)
                fp = np.insert(flux, cut, np.nan)
            else:
                tp, fp = t, flux
            ax.plot(tp, fp, lw=0.5, color="0.3", **kwargs)
            unit = getattr(lc.flux, "unit", None)
            ax.set_ylabel(f"flux [{unit}]" if unit not in (None, "") else "flux")
            for row in self:
                i = int(row["peak_index"])
                if 0 <= i < len(flux):
                    ax.plot(t[i], flux[i], "v", color="C3", ms=7)
                ax.axvspan(row["tstart"].to_value(fmt), row["tstop"].to_value(fmt),
                           color="C3", alpha=0.2, lw=0)
            ax.set_xlabel(f"time [{fmt}]")
        else:
            ax.vlines(self["tpeak"].value, 0, self["amplitude"].value, color="C3")
            ax.set_xlabel("time")
            ax.set_ylabel("relative amplitude")
        title = f"{len(self)} flare(s)"
        if self.meta.get("model"):
            title += (f" | {self.meta['model']} {self.meta.get('version', '')} "
                      f"p >= {self.meta.get('threshold')}")
        ax.set_title(title)
        return ax


def _flare_table_cls():
    return FlareTable


# --------------------------------------------------------------------------------------
# input parsing


def _float_values(x):
    """Float array of a (masked) Quantity, Column or array; masked entries are NaN."""
    v = getattr(x, "value", x)
    data = getattr(v, "unmasked", None)  # astropy Masked arrays
    out = np.array(np.ma.getdata(v) if data is None else data, dtype=float)
    mask = getattr(v, "mask", None)
    if mask is not None:
        out[np.broadcast_to(np.asarray(mask, dtype=bool), out.shape)] = np.nan
    return out


def _numeric_time_format(time):
    """``time``'s format if its values are numbers (btjd, mjd, jd, ...), else ``'jd'``
    (for text formats such as ISO)."""
    return time.format if np.asarray(time.value).dtype.kind in "fiu" else "jd"


def _quality_flags(lc):
    """lightkurve's quality-flag class for this light curve (Kepler/K2 or TESS)."""
    import lightkurve as lk
    from lightkurve.utils import KeplerQualityFlags, TessQualityFlags

    meta = getattr(lc, "meta", None) or {}
    mission = str(meta.get("MISSION") or meta.get("TELESCOP") or "").strip().lower()
    if isinstance(lc, lk.KeplerLightCurve) or mission in ("kepler", "k2"):
        return KeplerQualityFlags
    return TessQualityFlags


def _parse_lightcurve(lc, *, quality_bitmask="default"):
    """Arrays of a light curve, checked; the light curve itself is not modified."""
    try:
        import lightkurve as lk
    except ImportError as exc:  # pragma: no cover
        raise InputError("find_flares needs lightkurve: pip install lightkurve") from exc
    from astropy.time import Time

    if not isinstance(lc, lk.LightCurve):
        raise InputError(f"expected a lightkurve.LightCurve, got {type(lc).__name__}; "
                         "for several light curves use a LightCurveCollection")
    if isinstance(lc, lk.FoldedLightCurve) or not isinstance(lc.time, Time):
        raise InputError("the light curve is folded (its time is a phase): find flares "
                         "in the unfolded light curve, then fold the result")
    n = len(lc)
    if n == 0:
        raise InputError("the light curve is empty (0 cadences)")
    flux_q = lc.flux
    unit = getattr(flux_q, "unit", None)
    if unit is not None:
        from astropy import units as u

        if unit.physical_type == "unknown" and isinstance(unit, u.MagUnit) or \
                str(unit).lower() in ("mag", "mag(ab)", "mag(st)"):
            raise InputError(f"flux in magnitudes ({unit}) is not supported: convert to "
                             "linear flux (e-/s, counts or normalised)")
    # masked cadences (astropy Masked or numpy masked flux) are missing, whatever
    # value lies under the mask
    flux = _float_values(flux_q)
    if "flux_err" in lc.colnames:
        flux_err = _float_values(lc.flux_err)
        # an uncertainty of zero (or below) is no uncertainty: the local scatter is used
        flux_err[~(flux_err > 0)] = np.nan
    else:
        flux_err = np.full(n, np.nan)
    time = np.array(lc.time.jd, dtype=float) if lc.time.format not in ("btjd", "bkjd") \
        else np.array(lc.time.value, dtype=float)
    good = np.isfinite(time) & np.isfinite(flux)
    if quality_bitmask not in _BITMASK_NAMES and not isinstance(quality_bitmask, (int, np.integer)):
        raise InputError(f"quality_bitmask must be one of {_BITMASK_NAMES} or an int, "
                         f"not {quality_bitmask!r}")
    if "quality" in lc.colnames and quality_bitmask != "none":
        # Kepler/K2 and TESS flags have different bits: use the light curve's mission's
        q = np.array(getattr(lc["quality"], "value", lc["quality"]), dtype=np.int64)
        good &= _quality_flags(lc).create_quality_mask(q, bitmask=quality_bitmask)
    if not np.any(np.isfinite(flux)):
        raise InputError("the light curve's flux is NaN everywhere")
    if not np.any(good):
        raise InputError("no cadence has finite time and flux and a good quality flag")
    t = time[np.isfinite(time)]
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise InputError("the light curve's time is not strictly increasing; sort it "
                         "(lc[np.argsort(lc.time.value)]) and remove duplicate cadences")
    med = np.nanmedian(flux[good])
    if not med > 0:
        raise InputError(f"the median flux is {med:.3g}: find_flares needs a positive "
                         "flux level (e-/s, counts or normalised to 1), not a "
                         "mean-subtracted flux")
    tg = time[good]
    if tg.size < 2:
        raise InputError("the light curve needs at least 2 good cadences")
    dt = np.diff(tg)
    cadence_s = float(np.median(dt)) * 86400.0
    cadenceno = (np.array(lc["cadenceno"], dtype=np.int64) if "cadenceno" in lc.colnames
                 else np.full(n, -1, dtype=np.int64))
    return {"time": time, "flux": flux, "flux_err": flux_err, "good": good,
            "cadence_s": cadence_s, "cadenceno": cadenceno, "time_obj": lc.time}


#: Cadences (s) that a cadence-aware model (three input channels: flare model 1.3.0 and
#: later) scores as they are: TESS 2 min and 10 min, TESS 30 min and Kepler/K2 long
#: cadence (1765 s). 1.3.0 was trained at 200 s as well but failed its release rule
#: there (recall below sigma clipping's on the validation stars): 200 s is refused.
NATIVE_CADENCES_S = (120.0, 600.0, 1800.0)
#: From this cadence on, a flare spans one or two cadences: the default event rule
#: asks for one cell above the threshold and ``min_run=1``.
LONG_CADENCE_S = 300.0


def _bin_factor(cadence_s, cadence_aware=False):
    """``(k, native_cadence_s)``: bin ``k`` cadences into one (1: none)."""
    natives = NATIVE_CADENCES_S if cadence_aware else (SUPPORTED_CADENCE_S,)
    for c in natives:
        if abs(cadence_s - c) <= _CADENCE_TOL * c:
            return 1
    for c, k in _BINNABLE.items():
        if abs(cadence_s - c) <= _CADENCE_TOL * c:
            return k
    if cadence_aware:
        raise InputError(
            f"the light curve's cadence is {cadence_s:.1f} s; the flare model supports "
            "TESS 2-min, 10-min and 30-min and Kepler/K2 30-min (1765 s) light curves, "
            "and 20-s TESS or 1-min Kepler ones (binned to 2 min). 200-s TESS light "
            "curves are not supported (the model failed its release rule there): bin "
            "them to 10 min first, e.g. lc.bin(time_bin_size=600 * u.s); other cadences "
            "likewise to one of the supported ones")
    raise InputError(
        f"the light curve's cadence is {cadence_s:.1f} s; this flare model supports TESS "
        "2-min (120 s) light curves, and 20-s TESS or 1-min Kepler ones, which are "
        "binned to 2 min. For 10-min and 30-min TESS and Kepler/K2 long-cadence light "
        "curves use a cadence-aware model (flares-cnn 1.3.0 or later)")


def _cadence_aware(models):
    """Whether the ensemble takes the cadence as a third input channel."""
    try:
        return int(models[0].inputs[0].shape[-1]) == 3
    except (AttributeError, IndexError, TypeError):
        return False


def _preprocessing(cadence_s, cadence_aware):
    """``core.prepare`` options and the cadence channel's value for an ensemble."""
    if not cadence_aware:
        return {"trend_width": 73}, None
    return ({"trend_width": core.trend_width_for(cadence_s), "trend_edge": "shrink",
             "adaptive": True}, core.cadence_code(cadence_s))


def _default_rule(cadence_s, min_run):
    """``(min_run, min_len)``: the event rule's defaults at a cadence."""
    long = cadence_s >= LONG_CADENCE_S
    return (1 if long else 2) if min_run is None else min_run, 1 if long else 2


def _binned(p, k):
    """Bin ``k`` consecutive cadences (on the time grid) into one; returns new arrays
    and, per bin, the index of its brightest original cadence."""
    good = p["good"]
    idx = np.flatnonzero(good)
    t = p["time"][idx]
    cad = np.median(np.diff(t))
    width = k * cad
    b = np.floor((t - t[0]) / width + 1e-6).astype(np.int64)
    uniq, start = np.unique(b, return_index=True)
    counts = np.diff(np.append(start, b.size))
    f = p["flux"][idx]
    e = p["flux_err"][idx]
    tb = np.add.reduceat(t, start) / counts
    fb = np.add.reduceat(f, start) / counts
    with np.errstate(invalid="ignore"):
        eb = np.sqrt(np.add.reduceat(np.where(np.isfinite(e), e, np.nan) ** 2, start)) / counts
    # only full bins count as measurements of the same quality
    keep = counts >= max(1, k // 2)
    brightest = np.array([idx[s + int(np.argmax(f[s:s + c]))] for s, c in zip(start, counts)])
    return tb[keep], fb[keep], eb[keep], brightest[keep], width


# --------------------------------------------------------------------------------------
# scoring


def _score_arrays(time, flux, flux_err, cadence_days, models, device_label=None):
    """Segments and per-segment ensemble probabilities (mean, std) of plain arrays.

    Cadence-aware ensembles (three input channels) get the preprocessing they were
    trained with (trend width for the cadence, shrinking window at segment ends,
    adaptive trend) and the cadence channel; two-channel ones (up to 1.2.0) the
    original preprocessing.
    """
    from ..device import import_tensorflow

    tf = import_tensorflow()
    window = int(getattr(models[0], "window", 200))
    aware = _cadence_aware(models)
    prep, code = _preprocessing(cadence_days * 86400.0, aware)
    segs = core.prepare(time, flux, flux_err, cadence=cadence_days, **prep)
    means, stds = [], []
    if not segs:
        return segs, means, stds
    # all segments in one pass: each is padded on its own and the padded arrays are
    # concatenated; output cell ``offset + i`` sees exactly the window of cell ``i`` of
    # its segment, and the outputs whose window straddles two segments are skipped
    padded = [core.pad_input(seg.channels(code), window) for seg in segs]
    offsets = np.cumsum([0] + [p.shape[0] for p in padded[:-1]])
    xt = tf.constant(np.concatenate(padded)[None])
    preds = np.stack([np.asarray(m(xt, training=False))[0, :, 0] for m in models])
    for seg, off in zip(segs, offsets):
        part = preds[:, off:off + seg.size]
        # cadences that are missing or flagged as systematics are not flares
        means.append(np.where(seg.mask, part.mean(axis=0), 0.0))
        stds.append(np.where(seg.mask, part.std(axis=0), 0.0))
    return segs, means, stds


def _load(model, device):
    from ..weights import load_models

    if not isinstance(model, str):  # built members, e.g. weights under evaluation
        models = list(model)
        return models, {"model": "unregistered", "version": "", "sha256": [],
                        "files": [], "device": device, "input": {}}
    models, info = load_models(model, device=device)
    return models, info


def _run(lc, *, model, device, quality_bitmask):
    from ..device import device_scope

    p = _parse_lightcurve(lc, quality_bitmask=quality_bitmask)
    models, info = _load(model, device)
    k = _bin_factor(p["cadence_s"], _cadence_aware(models))
    if k == 1:
        idx = np.flatnonzero(p["good"])
        t, f, e = p["time"][idx], p["flux"][idx], p["flux_err"][idx]
        orig = idx
        cadence_days = p["cadence_s"] / 86400.0
    else:
        t, f, e, orig, cadence_days = _binned(p, k)
    with device_scope(device) as label:
        segs, means, stds = _score_arrays(t, f, e, cadence_days, models)
    info = dict(info, device=label)
    return p, k, t, orig, cadence_days, segs, means, stds, info


def _events_table(p, k, orig, cadence_days, segs, means, stds, info, threshold,
                  min_sigma=3.0, min_run=None):
    from astropy import units as u

    rows = []
    cadence_s = cadence_days * 86400.0
    min_run, min_len = _default_rule(cadence_s, min_run)
    for seg, pm, ps in zip(segs, means, stds):
        for start, stop, peak in core.segment_events(seg, pm, threshold, min_sigma=min_sigma,
                                                     min_run=min_run, min_len=min_len):
            if not seg.mask[peak]:
                continue
            a, b, ampl, ed, ed_err = core.event_properties(
                seg, min(start, peak), max(stop, peak), peak, cadence_s)
            best = start + int(np.argmax(pm[start:stop + 1]))
            rows.append({"tpeak": seg.time[peak], "tstart": seg.time[a],
                         "tstop": seg.time[b], "peak_index": int(orig[seg.index[peak]]),
                         "amplitude": ampl, "amplitude_sigma": float(seg.z[peak]),
                         "ed": ed, "ed_err": ed_err, "prob": float(pm[best]),
                         "prob_std": float(ps[best])})
    rows.sort(key=lambda r: r["tpeak"])
    Table = _flare_table_cls()
    time_obj = p["time_obj"]

    def as_time(vals):
        vals = np.asarray(vals, dtype=float)
        if time_obj.format in ("btjd", "bkjd"):
            return time_obj.__class__(vals, format=time_obj.format, scale=time_obj.scale)
        # the values are JD: give them the light curve's format (mjd, iso, ...), so
        # tstart/tstop compare and plot like tpeak and the light curve's time
        out = time_obj.__class__(vals, format="jd", scale=time_obj.scale)
        out.format = time_obj.format
        return out

    peak_index = np.array([r["peak_index"] for r in rows], dtype=np.int64)
    tab = Table()
    tab["tpeak"] = as_time([r["tpeak"] for r in rows])
    tab["tstart"] = as_time([r["tstart"] for r in rows])
    tab["tstop"] = as_time([r["tstop"] for r in rows])
    if k == 1:
        # exact times of the cadences of the caller's light curve
        for col in ("tpeak",):
            if len(rows):
                tab[col] = time_obj[peak_index]
    tab["peak_index"] = peak_index
    tab["cadenceno"] = p["cadenceno"][peak_index] if len(rows) else np.zeros(0, np.int64)
    tab["amplitude"] = np.array([r["amplitude"] for r in rows], dtype=float) * \
        u.dimensionless_unscaled
    tab["amplitude_sigma"] = np.array([r["amplitude_sigma"] for r in rows], dtype=float)
    tab["ed"] = np.array([r["ed"] for r in rows], dtype=float) * u.s
    tab["ed_err"] = np.array([r["ed_err"] for r in rows], dtype=float) * u.s
    tab["prob"] = np.array([r["prob"] for r in rows], dtype=float)
    tab["prob_std"] = np.array([r["prob_std"] for r in rows], dtype=float)
    tab.meta.update({
        "model": info["model"], "version": info["version"],
        "sha256": list(info["sha256"]), "n_members": len(info["sha256"]),
        "threshold": float(threshold), "min_sigma": float(min_sigma),
        "min_run": int(min_run), "min_len": int(min_len),
        "cadence_s": round(float(cadence_s), 3),
        "binned_by": int(k), "device": info["device"]})
    return tab


def _check_threshold(threshold):
    try:
        th = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"threshold must be a number in (0, 1), not {threshold!r}") from None
    if not 0 < th < 1:
        raise InputError(f"threshold must be in (0, 1), not {threshold!r}")
    return th


def _check_min_sigma(min_sigma):
    try:
        ms = float(min_sigma)
    except (TypeError, ValueError):
        raise InputError(f"min_sigma must be a number, not {min_sigma!r}") from None
    if not np.isfinite(ms):
        raise InputError(f"min_sigma must be finite, not {min_sigma!r}")
    return ms


def _check_integer(name, value, least):
    """``value`` as an int, if it is an integer (not a bool) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise InputError(f"{name} must be an integer >= {least}, not {value!r}")
    return int(value)


def _check_min_run(min_run):
    return None if min_run is None else _check_integer("min_run", min_run, 1)


def find_flares(lc, threshold=0.5, *, min_sigma=3.0, min_run=None, model=_DEFAULT_MODEL,
                device=None, quality_bitmask="default"):
    """Find stellar flares in a light curve with the flare CNN ensemble.

    Parameters
    ----------
    lc : `lightkurve.LightCurve`
        Any light curve (TESS, Kepler, K2, subclasses, results of ``flatten()`` or
        ``remove_outliers()``), with flux in any linear unit (e-/s, counts,
        normalised, none) and a positive flux level. It is not modified.
        Supported cadences: TESS 2 min, and with a cadence-aware model (``flares-cnn``
        1.3.0, the default) also TESS 10 min and 30 min and Kepler/K2 long cadence
        (1765 s). 20-s TESS and 1-min Kepler light curves are binned to 2 minutes
        first; other cadences (200-s TESS included) raise
        `~astroml_affiliated.InputError`.
    threshold : float, optional
        Ensemble-mean probability above which a cadence belongs to a flare (default 0.5).
    min_sigma : float, optional
        An event's peak must be at least this many times the local scatter above the
        trend (default 3).
    min_run : int, optional
        An event must contain at least this many consecutive cadences more than 2.5
        sigma above the trend. Default: 2 below 5-min cadence (a single high cadence with
        no decay is an outlier, not a resolved flare), 1 (no check) from 5 min on, where
        a flare spans one or two cadences; there an event also needs only one cadence
        above ``threshold`` instead of two.
    model : str, optional
        A model of the weights registry (default ``'flares-cnn'``).
    device : {None, 'cpu', 'gpu', 'gpu:N'}, optional
        Where the network runs (None: ``conf.default_device``).
    quality_bitmask : {'default', 'hard', 'hardest', 'none'} or int, optional
        Cadences whose ``quality`` flags match are skipped (lightkurve's bitmasks: the
        Kepler ones for `~lightkurve.KeplerLightCurve` and Kepler/K2 ``MISSION``,
        otherwise TESS's). Masked and NaN flux values are skipped as well.

    Returns
    -------
    FlareTable
        One row per flare (see `FlareTable`), sorted by peak time.

    Raises
    ------
    InputError
        Folded, empty, all-NaN or unsorted light curves, unsupported cadences,
        magnitudes or non-positive flux levels.

    Notes
    -----
    Probabilities above ``threshold`` that are separated by up to 3 cadences form one
    event; its peak is the brightest cadence of the event. Events spanning a single
    cadence, peaking below ``min_sigma``, or with fewer than ``min_run`` consecutive
    cadences above 2.5 sigma, are dropped. The light curve is split at
    interruptions longer than 10 cadences, and every segment is scored up to its first
    and last cadence.
    """
    threshold = _check_threshold(threshold)
    min_sigma = _check_min_sigma(min_sigma)
    min_run = _check_min_run(min_run)
    p, k, t, orig, cad, segs, means, stds, info = _run(
        lc, model=model, device=device, quality_bitmask=quality_bitmask)
    tab = _events_table(p, k, orig, cad, segs, means, stds, info, threshold,
                        min_sigma, min_run)
    tab._lightcurve = lc
    return tab


def flare_probability(lc, *, model=_DEFAULT_MODEL, device=None, quality_bitmask="default"):
    """Per-cadence flare probability, as a copy of the light curve with new columns.

    Returns a copy of ``lc`` with columns ``flare_prob`` (ensemble mean) and
    ``flare_prob_std`` (ensemble standard deviation); NaN where a cadence was not scored
    (NaN flux, bad quality). For binned cadences (20 s, Kepler 1 min) every cadence of a
    2-min bin gets that bin's probability. Parameters as for `find_flares`.
    """
    p, k, t, orig, cad, segs, means, stds, info = _run(
        lc, model=model, device=device, quality_bitmask=quality_bitmask)
    n = len(lc)
    prob = np.full(n, np.nan)
    std = np.full(n, np.nan)
    if k == 1:
        for seg, pm, ps in zip(segs, means, stds):
            m = seg.mask
            prob[orig[seg.index[m]]] = pm[m]
            std[orig[seg.index[m]]] = ps[m]
    else:
        tb = np.full(len(t), np.nan)
        sb = np.full(len(t), np.nan)
        for seg, pm, ps in zip(segs, means, stds):
            m = seg.mask
            tb[seg.index[m]] = pm[m]
            sb[seg.index[m]] = ps[m]
        good = np.flatnonzero(p["good"])
        j = np.clip(np.searchsorted(t, p["time"][good] - cad / 2), 0, len(t) - 1)
        prob[good] = tb[j]
        std[good] = sb[j]
    out = lc.copy()
    out["flare_prob"] = prob
    out["flare_prob_std"] = std
    out.meta["FLARE_MODEL"] = f"{info['model']} {info['version']}"
    return out


_COLLECTION_NAMES = ("find_flares_collection", "target_and_sector", "count_coincident",
                     "count_overlapping", "_time_days")


def __getattr__(name):
    """The collection functions, now in `._collection`, stay importable from here."""
    if name in _COLLECTION_NAMES:
        from . import _collection

        return getattr(_collection, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
