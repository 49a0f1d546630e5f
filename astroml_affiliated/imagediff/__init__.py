"""Image differencing of `~astropy.nddata.CCDData` with a slim TransiNet-style network.

``difference(science, reference)`` returns the calibrated difference image (science
minus reference, in the science's unit, on its grid); ``find_transients(diff)`` returns a
`~astropy.table.QTable` of brightening and fading sources; ``plot_difference`` shows them.
On ``CCDData`` the same are methods: ``science.difference(reference)``,
``diff.find_transients()``, ``diff.plot_difference()``.

Importing this package imports neither TensorFlow, Keras, reproject nor photutils.
"""

from ._high_level import (DEFAULT_MODEL, difference, find_transients, plot_difference,
                          snr_map, snr_scale)

__all__ = ["difference", "find_transients", "plot_difference", "snr_map", "snr_scale",
           "DEFAULT_MODEL"]
