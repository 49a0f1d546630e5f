"""Exceptions raised by astroml_affiliated.

Every error the package raises on purpose derives from :class:`AstroMLError`, so
``except AstroMLError`` catches them all. Errors about bad input are also
:class:`ValueError`, so code written for plain Python keeps working.
"""

from astropy.utils.exceptions import AstropyUserWarning

__all__ = [
    "AstroMLError",
    "InputError",
    "WeightsError",
    "WeightsNotFoundError",
    "WeightsDownloadError",
    "WeightsHashError",
    "DeviceError",
]


class AstroMLError(Exception):
    """Base class of every error raised by astroml_affiliated."""


class InputError(AstroMLError, ValueError):
    """The input is not what a function accepts (type, units, shape, content)."""


class WeightsError(AstroMLError):
    """A model's weights could not be found, downloaded, verified or loaded."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weights file is not available locally and downloading is switched off."""


class WeightsDownloadError(WeightsError):
    """Downloading a weights file failed (HTTP error, network error, truncated file)."""


class WeightsHashError(WeightsError):
    """A weights file does not match the sha256 recorded in the registry."""


class DeviceError(AstroMLError, RuntimeError):
    """The requested compute device does not exist or cannot be used."""


class AstroMLWarning(AstropyUserWarning):
    """Warnings issued by astroml_affiliated."""


__all__ += ["AstroMLWarning"]
