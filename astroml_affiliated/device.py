"""Choice of compute device, and the one place TensorFlow and Keras get imported.

Every model call takes ``device=None|"cpu"|"gpu"|"gpu:N"``. ``None`` means
``conf.default_device`` (``"auto"`` by default: the first GPU TensorFlow sees, else the
CPU). Asking for a GPU that is not there raises :class:`~astroml_affiliated.DeviceError`
instead of TensorFlow's silent fallback to the CPU.
"""

import contextlib
import os
import re

from .config import conf
from .errors import AstroMLError, DeviceError, InputError

__all__ = ["import_tensorflow", "import_keras", "available_gpus", "resolve_device",
           "device_scope"]

_DEVICE_RE = re.compile(r"^(auto|cpu|gpu)(?::(\d+))?$")
_tf = None


class _TensorFlowMissing(AstroMLError, ImportError):
    """TensorFlow is not installed: an `AstroMLError` with the command that installs
    it, and an `ImportError`, so that a batch run stops instead of failing each input."""


def import_tensorflow():
    """Import TensorFlow (once), quietly, with memory growth on every GPU.

    Raises
    ------
    AstroMLError
        If TensorFlow is not installed, with the command that installs it.
    """
    global _tf
    if _tf is not None:
        return _tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        with _quiet_native_stderr():
            import tensorflow as tf
    except ImportError as exc:
        raise _TensorFlowMissing(
            "the models of astroml_affiliated need TensorFlow, which is not installed: "
            "pip install 'astroml_affiliated[tf]' (CPU) or 'astroml_affiliated[gpu]' "
            f"(CUDA). Import error: {exc}"
        ) from exc
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            # The GPU was initialised already (by the user's own TensorFlow code):
            # memory growth can no longer be changed, which is harmless.
            pass
    _tf = tf
    return tf


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what TensorFlow's C++ core prints while it loads.

    Recent TensorFlow prints absl start-up lines (oneDNN notices and the like) straight
    to file descriptor 2, whatever TF_CPP_MIN_LOG_LEVEL says. They are hidden unless
    TF_CPP_MIN_LOG_LEVEL is set below 2; Python exceptions are not affected.
    """
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    except ValueError:
        level = 2
    if level < 2:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable file descriptor 2 (some notebook set-ups)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """Import Keras 3 on the TensorFlow backend and return the module."""
    import_tensorflow()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise AstroMLError(
            f"Keras was started with the {keras.backend.backend()!r} backend; "
            "astroml_affiliated needs 'tensorflow'. Set KERAS_BACKEND=tensorflow before "
            "importing keras."
        )
    return keras


def available_gpus():
    """Names of the GPUs TensorFlow can see (an empty list on a CPU-only machine)."""
    tf = import_tensorflow()
    return [d.name for d in tf.config.list_physical_devices("GPU")]


def _parse(device):
    name = "device"
    if device is None:
        device = conf.default_device
        name = "astroml_affiliated.conf.default_device"
    if not isinstance(device, str):
        raise InputError(
            f"{name} must be None, 'cpu', 'gpu' or 'gpu:N', not {device!r}")
    match = _DEVICE_RE.match(device.strip().lower())
    if match is None or (match.group(1) == "auto" and match.group(2) is not None):
        raise InputError(
            f"{name} must be None, 'auto', 'cpu', 'gpu' or 'gpu:N', not {device!r}")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu" and index not in (None, "0"):
        raise InputError(f"device {device!r}: there is only one CPU device, 'cpu'")
    return kind, int(index or 0)


def resolve_device(device=None):
    """Turn a ``device`` argument into a TensorFlow device name and a short label.

    Parameters
    ----------
    device : {None, 'auto', 'cpu', 'gpu', 'gpu:N'}
        ``None`` takes ``conf.default_device``.

    Returns
    -------
    tf_name, label : str
        For example ``('/device:GPU:0', 'gpu:0')`` or ``('/device:CPU:0', 'cpu')``.

    Raises
    ------
    DeviceError
        If a GPU is asked for and TensorFlow does not see it.
    InputError
        If ``device`` is not one of the accepted forms.
    """
    kind, index = _parse(device)
    if kind == "cpu":
        return "/device:CPU:0", "cpu"
    gpus = available_gpus()
    if kind == "auto":
        return ("/device:GPU:0", "gpu:0") if gpus else ("/device:CPU:0", "cpu")
    if not gpus:
        raise DeviceError(
            f"device={device!r} asks for a GPU but TensorFlow sees none on this machine; "
            "use device='cpu' (or None to choose automatically), or install a CUDA "
            "build: pip install 'astroml_affiliated[gpu]'")
    if index >= len(gpus):
        raise DeviceError(
            f"device={device!r} asks for GPU {index} but TensorFlow sees {len(gpus)} "
            f"GPU(s): use 'gpu:0' to 'gpu:{len(gpus) - 1}'")
    return f"/device:GPU:{index}", f"gpu:{index}"


@contextlib.contextmanager
def device_scope(device=None):
    """Context manager running TensorFlow work on the chosen device.

    Yields the device's label (``'cpu'`` or ``'gpu:N'``), to be recorded in results.
    """
    tf_name, label = resolve_device(device)
    tf = import_tensorflow()
    with tf.device(tf_name):
        yield label
