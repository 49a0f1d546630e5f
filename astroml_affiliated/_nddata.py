"""Helpers for astropy's NDData uncertainties, shared by the image and spectrum code."""

import numpy as np

from .errors import InputError

__all__ = ["uncertainty_variance"]


def uncertainty_variance(unc, shape, what, data_name="data"):
    """The variance held by an NDData uncertainty, as a float array (a new array).

    ``unc`` is a `~astropy.nddata.StdDevUncertainty`, `~astropy.nddata.VarianceUncertainty`
    or `~astropy.nddata.InverseVariance` (or None, which gives None) whose array must have
    ``shape``; negative standard deviations or variances and non-positive inverse variances
    give NaN (an unknown variance, never a valid one). ``what`` and ``data_name`` name the
    object and its data in error messages. Units are left to the caller.
    """
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty

    if unc is None:
        return None
    arr = np.asarray(unc.array, dtype=float)
    if arr.shape != tuple(shape):
        raise InputError(f"the {what}'s uncertainty has shape {arr.shape}, its "
                         f"{data_name} {tuple(shape)}: they must match")
    if isinstance(unc, StdDevUncertainty):
        return np.where(arr >= 0, arr ** 2, np.nan)
    if isinstance(unc, VarianceUncertainty):
        return np.where(arr >= 0, arr, np.nan)
    if isinstance(unc, InverseVariance):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(arr > 0, 1.0 / arr, np.nan)
    raise InputError(f"the {what}'s uncertainty is a {type(unc).__name__}; expected "
                     "StdDevUncertainty, VarianceUncertainty or InverseVariance")
