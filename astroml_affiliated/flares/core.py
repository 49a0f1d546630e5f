"""Numerical core of the flare finder: plain numpy arrays in, plain numpy arrays out.

Nothing here imports TensorFlow, Keras or lightkurve. The public functions in
:mod:`astroml_affiliated.flares._high_level` parse light curves into arrays, call the
functions below, and run the network on what :func:`prepare` returns.

Preprocessing (the same in training and inference)
--------------------------------------------------
1. Cadences with non-finite time or flux, or a bad quality flag, are dropped.
2. The light curve is split into *segments* at interruptions longer than ``max_gap``
   cadences; no network window ever straddles such a gap. Shorter interruptions stay
   inside a segment as empty cells on a regular cadence grid, marked by the mask channel.
3. A trend is taken per segment with a running median (``trend_width`` cadences), run
   twice: in the second pass cadences more than 2.5 sigma above the first trend (and the
   10 after them) are replaced by the first trend, so a flare does not lift its own
   baseline. Where the trend is more than ``level_factor`` (2) times above or below the
   light curve's median flux (runaway or near-zero flux of a bad aperture), cadences are
   treated as missing.
4. The residual ``flux - trend`` is divided by a running robust scatter (median absolute
   deviation over about a day), giving ``z`` in units of the local noise.
5. The network input has two channels: ``asinh(z)`` (linear for small ``z``,
   logarithmic for big flares) and a mask (1 where a cadence exists, 0 in empty grid
   cells and padding). Each segment is padded with zeros by half a window on each side,
   so the first and last cadences of every segment are scored like all others.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import special
from scipy.ndimage import median_filter

__all__ = ["davenport2014", "mendoza2022", "flare_template", "running_median",
           "detrend", "trend_width_for", "cadence_code", "bin_exposures",
           "robust_std", "Segment", "prepare", "pad_input", "find_events",
           "segment_events", "source_indices", "longest_run",
           "sigma_clip_finder", "event_properties"]

# --------------------------------------------------------------------------------------
# flare templates


def davenport2014(t, tpeak, fwhm, ampl):
    """Davenport et al. (2014, ApJ 797, 122) empirical flare template.

    Parameters
    ----------
    t, tpeak, fwhm : float or array
        Times, peak time and full width at half maximum, all in the same unit.
    ampl : float
        Peak relative amplitude.
    """
    x = (np.asarray(t, dtype=float) - tpeak) / fwhm
    out = np.zeros_like(x)
    rise = (x > -1) & (x <= 0)
    xr = x[rise]
    out[rise] = 1 + 1.941 * xr - 0.175 * xr**2 - 2.246 * xr**3 - 1.125 * xr**4
    decay = x > 0
    xd = x[decay]
    out[decay] = 0.6890 * np.exp(-1.600 * xd) + 0.3030 * np.exp(-0.2783 * xd)
    return ampl * np.clip(out, 0, None)


_M22 = (0.9687734504375167, -0.251299705922117, 0.22675974948468916,
        0.15551880775110513, 1.2150539528490194, 0.12695865022878844)


def mendoza2022(t, tpeak, fwhm, ampl):
    """Mendoza et al. (2022, AJ 164, 17) analytic flare template (``llamaradas``).

    A Gaussian convolved with a double exponential; same arguments as `davenport2014`.
    """
    a, b, c, d1, d2, f1 = _M22
    f2 = 1 - f1
    x = (np.asarray(t, dtype=float) - tpeak) / fwhm

    def term(d, f):
        arg = (b - x) / c + c * d / 2
        # exp(u) * erfc(arg) written with erfcx for numerical stability
        u = -d * x + (b / c + d * c / 2) ** 2
        pos = arg > 0
        val = np.where(pos, np.exp(np.where(pos, u - arg**2, 0.0))
                       * special.erfcx(np.where(pos, arg, 0.0)),
                       np.exp(np.where(pos, 0.0, u)) * special.erfc(arg))
        return 0.5 * np.sqrt(np.pi) * a * c * f * val

    with np.errstate(over="ignore", invalid="ignore"):
        out = term(d1, f1) + term(d2, f2)
    out = np.nan_to_num(out, nan=0.0, posinf=0.0)
    # the published form peaks at 0.950; normalise so that ``ampl`` is the peak
    return ampl * np.clip(out, 0, None) / _M22_PEAK


_M22_PEAK = 1.0
_M22_PEAK = float(np.max(mendoza2022(np.linspace(-1, 1, 20001), 0.0, 1.0, 1.0)))

_TEMPLATES = {"davenport2014": davenport2014, "mendoza2022": mendoza2022}


def flare_template(t, tpeak, fwhm, ampl, *, template="davenport2014", exptime=None,
                   oversample=15):
    """A flare template averaged over each exposure (what an integrating detector sees).

    ``exptime`` is the exposure duration in the unit of ``t``; None samples the template
    at ``t`` without averaging.
    """
    func = _TEMPLATES[template]
    t = np.asarray(t, dtype=float)
    if exptime is None or oversample <= 1:
        return func(t, tpeak, fwhm, ampl)
    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    sub = t[..., None] + offsets * exptime
    return func(sub, tpeak, fwhm, ampl).mean(axis=-1)


# --------------------------------------------------------------------------------------
# statistics


def robust_std(x):
    """1.4826 times the median absolute deviation of the finite values of ``x``."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan
    return 1.4826 * np.median(np.abs(x - np.median(x)))


def running_median(x, width, mask=None, *, edge="nearest"):
    """Running median of ``x`` over ``width`` samples, ignoring masked (True) samples.

    ``edge`` says what the window holds near the ends: ``'nearest'`` (the behaviour of
    model versions up to 1.2.0) repeats the end value, which pins the median to it, so
    a flare on the last cadences lifts its own trend; ``'shrink'`` takes the median of
    the samples that exist (a window of ``width // 2 + 1`` samples at the very end).
    Where a window holds only masked samples, the plain running median is returned.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    width = int(max(1, min(width, n)))
    if width % 2 == 0:
        width = max(1, width - 1)
    if edge not in ("nearest", "shrink"):
        raise ValueError(f"edge must be 'nearest' or 'shrink', not {edge!r}")
    plain = median_filter(x, size=width, mode="nearest")
    half = width // 2
    y = x if mask is None else np.where(mask, np.nan, x)
    if edge == "shrink" and half:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for i in list(range(min(half, n))) + list(range(max(half, n - half), n)):
                lo, hi = max(0, i - half), min(n, i + half + 1)
                m = np.nanmedian(y[lo:hi])
                plain[i] = m if np.isfinite(m) else np.median(x[lo:hi])
    if mask is None or not np.any(mask):
        return plain
    padded = np.concatenate([np.full(half, np.nan), y, np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    # nanmedian over windows; evaluate only where the mask matters (near masked samples)
    near = np.convolve(mask.astype(float), np.ones(width), mode="same") > 0
    out = plain.copy()
    idx = np.flatnonzero(near)
    if idx.size:
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(windows[idx], axis=1)
        good = np.isfinite(med)
        out[idx[good]] = med[good]
    return out


def _running_scatter(resid, block=30, width_blocks=25):
    """Running robust scatter of ``resid`` (block MADs, smoothed, interpolated)."""
    n = resid.size
    nb = max(1, int(np.ceil(n / block)))
    padded = np.full(nb * block, np.nan)
    padded[:n] = resid
    blocks = padded.reshape(nb, block)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # first differences are insensitive to any remaining slow trend
        d = np.diff(blocks, axis=1)
        mad = 1.4826 * np.nanmedian(np.abs(d - np.nanmedian(d, axis=1)[:, None]),
                                    axis=1) / np.sqrt(2)
    good = np.isfinite(mad) & (mad > 0)
    if not np.any(good):
        s = robust_std(resid)
        return np.full(n, s if np.isfinite(s) and s > 0 else 1.0)
    mad = np.interp(np.arange(nb), np.flatnonzero(good), mad[good])
    mad = median_filter(mad, size=min(width_blocks, nb) | 1, mode="nearest")
    centres = np.arange(nb) * block + (block - 1) / 2
    out = np.interp(np.arange(n), centres, mad)
    floor = 1e-3 * np.nanmedian(mad) if np.nanmedian(mad) > 0 else 1e-12
    return np.maximum(out, floor)


# --------------------------------------------------------------------------------------
# preprocessing


@dataclass
class Segment:
    """One uninterrupted stretch of a light curve on a regular cadence grid.

    Attributes
    ----------
    index : ndarray of int
        For each grid cell, the index of the cadence in the caller's arrays (-1: empty).
    time : ndarray
        Time of each grid cell (interpolated in empty cells), days.
    flux, trend, scatter : ndarray
        Flux (NaN in empty cells), running-median trend and running robust scatter.
    z : ndarray
        ``(flux - trend) / scatter`` (0 in empty cells).
    mask : ndarray of bool
        True where a cadence exists.
    """

    index: np.ndarray
    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    trend: np.ndarray
    scatter: np.ndarray
    z: np.ndarray
    mask: np.ndarray
    extra: dict = field(default_factory=dict)

    @property
    def size(self):
        return self.index.size

    def channels(self, cadence_code=None):
        """The network input of this segment (without padding), shape (n, 2), or
        (n, 3) with a constant third channel ``cadence_code`` (models that take the
        cadence as an input, see `cadence_code`)."""
        chans = [np.arcsinh(self.z), self.mask.astype(float)]
        if cadence_code is not None:
            chans.append(np.where(self.mask, float(cadence_code), 0.0))
        return np.stack(chans, axis=-1).astype("float32")


def _detrend_once(x, good, trend_width, edge):
    trend = running_median(x, trend_width, edge=edge)
    scatter = _running_scatter(np.where(good, x - trend, np.nan))
    high = good & ((x - trend) > 2.5 * scatter)
    grown = np.zeros(x.size, dtype=bool)
    if np.any(high):
        # grow the mask: 2 cadences before, 10 after (a flare's decay); masked cadences
        # take the first trend's value, and the running median is taken again
        grown = np.convolve(high.astype(float), np.ones(13), mode="full")[8:8 + x.size] > 0
        trend = running_median(np.where(grown, trend, x), trend_width, edge=edge)
        scatter = _running_scatter(np.where(good & ~grown, x - trend, np.nan))
    return trend, scatter, grown


#: Adaptive trend: the widest width whose residuals scatter (robustly) by at most
#: this many times the white noise (first differences) is used.
RED_NOISE_LIMIT = 1.3


def detrend(flux, trend_width, *, edge="nearest", adaptive=False, min_width=9):
    """Trend and scatter of one gap-free segment (NaN allowed for empty cells).

    With ``adaptive``, the running median's width is shortened (to 2/3, 1/2 and 1/3 of
    ``trend_width``, never below ``min_width``) while the robust scatter of the
    residuals (a robust measure: flares barely move it) exceeds `RED_NOISE_LIMIT` times the white noise measured
    from first differences: a fast rotator's modulation is then followed instead of
    leaving a red-noise residual many times the noise.
    """
    good = np.isfinite(flux)
    x = np.where(good, flux, np.interp(np.arange(flux.size), np.flatnonzero(good),
                                        flux[good]))
    widths = [int(trend_width)]
    if adaptive:
        for frac in (2 / 3, 1 / 2, 1 / 3):
            w = int(round(trend_width * frac)) | 1
            if w >= min_width and w < widths[-1]:
                widths.append(w)
    best = None
    for w in widths:
        trend, scatter, grown = _detrend_once(x, good, w, edge)
        if len(widths) == 1:
            return trend, scatter
        keep = good
        red = robust_std((x - trend)[keep] / scatter[keep]) if keep.sum() > 10 else 0.0
        if best is None or red < best[0]:
            best = (red, trend, scatter)
        if red <= RED_NOISE_LIMIT:
            return trend, scatter
    return best[1], best[2]


def trend_width_for(cadence_s):
    """Running-median width (cadences) for a cadence in seconds: about 2.4 hours, at
    least 13 cadences (73 at 2 min, 45 at 200 s, 15 at 10 min, 13 at 30 min)."""
    return max(13, int(round(8760.0 / float(cadence_s))) | 1)


def cadence_code(cadence_s):
    """The cadence channel's value: ``log2(cadence / 120 s) / 4`` (0 at 2 min, about
    0.18 at 200 s, 0.58 at 10 min, 0.98 at 30 min)."""
    return float(np.log2(float(cadence_s) / 120.0) / 4.0)


def bin_exposures(time, flux, flux_err, cadence, new_cadence, *, min_cover=0.5):
    """Bin a light curve to a longer cadence by integrating the flux over each new
    exposure (what a detector with that exposure sees).

    Each cadence is taken to cover ``time +- cadence / 2``; new exposures are
    ``new_cadence`` long and start at the first cadence's start. Fractional overlaps are
    weighted by their length (exact averaging when ``new_cadence / cadence`` is an
    integer). An exposure needs at least ``min_cover`` of its length covered by
    finite flux.

    Returns
    -------
    time, flux, flux_err : ndarray
        Mid-times, mean flux and its propagated error of the kept exposures.
    brightest : ndarray of int
        For each exposure, the index (into the input) of its brightest cadence.
    """
    time = np.asarray(time, dtype=float)
    flux = np.asarray(flux, dtype=float)
    err = np.asarray(flux_err, dtype=float)
    ok = np.flatnonzero(np.isfinite(time) & np.isfinite(flux))
    t, f, e = time[ok], flux[ok], err[ok]
    t0 = t[0] - cadence / 2
    a = t - cadence / 2 - t0
    b = t + cadence / 2 - t0
    ba = np.floor(a / new_cadence + 1e-9).astype(np.int64)
    bb = np.floor(b / new_cadence - 1e-9).astype(np.int64)
    nb = int(bb.max()) + 1
    # an input cadence spans at most two exposures (new_cadence >= cadence)
    w1 = np.minimum(b, (ba + 1) * new_cadence) - a
    w2 = np.where(bb > ba, b - bb * new_cadence, 0.0)
    wsum = np.zeros(nb)
    fsum = np.zeros(nb)
    esum = np.zeros(nb)
    fin_e = np.isfinite(e)
    for bins, w in ((ba, w1), (bb, w2)):
        np.add.at(wsum, bins, w)
        np.add.at(fsum, bins, w * f)
        np.add.at(esum, bins, np.where(fin_e, (w * e) ** 2, np.nan))
    keep = np.flatnonzero(wsum >= min_cover * new_cadence)
    tb = t0 + (keep + 0.5) * new_cadence
    fb = fsum[keep] / wsum[keep]
    eb = np.sqrt(esum[keep]) / wsum[keep]
    # brightest contributing cadence per exposure
    order = np.lexsort((-f, ba))
    first = np.full(nb, -1, dtype=np.int64)
    seen = np.r_[True, ba[order][1:] != ba[order][:-1]]
    first[ba[order][seen]] = order[seen]
    bright = first[keep]
    bright = np.where(bright >= 0, bright,
                      np.clip(np.searchsorted(t, tb), 0, t.size - 1))
    return tb, fb, eb, ok[bright]


def prepare(time, flux, flux_err=None, *, cadence, max_gap=10, trend_width=73,
            level_factor=2.0, trend_edge="nearest", adaptive=False):
    """Split a light curve into gap-free segments and normalise each.

    Parameters
    ----------
    time : ndarray
        Times in days, finite and strictly increasing.
    flux, flux_err : ndarray
        Flux and its uncertainty (any unit; NaN allowed and skipped).
    cadence : float
        The cadence in days.
    max_gap : int
        Interruptions of more than this many cadences split the light curve.
    trend_width : int
        Width of the running median, in cadences.
    trend_edge : {'nearest', 'shrink'}
        How the running median treats segment ends (see `running_median`; 'nearest'
        is the preprocessing of model versions up to 1.2.0).
    adaptive : bool
        Shorten the running median where the residuals are red (see `detrend`).
    level_factor : float
        Cadences where the running median is more than this factor above or below the
        median flux of the whole light curve are treated as missing (systematics such
        as runaway or near-zero flux); they are not scored.

    Returns
    -------
    list of `Segment`
    """
    time = np.asarray(time, dtype=float)
    flux = np.asarray(flux, dtype=float)
    flux_err = (np.full_like(flux, np.nan) if flux_err is None
                else np.asarray(flux_err, dtype=float))
    keep = np.flatnonzero(np.isfinite(time) & np.isfinite(flux))
    segments = []
    if keep.size == 0:
        return segments
    t = time[keep]
    level = float(np.median(flux[keep]))
    steps = np.rint(np.diff(t) / cadence).astype(np.int64)
    breaks = np.flatnonzero(steps > max_gap) + 1
    for part in np.split(np.arange(keep.size), breaks):
        if part.size == 0:
            continue
        tp = t[part]
        pos = np.concatenate([[0], np.cumsum(np.maximum(steps[part[:-1]], 1))])
        n = int(pos[-1]) + 1
        index = np.full(n, -1, dtype=np.int64)
        index[pos] = keep[part]
        grid_t = np.interp(np.arange(n), pos, tp) if part.size > 1 else tp.copy()
        f = np.full(n, np.nan)
        f[pos] = flux[keep[part]]
        fe = np.full(n, np.nan)
        fe[pos] = flux_err[keep[part]]
        if part.size >= 3:
            trend, scatter = detrend(f, trend_width, edge=trend_edge, adaptive=adaptive)
        else:
            trend = np.full(n, np.nanmedian(f))
            scatter = np.full(n, max(abs(np.nanmedian(f)) * 1e-3, 1e-12))
        mask = index >= 0
        if level > 0:
            # stretches whose running median is far from the light curve's level
            # (runaway or near-zero flux of a bad aperture): not scored
            off = (trend > level * level_factor) | (trend < level / level_factor)
            mask &= ~off
        z = np.where(mask, (np.where(mask, f, 0) - trend) / scatter, 0.0)
        segments.append(Segment(index=index, time=grid_t, flux=f, flux_err=fe,
                                trend=trend, scatter=scatter, z=z, mask=mask))
    return segments


def pad_input(channels, window):
    """Zero-pad a segment's channels so a valid convolution scores every cadence.

    Output cell ``i`` of the network then sees input cadences ``i - window // 2`` to
    ``i + window - window // 2 - 1``.
    """
    left = window // 2
    right = window - 1 - left
    return np.pad(channels, ((left, right), (0, 0)))


# --------------------------------------------------------------------------------------
# events


def longest_run(flags):
    """Length of the longest run of True in a 1-D boolean array (0 if none)."""
    flags = np.asarray(flags, dtype=bool)
    if not flags.any():
        return 0
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def segment_events(seg, prob, threshold, *, min_sigma=3.0, min_run=2, min_len=2):
    """Flare events of one prepared segment from its ensemble-mean probability: by
    default the event rule of `find_flares` (at least ``min_len`` = 2 cells above
    ``threshold``, peak at least ``min_sigma`` above the trend, ``min_run`` consecutive
    cells above 2.5 sigma). Returns ``(start, stop, peak)`` grid indices."""
    signal = np.where(seg.mask, seg.z, -np.inf)
    return find_events(prob, signal, threshold, min_len=min_len, min_peak=min_sigma,
                       min_run=min_run)


def source_indices(seg, start, stop, peak=None):
    """First and last existing cadence of the grid span ``start..stop`` of a segment,
    as indices into the arrays it was prepared from; with ``peak``, also the peak's
    (the first one's if the peak's cell is empty)."""
    j = np.flatnonzero(seg.mask)
    a = int(seg.index[j[np.clip(np.searchsorted(j, start), 0, j.size - 1)]])
    b = int(seg.index[j[np.clip(np.searchsorted(j, stop, side="right") - 1, 0, j.size - 1)]])
    if peak is None:
        return a, b
    return a, b, int(seg.index[peak]) if seg.mask[peak] else a


def find_events(prob, signal, threshold, *, merge_gap=3, min_len=1, min_peak=None,
                min_run=1, run_sigma=2.5):
    """Runs of ``prob >= threshold``, merged across gaps of up to ``merge_gap`` cells.

    Returns a list of ``(start, stop, peak)`` grid indices (``stop`` inclusive), the peak
    being the maximum of ``signal`` within the run (widened by 2 cells). Runs spanning
    fewer than ``min_len`` cells, whose peak ``signal`` is below ``min_peak``, or without
    ``min_run`` consecutive cells of ``signal > run_sigma`` within 2 cells of their ends,
    are dropped.
    """
    above = np.asarray(prob) >= threshold
    if not np.any(above):
        return []
    idx = np.flatnonzero(above)
    splits = np.flatnonzero(np.diff(idx) > merge_gap + 1) + 1
    events = []
    n = len(prob)
    for run in np.split(idx, splits):
        start, stop = int(run[0]), int(run[-1])
        if stop - start + 1 < min_len:
            continue
        lo, hi = max(0, start - 2), min(n, stop + 3)
        peak = lo + int(np.nanargmax(np.where(np.isfinite(signal[lo:hi]),
                                              signal[lo:hi], -np.inf)))
        if min_peak is not None and not signal[peak] >= min_peak:
            continue
        if min_run > 1 and longest_run(signal[lo:hi] > run_sigma) < min_run:
            continue
        events.append((start, stop, peak))
    return events


def event_properties(seg, start, stop, peak, cadence_s, *, side=20, max_after=300):
    """Amplitude, equivalent duration and its error for one event on a segment.

    The flux under the event is a straight line between the median flux of ``side``
    cadences before it and of ``side`` cadences after it. The event ends where the
    residual from that line, smoothed over 9 cadences, falls below a quarter of the
    local scatter (at most ``max_after`` cadences after the peak); the end and the line are
    found together by iterating. It starts up to 5 cadences before ``start`` while the
    residual stays above one sigma. ``ed`` integrates ``(flux - line) / line``.

    Returns
    -------
    a, b : int
        First and last grid cell of the event.
    amplitude, ed, ed_err : float
        Peak relative amplitude, equivalent duration [s] and its uncertainty [s].
    """
    import warnings

    n = seg.size
    m = seg.mask
    f = np.where(m, seg.flux, np.nan)
    sc = seg.scatter

    def level(lo, hi, default):
        lo, hi = max(0, lo), min(n, hi)
        vals = f[lo:hi]
        vals = vals[np.isfinite(vals)]
        return float(np.median(vals)) if vals.size >= 3 else default

    a = int(start)
    pre_c = a - 2 - side / 2
    base0 = level(a - 2 - side, a - 2, float(seg.trend[a]))
    end = int(max(stop, peak))
    for _ in range(6):
        post_c = end + 2 + side / 2
        base1 = level(end + 2, end + 2 + side, base0)
        hi = min(n, peak + max_after)
        x = np.arange(n)
        slope = (base1 - base0) / max(post_c - pre_c, 1.0)
        line = base0 + slope * (x - pre_c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = (f - line) / sc
            rs = np.convolve(np.nan_to_num(r), np.ones(9) / 9, mode="same")
        new_end = int(max(stop, peak))
        while new_end < hi - 1 and rs[new_end + 1] >= 0.25:
            new_end += 1
        if new_end == end:
            break
        end = new_end
    while a > 0 and start - a < 5 and np.isfinite(r[a - 1]) and r[a - 1] > 1:
        a -= 1
    b = end
    sl = slice(a, b + 1)
    ok = m[sl]
    rel = np.where(ok, (np.where(ok, f[sl], 0) - line[sl]) / line[sl], 0.0)
    ampl = float((f[peak] - line[peak]) / line[peak]) if m[peak] else float("nan")
    ed = float(np.sum(rel) * cadence_s)
    err_rel = np.where(ok & np.isfinite(seg.flux_err[sl]), seg.flux_err[sl], sc[sl]) / line[sl]
    ed_err = float(np.sqrt(np.sum(np.where(ok, err_rel, 0) ** 2)) * cadence_s)
    return a, b, ampl, ed, ed_err


def sigma_clip_finder(seg, *, n1=3, n2=2, n3=3, sigma=None):
    """Candidates by AltaiPony's (Chang et al. 2015) criteria on one segment.

    A cadence is a candidate when ``(f - trend) / sigma >= n1``,
    ``(f - trend - err) / sigma >= n2`` and at least ``n3`` consecutive cadences pass.
    Here sigma is the local robust scatter and the trend the masked running median of
    :func:`prepare`. Returns a list of ``(start, stop, peak)`` grid indices.
    """
    z = np.where(seg.mask, seg.z, 0.0)
    err = np.where(seg.mask & np.isfinite(seg.flux_err), seg.flux_err, 0.0)
    c1 = z >= n1
    c2 = (z - err / seg.scatter) >= n2
    ok = c1 & c2 & seg.mask
    events = []
    if not np.any(ok):
        return events
    idx = np.flatnonzero(ok)
    for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
        if run.size >= n3:
            start, stop = int(run[0]), int(run[-1])
            peak = start + int(np.argmax(z[start:stop + 1]))
            events.append((start, stop, peak))
    return events
