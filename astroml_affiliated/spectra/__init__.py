"""Stellar labels (Teff, log g, [Fe/H], [alpha/M]) from spectra.

``estimate_parameters(spectrum)`` is the public function (also a method of specutils
spectra); ``estimate_parameters_xp(table)`` takes Gaia archive XP tables (:mod:`.gaia`);
:mod:`.core` holds the numpy work and :mod:`.models` the Keras architectures.
Importing this package does not import TensorFlow.
"""

from ._high_level import DEFAULT_MODEL, PHOTOMETRY_MODEL, estimate_parameters
from .gaia import estimate_parameters_xp, read_gaia_xp
from .plot import plot_parameters

__all__ = ["estimate_parameters", "estimate_parameters_xp", "read_gaia_xp",
           "plot_parameters", "DEFAULT_MODEL", "PHOTOMETRY_MODEL"]
