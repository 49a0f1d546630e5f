"""Validation-split figures of the gaiaxp-labels 1.4.0 rule (hot stars, masked ends).

    python benchmarks/spectra_domain.py [--registry DIR [DIR ...]] [--rounds 7]
        [--halvings 10] [--out FILE]

For ``gaiaxp-labels`` in each registry ``DIR`` (default the repository's ``weights/``;
a candidate in a scratch copy can be set beside the released model), through
`estimate_parameters` on the validation split only (the library's test rows are
dropped on load, asserted), the conditions of the 1.4.0 decision rule in the model card
``docs/models/gaiaxp-labels.rst``:

1. of the validation stars with APOGEE Teff >= 7000 K, the fraction flagged
   (``ood_flag``) or "correctly labelled" (Teff within 2 ``teff_err``, and log g within
   2 ``logg_err`` where APOGEE gives one);
2. the fraction of the headline stars (Teff < 7000 K, S/N > 50) flagged;
3. mad_std and fractions within 1 / 2 sigma of the headline stars (nothing masked);
4. the fractions of headline stars within 1 sigma with the bluest 30 pixels masked and
   with the reddest 60 masked (in-sample for a model whose masked-fraction term was
   fitted on them), and for a model with that term, cross-fitted: the term fitted on
   one random half of the stars (``fit_masked_term``), measured on the other,
   ``--halvings`` halvings (seed 0), mean of the measurements;
5. speed: median over ``--rounds`` alternating timed calls on the headline spectrum.

Also the metal-poor headline stars ([Fe/H] < -1): mad_std relative to all headline stars
and fractions within 1 sigma. Written to ``--out`` (default
``benchmarks/results/spectra_domain.txt``) as well as printed.
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from astroml_affiliated.training import spectra as T  # noqa: E402
from spectra_validation import (ModelRun, forget_loaded_models, load_validation,  # noqa: E402
                                use_registry)
from spectra_vs_peers import make_spectrum  # noqa: E402

LABELS = ("teff", "logg", "fe_h", "alpha_m")
ENDS = {"bluest 30 px": (0, 30), "reddest 60 px": (283, 343)}


def masked_spectrum(lib, idx, a, b):
    spec = make_spectrum(lib, idx)
    mask = np.zeros(spec.flux.shape, bool)
    mask[:, a:b] = True
    spec.mask = mask
    return spec


def arrays(t):
    mu = np.column_stack([np.asarray(t[c].value) for c in LABELS])
    sg = np.column_stack([np.asarray(t[c + "_err"].value) for c in LABELS])
    return mu, sg


def within(mu, sg, truth, k=1.0):
    z = np.abs(mu - truth) / sg
    return [float(np.mean(z[np.isfinite(z[:, i]), i] <= k)) for i in range(len(LABELS))]


def mad_stds(mu, truth):
    from astropy.stats import mad_std
    r = mu - truth
    return [float(mad_std(r[np.isfinite(r[:, i]), i])) for i in range(len(LABELS))]


def cross_fitted_masked(run, lib, idx, truth, halvings, seed=0):
    """Mean fraction within 1 sigma per end and label, the masked-fraction term fitted
    on one half of the stars and measured on the other."""
    from astroml_affiliated.device import import_keras
    from astroml_affiliated.spectra.models import build_gaiaxp_mlp
    import astroml_affiliated.weights as W

    import_keras()
    with use_registry(run.directory):
        entry = W.get_entry(run.name)
    net = [f["name"] for f in entry["files"] if f["name"].endswith(".weights.h5")][0]
    model = build_gaiaxp_mlp(**entry["architecture_kwargs"])
    model.load_weights(run.directory / net)
    with np.load(run.directory / entry["input"]["constants"]) as saved:
        const = {k: saved[k] for k in saved.files}
    zs, ms = [], []
    for a, b in ENDS.values():
        mask = np.zeros((len(idx), 343), bool)
        mask[:, a:b] = True
        mean, sigma, _, _, m = T.network_outputs(model, const, lib["flux"][idx],
                                                 lib["flux_error"][idx], mask)
        zs.append(np.abs(mean - truth) / sigma)
        ms.append(m)
    rng = np.random.default_rng(seed)
    out = {end: [] for end in ENDS}
    for _ in range(halvings):
        half = rng.permutation(len(idx)) < len(idx) // 2
        for fit, test in ((half, ~half), (~half, half)):
            coef = T.fit_masked_term([z[fit] for z in zs], [m[fit] for m in ms])
            for end, z, m in zip(ENDS, zs, ms):
                zz = z[test] / (1.0 + m[test, None] * coef[None, :])
                out[end].append([np.mean(zz[np.isfinite(zz[:, i]), i] <= 1)
                                 for i in range(len(LABELS))])
    return {end: np.mean(v, axis=0) for end, v in out.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", nargs="+", default=[str(ROOT / "weights")])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--halvings", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "spectra_domain.txt"))
    args = parser.parse_args(argv)
    lib = load_validation()  # without the test rows
    lib = {k: v[lib["split"] == "val"] for k, v in lib.items()}
    teff, logg, snr = lib["teff"], lib["logg"], lib["snr"]
    truth_all = np.stack([teff, logg, lib["fe_h"], lib["alpha_m"]], axis=1)
    every = np.arange(len(teff))
    hot = teff >= T.TEFF_MAX
    head = (teff < T.TEFF_MAX) & (snr > 50)
    hidx = np.flatnonzero(head)
    poor = lib["fe_h"][hidx] < -1
    lines = [f"# spectra_domain.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{platform.node()}; validation split: {hot.sum()} stars with Teff >= 7000 K, "
             f"{head.sum()} headline stars (Teff < 7000 K, S/N > 50), {poor.sum()} of them "
             "with [Fe/H] < -1"]
    runs = [ModelRun("gaiaxp-labels", d, f"{Path(d).name}") for d in args.registry]
    full = make_spectrum(lib, every)
    headline = make_spectrum(lib, hidx)
    for run in runs:
        forget_loaded_models()
        t = run.estimate(full, None)
        mu, sg = arrays(t)
        flag = np.asarray(t["ood_flag"], bool)
        z = np.abs(mu - truth_all) / sg
        right = (z[:, 0] <= 2) & (~np.isfinite(logg) | (z[:, 1] <= 2))
        caught = flag | right
        lines.append(f"\n## {run.label}")
        lines.append(f"1. Teff >= 7000 K: flagged {flag[hot].mean():.2%}, flagged or within "
                     f"2 sigma {caught[hot].mean():.2%} ({int((~caught & hot).sum())} of "
                     f"{hot.sum()} neither); Teff >= 10,000 K: {caught[hot & (teff >= 1e4)].mean():.2%} "
                     f"of {(hot & (teff >= 1e4)).sum()}")
        lines.append(f"2. headline stars flagged: {flag[head].mean():.2%} "
                     f"({int(flag[head].sum())} of {head.sum()}); every in-domain "
                     f"validation star: {flag[~hot].mean():.2%}")
        hm, hs = mu[head], sg[head]
        ht = truth_all[head]
        lines.append("3. headline mad_std " + " / ".join(f"{v:.4g}" for v in mad_stds(hm, ht))
                     + "; within 1 sigma " + " / ".join(f"{v:.1%}" for v in within(hm, hs, ht))
                     + "; within 2 sigma " + " / ".join(f"{v:.1%}" for v in within(hm, hs, ht, 2)))
        for end, (a, b) in ENDS.items():
            tm = run.estimate(masked_spectrum(lib, hidx, a, b), None)
            mm, ms = arrays(tm)
            lines.append(f"4. {end} masked: within 1 sigma (in-sample) "
                         + " / ".join(f"{v:.1%}" for v in within(mm, ms, ht))
                         + f"; median sigma ratio to unmasked "
                         + " / ".join(f"{v:.2f}" for v in np.median(ms / hs, axis=0)))
        with use_registry(run.directory):
            import astroml_affiliated.weights as W
            has_term = "masked_coef" in np.load(
                run.directory / W.get_entry(run.name)["input"]["constants"]).files
        if has_term:
            cv = cross_fitted_masked(run, lib, hidx, ht, args.halvings)
            for end, v in cv.items():
                lines.append(f"4. {end} masked, cross-fitted ({args.halvings} halvings): "
                             "within 1 sigma " + " / ".join(f"{x:.1%}" for x in v))
        pm = mad_stds(hm[poor], ht[poor])
        lines.append("metal-poor [Fe/H] < -1: mad_std " + " / ".join(f"{v:.4g}" for v in pm)
                     + " (x " + " / ".join(f"{p / q:.2f}" for p, q in
                                           zip(pm, mad_stds(hm, ht))) + " the headline's)"
                     + "; within 1 sigma " + " / ".join(
                         f"{v:.1%}" for v in within(hm[poor], hs[poor], ht[poor])))
    # 5. speed, alternating
    times = {run.label: [] for run in runs}
    for run in runs:
        forget_loaded_models()
        run.estimate(make_spectrum(lib, hidx[:10]), None)
    for _ in range(args.rounds):
        for run in runs:
            run.estimate(headline, None)
            times[run.label].append(len(hidx) / run.seconds)
    for label, v in times.items():
        lines.append(f"\n5. {label}: {np.median(v):,.0f} spectra/s (median of {len(v)}; "
                     f"{min(v):,.0f}-{max(v):,.0f})")
    write_report(lines, args.out)


def write_report(lines, out):
    """Print the report's lines and write them to ``out``."""
    text = "\n".join(lines)
    print(text)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text + "\n")


if __name__ == "__main__":
    main()
