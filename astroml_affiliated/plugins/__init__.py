"""Methods on the classes astronomers already hold.

Each module here is the adaptor for one host class and holds a list ``ADAPTORS`` of
``(host module, class name, method name, "module:function")``. The methods are one-line
calls of the plain functions, which are the real API. :func:`attach_adaptors` (run when
``astroml_affiliated`` is imported) attaches them to every host class whose package is
imported already, and to the others the moment their package gets imported, so that
importing ``astroml_affiliated`` stays fast and never imports a host package itself.
"""

from ._core import (ADAPTOR_MODULES, attach, attach_adaptors, attached, detach,
                    detach_adaptors)

__all__ = ["ADAPTOR_MODULES", "attach", "attach_adaptors", "attached", "detach",
           "detach_adaptors"]
