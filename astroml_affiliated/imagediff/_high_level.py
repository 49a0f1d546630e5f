"""Public functions of image differencing: astropy objects in, astropy objects out."""

import math
import numbers
import warnings
from copy import deepcopy

import numpy as np

from ..errors import AstroMLWarning, InputError
from . import core

__all__ = ["difference", "find_transients", "plot_difference", "snr_map", "snr_scale",
           "DEFAULT_MODEL"]

#: The model used by `difference` unless told otherwise.
DEFAULT_MODEL = "imagediff-transinet-slim"


def _check_ccd(obj, what):
    from astropy.nddata import NDData

    if not isinstance(obj, NDData) or getattr(obj, "unit", None) is None:
        raise InputError(f"{what} must be an astropy.nddata.CCDData (an NDData with a "
                         f"unit), not {type(obj).__name__}")
    data = np.asarray(obj.data)
    if data.ndim != 2:
        raise InputError(f"{what} must be a 2-D image; its data have shape {data.shape}")
    if data.dtype.kind not in "iuf":
        raise InputError(f"{what}'s data must be real numbers, not dtype {data.dtype}")
    if min(data.shape) < 16:
        raise InputError(f"{what} is {data.shape[0]}x{data.shape[1]} pixels; at least "
                         "16x16 is needed")
    data = data.astype(float)  # always a copy: the caller's array is never touched
    mask = ~np.isfinite(data)
    if obj.mask is not None:
        m = np.asarray(obj.mask, dtype=bool)
        if m.shape != data.shape:
            raise InputError(f"{what}'s mask has shape {m.shape}, its data {data.shape}")
        mask = mask | m
    if mask.all():
        raise InputError(f"{what} has no valid pixel: every pixel is NaN, infinite or "
                         "masked")
    return data, mask


def _positive(value):
    """True for a finite number above zero (a dimensionless Quantity counts; no bool)."""
    if isinstance(value, (bool, str, bytes)):
        return False
    try:
        value = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(value) and value > 0


def difference(science, reference, *, device=None, align="interp", model=DEFAULT_MODEL,
               weights_path=None, flux_scale=None, saturation=None, gain=None,
               edge=None, tile=256, overlap=64, batch_size=4):
    """Difference image of ``science`` minus ``reference``, cleaned by the network.

    The reference is resampled onto the science image's grid when their WCSs differ,
    both are normalised robustly (sky level, sky noise, photometric scale fitted over
    the whole pair) and the network predicts the image of what changed on overlapping
    tiles. The result is the linear difference after matching round-Gaussian PSFs of the
    measured FWHMs (whose noise is the inputs' noise, propagated exactly, and which keeps
    every source's flux at any PSF sampling), except on the reference's sources where
    it and the network disagree significantly: there (subtraction residuals of stars and
    galaxies) the network's transient image is used
    (`~astroml_affiliated.imagediff.core.calibrated_difference`). Flux in the science
    image's unit on its grid and WCS.

    Parameters
    ----------
    science, reference : `~astropy.nddata.CCDData`
        The new image and the template of the same field. Units must be convertible;
        masks, NaNs and uncertainties are honoured (a pixel whose uncertainty is NaN,
        negative or an inverse variance of 0 counts as masked). Neither object is
        modified.
    device : {None, 'cpu', 'gpu', 'gpu:N'}
        Where the network runs (None: ``conf.default_device``).
    align : {'interp', 'exact'}
        How the reference is resampled when the WCSs differ: `reproject.reproject_interp`
        (bicubic, default) or `reproject.reproject_exact` (flux-conserving, slower).
        Images without a WCS must already share a shape (and a grid).
    model : str
        Registry name of the network (default ``'imagediff-transinet-slim'``).
    weights_path : str or `~pathlib.Path`, optional
        A directory with the model's weights file, instead of the usual lookup.
    flux_scale : float, optional
        Multiplier that brings the (resampled) reference to the science image's
        photometric zero point. Default: a least-squares fit of the science against the
        reference over the whole pair, both brought to one PSF, changing sources of
        either sign clipped (`~astroml_affiliated.imagediff.core.flux_ratio`); 1 if
        fewer than three sources are left, with a warning.
    saturation : float or `~astropy.units.Quantity`, optional
        Level (science unit, and the reference's after conversion) above which pixels
        are masked as saturated in either image; a Quantity is converted to the
        science's unit.
    gain : float, optional
        Electrons per data unit of the science image. If given, the Poisson noise of the
        sources is added to the uncertainty; else the uncertainty is the sky noise (or
        the science's own uncertainty when it has one).
    edge : int, optional
        Pixels next to image edges, masked or out-of-footprint pixels that are masked in
        the result as unreliable. Default: the science FWHM, rounded up.
    tile, overlap, batch_size : int
        Tiling of the network's inference (pixels, pixels, tiles per call). The network's
        memory grows with ``tile**2 * batch_size``; the whole-image working arrays grow
        linearly with the number of pixels (about 2.7 GB for a 4096x4096 pair).

    Returns
    -------
    `~astropy.nddata.CCDData`
        The difference (science minus reference) in the science's unit, with the
        science's WCS, a `~astropy.nddata.StdDevUncertainty` (per pixel, propagated from
        the noise of both inputs through the PSF matching: it describes the returned
        pixels, except where the network's smoother image is used, ``meta['netfrac']``
        of the valid pixels, where it is conservative), a boolean ``mask`` (input masks,
        NaNs, saturated, out-of-footprint and edge pixels) and ``meta`` recording the
        model, version, sha256, alignment, device, ``fwhm`` (of the difference's PSF:
        the broader of the two), ``fwhmsci``, ``fwhmref``, photometric scale and sky
        levels. Neighbouring pixels' noise is correlated by the PSF matching and
        resampling; `find_transients` calibrates its S/N for that.

    Raises
    ------
    InputError
        If an input is not a 2-D image with a unit, units are incompatible, shapes
        differ without WCSs, the frames do not overlap, or no valid pixel is left.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from astroml_affiliated.imagediff import difference
    >>> from astroml_affiliated.imagediff.demo import synthetic_pair
    >>> science, reference, truth = synthetic_pair(seed=1)
    >>> diff = difference(science, reference, device="cpu")
    >>> diff.unit == science.unit, diff.shape == science.shape
    (True, True)
    """
    saturation, s_unit, r_unit, sci, sci_mask, ref, ref_mask = _checked_inputs(
        science, reference, align=align, saturation=saturation, gain=gain, edge=edge,
        tile=tile, overlap=overlap, batch_size=batch_size)
    sci_mask, ref, ref_mask, sci_std, ref_std, alignment = _aligned_inputs(
        science, reference, sci, sci_mask, ref, ref_mask, s_unit, r_unit,
        saturation=saturation, align=align)
    bad, sky, sci_f, ref_f, fwhm, fwhm_r = _sky_and_psfs(sci, sci_mask, ref, ref_mask,
                                                         saturation=saturation)
    level_s, sigma_s, level_r, sigma_r = sky
    ratio, scale_how = _photometric_scale(sci_f, ref_f, bad, level_s, level_r, fwhm,
                                          fwhm_r, flux_scale)
    diff, info, label = _network_difference(
        sci_f, ref_f, sky, ratio, (fwhm, fwhm_r), model=model, device=device,
        weights_path=weights_path, tile=tile, overlap=overlap, batch_size=batch_size)
    diff, std, from_net, fwhm_d, noise_scale = _calibrated(
        sci, sci_f, ref_f, diff, sky, ratio, (fwhm, fwhm_r), bad, sci_std, ref_std,
        gain=gain)
    margin, mask = _edge_mask(bad, fwhm, edge)
    diff[bad] = 0.0

    meta = {
        "model": info["model"], "version": info["version"],
        "sha256": info["sha256"][0], "align": alignment, "device": label,
        "fwhm": round(fwhm_d, 3), "fwhmsci": round(fwhm, 3), "fwhmref": round(fwhm_r, 3),
        "netfrac": round(float(from_net[~bad].mean()), 5) if (~bad).any() else 0.0,
        "noisecal": round(noise_scale, 4),
        "fluxscal": ratio, "fluxhow": scale_how,
        "skysci": level_s, "sigsci": sigma_s, "skyref": level_r, "sigref": sigma_r,
        "edge": margin,
    }
    return _result(science, diff, s_unit, mask, std, meta)


def _checked_inputs(science, reference, *, align, saturation, gain, edge, tile, overlap,
                    batch_size):
    """`difference`'s input checks: the images' data and masks, the options.

    Returns the saturation level in the science's unit (or None), both units, and the
    science's and reference's data (float copies) and masks.
    """
    import astropy.units as u

    if align not in ("interp", "exact"):
        raise InputError(f"align must be 'interp' or 'exact', not {align!r}")
    sci, sci_mask = _check_ccd(science, "science")
    ref, ref_mask = _check_ccd(reference, "reference")
    s_unit, r_unit = u.Unit(science.unit), u.Unit(reference.unit)
    if saturation is not None:
        try:  # a Quantity is taken in the science's unit
            level = float(u.Quantity(saturation, s_unit).value)
        except (TypeError, ValueError, u.UnitConversionError):
            level = math.nan
        if not math.isfinite(level):
            raise InputError("saturation must be a finite number (or a Quantity in a "
                             f"unit convertible to {s_unit}), not {saturation!r}")
        saturation = level
    if gain is not None and not _positive(gain):
        raise InputError(f"gain must be a positive number, not {gain!r}")
    for name, value, least in (("edge", 0 if edge is None else edge, 0), ("tile", tile, 8),
                               ("overlap", overlap, 0), ("batch_size", batch_size, 1)):
        if not (isinstance(value, numbers.Real) and not isinstance(value, bool)
                and float(value).is_integer() and value >= least):
            raise InputError(f"{name} must be an integer >= {least}, not {value!r}")
    return saturation, s_unit, r_unit, sci, sci_mask, ref, ref_mask


def _aligned_inputs(science, reference, sci, sci_mask, ref, ref_mask, s_unit, r_unit, *,
                    saturation, align):
    """The reference in the science's unit and on its grid; both images' uncertainties.

    Unknown uncertainties and saturated pixels join the masks. Returns the science's
    mask, the reference's data and mask, both standard deviations (or None) and the
    alignment's description.
    """
    import astropy.units as u

    from ._align import align_reference, to_stddev

    try:
        conv = r_unit.to(s_unit)
    except u.UnitConversionError:
        raise InputError(f"the reference's unit {r_unit} cannot be converted to the "
                         f"science's unit {s_unit}: give both images compatible units "
                         "(e.g. both electron or both adu)") from None
    ref = ref * conv
    sci_std = to_stddev(science, "science")
    ref_std = to_stddev(reference, "reference")
    if ref_std is not None:
        ref_std = ref_std * conv
    # an unknown uncertainty (NaN, a negative sigma, an inverse variance of 0: a weight
    # map's bad pixel) makes the pixel bad, as a mask would
    if sci_std is not None:
        sci_mask = sci_mask | ~np.isfinite(sci_std)
    if ref_std is not None:
        ref_mask = ref_mask | ~np.isfinite(ref_std)
    if saturation is not None:
        sci_mask = sci_mask | (sci >= saturation)
        ref_mask = ref_mask | (ref >= saturation)
    ref, ref_mask, ref_std, alignment = align_reference(science, reference, ref, ref_mask,
                                                        ref_std, method=align)
    return sci_mask, ref, ref_mask, sci_std, ref_std, alignment


def _sky_and_psfs(sci, sci_mask, ref, ref_mask, *, saturation):
    """Pixels bad in either image, both sky levels and noises, filled images, FWHMs.

    Returns ``bad``, ``(level_s, sigma_s, level_r, sigma_r)``, the science and reference
    with bad pixels set to their sky level, and the science's and reference's FWHM.
    """
    bad = sci_mask | ref_mask
    if bad.mean() > 0.98:
        raise InputError(f"only {int((~bad).sum())} pixels are valid in both the science "
                         "and the (aligned) reference: they barely overlap or are almost "
                         "entirely masked")
    level_s, sigma_s = core.robust_background(sci, bad)
    level_r, sigma_r = core.robust_background(ref, bad)
    if not (sigma_s > 0 and sigma_r > 0):
        raise InputError("could not measure the sky noise: the science or reference "
                         "image is constant over its valid pixels")
    sci_f = np.where(bad, level_s, sci)
    ref_f = np.where(bad, level_r, ref)
    fwhm = core.estimate_fwhm(sci_f, bad, saturation=saturation)
    fwhm_r = core.estimate_fwhm(ref_f, bad, saturation=saturation)
    return bad, (level_s, sigma_s, level_r, sigma_r), sci_f, ref_f, fwhm, fwhm_r


def _photometric_scale(sci_f, ref_f, bad, level_s, level_r, fwhm, fwhm_r, flux_scale):
    """The reference's photometric scale (given, fitted, or 1) and how it was set."""
    n_stars = 0
    if flux_scale is None:
        ratio, n_stars = core.flux_ratio(sci_f - level_s, ref_f - level_r, bad,
                                         (fwhm, fwhm_r))
        if ratio is None or not ratio > 0:
            warnings.warn(  # stacklevel: the caller of `difference`
                f"found {n_stars} usable sources (at least 3 needed) to fit the "
                "reference's photometric scale; assuming 1. Pass flux_scale= if the "
                "images have different zero points.", AstroMLWarning, stacklevel=3)
            ratio = 1.0
        scale_how = (f"measured: fit over the pair, {n_stars} sources" if n_stars >= 3
                     else "assumed")
    else:
        try:
            ratio = float(flux_scale)
        except (TypeError, ValueError):
            ratio = math.nan
        if not ratio > 0 or not math.isfinite(ratio):
            raise InputError(f"flux_scale must be a positive number, not {flux_scale!r}")
        scale_how = "given"
    return ratio, scale_how


def _network_difference(sci_f, ref_f, sky, ratio, fwhms, *, model, device, weights_path,
                        tile, overlap, batch_size):
    """The network's difference image on tiles; the model's info and the device used.

    Outside the PSF range the network was trained on, its image would not be used
    (`core.network_applies`), so it is not computed: zeros stand in for it.
    """
    from ..device import device_scope
    from ..weights import load_models

    level_s, sigma_s, level_r, _ = sky
    models, info = load_models(model, device=device, path=weights_path)
    with device_scope(device) as label:
        if not core.network_applies(*fwhms):
            return np.zeros(sci_f.shape), info, label
        diff = core.difference_arrays(models[0], sci_f, ref_f, sci_level=level_s,
                                      sci_sigma=sigma_s, ref_level=level_r, ratio=ratio,
                                      fwhm=fwhms, tile=int(tile), overlap=int(overlap),
                                      batch_size=int(batch_size))
    return diff.astype(float), info, label


def _calibrated(sci, sci_f, ref_f, diff, sky, ratio, fwhms, bad, sci_std, ref_std, *, gain):
    """Both inputs' noise and the calibrated difference (`core.calibrated_difference`).

    Returns the difference, its standard deviation, where the network's image is used,
    the difference's FWHM and the noise calibration.
    """
    level_s, sigma_s, level_r, sigma_r = sky
    fwhm, fwhm_r = fwhms
    # uncertainty: noise of the science plus that of the scaled reference
    var_s = sci_std ** 2 if sci_std is not None else np.full(sci.shape, sigma_s ** 2)
    if gain is not None and sci_std is None:
        var_s = var_s + np.clip(sci_f - level_s, 0, None) / float(gain)
    if ref_std is not None:
        var_r = (ratio * ref_std) ** 2
    else:
        var_r = (ratio * sigma_r) ** 2 + (np.clip(ref_f - level_r, 0, None) * ratio
                                          / float(gain) if gain is not None else 0.0)
    diff, var, from_net, fwhm_d, noise_scale = core.calibrated_difference(
        sci_f, ref_f, diff, sci_level=level_s, ref_level=level_r, ratio=ratio,
        fwhm=(fwhm, fwhm_r), var_s=var_s, var_r=var_r, mask=bad,
        use_network=core.network_applies(fwhm, fwhm_r))
    std = np.sqrt(var)
    std = np.where(np.isfinite(std), std, np.sqrt(sigma_s ** 2 + (ratio * sigma_r) ** 2))
    return diff, std, from_net, fwhm_d, noise_scale


def _edge_mask(bad, fwhm, edge):
    """The result's mask: bad pixels grown by the edge margin, and the image's edges."""
    from scipy import ndimage

    margin = int(math.ceil(fwhm)) if edge is None else int(edge)
    mask = bad.copy()
    if margin > 0:
        mask = ndimage.binary_dilation(bad, iterations=margin) if bad.any() else mask
        mask[:margin] = mask[-margin:] = True
        mask[:, :margin] = mask[:, -margin:] = True
    return margin, mask


def _result(science, diff, s_unit, mask, std, meta):
    """The difference as a CCDData with the science's WCS."""
    from astropy.nddata import CCDData, StdDevUncertainty

    wcs = deepcopy(science.wcs) if science.wcs is not None else None
    return CCDData(diff, unit=s_unit, wcs=wcs, mask=mask,
                   uncertainty=StdDevUncertainty(std), meta=meta)


def _gaussian_psf(fwhm, radius=None):
    sig = fwhm / 2.3548
    r = int(math.ceil(2.5 * fwhm)) if radius is None else radius
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    k = np.exp(-(xx ** 2 + yy ** 2) / (2 * sig ** 2))
    return k / k.sum()


def snr_map(diff, *, fwhm=None, calibrate=True):
    """Matched-filter flux estimate and its S/N at every pixel of a difference image.

    For a PSF ``P`` (a round Gaussian of ``fwhm``, normalised to a sum of one) the flux of
    a point source centred on a pixel is estimated as ``sum(D P) / sum(P**2)`` with error
    ``sqrt(sum(sigma**2 P**2)) / sum(P**2)``, ``sigma`` the difference's uncertainty.
    Masked pixels count as zero with infinite error. That error assumes independent
    pixels; a resampled or PSF-matched difference has correlated noise, so with
    ``calibrate`` (default) the S/N is divided by its own robust scatter (1.4826 times the
    median absolute deviation over the valid pixels, which transients hardly touch): an
    empirical null measured on the image itself, so the S/N has unit scatter on
    source-free sky. The factor is returned by `snr_scale`.

    Returns
    -------
    flux, snr : ndarray
    """
    flux, snr, _ = _snr_and_scale(diff, fwhm, calibrate)
    return flux, snr


def snr_scale(diff, *, fwhm=None):
    """The robust scatter of the uncalibrated matched-filter S/N of ``diff`` (see
    `snr_map`): 1 when its uncertainty describes independent pixels."""
    return _snr_and_scale(diff, fwhm, True)[2]


def _snr_and_scale(diff, fwhm, calibrate):
    from scipy import signal

    data, mask, std, fwhm = _diff_arrays(diff, fwhm)
    psf = _gaussian_psf(fwhm)
    p2 = (psf ** 2).sum()
    d = np.where(mask, 0.0, data)
    var = np.where(mask, 0.0, std ** 2)
    flux = signal.oaconvolve(d, psf[::-1, ::-1], mode="same") / p2
    err = np.sqrt(np.clip(signal.oaconvolve(var, (psf ** 2)[::-1, ::-1], mode="same"),
                          0, None)) / p2
    # pixels whose filter footprint is partly masked: inflate the error accordingly
    cover = signal.oaconvolve((~mask).astype(float), (psf ** 2)[::-1, ::-1],
                              mode="same") / p2
    good = (cover > 0.8) & (err > 0) & ~mask
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(good, flux / err, 0.0)
    scale = 1.0
    if calibrate and good.sum() > 100:
        vals = snr[good]
        mad = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
        if mad > 0:
            scale = mad
            snr = snr / scale
    snr[mask] = 0.0
    return flux, snr, scale


def _diff_arrays(diff, fwhm):
    from ._align import to_stddev

    data, mask = _check_ccd(diff, "diff")
    std = to_stddev(diff, "diff")
    if std is None:
        _, sigma = core.robust_background(data, mask)
        if not sigma > 0:
            raise InputError("diff has no uncertainty and its noise cannot be measured")
        std = np.full(data.shape, sigma)
    mask = mask | ~np.isfinite(std)
    if fwhm is None:
        fwhm = (diff.meta or {}).get("fwhm") or (diff.meta or {}).get("FWHM")
    if fwhm is None:
        fwhm = core.estimate_fwhm(np.abs(np.where(mask, 0, data)), mask)
    fwhm = float(fwhm)
    if not 0.5 <= fwhm <= 50:
        raise InputError(f"fwhm must be between 0.5 and 50 pixels, not {fwhm}")
    return data, mask, std, fwhm


def find_transients(diff, threshold=5, *, fwhm=None, npixels=5, aperture_radius=None,
                    max_sources=10_000):
    """Detect transients, brightening and fading, in a difference image.

    Segmentation (`photutils.segmentation.detect_sources`) of the matched-filter S/N map
    (see :func:`snr_map`; divided by its own robust scatter, so that it has unit scatter
    on source-free sky and ``threshold`` is in Gaussian sigmas; the factor is in the
    table's ``meta['snr_scale']``) above ``+threshold`` (brightening) and below ``-threshold``
    (fading); for each source a flux-weighted centroid, an aperture flux and a real/bogus
    score.

    Parameters
    ----------
    diff : `~astropy.nddata.CCDData`
        A difference image, e.g. from :func:`difference` (its ``meta['fwhm']`` is used).
        Without an uncertainty, the noise is measured robustly from the image.
    threshold : float
        Detection threshold on the S/N map (default 5).
    fwhm : float, optional
        PSF FWHM in pixels for the matched filter; default ``diff.meta['fwhm']``.
    npixels : int
        Minimum connected pixels above the threshold.
    aperture_radius : float, optional
        Radius (pixels) of the flux aperture; default 2 FWHM.
    max_sources : int
        Sources kept, highest absolute S/N first.

    Returns
    -------
    `~astropy.table.QTable`
        One row per transient, highest absolute S/N first: ``id``, ``x``, ``y`` (pixels,
        0-based), ``sky`` (`~astropy.coordinates.SkyCoord`, only if ``diff`` has a
        celestial WCS), ``flux`` and ``flux_err`` (aperture sum and its error, in the
        image's flux unit: adu for adu, electron for electron, ``adu`` for ``adu / pix``;
        a surface brightness is multiplied by the pixel solid angle of the WCS, so
        ``MJy / sr`` gives Jy), ``snr`` (matched-filter S/N at the peak, the quantity
        thresholded; negative for fading), ``sign`` (+1 brightening, -1 fading),
        ``rb_score`` (0-1: correlation of the cut-out with the PSF; a heuristic, not a
        trained classifier) and ``npix`` (segment area).

    Raises
    ------
    InputError
        Bad arguments, or an image whose fluxes cannot be derived: a surface brightness
        (such as MJy/sr) without a celestial WCS, or a logarithmic unit.

    Examples
    --------
    >>> from astroml_affiliated.imagediff import difference, find_transients
    >>> from astroml_affiliated.imagediff.demo import synthetic_pair
    >>> science, reference, truth = synthetic_pair(seed=1)
    >>> table = find_transients(difference(science, reference, device="cpu"))
    >>> len(table) >= 1
    True
    """
    from astropy.table import QTable
    from photutils.aperture import CircularAperture, aperture_photometry
    from photutils.segmentation import detect_sources
    from photutils.utils.exceptions import NoDetectionsWarning

    if not _positive(threshold):
        raise InputError(f"threshold must be a positive number, not {threshold!r}")
    threshold = float(threshold)
    if not (isinstance(max_sources, numbers.Integral) and max_sources >= 0):
        raise InputError(f"max_sources must be a non-negative integer, not {max_sources!r}")
    if not (isinstance(npixels, numbers.Integral) and npixels >= 1):
        raise InputError(f"npixels must be a positive integer, not {npixels!r}")
    if aperture_radius is not None and not _positive(aperture_radius):
        raise InputError(f"aperture_radius must be a positive number of pixels, not "
                         f"{aperture_radius!r}")
    data, mask, std, fwhm = _diff_arrays(diff, fwhm)
    from ._units import pixel_sum_unit

    flux_factor, flux_unit = pixel_sum_unit(diff.unit, diff.wcs)
    _, snr, snr_scale_ = _snr_and_scale(diff, fwhm, True)
    d = np.where(mask, 0.0, data)
    radius = 2.0 * fwhm if aperture_radius is None else float(aperture_radius)
    psf_r = int(math.ceil(1.5 * fwhm))
    rows = []
    for sign in (1, -1):
        with warnings.catch_warnings():  # no source of one sign is a normal outcome
            warnings.simplefilter("ignore", NoDetectionsWarning)
            seg = detect_sources(sign * snr, threshold, npixels, mask=mask)
        if seg is None:
            continue
        for label, sl in zip(seg.labels, seg.slices):
            region = seg.data[sl] == label
            s = np.where(region, sign * snr[sl], -np.inf)
            py, px = np.unravel_index(np.argmax(s), s.shape)
            py += sl[0].start
            px += sl[1].start
            y, x = _centroid(sign * d, py, px, fwhm)
            rows.append((x, y, sign, float(snr[py, px]), int(region.sum()),
                         _rb_score(sign * d, y, x, fwhm, psf_r)))
    rows.sort(key=lambda r: -abs(r[3]))
    rows = rows[:max_sources]
    tab = QTable()
    tab["id"] = np.arange(1, len(rows) + 1)
    xs = np.array([r[0] for r in rows], float)
    ys = np.array([r[1] for r in rows], float)
    tab["x"] = xs
    tab["y"] = ys
    wcs = diff.wcs
    if wcs is not None and wcs.has_celestial:
        tab["sky"] = wcs.pixel_to_world(xs, ys)
    if rows:
        apert = CircularAperture(np.column_stack([xs, ys]), r=radius)
        phot = aperture_photometry(d, apert, error=np.where(mask, 0.0, std), mask=mask)
        flux = np.asarray(phot["aperture_sum"], float)
        flux_err = np.asarray(phot["aperture_sum_err"], float)
    else:
        flux = flux_err = np.zeros(0)
    tab["flux"] = flux * flux_factor * flux_unit
    tab["flux_err"] = flux_err * flux_factor * flux_unit
    tab["snr"] = np.array([r[3] for r in rows], float)
    tab["sign"] = np.array([r[2] for r in rows], int)
    tab["rb_score"] = np.array([r[5] for r in rows], float)
    tab["npix"] = np.array([r[4] for r in rows], int)
    tab.meta.update({"threshold": float(threshold), "fwhm": fwhm, "snr_scale": snr_scale_,
                     "aperture_radius": radius})
    return tab


def _centroid(img, py, px, fwhm, iterations=3):
    """Flux-weighted centroid (of the positive part) in a box of +-1 FWHM, iterated."""
    r = max(2, int(math.ceil(fwhm)))
    y, x = float(py), float(px)
    ny, nx = img.shape
    for _ in range(iterations):
        iy, ix = int(round(y)), int(round(x))
        y0, y1 = max(iy - r, 0), min(iy + r + 1, ny)
        x0, x1 = max(ix - r, 0), min(ix + r + 1, nx)
        cut = np.clip(img[y0:y1, x0:x1], 0, None)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        w = cut * (((yy - y) ** 2 + (xx - x) ** 2) <= r ** 2)
        total = w.sum()
        if total <= 0:
            break
        y, x = float((w * yy).sum() / total), float((w * xx).sum() / total)
    return y, x


def _rb_score(img, y, x, fwhm, r):
    """Pearson correlation of the cut-out with a Gaussian PSF at (y, x), clipped to 0-1."""
    iy, ix = int(round(y)), int(round(x))
    ny, nx = img.shape
    if iy - r < 0 or ix - r < 0 or iy + r >= ny or ix + r >= nx:
        return 0.0
    cut = img[iy - r:iy + r + 1, ix - r:ix + r + 1]
    yy, xx = np.mgrid[iy - r:iy + r + 1, ix - r:ix + r + 1]
    sig = fwhm / 2.3548
    psf = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sig ** 2))
    a, b = cut.ravel() - cut.mean(), psf.ravel() - psf.mean()
    den = np.sqrt((a ** 2).sum() * (b ** 2).sum())
    return float(np.clip((a * b).sum() / den, 0, 1)) if den > 0 else 0.0


def plot_difference(diff, transients=None, *, ax=None, threshold=5, **imshow_kwargs):
    """Show a difference image (zscale) with its transients circled.

    Brightening transients get green circles, fading ones red; masked pixels are grey.
    The grey scale spans +-5 times the median per-pixel uncertainty (zscale without one).

    Parameters
    ----------
    diff : `~astropy.nddata.CCDData`
    transients : `~astropy.table.QTable`, optional
        From :func:`find_transients`; found with ``threshold`` if not given.
    ax : `matplotlib.axes.Axes`, optional

    Returns
    -------
    `matplotlib.axes.Axes`
    """
    import matplotlib.pyplot as plt
    from astropy.visualization import ZScaleInterval
    from matplotlib.patches import Circle

    from ._align import to_stddev

    if transients is None:
        transients = find_transients(diff, threshold)
    data, mask = _check_ccd(diff, "diff")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    shown = np.ma.array(data, mask=mask)
    good = data[~mask]
    std = to_stddev(diff, "diff")
    err = std[~mask & np.isfinite(std)] if std is not None else np.zeros(0)
    if err.size and np.median(err) > 0:
        # +-5 times the typical per-pixel uncertainty (a standard deviation, whatever
        # the uncertainty's type): noise grey, transients stand out
        lo, hi = -5 * np.median(err), 5 * np.median(err)
    else:
        lo, hi = ZScaleInterval().get_limits(good) if good.size else (0, 1)
    lo, hi = imshow_kwargs.pop("vmin", lo), imshow_kwargs.pop("vmax", hi)
    cmap = plt.get_cmap(imshow_kwargs.pop("cmap", "gray")).with_extremes(bad="0.6")
    ax.imshow(shown, origin="lower", cmap=cmap, vmin=lo, vmax=hi, **imshow_kwargs)
    r = 2 * float(transients.meta.get("fwhm", 4)) if len(transients) else 8
    for row in transients:
        color = "lime" if row["sign"] > 0 else "red"
        ax.add_patch(Circle((row["x"], row["y"]), r, fill=False, color=color, lw=1.2))
        ax.annotate(str(row["id"]), (row["x"] + r, row["y"] + r), color=color,
                    fontsize=8)
    ax.set_xlabel("x (pixel)")
    ax.set_ylabel("y (pixel)")
    ax.set_title("difference: "
                 f"{int((transients['sign'] > 0).sum()) if len(transients) else 0} "
                 f"brightening, "
                 f"{int((transients['sign'] < 0).sum()) if len(transients) else 0} fading")
    return ax
