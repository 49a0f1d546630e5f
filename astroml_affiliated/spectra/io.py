"""Spectrum files (read with specutils) and the photometry table of a batch run."""

import os

import numpy as np

from .._io import _is_pathlike, _one_line
from ..errors import InputError

__all__ = ["read_spectrum", "read_photometry"]


def _spectrum_class():
    try:
        from specutils import Spectrum
    except ImportError:  # specutils < 2
        from specutils import Spectrum1D as Spectrum
    return Spectrum


def read_spectrum(path):
    """Read a spectrum file with specutils (any format it identifies; FITS tables that
    it cannot identify are read as ``tabular-fits``).

    A Gaia archive XP file (an ``XP_SAMPLED`` or ``XP_CONTINUOUS`` table: ECSV, CSV,
    FITS or VOTable with a ``source_id`` column) is read by
    `~astroml_affiliated.spectra.read_gaia_xp`: one spectrum per source, the sources'
    ``source_id`` in its meta."""
    import warnings

    from .gaia import _is_xp_file, read_gaia_xp

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if _is_xp_file(path):
        return read_gaia_xp(path)
    cls = _spectrum_class()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return cls.read(path)
        except Exception as exc:
            if "could not be identified" in str(exc) or "matched multiple" in str(exc):
                if path.lower().endswith((".fits", ".fit", ".fits.gz")):
                    return cls.read(path, format="tabular-fits")
            raise


def read_photometry(photometry, inputs):
    """The magnitudes of each spectrum file of a batch run, from a table.

    Parameters
    ----------
    photometry : str, path or `~astropy.table.Table`
        A table (or a file that `astropy.table.Table.read` reads: ECSV, CSV, FITS, ...)
        with a ``file`` column naming a spectrum file and the Gaia DR3 ``G``, ``BP``,
        ``RP`` and 2MASS ``J``, ``H``, ``K`` (or ``Ks``) magnitudes, column names
        case-insensitive, numbers or in mag. A row belongs to the input whose file name
        (without the directory) is the file name of its ``file`` value; rows that
        belong to no input are ignored. Masked or NaN magnitudes are passed on: that
        spectrum's file then gets an ``error`` row.
    inputs : list of str
        The spectrum files of the run (see `expand_inputs`).

    Returns
    -------
    list of dict
        For each input, in order, ``{band: magnitude}`` (floats).

    Raises
    ------
    InputError
        The table cannot be read, lacks the ``file`` column or a band, has a band that
        is not a magnitude, or has two rows for one file name; an input is not a file,
        shares its file name with another input, or has no row.
    """
    from astropy.table import Table

    from .core import PHOT_BANDS

    if isinstance(photometry, Table):
        table, name = photometry, "the photometry table"
    elif not _is_pathlike(photometry):
        raise InputError("photometry must be a table or the path of one, not "
                         f"{type(photometry).__name__}")
    else:
        name = os.fspath(photometry)
        try:
            table = Table.read(name)
        except Exception as exc:
            raise InputError(f"cannot read the photometry table {name}: {_one_line(exc)}"
                             " (give a table astropy reads, e.g. .ecsv, .csv or .fits)") \
                from None
    bands = "G, BP, RP, J, H, K (or Ks)"
    lower = {c.lower(): c for c in table.colnames}
    lookup = {c.upper(): c for c in table.colnames}
    lookup.setdefault("K", lookup.get("KS"))
    missing = (["file"] if "file" not in lower else []) + \
        [b for b in PHOT_BANDS if lookup.get(b) is None]
    if missing:
        raise InputError(f"{name} has no {', '.join(repr(m) for m in missing)} "
                         f"column(s); it needs a 'file' column naming each spectrum file "
                         f"and the magnitudes {bands} (column names case-insensitive)")
    mags = {}
    for band in PHOT_BANDS:
        col = table[lookup[band]]
        unit = getattr(col, "unit", None)
        if unit is not None and str(unit) not in ("", "mag"):
            raise InputError(f"{name}: column {lookup[band]!r} is in {unit}, not in "
                             "magnitudes")
        try:
            values = np.ma.asarray(getattr(col, "value", col), dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"{name}: column {lookup[band]!r} is not numeric") from None
        mags[band] = np.ma.filled(values, np.nan)
    files = np.ma.filled(np.ma.asarray(table[lower["file"]]).astype(str), "")
    row_of = {}
    for row, value in enumerate(files):
        base = os.path.basename(value.strip())
        if not base:
            continue
        if base in row_of:
            raise InputError(f"{name} has two rows for {base} (rows {row_of[base] + 1} "
                             f"and {row + 1}); give one row per spectrum file")
        row_of[base] = row
    out, seen, without = [], {}, []
    for item in inputs:
        if not isinstance(item, str):
            raise InputError("photometry is matched to spectra by file name: give "
                             "spectrum files, not in-memory spectra")
        base = os.path.basename(item)
        if base in seen:
            raise InputError(f"{seen[base]} and {item} have the same file name: "
                             "photometry rows are matched by file name, so run them "
                             "separately")
        seen[base] = item
        if base not in row_of:
            without.append(item)
            continue
        out.append({band: float(mags[band][row_of[base]]) for band in PHOT_BANDS})
    if without:
        raise InputError(f"{name} has no row for {len(without)} of {len(inputs)} spectrum "
                         f"file(s): {', '.join(without[:5])}"
                         + (", ..." if len(without) > 5 else "")
                         + " (its 'file' column is compared by file name, without the "
                         "directory)")
    return out
