import pytest

from astroml_affiliated import conf
from astroml_affiliated.device import available_gpus, device_scope, resolve_device
from astroml_affiliated.errors import DeviceError, InputError

pytest.importorskip("tensorflow")


def test_cpu_always_works():
    assert resolve_device("cpu") == ("/device:CPU:0", "cpu")
    with device_scope("cpu") as label:
        import tensorflow as tf

        value = tf.reduce_sum(tf.ones(3))
    assert label == "cpu"
    assert "CPU" in value.device


def test_auto_picks_what_is_there():
    _, label = resolve_device(None)
    assert label == ("gpu:0" if available_gpus() else "cpu")
    with conf.set_temp("default_device", "cpu"):
        assert resolve_device(None)[1] == "cpu"


@pytest.mark.skipif("available_gpus()", reason="this machine has a GPU")
@pytest.mark.parametrize("device", ["gpu", "gpu:0", "GPU:1"])
def test_missing_gpu_is_an_error(device):
    with pytest.raises(DeviceError, match="sees none"):
        resolve_device(device)


def test_gpu_index_out_of_range():
    n = len(available_gpus())
    with pytest.raises(DeviceError):
        resolve_device(f"gpu:{n + 3}")


@pytest.mark.parametrize("device", ["tpu", "cuda", 0, "cpu:1", "", "auto:3"])
def test_malformed_device(device):
    with pytest.raises(InputError, match="device"):
        resolve_device(device)


def test_tensorflow_start_up_is_quiet():
    import os
    import subprocess
    import sys

    code = ("from astroml_affiliated.device import device_scope\n"
            "with device_scope('cpu'):\n"
            "    import tensorflow as tf\n"
            "    tf.reduce_sum(tf.ones(3)).numpy()\n"
            "import sys; print('still-visible', file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={k: v for k, v in os.environ.items()
                                           if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "still-visible", out.stderr


def test_bad_default_device_names_the_setting():
    with conf.set_temp("default_device", "nonsense"), \
            pytest.raises(InputError, match="conf.default_device"):
        resolve_device(None)
