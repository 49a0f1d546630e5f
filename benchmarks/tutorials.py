"""How long each tutorial notebook (``docs/tutorials/*.md``) takes in a Jupyter kernel.

Each notebook runs top to bottom in a fresh ``python3`` kernel, as the test suite
(``tests/test_notebooks.py``) and the docs build run it. Per notebook: wall-clock
seconds, and CPU seconds of the kernel and the processes it started (Dask workers
included), which depend less on what else the machine is doing. The 1-minute load
average before and after each run is recorded beside them: the target (under about 60 s
each on 2 cores) is for an otherwise idle machine.

    python benchmarks/tutorials.py [NAME ...]     # default: every tutorial

Writes ``benchmarks/results/tutorials.json``.
"""

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(path):
    import jupytext
    import nbclient

    notebook = jupytext.read(path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": "/tmp"}}).execute()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"notebook": path.name, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load_1min_before": round(load_before, 2),
            "load_1min_after": round(os.getloadavg()[0], 2)}


def main(names):
    paths = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
    if names:
        paths = [p for p in paths if p.stem in names]
    rows = []
    for path in paths:
        rows.append(run(path))
        print(rows[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "tutorials.json"
    out.write_text(json.dumps({"machine": f"{platform.node()}, {os.cpu_count()} CPUs",
                               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "notebooks": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
