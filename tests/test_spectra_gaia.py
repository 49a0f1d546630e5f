"""Gaia archive XP inputs: `read_gaia_xp` / `estimate_parameters_xp`.

The spectra are the real Gaia DR3 XP sampled spectra of the package's demo sample
(test-split stars, shipped in the package); continuous tables are built here by
projecting them onto GaiaXPy's own basis functions (they ship in its wheel).
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("specutils")
pytest.importorskip("tensorflow")

from astropy.table import Table  # noqa: E402

from astroml_affiliated.errors import AstroMLWarning, InputError  # noqa: E402
from astroml_affiliated.spectra import (estimate_parameters, estimate_parameters_xp,  # noqa: E402
                                        read_gaia_xp)
from astroml_affiliated.spectra.demo import demo_sample  # noqa: E402
from astroml_affiliated.spectra.gaia import continuous_from_sampled  # noqa: E402

LABELS = ("teff", "logg", "fe_h", "alpha_m")


def _cool(n=6):
    t = demo_sample()
    return t[t["apogee_teff"] < 7000][:n]


def _need_gaiaxpy():
    """Skip without GaiaXPy; import it as the package does (GaiaXPy's own import sets
    matplotlib's ``text.usetex``, which would break the figure tests after it)."""
    from astroml_affiliated.spectra.gaia import _import_gaiaxpy
    try:
        _import_gaiaxpy()
    except ImportError:
        pytest.skip("GaiaXPy is not installed")


def _continuous(sampled):
    _need_gaiaxpy()
    return continuous_from_sampled(sampled)


def test_sampled_and_continuous_tables_give_the_same_labels():
    _need_gaiaxpy()
    sampled = _cool()
    cont = _continuous(sampled)
    a = estimate_parameters_xp(sampled)
    b = estimate_parameters_xp(cont)
    np.testing.assert_array_equal(a["source_id"], sampled["source_id"])
    np.testing.assert_array_equal(b["source_id"], sampled["source_id"])
    for name in LABELS:
        diff = np.abs(a[name] - b[name]) / a[name + "_err"]
        assert np.all(diff < 0.1), (name, diff)
        # the errors GaiaXPy propagates from the coefficients are the sampled ones
        np.testing.assert_allclose(b[name + "_err"], a[name + "_err"], rtol=0.1)
    # GaiaXPy's calibrated DataFrame is taken as it is
    from gaiaxpy import calibrate
    from astroml_affiliated.spectra.gaia import _to_pandas
    frame, _ = calibrate(_to_pandas(cont), save_file=False)
    c = estimate_parameters_xp(frame)
    np.testing.assert_allclose(c["teff"], b["teff"], rtol=1e-6)


def test_sampled_table_equals_the_spectrum_and_keeps_source_ids(tmp_path):
    sampled = demo_sample()
    spec = read_gaia_xp(sampled)
    assert spec.flux.shape == (len(sampled), 343)
    np.testing.assert_array_equal(spec.meta["source_id"], sampled["source_id"])
    t = estimate_parameters_xp(sampled)
    ref = estimate_parameters(spec)
    for name in LABELS:
        np.testing.assert_array_equal(t[name], ref[name])
        np.testing.assert_array_equal(t[name + "_err"], ref[name + "_err"])
    assert t.colnames[0] == "source_id" and len(t) == len(sampled)
    # from files as the archive writes them: ECSV, and CSV with arrays as strings
    sampled["source_id", "flux", "flux_error"].write(tmp_path / "xp.ecsv")
    np.testing.assert_array_equal(estimate_parameters_xp(tmp_path / "xp.ecsv")["teff"],
                                  t["teff"])
    csv = Table({"source_id": sampled["source_id"],
                 "flux": ["(" + ", ".join(repr(float(v)) for v in row) + ")"
                          for row in sampled["flux"].value],
                 "flux_error": ["[" + " ".join(repr(float(v)) for v in row) + "]"
                                for row in sampled["flux_error"].value]})
    csv.write(tmp_path / "xp.csv", format="ascii.csv")
    np.testing.assert_allclose(estimate_parameters_xp(str(tmp_path / "xp.csv"))["teff"],
                               t["teff"], rtol=1e-6)


def test_missing_half_is_flagged_not_labelled():
    sampled = _cool(4)
    sampled["flux"][1, 142:] = np.nan  # no RP (620 nm on)
    sampled["flux_error"][1, 142:] = np.nan
    with pytest.warns(AstroMLWarning, match=str(sampled["source_id"][1])):
        t = estimate_parameters_xp(sampled)
    assert list(t["xp_missing"]) == ["", "RP", "", ""]
    assert np.isnan(t["teff"][1]) and t["ood_flag"][1]
    assert np.all(np.isfinite(t["teff"][[0, 2, 3]]))
    _need_gaiaxpy()
    cont = _continuous(_cool(3))
    cont["bp_coefficients"][0] = np.nan  # no BP
    with pytest.warns(AstroMLWarning, match="BP"):
        t2 = estimate_parameters_xp(cont)
    assert list(t2["xp_missing"]) == ["BP", "", ""] and t2["ood_flag"][0]
    assert np.isnan(t2["logg"][0]) and np.isfinite(t2["logg"][1])


def test_hot_spectra_are_flagged():
    sample = demo_sample()
    hot = sample[sample["apogee_teff"] >= 10000]
    assert len(hot) == 2
    assert np.all(estimate_parameters_xp(hot)["ood_flag"])
    # a hot, synthetic-like spectrum: a 15,000 K blackbody with Balmer lines
    wave = np.arange(336.0, 1021.0, 2.0) * 1e-9
    bb = wave ** -5 / np.expm1(1.4388e-2 / (wave * 15000.0))
    lines = 1 - sum(0.4 * np.exp(-0.5 * ((wave * 1e9 - c) / 3.0) ** 2)
                    for c in (388.9, 397.0, 410.2, 434.0, 486.1, 656.3))
    flux = 1e-16 * bb / bb.max() * lines
    t = Table({"source_id": [1], "flux": flux[None], "flux_error": 0.01 * flux[None]})
    assert estimate_parameters_xp(t)["ood_flag"][0]


def test_masked_ends_widen_the_errors():
    spec = read_gaia_xp(_cool())
    base = estimate_parameters(spec)
    for sl in (slice(0, 30), slice(283, 343)):
        mask = np.zeros(spec.flux.shape, bool)
        mask[:, sl] = True
        spec.mask = mask
        t = estimate_parameters(spec)
        assert np.all(t["masked_fraction"] > 0.08)
        for name in LABELS:
            # star by star the calibration also sees the filled-in spectrum's own
            # labels and sigma, which can be smaller; the masked-fraction term widens
            # the errors by 1.3-1.6x (bluest 30) and 1.6-2.3x (reddest 60)
            ratio = np.asarray(t[name + "_err"] / base[name + "_err"])
            assert np.median(ratio) > 1.25, (name, ratio)
        spec.mask = None


def test_bad_xp_inputs_raise_input_error(monkeypatch, tmp_path):
    with pytest.raises(InputError, match="XP_SAMPLED or XP_CONTINUOUS"):
        read_gaia_xp(np.zeros((2, 343)))
    with pytest.raises(InputError, match="source_id"):
        read_gaia_xp(Table({"flux": np.ones((2, 343))}))
    with pytest.raises(InputError, match="neither 'flux'"):
        read_gaia_xp(Table({"source_id": [1, 2], "mag": [1.0, 2.0]}))
    with pytest.raises(InputError, match="343"):
        read_gaia_xp(Table({"source_id": [1], "flux": np.ones((1, 100))}))
    with pytest.raises(InputError, match="no such file"):
        read_gaia_xp(tmp_path / "missing.ecsv")
    # a continuous table without GaiaXPy: the install hint
    import sys
    monkeypatch.setitem(sys.modules, "gaiaxpy", None)  # import gaiaxpy fails
    cont = Table({"source_id": [1], "bp_coefficients": np.ones((1, 55)),
                  "rp_coefficients": np.ones((1, 55))})
    with pytest.raises(InputError, match=r"astroml_affiliated\[gaia\]"):
        read_gaia_xp(cont)


def test_caller_table_unchanged():
    sampled = _cool(3)
    before = np.array(sampled["flux"]).copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimate_parameters_xp(sampled)
    np.testing.assert_array_equal(np.array(sampled["flux"]), before)


def test_demo_labels_the_shipped_real_spectra(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from astroml_affiliated.spectra.demo import run_demo

    t = run_demo(tmp_path)
    for name in ("spectra.ecsv", "spectra.png", "spectra_vs_apogee.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert len(t) == 14 and "apogee_teff" in t.colnames and "source_id" in t.colnames
    cool = np.asarray(t["apogee_teff"]) < 6500
    # real test-split stars: labels near APOGEE's, within a few sigma
    z = np.abs(t["teff"].value - t["apogee_teff"]) / t["teff_err"].value
    assert np.median(z[cool]) < 2 and not t["ood_flag"][cool].any()
    assert t["ood_flag"][np.asarray(t["apogee_teff"]) > 10000].all()
    assert "SYNTHETIC" not in capsys.readouterr().out


def test_continuous_input_leaves_matplotlib_settings_alone():
    mpl = pytest.importorskip("matplotlib")
    _need_gaiaxpy()
    before = mpl.rcParams["text.usetex"]
    estimate_parameters_xp(_continuous(_cool(1)))
    assert mpl.rcParams["text.usetex"] == before


def test_hot_probability_equals_its_explicit_design():
    from astroml_affiliated.spectra import _high_level as H, core

    _, const, _ = H._load("gaiaxp-labels", "cpu")
    if "hot_label_coef" not in const:
        pytest.skip("the registered model has no second hot-star classifier")
    rng = np.random.default_rng(1)
    n = 50
    mean = np.column_stack([rng.uniform(3500, 9000, n), rng.uniform(0, 5, n),
                            rng.normal(0, 0.5, n), rng.normal(0.1, 0.1, n)])
    sigma = np.abs(rng.normal(80, 40, (n, 4))) + 1
    parts = np.abs(rng.normal(0.5, 0.5, (n, 6)))
    parts[:, core.OOD_HOT] = rng.uniform(0, 1, n)
    snr = rng.normal(0, 2, n)
    design = core.hot_design(core.hot_label_features(mean, sigma, snr, parts), const)
    logit = design @ const["hot_label_coef"] + parts[:, core.OOD_HOT_SPECTRAL] + float(
        const["hot_offset"])
    np.testing.assert_allclose(core.hot_probability(mean, sigma, snr, parts, const),
                               1 / (1 + np.exp(-logit)), rtol=1e-9, atol=1e-12)
