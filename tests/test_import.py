"""``import astroml_affiliated`` is light: no TensorFlow, Keras or host package."""

import subprocess
import sys
import textwrap

BLOCK_TF = textwrap.dedent("""
    import sys
    # Make TensorFlow (and Keras, which needs a backend) uninstallable for this process.
    for name in ("tensorflow", "keras"):
        sys.modules[name] = None
""")


def _run(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_without_tensorflow():
    out = _run(BLOCK_TF + textwrap.dedent("""
        import astroml_affiliated
        from astroml_affiliated import device, weights, cli
        from astroml_affiliated.errors import AstroMLError
        print(astroml_affiliated.__version__)
        try:
            device.import_tensorflow()
        except AstroMLError as exc:
            assert "pip install" in str(exc), exc
            print("clear error")
    """))
    assert "clear error" in out


def test_import_loads_no_heavy_module():
    out = _run(textwrap.dedent("""
        import sys
        import astroml_affiliated
        heavy = {"tensorflow", "keras", "lightkurve", "specutils", "photutils",
                 "reproject", "requests", "pooch", "matplotlib", "dask"}
        print(sorted(heavy & {m.split(".")[0] for m in sys.modules}))
    """))
    assert out.strip() == "[]"


def test_batch_without_tensorflow_stops_the_run():
    """Missing TensorFlow is about the whole run: one clear error, not an error row for
    every input."""
    out = _run(BLOCK_TF + textwrap.dedent("""
        import numpy as np
        import lightkurve as lk
        from astropy.time import Time
        from astroml_affiliated import batch
        from astroml_affiliated.errors import AstroMLError

        t = Time(2000.0 + np.arange(720) * 2.0 / 1440, format="btjd", scale="tdb")
        rng = np.random.default_rng(1)
        lcs = [lk.LightCurve(time=t, flux=1000 + rng.normal(0, 1, 720),
                             flux_err=np.ones(720)) for _ in range(2)]
        try:
            table = batch.find_flares_batch(lcs)
        except ImportError as exc:
            assert isinstance(exc, AstroMLError) and "pip install" in str(exc), exc
            print("stopped")
        else:
            print(list(table["status"]), list(table["error"]))
    """))
    assert out.strip() == "stopped"
