"""The ``astroml-affiliated`` command line.

``astroml-affiliated demo`` runs every capability on embedded inputs (no network);
``astroml-affiliated weights list|fetch|verify|path`` manages the trained weights;
``astroml-affiliated flares FILES... -o flares.ecsv`` and ``astroml-affiliated spectra
FILES... -o params.ecsv [--photometry TABLE]`` run a model on many files (see
:mod:`astroml_affiliated.batch`);
``astroml-affiliated diff SCIENCE REFERENCE -o diff.fits [--transients t.ecsv]``
differences one image pair, ``astroml-affiliated diff --pairs pairs.txt -o t.ecsv
--outdir diffs/`` many.

Exit status: 0 when every input was processed, 1 on an error that stopped the command
(one line on stderr; ``--debug`` shows the traceback), 3 when the output was written but
some inputs failed (their rows have ``status == 'error'``).
"""

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import AstroMLError

__all__ = ["main"]

#: Demo parts, run in this order: (name, "module:function" taking an output directory).
DEMO_PARTS = [
    ("flares", "astroml_affiliated.flares.demo:run_demo"),
    ("imagediff", "astroml_affiliated.imagediff.demo:run_demo"),
    ("spectra", "astroml_affiliated.spectra.demo:run_demo"),
]


def _cmd_demo(args):
    import importlib

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    parts = [p for p in DEMO_PARTS if not args.only or p[0] in args.only]
    if not parts:
        raise AstroMLError("no demo parts to run" + (
            f" (asked for {', '.join(args.only)}; known: "
            f"{', '.join(p[0] for p in DEMO_PARTS) or 'none'})" if args.only else ""))
    for name, target in parts:
        module, _, func = target.partition(":")
        print(f"== {name} ==", flush=True)
        getattr(importlib.import_module(module), func)(out / name)
    print(f"demo outputs written to {out.resolve()}")
    return 0


def _cmd_weights(args):
    from . import weights

    if args.action == "path" and args.models:
        raise AstroMLError("'weights path' takes no model names (the cache is shared)")
    if args.action == "list":
        for name in args.models or weights.list_models():
            entry = weights.get_entry(name)
            size = sum(f["size"] for f in entry["files"]) / 1e6
            print(f"{name}  v{entry['version']}  {len(entry['files'])} file(s), "
                  f"{size:.1f} MB  {entry.get('description', '')}")
    elif args.action == "fetch":
        names = args.models or weights.list_models()
        for name in names:
            for path in weights.fetch(name):
                print(path)
    elif args.action == "verify":
        report = {}
        for name in args.models or [None]:
            report.update(weights.verify(name))
        for fname, state in report.items():
            print(f"{fname}: {state}")
        return 0 if all(s == "ok" for s in report.values()) else 1
    elif args.action == "path":
        print(weights.cache_dir())
    return 0


#: Exit status when the output was written but some inputs failed.
EXIT_SOME_FAILED = 3


def _batch_options(args):
    options = {}
    for name in ("threshold", "model", "device", "quality_bitmask", "min_good_fraction",
                 "unit", "align", "saturation", "gain", "outdir", "photometry"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    return options


def _cmd_batch(args):
    from . import batch

    if args.workers is not None and args.scheduler:
        raise AstroMLError("give either --workers or --scheduler, not both")
    if args.workers is not None and args.workers < 1:
        raise AstroMLError(f"--workers must be 1 or more (worker processes of a local Dask "
                           f"cluster), not {args.workers}; leave it out to run in this "
                           "process")
    inputs = args.pairs if args.command == "diff" else args.files
    table = batch.run_batch(
        args.command, inputs, client=args.scheduler or None,
        n_workers=args.workers, output=args.output, resume=args.resume,
        overwrite=args.overwrite, progress=not args.no_progress,
        chunk_size=args.chunk_size, checkpoint=args.checkpoint, **_batch_options(args))
    info = table.meta["batch"]
    n_rows = int((table["status"] == batch.STATUS_OK).sum())
    what = {"flares": "flare(s)", "spectra": "spectra with labels",
            "diff": "transient(s)"}[args.command]
    print(f"{args.command}: {info['n_inputs']} input(s): {info['n_ok']} with results "
          f"({n_rows} {what}), {info['n_empty']} empty, {info['n_error']} failed"
          + (f", {info['n_skipped']} done before (resumed)" if info["n_skipped"] else "")
          + f" -> {args.output}")
    if info["n_error"]:
        first = table[table["status"] == batch.STATUS_ERROR][0]
        print(f"astroml-affiliated: {info['n_error']} input(s) failed, e.g. "
              f"{first['input']}: {first['error']} (all in the 'error' column of "
              f"{args.output})", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0


def _add_batch_arguments(parser, kind):
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help=f"{kind} files, glob patterns ('sector5/*.fits', quoted) or "
                             "@LIST (a file with one path or pattern per line)")
    parser.add_argument("-o", "--output", required=True,
                        help="output table (format from the extension; .ecsv recommended); "
                             "written atomically")
    parser.add_argument("--device", help="cpu, gpu or gpu:N (default: automatic)")
    parser.add_argument("--model", help="model name in the weights registry")
    _add_run_arguments(parser)


def _add_run_arguments(parser):
    run = parser.add_argument_group("running")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="start a local Dask cluster of N worker processes "
                            "(one thread each)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="use the Dask cluster at this scheduler address "
                            "(e.g. tcp://10.0.0.1:8786)")
    run.add_argument("--resume", action="store_true",
                     help="continue a run: skip inputs already in the output (inputs "
                          "that failed are tried again)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing output instead of refusing")
    run.add_argument("--chunk-size", type=int, metavar="K",
                     help="inputs per Dask task (default: automatic)")
    run.add_argument("--checkpoint", type=float, default=60.0, metavar="SECONDS",
                     help="write the results so far every SECONDS (default 60)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show full tracebacks on errors")
    parser.set_defaults(func=_cmd_batch)


def _cmd_diff(args):
    """One pair: ``diff SCIENCE REFERENCE -o diff.fits``; many: ``diff --pairs FILE``."""
    import os

    if args.pairs:
        if args.images:
            raise AstroMLError("give either SCIENCE REFERENCE or --pairs FILE, not both")
        if args.transients:
            raise AstroMLError("--transients is for one pair; with --pairs, -o is the "
                               "transient table (and --outdir the directory of the "
                               "difference images)")
        return _cmd_batch(args)
    if len(args.images) != 2:
        raise AstroMLError("give two images, SCIENCE REFERENCE (or --pairs FILE); got "
                           f"{len(args.images)}")
    batch_only = [name for name, value in (
        ("--outdir", args.outdir), ("--workers", args.workers),
        ("--scheduler", args.scheduler), ("--resume", args.resume),
        ("--chunk-size", args.chunk_size)) if value]
    if batch_only:
        raise AstroMLError(f"{', '.join(batch_only)} only with --pairs FILE")
    from . import batch

    outputs = [Path(args.output)] + ([Path(args.transients)] if args.transients else [])
    if len(outputs) == 2 and os.path.abspath(outputs[0]) == os.path.abspath(outputs[1]):
        raise AstroMLError("-o and --transients name the same file")
    fmt = batch._table_format(outputs[1]) if args.transients else None
    for path in outputs:
        if not path.parent.is_dir():
            raise AstroMLError(f"the output directory {path.parent} does not exist")
        if path.exists() and not args.overwrite:
            raise AstroMLError(f"{path} exists: use --overwrite to replace it")
    options = {k: v for k, v in _batch_options(args).items()
               if k not in ("threshold", "unit", "outdir")}
    science = batch.read_image(args.images[0], unit=args.unit)
    reference = batch.read_image(args.images[1], unit=args.unit)
    from .imagediff import difference, find_transients

    diff = difference(science, reference, **options)
    table = find_transients(diff, args.threshold)
    batch.write_ccd_atomic(diff, outputs[0])
    message = (f"diff: {args.images[0]} - {args.images[1]} -> {outputs[0]}; "
               f"{len(table)} transient(s) above {args.threshold:g} sigma "
               f"({int((table['sign'] > 0).sum())} brightening, "
               f"{int((table['sign'] < 0).sum())} fading)")
    if args.transients:
        batch.write_table_atomic(table, outputs[1], format=fmt)
        message += f" -> {outputs[1]}"
    print(message)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="astroml-affiliated",
        description="Trained ML models for light curves, images and spectra.")
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run every capability on embedded inputs")
    demo.add_argument("--output", "-o", default="demo_output",
                      help="directory for the demo's tables and figures")
    demo.add_argument("--only", nargs="*", help="run only these demo parts")
    demo.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                      help="show full tracebacks on errors")
    demo.set_defaults(func=_cmd_demo)

    wts = sub.add_parser("weights", help="list, fetch or verify trained weights")
    wts.add_argument("action", choices=["list", "fetch", "verify", "path"])
    wts.add_argument("models", nargs="*", help="model names (default: all)")
    wts.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show full tracebacks on errors")
    wts.set_defaults(func=_cmd_weights)

    flares = sub.add_parser("flares", help="find flares in many light curve files",
                            description="Find flares in light curve files; one row per "
                                        "flare, one 'empty' row per light curve without "
                                        "flares, one 'error' row per file that failed.")
    _add_batch_arguments(flares, "light curve")
    flares.add_argument("--threshold", type=float,
                        help="flare probability threshold (default 0.5)")
    flares.add_argument("--quality-bitmask", dest="quality_bitmask",
                        help="default, hard, hardest or none (default: default)")

    diff = sub.add_parser(
        "diff", help="difference image pairs and find transients",
        description="Difference one image pair (SCIENCE REFERENCE -o diff.fits "
                    "[--transients t.ecsv]) or many (--pairs FILE -o transients.ecsv "
                    "--outdir DIR: one row per transient, one 'empty' row per pair "
                    "without transients, one 'error' row per pair that failed). Images "
                    "are read with CCDData.read.")
    diff.add_argument("images", nargs="*", metavar="IMAGE",
                      help="SCIENCE REFERENCE: the new image and the template (FITS)")
    diff.add_argument("-o", "--output", required=True,
                      help="one pair: the difference image (FITS, with MASK and UNCERT "
                           "extensions); --pairs: the transient table (.ecsv "
                           "recommended); written atomically")
    diff.add_argument("--transients", metavar="TABLE",
                      help="one pair: also write the transient table here (.ecsv)")
    diff.add_argument("--pairs", metavar="FILE",
                      help="a file with two paths per line, SCIENCE REFERENCE")
    diff.add_argument("--outdir", metavar="DIR",
                      help="with --pairs: directory for the difference images (created "
                           "if needed; one <science>-minus-<reference>.fits per pair)")
    diff.add_argument("--threshold", type=float, default=5.0,
                      help="transient detection threshold, S/N (default 5)")
    diff.add_argument("--unit", help="unit of images whose header has no BUNIT "
                                     "(e.g. electron, adu)")
    diff.add_argument("--align", choices=["interp", "exact"],
                      help="resampling of the reference when the WCSs differ "
                           "(default interp)")
    diff.add_argument("--saturation", type=float,
                      help="mask pixels at or above this level")
    diff.add_argument("--gain", type=float,
                      help="electrons per data unit (adds source noise)")
    diff.add_argument("--device", help="cpu, gpu or gpu:N (default: automatic)")
    diff.add_argument("--model", help="model name in the weights registry")
    _add_run_arguments(diff)
    diff.set_defaults(func=_cmd_diff)

    spectra = sub.add_parser("spectra", help="estimate stellar labels of many spectra",
                             description="Estimate Teff, log g, [Fe/H] and [alpha/M] from "
                                         "spectrum files; one row per spectrum, one "
                                         "'error' row per file that failed.")
    _add_batch_arguments(spectra, "spectrum")
    spectra.add_argument("--min-good-fraction", dest="min_good_fraction", type=float,
                         help="least fraction of good pixels (default 0.8)")
    spectra.add_argument(
        "--photometry", metavar="TABLE",
        help="a table (anything astropy's Table.read reads: .ecsv, .csv, .fits) with "
             "each star's Gaia DR3 G, BP, RP and 2MASS J, H, K (or Ks) magnitudes "
             "(column names case-insensitive) and a 'file' column; a row belongs to "
             "the spectrum file with the same file name (directories are ignored). "
             "Every spectrum file needs exactly one row, and must hold one spectrum; "
             "other rows are ignored. Runs the model gaiaxp-labels-phot (spectrum + "
             "colours) instead of gaiaxp-labels")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("astroml-affiliated: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, (AstroMLError, OSError)):
            message = f"{type(exc).__name__}: {message}"
        print(f"astroml-affiliated: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
