"""The ``astroml-affiliated`` command line.

``astroml-affiliated demo`` runs every capability on embedded inputs (no network);
``astroml-affiliated weights list|fetch|verify|path`` manages the trained weights.
"""

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import AstroMLError

__all__ = ["main"]

#: Demo parts, run in this order: (name, "module:function" taking an output directory).
DEMO_PARTS = []


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

    if args.action == "list":
        for name in weights.list_models():
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
    demo.set_defaults(func=_cmd_demo)

    wts = sub.add_parser("weights", help="list, fetch or verify trained weights")
    wts.add_argument("action", choices=["list", "fetch", "verify", "path"])
    wts.add_argument("models", nargs="*", help="model names (default: all)")
    wts.set_defaults(func=_cmd_weights)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (AstroMLError, OSError) as exc:
        if args.debug:
            raise
        print(f"astroml-affiliated: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
