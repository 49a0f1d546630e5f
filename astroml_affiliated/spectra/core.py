"""Numerical core of the spectrum models: plain numpy arrays in, plain arrays out.

Nothing here knows about specutils or astropy units; :mod:`._high_level` turns a spectrum
into the arrays used here (wavelength in Å, flux per unit wavelength, variance, mask).
"""

import warnings

import numpy as np

from ..errors import InputError

__all__ = ["xp_grid", "bin_edges", "pixel_bounds", "resample_matrix", "resample",
           "normalise", "features", "impute", "whiten", "project", "log_snr", "ood_score", "ood_parts",
           "ood_disagreement", "pca_scores", "combine_ensemble", "LABELS", "PHOT_BANDS",
           "COLOURS", "colours", "complete_photometry", "colour_features", "n_inputs",
           "model_inputs", "mixture", "snr_feature", "calibrated_sigma",
           "calibration_design", "hot_label_features", "hot_design", "hot_probability",
           "widen_for_masked"]

#: Label names, in the order of the model's outputs.
LABELS = ("teff", "logg", "fe_h", "alpha_m")


def xp_grid():
    """Wavelengths (Å) of the 343 Gaia XP sampled-spectrum pixels: 3360-10200 Å by 20 Å."""
    return np.arange(336.0, 1022.0, 2.0) * 10.0


def bin_edges(centres):
    """Pixel edges (len n+1) of increasing pixel centres: midpoints, ends mirrored."""
    c = np.asarray(centres, dtype=float)
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def pixel_bounds(centres, gap=3.0, window=5):
    """Lower and upper edges of increasing pixel centres: those of `bin_edges`, except
    next to a gap in the data (a spacing more than ``gap`` times the mean of the
    ``window`` spacings on either side), which the pixels beside it do not reach into:
    there a pixel's half-width is the one on its other side (or, with gaps on both
    sides, half the local mean spacing)."""
    c = np.asarray(centres, dtype=float)
    edges = bin_edges(c)
    lo, hi = edges[:-1].copy(), edges[1:].copy()
    d = np.diff(c)
    if d.size < 2 or d.max() <= gap * d.min():
        return lo, hi  # no spacing can be a gap
    pad = np.full(d.size + 2 * window, np.nan)
    pad[window:window + d.size] = d
    around = np.lib.stride_tricks.sliding_window_view(pad, 2 * window + 1).copy()
    around[:, window] = np.nan  # the spacing itself is not its neighbourhood
    local = np.nanmean(around, axis=1)
    is_gap = d > gap * local
    if not is_gap.any():
        return lo, hi
    left = np.concatenate([[np.nan], np.where(is_gap, np.nan, d)])
    right = np.concatenate([np.where(is_gap, np.nan, d), [np.nan]])
    left, right = np.where(np.isnan(left), right, left), np.where(np.isnan(right), left, right)
    near = np.fmin(np.concatenate([local, local[-1:]]), np.concatenate([local[:1], local]))
    left, right = np.where(np.isnan(left), near, left), np.where(np.isnan(right), near, right)
    beside = np.concatenate([[False], is_gap]) | np.concatenate([is_gap, [False]])
    lo[beside] = c[beside] - 0.5 * left[beside]
    hi[beside] = c[beside] + 0.5 * right[beside]
    return lo, hi


def resample_matrix(in_wave, out_wave):
    """Overlap lengths ``W[j, i]`` (Å) of input pixel ``i`` with output pixel ``j``
    (the input pixels' edges from `pixel_bounds`: gaps in the input stay empty)."""
    ein_lo, ein_hi = pixel_bounds(in_wave)
    eout = bin_edges(out_wave)
    lo = np.maximum(eout[:-1, None], ein_lo[None, :])
    hi = np.minimum(eout[1:, None], ein_hi[None, :])
    return np.clip(hi - lo, 0.0, None)


def resample(in_wave, flux, var, good, out_wave, min_fraction=0.5):
    """Flux-conserving resampling of many spectra on one wavelength axis.

    Each output pixel gets the mean flux density over the good input pixels it
    overlaps, weighted by overlap length (so the integral of the flux is conserved);
    the variance is propagated.

    Parameters
    ----------
    in_wave : ndarray, shape (n_in,)
        Increasing input pixel centres (Å).
    flux, var : ndarray, shape (n_spec, n_in)
        Flux density per unit wavelength and its variance (``var`` may be None).
    good : ndarray of bool, shape (n_spec, n_in)
        Pixels to use.
    out_wave : ndarray, shape (n_out,)
        Output pixel centres (Å).
    min_fraction : float
        An output pixel is good if good input pixels cover at least this fraction of it.

    Returns
    -------
    flux_out, var_out : ndarray, shape (n_spec, n_out)
        ``var_out`` is None if ``var`` is None.
    good_out : ndarray of bool, shape (n_spec, n_out)
    """
    if in_wave.shape == out_wave.shape and np.allclose(in_wave, out_wave, rtol=0,
                                                       atol=1e-6 * np.diff(out_wave).min()):
        # already on the grid (e.g. Gaia XP sampled spectra): nothing to resample
        good = good.copy()
        if good.all():
            return flux, var, good
        flux_out = np.where(good, flux, np.nan)
        var_out = None if var is None else np.where(good, var, np.nan)
        return flux_out, var_out, good
    W = resample_matrix(in_wave, out_wave)  # (n_out, n_in)
    width = np.diff(bin_edges(out_wave))
    if good.all():
        # every input pixel good: one precomputed matrix (overlap / covered length)
        cover = W.sum(axis=1)
        good_out = np.broadcast_to(cover >= min_fraction * width, (len(flux), len(width)))
        with np.errstate(invalid="ignore", divide="ignore"):
            M = (W / cover[:, None]).T  # (n_in, n_out)
            flux_out = flux @ M
            var_out = None if var is None else var @ (M ** 2)
        if not good_out.all():
            flux_out = np.where(good_out, flux_out, np.nan)
            var_out = None if var_out is None else np.where(good_out, var_out, np.nan)
        return flux_out, var_out, good_out.copy()
    g = good.astype(float)
    f = np.where(good, flux, 0.0)
    cover = g @ W.T  # (n_spec, n_out), length covered by good pixels
    with np.errstate(invalid="ignore", divide="ignore"):
        flux_out = (f @ W.T) / cover
        var_out = None
        if var is not None:
            v = np.where(good, var, 0.0)
            var_out = (v @ (W.T ** 2)) / cover ** 2
    good_out = cover >= min_fraction * width[None, :]
    flux_out = np.where(good_out, flux_out, np.nan)
    if var_out is not None:
        var_out = np.where(good_out, var_out, np.nan)
    return flux_out, var_out, good_out


def row_median(a, overwrite=False):
    """Median of each row of a 2-D array without NaN (as `numpy.median` along axis 1).

    The rows are sorted as float32 (vectorised sorting networks make that about ten
    times faster than a float64 sort): for an odd number of columns the result is the
    float64 median rounded to float32, for an even number the mean of the two rounded
    middle values. Rows whose median lies outside float32's normal range are sorted in
    float64. ``overwrite``: a float32 ``a`` may be sorted in place."""
    a = np.asarray(a)
    n = a.shape[1]
    lo, hi = n // 2 - (1 - n % 2), n // 2
    if overwrite and a.dtype == np.float32:
        s = a
    else:
        s = a.astype(np.float32)  # a sorted copy
    s.sort(axis=1)
    med = 0.5 * (s[:, lo].astype(float) + s[:, hi])
    # values beyond float32's range keep their order (0 or inf); only a median there
    # has lost precision
    odd = ~((np.abs(med) > 1e-37) & (np.abs(med) < 1e37)) & (med != 0)
    if a.dtype != np.float32 and odd.any():
        srt = np.sort(a[odd], axis=1)
        med[odd] = 0.5 * (srt[:, lo] + srt[:, hi])
    return med


def normalise(flux, err, good, first=0):
    """Divide each spectrum (and its errors) by its median over good pixels (``first``:
    the number of the first spectrum, for error messages)."""
    if good.all():
        med = row_median(flux)
    else:
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(good, flux, np.nan), axis=1)
    bad = ~np.isfinite(med) | (med <= 0)
    if bad.any():
        raise InputError(
            f"spectrum {first + int(np.flatnonzero(bad)[0])}: the median flux over good "
            f"pixels is {med[bad][0]!r}; a positive flux density is expected")
    return flux / med[:, None], (None if err is None else err / med[:, None]), med


def pca_scores(xs, good, const):
    """Least-squares PCA coefficients of standardised spectra from their good pixels."""
    comps = const["pca_components"]  # (k, n_pix)
    scores = np.empty((xs.shape[0], comps.shape[0]))
    for i, (x, g) in enumerate(zip(xs, good)):
        if g.all():
            scores[i] = comps @ (x - const["pca_mean"])
        else:
            A = comps[:, g].T
            scores[i] = np.linalg.lstsq(A, x[g] - const["pca_mean"][g], rcond=None)[0]
    return scores


def impute(flux, good, const, n_iter=3):
    """Fill bad pixels of normalised spectra with their PCA reconstruction.

    Returns the filled, re-normalised flux and the normalisation factors applied.
    """
    if good.all():
        return flux, np.ones(len(flux))
    flux = flux.copy()
    scale_total = np.ones(len(flux))
    for _ in range(n_iter):
        xs = standardise(np.where(good, flux, const["flux_median"]), const)
        scores = pca_scores(xs, good, const)
        recon = const["pca_mean"] + scores @ const["pca_components"]
        filled = recon * const["flux_scale"] + const["flux_median"]
        flux = np.where(good, flux, filled)
        med = np.median(flux, axis=1)
        flux /= med[:, None]
        scale_total *= med
    return flux, scale_total


def standardise(flux, const, out=None):
    """Per-pixel robust standardisation of median-normalised flux (into ``out``, which
    may be ``flux`` itself, if given)."""
    out = np.subtract(flux, const["flux_median"], out=out)
    out /= const["flux_scale"]
    return out


def log_snr(flux, err, const, var=None):
    """log10 of the median per-pixel S/N; the training median where errors are unknown
    (rows without errors: all NaN). ``flux`` and ``err`` may be normalised or not; the
    variance ``var`` may be given instead of ``err`` (the median of the squared S/N is
    taken then: the same for an odd number of pixels, such as the model's grid)."""
    if err is None and var is None:
        return np.full(len(flux), float(const["log_snr_default"]))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows without errors: all NaN
        # S/N (or its square) as float32, whose median is taken (as in training)
        if var is None:
            ratio = np.abs(flux)
            ratio /= err
        else:
            ratio = flux * flux
            ratio /= var
        ratio = ratio.astype(np.float32)
        snr = (row_median(ratio, overwrite=True) if np.isfinite(ratio).all()
               else np.nanmedian(ratio, axis=1).astype(float))
        if var is not None:
            snr = np.sqrt(snr)
    out = np.log10(np.clip(snr, 1e-3, 1e6))
    return np.where(np.isfinite(out), out, float(const["log_snr_default"]))


def whiten(xs, const):
    """Standardised spectra rotated onto their principal components and scaled to unit
    variance (the model input before clipping), float64."""
    return project(xs, const)[0]


def project(xs, const):
    """One matrix product for what the model input and the out-of-domain score need
    from standardised spectra ``xs``: the whitened components (see `whiten`), the
    scores on the leading principal components ``(xs - mean) @ components.T`` and the
    products ``xs @ mean`` (models with a hot-star classifier that reads the spectrum,
    version 1.4.0 on, get its spectral term too: see `ood_parts`)."""
    pmean, comps, white = const["pca_mean"], const["pca_components"], const["whiten"]
    cols = [white, comps.T, pmean[:, None]]
    if "hot_pixel_coef" in const:
        cols.append(const["hot_pixel_coef"][:, None])
    proj = xs @ np.concatenate(cols, axis=1)
    nw, nc = white.shape[1], comps.shape[0]
    xw = proj[:, :nw] - pmean @ white
    scores = proj[:, nw:nw + nc] - pmean @ comps.T
    if "hot_pixel_coef" in const:
        return xw, scores, proj[:, nw + nc], proj[:, nw + nc + 1]
    return xw, scores, proj[:, nw + nc]


#: Magnitudes a photometry model takes (Gaia DR3 G, BP, RP; 2MASS J, H, Ks).
PHOT_BANDS = ("G", "BP", "RP", "J", "H", "K")
#: The colours built from them, in the order of the model inputs.
COLOURS = (("BP", "RP"), ("G", "J"), ("J", "H"), ("H", "K"), ("G", "K"))


def colours(mags):
    """Colours (n, 5) from a mapping band -> magnitudes (arrays of equal length)."""
    return np.stack([np.asarray(mags[a], float) - np.asarray(mags[b], float)
                     for a, b in COLOURS], axis=1)


def colour_features(mags, const):
    """Robustly standardised colours (float32, clipped to +-10) for models whose
    constants hold ``colour_median`` and ``colour_scale``."""
    c = (colours(mags) - const["colour_median"]) / const["colour_scale"]
    return np.clip(c, -10.0, 10.0).astype(np.float32)


def complete_photometry(mags):
    """Which stars have every magnitude a photometry model needs (finite colours)."""
    return np.all(np.isfinite(colours(mags)), axis=1)


def n_inputs(const):
    """Number of model input columns: see `features`, plus the colours of a
    photometry model."""
    n = const["whiten"].shape[1] + 1
    if bool(const.get("asinh_flux", False)):
        n += const["whiten"].shape[0]
    if "colour_scale" in const:
        n += len(COLOURS)
    return int(n)


def model_inputs(flux, err, const, mags=None):
    """All inputs of a model: `features`, then, for a photometry model, its
    `colour_features` (``mags`` required)."""
    x = features(flux, err, const)
    if "colour_scale" not in const:
        return x
    return np.concatenate([x, colour_features(mags, const)], axis=1)


def features(flux, err, const, xs=None, xw=None, ls=None, out=None):
    """Model input, float32: for models whose constants set ``asinh_flux`` (version
    1.1.0 on), asinh of the standardised flux (343 values: the robust per-pixel
    standardisation reaches +-400 in the red pixels of cool stars, which asinh
    compresses); then the standardised flux rotated onto its principal components and
    whitened (clipped to the training range); then the standardised log10 S/N.
    ``xs`` (the standardised flux), ``xw`` (its whitened components, unclipped) and
    ``ls`` (the log10 S/N) may be passed if already computed; ``out`` is an optional
    float32 array to write into."""
    if xs is None:
        xs = standardise(flux, const)
    if xw is None:
        xw = whiten(xs, const)
    if ls is None:
        ls = log_snr(flux, err, const)
    n_flux = xs.shape[1] if bool(const.get("asinh_flux", False)) else 0
    n_w = xw.shape[1]
    x = np.empty((len(xs), n_flux + n_w + 1), dtype=np.float32) if out is None else out
    if n_flux:
        np.arcsinh(xs.astype(np.float32), out=x[:, :n_flux])  # float32: faster
    if "feature_clip" in const:
        # = np.clip(xw, -clip, clip) rounded to float32 (rounding is monotonic), faster
        np.maximum(xw, -const["feature_clip"], out=x[:, n_flux:-1], casting="same_kind")
        np.minimum(x[:, n_flux:-1], const["feature_clip"].astype(np.float32),
                   out=x[:, n_flux:-1])
    else:
        x[:, n_flux:-1] = xw
    x[:, -1] = (ls - const["log_snr_mean"]) / const["log_snr_std"]
    return x


def ood_parts(xs, spread, const, projection=None):
    """Raw out-of-domain statistics of standardised spectra ``xs``: the RMS distance
    over the 16 leading principal components (in units of their scatter), the RMS
    residual of that 16-component reconstruction, the largest absolute whitened
    model-input component (before clipping), the ensemble's disagreement (0 if
    ``spread`` is None; see `ood_disagreement`) and (if the model has one) the
    probability from a hot-star classifier. ``projection``: `project` of ``xs``, if
    already computed."""
    comps, pmean = const["pca_components"], const["pca_mean"]
    # scores and |xs - mean|^2 without forming xs - mean (an array as large as xs)
    if projection is None:
        projection = project(xs, const)
    xw, scores, xs_mean = projection[:3]
    maha = np.sqrt(np.mean(scores ** 2 / const["pca_var"], axis=1))
    d2 = np.einsum("ij,ij->i", xs, xs) - 2.0 * xs_mean + pmean @ pmean
    # the reconstruction residual |d - scores @ comps|^2 = |d|^2 - 2 |scores|^2 +
    # scores G scores, G = comps @ comps.T (the stored components are orthonormal only
    # to float32 precision); float64: the cancellation is harmless. einsum: no
    # BLAS threads for these small products
    gram = np.einsum("ik,jk->ij", comps, comps, dtype=float)
    r2 = d2 - 2.0 * np.einsum("ij,ij->i", scores, scores) + np.einsum(
        "ij,jk,ik->i", scores, gram, scores, optimize=False)
    resid = np.sqrt(np.clip(r2, 0, None) / xs.shape[1])
    white = np.abs(xw).max(axis=1)
    dis = np.zeros(len(xs)) if spread is None else ood_disagreement(spread)
    parts = [maha, resid, white, dis]
    if "hot_coef" in const:
        # probability of being hotter than the domain (Teff >= 7000 K), from a logistic
        # regression on the whitened components fitted to the training split's hot stars
        xc = np.minimum(np.maximum(xw, -const["feature_clip"]), const["feature_clip"])
        logit = np.einsum("ij,j->i", xc, const["hot_coef"]) + const["hot_intercept"]
        with np.errstate(over="ignore"):  # a wild spectrum: exp overflows, p = 0
            parts.append(1.0 / (1.0 + np.exp(-logit)))
    if "hot_pixel_coef" in const:
        # version 1.4.0 on: the spectral term of the second hot-star classifier (see
        # `hot_probability`), a linear function of the standardised flux; it is no
        # statistic of its own (threshold inf)
        parts.append(projection[3])
    return np.stack(parts, axis=1)


#: Column of `ood_parts` holding the ensemble's disagreement.
OOD_DISAGREEMENT = 3
#: Column of `ood_parts` holding the hot-star probability (version 1.4.0 on: that of
#: `hot_probability`, written after the network has run).
OOD_HOT = 4
#: Column of `ood_parts` holding the spectral term of `hot_probability` (1.4.0 on).
OOD_HOT_SPECTRAL = 5


def hot_label_features(mean, sigma, snr, parts):
    """What the second hot-star classifier (version 1.4.0 on) reads besides the
    spectrum: log10 Teff, log g, [Fe/H], [alpha/M] and the logs of their calibrated
    sigmas (physical units, as `combine_ensemble` returns them), the standardised
    log10 S/N (`snr_feature`), the logs of the first three `ood_parts` statistics and
    the logit of the first hot-star classifier's probability; shape (n, 13)."""
    p = np.clip(parts[:, OOD_HOT], 1e-9, 1 - 1e-9)
    return np.column_stack([np.log10(mean[:, 0]), mean[:, 1:], np.log(sigma), snr,
                            np.log(np.maximum(parts[:, :3], 1e-12)),
                            np.log(p / (1 - p))])


def hot_design(features, const):
    """The label-side design of `hot_probability`: the `hot_label_features`
    standardised with the training stars' mean and spread and clipped to their range,
    then every product of two of them (squares included)."""
    z = (features - const["hot_label_mean"]) / const["hot_label_std"]
    if "hot_label_lo" in const:  # clipped to the training stars' range: no extrapolation
        z = np.clip(z, const["hot_label_lo"], const["hot_label_hi"])
    i, j = np.triu_indices(z.shape[1])
    return np.concatenate([z, z[:, i] * z[:, j]], axis=1)


def hot_probability(mean, sigma, snr, parts, const):
    """Probability that a star is hotter than the model's domain (APOGEE Teff >=
    7000 K), from a logistic regression (version 1.4.0 on) fitted on the training
    split's stars of every temperature: a linear term in the standardised spectrum (its
    own whitening, folded into ``hot_pixel_coef``, computed with `project` into
    ``parts[:, OOD_HOT_SPECTRAL]``) plus a quadratic one in what the network says of
    the star (`hot_design`). ``mean``, ``sigma``: `combine_ensemble`'s; ``snr``:
    `snr_feature`; ``parts``: `ood_parts` with the first classifier's probability."""
    # = hot_design(...) @ hot_label_coef, without forming the (n, 104) design: the
    # linear terms, then the products as the quadratic form z Q z
    z = (hot_label_features(mean, sigma, snr, parts) - const["hot_label_mean"]) / const[
        "hot_label_std"]
    if "hot_label_lo" in const:
        z = np.clip(z, const["hot_label_lo"], const["hot_label_hi"], out=z)
    k = z.shape[1]
    coef = const["hot_label_coef"]
    quad = np.zeros((k, k))
    quad[np.triu_indices(k)] = coef[k:]
    logit = z @ coef[:k] + np.einsum("ij,ij->i", z @ quad, z)
    logit += parts[:, OOD_HOT_SPECTRAL] + float(const["hot_offset"])
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-logit))


def ood_disagreement(spread):
    """The members' disagreement: RMS over labels of the standard deviation of their
    means (standardised units); 0 for one network."""
    return np.sqrt(np.mean(spread ** 2, axis=1))


def ood_score(parts, const):
    """Out-of-domain score: the largest of the `ood_parts` statistics, each divided by
    its 99.5th percentile over the validation stars (> 1: outside the training domain)."""
    return (parts / const["ood_thresholds"]).max(axis=1)


def mixture(out):
    """Mixture of the members' Gaussians in standardised units, before calibration:
    the mean, the members' spread (standard deviation of their means) and the total
    variance (mean of their variances plus the spread squared), each (n_spec, n_labels).
    ``out``: the members' outputs, shape (n_spec, n_members, 2 * n_labels)."""
    n = out.shape[2] // 2
    mu, logvar = out[:, :, :n].astype(float), out[:, :, n:].astype(float)
    var = np.exp(np.clip(logvar, -20, 10))
    spread = mu.std(axis=1)
    return mu.mean(axis=1), spread, var.mean(axis=1) + spread ** 2


def snr_feature(x, const):
    """The standardised log10 S/N column of model inputs ``x`` (see `features`; a
    photometry model's colours come after it)."""
    n_colours = len(COLOURS) if "colour_scale" in const else 0
    return x[:, x.shape[1] - 1 - n_colours]


def calibration_design(mean, sd, snr, const, label):
    """Design matrix of the uncertainty calibration of label number ``label``: a
    constant, then the features (the four standardised label means, the log of this
    label's uncalibrated sigma, the standardised log10 S/N), standardised with the
    validation stars' mean and spread and clipped to their range, then their squares."""
    f = np.column_stack([mean, np.log(sd[:, label]), snr])
    f = (f - const["calib_feat_mean"][label]) / const["calib_feat_std"][label]
    f = np.clip(f, const["calib_feat_lo"][label], const["calib_feat_hi"][label])
    return np.column_stack([np.ones(len(f)), f, f ** 2])


def calibrated_sigma(mean, total, const, snr=None):
    """Calibrated 1-sigma uncertainties in standardised label units.

    ``mean`` and ``total``: the mixture mean and total variance (`mixture`);
    ``snr``: the standardised log10 S/N of each spectrum (`snr_feature`; the training
    spectra's typical value if None). Models whose constants have ``calib_coef``
    (gaiaxp-labels 1.2.0 on, the ensemble 1.1.1, gaiaxp-labels-phot 1.0.1) scale each
    star's sigma by ``exp(design @ coef)``
    (`calibration_design`), a smooth function of the star's labels, its sigma and S/N
    fitted on the validation split, and then by one factor per label
    (``calibration``); older models by that factor alone.
    """
    sd = np.sqrt(total)
    sigma = sd * const["calibration"][None, :]
    if "calib_coef" not in const:
        return sigma
    if snr is None:
        snr = np.full(len(sd), (float(const["log_snr_default"]) - float(
            const["log_snr_mean"])) / float(const["log_snr_std"]))
    for i in range(sd.shape[1]):
        design = calibration_design(mean, sd, snr, const, i)
        sigma[:, i] *= np.exp(design @ const["calib_coef"][i])
    return sigma


def combine_ensemble(out, const, snr=None):
    """Mixture of the members' Gaussians, in physical label units.

    Parameters
    ----------
    out : ndarray, shape (n_spec, n_members, 2 * n_labels)
        Standardised means and log variances of each member.
    const : dict
        The model's constants.
    snr : ndarray, shape (n_spec,), optional
        Standardised log10 S/N of each spectrum (`snr_feature`), used by the
        uncertainty calibration of models that have one (`calibrated_sigma`).

    Returns
    -------
    mean, sigma, spread : ndarray, shape (n_spec, n_labels)
        Label (Teff in K), its calibrated 1-sigma uncertainty, and the members'
        disagreement (standard deviation of their means, standardised units).
    """
    mean, spread, total = mixture(out)
    sigma = calibrated_sigma(mean, total, const, snr)
    ymean, ystd = const["label_mean"], const["label_std"]
    m = mean * ystd + ymean
    if "label_lo" in const:
        m = np.clip(m, const["label_lo"], const["label_hi"])
    s = sigma * ystd
    # label 0 is log10 Teff: report Teff in K, its sigma by the delta method
    teff = 10 ** m[:, 0]
    s[:, 0] = teff * np.log(10) * s[:, 0]
    m[:, 0] = teff
    return m, s, spread


def widen_for_masked(sigma, masked, const):
    """Uncertainties widened for filled-in pixels (version 1.4.0 on): each label's
    sigma times ``1 + masked_coef * masked``, ``masked`` being the fraction of the
    model's pixels that were filled in (`impute`) and ``masked_coef`` one factor per
    label fitted on validation stars with masked blue and red ends; unchanged for
    models without it and for spectra with nothing filled in."""
    if "masked_coef" not in const:
        return sigma
    return sigma * (1.0 + np.asarray(masked, float)[:, None] * const["masked_coef"][None, :])
