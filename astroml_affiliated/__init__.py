"""astroml_affiliated: trained machine-learning models as methods on astropy objects.

Importing the package attaches methods to host classes (``LightCurve.find_flares()``,
...) and imports neither TensorFlow nor Keras, nor any host package: those load on first
use.
"""

import importlib

__version__ = "0.1.0"

from .config import conf  # noqa: E402
from .errors import (AstroMLError, AstroMLWarning, DeviceError, InputError,  # noqa: E402
                     WeightsDownloadError, WeightsError, WeightsHashError,
                     WeightsNotFoundError)
from .plugins import attach_adaptors, detach_adaptors  # noqa: E402

#: Public functions, imported from their capability's sub-package on first access.
_LAZY = {
    "find_flares": "astroml_affiliated.flares",
    "find_flares_collection": "astroml_affiliated.flares",
    "flare_probability": "astroml_affiliated.flares",
    "injection_recovery": "astroml_affiliated.flares",
    "difference": "astroml_affiliated.imagediff",
    "find_transients": "astroml_affiliated.imagediff",
    "plot_difference": "astroml_affiliated.imagediff",
    "estimate_parameters": "astroml_affiliated.spectra",
    "estimate_parameters_xp": "astroml_affiliated.spectra",
    "find_flares_batch": "astroml_affiliated.batch",
    "estimate_parameters_batch": "astroml_affiliated.batch",
}

__all__ = ["__version__", "conf", "AstroMLError", "AstroMLWarning", "DeviceError",
           "InputError", "WeightsError", "WeightsDownloadError", "WeightsHashError",
           "WeightsNotFoundError", "attach_adaptors", "detach_adaptors", *_LAZY]


def _lazy_attribute(namespace, table, name):
    """Attribute ``name`` of a module whose ``table`` maps it to the module that holds
    it: imported on first access and kept in the module's ``namespace``."""
    if name in table:
        value = getattr(importlib.import_module(table[name]), name)
        namespace[name] = value
        return value
    raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")


def __getattr__(name):
    return _lazy_attribute(globals(), _LAZY, name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


attach_adaptors()
