"""Labels from XP spectra sampled by GaiaXPy from basis coefficients against labels from
the equivalent sampled spectra (validation split only).

    python benchmarks/spectra_gaia_continuous.py [--n N] [--out FILE]

The validation stars' XP sampled spectra (every temperature; the library's test rows
are dropped on load, asserted) are projected onto GaiaXPy's BP and RP bases
(`astroml_affiliated.spectra.gaia.continuous_from_sampled`), giving an archive-style
XP_CONTINUOUS table; `estimate_parameters_xp` labels that table (GaiaXPy samples it) and
the sampled table, and the differences are given in units of the sampled table's sigma,
with the flux residual of the projection. Needs GaiaXPy.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from astropy.table import Table  # noqa: E402

from astroml_affiliated.spectra import estimate_parameters_xp  # noqa: E402
from astroml_affiliated.spectra.gaia import continuous_from_sampled  # noqa: E402
from spectra_domain import write_report  # noqa: E402
from spectra_validation import load_validation  # noqa: E402

LABELS = ("teff", "logg", "fe_h", "alpha_m")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=0, help="first N validation stars (0: all)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "spectra_gaia_continuous.txt"))
    args = parser.parse_args(argv)
    lib = load_validation()
    va = np.flatnonzero(lib["split"] == "val")
    if args.n:
        va = va[:args.n]
    norm = lib["medflux"][va, None]
    sampled = Table({"source_id": lib["sid"][va], "flux": lib["flux"][va] * norm,
                     "flux_error": lib["flux_error"][va] * norm})
    t0 = time.time()
    cont = continuous_from_sampled(sampled)
    a = estimate_parameters_xp(sampled, device="cpu")
    b = estimate_parameters_xp(cont, device="cpu")
    assert np.array_equal(a["source_id"], b["source_id"])
    lines = [f"# spectra_gaia_continuous.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f": {len(va)} validation stars (every Teff), model {a.meta['model']} "
             f"{a.meta['version']}; |label(continuous) - label(sampled)| / sigma(sampled)"]
    for name in LABELS:
        d = np.abs(np.asarray(a[name] - b[name]) / np.asarray(a[name + "_err"]))
        r = np.asarray(b[name + "_err"] / a[name + "_err"])
        lines.append(f"{name:8s} median {np.median(d):.4f}  99th pct {np.percentile(d, 99):.4f}"
                     f"  max {d.max():.4f}  share < 0.1: {np.mean(d < 0.1):.2%}; "
                     f"sigma ratio median {np.median(r):.3f} (1-99%: "
                     f"{np.percentile(r, 1):.3f}-{np.percentile(r, 99):.3f})")
    fa, fb = np.asarray(a["ood_flag"]), np.asarray(b["ood_flag"])
    lines.append(f"ood_flag agrees for {np.mean(fa == fb):.2%} ({int((fa != fb).sum())} differ); "
                 f"{time.time() - t0:.0f} s")
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
