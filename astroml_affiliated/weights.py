"""Trained weights: the registry, where files are found, downloading and loading.

This module is the only place in the package that opens a URL. A weights file is looked
up in this order:

1. an explicit path given by the caller (a file, or a directory holding the file);
2. the user weights directory: ``$ASTROML_AFFILIATED_WEIGHTS_DIR``, then
   ``conf.weights_dir``;
3. the download cache (``$ASTROML_AFFILIATED_CACHE_DIR``, ``conf.cache_dir``, or the
   operating system's cache directory);
4. the ``weights/`` folder of a source checkout of the project;
5. a download from ``$ASTROML_AFFILIATED_WEIGHTS_URL`` (or ``conf.weights_url``), then
   each of ``conf.weights_mirrors``, through :mod:`pooch` with retries, a progress bar,
   sha256 verification and an atomic move into the cache.

Files found in 2-4 are checked against the sha256 in the registry; a mismatch is refused
(and a bad file in the cache removed). A file given explicitly (1) is the caller's own
and is used as it is; its hash is still recorded in results.

Weights are ``.weights.h5`` files loaded into architectures built by code in this
package: a saved model configuration is never deserialised.
"""

import hashlib
import importlib
import json
import os
import tempfile
import threading
from pathlib import Path

from .config import conf
from .errors import (InputError, WeightsDownloadError, WeightsError, WeightsHashError,
                     WeightsNotFoundError)

__all__ = ["registry", "get_entry", "list_models", "fetch", "fetch_file", "download_all",
           "verify", "cache_dir", "load_models", "clear_model_cache",
           "write_registry_entry", "sha256sum"]

_PACKAGE_DIR = Path(__file__).resolve().parent
#: The registry as shipped inside the package (in a source checkout, a link to
#: ``weights/registry.json``).
REGISTRY_FILE = _PACKAGE_DIR / "registry.json"
#: ``weights/`` of a source checkout (absent in an installed wheel).
SOURCE_WEIGHTS_DIR = _PACKAGE_DIR.parent / "weights"

_hash_cache = {}
_model_cache = {}
_lock = threading.Lock()


# -- registry -----------------------------------------------------------------------

def registry():
    """The weights registry: ``{"format": 1, "models": {name: entry}}``."""
    with open(REGISTRY_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def list_models():
    """Names of the models in the registry."""
    return sorted(registry()["models"])


def get_entry(name):
    """The registry entry of model ``name`` (a dict).

    Raises
    ------
    InputError
        If there is no model of that name.
    """
    models = registry()["models"]
    if name not in models:
        raise InputError(f"unknown model {name!r}; the registry has: "
                         f"{', '.join(sorted(models)) or 'no models'}")
    return models[name]


def sha256sum(path):
    """The sha256 hex digest of a file (remembered per path, size and mtime)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


# -- where files are --------------------------------------------------------------------

def cache_dir():
    """The directory downloaded weights are stored in."""
    path = os.environ.get("ASTROML_AFFILIATED_CACHE_DIR") or conf.cache_dir
    if path:
        return Path(path).expanduser()
    import pooch

    return Path(pooch.os_cache("astroml_affiliated"))


def _user_dirs():
    dirs = []
    for path in (os.environ.get("ASTROML_AFFILIATED_WEIGHTS_DIR"), conf.weights_dir):
        if path:
            dirs.append(Path(path).expanduser())
    return dirs


def _base_urls():
    main = os.environ.get("ASTROML_AFFILIATED_WEIGHTS_URL") or conf.weights_url
    urls = [main] + [u for u in conf.weights_mirrors if u and u != main]
    return [u if u.endswith("/") else u + "/" for u in urls]


def _downloads_allowed():
    from astropy.utils.data import conf as data_conf

    return bool(conf.allow_download) and bool(data_conf.allow_internet)


def _file_record(fname):
    for name, entry in registry()["models"].items():
        for record in entry["files"]:
            if record["name"] == fname:
                return record
    raise InputError(f"{fname!r} is not a weights file listed in the registry")


def _check(path, record, where):
    actual = sha256sum(path)
    if actual != record["sha256"]:
        raise WeightsHashError(
            f"{path} (from the {where}) has sha256 {actual}, but the registry expects "
            f"{record['sha256']}: the file is corrupt or from another version. Delete it "
            "to have it downloaded again.")
    return path


def fetch_file(fname, *, path=None):
    """Return a local path to the weights file ``fname``, downloading it if needed.

    Parameters
    ----------
    fname : str
        A file name listed in the registry, e.g. ``'flares-cnn-1.2.0-m0.weights.h5'``.
    path : str or `~pathlib.Path`, optional
        An explicit file, or a directory that holds ``fname``; used as it is.

    Returns
    -------
    `~pathlib.Path`

    Raises
    ------
    WeightsNotFoundError
        The file is nowhere locally and downloading is switched off.
    WeightsDownloadError, WeightsHashError
        Every URL failed, or what came back does not match the registry's sha256.
    """
    return _locate(_file_record(fname), path)


def _locate(record, path=None, *, repair=True):
    """`fetch_file` for a registry file record (the lookup order is documented there).

    ``repair=False`` (for `verify`): a corrupt file in the cache is reported with a
    `WeightsHashError` instead of being deleted and downloaded again.
    """
    fname = record["name"]
    if path is not None:
        path = Path(path).expanduser()
        candidate = path / fname if path.is_dir() else path
        if not candidate.is_file():
            raise WeightsNotFoundError(f"weights path {candidate} does not exist")
        return candidate
    for directory in _user_dirs():
        if (directory / fname).is_file():
            return _check(directory / fname, record, "user weights directory")
    cache = cache_dir()
    cached = cache / fname
    if cached.is_file():
        if sha256sum(cached) == record["sha256"]:
            return cached
        if not repair:
            _check(cached, record, "download cache")
        try:
            cached.unlink(missing_ok=True)  # stale or corrupt (another process may
            # have removed it already): fetch a good copy below
        except OSError:  # a read-only cache: say that the file is bad, not only that
            _check(cached, record, "download cache")
    source = SOURCE_WEIGHTS_DIR / fname
    if source.is_file():
        return _check(source, record, "source checkout's weights/ folder")
    return _download(fname, record, cache)


def _download(fname, record, cache):
    if not _downloads_allowed():
        places = [str(d) for d in _user_dirs()] or [
            "a directory named by $ASTROML_AFFILIATED_WEIGHTS_DIR"]
        raise WeightsNotFoundError(
            f"weights file {fname} is not available locally and downloads are switched "
            "off (astroml_affiliated.conf.allow_download or "
            "astropy.utils.data.conf.allow_internet). Put the file (sha256 "
            f"{record['sha256']}) in {' or '.join(places)} or in the cache {cache}, "
            "or run astroml_affiliated.weights.download_all() on a machine with internet "
            "and copy the cache over.")
    import pooch
    import requests

    failures = []
    hash_failure = False
    for base in _base_urls():
        downloader = pooch.HTTPDownloader(progressbar=_progressbar(),
                                         timeout=_download_timeout())
        try:
            cache.mkdir(parents=True, exist_ok=True)
            store = pooch.create(path=cache, base_url=base,
                                 registry={fname: "sha256:" + record["sha256"]},
                                 retry_if_failed=int(conf.download_retries))
            path = Path(store.fetch(fname, downloader=downloader))
        except requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            failures.append(f"{base}{fname}: HTTP {status}")
            continue
        except requests.exceptions.RequestException as exc:
            failures.append(f"{base}{fname}: {type(exc).__name__}: {exc}")
            continue
        except ValueError as exc:  # pooch's hash mismatch; it has removed the file
            hash_failure = True
            failures.append(f"{base}{fname}: sha256 mismatch ({exc})")
            continue
        except OSError as exc:  # not the network (requests' errors are caught above)
            raise WeightsDownloadError(
                f"cannot store weights file {fname} in the cache {cache}: "
                f"{exc.strerror or exc}. Set ASTROML_AFFILIATED_CACHE_DIR (or "
                "conf.cache_dir) to a writable directory, or put the file in "
                "$ASTROML_AFFILIATED_WEIGHTS_DIR.") from exc
        # pooch writes through a private (0600) temporary file: give the downloaded
        # file the usual permissions, so that a shared cache is readable by others
        path.chmod(0o666 & ~_process_umask(cache))
        return path
    # pooch never moves a bad download into place; make sure nothing half-written stays
    if (cache / fname).is_file() and sha256sum(cache / fname) != record["sha256"]:
        (cache / fname).unlink()
    message = (f"could not download weights file {fname}: " + "; ".join(failures)
               + ". Set ASTROML_AFFILIATED_WEIGHTS_URL or conf.weights_url to a working "
               "base URL, or put the file in $ASTROML_AFFILIATED_WEIGHTS_DIR.")
    raise (WeightsHashError if hash_failure else WeightsDownloadError)(message)


def _download_timeout():
    try:
        timeout = float(conf.download_timeout)
    except (TypeError, ValueError):
        timeout = float("nan")
    if not timeout > 0 or timeout == float("inf"):
        raise InputError(f"conf.download_timeout must be a positive number of seconds, "
                         f"not {conf.download_timeout!r}")
    return timeout


_PROC_STATUS = "/proc/self/status"


def _process_umask(directory):
    """The process's umask, read without changing it (``os.umask`` can only be read by
    setting it, which races with other threads creating files)."""
    try:  # Linux >= 4.7
        with open(_PROC_STATUS) as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # elsewhere: the mode the OS gives a new directory asked for as 0777
    probe = tempfile.mkdtemp(dir=directory)
    os.rmdir(probe)
    os.mkdir(probe, 0o777)
    try:
        return 0o777 & ~os.stat(probe).st_mode
    finally:
        os.rmdir(probe)


def _progressbar():
    import sys

    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def fetch(name, *, path=None):
    """Local paths of every weights file of model ``name`` (see `fetch_file`).

    ``path`` may be a file only for a model of one file; otherwise a directory.
    """
    records = get_entry(name)["files"]
    if path is not None and len(records) > 1 and Path(path).expanduser().is_file():
        raise InputError(f"model {name!r} has {len(records)} weights files: path must be "
                         f"a directory holding them, not the file {path}")
    return [_locate(rec, path) for rec in records]


def download_all():
    """Fetch every file of every registered model into the cache (or find it locally).

    Run this on a machine with internet, then copy :func:`cache_dir` to an offline
    machine (or point ``ASTROML_AFFILIATED_WEIGHTS_DIR`` at a copy).

    Returns
    -------
    list of `~pathlib.Path`
    """
    return [p for name in list_models() for p in fetch(name)]


def verify(name=None):
    """Check the locally available files against the registry.

    Returns a dict ``{file name: "ok" | "missing" | "sha256 mismatch at PATH"}``.
    """
    names = [name] if name else list_models()
    report = {}
    with conf.set_temp("allow_download", False):
        for model in names:
            for rec in get_entry(model)["files"]:
                try:
                    _locate(rec, repair=False)
                    report[rec["name"]] = "ok"
                except WeightsNotFoundError:
                    report[rec["name"]] = "missing"
                except WeightsHashError as exc:
                    report[rec["name"]] = f"sha256 mismatch: {exc}"
    return report


# -- loading into architectures defined in code ---------------------------------------------

def _import_string(dotted):
    module, _, attr = dotted.partition(":")
    if not attr:
        raise WeightsError(f"architecture {dotted!r} must be 'module:function'")
    if not module.startswith("astroml_affiliated."):
        raise WeightsError(f"architecture {dotted!r} is not defined in astroml_affiliated")
    return getattr(importlib.import_module(module), attr)


def load_models(name, *, device=None, path=None):
    """Build model ``name``'s members in code and load their weights.

    Parameters
    ----------
    name : str
        A model in the registry.
    device : {None, 'cpu', 'gpu', 'gpu:N'}
        Where the models' variables live (see :mod:`astroml_affiliated.device`).
    path : str or `~pathlib.Path`, optional
        A directory holding the model's files (used instead of the lookup order).

    Returns
    -------
    models : list of `keras.Model`
        One per ``.weights.h5`` file (ensemble members).
    info : dict
        ``model``, ``version``, ``sha256`` (list), ``files``, ``device`` and the entry's
        ``input`` specification.
    """
    from .device import device_scope, import_keras

    entry = get_entry(name)
    files = fetch(name, path=path)
    weights = [(rec, p) for rec, p in zip(entry["files"], files)
               if p.name.endswith(".weights.h5")]
    with device_scope(device) as label:
        key = (name, entry["version"], tuple(str(p) for _, p in weights),
               tuple(sha256sum(p) for _, p in weights), label)
        with _lock:
            if key not in _model_cache:
                import_keras()
                build = _import_string(entry["architecture"])
                models = []
                for rec, p in weights:
                    kwargs = dict(entry.get("architecture_kwargs", {}))
                    kwargs.update(rec.get("architecture_kwargs", {}))
                    model = build(**kwargs)
                    model.load_weights(p)
                    models.append(model)
                _model_cache[key] = models
    info = {"model": name, "version": entry["version"],
            "sha256": [sha256sum(p) for p in files],
            "files": [p.name for p in files], "device": label,
            "input": entry.get("input", {}), "paths": files}
    return _model_cache[key], info


def clear_model_cache():
    """Forget the models built by `load_models` (frees their memory)."""
    with _lock:
        _model_cache.clear()


# -- for training scripts ----------------------------------------------------------------

def write_registry_entry(name, *, version, architecture, architecture_kwargs, files,
                         input, training, model_card, description="", registry_path=None):
    """Add or replace model ``name`` in the registry, with each file's sha256 and size.

    ``files`` are paths of files already written next to the registry (``weights/``);
    a file may instead be a ``(path, extra_dict)`` pair whose dict is stored with it
    (for example member-specific ``architecture_kwargs``).
    """
    registry_path = Path(registry_path or SOURCE_WEIGHTS_DIR / "registry.json")
    with _lock:
        if registry_path.is_file():
            with open(registry_path, encoding="utf-8") as fh:
                data = json.load(fh)
        else:
            data = {"format": 1, "models": {}}
        records = []
        for item in files:
            path, extra = item if isinstance(item, tuple) else (item, {})
            path = Path(path)
            if path.resolve().parent != registry_path.resolve().parent:
                raise WeightsError(f"{path} must be in {registry_path.parent}")
            records.append({"name": path.name, "sha256": sha256sum(path),
                            "size": path.stat().st_size, **extra})
        data["models"][name] = {
            "version": version, "description": description,
            "architecture": architecture, "architecture_kwargs": architecture_kwargs,
            "files": records, "input": input, "training": training,
            "model_card": model_card}
        data["models"] = dict(sorted(data["models"].items()))
        tmp = registry_path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, registry_path)
    return data["models"][name]
