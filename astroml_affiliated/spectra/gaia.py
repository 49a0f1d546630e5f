"""Gaia archive XP spectra as the archive gives them: `read_gaia_xp` turns an
``XP_SAMPLED`` table, an ``XP_CONTINUOUS`` table (through GaiaXPy, an optional
dependency) or GaiaXPy's calibrated DataFrame into one specutils spectrum, and
`estimate_parameters_xp` labels it, one row per ``source_id``."""

import warnings
from pathlib import Path

import numpy as np

from ..errors import AstroMLWarning, InputError
from . import core

__all__ = ["read_gaia_xp", "estimate_parameters_xp"]

_FLUX_UNIT = "W m-2 nm-1"
#: Wavelengths (nm) that only BP, or only RP, covers in the XP sampled spectra: GaiaXPy
#: merges BP and RP linearly over 620-680 nm, so a spectrum without RP has no flux
#: above 680 nm and one without BP none below 620 nm.
_BP_ONLY_NM, _RP_ONLY_NM = 620.0, 680.0


def _is_table(data):
    return hasattr(data, "colnames") or hasattr(data, "columns")


def _colnames(data):
    return list(data.colnames if hasattr(data, "colnames") else data.columns)


def _column(data, name):
    """One column of an astropy table or a pandas DataFrame as a list of row values."""
    col = data[name]
    if hasattr(col, "to_numpy") and not hasattr(col, "unit"):  # pandas
        col = col.to_numpy()
    return col


def _as_float_rows(values, name, n_pix=None):
    """A column of arrays (a 2-D column, an object column of arrays, or strings such
    as ``'(1.0, 2.0, ...)'`` or ``'[1.0 2.0 ...]'`` as CSV files hold them) as a 2-D
    float array; missing rows (masked, None, empty) are all-NaN rows."""
    import astropy.units as u

    unit = getattr(values, "unit", None)
    if unit is not None and isinstance(values, u.Quantity):
        values = values.to_value(_FLUX_UNIT)
    elif unit is not None and name.startswith("flux"):
        values = u.Quantity(np.asarray(values), unit).to_value(_FLUX_UNIT)
    mask = getattr(values, "mask", None)
    arr = np.asarray(getattr(values, "data", values) if mask is not None else values)
    if arr.dtype.kind == "f" and arr.ndim == 2:
        out = arr.astype(float)
        if mask is not None and np.ndim(mask) == 2:
            out = np.where(mask, np.nan, out)
        elif mask is not None and np.ndim(mask) == 1:
            out[np.asarray(mask, bool)] = np.nan
        return out
    rows = []
    for i, v in enumerate(arr):
        if v is None or (np.ma.is_masked(v) if not isinstance(v, str) else False):
            rows.append(None)
            continue
        if isinstance(v, (str, bytes)):
            v = v.decode() if isinstance(v, bytes) else v
            text = v.strip().strip("()[]").replace(",", " ").strip()
            rows.append(np.array(text.split(), float) if text else None)
        else:
            a = np.asarray(np.ma.filled(v, np.nan) if np.ma.isMaskedArray(v) else v,
                           dtype=float).ravel()
            rows.append(a if a.size else None)
    size = n_pix or max((r.size for r in rows if r is not None), default=0)
    out = np.full((len(rows), size), np.nan)
    for i, r in enumerate(rows):
        if r is None:
            continue
        if r.size != size:
            raise InputError(f"row {i}: column {name!r} has {r.size} values where the "
                             f"other rows have {size}")
        out[i] = r
    return out


def _read_path(path):
    """A table from a file the Gaia archive (or GaiaXPy) writes: ECSV, CSV, FITS,
    VOTable."""
    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        if path.suffix.lower() == ".csv":
            return Table.read(path, format="ascii.csv")
        return Table.read(path)
    except Exception as exc:  # astropy raises many types for unreadable files
        raise InputError(f"{path} could not be read as a table ({exc}); expected a Gaia "
                         "archive XP_SAMPLED or XP_CONTINUOUS file (ECSV, CSV, FITS or "
                         "VOTable)") from None


def _to_pandas(data):
    """An astropy table (array columns included) as a pandas DataFrame of numpy
    arrays, as GaiaXPy takes it; a DataFrame is returned as it is."""
    import pandas as pd

    if not hasattr(data, "colnames"):
        return data
    cols = {}
    for name in data.colnames:
        col = data[name]
        mask = getattr(col, "mask", None)
        if col.ndim > 1 or col.dtype.kind == "O":
            values = []
            for i, v in enumerate(col):
                if v is None or (mask is not None and np.ndim(mask) == 1 and mask[i]):
                    values.append(None)
                else:
                    a = np.asarray(np.ma.filled(v, np.nan) if np.ma.isMaskedArray(v)
                                   else v, float)
                    values.append(a if a.size else None)
            cols[name] = values
        else:
            cols[name] = np.asarray(np.ma.filled(col, np.nan) if mask is not None
                                    and col.dtype.kind == "f" else col)
    return pd.DataFrame(cols)


def _missing_band(data, names):
    """Per row of an XP_CONTINUOUS table, the band without coefficients ('BP', 'RP',
    'BP+RP') or ''."""
    n = len(data)
    out = np.full(n, "", dtype="<U5")
    for band in ("bp", "rp"):
        coef = _as_float_rows(_column(data, f"{band}_coefficients"),
                              f"{band}_coefficients")
        none = ~np.isfinite(coef).any(axis=1) if coef.size else np.ones(n, bool)
        out = np.where(none, np.char.add(np.char.add(out, np.where(out == "", "", "+")),
                                         band.upper()), out)
    return out


def _import_gaiaxpy():
    """GaiaXPy, imported without the side effect of its import on the caller's
    matplotlib settings (GaiaXPy 2.1 sets ``text.usetex``, which fails every later
    figure on a machine without LaTeX)."""
    import importlib
    import sys

    if sys.modules.get("gaiaxpy") is not None:
        return sys.modules["gaiaxpy"]
    try:
        import matplotlib
    except ImportError:
        return importlib.import_module("gaiaxpy")
    saved = dict(matplotlib.rcParams)
    try:
        return importlib.import_module("gaiaxpy")
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matplotlib.rcParams.update(saved)


def _calibrate_continuous(data, names):
    """Sampled flux and errors (W m-2 nm-1) on the default XP grid from an
    XP_CONTINUOUS table, by GaiaXPy."""
    try:
        calibrate = _import_gaiaxpy().calibrate
    except ImportError:
        raise InputError("XP_CONTINUOUS spectra (basis coefficients) are converted by "
                         "GaiaXPy, which is not installed: pip install "
                         "'astroml_affiliated[gaia]' (or pip install GaiaXPy); or give "
                         "the XP_SAMPLED spectra") from None
    missing = _missing_band(data, names)
    keep = missing == ""
    n = len(data)
    flux = np.full((n, core.xp_grid().size), np.nan)
    err = flux.copy()
    if keep.any():
        frame = _to_pandas(data)
        frame = frame[keep].reset_index(drop=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import contextlib
            import io
            with contextlib.redirect_stdout(io.StringIO()):  # GaiaXPy's progress bar
                out, sampling = calibrate(frame, save_file=False)
        if not np.allclose(np.asarray(sampling, float) * 10.0, core.xp_grid()):
            raise InputError("GaiaXPy's default sampling is not the 343-pixel XP grid "
                             "(336-1020 nm by 2 nm) this package expects")
        flux[keep] = np.stack(out["flux"].to_numpy())
        err[keep] = np.stack(out["flux_error"].to_numpy())
    return flux, err, missing


def _sampled(data, names):
    flux = _as_float_rows(_column(data, "flux"), "flux")
    if flux.shape[1] != core.xp_grid().size and "wavelength" not in names:
        raise InputError(f"the flux column has {flux.shape[1]} values per row; an "
                         "XP_SAMPLED table on the default grid has 343 (336-1020 nm by "
                         "2 nm). Give a 'wavelength' column or meta entry for another "
                         "sampling")
    err = (_as_float_rows(_column(data, "flux_error"), "flux_error", flux.shape[1])
           if "flux_error" in names else None)
    return flux, err


def read_gaia_xp(data):
    """Gaia XP spectra, as the Gaia archive gives them, as one specutils spectrum.

    Parameters
    ----------
    data : `~astropy.table.Table`, `pandas.DataFrame`, str or path
        One of:

        * an archive ``XP_SAMPLED`` table (DataLink or ``astroquery.gaia``): columns
          ``source_id``, ``flux`` and ``flux_error`` (343 values per row, 336-1020 nm by
          2 nm, W m-2 nm-1; a unit on the column is honoured);
        * GaiaXPy's calibrated output (the DataFrame ``gaiaxpy.calibrate`` returns with
          its default sampling), the same columns;
        * an archive ``XP_CONTINUOUS`` table (``bp_coefficients``, ``rp_coefficients``,
          their errors and correlations, ...): sampled on the default grid by GaiaXPy
          (``pip install 'astroml_affiliated[gaia]'``), with the errors GaiaXPy
          propagates from the coefficients' covariance;
        * the path of such a file (ECSV, CSV, FITS or VOTable).

        A ``wavelength`` column (nm; one row's values) or ``meta['wavelength']`` gives
        another sampling of sampled spectra.

    Returns
    -------
    spectrum : `specutils.Spectrum` (`~specutils.Spectrum1D` on specutils 1.x)
        2-D flux (one row per source) in W m-2 nm-1 with a
        `~astropy.nddata.StdDevUncertainty` from the archive's errors; ``meta`` holds
        ``source_id`` (an int64 array) and ``xp_missing`` (per row, 'BP' or 'RP' where
        that half of the spectrum has no data in a continuous table, else ''). The
        input is not modified.

    Raises
    ------
    InputError
        Not a table or file of XP spectra; rows of different lengths; a continuous
        table without GaiaXPy installed.
    """
    import astropy.units as u
    from astropy.nddata import StdDevUncertainty

    from .io import _spectrum_class

    Spectrum = _spectrum_class()

    if isinstance(data, (str, Path)):
        data = _read_path(data)
    if not _is_table(data):
        raise InputError("expected a Gaia archive XP_SAMPLED or XP_CONTINUOUS table "
                         "(astropy Table, pandas DataFrame or a file path), not "
                         f"{type(data).__name__}")
    names = _colnames(data)
    if len(data) == 0:
        raise InputError("the XP table has no rows")
    if "source_id" not in names:
        raise InputError("the XP table has no 'source_id' column; expected an archive "
                         "XP_SAMPLED or XP_CONTINUOUS table")
    source_id = np.asarray(_column(data, "source_id"), dtype=np.int64)
    wave = core.xp_grid()
    if "bp_coefficients" in names or "rp_coefficients" in names:
        for band in ("bp", "rp"):
            if f"{band}_coefficients" not in names:
                raise InputError(f"the XP_CONTINUOUS table has no "
                                 f"'{band}_coefficients' column")
        flux, err, missing = _calibrate_continuous(data, names)
    elif "flux" in names:
        flux, err = _sampled(data, names)
        meta_wave = getattr(data, "meta", {}).get("wavelength") if hasattr(
            data, "meta") else None
        if "wavelength" in names or meta_wave is not None:
            w = np.asarray(_as_float_rows(_column(data, "wavelength"), "wavelength")[0]
                           if "wavelength" in names else meta_wave, float)
            wave = w * 10.0  # nm -> Å
            if wave.size != flux.shape[1]:
                raise InputError(f"{wave.size} wavelengths for {flux.shape[1]} fluxes "
                                 "per row")
        nm = wave / 10.0
        missing = np.full(len(flux), "", dtype="<U5")
        no_bp = ~np.isfinite(flux[:, nm < _BP_ONLY_NM]).any(axis=1)
        no_rp = ~np.isfinite(flux[:, nm > _RP_ONLY_NM]).any(axis=1)
        missing[no_bp] = "BP"
        missing[no_rp] = np.where(no_bp[no_rp], "BP+RP", "RP")
    else:
        raise InputError("the table has neither 'flux' (XP_SAMPLED) nor "
                         "'bp_coefficients'/'rp_coefficients' (XP_CONTINUOUS) columns; "
                         f"its columns are: {', '.join(map(str, names[:12]))}")
    unit = u.Unit(_FLUX_UNIT)
    uncertainty = None if err is None else StdDevUncertainty(err * unit)
    spectrum = Spectrum(spectral_axis=wave * u.AA, flux=flux * unit,
                        uncertainty=uncertainty,
                        meta={"source_id": source_id, "xp_missing": missing})
    return spectrum


def estimate_parameters_xp(data, **kwargs):
    """Stellar labels straight from Gaia archive XP spectra, one row per source.

    Reads ``data`` with `read_gaia_xp` (an archive ``XP_SAMPLED`` or ``XP_CONTINUOUS``
    table, GaiaXPy's calibrated DataFrame, or such a file) and runs
    `~astroml_affiliated.spectra.estimate_parameters` on the spectra, with the
    archive's flux errors as their uncertainty.

    Parameters
    ----------
    data : `~astropy.table.Table`, `pandas.DataFrame`, str or path
        The XP spectra (see `read_gaia_xp`).
    **kwargs
        Passed to `~astroml_affiliated.spectra.estimate_parameters` (``model``,
        ``device``, ``min_good_fraction``, ``batch_size``, ``photometry``).

    Returns
    -------
    `~astropy.table.QTable`
        ``source_id`` then the columns of `~astroml_affiliated.spectra.estimate_parameters`,
        in the order of the input rows, and ``xp_missing``. A source whose BP or RP
        half is missing altogether (no coefficients, or no flux on that side of the
        620-680 nm overlap) is not labelled: NaN labels and errors, ``ood_flag`` True,
        ``xp_missing`` 'BP' or 'RP', and an `~astroml_affiliated.errors.AstroMLWarning`
        names the sources.

    Raises
    ------
    InputError
        As `read_gaia_xp` and `~astroml_affiliated.spectra.estimate_parameters` (for
        example a source with too few good pixels that is not missing a whole half).

    Examples
    --------
    >>> from astroml_affiliated.spectra import estimate_parameters_xp
    >>> from astroml_affiliated.spectra.demo import demo_sample
    >>> sample = demo_sample()          # an XP_SAMPLED-like table of 16 Gaia DR3 sources
    >>> labels = estimate_parameters_xp(sample)
    >>> labels.colnames[:3]
    ['source_id', 'teff', 'teff_err']
    """
    return _label_xp(read_gaia_xp(data), **kwargs)


def _label_xp(spectrum, **kwargs):
    """`estimate_parameters_xp` on the spectrum `read_gaia_xp` returned."""
    import astropy.units as u
    from astropy.table import QTable

    from ._high_level import estimate_parameters

    source_id = spectrum.meta["source_id"]
    missing = spectrum.meta["xp_missing"]
    use = missing == ""
    if not use.any():
        raise InputError("every source lacks its BP or RP spectrum; nothing to label")
    spec = spectrum if use.all() else spectrum[use]
    photometry = kwargs.pop("photometry", None)
    if photometry is not None and not use.all():
        photometry = photometry[use] if hasattr(photometry, "colnames") else {
            k: (np.asarray(v)[use] if np.ndim(v) else v) for k, v in photometry.items()}
    labels = estimate_parameters(spec, photometry=photometry, **kwargs)
    if use.all():
        table = labels
    else:
        table = QTable(meta=labels.meta)
        for name in labels.colnames:
            col = labels[name]
            if isinstance(col, u.Quantity):
                full = np.full(len(use), np.nan) * col.unit
            elif col.dtype.kind == "b":
                full = np.ones(len(use), bool)  # flagged
            else:
                full = np.full(len(use), np.nan)
            full[use] = col
            if name == "masked_fraction":
                full[~use] = 1.0 - np.isfinite(spectrum.flux.value[~use]).mean(axis=1)
            table[name] = full
        warnings.warn(f"{int((~use).sum())} source(s) lack their BP or RP spectrum and "
                      "are not labelled (NaN labels, ood_flag True): source_id "
                      + ", ".join(f"{s} ({m})" for s, m in zip(source_id[~use][:5],
                                                             missing[~use][:5]))
                      + (" ..." if (~use).sum() > 5 else ""), AstroMLWarning)
    table.add_column(source_id, name="source_id", index=0)
    table["xp_missing"] = missing
    return table


def _is_xp_spectrum(spectrum):
    """Whether ``spectrum`` is what `read_gaia_xp` returns (per-source ``source_id`` and
    ``xp_missing`` in its meta)."""
    meta = getattr(spectrum, "meta", None) or {}
    sid, missing = meta.get("source_id"), meta.get("xp_missing")
    rows = np.shape(getattr(spectrum, "flux", ()))[:-1]
    return (np.ndim(sid) == 1 and np.ndim(missing) == 1 and len(rows) == 1
            and len(sid) == len(missing) == rows[0])


def _estimate_parameters_batch(spectra, **kwargs):
    """`~astroml_affiliated.spectra.estimate_parameters` as a batch run calls it (one
    spectrum or a list), except that archive XP spectra (`read_gaia_xp`'s) are labelled
    as `estimate_parameters_xp` labels them: ``source_id`` and ``xp_missing`` columns,
    a source without its BP or RP half flagged instead of failing the file."""
    from astropy.table import vstack

    from ._high_level import estimate_parameters

    if not isinstance(spectra, (list, tuple)):
        return (_label_xp if _is_xp_spectrum(spectra) else estimate_parameters)(
            spectra, **kwargs)
    if not any(_is_xp_spectrum(s) for s in spectra):
        return estimate_parameters(spectra, **kwargs)
    photometry = kwargs.pop("photometry", None)  # a batch run's: one value per spectrum
    return vstack([_estimate_parameters_batch(s, **kwargs, **(
        {} if photometry is None else
        {"photometry": {b: np.asarray(v)[k] for b, v in photometry.items()}}))
        for k, s in enumerate(spectra)], join_type="outer", metadata_conflicts="silent")


def _is_xp_file(path):
    """Whether the file at ``path`` is a Gaia archive XP table (a ``source_id`` column
    and ``flux`` or ``bp_coefficients``/``rp_coefficients``), from its column names
    alone: the data are not read."""
    names = set(_file_colnames(str(path)))
    return "source_id" in names and bool(
        names & {"flux", "bp_coefficients", "rp_coefficients"})


def _file_colnames(path):
    """The column names of an ECSV, CSV, FITS or VOTable file from its header ([] for
    other files and for files that cannot be read)."""
    import re

    name = path.lower()
    try:
        if name.endswith((".fits", ".fit", ".fits.gz", ".fts")):
            from astropy.io import fits

            with fits.open(path) as hdul:
                return [c for hdu in hdul[1:] if hasattr(hdu, "columns")
                        for c in hdu.columns.names]
        if name.endswith((".ecsv", ".csv")):
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:  # the first line that is not a comment names the columns
                    if line.strip() and not line.startswith("#"):
                        return [c.strip("\"' ") for c in re.split(r"[,\s]+", line.strip())]
        if name.endswith((".vot", ".xml", ".votable")):
            with open(path, encoding="utf-8", errors="replace") as fh:
                head = fh.read(1 << 16)
            return re.findall(r"<FIELD[^>]*?\bname\s*=\s*[\"']([^\"']+)", head)
    except Exception:  # not such a file: the spectrum reader says what is wrong
        return []
    return []


def continuous_from_sampled(sampled):
    """For tests and checks (needs GaiaXPy): an archive-style XP_CONTINUOUS table whose
    coefficients are the weighted least-squares projection of each sampled spectrum
    (``sampled``: ``source_id``, ``flux``, ``flux_error`` on the default grid) onto
    GaiaXPy's BP and RP bases (merged as GaiaXPy merges them), with uncorrelated
    coefficient errors whose propagation gives back the sampled errors (non-negative
    least squares on the variances)."""
    from astropy.table import Table
    _import_gaiaxpy()
    import gaiaxpy.core.config as cfg
    from scipy.optimize import nnls

    grid, merge = cfg.load_xpmerge_from_xml()
    design = cfg.load_xpsampling_from_xml()
    if not np.allclose(np.asarray(grid) * 10.0, core.xp_grid()):
        raise InputError("GaiaXPy's default sampling is not the 343-pixel XP grid")
    n = design["bp"].shape[0]
    tri = np.tril_indices(n, -1)
    rows = {k: [] for k in ("source_id", "bp_n_parameters", "rp_n_parameters",
                            "bp_standard_deviation", "rp_standard_deviation",
                            "bp_coefficients", "rp_coefficients", "bp_coefficient_errors",
                            "rp_coefficient_errors", "bp_coefficient_correlations",
                            "rp_coefficient_correlations", "bp_n_relevant_bases",
                            "rp_n_relevant_bases")}
    flux = np.asarray(sampled["flux"], float)
    err = np.asarray(sampled["flux_error"], float)
    a = np.concatenate([merge["bp"][:, None] * design["bp"].T,
                        merge["rp"][:, None] * design["rp"].T], axis=1)  # (343, 110)
    for sid, f, e in zip(sampled["source_id"], flux, err):
        coef = np.linalg.lstsq(a / e[:, None], f / e, rcond=None)[0]
        var = nnls(a ** 2 / e[:, None] ** 2, np.ones_like(e))[0]
        rows["source_id"].append(int(sid))
        for k, band in enumerate(("bp", "rp")):
            sl = slice(k * n, (k + 1) * n)
            rows[f"{band}_n_parameters"].append(n)
            rows[f"{band}_standard_deviation"].append(1.0)
            rows[f"{band}_coefficients"].append(coef[sl])
            rows[f"{band}_coefficient_errors"].append(np.sqrt(var[sl]))
            rows[f"{band}_coefficient_correlations"].append(np.zeros(tri[0].size))
            rows[f"{band}_n_relevant_bases"].append(n)
    return Table({k: (np.array(v) if np.ndim(v[0]) else np.array(v)) for k, v in rows.items()})
