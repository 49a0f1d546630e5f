"""Numerical core of image differencing: plain numpy arrays and Keras only.

The public functions (:mod:`astroml_affiliated.imagediff._high_level`) parse astropy
objects, align the reference and call `difference_arrays`; training calls
`normalise_pair` and `transient_target_scale` so that training and inference see
exactly the same normalisation.
"""

import numpy as np
from scipy import ndimage

__all__ = ["robust_background", "moment_fwhm", "fit_fwhm_stamp", "estimate_fwhm", "flux_ratio",
           "network_applies",
           "normalise_pair",
           "gaussian_matched_difference", "difference_arrays", "calibrated_difference"]


def robust_background(data, mask=None):
    """Sky level and sky noise of an image, robust to stars and crowding.

    The level is the median of the good pixels; the noise is the distance from the
    median down to the 15.87th percentile (the lower half of the histogram, which
    sources hardly touch), i.e. one Gaussian sigma.

    Returns
    -------
    level, sigma : float
    """
    good = np.isfinite(data)
    if mask is not None:
        good &= ~mask
    values = data[good]
    if values.size > 2_000_000:  # a regular subsample is plenty for two quantiles
        values = values[:: values.size // 1_000_000]
    if values.size < 16:
        return 0.0, 0.0
    med = float(np.median(values))
    low = float(np.percentile(values, 15.865))
    sigma = med - low
    if not sigma > 0:
        sigma = float(1.4826 * np.median(np.abs(values - med)))
    return med, sigma


def _peaks(data, sigma, mask, *, nsigma, box=9, border=8):
    """Local maxima above ``nsigma * sigma`` (row, col arrays), brightest first."""
    filled = np.where(mask, -np.inf, data)
    local = ndimage.maximum_filter(filled, size=box, mode="constant", cval=-np.inf)
    peaks = (filled == local) & (filled > nsigma * sigma)
    peaks[:border] = peaks[-border:] = False
    peaks[:, :border] = peaks[:, -border:] = False
    rows, cols = np.nonzero(peaks)
    order = np.argsort(filled[rows, cols])[::-1]
    return rows[order], cols[order]


def moment_fwhm(stamp):
    """FWHM (pixels) of a round Gaussian with the second moments of a stamp's positive part.

    The moments are taken about the stamp's centroid; None if the stamp holds no
    positive flux. A box of 15x15 pixels (as `estimate_fwhm` uses) truncates wide wings.
    """
    w = np.clip(stamp, 0, None)
    total = w.sum()
    if total <= 0:
        return None
    yy, xx = np.indices(w.shape)
    cy = (w * yy).sum() / total
    cx = (w * xx).sum() / total
    var = (w * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum() / total / 2
    return float(2.3548 * np.sqrt(var)) if var > 0 else None


def _gaussian_prf(params, yy, xx):
    """Circular Gaussian integrated over square pixels (amplitude = total flux) + constant."""
    from scipy.special import erf

    flux, y0, x0, sig, bkg = params
    s = np.sqrt(2.0) * abs(sig)
    gy = 0.5 * (erf((yy + 0.5 - y0) / s) - erf((yy - 0.5 - y0) / s))
    gx = 0.5 * (erf((xx + 0.5 - x0) / s) - erf((xx - 0.5 - x0) / s))
    return flux * gy * gx + bkg


def fit_fwhm_stamp(stamp, fwhm_guess=3.0):
    """FWHM (pixels) of a circular Gaussian, integrated over pixels, fitted to a stamp.

    Least squares on the stamp (the source near its centre), with flux, centre, width and
    a constant background free, as `photutils.psf.fit_fwhm` does with its
    ``CircularGaussianPRF``. None when the fit fails or lands off the stamp's centre.
    """
    from scipy.optimize import least_squares

    stamp = np.asarray(stamp, float)
    ny, nx = stamp.shape
    yy, xx = np.indices(stamp.shape, dtype=float)
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    edge = np.concatenate([stamp[0], stamp[-1], stamp[1:-1, 0], stamp[1:-1, -1]])
    bkg0 = float(np.median(edge))
    flux0 = float((stamp - bkg0).sum())
    if not flux0 > 0:
        return None
    p0 = [flux0, cy, cx, max(fwhm_guess, 0.8) / 2.3548, bkg0]
    lo = [0.0, cy - 2, cx - 2, 0.2, -np.inf]
    hi = [np.inf, cy + 2, cx + 2, max(ny, nx), np.inf]
    try:
        res = least_squares(lambda p: (_gaussian_prf(p, yy, xx) - stamp).ravel(), p0,
                            bounds=(lo, hi), x_scale="jac", max_nfev=200)
    except (ValueError, np.linalg.LinAlgError):
        return None
    flux, y0, x0, sig, _ = res.x
    if not (res.success and flux > 0 and abs(y0 - cy) < 1.5 and abs(x0 - cx) < 1.5):
        return None
    fwhm = 2.3548 * abs(sig)
    return float(fwhm) if 0.5 < fwhm < 0.8 * min(ny, nx) else None


def estimate_fwhm(data, mask=None, *, saturation=None, default=4.0, max_stars=100):
    """Median FWHM (pixels) of the isolated, unsaturated stars of a background-free image.

    Stars are local maxima above 10 sigma and below half the brightest (or
    ``saturation``), away from masked pixels and without a second peak above half theirs
    nearby. A first width from second moments in a 15x15 box sets the fitting box
    (radius 1.5 FWHM + 2, 3-15 px); then a circular Gaussian integrated over the pixels
    is fitted to each star (`fit_fwhm_stamp`, as `photutils.psf.fit_fwhm` does) and the
    median of the fitted FWHMs is returned: within a few per cent of a photutils fit from
    1.2 to 10 px. Returns ``default`` when fewer than three stars qualify.
    """
    mask = np.zeros(data.shape, bool) if mask is None else mask
    mask = mask | ~np.isfinite(data)
    level, sigma = robust_background(data, mask)
    img = np.where(mask, 0.0, data - level)
    if sigma <= 0:
        return float(default)
    rows, cols = _peaks(img, sigma, mask, nsigma=10, box=5, border=3)
    top = img[rows, cols].max() if rows.size else 0
    limit = saturation - level if saturation is not None else 0.5 * top
    ny, nx = img.shape

    def stamps(r, n_max):
        out = []
        for row, col in zip(rows, cols):
            if img[row, col] > limit and rows.size > 5:
                continue
            if row < r or col < r or row >= ny - r or col >= nx - r:
                continue
            sl = (slice(row - r, row + r + 1), slice(col - r, col + r + 1))
            if mask[sl].any():
                continue
            cut = img[sl]
            # reject blends: a second peak in the box above a fifth of the central one
            peaks = (ndimage.maximum_filter(cut, 3) == cut) & (cut > 0.2 * cut[r, r])
            if peaks.sum() > 1:
                continue
            out.append(cut)
            if len(out) >= n_max:
                break
        return out

    first = [moment_fwhm(c) for c in stamps(7, max_stars)]
    first = [w for w in first if w is not None]
    if len(first) < 3:
        first = [default]
    guess = float(np.median(first))
    r = int(np.clip(np.ceil(1.5 * guess) + 2, 3, 15))
    widths = [fit_fwhm_stamp(c, guess) for c in stamps(r, max_stars)]
    widths = [w for w in widths if w is not None]
    if len(widths) < 3:
        return float(default)
    return float(np.clip(np.median(widths), 0.8, 30.0))


def _kernel_basis(sigma0, radius):
    """Alard-Lupton kernel basis: Gaussians of 0.5, 1, 2 and 4 ``sigma0`` times
    polynomials of degree 2, 4, 2 and 0, on a (2 radius + 1)**2 grid."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(float)
    basis = []
    for width, degree in ((0.5, 2), (1.0, 4), (2.0, 2), (4.0, 0)):
        g = np.exp(-(xx ** 2 + yy ** 2) / (2 * (width * sigma0) ** 2))
        for i in range(degree + 1):
            for j in range(degree + 1 - i):
                basis.append(g * (xx / radius) ** i * (yy / radius) ** j)
    return basis


def flux_ratio(science, reference, mask, fwhm, *, saturation=None, clip=5.0,
               max_pixels=400_000):
    """Photometric scale that brings the reference to the science image's zero point.

    A least-squares fit over the whole pair of ``sharper * K + c = broader``, ``K`` a
    kernel spanned by an Alard-Lupton basis (Gaussians of four widths times
    polynomials, 28 terms) and ``c`` a constant: the sum of ``K`` is the ratio of the
    two images' fluxes, whatever their PSFs' shapes, and every source contributes, not a
    handful of stars. Pixels of changing sources of either sign are clipped (residual
    above ``clip`` times its robust scatter, grown by one FWHM), iterated. Both images
    must be on the same grid with their sky levels subtracted.

    Parameters
    ----------
    science, reference : ndarray
    mask : ndarray of bool
        Pixels to ignore (saturated pixels belong in it).
    fwhm : float or (float, float)
        FWHM (pixels) of the science and the reference PSF; one number for both.
    saturation : float, optional
        Pixels at or above this level in either image are masked too.
    max_pixels : int
        At most this many pixels (a regular subsample) enter the fit.

    Returns
    -------
    ratio : float or None
        None when fewer than three sources are in the fit.
    n_sources : int
        Separate sources (connected groups of pixels above 5 sigma in the reference)
        among the fitted pixels.
    """
    from scipy import signal

    fs, fr = (float(fwhm), float(fwhm)) if np.ndim(fwhm) == 0 else map(float, fwhm)
    big = max(fs, fr)
    bad = mask | ~np.isfinite(science) | ~np.isfinite(reference)
    if saturation is not None:
        bad = bad | (science >= saturation) | (reference >= saturation)
    sigma0 = max(np.sqrt(abs(fs ** 2 - fr ** 2)) / 2.3548, 0.4 * big / 2.3548, 0.5)
    radius = int(np.clip(max(np.ceil(6 * sigma0), np.ceil(2 * big)), 4, 20))
    grow = radius + int(np.ceil(big))
    bad = ndimage.binary_dilation(bad, iterations=grow) if bad.any() else bad.copy()
    bad[:grow] = bad[-grow:] = True
    bad[:, :grow] = bad[:, -grow:] = True
    if (~bad).sum() < 100:
        return None, 0
    s = np.where(np.isfinite(science), science, 0.0)
    r = np.where(np.isfinite(reference), reference, 0.0)
    sharp, broad, inverse = (s, r, True) if fs < fr else (r, s, False)
    basis = _kernel_basis(sigma0, radius)
    step = max(1, int(np.ceil(np.sqrt((~bad).sum() / max_pixels))))
    sub = np.zeros(bad.shape, bool)
    sub[::step, ::step] = True
    cols = [signal.fftconvolve(sharp, b[::-1, ::-1], mode="same") for b in basis]
    _, sig_b = robust_background(broad, bad)
    _, sig_r = robust_background(r, bad)
    use = ~bad
    coef = None
    for _ in range(8):
        sel = use & sub
        if sel.sum() < len(basis) + 10:
            return None, 0
        design = np.column_stack([c[sel] for c in cols] + [np.ones(sel.sum())])
        norm = np.sqrt((design ** 2).sum(axis=0))
        norm[norm == 0] = 1.0
        # unit columns and a truncated SVD: narrow basis terms are nearly collinear
        coef, *_ = np.linalg.lstsq(design / norm, broad[sel], rcond=1e-6)
        coef = coef / norm
        model = sum(c * k for c, k in zip(cols, coef[:-1])) + coef[-1]
        res = broad - model
        scat = 1.4826 * np.median(np.abs(res[use]))
        if not scat > 0:
            break
        # the scatter grows with the signal (photon noise, PSF-shape residuals): 5% of
        # the flux is tolerated, so only sources that really changed are clipped
        expected = np.sqrt(scat ** 2 + (0.05 * np.abs(broad)) ** 2)
        outlier = np.abs(res) > clip * expected
        outlier = ndimage.binary_dilation(outlier, iterations=max(1, int(round(big))))
        new = ~bad & ~outlier
        if np.array_equal(new, use) or new.sum() < 0.5 * (~bad).sum():
            break
        use = new
    ksum = float(sum(k * b.sum() for k, b in zip(coef[:-1], basis)))
    n_sources = int(ndimage.label(use & (r > 5 * sig_r))[1]) if sig_r > 0 else 0
    if not ksum > 0 or n_sources < 3:
        return None, n_sources
    ratio = 1.0 / ksum if inverse else ksum
    return ratio, n_sources


def gaussian_matched_difference(s, r, fwhm_s, fwhm_r):
    """Classical difference after matching round-Gaussian PSFs of the given FWHMs.

    The sharper of the two (normalised) images is convolved with the Gaussian kernel of
    FWHM ``sqrt(|fwhm_s**2 - fwhm_r**2|)`` and the reference subtracted from the science.
    A hint for the network (its third input channel), not the result: PSFs that are not
    round Gaussians leave residuals at every star, which the network learns to remove.
    """
    width = np.sqrt(abs(fwhm_s ** 2 - fwhm_r ** 2)) / 2.3548
    if width < 0.2:
        return s - r
    if fwhm_s >= fwhm_r:
        return s - ndimage.gaussian_filter(r, width, mode="nearest")
    return ndimage.gaussian_filter(s, width, mode="nearest") - r


def normalise_pair(science, reference, *, sci_level, sci_sigma, ref_level, ratio,
                   fwhm=None):
    """The network's input: both images in units of the science sky noise.

    ``(science - sci_level) / sci_sigma`` and
    ``(reference - ref_level) * ratio / sci_sigma`` stacked as the last axis (float32).
    With ``fwhm=(science_fwhm, reference_fwhm)`` (pixels) a third channel holds their
    Gaussian-PSF-matched difference (`gaussian_matched_difference`), the input of the
    three-channel models. Masked pixels must already be filled (for example with the
    level).
    """
    s = (science - sci_level) / sci_sigma
    r = (reference - ref_level) * (ratio / sci_sigma)
    channels = [s, r]
    if fwhm is not None:
        channels.append(gaussian_matched_difference(s, r, float(fwhm[0]), float(fwhm[1])))
    return np.stack(channels, axis=-1).astype(np.float32)


def difference_arrays(model, science, reference, *, sci_level, sci_sigma, ref_level,
                      ratio, fwhm=None, tile=256, overlap=64, batch_size=4):
    """Run the network over a pair on overlapping tiles; flux in the science's units.

    ``science`` and ``reference`` are finite arrays on the same grid (masked pixels
    filled). ``fwhm`` (science, reference) is needed by three-channel models. Returns
    the transient image ``sci_sigma * network(normalised pair)``.
    """
    from ._tiles import predict_tiled

    channels = int(model.inputs[0].shape[-1])
    if channels == 3 and fwhm is None:
        raise ValueError("this model needs the FWHMs of both images (fwhm=)")
    pair = normalise_pair(science, reference, sci_level=sci_level, sci_sigma=sci_sigma,
                          ref_level=ref_level, ratio=ratio,
                          fwhm=fwhm if channels == 3 else None)
    out = predict_tiled(model, pair, tile=tile, overlap=overlap, batch_size=batch_size)
    return out * sci_sigma


#: FWHM range (pixels) of the PSFs the released network (1.1.0) was trained on: outside
#: it the network's image is not used (`calibrated_difference`, ``use_network``)
NETWORK_FWHM_RANGE = (2.0, 7.5)


def network_applies(fwhm_s, fwhm_r):
    """True if both FWHMs (pixels) lie in the range the network was trained on."""
    lo, hi = NETWORK_FWHM_RANGE
    return bool(lo <= fwhm_s <= hi and lo <= fwhm_r <= hi)


def _gaussian_kernel(sigma):
    """A normalised, sampled 2-D Gaussian kernel of ``sigma`` pixels (radius 4 sigma)."""
    r = max(1, int(np.ceil(4 * sigma)))
    x = np.arange(-r, r + 1)
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    return np.outer(g, g)


def calibrated_difference(science, reference, network, *, sci_level, ref_level, ratio,
                          fwhm, var_s, var_r, mask=None, disagree=3.0,
                          use_network=True):
    """The returned difference: linear where it can be trusted, the network's elsewhere.

    The linear difference is ``science - G * ratio * reference`` (or ``G * science -
    ratio * reference`` when the science is the sharper), ``G`` the Gaussian of FWHM
    ``sqrt(|fwhm_s**2 - fwhm_r**2|)``: its noise is exactly the propagated noise of the
    inputs, so its per-pixel uncertainty describes the pixels, and it keeps every
    source's flux at any PSF sampling. Where the reference has a source (above 5 sigma
    after smoothing with its PSF, grown by one FWHM) and the linear difference and the
    network's transient image (brought to the same PSF) disagree by more than
    ``disagree`` times their smoothed scatter, the linear difference holds subtraction
    residuals (PSF or scale mismatch on stars and galaxies) that the network has learnt
    to remove: there the network's image is used. Its pixels are smoother than the
    stated uncertainty, so the significance is conservative there.

    Parameters
    ----------
    science, reference : ndarray
        Finite images on one grid (masked pixels filled), in the science's unit.
    network : ndarray
        The network's transient image (`difference_arrays`), science PSF.
    sci_level, ref_level, ratio : float
        Sky levels and the reference's photometric scale.
    fwhm : (float, float)
        FWHM of the science and the reference PSF (pixels).
    var_s, var_r : ndarray or float
        Per-pixel variance of the science and of the scaled reference (``ratio**2``
        times the reference's).
    mask : ndarray of bool, optional
        Pixels left out of the noise calibration.
    use_network : bool
        False: the linear difference everywhere (e.g. for PSFs outside the network's
        training range, `network_applies`).

    Returns
    -------
    diff, var : ndarray
        The difference and its per-pixel variance.
    from_network : ndarray of bool
        Pixels whose value is the network's.
    fwhm_diff : float
        FWHM of the difference's PSF: the broader of the two.
    noise_scale : float
        The factor the propagated uncertainty was multiplied by.
    """
    fs, fr = float(fwhm[0]), float(fwhm[1])
    shape = science.shape
    s = science - sci_level
    r = (reference - ref_level) * ratio
    t = np.asarray(network, float)
    vs = np.broadcast_to(np.asarray(var_s, float), shape)
    vr = np.broadcast_to(np.asarray(var_r, float), shape)
    fill = np.nanmedian(vs) + np.nanmedian(vr)
    vs = np.where(np.isfinite(vs), vs, fill / 2)
    vr = np.where(np.isfinite(vr), vr, fill / 2)
    width = np.sqrt(abs(fs ** 2 - fr ** 2)) / 2.3548
    ref_det = r
    if width >= 0.2:
        k = _gaussian_kernel(width)
        if fs >= fr:
            r = ndimage.convolve(r, k, mode="nearest")
            vr = ndimage.convolve(vr, k ** 2, mode="nearest")
        else:
            s = ndimage.convolve(s, k, mode="nearest")
            vs = ndimage.convolve(vs, k ** 2, mode="nearest")
            t = ndimage.convolve(t, k, mode="nearest")
    lin = s - r
    var = vs + vr
    fwhm_diff = max(fs, fr)
    grow = max(1, int(np.ceil(fwhm_diff)))
    mask = np.zeros(shape, bool) if mask is None else mask
    from_network = np.zeros(shape, bool)
    det = ndimage.gaussian_filter(ref_det, fr / 2.3548)
    _, sig_det = robust_background(det, mask)
    region = det > 5 * sig_det if sig_det > 0 else from_network
    if use_network and region.any():
        region = ndimage.binary_dilation(region, iterations=grow)
        smooth = 0.5 * fwhm_diff / 2.3548
        lin_s = ndimage.gaussian_filter(lin, smooth)
        gap = ndimage.gaussian_filter(lin - t, smooth)
        _, sig_lin = robust_background(lin_s, region | mask)
        if sig_lin > 0:
            far = ((np.abs(gap) > disagree * sig_lin)
                   & (np.abs(lin_s) > disagree * sig_lin))
            far = ndimage.binary_dilation(far, iterations=max(1, grow // 2))
            from_network = far & region
    out = np.where(from_network, t, lin)
    use = ~mask & ~from_network & (var > 0)
    noise_scale = 1.0
    if use.sum() > 100:
        z = lin[use] / np.sqrt(var[use])
        mad = 1.4826 * float(np.median(np.abs(z - np.median(z))))
        if mad > 0:
            noise_scale = mad
    return out, var * noise_scale ** 2, from_network, fwhm_diff, noise_scale
