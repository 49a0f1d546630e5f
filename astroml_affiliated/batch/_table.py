"""Assembling the table of a batch run: one piece per input (result, ``empty`` or
``error`` rows), stacked with compatible time columns and the model meta they share."""

import numpy as np


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
