"""Adaptor for `lightkurve.LightCurve` (and every subclass) and `LightCurveCollection`."""

#: Packages whose import attaches the methods below.
HOST_MODULES = ("lightkurve",)

#: (host module, class name, method name, "module:function")
ADAPTORS = []
