"""Gaia archive XP files as inputs of a spectra batch run: one row per source.

The archive files are written here from the package's shipped demo sample (real Gaia
DR3 XP sampled spectra, see `astroml_affiliated.spectra.demo`); continuous files are
built by projecting them onto GaiaXPy's bases (skipped without GaiaXPy).
"""

import os
import warnings

import numpy as np
import pytest

pytest.importorskip("specutils")
pytest.importorskip("tensorflow")

from astropy.table import QTable, Table  # noqa: E402

from astroml_affiliated import batch, cli, weights  # noqa: E402
from astroml_affiliated.errors import AstroMLWarning  # noqa: E402
from astroml_affiliated.spectra import estimate_parameters_xp  # noqa: E402
from astroml_affiliated.spectra.demo import demo_sample  # noqa: E402

pytestmark = pytest.mark.skipif(
    "gaiaxp-labels" not in weights.list_models(),
    reason="spectrum model weights not available")

LABELS = ("teff", "logg", "fe_h", "alpha_m", "teff_err", "ood_flag")


def _sampled(n=3):
    t = demo_sample()
    return t[t["apogee_teff"] < 7000][:n]["source_id", "flux", "flux_error"]


def _labels_equal(rows, expected):
    for name in LABELS:
        a = np.asarray(getattr(rows[name], "value", rows[name]))
        b = np.asarray(getattr(expected[name], "value", expected[name]))
        np.testing.assert_allclose(a, b, rtol=1e-5, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("fmt", ["ecsv", "fits", "vot", "csv"])
def test_cli_xp_sampled_file_gives_one_row_per_source(tmp_path, capsys, fmt):
    sampled = _sampled(3)
    xp = tmp_path / f"XP_SAMPLED.{fmt}"
    if fmt == "csv":  # as the archive writes CSV: the arrays as strings
        text = Table({"source_id": sampled["source_id"]})
        for name in ("flux", "flux_error"):
            text[name] = ["(" + ", ".join(repr(float(v)) for v in row) + ")"
                          for row in sampled[name].value]
        text.write(xp, format="ascii.csv")
    else:
        sampled.write(xp, format="votable" if fmt == "vot" else None)
    out = tmp_path / "labels.ecsv"
    rc = cli.main(["spectra", str(xp), "-o", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "1 input(s): 1 with results (3 spectra with labels)" in capsys.readouterr().out
    table = QTable.read(out)
    assert len(table) == 3 and set(table["status"]) == {"ok"}
    assert list(table["input"]) == [str(xp)] * 3
    assert list(table["source_id"]) == list(sampled["source_id"])
    assert list(table["spectrum_index"]) == [0, 1, 2]
    assert table.colnames[:3] == ["input", "status", "source_id"]
    _labels_equal(table, estimate_parameters_xp(sampled))


def test_missing_half_gives_a_flagged_row_and_resume_keeps_the_file(tmp_path,
                                                                    monkeypatch):
    sampled = _sampled(3)
    sampled["flux"][1, 142:] = np.nan  # no RP (620 nm on)
    sampled["flux_error"][1, 142:] = np.nan
    xp = tmp_path / "xp.ecsv"
    sampled.write(xp)
    # an ordinary spectrum file beside it keeps its row as before
    one = tmp_path / "one.fits"
    spec = batch.read_spectrum(xp)[0]
    plain = batch._spectrum_class()(spectral_axis=spec.spectral_axis, flux=spec.flux,
                                    uncertainty=spec.uncertainty)
    plain.write(one, format="tabular-fits")
    out = tmp_path / "labels.ecsv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstroMLWarning)
        expected = estimate_parameters_xp(sampled)
        table = batch.estimate_parameters_batch([str(xp), str(one)], output=out)
        # as a Dask chunk runs them: both inputs in one call
        joint = batch._process_chunk("spectra", [(0, str(xp)), (1, str(one))], {})
    assert list(table["status"]) == ["ok"] * 4
    rows = table[table["input"] == str(xp)]
    assert list(rows["source_id"]) == list(sampled["source_id"])
    assert list(rows["xp_missing"]) == ["", "RP", ""]
    assert rows["ood_flag"][1] and np.isnan(rows["teff"][1].value)
    _labels_equal(rows, expected)
    assert np.isfinite(table["teff"][3].value)
    assert np.ma.is_masked(table["source_id"][3])  # not an archive file

    # the joint call gives the same rows
    assert [len(r[2]) for r in joint] == [3, 1]
    np.testing.assert_allclose(np.concatenate([r[2]["teff"].value for r in joint]),
                               table["teff"].value, rtol=1e-5, equal_nan=True)

    # resume: the archive file was done, so it is not read again
    read = []
    original = batch.read_spectrum
    monkeypatch.setattr(batch, "read_spectrum",
                        lambda path: read.append(os.path.basename(path)) or original(path))
    again = batch.estimate_parameters_batch([str(xp), str(one)], output=out, resume=True)
    assert read == [] and again.meta["batch"]["n_skipped"] == 2
    assert list(again["source_id"][:3]) == list(sampled["source_id"])


def test_xp_continuous_file(tmp_path):
    from astroml_affiliated.spectra.gaia import _import_gaiaxpy, continuous_from_sampled
    try:
        _import_gaiaxpy()
    except ImportError:
        pytest.skip("GaiaXPy is not installed")
    cont = continuous_from_sampled(_sampled(3))
    xp = tmp_path / "XP_CONTINUOUS.ecsv"
    cont.write(xp)
    out = tmp_path / "labels.ecsv"
    assert cli.main(["spectra", str(xp), "-o", str(out), "--no-progress"]) == 0
    table = QTable.read(out)
    assert list(table["source_id"]) == list(cont["source_id"])
    _labels_equal(table, estimate_parameters_xp(cont))
