"""The sessions on the front page (``docs/index.rst``, one ``.. plot::`` block per
capability) run as shown and draw their figure; the docs build runs them too."""

import re
from pathlib import Path

import pytest

INDEX = Path(__file__).parents[1] / "docs" / "index.rst"


def _sessions():
    """The code of each ``.. plot::`` block of the index page, dedented."""
    lines = INDEX.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith(".. plot::"):
            i += 1
            while i < len(lines) and re.match(r"^    :\w", lines[i]):  # options
                i += 1
            code = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                code.append(lines[i][4:])
                i += 1
            blocks.append("\n".join(code).strip() + "\n")
        else:
            i += 1
    return blocks


SESSIONS = _sessions()


def test_the_index_has_a_session_per_capability():
    assert len(SESSIONS) == 4
    for session, name in zip(SESSIONS, ("flares", "imagediff", "spectra", "batch")):
        assert f"astroml_affiliated.{name}" in session


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SESSIONS)),
                         ids=["flares", "imagediff", "spectra", "batch"][:len(SESSIONS)])
def test_index_session_runs_and_draws(index, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib").use("Agg")
    plt = pytest.importorskip("matplotlib.pyplot")
    pytest.importorskip("lightkurve")
    monkeypatch.chdir(tmp_path)  # as the plot directive does, in a folder of its own
    plt.close("all")
    exec(compile(SESSIONS[index], f"index.rst session {index + 1}", "exec"), {})
    figures = [plt.figure(n) for n in plt.get_fignums()]
    try:
        assert figures and any(ax.has_data() for fig in figures for ax in fig.axes)
    finally:
        plt.close("all")
