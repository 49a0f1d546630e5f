"""What runs on a worker (or in this process): read a chunk of inputs, run the model on
them, and return their rows; an error about one input becomes that input's error row."""

import os

import numpy as np

from .._io import _is_pathlike, _one_line
from ..errors import InputError
from ._inputs import _item_columns
from ._table import _common_meta, _stack, _status_table
from ._tasks import _FATAL, STATUS_EMPTY, STATUS_ERROR, STATUS_OK, TASKS, _import


def _plain(table):
    """A plain QTable (drops subclass state such as a reference to the input)."""
    from astropy.table import QTable

    out = QTable(table, copy=False)
    out.meta = dict(table.meta)
    return out


def _input_columns(task, obj):
    """Per-input values that the model table does not carry (also on 'empty' rows)."""
    if task.name == "flares":
        from ..flares._high_level import target_and_sector

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
