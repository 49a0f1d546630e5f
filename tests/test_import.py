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
