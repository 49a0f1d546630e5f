"""Batch scaling of the flare finder and of image differencing: a serial loop against
1 and 2 local Dask workers.

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

Image pairs: 50 synthetic 512x512 science/reference pairs (the image-differencing
demo's generator, `astroml_affiliated.imagediff.demo.synthetic_pair`: about 320 stars,
one new or fading source per pair, the reference shifted by a fraction of a pixel in
its WCS, so every pair is resampled) are written as FITS files and timed the same way:
``loop`` (``read_image`` x2, ``difference``, writing the difference image,
``find_transients``), `astroml_affiliated.batch.difference_batch` without a cluster, and
on 1 and 2 workers.

Usage::

    python benchmarks/batch_scaling.py [DATA_DIR] [--n 200] [--pairs 50]
        [--image-size 512] [--skip-flares | --skip-images] [--out-dir docs]

``--skip-flares`` (or ``--skip-images``) keeps the figures of that part from the
previous run (``benchmarks/results/batch_scaling.json``, with their own date) instead of
measuring them again. ``DATA_DIR`` (``make benchmarks`` passes ``../shared/data``) is not
used: the light curves and images are generated.
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


def _timed_loop(items, one):
    """Time ``one(item)`` over ``items`` after a warm-up call (TensorFlow, the model).

    Returns start-up seconds, seconds, CPU seconds and the summed counts ``one`` returns.
    """
    t0 = time.perf_counter()
    one(items[0])
    startup = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    count = sum(one(item) for item in items)
    return startup, time.perf_counter() - t0, time.process_time() - c0, count


def _timed_batch(task, first, n_workers, warm, run):
    """Time the batch call ``run(client)`` serially or on ``n_workers`` local workers.

    Every worker (or this process) is warmed up first on the input ``first``; CPU time
    counts this process and the workers. Returns what `_timed_loop` returns, the count
    being the rows with results.
    """
    from astroml_affiliated.batch import _ClientContext, _process_chunk

    t0 = time.perf_counter()
    with _ClientContext(None, n_workers) as client:
        if client is not None:  # warm every worker: TensorFlow and the model
            client.wait_for_workers(n_workers)
            client.run(_process_chunk, task, [(0, first)], {})
        else:
            warm()
        startup = time.perf_counter() - t0
        workers_cpu = (lambda: sum(client.run(time.process_time).values())) \
            if client is not None else (lambda: 0.0)
        t0, c0, w0 = time.perf_counter(), time.process_time(), workers_cpu()
        table = run(client)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0 + workers_cpu() - w0
    assert table.meta["batch"]["n_error"] == 0, table[table["status"] == "error"]
    return startup, elapsed, cpu, int((table["status"] == "ok").sum())


def _time_loop(paths):
    from astroml_affiliated.batch import read_lightcurve
    from astroml_affiliated.flares import find_flares

    return _timed_loop(paths, lambda p: len(find_flares(read_lightcurve(p))))


def _time_batch(paths, n_workers):
    from astroml_affiliated.batch import find_flares_batch

    return _timed_batch("flares", paths[0], n_workers,
                        lambda: find_flares_batch(paths[:1]),
                        lambda client: find_flares_batch(paths, client=client))


def _mode(name, timing, n, count_key):
    """One benchmark row from a `_timed_loop`/`_timed_batch` result, printed."""
    startup, seconds, cpu, count = timing
    row = {"mode": name, "startup": startup, "seconds": seconds, "cpu_seconds": cpu,
           "rate": n / seconds, count_key: count, "load_after": os.getloadavg()[0]}
    print(row, flush=True)
    return row


def _fmt_duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def generate_pairs(directory, n, size=512, seed=7):
    """Write ``n`` synthetic science/reference FITS pairs of ``size`` x ``size`` pixels."""
    import numpy as np

    from astroml_affiliated.imagediff.demo import synthetic_pair

    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        x, y = rng.uniform(40, size - 40, 2)
        flux = rng.choice([-1, 1]) * rng.uniform(3000, 20000)
        science, reference, _ = synthetic_pair(
            shape=(size, size), seed=seed + i, n_stars=int(80 * size * size / 256 ** 2),
            transients=[(x, y, flux)], ref_pixel_offset=tuple(rng.uniform(-0.5, 0.5, 2)))
        paths = (str(Path(directory) / f"sci{i:03d}.fits"),
                 str(Path(directory) / f"ref{i:03d}.fits"))
        science.write(paths[0])
        reference.write(paths[1])
        pairs.append(paths)
    return pairs


def _time_diff_loop(pairs, outdir):
    from astroml_affiliated.batch import read_image, write_ccd_atomic
    from astroml_affiliated.imagediff import difference, find_transients

    def one(pair):
        science, reference = pair
        diff = difference(read_image(science), read_image(reference))
        write_ccd_atomic(diff, Path(outdir) / f"{Path(science).stem}.fits")
        return len(find_transients(diff))

    return _timed_loop(pairs, one)


def _time_diff_batch(pairs, n_workers, outdir):
    from astroml_affiliated.batch import difference_batch

    return _timed_batch("diff", tuple(pairs[0]), n_workers,
                        lambda: difference_batch(pairs[:1]),
                        lambda client: difference_batch(pairs, client=client,
                                                        outdir=outdir))


def run_images(n, size, workers):
    """Time the image-differencing modes on ``n`` generated pairs."""
    from astroml_affiliated import weights

    entry = weights.get_entry("imagediff-transinet-slim")
    load_before = os.getloadavg()[0]
    modes = []
    with tempfile.TemporaryDirectory(prefix="diffbatch_bench_") as tmp:
        t0 = time.perf_counter()
        pairs = generate_pairs(tmp, n, size)
        print(f"generated {len(pairs)} image pairs in {time.perf_counter() - t0:.0f} s",
              flush=True)
        runs = [("loop (difference per pair)", None)] + [
            ("batch, serial", None)] + [
            (f"dask, {w} worker{'s' if w > 1 else ''}", w) for w in workers]
        for k, (name, n_workers) in enumerate(runs):
            outdir = Path(tmp) / f"diffs{k}"
            outdir.mkdir()
            timing = (_time_diff_loop(pairs, outdir) if k == 0 else
                      _time_diff_batch(pairs, n_workers, outdir))
            modes.append(_mode(name, timing, len(pairs), "transients"))
    if len({m["transients"] for m in modes}) != 1:
        print("WARNING: the modes found different numbers of transients", file=sys.stderr)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()} {platform.system()}",
            "cpus": os.cpu_count(), "load_before": load_before, "n": len(pairs),
            "size": size, "model": "imagediff-transinet-slim",
            "version": entry["version"], "modes": modes}


#: Image pairs of a survey night, for the extrapolation.
NIGHT_PAIRS = 500


def _image_lines(results):
    rows = results["modes"]
    one_row = next(r for r in rows if r["mode"] == "dask, 1 worker")
    one = one_row["rate"]
    loads = [results["load_before"]] + [r["load_after"] for r in rows]
    size = results["size"]
    lines = [
        "Benchmark: image pairs",
        "^^^^^^^^^^^^^^^^^^^^^^",
        "",
        f"Measured on {results['date']} on {results['machine']} "
        f"({results['cpus']} CPU cores, shared with other jobs: load average "
        f"{results['load_before']:.1f} before the run), {results['n']} synthetic "
        f"{size}x{size} science/reference pairs (FITS files; every reference resampled "
        f"onto its science grid), model ``{results['model']}`` {results['version']}, "
        "CPU only. Each pair: both images read, differenced, the difference image "
        "written, transients found.",
        "",
    ] + _rate_table(rows, results["n"], "pair", "pairs",
                    f"{NIGHT_PAIRS} pairs (a survey night)", NIGHT_PAIRS)
    per_pair = one_row["cpu_seconds"] / results["n"]
    found = sorted({r["transients"] for r in rows})
    agree = (f"Every mode found the same {found[0]} transients" if len(found) == 1 else
             f"The modes found different numbers of transients ({found})")
    mpix = size * size / 1e6
    big = 4096 * 4096 / (size * size)
    two = [r for r in rows if r["mode"] == "dask, 2 workers"]
    lines += [
        "",
        f"{agree} above S/N 5 (one source was injected per pair, {results['n']} in all; "
        "the count is of all detections, not matched to the injections)."
        + (f" 2 workers reached {two[0]['rate'] / one:.2f} times the rate of 1, using "
           f"{two[0]['cpu_seconds'] / two[0]['seconds']:.2f} cores on average (CPU "
           "seconds of the workers and this process per wall-clock second; 1 worker: "
           f"{one_row['cpu_seconds'] / one_row['seconds']:.2f})."
           if two else "")
        + (" The cores were shared with other jobs throughout (load average "
           f"{min(loads):.1f} to {max(loads):.1f} on {results['cpus']} cores): the "
           "wall-clock rates and ratios mostly reflect how much CPU the other jobs left; "
           "the CPU time per pair is the cost to plan with."
           if min(loads) > results["cpus"] else ""),
        "",
        f"Extrapolation, from the CPU time of the 1-worker run ({per_pair * 1000:.0f} ms "
        f"per {size}x{size} pair, one thread; about "
        f"{per_pair / mpix:.1f} s per megapixel, if the cost grows with the number of "
        f"pixels): {NIGHT_PAIRS} such pairs cost "
        f"{_fmt_duration(NIGHT_PAIRS * per_pair)} of CPU time, about "
        f"{_fmt_duration(NIGHT_PAIRS * per_pair / 16)} on a 16-core node with 16 "
        f"workers; {NIGHT_PAIRS} pairs of 4096x4096 ({big:.0f} times the pixels) about "
        f"{_fmt_duration(NIGHT_PAIRS * per_pair * big / 16)} on that node, if scaling "
        "stays linear (not measured beyond 2 workers here).",
        "",
    ]
    return lines


def write_results(results, out_dir):
    """Write the ``.inc`` (both parts) and the JSON; ``results`` holds ``flares`` and
    ``images`` (either may come from a previous run)."""
    lines = [".. This file is written by benchmarks/batch_scaling.py; do not edit.", ""]
    if results.get("flares"):
        lines += ["Benchmark: light curves", "^^^^^^^^^^^^^^^^^^^^^^^", ""]
        lines += _flare_lines(results["flares"])
    if results.get("images"):
        lines += _image_lines(results["images"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "batch_benchmark.inc").write_text("\n".join(lines))
    res_dir = ROOT / "benchmarks" / "results"
    res_dir.mkdir(exist_ok=True)
    (res_dir / "batch_scaling.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


def _previous(part):
    """The ``part`` (``'flares'`` or ``'images'``) of the previous run's results."""
    path = ROOT / "benchmarks" / "results" / "batch_scaling.json"
    if not path.exists():
        return None
    old = json.loads(path.read_text())
    if "flares" not in old and "images" not in old:  # the flares-only format
        old = {"flares": old}
    return old.get(part)


def _rate_table(rows, n, item, items, workload, workload_size):
    """RST list-table lines of the timing rows (one per mode), the first row the loop."""
    serial = rows[0]["rate"]
    lines = [".. list-table::", "   :header-rows: 1", "",
             "   * - mode",
             "     - start-up (s)",
             f"     - time for the {items} (s)",
             f"     - {items} / s",
             "     - ratio to the loop",
             f"     - CPU time per {item} (ms)",
             "     - load average after",
             f"     - {workload} at this rate"]
    for r in rows:
        lines += [
            f"   * - {r['mode']}",
            f"     - {r['startup']:.1f}",
            f"     - {r['seconds']:.1f}",
            f"     - {r['rate']:.2f}",
            f"     - {r['rate'] / serial:.2f}",
            f"     - {1000 * r['cpu_seconds'] / n:.0f}",
            f"     - {r['load_after']:.1f}",
            f"     - {_fmt_duration(workload_size / r['rate'])}",
        ]
    return lines


def _flare_lines(results):
    rows = results["modes"]
    one = next(r["rate"] for r in rows if r["mode"] == "dask, 1 worker")
    loads = [results["load_before"]] + [r["load_after"] for r in rows]
    lines = [
        f"Measured on {results['date']} on {results['machine']} "
        f"({results['cpus']} CPU cores, shared with other jobs: load average "
        f"{results['load_before']:.1f} before the run), {results['n']} synthetic "
        f"one-sector TESS light curves of {results['cadences']} cadences each, "
        f"model ``{results['model']}`` {results['version']}, CPU only.",
        "",
    ] + _rate_table(rows, results["n"], "light curve", "light curves",
                    f"one TESS sector ({TESS_SECTOR_LCS:,} light curves)", TESS_SECTOR_LCS)
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
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", help="unused (the light curves are generated)")
    parser.add_argument("--n", type=int, default=200, help="number of light curves")
    parser.add_argument("--pairs", type=int, default=50, help="number of image pairs")
    parser.add_argument("--image-size", type=int, default=512, help="pixels on a side")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    skip = parser.add_mutually_exclusive_group()
    skip.add_argument("--skip-flares", action="store_true",
                      help="keep the light-curve figures of the previous run")
    skip.add_argument("--skip-images", action="store_true",
                      help="keep the image-pair figures of the previous run")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from astropy import log

    log.setLevel("ERROR")  # e.g. a pair with too few stars for the photometric scale
    flares = _previous("flares") if args.skip_flares else run_flares(args)
    images = (_previous("images") if args.skip_images else
              run_images(args.pairs, args.image_size, args.workers))
    write_results({"flares": flares, "images": images}, args.out_dir)
    return 0


def run_flares(args):
    """Time the flare modes on ``args.n`` generated light curves."""
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
        modes.append(_mode("loop (find_flares per file)", _time_loop(paths), len(paths),
                           "flares"))
        for n_workers in [None] + list(args.workers):
            name = ("batch, serial" if n_workers is None else
                    f"dask, {n_workers} worker{'s' if n_workers > 1 else ''}")
            modes.append(_mode(name, _time_batch(paths, n_workers), len(paths), "flares"))
    if len({m["flares"] for m in modes}) != 1:
        print("WARNING: the modes found different numbers of flares", file=sys.stderr)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()} {platform.system()}",
            "cpus": os.cpu_count(), "load_before": load_before, "n": len(paths),
            "cadences": cadences, "model": "flares-cnn", "version": entry["version"],
            "modes": modes}


if __name__ == "__main__":
    sys.exit(main())
