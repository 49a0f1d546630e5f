"""Flares in a collection of light curves, with the shared-artefact veto.

`find_flares_collection` runs `find_flares` on every light curve and marks the events
that coincide or overlap in time with other targets' events.
"""

import numpy as np
from astropy import units as u

from ..errors import InputError
from ._high_level import _check_integer, _flare_table_cls, find_flares

__all__ = ["find_flares_collection", "target_and_sector", "count_coincident",
           "count_overlapping"]


def target_and_sector(lc):
    """Target name and sector (or Kepler quarter, K2 campaign) from a light curve's meta.

    Returns ``("", -1)`` for what the meta does not say.
    """
    meta = getattr(lc, "meta", None) or {}
    target = ""
    for key in ("TARGETID", "TICID", "KEPLERID", "OBJECT", "LABEL"):
        if meta.get(key) not in (None, ""):
            target = str(meta[key])
            break
    sector = -1
    for key in ("SECTOR", "QUARTER", "CAMPAIGN"):
        if meta.get(key) not in (None, ""):
            try:
                sector = int(meta[key])
            except (TypeError, ValueError):
                pass
            break
    return target, sector


def count_coincident(peak_jd, target, window_days):
    """For each event, the number of other targets with an event whose peak lies within
    ``window_days`` of its peak (``peak_jd`` in days, any common zero point)."""
    peak_jd = np.asarray(peak_jd, dtype=float)
    target = np.asarray(target)
    order = np.argsort(peak_jd, kind="stable")
    t = peak_jd[order]
    lo = np.searchsorted(t, t - window_days, side="left")
    hi = np.searchsorted(t, t + window_days, side="right")
    counts = np.zeros(len(t), dtype=np.int64)
    for i in range(len(t)):
        near = target[order[lo[i]:hi[i]]]
        counts[order[i]] = len(set(near.tolist()) - {target[order[i]]})
    return counts


def count_overlapping(start_jd, stop_jd, target, pad_days, max_days):
    """For each event, the number of other targets with an event overlapping it in time.

    Each event's span ``start..stop`` (days, any common zero point) is cut to at most
    ``max_days`` after its start and widened by ``pad_days`` on both sides; two events
    overlap when their widened spans do.
    """
    start = np.asarray(start_jd, dtype=float) - pad_days
    stop = np.minimum(np.asarray(stop_jd, dtype=float),
                      np.asarray(start_jd, dtype=float) + max_days) + pad_days
    target = np.asarray(target)
    order = np.argsort(start, kind="stable")
    s_sorted = start[order]
    longest = float(np.max(stop - start)) if start.size else 0.0
    counts = np.zeros(start.size, dtype=np.int64)
    for i in range(start.size):
        # candidates: events starting before this one stops, and not long before it
        lo = np.searchsorted(s_sorted, start[i] - longest, side="left")
        hi = np.searchsorted(s_sorted, stop[i], side="right")
        j = order[lo:hi]
        j = j[stop[j] >= start[i]]
        counts[i] = len(set(target[j].tolist()) - {target[i]})
    return counts


def _time_days(name, value, example):
    """A non-negative time Quantity in days, or InputError naming ``name``."""
    try:
        days = u.Quantity(value).to_value(u.day)
    except (TypeError, u.UnitsError):
        raise InputError(f"{name} must be a time Quantity (e.g. {example}), "
                         f"not {value!r}") from None
    if not np.isfinite(days) or days < 0:
        raise InputError(f"{name} must be >= 0, not {value!r}")
    return float(days)


def find_flares_collection(collection, threshold=0.5, *, coincidence_window=15 * u.min,
                           veto_min_targets=2, veto_max_duration=1 * u.day, **kwargs):
    """Find flares in every light curve of a `lightkurve.LightCurveCollection`.

    Returns one `FlareTable` with extra columns ``target`` (TIC/KIC/EPIC id, ``OBJECT``
    or ``lcN``), ``sector`` (sector, quarter or campaign; -1 if unknown), ``lc_index``
    (position in the collection) and ``n_coincident``: the number of *other* targets in
    the collection with an event peaking within ``coincidence_window`` (a Quantity of
    time, default 15 min; 0 turns the count off) of this one. Two stars flaring within
    minutes of each other is rare, while spacecraft and scattered-light artefacts hit
    every star observed at that moment, so ``n_coincident > 0`` marks events to look at
    (they are kept, not removed: in a large collection of active stars chance
    coincidences happen too).

    Shared artefacts can last hours (flat-topped, box-shaped jumps of many stars during
    one day): the events' *spans* are compared as well. ``n_overlapping`` counts the
    other targets with an event whose span (``tstart``-``tstop``, at most
    ``veto_max_duration`` long, default 1 day, widened by ``coincidence_window``)
    overlaps this event's, and ``artefact`` is True when the event shares its time with
    events on at least ``veto_min_targets`` targets in all (itself included; default 2).
    Marked events are kept, not removed: select ``tab[~tab["artefact"]]`` to drop them.
    Other parameters as for `find_flares`.
    """
    from astropy.table import vstack

    window = _time_days("coincidence_window", coincidence_window, "15 * u.min")
    max_dur = _time_days("veto_max_duration", veto_max_duration, "1 * u.day")
    veto_min_targets = _check_integer("veto_min_targets", veto_min_targets, 2)

    import lightkurve as lk

    if isinstance(collection, lk.LightCurve):
        raise InputError("expected a LightCurveCollection, got a single "
                         f"{type(collection).__name__}: use find_flares(lc) or "
                         "lk.LightCurveCollection([lc, ...])")
    try:
        items = list(collection)
    except TypeError:
        raise InputError(f"expected a LightCurveCollection, got {type(collection).__name__}") \
            from None
    if not items:
        raise InputError("the light curve collection is empty")
    tables = []
    for i, lc in enumerate(items):
        tab = find_flares(lc, threshold, **kwargs)
        target, sector = target_and_sector(lc)
        target = target or f"lc{i}"
        tab["target"] = np.array([target] * len(tab), dtype=str)
        tab["sector"] = np.full(len(tab), sector, dtype=np.int64)
        tab["lc_index"] = np.full(len(tab), i, dtype=np.int64)
        tables.append(tab)
    meta = dict(tables[0].meta)
    # different time formats cannot be stacked: convert to the first one's
    out = vstack(tables, metadata_conflicts="silent")
    Table = _flare_table_cls()
    out = Table(out)
    out.meta.clear()
    out.meta.update(meta)
    out.meta["n_lightcurves"] = len(items)
    # mixed cadences (e.g. 2-min and 20-s binned): one value per light curve, in order
    for key in ("cadence_s", "binned_by"):
        vals = [t.meta[key] for t in tables]
        if len(set(vals)) > 1:
            out.meta[key] = vals
    # peaks on one time scale (the light curves' zero points may differ: use JD, TDB)
    peak_jd = out["tpeak"].tdb.jd if len(out) else np.zeros(0)
    out["n_coincident"] = (count_coincident(peak_jd, np.asarray(out["target"]), window)
                           if window > 0 else np.zeros(len(out), dtype=np.int64))
    out.meta["coincidence_window_min"] = window * 1440.0
    if len(out):
        n_over = count_overlapping(out["tstart"].tdb.jd, out["tstop"].tdb.jd,
                                   np.asarray(out["target"]), window, max_dur)
    else:
        n_over = np.zeros(0, dtype=np.int64)
    out["n_overlapping"] = n_over
    out["artefact"] = n_over >= veto_min_targets - 1
    out.meta["veto_min_targets"] = int(veto_min_targets)
    out.meta["veto_max_duration_d"] = float(max_dur)
    return out
