"""`estimate_parameters`: stellar labels from specutils spectra (the public function)."""

import threading

import numpy as np

from .._nddata import uncertainty_variance
from ..errors import InputError
from . import core

__all__ = ["estimate_parameters", "DEFAULT_MODEL", "PHOTOMETRY_MODEL"]

#: The model used when none is named.
DEFAULT_MODEL = "gaiaxp-labels"
#: The model used when none is named and photometry is given.
PHOTOMETRY_MODEL = "gaiaxp-labels-phot"

_FLUX_UNIT = "W m-2 nm-1"
_cache = {}
_lock = threading.Lock()


# -- input parsing ---------------------------------------------------------------------

def _spectral_axis_angstrom(spectrum):
    import astropy.units as u

    axis = getattr(spectrum, "spectral_axis", None)
    if axis is None:
        raise InputError(f"expected a specutils Spectrum or Spectrum1D, got "
                         f"{type(spectrum).__name__}")
    axis = u.Quantity(axis)
    try:
        wave = axis.to_value(u.AA, equivalencies=u.spectral())
    except u.UnitConversionError:
        raise InputError(f"the spectral axis is in {axis.unit!r}, which cannot be turned "
                         "into a wavelength; expected a wavelength, frequency, energy or "
                         "wavenumber unit") from None
    return np.asarray(wave, dtype=float)


def _flux_factor(unit, wave):
    """Per-pixel factor turning flux in ``unit`` into W m-2 nm-1, or None for a relative
    flux (dimensionless, counts, ADU, ...), which is taken as it is."""
    import astropy.units as u

    if isinstance(unit, u.FunctionUnitBase) or u.dex in unit.decompose().bases:
        raise InputError(f"flux in {unit!r} (magnitudes or another logarithmic unit) "
                         "is not accepted; give a flux density, e.g. W m-2 nm-1 or Jy")
    try:
        return (1.0 * unit).to_value(_FLUX_UNIT, equivalencies=u.spectral_density(
            wave * u.AA)) * np.ones_like(wave)
    except u.UnitConversionError:
        pass
    kind = str(unit.physical_type)
    if kind in ("dimensionless", "unknown") or unit.physical_type is None:
        return None
    raise InputError(f"flux in {unit!r} ({kind}) cannot be turned into a flux density "
                     "per unit wavelength; expected a spectral flux density (e.g. "
                     "W m-2 nm-1, erg s-1 cm-2 Å-1, Jy) or a relative flux "
                     "(dimensionless, counts)")


def _as_arrays(spectrum):
    """One spectrum object as (wave Å increasing, flux (n, n_pix) per wavelength,
    variance or None, good mask)."""
    import astropy.units as u

    wave = _spectral_axis_angstrom(spectrum)
    flux_q = u.Quantity(spectrum.flux, copy=False)
    flux = np.asarray(flux_q.value, dtype=float)  # never modified in place below
    index = getattr(spectrum, "spectral_axis_index", flux.ndim - 1)
    var = uncertainty_variance(spectrum.uncertainty, flux.shape, "spectrum", "flux",
                               data_unit=flux_q.unit)
    mask = getattr(spectrum, "mask", None)
    if mask is not None:
        mask = np.array(mask, dtype=bool)
        if mask.shape != flux.shape:
            mask = np.broadcast_to(mask, flux.shape).copy()
    if flux.ndim > 1 and index not in (-1, flux.ndim - 1):
        flux = np.moveaxis(flux, index, -1)
        mask = None if mask is None else np.moveaxis(mask, index, -1)
        var = None if var is None else np.moveaxis(var, index, -1)
    if flux.ndim == 0 or flux.shape[-1] != wave.size:
        raise InputError(f"the flux has shape {flux.shape} but the spectral axis has "
                         f"{wave.size} pixels")
    n_pix = wave.size
    flux = flux.reshape(-1, n_pix)
    mask = None if mask is None else mask.reshape(-1, n_pix)
    var = None if var is None else var.reshape(-1, n_pix)
    factor = _flux_factor(flux_q.unit, wave)
    if factor is not None and not np.all(factor == 1.0):
        flux = flux * factor
        var = None if var is None else var * factor ** 2
    if not np.all(np.diff(wave) > 0):
        order = np.argsort(wave)
        wave, flux = wave[order], flux[:, order]
        mask = None if mask is None else mask[:, order]
        var = None if var is None else var[:, order]
    good = np.isfinite(flux)
    if mask is not None:
        good &= ~mask
    if var is not None:
        good &= var > 0  # False for NaN
        good &= var < np.inf
    return wave, flux, var, good


def _prepare(spectra, const, min_good_fraction):
    """Resample, normalise and impute; returns the model features, the out-of-domain
    statistics (without the ensemble's disagreement) and the masked fractions."""
    grid = const["wavelength"]
    edges = core.bin_edges(grid)
    fluxes, variances, goods = [], [], []
    row = 0  # table row of the spectrum's (first) row: errors name spectra by it
    for spec in spectra:
        wave, flux, var, good = _as_arrays(spec)
        if wave.size < 2:
            raise InputError(f"spectrum {row}: the spectral axis has {wave.size} pixel(s)")
        in_edges = core.bin_edges(wave)
        if in_edges[0] > grid[0] or in_edges[-1] < grid[-1]:
            raise InputError(
                f"spectrum {row} covers {in_edges[0]:.0f}-{in_edges[-1]:.0f} Å but the "
                f"model needs {edges[0]:.0f}-{edges[-1]:.0f} Å (the Gaia XP range); "
                "partial coverage is refused")
        empty = ~good.any(axis=1)
        if empty.any():
            raise InputError(f"spectrum {row + int(np.flatnonzero(empty)[0])}: no good "
                             "pixels (all masked, NaN or with non-positive variance)")
        row += len(flux)
        f, v, g = core.resample(wave, flux, var, good, grid)
        fluxes.append(f)
        variances.append(v)
        goods.append(g)
    if len(fluxes) == 1:
        flux, var, good = fluxes[0], variances[0], goods[0]
    else:
        flux = np.concatenate(fluxes)
        good = np.concatenate(goods)
        var = (None if all(v is None for v in variances) else np.concatenate(
            [v if v is not None else np.full_like(f, np.nan)
             for v, f in zip(variances, fluxes)]))
    frac = np.count_nonzero(good, axis=1) / good.shape[1]
    low = frac < min_good_fraction
    if low.any():
        i = int(np.flatnonzero(low)[0])
        raise InputError(
            f"spectrum {i} has good data in only {frac[i]:.0%} of the model's 343 pixels "
            f"(3360-10200 Å); at least {min_good_fraction:.0%} are needed (see "
            "min_good_fraction). Masked or NaN pixels and gaps count as bad.")
    n = len(flux)
    # the spectral features; a photometry model's colours go into the last columns
    x = np.empty((n, core.n_inputs(const)), np.float32)
    n_spec = x.shape[1] - (len(core.COLOURS) if "colour_scale" in const else 0)
    # rows in blocks on several threads (numpy releases the GIL): a large batch's input
    # handling is as long as the network's on a single core
    bounds = np.linspace(0, n, _n_threads(n) + 1).astype(int)
    blocks = list(zip(bounds[:-1], bounds[1:]))

    def block(ab):
        a, b = ab
        return _features_block(flux[a:b], None if var is None else var[a:b],
                               good[a:b], const, x[a:b, :n_spec], a)

    if len(blocks) == 1:
        parts = [block(blocks[0])]
    else:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(len(blocks)) as pool:
            parts = list(pool.map(block, blocks))
    return x, np.concatenate(parts), 1.0 - frac


def _n_threads(n, rows_per_thread=1024):
    """Threads for the input handling of ``n`` rows: one per ``rows_per_thread`` rows,
    at most one per usable CPU and at most four."""
    import os

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return int(max(1, min(cpus, 4, n // rows_per_thread)))


def _features_block(flux, var, good, const, out, first):
    """Model features (written into ``out``) and out-of-domain statistics (without the
    ensemble's disagreement) of resampled spectra; ``first``: number of the first."""
    # log S/N from the resampled flux and variance (the normalisation cancels); spectra
    # without uncertainties (all-NaN rows) get the training spectra's typical S/N
    ls = core.log_snr(flux, None, const, var=var)
    flux, _, _ = core.normalise(flux, None, good, first=first)  # a new array
    flux, _ = core.impute(flux, good, const)
    xs = core.standardise(flux, const, out=flux)  # in place: the flux is not needed
    projection = core.project(xs, const)
    core.features(None, None, const, xs=xs, xw=projection[0], ls=ls, out=out)
    return core.ood_parts(xs, None, const, projection=projection)


# -- model ----------------------------------------------------------------------------------

def _load(model, device):
    from ..weights import get_entry, list_models, load_models
    from .models import stack_ensemble

    if "constants" not in get_entry(model).get("input", {}):
        spectral = [m for m in list_models() if "constants" in get_entry(m).get("input", {})]
        raise InputError(f"model {model!r} is not a spectrum model; the spectrum models "
                         f"are: {', '.join(spectral)}")
    members, info = load_models(model, device=device)
    key = (model, info["version"], tuple(info["sha256"]), info["device"])
    with _lock:
        if key not in _cache:
            entry = get_entry(model)
            npz = [p for p in info["paths"] if p.name == entry["input"]["constants"]][0]
            with np.load(npz) as data:
                # float64 copies of float32 constants (the same values): arithmetic
                # with float64 spectra then needs no casting on every call
                const = {k: data[k].astype(float) if data[k].dtype == np.float32
                         else data[k] for k in data.files}
            from ..device import device_scope, import_tensorflow
            tf = import_tensorflow()
            with device_scope(device):
                stacked = stack_ensemble(members)
            # one compiled graph for every batch size
            fn = tf.function(lambda x: stacked(x, training=False),
                             input_signature=[tf.TensorSpec(
                                 [None, stacked.input_shape[-1]], tf.float32)])
            _cache[key] = (fn, const)
    predict, const = _cache[key]
    return predict, const, info


def _predict(ens, x, device, batch_size):
    from ..device import device_scope

    out = []
    with device_scope(device) as label:
        for start in range(0, len(x), batch_size):
            out.append(np.asarray(ens(x[start:start + batch_size])))
    return np.concatenate(out), label


def _photometry(photometry, n):
    """Magnitudes (band -> float array of length ``n``) from a mapping or table."""
    import astropy.units as u

    if not hasattr(photometry, "keys") and not hasattr(photometry, "colnames"):
        raise InputError("photometry must be a mapping (e.g. a dict or an astropy Table "
                         f"row or table) of magnitudes, not {type(photometry).__name__}")
    keys = list(photometry.colnames if hasattr(photometry, "colnames")
                else photometry.keys())
    lookup = {str(k).upper(): k for k in keys}
    lookup.setdefault("K", lookup.get("KS"))
    mags = {}
    for band in core.PHOT_BANDS:
        key = lookup.get(band)
        if key is None:
            raise InputError(f"photometry has no {band!r} magnitude; expected Gaia DR3 "
                             "G, BP, RP and 2MASS J, H, K (Ks) magnitudes, keys "
                             f"{', '.join(core.PHOT_BANDS)}")
        val = photometry[key]
        missing = getattr(val, "mask", None)  # masked table entries: missing magnitudes
        if isinstance(val, u.Quantity):
            if val.unit.physical_type != "dimensionless" and val.unit != u.mag:
                raise InputError(f"photometry {band!r} must be in magnitudes, not "
                                 f"{val.unit}")
            val = val.value
        try:
            arr = np.atleast_1d(np.asarray(val, dtype=float))
        except (TypeError, ValueError):
            raise InputError(f"photometry {band!r} is not a number or an array of "
                             "numbers") from None
        if arr.ndim != 1 or arr.size not in (1, n):
            raise InputError(f"photometry {band!r} has {arr.size} value(s) for {n} "
                             "spectra; give one magnitude per spectrum")
        if missing is not None and np.any(missing):
            arr = np.where(np.broadcast_to(missing, arr.shape), np.nan, arr)
        arr = np.broadcast_to(arr, (n,))
        if not np.isfinite(arr).all():
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise InputError(f"photometry {band!r} of spectrum {i} is missing (masked) or not "
                             "finite; use photometry=None for the spectrum-only model")
        mags[band] = arr
    return mags


def estimate_parameters(spectrum, *, photometry=None, model=None, device=None,
                        min_good_fraction=0.8, batch_size=16384):
    """Estimate Teff, log g, [Fe/H] and [alpha/M] of stars from their spectra.

    The spectrum is resampled (flux-conserving) onto the model's grid, normalised by
    its median flux, masked or missing pixels are filled from a principal-component
    reconstruction, and a deep ensemble of neural networks predicts each label with
    a calibrated Gaussian uncertainty and an out-of-domain score.

    Parameters
    ----------
    spectrum : `specutils.Spectrum`, `specutils.Spectrum1D` or list of them
        The spectra. The spectral axis may be in any wavelength, frequency, energy or
        wavenumber unit and must cover the model's range (3360-10200 Å for the default
        Gaia XP model): partial coverage is refused with `InputError`. The flux may be a
        spectral flux density in any unit (per wavelength or per frequency, e.g.
        ``W m-2 nm-1`` or ``Jy``; converted to per-wavelength) or a relative flux
        (dimensionless, counts; taken as flux per unit wavelength, like Gaia XP sampled
        spectra). A 2-D flux (spectra along the first axis) gives one row per spectrum.
        ``mask`` (True = bad) and ``uncertainty`` (`~astropy.nddata.StdDevUncertainty`,
        `~astropy.nddata.VarianceUncertainty` or `~astropy.nddata.InverseVariance`) are
        honoured; the uncertainty sets the signal-to-noise the model sees (without one,
        the typical S/N of the training spectra is assumed). The spectrum is not
        modified.
    photometry : mapping or `~astropy.table.Table`, optional
        The stars' Gaia DR3 ``G``, ``BP``, ``RP`` and 2MASS ``J``, ``H``, ``K`` (Ks)
        magnitudes (keys case-insensitive; numbers, arrays with one value per spectrum,
        or Quantities in mag). With it the default model is ``'gaiaxp-labels-phot'``,
        which uses five colours as well as the spectrum (more accurate, mainly in Teff;
        see its model card). Interstellar reddening is not corrected: the colours are
        taken as observed, like the training stars'.
    model : str, optional
        Name of the model in the weights registry. Default ``'gaiaxp-labels'``, or
        ``'gaiaxp-labels-phot'`` when ``photometry`` is given.
    device : {None, 'cpu', 'gpu', 'gpu:N'}, optional
        Where to run the networks; None picks a GPU if there is one.
    min_good_fraction : float, optional
        Least fraction of the model's pixels that must have good data (default 0.8);
        below it `InputError` is raised.
    batch_size : int, optional
        Spectra per network call.

    Returns
    -------
    `~astropy.table.QTable`
        One row per spectrum: ``teff`` [K], ``logg`` [dex], ``fe_h`` [dex], ``alpha_m``
        [dex], each with ``<label>_err`` (1-sigma, calibrated on validation stars),
        ``ood_score`` (> 1: outside the training domain) and ``ood_flag``, and
        ``masked_fraction`` (fraction of the model's pixels that were filled in).
        ``meta`` holds ``model``, ``version``, ``sha256``, ``device``, ``n_members`` and
        ``photometry`` (whether colours were used).

    Raises
    ------
    InputError
        Not a spectrum, spectral axis or flux in an unusable unit, too little coverage,
        or too few good pixels; photometry incomplete, not finite or not one value per
        spectrum; a photometry model without photometry or the reverse.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from specutils import Spectrum1D
    >>> from astroml_affiliated.spectra import estimate_parameters
    >>> wave = np.arange(3360.0, 10201.0, 20.0) * u.AA
    >>> flux = (1 + 0 * wave.value) * u.Unit("W m-2 nm-1") * 1e-16
    >>> t = estimate_parameters(Spectrum1D(spectral_axis=wave, flux=flux))
    >>> t.colnames[:4]
    ['teff', 'teff_err', 'logg', 'logg_err']
    """
    import astropy.units as u
    from astropy.table import QTable

    spectra = list(spectrum) if isinstance(spectrum, (list, tuple)) else [spectrum]
    if not spectra:
        raise InputError("no spectra given (an empty list)")
    try:
        batch_size = int(batch_size)
    except (TypeError, ValueError):
        batch_size = 0
    if batch_size < 1:
        raise InputError("batch_size must be a positive integer")
    if not 0 < float(min_good_fraction) <= 1:
        raise InputError(f"min_good_fraction must be in (0, 1], not {min_good_fraction!r}")
    if model is None:
        model = DEFAULT_MODEL if photometry is None else PHOTOMETRY_MODEL
    ens, const, info = _load(model, device)
    uses_colours = "colour_scale" in const
    if uses_colours and photometry is None:
        raise InputError(f"model {model!r} needs the stars' photometry (photometry=...); "
                         f"use model={DEFAULT_MODEL!r} for the spectrum alone")
    if photometry is not None and not uses_colours:
        raise InputError(f"model {model!r} takes the spectrum alone; photometry is used by "
                         f"{PHOTOMETRY_MODEL!r} (leave model unset)")
    x, parts, masked = _prepare(spectra, const, float(min_good_fraction))
    if uses_colours:
        x[:, -len(core.COLOURS):] = core.colour_features(_photometry(photometry, len(x)),
                                                         const)
    out, label = _predict(ens, x, device, batch_size)
    snr = core.snr_feature(x, const)
    mean, sigma, spread = core.combine_ensemble(out, const, snr)
    parts[:, core.OOD_DISAGREEMENT] = core.ood_disagreement(spread)
    if "hot_label_coef" in const:  # version 1.4.0 on: the second hot-star classifier
        parts[:, core.OOD_HOT] = core.hot_probability(mean, sigma, snr, parts, const)
    sigma = core.widen_for_masked(sigma, masked, const)
    score = core.ood_score(parts, const)
    table = QTable()
    units = {"teff": u.K, "logg": u.dex, "fe_h": u.dex, "alpha_m": u.dex}
    for i, name in enumerate(core.LABELS):
        table[name] = mean[:, i] * units[name]
        table[name + "_err"] = sigma[:, i] * units[name]
    table["ood_score"] = score
    table["ood_flag"] = score > 1
    table["masked_fraction"] = masked
    table.meta.update(model=info["model"], version=info["version"],
                      sha256=info["sha256"], device=label, n_members=out.shape[1],
                      photometry=uses_colours)
    return table
