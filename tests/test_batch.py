"""Batch runs and the command line: every input accounted for, resume, atomic writes.

The files are generated here (synthetic TESS-like light curves written as SPOC-style
FITS, specutils spectra written as FITS tables); nothing is downloaded.
"""

import os

import numpy as np
import pytest

from astroml_affiliated import batch, cli, weights
from astroml_affiliated.errors import InputError

lk = pytest.importorskip("lightkurve")


def _registered(name):
    return name in weights.list_models() and all(
        state == "ok" for state in weights.verify(name).values())


needs_flares = pytest.mark.skipif(not _registered("flares-cnn"),
                                  reason="flare model weights not available")
needs_spectra = pytest.mark.skipif(not _registered("gaiaxp-labels"),
                                   reason="spectrum model weights not available")


# -- generated inputs ------------------------------------------------------------------

def _lightcurve(seed, n=720, n_flares=1):
    """A 1-day, 2-min TESS-like light curve with rotation, noise and flares."""
    import astropy.units as u
    from astropy.time import Time

    from astroml_affiliated.flares.core import flare_template

    rng = np.random.default_rng(seed)
    t = 2000.0 + np.arange(n) * 2.0 / 1440
    f = 1000 * (1 + 0.01 * np.sin(2 * np.pi * t / 1.7 + seed)) + rng.normal(0, 1, n)
    for tp in rng.uniform(t[60], t[-120], n_flares):
        f += 1000 * flare_template(t, tp, 8 / 1440, 0.03, exptime=2 / 1440)
    lc = lk.TessLightCurve(time=Time(t, format="btjd", scale="tdb"),
                           flux=f * u.electron / u.s,
                           flux_err=np.ones(n) * u.electron / u.s)
    lc.meta.update(TICID=1000 + seed, SECTOR=7)
    return lc


@pytest.fixture(scope="module")
def lc_dir(tmp_path_factory):
    """9 light curves (one without flares) and 1 corrupt file."""
    d = tmp_path_factory.mktemp("lcs")
    for i in range(9):
        batch.write_lightcurve_fits(_lightcurve(i, n_flares=0 if i == 4 else 1),
                                    d / f"lc{i}.fits")
    (d / "lc9.fits").write_bytes(b"SIMPLE  = this is not a FITS file" * 90)
    return d


def _paths(d, n=10):
    return [str(d / f"lc{i}.fits") for i in range(n)]


def _per_input(table):
    """{input: set of statuses}."""
    out = {}
    for p, s in zip(table["input"], table["status"]):
        out.setdefault(str(p), set()).add(str(s))
    return out


# -- inputs ---------------------------------------------------------------------------------

def test_expand_inputs_globs_lists_and_duplicates(tmp_path):
    for name in ("a.fits", "b.fits", "c.txt"):
        (tmp_path / name).write_text("x")
    listfile = tmp_path / "list.txt"
    listfile.write_text(f"# my files\n{tmp_path / 'c.txt'}\n\n{tmp_path / 'a.fits'}\n")
    got = batch.expand_inputs([str(tmp_path / "*.fits"), "@" + str(listfile)])
    assert got == [str(tmp_path / "a.fits"), str(tmp_path / "b.fits"),
                   str(tmp_path / "c.txt")]
    with pytest.raises(InputError, match="no files match"):
        batch.expand_inputs([str(tmp_path / "*.nothing")])
    with pytest.raises(InputError, match="file list"):
        batch.expand_inputs(["@" + str(tmp_path / "missing.txt")])
    with pytest.raises(InputError, match="no inputs"):
        batch.expand_inputs([])


def test_bad_arguments_are_input_errors(tmp_path, lc_dir):
    with pytest.raises(InputError, match="unknown option"):
        batch.find_flares_batch(_paths(lc_dir, 1), thresold=0.5)
    with pytest.raises(InputError, match="table format"):
        batch.find_flares_batch(_paths(lc_dir, 1), output=tmp_path / "out.unknown")
    with pytest.raises(InputError, match="needs an output"):
        batch.find_flares_batch(_paths(lc_dir, 1), resume=True)
    with pytest.raises(InputError, match="either client or n_workers"):
        batch.find_flares_batch(_paths(lc_dir, 1), client="tcp://x:1", n_workers=1)
    (tmp_path / "old.csv").write_text("input,status\nx,ok\n")
    with pytest.raises(InputError, match="cannot resume.*ecsv"):
        batch.find_flares_batch(_paths(lc_dir, 1), output=tmp_path / "old.csv", resume=True)
    (tmp_path / "other.ecsv").write_text("# %ECSV 1.0\n# ---\n# datatype:\n"
                                         "# - {name: a, datatype: int64}\na\n1\n")
    with pytest.raises(InputError, match="not written by a batch run"):
        batch.find_flares_batch(_paths(lc_dir, 1), output=tmp_path / "other.ecsv",
                                resume=True)


def test_run_wide_errors_stop_before_any_input(tmp_path, capsys):
    """A device or model that does not exist, or a chunk size below 1, stop the run
    (exit 1, no output) instead of giving every input an error row (or, for a negative
    chunk size on a cluster, processing none and reporting success)."""
    inputs = [str(tmp_path / "a.fits"), str(tmp_path / "b.fits")]
    out = tmp_path / "out.ecsv"
    for args, message in ((["--device", "nonsense"], "device must be"),
                          (["--model", "no-such-model"], "unknown model"),
                          (["--workers", "1", "--chunk-size", "-1"], "chunk_size")):
        assert cli.main(["flares", *inputs, "-o", str(out), "--no-progress",
                         *args]) == 1, args
        err = capsys.readouterr().err
        assert err.startswith("astroml-affiliated: error:") and message in err, err
        assert not out.exists()
    with pytest.raises(InputError, match="chunk_size"):
        batch.find_flares_batch(inputs, chunk_size=0)
    with pytest.raises(InputError, match="device"):
        batch.estimate_parameters_batch(inputs, device="tpu")


# -- atomic writes ------------------------------------------------------------------------

def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from astropy.table import QTable

    table = QTable({"input": ["a"], "status": ["ok"], "x": [1.0]})
    out = tmp_path / "out.ecsv"

    def half_write(self, path, **kwargs):
        with open(path, "w") as fh:
            fh.write("# %ECSV 1.0\n# half a fi")
        raise KeyboardInterrupt

    monkeypatch.setattr(QTable, "write", half_write)
    with pytest.raises(KeyboardInterrupt):
        batch.write_table_atomic(table, out)
    assert os.listdir(tmp_path) == []  # neither the output nor a temporary file

    monkeypatch.undo()
    batch.write_table_atomic(table, out)
    before = out.read_text()
    monkeypatch.setattr(QTable, "write", half_write)
    with pytest.raises(KeyboardInterrupt):
        batch.write_table_atomic(table[:0], out)
    assert out.read_text() == before  # the previous complete file is untouched
    assert os.listdir(tmp_path) == ["out.ecsv"]


# -- flares -------------------------------------------------------------------------------------

@needs_flares
def test_corrupt_file_gives_one_error_row(lc_dir):
    table = batch.find_flares_batch(_paths(lc_dir))
    per_input = _per_input(table)
    assert list(per_input) == _paths(lc_dir)  # every input, in order
    errors = table[table["status"] == "error"]
    assert len(errors) == 1 and errors["input"][0] == str(lc_dir / "lc9.fits")
    assert errors["error"][0].startswith("LightkurveError") and "\n" not in errors["error"][0]
    done = {p: s for p, s in per_input.items() if s != {"error"}}
    assert len(done) == 9 and all(s <= {"ok", "empty"} for s in done.values())
    assert per_input[str(lc_dir / "lc4.fits")] == {"empty"}  # the one without flares
    ok = table[table["status"] == "ok"]
    assert len(ok) >= 8 and np.all(ok["prob"] >= 0.5)
    assert set(ok["target"]) <= {str(1000 + i) for i in range(9)}
    assert table.meta["model"] == "flares-cnn"
    batch_meta = table.meta["batch"]
    assert (batch_meta["n_inputs"], batch_meta["n_error"], batch_meta["complete"]) == \
        (10, 1, True)
    assert batch_meta["n_ok"] + batch_meta["n_empty"] == 9


@needs_flares
def test_cli_flares_end_to_end(lc_dir, tmp_path, capsys):
    from astropy.table import QTable

    listfile = tmp_path / "files.txt"
    listfile.write_text("\n".join(_paths(lc_dir, 5)) + "\n")
    out = tmp_path / "flares.ecsv"
    rc = cli.main(["flares", "@" + str(listfile), str(lc_dir / "lc[5-8].fits"),
                   "-o", str(out), "--threshold", "0.5", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "9 input(s)" in capsys.readouterr().out
    table = QTable.read(out)
    assert list(_per_input(table)) == _paths(lc_dir, 9)
    assert table.meta["batch"]["options"] == {"threshold": 0.5}
    assert table["ed"].unit == "s"
    assert [f for f in os.listdir(tmp_path) if "partial" in f] == []

    # with the corrupt file: the output is written, the exit status says some failed
    rc = cli.main(["flares", str(lc_dir / "*.fits"), "-o", str(out), "--overwrite",
                   "--no-progress"])
    captured = capsys.readouterr()
    assert rc == cli.EXIT_SOME_FAILED
    assert "lc9.fits" in captured.err and "Traceback" not in captured.err
    assert len(_per_input(QTable.read(out))) == 10


def test_cli_errors_are_one_line(lc_dir, tmp_path, capsys):
    out = tmp_path / "x.ecsv"
    assert cli.main(["flares", str(tmp_path / "*.nope"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("astroml-affiliated: error: no files match") and \
        err.count("\n") == 1
    out.write_text("something")
    assert cli.main(["flares", *_paths(lc_dir, 1), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "exists" in err and "--resume" in err and err.count("\n") == 1
    assert out.read_text() == "something"


@needs_flares
def test_resume_skips_done_inputs(lc_dir, tmp_path, monkeypatch, capsys):
    from astropy.table import QTable

    out = tmp_path / "flares.ecsv"
    first = batch.find_flares_batch(_paths(lc_dir, 4) + _paths(lc_dir)[9:], output=out)
    assert first.meta["batch"]["n_error"] == 1

    read = []
    original = batch.read_lightcurve

    def counting_reader(path):
        read.append(os.path.basename(path))
        return original(path)

    monkeypatch.setattr(batch, "read_lightcurve", counting_reader)
    rc = cli.main(["flares", str(lc_dir / "*.fits"), "-o", str(out), "--resume",
                   "--no-progress"])
    assert rc == cli.EXIT_SOME_FAILED
    # lc0-lc3 were done; lc9 failed before and is tried again
    assert sorted(read) == [f"lc{i}.fits" for i in range(4, 10)]
    assert "4 done before (resumed)" in capsys.readouterr().out
    table = QTable.read(out)
    assert list(_per_input(table)) == _paths(lc_dir)  # the order of the inputs
    assert table.meta["batch"]["n_skipped"] == 4 and table.meta["batch"]["complete"]
    full = batch.find_flares_batch(_paths(lc_dir))
    assert len(table) == len(full)
    assert np.allclose(table["tpeak"].jd[table["status"] == "ok"],
                       full["tpeak"].jd[full["status"] == "ok"])

    # resuming with other model options is refused
    with pytest.raises(InputError, match="options"):
        batch.find_flares_batch(_paths(lc_dir), output=out, resume=True, threshold=0.9)


@needs_flares
def test_interrupted_run_keeps_what_was_done(lc_dir, tmp_path, monkeypatch):
    from astropy.table import QTable

    out = tmp_path / "flares.ecsv"
    original = batch.read_lightcurve

    def reader(path):
        if path.endswith("lc5.fits"):
            raise KeyboardInterrupt
        return original(path)

    monkeypatch.setattr(batch, "read_lightcurve", reader)
    with pytest.raises(batch.BatchInterrupted, match="resume"):
        batch.find_flares_batch(_paths(lc_dir, 9), output=out)
    saved = QTable.read(out)
    assert list(_per_input(saved)) == _paths(lc_dir, 5)
    assert saved.meta["batch"]["complete"] is False
    monkeypatch.undo()
    table = batch.find_flares_batch(_paths(lc_dir, 9), output=out, resume=True)
    assert table.meta["batch"]["n_skipped"] == 5
    assert list(_per_input(table)) == _paths(lc_dir, 9)


def _assert_same_table(a, b):
    assert a.colnames == b.colnames and len(a) == len(b)
    for name in a.colnames:
        x, y = a[name], b[name]
        if hasattr(x, "jd"):
            x, y = x.jd, y.jd
        x = np.ma.filled(np.ma.asarray(getattr(x, "value", x)), 0)
        y = np.ma.filled(np.ma.asarray(getattr(y, "value", y)), 0)
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            assert np.array_equal(x, y), name


@needs_flares  # starting 2 worker processes with TensorFlow: 15-40 s on 2 busy cores
def test_local_cluster_gives_the_serial_table(lc_dir):
    pytest.importorskip("distributed")
    serial = batch.find_flares_batch(_paths(lc_dir))
    # chunks of 2 mix result rows with 'empty' and 'error' rows (lc4, lc9)
    parallel = batch.find_flares_batch(_paths(lc_dir), n_workers=2, chunk_size=2)
    assert parallel.meta["batch"]["workers"] == 2
    _assert_same_table(serial, parallel)
    for key in ("model", "version", "sha256", "threshold"):
        assert serial.meta[key] == parallel.meta[key]


# -- spectra --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def spectrum_dir(tmp_path_factory):
    """3 files of Gaia-XP-like spectra (spec1 holds 2) and 1 that is not a spectrum."""
    import astropy.units as u
    from astropy.nddata import StdDevUncertainty

    cls = batch._spectrum_class()
    d = tmp_path_factory.mktemp("spectra")
    wave = np.arange(3360.0, 10201.0, 20.0) * u.AA
    rng = np.random.default_rng(3)
    lam = wave.to_value(u.m)
    for i in range(3):
        # a blackbody with broad absorption features (Ca II, G band, Hbeta, Mg b, Na D,
        # Halpha, TiO, Ca triplet)
        teff = 4500.0 + 700.0 * i
        base = lam ** -5 / np.expm1(1.4388e-2 / (lam * teff))
        base = 1e-16 * base / base.max()
        for centre, width in [(3934, 60), (4300, 80), (4861, 50), (5175, 60), (5890, 40),
                              (6563, 50), (7100, 150), (8540, 60), (8662, 60)]:
            base = base * (1 - 0.3 * np.exp(-0.5 * ((wave.value - centre) / width) ** 2))
        shape = (2, wave.size) if i == 1 else (wave.size,)
        flux = base * (1 + 0.01 * rng.normal(size=shape))
        spec = cls(spectral_axis=wave, flux=flux * u.Unit("W m-2 nm-1"),
                   uncertainty=StdDevUncertainty(0.01 * flux * u.Unit("W m-2 nm-1")))
        spec.write(d / f"spec{i}.fits", format="tabular-fits")
    (d / "spec3.fits").write_text("not a spectrum")
    return d


@needs_spectra
def test_cli_spectra_end_to_end(spectrum_dir, tmp_path, capsys):
    from astropy.table import QTable

    out = tmp_path / "params.ecsv"
    rc = cli.main(["spectra", str(spectrum_dir / "*.fits"), "-o", str(out),
                   "--no-progress"])
    assert rc == cli.EXIT_SOME_FAILED  # spec3 is not a spectrum
    table = QTable.read(out)
    per_input = _per_input(table)
    assert list(per_input) == [str(spectrum_dir / f"spec{i}.fits") for i in range(4)]
    assert per_input[str(spectrum_dir / "spec3.fits")] == {"error"}
    ok = table[table["status"] == "ok"]
    assert len(ok) == 4 and ok["teff"].unit == "K"
    # the batch gives what estimate_parameters gives on each file
    from astroml_affiliated.spectra import estimate_parameters

    direct = [estimate_parameters(batch.read_spectrum(spectrum_dir / f"spec{i}.fits"))
              for i in range(3)]
    for name in ("teff", "logg", "fe_h", "ood_score"):
        expected = np.concatenate([np.asarray(getattr(d[name], "value", d[name]))
                                   for d in direct])
        got = np.asarray(getattr(ok[name], "value", ok[name]))
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=name)
    assert list(ok["spectrum_index"]) == [0, 0, 1, 0]  # spec1 holds two spectra
    assert "Traceback" not in capsys.readouterr().err
    assert table.meta["model"] == "gaiaxp-labels"


    # a chunk's spectra go through the model in one call: same labels, same split
    items = [(i, str(spectrum_dir / f"spec{i}.fits")) for i in range(3)]
    joint = batch._process_chunk("spectra", items, {})
    assert [len(r[2]) for r in joint] == [1, 2, 1]
    teff = np.concatenate([r[2]["teff"].value for r in joint])
    np.testing.assert_allclose(teff, ok["teff"].value, rtol=1e-4)


# -- image differencing ---------------------------------------------------------------------

needs_imagediff = pytest.mark.skipif(
    not _registered("imagediff-transinet-slim"),
    reason="image-differencing model weights not available")

#: Generated pairs: 128x128, a new 5,000-electron source at the centre (pair 2: none),
#: pair 3's science file is corrupt.
_CENTRE = 63.5


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory):
    from astroml_affiliated.imagediff.demo import synthetic_pair

    d = tmp_path_factory.mktemp("pairs")
    for i in range(4):
        science, reference, _ = synthetic_pair(
            shape=(128, 128), n_stars=40, seed=20 + i,
            transients=[] if i == 2 else None)
        science.write(d / f"sci{i}.fits")
        reference.write(d / f"ref{i}.fits")
    (d / "sci3.fits").write_bytes(b"SIMPLE  = this is not a FITS file" * 90)
    # a copy of pair 0 without BUNIT
    from astropy.io import fits

    fits.writeto(d / "nounit.fits", fits.getdata(d / "sci0.fits"))
    return d


def _pairs(d, n=4):
    return [(str(d / f"sci{i}.fits"), str(d / f"ref{i}.fits")) for i in range(n)]


def _per_pair(table):
    out = {}
    for s, r, st in zip(table["science"], table["reference"], table["status"]):
        out.setdefault((str(s), str(r)), set()).add(str(st))
    return out


def test_expand_pairs(tmp_path):
    listfile = tmp_path / "pairs.txt"
    listfile.write_text("# science reference\na.fits  b.fits\n\nc.fits\td.fits\n"
                        "a.fits b.fits\n")
    assert batch.expand_pairs(str(listfile)) == [("a.fits", "b.fits"), ("c.fits", "d.fits")]
    assert batch.expand_pairs("@" + str(listfile)) == batch.expand_pairs(listfile)
    listfile.write_text("a.fits b.fits\nc.fits\n")
    with pytest.raises(InputError, match="line 2: expected two paths"):
        batch.expand_pairs(listfile)
    with pytest.raises(InputError, match="cannot read the file of pairs"):
        batch.expand_pairs(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="not a .science, reference. pair"):
        batch.expand_pairs([("a.fits", "b.fits", "c.fits")])
    with pytest.raises(InputError, match="no image pairs"):
        batch.expand_pairs([])
    # two pairs whose difference images would overwrite each other
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="would both write"):
        batch.difference_batch([("a.fits", "b.fits"), (str(tmp_path / "x" / "a.fits"),
                                                        "b.fits")], outdir=tmp_path / "d")
    with pytest.raises(InputError, match="unknown option"):
        batch.difference_batch([("a.fits", "b.fits")], flux_scal=1)


@needs_imagediff
def test_cli_diff_one_pair_end_to_end(pair_dir, tmp_path, capsys):
    from astropy.nddata import CCDData
    from astropy.table import QTable

    out, transients = tmp_path / "diff.fits", tmp_path / "t.ecsv"
    rc = cli.main(["diff", str(pair_dir / "sci0.fits"), str(pair_dir / "ref0.fits"),
                   "-o", str(out), "--transients", str(transients), "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    assert "1 transient(s)" in capsys.readouterr().out
    diff = CCDData.read(out)
    assert diff.unit == "electron" and diff.shape == (128, 128)
    assert diff.mask is not None and diff.uncertainty is not None
    table = QTable.read(transients)
    assert len(table) == 1 and table["sign"][0] == 1
    assert np.hypot(table["x"][0] - _CENTRE, table["y"][0] - _CENTRE) < 1.5
    assert sorted(os.listdir(tmp_path)) == ["diff.fits", "t.ecsv"]  # no partial file

    # errors: one line, no traceback, outputs left alone
    before = out.read_bytes()
    assert cli.main(["diff", str(pair_dir / "sci0.fits"), str(pair_dir / "ref0.fits"),
                     "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and err.count("\n") == 1
    assert cli.main(["diff", str(pair_dir / "nounit.fits"), str(pair_dir / "ref0.fits"),
                     "-o", str(tmp_path / "n.fits")]) == 1
    err = capsys.readouterr().err
    assert "no unit" in err and "--unit" in err and err.count("\n") == 1
    assert cli.main(["diff", str(pair_dir / "sci3.fits"), str(pair_dir / "ref3.fits"),
                     "-o", str(tmp_path / "c.fits")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("astroml-affiliated: error: cannot read") and \
        err.count("\n") == 1 and "Traceback" not in err
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["diff.fits", "t.ecsv"]

    # a file without BUNIT, with --unit
    rc = cli.main(["diff", str(pair_dir / "nounit.fits"), str(pair_dir / "ref0.fits"),
                   "-o", str(tmp_path / "n.fits"), "--unit", "electron", "--device", "cpu"])
    assert rc == 0 and CCDData.read(tmp_path / "n.fits").unit == "electron"


@needs_imagediff
def test_difference_batch_corrupt_pair_gives_one_error_row(pair_dir, tmp_path):
    from astropy.nddata import CCDData

    table = batch.difference_batch(_pairs(pair_dir), outdir=tmp_path / "diffs",
                                   device="cpu")
    per_pair = _per_pair(table)
    assert list(per_pair) == _pairs(pair_dir)  # every pair, in order
    assert per_pair[_pairs(pair_dir)[3]] == {"error"}
    assert [s for p, s in per_pair.items() if s != {"error"}] == [{"ok"}, {"ok"}, {"empty"}]
    errors = table[table["status"] == "error"]
    assert len(errors) == 1 and errors["error"][0].startswith("InputError: cannot read")
    assert errors["diff_file"][0] == ""
    ok = table[table["status"] == "ok"]
    assert len(ok) == 2
    assert np.all(np.hypot(ok["x"] - _CENTRE, ok["y"] - _CENTRE) < 1.5)
    assert ok["ra"].unit == "deg" and ok["flux"].unit == "electron"
    files = sorted(os.listdir(tmp_path / "diffs"))
    assert files == [f"sci{i}-minus-ref{i}.fits" for i in range(3)]
    done = table[table["status"] != "error"]
    assert all(os.path.exists(f) for f in done["diff_file"])
    assert CCDData.read(done["diff_file"][0]).shape == (128, 128)
    assert table.meta["model"] == "imagediff-transinet-slim"
    info = table.meta["batch"]
    assert (info["task"], info["n_inputs"], info["n_ok"], info["n_empty"],
            info["n_error"]) == ("diff", 4, 2, 1, 1)


@needs_imagediff
def test_cli_diff_pairs_resume_skips_done_pairs(pair_dir, tmp_path, monkeypatch, capsys):
    from astropy.table import QTable

    out, outdir = tmp_path / "transients.ecsv", tmp_path / "diffs"
    first = batch.difference_batch(_pairs(pair_dir, 2), output=out, outdir=outdir,
                                   device="cpu")
    assert first.meta["batch"]["n_error"] == 0
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("".join(f"{s} {r}\n" for s, r in _pairs(pair_dir)))

    read = []
    original = batch.read_image

    def counting_reader(path, **kwargs):
        read.append(os.path.basename(path))
        return original(path, **kwargs)

    monkeypatch.setattr(batch, "read_image", counting_reader)
    rc = cli.main(["diff", "--pairs", str(pairs_file), "-o", str(out), "--outdir",
                   str(outdir), "--resume", "--device", "cpu", "--threshold", "5",
                   "--no-progress"])
    assert rc == cli.EXIT_SOME_FAILED  # pair 3 is corrupt
    captured = capsys.readouterr()
    assert "2 done before (resumed)" in captured.out and "sci3.fits" in captured.err
    # pairs 0 and 1 were done; pair 2 is new, pair 3 fails on its science file
    assert read == ["sci2.fits", "ref2.fits", "sci3.fits"]
    table = QTable.read(out)
    assert list(_per_pair(table)) == _pairs(pair_dir)
    assert table.meta["batch"]["n_skipped"] == 2 and table.meta["batch"]["complete"]

    # a pair whose difference image was deleted is done again
    (outdir / "sci1-minus-ref1.fits").unlink()
    read.clear()
    table = batch.difference_batch(pairs_file, output=out, outdir=outdir, resume=True,
                                   device="cpu", threshold=5.0)
    assert read == ["sci1.fits", "ref1.fits", "sci3.fits"]
    assert table.meta["batch"]["n_skipped"] == 2
    assert list(_per_pair(table)) == _pairs(pair_dir)
    assert sorted(os.listdir(outdir)) == [f"sci{i}-minus-ref{i}.fits" for i in range(3)]
    assert [f for f in os.listdir(tmp_path) if "partial" in f] == []

    # other options are refused on resume
    with pytest.raises(InputError, match="options"):
        batch.difference_batch(_pairs(pair_dir), output=out, outdir=outdir, resume=True,
                               device="cpu", threshold=8)


@needs_imagediff
def test_difference_batch_leaves_in_memory_images_alone():
    from astroml_affiliated.imagediff.demo import synthetic_pair

    science, reference, _ = synthetic_pair(shape=(128, 128), n_stars=40, seed=20)
    data, ref_data = science.data.copy(), reference.data.copy()
    table = batch.difference_batch([(science, reference)], device="cpu")
    assert list(table["status"]) == ["ok"] and table["input"][0].startswith("<CCDData")
    assert table["diff_file"][0] == ""
    assert np.array_equal(science.data, data) and np.array_equal(reference.data, ref_data)
