"""Adaptor for specutils spectra: ``Spectrum`` on specutils 2.x (which ``Spectrum1D``
inherits), ``Spectrum1D`` on 1.x."""

#: Packages whose import attaches the methods below.
HOST_MODULES = ("specutils",)

#: (host module, class name, method name, "module:function")
ADAPTORS = [
    ("specutils", "Spectrum", "estimate_parameters",
     "astroml_affiliated.spectra:estimate_parameters"),
    ("specutils", "Spectrum1D", "estimate_parameters",
     "astroml_affiliated.spectra:estimate_parameters"),
]
