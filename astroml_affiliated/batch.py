"""Batch runs: many light curves, image pairs or spectra through a model, serially or
with Dask.

`find_flares_batch` and `estimate_parameters_batch` take many inputs (file paths,
globs, ``@list`` files of paths, or in-memory objects), `difference_batch` many
(science, reference) image pairs (or a file of pairs), and they return **one** table
with every input accounted for:

* every input gets at least one row. Its ``input`` column holds the path (or
  ``<LightCurve #3>`` for an in-memory object) and ``status`` is ``'ok'`` (a result
  row), ``'empty'`` (the input was processed and the model found nothing, e.g. no
  flares) or ``'error'`` (the input could not be read or the model refused it; the
  ``error`` column holds the exception type and message). A bad file never stops
  the run.
* with ``output=``, the table is written atomically (a temporary file in the same
  directory, then :func:`os.replace`), at the end and every ``checkpoint`` seconds,
  so a killed run leaves either the previous complete file or none, never half a file.
* ``resume=True`` reads the existing output, keeps its ``ok`` and ``empty`` rows and
  runs only the other inputs (inputs that failed before are tried again).

Work runs in this process (``client=None``), on a `~dask.distributed.LocalCluster`
started for the run (``n_workers=N``, one thread per worker process), or on any Dask
cluster (``client=`` a `~dask.distributed.Client` or a scheduler address). Paths, not
objects, travel to the workers; each worker process builds the model once (see
`astroml_affiliated.weights.load_models`) and reuses it for every input it gets.
Dask is imported only when a cluster is used.
"""

import glob
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AstroMLError, DeviceError, InputError, WeightsError

__all__ = ["find_flares_batch", "estimate_parameters_batch", "difference_batch",
           "run_batch", "expand_inputs", "expand_pairs",
           "read_lightcurve", "read_spectrum", "read_photometry", "read_image",
           "read_image_pair",
           "write_table_atomic", "write_ccd_atomic", "write_lightcurve_fits", "TASKS", "STATUS_OK",
           "STATUS_EMPTY", "STATUS_ERROR", "BatchInterrupted"]

STATUS_OK = "ok"
STATUS_EMPTY = "empty"
STATUS_ERROR = "error"

#: Errors that are not about one input but about the whole run (the model, a package
#: or the device is missing): they stop the run instead of becoming error rows.
_FATAL = (WeightsError, DeviceError, ImportError, MemoryError)

_GLOB_CHARS = set("*?[")
#: Output formats that keep units, times and metadata: runs written in them can resume.
_RESUMABLE_FORMATS = ("ascii.ecsv", "hdf5")
_MAX_ERROR_CHARS = 500


class BatchInterrupted(AstroMLError):
    """A batch run stopped early (interrupt or fatal error); what was done is saved."""


# -- tasks ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Task:
    """How one model is run on one input."""

    name: str
    reader: str  #: "module:function": path -> object
    predict: str  #: "module:function": object -> QTable
    kind: str  #: what an input is, for messages
    options: tuple  #: keyword options the model function accepts
    batched: bool = False  #: predict accepts a list of objects (one call per chunk)
    pairs: bool = False  #: an input is a (science, reference) pair, see `expand_pairs`
    reader_options: tuple = ()  #: options that go to the reader, not to predict
    extra: dict = field(default_factory=dict)


def _import(target):
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


#: The models that can run in batches: name -> task.
TASKS = {
    "flares": _Task("flares", "astroml_affiliated.batch:read_lightcurve",
                    "astroml_affiliated.flares:find_flares", "light curve",
                    ("threshold", "model", "device", "quality_bitmask")),
    "spectra": _Task("spectra", "astroml_affiliated.batch:read_spectrum",
                     "astroml_affiliated.spectra:estimate_parameters", "spectrum",
                     ("model", "device", "min_good_fraction", "batch_size",
                      "photometry"),
                     batched=True),
    "diff": _Task("diff", "astroml_affiliated.batch:read_image_pair",
                  "astroml_affiliated.batch:_difference_pair", "image pair",
                  ("threshold", "model", "device", "align", "saturation", "gain", "unit",
                   "outdir"),
                  pairs=True, reader_options=("unit",)),
}


# -- readers ------------------------------------------------------------------------------

def read_lightcurve(path):
    """Read a light curve file with lightkurve (FITS from any mission, or ECSV/CSV).

    Raises
    ------
    InputError
        If the file holds a target pixel file or something else than a light curve.
    """
    import warnings

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lightkurve as lk

        if path.lower().endswith((".ecsv", ".csv", ".txt", ".dat")):
            obj = lk.LightCurve.read(path)
        else:
            obj = lk.read(path)
    if not isinstance(obj, lk.LightCurve):
        raise InputError(f"{path} holds a {type(obj).__name__}, not a light curve")
    return obj


def _spectrum_class():
    try:
        from specutils import Spectrum
    except ImportError:  # specutils < 2
        from specutils import Spectrum1D as Spectrum
    return Spectrum


def read_spectrum(path):
    """Read a spectrum file with specutils (any format it identifies; FITS tables that
    it cannot identify are read as ``tabular-fits``)."""
    import warnings

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
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

    from .spectra.core import PHOT_BANDS

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


def read_image(path, *, unit=None):
    """Read an image with `~astropy.nddata.CCDData.read` (FITS; the first HDU with data,
    a ``MASK`` and an ``UNCERT`` extension if present).

    Parameters
    ----------
    path : str or path
    unit : str or `~astropy.units.Unit`, optional
        The unit of the data if the header has no ``BUNIT`` (a ``BUNIT`` in the file
        takes precedence).

    Raises
    ------
    InputError
        The file has no ``BUNIT`` and no ``unit`` was given.
    """
    import warnings

    from astropy.nddata import CCDData

    path = os.fspath(path)
    unit = _parse_unit(unit)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            try:
                return CCDData.read(path)
            except ValueError as exc:
                if "unit" not in str(exc):
                    raise
            if unit is None:
                raise InputError(f"{path} has no unit (no BUNIT keyword): give one with "
                                 "--unit / unit= (e.g. electron or adu)")
            return CCDData.read(path, unit=unit)
        except (InputError, MemoryError):
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise InputError(f"cannot read {path} as a FITS image ({type(exc).__name__}"
                             + (f": {first}" if first else "") + ")") from exc


def _parse_unit(unit):
    if unit is None:
        return None
    import astropy.units as u

    try:
        return u.Unit(unit)
    except (ValueError, TypeError):
        raise InputError(f"unit {unit!r} is not a unit astropy knows (e.g. electron, "
                         "adu, electron/s)") from None


class _ImagePair:
    """A science and a reference image, and the name of their difference image."""

    __slots__ = ("science", "reference", "name", "diff_file")

    def __init__(self, science, reference, name):
        self.science, self.reference, self.name = science, reference, name
        self.diff_file = ""


_IMAGE_EXTENSIONS = (".fits", ".fit", ".fts")


def _image_stem(path):
    name = os.path.basename(os.fspath(path))
    for ext in (".gz", ".fz", ".bz2"):
        if name.lower().endswith(ext):
            name = name[:-len(ext)]
    for ext in _IMAGE_EXTENSIONS:
        if name.lower().endswith(ext):
            name = name[:-len(ext)]
    return name


def _diff_name(pair):
    """File name of a pair's difference image (None for in-memory images)."""
    science, reference = pair
    if not (_is_pathlike(science) and _is_pathlike(reference)):
        return None
    return f"{_image_stem(science)}-minus-{_image_stem(reference)}.fits"


def read_image_pair(pair, *, unit=None):
    """Read a (science, reference) pair of image files with `read_image`.

    Elements that are already `~astropy.nddata.CCDData` (or `~astropy.nddata.NDData`)
    objects are kept as they are (not copied: image differencing does not modify them).
    """
    science, reference = pair
    images = [read_image(p, unit=unit) if _is_pathlike(p) else p
              for p in (science, reference)]
    return _ImagePair(images[0], images[1], _diff_name(pair))


def _difference_pair(pair, *, outdir=None, threshold=5, **options):
    """Difference one pair, write the difference image, find its transients."""
    import astropy.units as u

    from .imagediff import difference, find_transients

    diff = difference(pair.science, pair.reference, **options)
    if outdir is not None and pair.name:
        path = Path(outdir) / pair.name
        write_ccd_atomic(diff, path)
        pair.diff_file = os.fspath(path)
    table = find_transients(diff, threshold)
    if "sky" in table.colnames:  # plain columns: they stack with rows that lack them
        sky = table["sky"].icrs
        index = table.colnames.index("sky")
        table.remove_column("sky")
        table.add_column(sky.ra.to(u.deg), name="ra", index=index)
        table.add_column(sky.dec.to(u.deg), name="dec", index=index + 1)
    for key in ("model", "version", "sha256", "device"):
        if key in diff.meta:
            table.meta[key] = diff.meta[key]
    return table


def write_lightcurve_fits(lc, path, *, overwrite=False):
    """Write a light curve as a TESS-SPOC-like FITS file that `lightkurve.read` reads.

    (lightkurve's own ``to_fits`` output is not recognised by ``lightkurve.read``.)
    Time is written in BTJD, flux and ``flux_err`` as ``PDCSAP_FLUX`` and
    ``SAP_FLUX``; ``quality`` (if any) as ``QUALITY``; ``meta`` keys ``TICID``,
    ``SECTOR`` and ``OBJECT`` go into the primary header.
    """
    from astropy.io import fits

    n = len(lc)
    time_ = lc.time.btjd if hasattr(lc.time, "btjd") else lc.time.jd - 2457000.0
    unit = str(getattr(lc.flux, "unit", "") or "")
    flux = np.asarray(getattr(lc.flux, "value", lc.flux), dtype=float)
    err = (np.asarray(getattr(lc.flux_err, "value", lc.flux_err), dtype=float)
           if "flux_err" in lc.colnames else np.full(n, np.nan))
    quality = (np.asarray(getattr(lc["quality"], "value", lc["quality"]), dtype=np.int32)
               if "quality" in lc.colnames else np.zeros(n, np.int32))
    cadenceno = (np.asarray(lc["cadenceno"], dtype=np.int32) if "cadenceno" in lc.colnames
                 else np.arange(n, dtype=np.int32))
    cols = [fits.Column("TIME", "D", unit="BJD - 2457000, days", array=np.asarray(time_)),
            fits.Column("CADENCENO", "J", array=cadenceno)]
    for name in ("SAP_FLUX", "PDCSAP_FLUX"):
        cols.append(fits.Column(name, "E", unit=unit or None, array=flux))
        cols.append(fits.Column(name + "_ERR", "E", unit=unit or None, array=err))
    cols.append(fits.Column("QUALITY", "J", array=quality))
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "TESS"
    primary.header["CREATOR"] = "astroml_affiliated LightCurveExporterPipelineModule"
    primary.header["ORIGIN"] = "astroml_affiliated (synthetic or converted)"
    for key in ("OBJECT", "TICID", "SECTOR", "CAMERA", "CCD"):
        if lc.meta.get(key) not in (None, ""):
            primary.header[key] = lc.meta[key]
    table = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    table.header.update(TELESCOP="TESS", BJDREFI=2457000, BJDREFF=0.0, TIMEUNIT="d",
                        TIMESYS="TDB")
    fits.HDUList([primary, table]).writeto(path, overwrite=overwrite)
    return Path(path)


# -- inputs -------------------------------------------------------------------------------

def _is_pathlike(item):
    return isinstance(item, (str, os.PathLike))


def _expand_one(item, out, seen_lists):
    if not _is_pathlike(item):
        out.append(item)
        return
    text = os.fspath(item)
    if isinstance(item, str) and text.startswith("@"):
        listfile = os.path.expanduser(text[1:])
        key = os.path.abspath(listfile)
        if key in seen_lists:
            raise InputError(f"file list {listfile} includes itself")
        try:
            with open(listfile, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read the file list {listfile}: {exc.strerror}") \
                from None
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                _expand_one(line, out, seen_lists | {key})
        return
    text = os.path.expanduser(text)
    if _GLOB_CHARS & set(text) and not os.path.exists(text):
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise InputError(f"no files match {text!r}")
        out.extend(matches)
        return
    out.append(text)


def expand_inputs(inputs):
    """The list of inputs of a batch run.

    Parameters
    ----------
    inputs : str, path, object, or iterable of them
        Paths; glob patterns (``'sector5/*.fits'``, ``'**'`` recurses); ``'@list.txt'``
        (a file with one path or pattern per line; blank lines and lines starting with
        ``#`` are skipped; relative paths are relative to the current directory); or
        in-memory objects (light curves, spectra), kept as they are.

    Returns
    -------
    list
        Paths (`str`) and objects, in order, each path once.

    Raises
    ------
    InputError
        A pattern matches no file, a list file cannot be read, or there are no inputs.
    """
    if _is_pathlike(inputs) or hasattr(inputs, "meta") or hasattr(inputs, "flux"):
        inputs = [inputs]
    try:
        items = list(inputs)
    except TypeError:
        raise InputError(f"inputs must be paths, objects or a list of them, not "
                         f"{type(inputs).__name__}") from None
    out = []
    for item in items:
        _expand_one(item, out, frozenset())
    unique = _first_of_each(out)
    if not unique:
        raise InputError("no inputs given")
    return unique


def expand_pairs(pairs):
    """The list of (science, reference) pairs of a batch run of image differencing.

    Parameters
    ----------
    pairs : str, path, or iterable of (science, reference)
        A text file with two paths per line, science first (whitespace-separated;
        blank lines and lines starting with ``#`` are skipped; relative paths are
        relative to the current directory; ``'@pairs.txt'`` is accepted too), or a list
        of 2-element sequences of paths or `~astropy.nddata.CCDData` objects.

    Returns
    -------
    list of tuple
        ``(science, reference)``, paths as `str`, in order, each pair of paths once.

    Raises
    ------
    InputError
        The file cannot be read, a line or an item is not two paths, or there is no pair.
    """
    if _is_pathlike(pairs):
        text = os.path.expanduser(os.fspath(pairs))
        if isinstance(pairs, str) and text.startswith("@"):
            text = os.path.expanduser(text[1:])
        try:
            with open(text, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise InputError(f"cannot read the file of pairs {text}: {why}") from None
        items = []
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 2:
                raise InputError(f"{text}, line {number}: expected two paths (science "
                                 f"reference), found {len(fields)} field(s)")
            items.append(tuple(fields))
    else:
        try:
            items = list(pairs)
        except TypeError:
            raise InputError("pairs must be a file of pairs or a list of (science, "
                             f"reference), not {type(pairs).__name__}") from None
    out = []
    for number, item in enumerate(items):
        if _is_pathlike(item) or not hasattr(item, "__len__") or len(item) != 2:
            raise InputError(f"pair #{number} is not a (science, reference) pair: "
                             f"{item!r:.100}")
        out.append(tuple(os.path.expanduser(os.fspath(p)) if _is_pathlike(p) else p
                         for p in item))
    out = _first_of_each(out)
    if not out:
        raise InputError("no image pairs given")
    return out


def _path_key(path):
    return os.path.normpath(os.path.abspath(os.path.expanduser(path)))


def _item_key(item):
    """What identifies an input across runs (None for an in-memory object)."""
    if isinstance(item, str):
        return _path_key(item)
    if isinstance(item, tuple) and all(isinstance(p, str) for p in item):
        return "\n".join(_path_key(p) for p in item)
    return None


def _first_of_each(items):
    """``items`` in order, each input named by path(s) once (objects always kept)."""
    seen, unique = set(), []
    for item in items:
        key = _item_key(item)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        unique.append(item)
    return unique


def _row_keys(table, task):
    """`_item_key` of the inputs of a result table's rows."""
    if task.pairs:
        columns = [np.asarray(table[c], dtype=str) for c in ("science", "reference")]
        items = [tuple(p) for p in zip(*columns)]
    else:
        items = list(np.asarray(table["input"], dtype=str))
    return [None if any(p.startswith("<") or not p for p in
                        (item if isinstance(item, tuple) else (item,)))
            else _item_key(item) for item in items]


def _label(item, index):
    if isinstance(item, tuple):
        return " - ".join(_label(p, index) for p in item)
    return item if isinstance(item, str) else f"<{type(item).__name__} #{index}>"


def _item_columns(task, item, index):
    """Columns that name an input, on every row (results, empty and error)."""
    if task.pairs:
        return {"science": _label(item[0], index), "reference": _label(item[1], index)}
    return {}


# -- one input, one chunk (this runs on the workers) ------------------------------------

def _one_line(exc):
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    text = lines[0] + " (...)" if len(lines) > 3 else " ".join(lines)
    text = " ".join(text.split())
    if len(text) > _MAX_ERROR_CHARS:
        text = text[:_MAX_ERROR_CHARS - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _plain(table):
    """A plain QTable (drops subclass state such as a reference to the input)."""
    from astropy.table import QTable

    out = QTable(table, copy=False)
    out.meta = dict(table.meta)
    return out


def _input_columns(task, obj):
    """Per-input values that the model table does not carry (also on 'empty' rows)."""
    if task.name == "flares":
        from .flares._high_level import target_and_sector

        target, sector = target_and_sector(obj)
        return {"target": target, "sector": sector}
    if task.pairs:
        return {"diff_file": obj.diff_file}
    return {}


def _annotate(task, table, obj):
    for name, value in _input_columns(task, obj).items():
        if task.pairs:  # before the model's columns
            table.add_column(np.array([value] * len(table), dtype=str), name=name,
                             index=0)
        else:
            table[name] = np.array([value] * len(table))
    if task.name == "spectra":
        table["spectrum_index"] = np.arange(len(table), dtype=np.int64)
    return table


def _n_spectra(spec):
    shape = np.shape(getattr(spec, "flux", ()))
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


_worker_ready = False


def _configure_worker():
    """Inside a Dask worker: give TensorFlow as many threads as the worker has."""
    global _worker_ready
    if _worker_ready:
        return
    _worker_ready = True
    try:
        from distributed import get_worker

        nthreads = get_worker().state.nthreads
    except Exception:  # not on a Dask worker
        return
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(nthreads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(nthreads))


def _process_chunk(task_name, items, options):
    """Run the model on ``items`` (``[(index, path_or_object), ...]``).

    Returns ``[(index, status, table_or_None, error_message, input_columns), ...]``.
    Errors about an input become error entries; errors in `_FATAL` propagate.
    """
    _configure_worker()
    task = TASKS[task_name]
    predict = _import(task.predict)
    reader = _import(task.reader)
    reader_options = {k: v for k, v in options.items() if k in task.reader_options}
    options = {k: v for k, v in options.items() if k not in task.reader_options}
    photometry = options.pop("photometry", None)  # {index: {band: magnitude}}
    loaded, results = [], {}
    for index, item in items:
        try:
            read = _is_pathlike(item) or (task.pairs and isinstance(item, tuple))
            obj = reader(item, **reader_options) if read else item
            if photometry is not None and _n_spectra(obj) != 1:
                raise InputError(f"the file holds {_n_spectra(obj)} spectra, but the "
                                 "photometry table has one row per file: give files "
                                 "with one spectrum each")
            loaded.append((index, obj))
        except _FATAL:
            raise
        except Exception as exc:
            results[index] = (index, STATUS_ERROR, None, _one_line(exc), {})
    if task.batched and len(loaded) > 1:
        try:
            if photometry is not None:  # one spectrum per input: one row each
                options["photometry"] = {band: np.array([photometry[i][band]
                                                         for i, _ in loaded])
                                         for band in photometry[loaded[0][0]]}
            table = predict([obj for _, obj in loaded], **options)
            counts = [_n_spectra(obj) for _, obj in loaded]
            if sum(counts) == len(table):
                start = 0
                for (index, obj), n in zip(loaded, counts):
                    part = _annotate(task, _plain(table[start:start + n]), obj)
                    results[index] = (index, STATUS_OK if n else STATUS_EMPTY, part, "",
                                      _input_columns(task, obj))
                    start += n
                loaded = []
        except _FATAL:
            raise
        except Exception:
            pass  # one bad input spoils a joint call: fall back to one call per input
    for index, obj in loaded:
        if photometry is not None:
            options["photometry"] = photometry[index]
        try:
            table = _annotate(task, _plain(predict(obj, **options)), obj)
        except _FATAL:
            raise
        except Exception as exc:
            results[index] = (index, STATUS_ERROR, None, _one_line(exc), {})
            continue
        results[index] = (index, STATUS_OK if len(table) else STATUS_EMPTY, table, "",
                          _input_columns(task, obj))
    return [results[index] for index, _ in items]


def _run_chunk(task_name, items, labels, options):
    """`_process_chunk`, then the chunk's rows as tables (done on the worker).

    Returns ``(parts, statuses, meta)``: ``parts`` is a list of at most two tables,
    the result rows of the chunk's inputs and the status rows of its ``empty`` and
    ``error`` inputs, each with ``input``, ``status``, ``error`` and ``_index`` (the
    input's position) columns. They are kept apart so that no table that travels
    between processes has masked values (astropy cannot unpickle a masked `Time`).
    ``statuses`` is ``{index: status}``; ``meta`` the model meta common to the chunk's
    results (None if it has none).
    """
    results = _process_chunk(task_name, items, options)
    task = TASKS[task_name]
    ok_pieces, status_pieces, statuses, ok_tables = [], [], {}, []
    for (index, status, table, err, extra), label, (_, item) in zip(results, labels,
                                                                     items):
        extra = {**_item_columns(task, item, index), **extra}
        statuses[index] = status
        piece = _status_table(label, status, err, table, extra)
        piece["_index"] = np.full(len(piece), index, dtype=np.int64)
        if table is not None and len(table):
            ok_pieces.append(piece)
            ok_tables.append(table)
        else:
            status_pieces.append(piece)
    parts = []
    for pieces in (ok_pieces, status_pieces):
        if pieces:
            part = _stack(pieces)
            part.meta = {}
            parts.append(part)
    return parts, statuses, (_common_meta(ok_tables) if ok_tables else None)


# -- assembling the table -------------------------------------------------------------------

def _status_table(label, status, error, table=None, extra=None):
    from astropy.table import QTable

    if table is not None and len(table):
        out = table.copy(copy_data=False)
        n = len(out)
        out.add_column(np.array([label] * n, dtype=str), name="input", index=0)
        out.add_column(np.array([status] * n, dtype=str), name="status", index=1)
        new = [(k, v) for k, v in (extra or {}).items() if k not in out.colnames]
        for position, (name, value) in enumerate(new, 2):
            out.add_column(np.array([value] * n), name=name, index=position)
        out["error"] = np.array([error] * n, dtype=str)
        return out
    out = QTable({"input": np.array([label], dtype=str),
                  "status": np.array([status], dtype=str)})
    for name, value in (extra or {}).items():
        out[name] = np.array([value])
    out["error"] = np.array([error], dtype=str)
    return out


def _plain_value(value):
    """Meta values that ECSV's YAML can write."""
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _common_meta(tables):
    """Meta items equal in every table (model, version, sha256, ...)."""
    common = None
    for table in tables:
        items = dict(getattr(table, "meta", table))
        if common is None:
            common = items
        else:
            common = {k: v for k, v in common.items()
                      if k in items and repr(items[k]) == repr(v)}
    return {k: _plain_value(v) for k, v in (common or {}).items()}


def _stack(pieces):
    from astropy.table import QTable, vstack

    if not pieces:
        return QTable({"input": np.array([], dtype=str), "status": np.array([], dtype=str),
                       "error": np.array([], dtype=str)})
    pieces = [_portable_times(_align_time_formats(p, pieces)) for p in pieces]
    out = vstack(pieces, join_type="outer", metadata_conflicts="silent")
    out = QTable(out, copy=False)
    # string columns of masked rows: empty strings are clearer than masked values
    for name in ("input", "status", "error", "science", "reference", "diff_file"):
        if name not in out.colnames:
            continue
        col = out[name]
        if hasattr(col, "filled"):
            out[name] = col.filled("")
    tail = [c for c in ("error", "_index") if c in out.colnames]
    return out[[c for c in out.colnames if c not in tail] + tail]


def _portable_times(piece):
    """Time columns in formats that other packages register (lightkurve's ``btjd``)
    become ``jd``, so that the output can be read without importing those packages."""
    from astropy.time import Time

    for name in piece.colnames:
        col = piece[name]
        if isinstance(col, Time) and \
                not type(col._time).__module__.startswith("astropy."):
            piece = piece.copy(copy_data=False)
            piece[name] = Time(col, format="jd")
    return piece


def _align_time_formats(piece, pieces):
    """Time columns get the format of the first piece that has them (for vstack)."""
    from astropy.time import Time

    for name in piece.colnames:
        col = piece[name]
        if not isinstance(col, Time):
            continue
        for other in pieces:
            if name in other.colnames and isinstance(other[name], Time):
                if other[name].format != col.format or other[name].scale != col.scale:
                    piece = piece.copy(copy_data=False)
                    piece[name] = getattr(col, other[name].scale)
                    piece[name].format = other[name].format
                break
    return piece


# -- writing ----------------------------------------------------------------------------------

def _table_format(path):
    from astropy.io import registry
    from astropy.table import QTable

    formats = registry.identify_format("write", QTable, os.fspath(path), None, [], {})
    if len(formats) != 1:
        raise InputError(f"cannot tell the table format of {os.fspath(path)!r} from its "
                         "name: use .ecsv (recommended), .fits, .csv or .hdf5")
    return formats[0]


def write_table_atomic(table, path, *, format=None):
    """Write ``table`` to ``path`` atomically.

    The table is written to a temporary file in the same directory, flushed to disk and
    moved over ``path`` with :func:`os.replace`: readers see the old file or the new
    one, never a partial one. If writing fails (or is interrupted), the temporary file
    is removed and ``path`` is untouched.
    """
    path = Path(path)
    fmt = format or _table_format(path)
    kwargs = {"serialize_meta": True} if fmt in ("hdf5", "parquet") else {}
    if fmt == "hdf5":
        kwargs["path"] = "data"
    return _write_atomic(path, lambda tmp: table.write(tmp, format=fmt, overwrite=True,
                                                       **kwargs))


def write_ccd_atomic(ccd, path):
    """Write a `~astropy.nddata.CCDData` to a FITS file atomically (as
    `write_table_atomic`), its mask and uncertainty in ``MASK`` and ``UNCERT``
    extensions, which `~astropy.nddata.CCDData.read` reads back."""
    import warnings

    def write(tmp):
        with warnings.catch_warnings():  # e.g. long meta keys written as HIERARCH cards
            warnings.simplefilter("ignore")
            ccd.write(tmp, format="fits", overwrite=True, hdu_mask="MASK",
                      hdu_uncertainty="UNCERT")

    return _write_atomic(Path(path), write)


def _write_atomic(path, write):
    """``write(tmp)`` to a temporary file next to ``path``, then move it over ``path``."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _read_previous(path, fmt, task, options):
    from astropy.table import QTable

    kwargs = {"path": "data"} if fmt == "hdf5" else {}
    try:
        table = QTable.read(path, format=fmt, **kwargs)
    except Exception as exc:
        raise InputError(f"cannot resume from {path}: it could not be read "
                         f"({_one_line(exc)})") from None
    if "input" not in table.colnames or "status" not in table.colnames:
        raise InputError(f"cannot resume from {path}: it has no 'input' and 'status' "
                         "columns (it was not written by a batch run)")
    batch = table.meta.get("batch", {})
    if batch.get("task") not in (None, task.name):
        raise InputError(f"cannot resume from {path}: it holds a {batch['task']!r} run, "
                         f"not {task.name!r}")
    before = batch.get("options")
    if before is not None and before != _plain_value(options):
        raise InputError(f"cannot resume from {path}: it was made with options {before}, "
                         f"this run uses {_plain_value(options)}; use the same options "
                         "or another output file")
    return table


# -- the run ------------------------------------------------------------------------------

class _ClientContext:
    """The Dask client to use: the caller's, one connected to an address, one on a
    LocalCluster started here, or None (run in this process)."""

    def __init__(self, client, n_workers):
        self.client, self.n_workers = client, n_workers
        self._owned = []

    def __enter__(self):
        client, n_workers = self.client, self.n_workers
        if client is None and not n_workers:
            return None
        from distributed import Client, LocalCluster

        if client is None:
            n = int(n_workers)
            if n < 1:
                raise InputError(f"n_workers must be >= 1, not {n_workers!r}")
            env = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                   "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=env)
            self._owned.append(cluster)
            client = Client(cluster)
            self._owned.insert(0, client)
        elif isinstance(client, str):
            try:
                client = Client(client, timeout="30s")
            except OSError as exc:
                raise InputError(f"cannot connect to the Dask scheduler at {self.client}: "
                                 f"{exc}") from None
            self._owned.append(client)
        elif not hasattr(client, "submit"):
            raise InputError("client must be a dask.distributed.Client, a scheduler "
                             f"address or None, not {type(client).__name__}")
        return client

    def __exit__(self, *exc):
        import logging

        # TensorFlow's threads make worker processes slow to exit; the nanny then
        # kills them, which is expected here and not worth a warning
        nanny = logging.getLogger("distributed.nanny")
        level = nanny.level
        nanny.setLevel(logging.ERROR)
        try:
            for obj in self._owned:
                try:
                    obj.close()
                except Exception:  # pragma: no cover - shutting down
                    pass
        finally:
            nanny.setLevel(level)
        return False


def _n_workers(client):
    try:
        return max(1, len(client.scheduler_info()["workers"]))
    except Exception:  # pragma: no cover
        return 1


def _chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_batch(task, inputs, *, client=None, n_workers=None, output=None, resume=False,
              overwrite=False, progress=False, chunk_size=None, checkpoint=60.0,
              **options):
    """Run model ``task`` (``'flares'``, ``'spectra'`` or ``'diff'``) on many inputs.

    See `find_flares_batch` for the parameters. ``options`` are passed to the model
    function (`~astroml_affiliated.flares.find_flares`,
    `~astroml_affiliated.spectra.estimate_parameters`, or, for ``'diff'``, see
    `difference_batch`).

    Returns
    -------
    `~astropy.table.QTable`
        The combined table; ``meta['batch']`` holds the task, options and counts.
    """
    if task not in TASKS:
        raise InputError(f"unknown batch task {task!r}; known: {', '.join(TASKS)}")
    task = TASKS[task]
    unknown = set(options) - set(task.options)
    if unknown:
        raise InputError(f"{task.name}: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"accepted: {', '.join(task.options)}")
    if client is not None and n_workers:
        raise InputError("give either client or n_workers, not both")
    if chunk_size is not None and not int(chunk_size) >= 1:
        raise InputError(f"chunk_size must be at least 1, not {chunk_size!r}")
    # a device or model that does not exist is about the run, not about each input
    from .device import _parse

    _parse(options.get("device"))
    if isinstance(options.get("model"), str):
        from .weights import get_entry

        get_entry(options["model"])
    items = expand_pairs(inputs) if task.pairs else expand_inputs(inputs)
    if task.pairs:
        _check_diff_options(items, options)
    photometry = None
    if options.get("photometry") is not None:
        photometry = read_photometry(options["photometry"], items)
        # recorded in meta['batch'] (and so compared by a resume): the file, not the data
        options["photometry"] = (os.fspath(options["photometry"])
                                 if _is_pathlike(options["photometry"]) else "<Table>")
    else:
        options.pop("photometry", None)

    def chunk_options(chunk):
        """The options of a chunk of ``[(index, item), ...]``: with its inputs'
        photometry only, not that of the whole run."""
        if photometry is None:
            return options
        return {**options, "photometry": {i: photometry[i] for i, _ in chunk}}
    fmt = None
    previous = None
    if output is not None:
        output = Path(output)
        fmt = _table_format(output)
        if not output.parent.is_dir():
            raise InputError(f"the output directory {output.parent} does not exist")
        if output.exists():
            if resume:
                if fmt not in _RESUMABLE_FORMATS:
                    raise InputError(
                        f"cannot resume from {output}: {fmt} files do not keep the column "
                        "types and metadata a resumed run needs; use .ecsv (or .hdf5)")
                previous = _read_previous(output, fmt, task, options)
            elif not overwrite:
                raise InputError(f"{output} exists: resume the run (--resume / "
                                 "resume=True) or replace it (--overwrite / "
                                 "overwrite=True)")
    elif resume:
        raise InputError("resume needs an output file")

    # inputs already done in a previous run (ok or empty) are skipped
    kept, done = [], set()
    if previous is not None:
        keys = _row_keys(previous, task)
        status = np.asarray(previous["status"], dtype=str)
        keep = np.array([k is not None and s != STATUS_ERROR
                         for k, s in zip(keys, status)], dtype=bool)
        if task.pairs and "diff_file" in previous.colnames:
            # a pair whose difference image has gone is done again
            gone = {k for k, f in zip(keys, np.asarray(previous["diff_file"], dtype=str))
                    if f and not os.path.exists(f)}
            keep &= np.array([k not in gone for k in keys], dtype=bool)
        done = {k for k, ok in zip(keys, keep) if ok}
        if keep.any():
            kept = [previous[keep]]
    keys = [_item_key(item) for item in items]
    todo = [(i, item) for i, (item, key) in enumerate(zip(items, keys))
            if key is None or key not in done]
    labels = {i: _label(item, i) for i, item in enumerate(items)}
    order = {key: i for i, key in enumerate(keys) if key is not None}

    statuses, blocks, metas = {}, [], []
    state = {"last_write": time.monotonic()}
    started = time.perf_counter()
    if kept:
        old = kept[0]
        old["_index"] = np.array([order.get(k, -1) for k in _row_keys(old, task)],
                                 dtype=np.int64)
        metas.append({k: v for k, v in previous.meta.items() if k != "batch"})

    def assemble(complete):
        out = _stack(kept + blocks)
        if len(out):  # rows in the order of this run's inputs
            out = out[np.argsort(np.asarray(out["_index"]), kind="stable")]
        if "_index" in out.colnames:
            out.remove_column("_index")
        meta = _common_meta(metas) if metas else {}
        status_of = {}
        for p, st in zip(np.asarray(out["input"], dtype=str),
                         np.asarray(out["status"], dtype=str)):
            status_of.setdefault(p, st)
        counts = {st: sum(1 for v in status_of.values() if v == st)
                  for st in (STATUS_OK, STATUS_EMPTY, STATUS_ERROR)}
        meta["batch"] = {
            "task": task.name, "options": _plain_value(options),
            "n_inputs": len(items), "n_ok": counts[STATUS_OK],
            "n_empty": counts[STATUS_EMPTY], "n_error": counts[STATUS_ERROR],
            "n_skipped": len(items) - len(todo), "complete": bool(complete),
            "seconds": round(time.perf_counter() - started, 3),
            "workers": n_used, "astroml_affiliated": _version()}
        out.meta = meta
        return out

    def save(complete):
        if output is not None and (statuses or complete):
            write_table_atomic(assemble(complete), output, format=fmt)
            state["last_write"] = time.monotonic()

    def collect(chunk_result):
        parts, chunk_statuses, meta = chunk_result
        statuses.update(chunk_statuses)
        blocks.extend(parts)
        if meta is not None:
            metas.append(meta)
        if len(blocks) >= 64:  # keep the number of tables to stack small
            blocks[:] = [_stack(blocks)]
        if output is not None and checkpoint is not None and \
                time.monotonic() - state["last_write"] >= checkpoint:
            save(False)

    bar = _progress_bar(progress, len(items), task, initial=len(items) - len(todo))
    n_used = 0
    try:
        with _ClientContext(client, n_workers) as dask_client:
            if dask_client is None:
                for index, item in todo:
                    collect(_run_chunk(task.name, [(index, item)], [labels[index]],
                                       chunk_options([(index, item)])))
                    bar.update(1)
            else:
                n_used = _n_workers(dask_client)
                size = chunk_size or max(1, min(16, math.ceil(len(todo) / (4 * n_used))))
                _run_on_dask(dask_client, task, todo, labels, chunk_options, int(size),
                             collect, bar)
    except BaseException as exc:
        bar.close()
        save(False)
        if isinstance(exc, KeyboardInterrupt):
            raise BatchInterrupted(
                f"interrupted after {len(statuses)} of {len(todo)} inputs"
                + (f"; the results so far are in {output}: run again with resume to "
                   "finish" if output is not None and statuses else "")) from None
        raise
    bar.close()
    table = assemble(True)
    if output is not None:
        write_table_atomic(table, output, format=fmt)
    return table


def _run_on_dask(client, task, todo, labels, chunk_options, size, collect, bar):
    from distributed import as_completed

    futures = {}
    for chunk in _chunks(todo, size):
        fut = client.submit(_run_chunk, task.name, chunk, [labels[i] for i, _ in chunk],
                            chunk_options(chunk), pure=False)
        futures[fut] = chunk
    try:
        for fut in as_completed(list(futures)):
            chunk = futures.pop(fut)
            try:
                result = fut.result()
            except _FATAL:
                raise
            except Exception as exc:  # the worker died (KilledWorker) or the task failed
                msg = _one_line(exc)
                result = _stack([_status_table(labels[index], STATUS_ERROR,
                                               f"worker failure: {msg}",
                                               extra=_item_columns(task, item, index))
                                 for index, item in chunk])
                result["_index"] = np.array([index for index, _ in chunk], dtype=np.int64)
                result = ([result], {index: STATUS_ERROR for index, _ in chunk}, None)
            collect(result)
            bar.update(len(chunk))
    finally:
        for fut in futures:
            fut.cancel()


def _check_diff_options(pairs, options):
    """Check the unit; create the directory of the difference images; refuse pairs
    whose difference images would have the same file name."""
    _parse_unit(options.get("unit"))
    outdir = options.get("outdir")
    if outdir is None:
        return
    outdir = os.fspath(outdir)
    options["outdir"] = outdir
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise InputError(f"outdir {outdir} exists and is not a directory")
    names = {}
    for pair in pairs:
        name = _diff_name(pair)
        if name is not None:
            if name in names and names[name] != pair:
                raise InputError(
                    f"the pairs {names[name][0]} - {names[name][1]} and {pair[0]} - "
                    f"{pair[1]} would both write {name} in {outdir}: rename a file or "
                    "split the run")
            names[name] = pair
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create outdir {outdir}: {exc.strerror}") from None


def _progress_bar(progress, total, task, initial=0):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit=task.kind.split()[-1],
                desc=task.name, disable=not progress or None, leave=False,
                dynamic_ncols=True)


def _version():
    from . import __version__

    return __version__


def find_flares_batch(inputs, *, client=None, n_workers=None, output=None, resume=False,
                      overwrite=False, progress=False, chunk_size=None, checkpoint=60.0,
                      **options):
    """Find flares in many light curves: one table, every input accounted for.

    Parameters
    ----------
    inputs : str, path, `lightkurve.LightCurve` or iterable of them
        Light curve files (anything `lightkurve.read` reads, or ECSV/CSV light curves),
        glob patterns, ``'@list.txt'`` files of paths (see `expand_inputs`), or
        light curve objects (processed where the work runs; paths are cheaper to send
        to a cluster than objects).
    client : `dask.distributed.Client`, str or None, optional
        A client, or a scheduler address (``'tcp://host:8786'``) to connect to; None
        runs in this process unless ``n_workers`` is given.
    n_workers : int, optional
        Start a `~dask.distributed.LocalCluster` of this many worker processes, one
        thread each, for this run.
    output : str or path, optional
        Write the table here (format from the extension; ``.ecsv`` is recommended),
        atomically, at the end and every ``checkpoint`` seconds.
    resume : bool, optional
        Continue a run: keep the ``ok``/``empty`` rows of an existing ``output`` and
        process only the other inputs. The model options must be the same.
    overwrite : bool, optional
        Replace an existing ``output`` (otherwise an existing file is an error unless
        ``resume``).
    progress : bool, optional
        Show a tqdm progress bar (on a terminal).
    chunk_size : int, optional
        Inputs per Dask task (default: about a quarter of an even share per worker, at
        most 16).
    checkpoint : float or None, optional
        Seconds between intermediate writes of ``output`` (None: only at the end).
    **options
        Passed to `~astroml_affiliated.flares.find_flares`: ``threshold``, ``model``,
        ``device``, ``quality_bitmask``.

    Returns
    -------
    `~astropy.table.QTable`
        The columns of `~astroml_affiliated.flares.FlareTable` plus ``input``,
        ``status`` (``'ok'``: one row per flare; ``'empty'``: one row for a light curve
        without flares; ``'error'``: one row with the message in ``error``),
        ``target`` (TIC id or ``OBJECT``) and ``sector``. Rows follow the order of the
        inputs. ``meta`` holds the model's ``meta`` items common to every light curve
        and ``meta['batch']`` (task, options, counts, whether the run is complete).

    Raises
    ------
    InputError
        Bad arguments, patterns that match nothing, an output that exists (without
        ``resume`` or ``overwrite``), or one that cannot be resumed.
    BatchInterrupted
        The run was interrupted (Ctrl-C); what was done is in ``output``.
    WeightsError, DeviceError
        The model's weights or the device are not available: these stop the run.
    """
    return run_batch("flares", inputs, client=client, n_workers=n_workers, output=output,
                     resume=resume, overwrite=overwrite, progress=progress,
                     chunk_size=chunk_size, checkpoint=checkpoint, **options)


def estimate_parameters_batch(inputs, *, client=None, n_workers=None, output=None,
                              resume=False, overwrite=False, progress=False,
                              chunk_size=None, checkpoint=60.0, **options):
    """Stellar labels of many spectra: one table, every input accounted for.

    Parameters are as for `find_flares_batch`; ``inputs`` are spectrum files (anything
    specutils reads; FITS tables it cannot identify are read as ``tabular-fits``) or
    spectrum objects, and ``options`` go to
    `~astroml_affiliated.spectra.estimate_parameters` (``model``, ``device``,
    ``min_good_fraction``, ``batch_size``). The spectra of a chunk are predicted in one
    call; a chunk with a bad spectrum falls back to one call per input.

    ``photometry=`` a table (or the path of one) with a ``file`` column and the
    magnitudes of each input file's star, matched by file name (see
    `read_photometry`), runs the photometry model (``'gaiaxp-labels-phot'``) instead;
    every input must then be a file with one spectrum and a row in the table.

    Returns
    -------
    `~astropy.table.QTable`
        The columns of `~astroml_affiliated.spectra.estimate_parameters` plus ``input``,
        ``status``, ``error`` and ``spectrum_index`` (the row of the spectrum within its
        file, for files holding several).
    """
    return run_batch("spectra", inputs, client=client, n_workers=n_workers, output=output,
                     resume=resume, overwrite=overwrite, progress=progress,
                     chunk_size=chunk_size, checkpoint=checkpoint, **options)


def difference_batch(pairs, *, client=None, n_workers=None, output=None, resume=False,
                     overwrite=False, progress=False, chunk_size=None, checkpoint=60.0,
                     outdir=None, threshold=5, **options):
    """Difference many image pairs and find their transients: one table, every pair
    accounted for.

    Each pair is read with `~astropy.nddata.CCDData.read` (see `read_image`),
    differenced with `~astroml_affiliated.imagediff.difference`, its difference image
    written to ``outdir`` (atomically) and its transients found with
    `~astroml_affiliated.imagediff.find_transients`.

    Parameters
    ----------
    pairs : str, path or iterable of (science, reference)
        A text file with two paths per line (science first), or a list of pairs of
        paths or `~astropy.nddata.CCDData` objects (see `expand_pairs`).
    outdir : str or path, optional
        Directory for the difference images (created if needed), one FITS file per pair
        named ``<science>-minus-<reference>.fits`` after the two files (with ``MASK``
        and ``UNCERT`` extensions); its path is in the ``diff_file`` column. None: no
        image is written (in-memory pairs never write one).
    threshold : float, optional
        Detection threshold of `~astroml_affiliated.imagediff.find_transients` (S/N,
        default 5).
    client, n_workers, output, resume, overwrite, progress, chunk_size, checkpoint
        As for `find_flares_batch`. ``resume`` skips the pairs (science and reference
        paths) already in ``output``, unless their difference image has been deleted.
    **options
        ``unit`` (the unit of images whose header has no ``BUNIT``), and for
        `~astroml_affiliated.imagediff.difference`: ``model``, ``device``, ``align``,
        ``saturation``, ``gain``.

    Returns
    -------
    `~astropy.table.QTable`
        ``input`` (``'science - reference'``), ``status`` (``'ok'``: one row per
        transient; ``'empty'``: one row for a pair without transients; ``'error'``: one
        row with the message in ``error``), ``science``, ``reference``, ``diff_file``,
        then the columns of `~astroml_affiliated.imagediff.find_transients` (its
        ``sky`` column as ``ra`` and ``dec`` in degrees, ICRS). Rows follow the order
        of the pairs; ``meta['batch']`` as for `find_flares_batch`.

    Raises
    ------
    InputError
        Bad arguments, a file of pairs that cannot be read or has a line without two
        paths, two pairs whose difference images would have the same name, an output
        that exists (without ``resume`` or ``overwrite``).
    BatchInterrupted
        The run was interrupted (Ctrl-C); what was done is in ``output``.

    Examples
    --------
    >>> from astroml_affiliated.batch import difference_batch
    >>> from astroml_affiliated.imagediff.demo import synthetic_pair
    >>> science, reference, _ = synthetic_pair(shape=(128, 128), n_stars=40, seed=20)
    >>> table = difference_batch([(science, reference)], device="cpu")
    >>> [str(s) for s in table["status"]], bool(abs(table["x"][0] - 63.5) < 1.5)
    (['ok'], True)
    """
    if outdir is not None:
        options["outdir"] = outdir
    return run_batch("diff", pairs, client=client, n_workers=n_workers, output=output,
                     resume=resume, overwrite=overwrite, progress=progress,
                     chunk_size=chunk_size, checkpoint=checkpoint, threshold=threshold,
                     **options)
