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

The package is laid out by concern: ``_high_level`` (the public functions), ``_run``
(the run: options, output, resume, collecting rows), ``_dask`` (the cluster),
``_worker`` (what runs on a worker), ``_inputs`` (expanding paths, globs and lists),
``_table`` (assembling the table), ``_write`` (atomic writes, reading a run back),
``_tasks`` (what is known about each model) and ``_diff`` (the image-pair task). The
file readers live beside their capability (``flares.io``, ``spectra.io``,
``imagediff.io``) and are re-exported here, imported on first use (so that importing
this package does not import the capabilities); a run looks them up here by name (see
``TASKS``).
"""

from .. import _lazy_attribute
from ._diff import read_image_pair
from ._high_level import difference_batch, estimate_parameters_batch, find_flares_batch
from ._inputs import expand_inputs, expand_pairs
from ._run import run_batch
from ._tasks import STATUS_EMPTY, STATUS_ERROR, STATUS_OK, TASKS, BatchInterrupted
from ._write import write_ccd_atomic, write_table_atomic

# private names that the CLI, the tests and the benchmarks use from here
from ._dask import _ClientContext  # noqa: F401
from ._worker import _process_chunk  # noqa: F401
from ._write import _table_format  # noqa: F401

__all__ = ["find_flares_batch", "estimate_parameters_batch", "difference_batch",
           "run_batch", "expand_inputs", "expand_pairs",
           "read_lightcurve", "read_spectrum", "read_photometry", "read_image",
           "read_image_pair",
           "write_table_atomic", "write_ccd_atomic", "write_lightcurve_fits", "TASKS",
           "STATUS_OK", "STATUS_EMPTY", "STATUS_ERROR", "BatchInterrupted"]

#: The file readers, from their capability's package on first access.
_READERS = {
    "read_lightcurve": "astroml_affiliated.flares.io",
    "write_lightcurve_fits": "astroml_affiliated.flares.io",
    "read_spectrum": "astroml_affiliated.spectra.io",
    "read_photometry": "astroml_affiliated.spectra.io",
    "_spectrum_class": "astroml_affiliated.spectra.io",
    "read_image": "astroml_affiliated.imagediff.io",
}


def __getattr__(name):
    return _lazy_attribute(globals(), _READERS, name)


def __dir__():
    return sorted(set(globals()) | set(_READERS))
