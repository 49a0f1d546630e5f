import subprocess
import sys

import numpy as np
import pytest

from astroml_affiliated import cli


def test_weights_list_and_path(capsys):
    assert cli.main(["weights", "path"]) == 0
    assert capsys.readouterr().out.strip()
    assert cli.main(["weights", "list"]) == 0


def test_unknown_model_is_one_line_error(capsys):
    assert cli.main(["weights", "fetch", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("astroml-affiliated: error:") and "no-such-model" in err
    assert "Traceback" not in err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "astroml_affiliated.cli", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip()


# -- spectra --photometry ----------------------------------------------------------------

PHOT_MODEL = "gaiaxp-labels-phot"
#: A G dwarf's magnitudes (Gaia DR3 G, BP, RP; 2MASS J, H, Ks).
STAR = {"G": 12.0, "BP": 12.4, "RP": 11.45, "J": 10.9, "H": 10.55, "K": 10.5}


def _phot_weights_available():
    from astroml_affiliated import weights

    return PHOT_MODEL in weights.list_models() and all(
        state == "ok" for state in weights.verify(PHOT_MODEL).values())


needs_phot = pytest.mark.skipif(not _phot_weights_available(),
                                reason=f"{PHOT_MODEL} weights not available")


@pytest.fixture(scope="module")
def xp_dir(tmp_path_factory):
    """spec0.fits, spec1.fits: one synthetic XP spectrum each; pair.fits: two."""
    pytest.importorskip("specutils")
    from astroml_affiliated.spectra.demo import synthetic_spectra

    spec, _ = synthetic_spectra(n=3, seed=5)
    d = tmp_path_factory.mktemp("xp")
    spec[0].write(d / "spec0.fits", format="tabular-fits")
    spec[1].write(d / "spec1.fits", format="tabular-fits")
    spec[1:3].write(d / "pair.fits", format="tabular-fits")
    return d


def _phot_table(path, files, **changes):
    """Write a photometry table with one row per name in ``files`` (magnitudes of
    `STAR`, shifted by 0.1 mag per row); ``changes``: band -> column of values."""
    from astropy.table import Table

    table = Table({"file": files})
    for band, mag in STAR.items():
        table[band] = np.array([mag + 0.1 * i for i in range(len(files))])
    for band, values in changes.items():
        if values is None:
            table.remove_column(band)
        else:
            table[band] = values
    table.write(path)
    return str(path)


@needs_phot
def test_cli_spectra_photometry_uses_the_photometry_model(xp_dir, tmp_path, capsys):
    from astropy.table import QTable

    from astroml_affiliated import batch
    from astroml_affiliated.spectra import estimate_parameters

    files = [str(xp_dir / "spec0.fits"), str(xp_dir / "spec1.fits")]
    # rows match by file name (the directory is ignored); rows of other files are ignored
    phot = _phot_table(tmp_path / "phot.csv", ["elsewhere/spec1.fits", "other.fits",
                                               "spec0.fits"])
    plain, with_phot = tmp_path / "plain.ecsv", tmp_path / "phot.ecsv"
    assert cli.main(["spectra", *files, "-o", str(plain), "--no-progress"]) == 0
    assert cli.main(["spectra", *files, "-o", str(with_phot), "--no-progress",
                     "--photometry", phot]) == 0
    assert "Traceback" not in capsys.readouterr().err
    a, b = QTable.read(plain), QTable.read(with_phot)
    assert a.meta["model"] == "gaiaxp-labels" and a.meta["photometry"] is False
    assert b.meta["model"] == PHOT_MODEL and b.meta["photometry"] is True
    assert a.meta["batch"]["options"] == {}
    assert b.meta["batch"]["options"] == {"photometry": phot}
    assert a.colnames == b.colnames and list(b["status"]) == ["ok", "ok"]
    assert np.all(np.abs(a["teff"].value - b["teff"].value) > 1e-3)
    # each file got its own row's magnitudes: spec0 the third row, spec1 the first
    mags = [{k: v + 0.2 for k, v in STAR.items()}, STAR]
    for i, (path, m) in enumerate(zip(files, mags)):
        direct = estimate_parameters(batch.read_spectrum(path), photometry=m)
        for name in ("teff", "logg", "fe_h", "alpha_m", "ood_score"):
            np.testing.assert_allclose(np.asarray(getattr(b[name], "value", b[name]))[i],
                                       np.asarray(getattr(direct[name], "value",
                                                          direct[name]))[0],
                                       rtol=1e-5, err_msg=name)
    # a chunk's spectra go through the model in one call, each with its magnitudes
    joint = batch._process_chunk("spectra", list(enumerate(files)),
                                 {"photometry": dict(enumerate(mags))})
    np.testing.assert_allclose([r[2]["teff"].value[0] for r in joint], b["teff"].value,
                               rtol=1e-4)
    # a file of several spectra, or a star without a magnitude: an error row each
    out = tmp_path / "bad.ecsv"
    phot = _phot_table(tmp_path / "bad.ecsv.phot.ecsv", ["spec0.fits", "spec1.fits",
                                                         "pair.fits"],
                       H=np.array([10.5, np.nan, 10.7]))
    rc = cli.main(["spectra", *files, str(xp_dir / "pair.fits"), "-o", str(out),
                   "--no-progress", "--photometry", phot])
    assert rc == cli.EXIT_SOME_FAILED
    t = QTable.read(out)
    assert list(t["status"]) == ["ok", "error", "error"]
    assert "'H'" in t["error"][1] and "not finite" in t["error"][1]
    assert "holds 2 spectra" in t["error"][2]


def test_cli_spectra_photometry_errors(tmp_path, capsys):
    files = [str(tmp_path / "a.fits"), str(tmp_path / "b.fits")]
    out = tmp_path / "out.ecsv"

    def error(phot, inputs=files):
        assert cli.main(["spectra", *inputs, "-o", str(out), "--no-progress",
                         "--photometry", phot]) == 1
        err = capsys.readouterr().err
        assert err.startswith("astroml-affiliated: error:") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1 and not out.exists()
        return err

    # a spectrum file without a row: named, before any spectrum is read
    err = error(_phot_table(tmp_path / "p1.ecsv", ["a.fits", "c.fits"]))
    assert "no row for 1 of 2" in err and "b.fits" in err
    # two rows for one file
    err = error(_phot_table(tmp_path / "p2.ecsv", ["a.fits", "b.fits", "x/a.fits"]))
    assert "two rows for a.fits" in err
    # a magnitude column or the file column missing
    err = error(_phot_table(tmp_path / "p3.ecsv", ["a.fits", "b.fits"], J=None))
    assert "'J'" in err
    err = error(_phot_table(tmp_path / "p4.ecsv", ["a.fits", "b.fits"], file=None))
    assert "'file'" in err
    # a column that is not a magnitude, a table that cannot be read
    import astropy.units as u

    err = error(_phot_table(tmp_path / "p5.ecsv", ["a.fits", "b.fits"],
                            G=[1.0, 2.0] * u.Jy))
    assert "not in magnitudes" in err
    assert "cannot read" in error(str(tmp_path / "nope.ecsv"))
    # two inputs with the same file name cannot be told apart
    (tmp_path / "d").mkdir()
    err = error(_phot_table(tmp_path / "p6.ecsv", ["a.fits", "b.fits"]),
                files + [str(tmp_path / "d" / "a.fits")])
    assert "same file name" in err


def test_weights_list_and_path_check_model_names(capsys):
    assert cli.main(["weights", "list", "flares-cnn"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flares-cnn ") and len(out.strip().splitlines()) == 1
    assert cli.main(["weights", "list", "no-such-model"]) == 1
    assert "no-such-model" in capsys.readouterr().err
    assert cli.main(["weights", "path", "flares-cnn"]) == 1
    assert "no model names" in capsys.readouterr().err
    with pytest.raises(Exception, match="no-such-model"):  # --debug after the command
        cli.main(["weights", "verify", "no-such-model", "--debug"])


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_workers_below_one_refused(tmp_path, capsys, workers):
    """--workers 0 used to run serially in this process without a word."""
    lc = tmp_path / "missing.fits"
    assert cli.main(["flares", str(lc), "--workers", workers,
                     "--output", str(tmp_path / "out.ecsv")]) == 1
    err = capsys.readouterr().err
    assert "--workers must be 1 or more" in err
    assert not (tmp_path / "out.ecsv").exists()
