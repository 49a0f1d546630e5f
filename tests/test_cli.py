import subprocess
import sys

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
