"""How the gaiaxp-labels network's accuracy grows with the number of training stars.

Trains one network of the released architecture and inputs (``train_member``, the same
loss and schedule as the ensemble members) on random fractions of the training split,
each for about the same number of optimiser steps, and reports the mad_std of its
validation residuals (Teff < 7000 K, S/N > 50) per label. The test split is not read.
The question it answers: how many more stars like these would the issue 9 accuracy
targets need, if more data is the way there (a power law fitted to the curve).

Usage: python benchmarks/spectra_learning_curve.py [--fractions 0.125,0.25,0.5,1]
       [--steps 6000] [--out docs/spectra_learning_curve.txt]
"""
import argparse
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", default="0.125,0.25,0.5,1")
    parser.add_argument("--steps", type=int, default=6000,
                        help="optimiser steps per run (batch 256)")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)

    from astropy.stats import mad_std

    from astroml_affiliated.spectra import core
    from astroml_affiliated.training import spectra as T

    lib = T.load_library()
    y, yerr = T.labels(lib)
    domain = lib["teff"] < T.TEFF_MAX
    tr_all = np.flatnonzero((lib["split"] == "train") & domain)
    va = (lib["split"] == "val") & domain
    flux, err = lib["flux"], lib["flux_error"]
    hi = lib["snr"][va] > 50
    truth = np.stack([lib[n] for n in core.LABELS], axis=1)[va]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(tr_all)
    rows = []
    for frac in [float(f) for f in args.fractions.split(",")]:
        t0 = time.time()
        tr = np.zeros(len(lib["teff"]), bool)
        tr[order[:int(round(frac * len(order)))]] = True
        const, data = T.prepare(lib, tr, va, y, yerr)
        epochs = max(1, int(round(args.steps * 256 / tr.sum())))
        model, hist = T.train_member(args.seed, data, const, epochs=epochs, batch=256,
                                     hidden=(512, 256, 128), dropout=0.1, lr=1e-3,
                                     weight_decay=1e-4, patience=epochs, beta=0.5,
                                     noise=0.0)
        xv = core.model_inputs(flux[va], err[va], const)
        mean, _, _ = core.combine_ensemble(T.predict_members([model], xv),
                                           dict(const, calibration=np.ones(4)))
        r = (mean - truth)[hi]
        scat = [float(mad_std(r[np.isfinite(r[:, i]), i])) for i in range(4)]
        rows.append((int(tr.sum()), epochs, *scat))
        print(f"{tr.sum():6d} stars, {epochs:4d} epochs: Teff {scat[0]:.1f} K, log g "
              f"{scat[1]:.4f}, [Fe/H] {scat[2]:.4f}, [alpha/M] {scat[3]:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    rows = np.array(rows, float)
    lines = ["n_train  epochs  Teff[K]  logg    [Fe/H]  [a/M]"]
    lines += [f"{int(r[0]):7d}  {int(r[1]):6d}  {r[2]:7.1f}  {r[3]:.4f}  {r[4]:.4f}  {r[5]:.4f}"
              for r in rows]
    targets = (45.0, 0.10, 0.07, 0.027)
    if len(rows) >= 3:
        lines.append("power law mad_std = a n^-b fitted to the curve; stars needed for "
                     "issue 9's target (one network):")
        for i, (name, target) in enumerate(zip(core.LABELS, targets)):
            b, loga = np.polyfit(np.log(rows[:, 0]), np.log(rows[:, 2 + i]), 1)
            need = np.exp((np.log(target) - loga) / b) if b < 0 else np.inf
            lines.append(f"  {name:8s} exponent {-b:.3f}; target {target} needs "
                         f"{need:,.0f} stars ({need / rows[-1, 0]:.1f}x)")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
