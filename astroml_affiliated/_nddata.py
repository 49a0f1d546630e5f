"""Helpers for astropy's NDData uncertainties, shared by the image and spectrum code."""

import numpy as np

from .errors import InputError

__all__ = ["uncertainty_variance"]


def uncertainty_variance(unc, shape, what, data_name="data", data_unit=None):
    """The variance held by an NDData uncertainty, as a float array (a new array).

    ``unc`` is a `~astropy.nddata.StdDevUncertainty`, `~astropy.nddata.VarianceUncertainty`
    or `~astropy.nddata.InverseVariance` (or None, which gives None) whose array must have
    ``shape``; negative standard deviations or variances and non-positive inverse variances
    give NaN (an unknown variance, never a valid one). ``what`` and ``data_name`` name the
    object and its data in error messages. With ``data_unit``, an uncertainty that has a
    unit is converted so that the variance is in ``data_unit`` squared (astropy only checks
    that the units are compatible and keeps the numbers: e.g. a flux in mJy with a variance
    in Jy2); without it, or when the uncertainty has no unit, the numbers are taken as
    they are.
    """
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty

    if unc is None:
        return None
    arr = np.asarray(unc.array, dtype=float)
    if arr.shape != tuple(shape):
        raise InputError(f"the {what}'s uncertainty has shape {arr.shape}, its "
                         f"{data_name} {tuple(shape)}: they must match")
    if isinstance(unc, StdDevUncertainty):
        var = np.where(arr >= 0, arr ** 2, np.nan)
    elif isinstance(unc, VarianceUncertainty):
        var = np.where(arr >= 0, arr, np.nan)
    elif isinstance(unc, InverseVariance):
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(arr > 0, 1.0 / arr, np.nan)
    else:
        raise InputError(f"the {what}'s uncertainty is a {type(unc).__name__}; expected "
                         "StdDevUncertainty, VarianceUncertainty or InverseVariance")
    factor = _variance_factor(unc, data_unit, what, data_name)
    return var if factor is None else var * factor


def _variance_factor(unc, data_unit, what, data_name):
    """Factor taking the uncertainty's variance to ``data_unit`` squared, or None when
    no conversion is needed (no units, or the same unit)."""
    import astropy.units as u
    from astropy.nddata import InverseVariance, VarianceUncertainty

    if data_unit is None or getattr(unc, "unit", None) is None:
        return None
    # the unit of the standard deviation: a variance's unit is that squared, an inverse
    # variance's its inverse square
    power = (0.5 if isinstance(unc, VarianceUncertainty) else
             -0.5 if isinstance(unc, InverseVariance) else 1)
    std_unit = u.Unit(unc.unit) ** power
    data_unit = u.Unit(data_unit)
    if std_unit == data_unit:
        return None
    try:
        return std_unit.to(data_unit) ** 2
    except u.UnitConversionError:
        raise InputError(f"the {what}'s uncertainty is in {unc.unit}, which cannot be "
                         f"converted to its {data_name}'s unit {data_unit}") from None
