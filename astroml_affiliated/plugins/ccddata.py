"""Adaptor for `astropy.nddata.CCDData`.

Image differencing (issue 4) registers its methods here; ``CCDData.subtract`` exists
already and is never shadowed.
"""

#: Packages whose import attaches the methods below.
HOST_MODULES = ("astropy.nddata",)

#: (host module, class name, method name, "module:function")
ADAPTORS = [
    ("astropy.nddata", "CCDData", "difference",
     "astroml_affiliated.imagediff:difference"),
    ("astropy.nddata", "CCDData", "find_transients",
     "astroml_affiliated.imagediff:find_transients"),
    ("astropy.nddata", "CCDData", "plot_difference",
     "astroml_affiliated.imagediff:plot_difference"),
]
