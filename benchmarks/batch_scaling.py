"""Batch scaling of the flare finder: a serial loop against 1 and 2 local Dask workers.

Generates 200 synthetic TESS 2-minute light curves with the flare demo's generator
(`astroml_affiliated.flares.demo.synthetic_lightcurve`: a spotted M dwarf, red and white
noise, a 1-day gap, 12 flares) stretched to a full 27.4-day sector, writes them as
SPOC-style FITS files, and times

* ``loop``: ``for path in paths: find_flares(read_lightcurve(path))`` in this process;
* ``batch serial``: `astroml_affiliated.batch.find_flares_batch` without a cluster;
* ``dask 1 worker`` and ``dask 2 workers``: the same on a `LocalCluster` of worker
  processes with one thread each.

Every mode is warmed up first (TensorFlow imported and the model loaded in every
process), so the rates are steady-state throughputs; the start-up cost of each mode is
reported separately. The measured rates are extrapolated to a TESS sector (20,000 light
curves) and to a cluster. Results go to ``docs/batch_benchmark.inc`` (included by
``docs/batch.rst``) and ``benchmarks/results/batch_scaling.json``.

Image pairs (issue 6 asks for 50): there is no image-differencing model in the
package yet, so that part is not run.

Usage::

    python benchmarks/batch_scaling.py [DATA_DIR] [--n 200] [--out-dir docs]

``DATA_DIR`` (``make benchmarks`` passes ``../shared/data``) is not used: the light
curves are generated.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
TESS_SECTOR_LCS = 20_000
#: Cadences of a 27.4-day sector at 2 minutes (the generator leaves a 1-day gap).
SECTOR_CADENCES = 19_700


def generate(directory, n, seed=42):
    """Write ``n`` synthetic one-sector light curves (the flare demo's generator)."""
    from astroml_affiliated.batch import write_lightcurve_fits
    from astroml_affiliated.flares.demo import synthetic_lightcurve

    paths = []
    for i in range(n):
        lc, _ = synthetic_lightcurve(seed=seed + i, n=SECTOR_CADENCES)
        lc.meta.update(TICID=100_000 + i, SECTOR=1)
        path = Path(directory) / f"tic{100_000 + i}_s0001.fits"
        write_lightcurve_fits(lc, path)
        paths.append(str(path))
    return paths


def _time_loop(paths):
    from astroml_affiliated.batch import read_lightcurve
    from astroml_affiliated.flares import find_flares

    t0 = time.perf_counter()
    find_flares(read_lightcurve(paths[0]))  # warm-up: TensorFlow and the model
    startup = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    n_flares = sum(len(find_flares(read_lightcurve(p))) for p in paths)
    return startup, time.perf_counter() - t0, time.process_time() - c0, n_flares


def _time_batch(paths, n_workers):
    from astroml_affiliated.batch import _ClientContext, _process_chunk, find_flares_batch

    t0 = time.perf_counter()
    with _ClientContext(None, n_workers) as client:
        if client is not None:  # warm every worker: TensorFlow and the model
            client.wait_for_workers(n_workers)
            client.run(_process_chunk, "flares", [(0, paths[0])], {})
        else:
            find_flares_batch(paths[:1])
        startup = time.perf_counter() - t0
        workers_cpu = (lambda: sum(client.run(time.process_time).values())) \
            if client is not None else (lambda: 0.0)
        t0, c0, w0 = time.perf_counter(), time.process_time(), workers_cpu()
        table = find_flares_batch(paths, client=client)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0 + workers_cpu() - w0
    assert table.meta["batch"]["n_error"] == 0, table[table["status"] == "error"]
    return startup, elapsed, cpu, int((table["status"] == "ok").sum())


def _fmt_duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def write_results(results, out_dir):
    rows = results["modes"]
    serial = rows[0]["rate"]
    one = next(r["rate"] for r in rows if r["mode"] == "dask, 1 worker")
    loads = [results["load_before"]] + [r["load_after"] for r in rows]
    lines = [
        ".. This file is written by benchmarks/batch_scaling.py; do not edit.",
        "",
        f"Measured on {results['date']} on {results['machine']} "
        f"({results['cpus']} CPU cores, shared with other jobs: load average "
        f"{results['load_before']:.1f} before the run), {results['n']} synthetic "
        f"one-sector TESS light curves of {results['cadences']} cadences each, "
        f"model ``{results['model']}`` {results['version']}, CPU only.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - mode",
        "     - start-up (s)",
        "     - time for the light curves (s)",
        "     - light curves / s",
        "     - ratio to the loop",
        "     - CPU time per light curve (ms)",
        "     - load average after",
        f"     - one TESS sector ({TESS_SECTOR_LCS:,} light curves) at this rate",
    ]
    for r in rows:
        lines += [
            f"   * - {r['mode']}",
            f"     - {r['startup']:.1f}",
            f"     - {r['seconds']:.1f}",
            f"     - {r['rate']:.2f}",
            f"     - {r['rate'] / serial:.2f}",
            f"     - {1000 * r['cpu_seconds'] / results['n']:.0f}",
            f"     - {r['load_after']:.1f}",
            f"     - {_fmt_duration(TESS_SECTOR_LCS / r['rate'])}",
        ]
    one_row = next(r for r in rows if r["mode"] == "dask, 1 worker")
    per_lc = one_row["cpu_seconds"] / results["n"]
    n_found = sorted({r["flares"] for r in rows})
    agree = (f"Every mode found the same {n_found[0]} flares" if len(n_found) == 1 else
             f"The modes found different numbers of flares ({n_found})")
    lines += [
        "",
        f"{agree}. 2 workers reached {rows[-1]['rate'] / one:.2f} times the rate of 1."
        + (" The machine's cores were shared with other jobs throughout (load average "
           f"{min(loads):.1f} to {max(loads):.1f} on {results['cpus']} cores), so the "
           "wall-clock rates and their ratios mostly reflect how much CPU the other "
           "jobs left (the loop and the serial batch do the same work); the CPU time "
           "per light curve (this process and the Dask workers, summed) depends much "
           "less on them and is the cost to plan with."
           if min(loads) > results["cpus"] else ""),
        "",
        "Extrapolation, from the CPU time of the 1-worker run "
        f"({per_lc * 1000:.0f} ms per light curve: reading the FITS file, "
        "preprocessing, the network and the flare table, with one thread): a TESS "
        f"sector of {TESS_SECTOR_LCS:,} light curves costs "
        f"{_fmt_duration(TESS_SECTOR_LCS * per_lc)} of CPU time, so one idle core "
        f"finishes it in about {_fmt_duration(TESS_SECTOR_LCS * per_lc)}, a 16-core "
        f"node with 16 workers in about {_fmt_duration(TESS_SECTOR_LCS * per_lc / 16)}, "
        "and a cluster of 64 workers (4 such nodes) in about "
        f"{_fmt_duration(TESS_SECTOR_LCS * per_lc / 64)}, if reading the files keeps "
        "up and scaling stays linear (it was not measured beyond 2 workers here).",
        "",
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "batch_benchmark.inc").write_text("\n".join(lines))
    res_dir = ROOT / "benchmarks" / "results"
    res_dir.mkdir(exist_ok=True)
    (res_dir / "batch_scaling.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", help="unused (the light curves are generated)")
    parser.add_argument("--n", type=int, default=200, help="number of light curves")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    from astroml_affiliated import weights

    entry = weights.get_entry("flares-cnn")
    load_before = os.getloadavg()[0]
    modes = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = generate(tmp, args.n)
        print(f"generated {len(paths)} light curves in {time.perf_counter() - t0:.0f} s",
              flush=True)
        import lightkurve as lk

        cadences = len(lk.read(paths[0]))
        startup, seconds, cpu, flares = _time_loop(paths)
        modes.append({"mode": "loop (find_flares per file)", "startup": startup,
                      "seconds": seconds, "cpu_seconds": cpu, "rate": len(paths) / seconds,
                      "flares": flares, "load_after": os.getloadavg()[0]})
        print(modes[-1], flush=True)
        for n_workers in [None] + list(args.workers):
            startup, seconds, cpu, flares = _time_batch(paths, n_workers)
            name = ("batch, serial" if n_workers is None else
                    f"dask, {n_workers} worker{'s' if n_workers > 1 else ''}")
            modes.append({"mode": name, "startup": startup, "seconds": seconds,
                          "cpu_seconds": cpu, "rate": len(paths) / seconds,
                          "flares": flares, "load_after": os.getloadavg()[0]})
            print(modes[-1], flush=True)
    if len({m["flares"] for m in modes}) != 1:
        print("WARNING: the modes found different numbers of flares", file=sys.stderr)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{platform.machine()} {platform.system()}",
               "cpus": os.cpu_count(), "load_before": load_before, "n": len(paths),
               "cadences": cadences, "model": "flares-cnn", "version": entry["version"],
               "modes": modes}
    write_results(results, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
