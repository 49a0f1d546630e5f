"""Adaptor for `lightkurve.LightCurve` (and every subclass) and `LightCurveCollection`."""

#: Packages whose import attaches the methods below.
HOST_MODULES = ("lightkurve",)

#: (host module, class name, method name, "module:function")
ADAPTORS = [
    ("lightkurve", "LightCurve", "find_flares", "astroml_affiliated.flares:find_flares"),
    ("lightkurve", "LightCurve", "flare_probability",
     "astroml_affiliated.flares:flare_probability"),
    ("lightkurve", "LightCurve", "flare_injection_recovery",
     "astroml_affiliated.flares:injection_recovery"),
    ("lightkurve", "LightCurveCollection", "find_flares",
     "astroml_affiliated.flares:find_flares_collection"),
]
