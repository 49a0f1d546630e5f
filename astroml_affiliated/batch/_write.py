"""Writing results atomically (tables and difference images), and reading back the
output of an earlier run to resume it."""

import os
from pathlib import Path

from .._io import _one_line
from ..errors import InputError
from ._table import _plain_value

#: Output formats that keep units, times and metadata: runs written in them can resume.
_RESUMABLE_FORMATS = ("ascii.ecsv", "hdf5")


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
