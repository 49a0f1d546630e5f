"""What a batch run knows about each model: how an input is read, which function runs
on it, which options it takes; the statuses of the rows and the errors that stop a run."""

from dataclasses import dataclass, field

from ..errors import AstroMLError, DeviceError, WeightsError

STATUS_OK = "ok"
STATUS_EMPTY = "empty"
STATUS_ERROR = "error"

#: Errors that are not about one input but about the whole run (the model, a package
#: or the device is missing): they stop the run instead of becoming error rows.
_FATAL = (WeightsError, DeviceError, ImportError, MemoryError)


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


#: The models that can run in batches: name -> task. The readers are looked up by name
#: in `astroml_affiliated.batch` when a chunk runs, so a reader replaced there (to count
#: or change reads) is the one a run uses.
TASKS = {
    "flares": _Task("flares", "astroml_affiliated.batch:read_lightcurve",
                    "astroml_affiliated.flares:find_flares", "light curve",
                    ("threshold", "model", "device", "quality_bitmask")),
    "spectra": _Task("spectra", "astroml_affiliated.batch:read_spectrum",
                     "astroml_affiliated.spectra.gaia:_estimate_parameters_batch",
                     "spectrum",
                     ("model", "device", "min_good_fraction", "batch_size",
                      "photometry"),
                     batched=True),
    "diff": _Task("diff", "astroml_affiliated.batch:read_image_pair",
                  "astroml_affiliated.batch._diff:_difference_pair", "image pair",
                  ("threshold", "model", "device", "align", "saturation", "gain", "unit",
                   "outdir"),
                  pairs=True, reader_options=("unit",)),
}
