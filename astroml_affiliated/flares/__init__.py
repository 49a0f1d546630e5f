"""Stellar flares in light curves: a fully convolutional CNN ensemble.

``find_flares(lc)`` returns a `FlareTable` of flares; ``flare_probability(lc)`` a copy of
the light curve with the per-cadence probability; ``injection_recovery(lc)`` the
completeness of the finder on that light curve. Importing this package does not import
TensorFlow: the network is built on first use.
"""

from ._collection import find_flares_collection
from ._high_level import SUPPORTED_CADENCE_S, FlareTable, find_flares, flare_probability
from .inject import amplitude_at_recovery, injection_recovery, recovery_probability

__all__ = ["find_flares", "flare_probability", "find_flares_collection", "FlareTable",
           "injection_recovery", "recovery_probability", "amplitude_at_recovery",
           "SUPPORTED_CADENCE_S"]
