"""Image files: a FITS image as `~astropy.nddata.CCDData`, with its unit."""

import os

from ..errors import InputError

__all__ = ["read_image"]


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
