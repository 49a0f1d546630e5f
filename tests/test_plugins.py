import subprocess
import sys
import textwrap

import numpy as np
import pytest

from astroml_affiliated import AstroMLWarning
from astroml_affiliated.plugins import attach, attached, detach

lk = pytest.importorskip("lightkurve")


def _probe(lc, scale=1):
    """Return the number of cadences times ``scale``."""
    return len(lc) * scale


@pytest.fixture
def probe():
    assert attach(lk.LightCurve, "_astroml_probe", _probe)
    yield
    detach(lk.LightCurve, "_astroml_probe")


def _lc(n=50):
    return lk.LightCurve(time=np.arange(n) / 720 + 1000, flux=np.ones(n),
                         flux_err=np.full(n, 0.01))


def test_subclasses_and_derived_objects_get_the_method(probe):
    lc = _lc()
    tess = lk.TessLightCurve(time=lc.time, flux=lc.flux, flux_err=lc.flux_err)
    kepler = lk.KeplerLightCurve(time=lc.time, flux=lc.flux, flux_err=lc.flux_err)
    for obj in (lc, tess, kepler, tess.copy(), tess.flatten(window_length=11),
                tess.remove_outliers()):
        assert obj._astroml_probe(scale=2) == 2 * len(obj)
    assert lk.LightCurve._astroml_probe.__doc__ == _probe.__doc__
    assert (lk.LightCurve, "_astroml_probe") in attached()


def test_existing_attribute_is_never_overwritten():
    original = lk.LightCurve.flatten
    with pytest.warns(AstroMLWarning, match="already has an attribute 'flatten'"):
        assert not attach(lk.LightCurve, "flatten", _probe)
    assert lk.LightCurve.flatten is original
    detach(lk.LightCurve, "flatten")  # not ours: must stay
    assert lk.LightCurve.flatten is original


def test_ccddata_subtract_is_not_shadowed():
    from astropy.nddata import CCDData

    import astroml_affiliated  # noqa: F401  (attaches every adaptor)

    assert CCDData.subtract.__module__.startswith("astropy")


def test_detach(probe):
    detach(lk.LightCurve, "_astroml_probe")
    assert not hasattr(lk.LightCurve, "_astroml_probe")
    assert not hasattr(_lc(), "_astroml_probe")


def test_attach_on_later_import_and_detach_all():
    """Methods appear when the host package is imported after astroml_affiliated."""
    code = textwrap.dedent("""
        import sys
        import astroml_affiliated
        from astroml_affiliated.plugins import lightcurve
        lightcurve.ADAPTORS.append(
            ("lightkurve", "LightCurve", "_probe", "astroml_affiliated.weights:list_models"))
        assert "lightkurve" not in sys.modules
        import lightkurve
        assert getattr(lightkurve.LightCurve._probe, "_astroml_affiliated_adaptor")
        assert hasattr(lightkurve.TessLightCurve, "_probe")
        astroml_affiliated.detach_adaptors()
        assert not hasattr(lightkurve.LightCurve, "_probe")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
