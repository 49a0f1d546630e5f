"""The run: check its options, open (or resume) its output, run the chunks in this
process or on Dask, and collect their rows into one table, written at checkpoints."""

import math
import os
import time
from pathlib import Path

import numpy as np

from .._io import _is_pathlike
from ..errors import InputError
from ._dask import _ClientContext, _n_workers, _run_on_dask
from ._diff import _check_diff_options
from ._inputs import _item_key, _label, _row_keys, expand_inputs, expand_pairs
from ._table import _common_meta, _plain_value, _stack
from ._tasks import STATUS_EMPTY, STATUS_ERROR, STATUS_OK, TASKS, BatchInterrupted
from ._worker import _run_chunk
from ._write import _RESUMABLE_FORMATS, _read_previous, _table_format, write_table_atomic


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
    task = _check_run(task, options, client, n_workers, chunk_size)
    items = expand_pairs(inputs) if task.pairs else expand_inputs(inputs)
    if task.pairs:
        _check_diff_options(items, options)
    photometry = _run_photometry(options, items)
    output, fmt, previous = _open_output(output, resume, overwrite, task, options)
    run = _Run(task, items, options, photometry, output, fmt, checkpoint, previous)
    return run.execute(client, n_workers, chunk_size, progress)


def _check_run(task, options, client, n_workers, chunk_size):
    """The `_Task` named ``task``, once the run's arguments are checked."""
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
    from ..device import _parse

    _parse(options.get("device"))
    if isinstance(options.get("model"), str):
        from ..weights import get_entry

        get_entry(options["model"])
    return task


def _run_photometry(options, items):
    """The magnitudes of each input (or None); ``options['photometry']`` becomes what
    the run records of it."""
    photometry = None
    if options.get("photometry") is not None:
        from ..spectra.io import read_photometry

        photometry = read_photometry(options["photometry"], items)
        # recorded in meta['batch'] (and so compared by a resume): the file, not the data
        options["photometry"] = (os.fspath(options["photometry"])
                                 if _is_pathlike(options["photometry"]) else "<Table>")
    else:
        options.pop("photometry", None)
    return photometry


def _open_output(output, resume, overwrite, task, options):
    """``(output, format, previous table or None)``, refusing an output that exists
    unless the run resumes or overwrites it."""
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
    return output, fmt, previous


def _kept_rows(previous, task):
    """The rows of a previous run that are kept (``[table]`` or ``[]``) and the keys of
    their inputs, which are skipped: inputs done before (ok or empty)."""
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
    return kept, done


class _Run:
    """One run: the inputs still to do, the rows collected so far (kept from a previous
    run, then those of each chunk) and the output, written at checkpoints."""

    def __init__(self, task, items, options, photometry, output, fmt, checkpoint,
                 previous):
        self.task, self.items, self.options = task, items, options
        self.photometry = photometry
        self.output, self.fmt, self.checkpoint = output, fmt, checkpoint
        kept, done = _kept_rows(previous, task)
        keys = [_item_key(item) for item in items]
        self.todo = [(i, item) for i, (item, key) in enumerate(zip(items, keys))
                     if key is None or key not in done]
        self.labels = {i: _label(item, i) for i, item in enumerate(items)}
        order = {key: i for i, key in enumerate(keys) if key is not None}

        self.statuses, self.blocks, self.metas = {}, [], []
        self.last_write = time.monotonic()
        self.started = time.perf_counter()
        if kept:
            old = kept[0]
            old["_index"] = np.array([order.get(k, -1) for k in _row_keys(old, task)],
                                     dtype=np.int64)
            self.metas.append({k: v for k, v in previous.meta.items() if k != "batch"})
        self.kept = kept
        self.n_used = 0

    def chunk_options(self, chunk):
        """The options of a chunk of ``[(index, item), ...]``: with its inputs'
        photometry only, not that of the whole run."""
        if self.photometry is None:
            return self.options
        return {**self.options, "photometry": {i: self.photometry[i] for i, _ in chunk}}

    def assemble(self, complete):
        out = _stack(self.kept + self.blocks)
        if len(out):  # rows in the order of this run's inputs
            out = out[np.argsort(np.asarray(out["_index"]), kind="stable")]
        if "_index" in out.colnames:
            out.remove_column("_index")
        meta = _common_meta(self.metas) if self.metas else {}
        status_of = {}
        for p, st in zip(np.asarray(out["input"], dtype=str),
                         np.asarray(out["status"], dtype=str)):
            status_of.setdefault(p, st)
        counts = {st: sum(1 for v in status_of.values() if v == st)
                  for st in (STATUS_OK, STATUS_EMPTY, STATUS_ERROR)}
        meta["batch"] = {
            "task": self.task.name, "options": _plain_value(self.options),
            "n_inputs": len(self.items), "n_ok": counts[STATUS_OK],
            "n_empty": counts[STATUS_EMPTY], "n_error": counts[STATUS_ERROR],
            "n_skipped": len(self.items) - len(self.todo), "complete": bool(complete),
            "seconds": round(time.perf_counter() - self.started, 3),
            "workers": self.n_used, "astroml_affiliated": _version()}
        out.meta = meta
        return out

    def save(self, complete):
        if self.output is not None and (self.statuses or complete):
            write_table_atomic(self.assemble(complete), self.output, format=self.fmt)
            self.last_write = time.monotonic()

    def collect(self, chunk_result):
        parts, chunk_statuses, meta = chunk_result
        self.statuses.update(chunk_statuses)
        self.blocks.extend(parts)
        if meta is not None:
            self.metas.append(meta)
        if len(self.blocks) >= 64:  # keep the number of tables to stack small
            self.blocks[:] = [_stack(self.blocks)]
        if self.output is not None and self.checkpoint is not None and \
                time.monotonic() - self.last_write >= self.checkpoint:
            self.save(False)

    def execute(self, client, n_workers, chunk_size, progress):
        """Run the inputs to do, here or on Dask; the table of the whole run."""
        task, todo, labels = self.task, self.todo, self.labels
        bar = _progress_bar(progress, len(self.items), task,
                            initial=len(self.items) - len(todo))
        self.n_used = 0
        try:
            with _ClientContext(client, n_workers) as dask_client:
                if dask_client is None:
                    for index, item in todo:
                        self.collect(_run_chunk(task.name, [(index, item)], [labels[index]],
                                                self.chunk_options([(index, item)])))
                        bar.update(1)
                else:
                    self.n_used = _n_workers(dask_client)
                    size = chunk_size or max(1, min(16, math.ceil(len(todo)
                                                                  / (4 * self.n_used))))
                    _run_on_dask(dask_client, task, todo, labels, self.chunk_options,
                                 int(size), self.collect, bar)
        except BaseException as exc:
            bar.close()
            self.save(False)
            if isinstance(exc, KeyboardInterrupt):
                raise BatchInterrupted(
                    f"interrupted after {len(self.statuses)} of {len(todo)} inputs"
                    + (f"; the results so far are in {self.output}: run again with resume "
                       "to finish" if self.output is not None and self.statuses else "")) \
                    from None
            raise
        bar.close()
        table = self.assemble(True)
        if self.output is not None:
            write_table_atomic(table, self.output, format=self.fmt)
        return table


def _progress_bar(progress, total, task, initial=0):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit=task.kind.split()[-1],
                desc=task.name, disable=not progress or None, leave=False,
                dynamic_ncols=True)


def _version():
    from .. import __version__

    return __version__
