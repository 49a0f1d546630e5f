"""The adaptor mechanism: attach methods to host classes, and detach them again."""

import functools
import importlib
import importlib.abc
import importlib.util
import sys
import threading
import warnings

from ..errors import AstroMLWarning

__all__ = ["ADAPTOR_MODULES", "attach", "detach", "attached", "attach_adaptors",
           "detach_adaptors"]

#: One adaptor module per host class.
ADAPTOR_MODULES = (
    "astroml_affiliated.plugins.lightcurve",
    "astroml_affiliated.plugins.ccddata",
    "astroml_affiliated.plugins.spectrum",
)

_MARK = "_astroml_affiliated_adaptor"
_attached = []  # (class, method name), in the order attached
_lock = threading.RLock()


def _adaptors():
    rows = []
    for name in ADAPTOR_MODULES:
        rows.extend(importlib.import_module(name).ADAPTORS)
    return rows


def _host_modules():
    hosts = set()
    for name in ADAPTOR_MODULES:
        module = importlib.import_module(name)
        hosts.update(module.HOST_MODULES)
        hosts.update(row[0] for row in module.ADAPTORS)
    return sorted(hosts)


def _resolve(target):
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def _make_method(func):
    @functools.wraps(func)
    def method(self, *args, **kwargs):
        return func(self, *args, **kwargs)

    setattr(method, _MARK, True)
    return method


def attach(cls, name, func):
    """Attach ``func`` to ``cls`` as method ``name``, unless ``cls`` has that name already.

    Subclasses inherit the method. An existing attribute of the host (its own or
    inherited) is never overwritten: an `AstroMLWarning` says so and nothing changes.

    Returns
    -------
    bool
        True if the method was attached.
    """
    with _lock:
        existing = getattr(cls, name, None)
        if existing is not None:
            if getattr(existing, _MARK, False):
                return False  # ours already, e.g. inherited from an attached base class
            warnings.warn(
                f"{cls.__module__}.{cls.__qualname__} already has an attribute {name!r}; "
                f"astroml_affiliated leaves it alone (call {func.__module__}."
                f"{func.__name__} directly instead)", AstroMLWarning, stacklevel=2)
            return False
        setattr(cls, name, _make_method(func))
        _attached.append((cls, name))
        return True


def detach(cls, name):
    """Remove method ``name`` from ``cls`` if astroml_affiliated attached it."""
    with _lock:
        if getattr(cls.__dict__.get(name), _MARK, False):
            delattr(cls, name)
        if (cls, name) in _attached:
            _attached.remove((cls, name))


def attached():
    """The ``(class, method name)`` pairs attached now."""
    with _lock:
        return list(_attached)


def _attach_host(module_name):
    module = sys.modules.get(module_name)
    if module is None:
        return
    for host, cls_name, method, target in _adaptors():
        if host != module_name:
            continue
        cls = getattr(module, cls_name, None)
        if cls is None:  # e.g. specutils 1.x has no Spectrum, only Spectrum1D
            continue
        try:
            attach(cls, method, _resolve(target))
        except Exception as exc:  # never break the user's import of the host package
            warnings.warn(f"could not attach {method!r} to {module_name}.{cls_name}: "
                          f"{exc}", AstroMLWarning, stacklevel=2)


class _Loader(importlib.abc.Loader):
    """Wraps a host package's loader to attach our methods once it has run."""

    def __init__(self, loader, finder, name):
        self._loader, self._finder, self._name = loader, finder, name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._finder.pending.discard(self._name)
        _attach_host(self._name)

    def __getattr__(self, attr):
        return getattr(self._loader, attr)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it wraps the loader of the host packages we wait for."""

    def __init__(self):
        self.pending = set()
        self._busy = set()

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.pending or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, self, fullname)
        return spec


_finder = _PostImportFinder()


def attach_adaptors():
    """Attach every adaptor: now for host packages already imported, else on import."""
    with _lock:
        for host in _host_modules():
            if host in sys.modules:
                _attach_host(host)
            else:
                _finder.pending.add(host)
        if _finder.pending and _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def detach_adaptors():
    """Remove every method astroml_affiliated attached, and stop attaching on import."""
    with _lock:
        _finder.pending.clear()
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        for cls, name in reversed(_attached[:]):
            detach(cls, name)
