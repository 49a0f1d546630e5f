"""Dask plumbing: the client of a run (the caller's, one connected to an address, or a
`~dask.distributed.LocalCluster` started for it), and the chunks submitted to it."""

import numpy as np

from .._io import _one_line
from ..errors import InputError
from ._inputs import _item_columns
from ._table import _stack, _status_table
from ._tasks import _FATAL, STATUS_ERROR
from ._worker import _run_chunk


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
