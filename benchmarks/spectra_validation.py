"""Validation-split figures of registered Gaia XP label models (the release decisions).

    python benchmarks/spectra_validation.py gaiaxp-labels gaiaxp-labels-ensemble \\
        [--registry DIR [DIR ...]] [--rounds 9] [--cv-halvings 10] [--out FILE]

Reproduces, for each registered spectra model, the figures that the releases of
``gaiaxp-labels``, ``gaiaxp-labels-ensemble`` and ``gaiaxp-labels-phot`` were decided on
(model card ``docs/models/gaiaxp-labels.rst``). Only the validation split is read: the
library's test rows are dropped as soon as it is loaded (asserted), and the training
split is not needed (the models' constants already hold what was fitted on it). Every
model NAME is run from every registry ``DIR`` (default: the repository's ``weights/``),
so a candidate in a scratch copy of ``weights/`` can be compared with the released model
of the same name in one run; the package's registry and weights lookup point at each
directory only while its model runs (every file the model lists must be in that
directory; nothing is downloaded) and are restored afterwards.

For each model:

1. Accuracy, through `estimate_parameters` (``device='cpu'``) on one 2-D specutils
   spectrum in W m-2 nm-1 with StdDev uncertainties (``make_spectrum`` of
   ``spectra_vs_peers.py``): mad_std of the residuals per label for the validation stars
   with Teff < 7000 K and S/N > 50 (the library's ``snr``), the fractions within 1 and 2
   predicted sigma (in-sample: the calibration was fitted on these stars), and the
   out-of-domain flag rates of those stars, of every validation star in the domain, of
   the validation stars with Teff >= 7000 K and of the in-domain stars with 5 pixels set
   to 3x the spectrum's median (random pixels, seed 1).
2. Cross-fitted coverage: the model's members (one network or an ensemble, loaded
   through the registry) predict every in-domain validation star; the star-by-star
   calibration (``fit_sigma_model``, then one factor per label with
   ``fit_calibration(..., bands=COVERAGE_BANDS)`` on the fit half's stars with
   S/N > 50) is fitted on one random half of the stars and the fractions within 1 and 2
   sigma are measured on the other half; 10 halvings (seed 0), both halves, mean of the
   20 measurements; the share of the 20 inside both of issue 9's bands (63-73%, 93-97%)
   is given too. The one-factor calibration of the older versions (``fit_calibration``,
   least squares to 68.3% / 95.4%) is cross-fitted on the same halves.
3. Speed: ``--rounds`` rounds, each one timed call per model in turn (after a warm-up
   call on 10 spectra) on the S/N > 50 spectrum; median and range in spectra per second.

A photometry model (constants with colour scales) gets the library's six magnitudes and
only stars that have all six, as in its training. Written to ``--out`` (default
``benchmarks/results/spectra_validation.txt``) as well as printed.
"""

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from astroml_affiliated.training import spectra as T  # noqa: E402
from astroml_affiliated.spectra import core  # noqa: E402
from spectra_vs_peers import make_spectrum, metrics  # noqa: E402

LABELS = list(core.LABELS)
NAMES = {"teff": "Teff", "logg": "log g", "fe_h": "[Fe/H]", "alpha_m": "[alpha/M]"}
SNR_MIN = 50.0
CORRUPT_SEED = 1  # the corrupted-pixel positions
CV_SEED = 0  # the random halvings
WEIGHTS_DIR_ENV = "ASTROML_AFFILIATED_WEIGHTS_DIR"


# -- which registry ------------------------------------------------------------------

@contextlib.contextmanager
def use_registry(directory):
    """Within the block the package reads ``directory/registry.json`` and takes the
    weights files from ``directory`` (looked up there first and checked against the
    registry's sha256; downloads off); the previous settings come back on leaving."""
    import astroml_affiliated.weights as W
    from astroml_affiliated.config import conf

    directory = Path(directory).resolve()
    saved = W.REGISTRY_FILE, W.SOURCE_WEIGHTS_DIR, os.environ.get(WEIGHTS_DIR_ENV)
    W.REGISTRY_FILE = directory / "registry.json"
    W.SOURCE_WEIGHTS_DIR = directory
    os.environ[WEIGHTS_DIR_ENV] = str(directory)
    try:
        with conf.set_temp("allow_download", False):
            yield
    finally:
        W.REGISTRY_FILE, W.SOURCE_WEIGHTS_DIR = saved[:2]
        if saved[2] is None:
            os.environ.pop(WEIGHTS_DIR_ENV, None)
        else:
            os.environ[WEIGHTS_DIR_ENV] = saved[2]


def forget_loaded_models():
    """Drop the models and constants the package has cached (all directories)."""
    import astroml_affiliated.weights as W
    from astroml_affiliated.spectra import _high_level as H

    W.clear_model_cache()
    H._cache.clear()


class ModelRun:
    """One registered model in one registry directory."""

    def __init__(self, name, directory, tag):
        import astroml_affiliated.weights as W

        self.name, self.directory = name, Path(directory).resolve()
        with use_registry(self.directory):
            self.entry = W.get_entry(name)
        missing = [r["name"] for r in self.entry["files"]
                   if not (self.directory / r["name"]).is_file()]
        if missing:
            raise SystemExit(f"{name} in {self.directory}: files not in that directory: "
                             + ", ".join(missing))
        self.version = self.entry["version"]
        n_weights = sum(r["name"].endswith(".weights.h5") for r in self.entry["files"])
        self.kind = "1 network" if n_weights == 1 else f"ensemble of {n_weights}"
        self.photometry = "photometry" in self.entry["input"]
        self.label = f"{name} {self.version}" + (f" [{tag}]" if tag else "")

    def estimate(self, spectrum, photometry):
        """`estimate_parameters` of this model (its wall time in ``self.seconds``)."""
        from astroml_affiliated.spectra import estimate_parameters

        kw = {"photometry": photometry} if self.photometry else {}
        with use_registry(self.directory):
            t0 = time.perf_counter()
            table = estimate_parameters(spectrum, model=self.name, device="cpu", **kw)
            self.seconds = time.perf_counter() - t0
        return table

    def members(self):
        """The members (through the registry) and the constants as stored."""
        import astroml_affiliated.weights as W

        with use_registry(self.directory):
            members, info = W.load_models(self.name, device="cpu")
        npz = [p for p in info["paths"] if p.name == self.entry["input"]["constants"]][0]
        with np.load(npz) as saved:
            const = {k: saved[k] for k in saved.files}
        return members, const


# -- the stars -------------------------------------------------------------------------

def load_validation():
    """The library without its test rows (never read past this point)."""
    lib = T.load_library()
    keep = lib["split"] != "test"
    lib = {k: v[keep] for k, v in lib.items()}
    assert not np.any(lib["split"] == "test"), "the test split must not be read"
    return lib


def star_sets(lib, photometry):
    """Validation rows (indices) of the accuracy and out-of-domain figures; with
    ``photometry`` only stars with all six magnitudes."""
    val = lib["split"] == "val"
    if photometry:
        val = val & core.complete_photometry(T.library_mags(lib))
    domain = val & (lib["teff"] < T.TEFF_MAX)
    sets = {"snr": np.flatnonzero(domain & (lib["snr"] > SNR_MIN)),
            "domain": np.flatnonzero(domain),
            "hot": np.flatnonzero(val & (lib["teff"] >= T.TEFF_MAX))}
    for idx in sets.values():
        assert np.all(lib["split"][idx] == "val")
    return sets


class Inputs:
    """The spectra (and magnitudes) of `star_sets`, built once per kind of model."""

    def __init__(self, lib, photometry):
        self.sets = star_sets(lib, photometry)
        mags = T.library_mags(lib) if photometry else None
        rng = np.random.default_rng(CORRUPT_SEED)

        def corrupt(flux, n_bad=5, factor=3.0):
            flux = flux.copy()
            for row in flux:
                row[rng.choice(flux.shape[1], n_bad, replace=False)] = factor * np.median(row)
            return flux

        def phot(idx):
            return None if mags is None else {k: v[idx] for k, v in mags.items()}

        s = self.sets
        self.truth = np.stack([lib[n][s["snr"]] for n in LABELS], axis=1)
        self.spectra = {key: (make_spectrum(lib, idx), phot(idx)) for key, idx in s.items()}
        self.spectra["corrupt"] = (make_spectrum(lib, s["domain"], corrupt),
                                   phot(s["domain"]))
        self.spectra["warm"] = (make_spectrum(lib, s["snr"][:10]), phot(s["snr"][:10]))


# -- 1. accuracy and out-of-domain flags -------------------------------------------

OOD_SETS = (("snr", "S/N > 50"), ("domain", "all in domain"), ("hot", "Teff >= 7000 K"),
            ("corrupt", "5 corrupted pixels"))


def accuracy(run, inputs):
    import astropy.units as u

    run.estimate(*inputs.spectra["warm"])
    t = run.estimate(*inputs.spectra["snr"])
    mu = np.stack([u.Quantity(t[n]).value for n in LABELS], axis=1)
    sig = np.stack([u.Quantity(t[n + "_err"]).value for n in LABELS], axis=1)
    out = {"metrics": metrics(mu, sig, inputs.truth), "meta": dict(t.meta), "ood": {}}
    for key, _ in OOD_SETS:
        flags = t["ood_flag"] if key == "snr" else run.estimate(*inputs.spectra[key])["ood_flag"]
        out["ood"][key] = (float(np.mean(flags)), len(flags))
    return out


# -- 2. cross-fitted coverage ------------------------------------------------------------

def validation_mixture(run, lib):
    """Mixture mean and total variance (standardised units), standardised log S/N and
    labels of the in-domain validation stars, and which have S/N > 50."""
    members, const = run.members()
    va = (lib["split"] == "val") & (lib["teff"] < T.TEFF_MAX)
    mags = T.library_mags(lib) if "colour_scale" in const else None
    if mags is not None:
        va &= core.complete_photometry(mags)
    assert np.all(lib["split"][va] == "val")
    xv = core.model_inputs(lib["flux"][va], lib["flux_error"][va], const,
                           None if mags is None else {k: v[va] for k, v in mags.items()})
    mean, _, total = core.mixture(T.predict_members(members, xv))
    truth = np.stack([np.log10(lib["teff"][va]), lib["logg"][va], lib["fe_h"][va],
                      lib["alpha_m"][va]], axis=1)
    truth = (truth - const["label_mean"]) / const["label_std"]
    return mean, total, core.snr_feature(xv, const), truth, lib["snr"][va] > SNR_MIN, const


def fractions(z):
    """Per label, the fractions of finite ``z`` at most 1 and at most 2: shape (2, n_labels)."""
    cols = [c[np.isfinite(c)] for c in z.T]
    return np.array([[np.mean(c <= k) for c in cols] for k in (1, 2)])


def in_bands(f):
    (lo1, hi1), (lo2, hi2) = T.COVERAGE_BANDS
    return (f[0] >= lo1) & (f[0] <= hi1) & (f[1] >= lo2) & (f[1] <= hi2)


def cross_fitted(mean, total, snr, truth, hi, const, halvings, seed=CV_SEED):
    """Coverage of both calibrations, each fitted on one half of the stars and measured
    on the other: means over ``2 * halvings`` measurements of `fractions` (the
    star-by-star calibration on the S/N > 50, all and S/N < 50 stars of the other half;
    the one-factor calibration on its S/N > 50 stars), and the share of the star-by-star
    S/N > 50 measurements inside both bands."""
    rng = np.random.default_rng(seed)
    z_raw = np.abs(mean - truth)
    z_one = z_raw / np.sqrt(total)
    res = {"star_hi": [], "star_all": [], "star_lo": [], "one_hi": []}
    for _ in range(halvings):
        fold = rng.permutation(len(truth)) % 2
        for k in (0, 1):
            fit, meas = fold == k, fold != k
            c = dict(const)
            T.fit_sigma_model(mean[fit], total[fit], snr[fit], truth[fit],
                              np.ones(fit.sum(), bool), c)
            c["calibration"] = np.ones(len(LABELS))
            z = z_raw / core.calibrated_sigma(mean, total, c, snr)
            z = z / T.fit_calibration(z[fit & hi], bands=T.COVERAGE_BANDS)
            res["star_hi"].append(fractions(z[meas & hi]))
            res["star_all"].append(fractions(z[meas]))
            res["star_lo"].append(fractions(z[meas & ~hi]))
            res["one_hi"].append(fractions(z_one[meas & hi] / T.fit_calibration(
                z_one[fit & hi])))
    out = {k: np.mean(v, axis=0) for k, v in res.items()}
    out["inside"] = np.mean([in_bands(f) for f in res["star_hi"]], axis=0)
    out["n"], out["n_hi"], out["measurements"] = len(truth), int(hi.sum()), 2 * halvings
    return out


# -- 3. speed ------------------------------------------------------------------------------

def speeds(runs, inputs, rounds):
    """Spectra per second of each run: ``rounds`` rounds, one timed call per run in turn."""
    out = {r.label: [] for r in runs}
    for _ in range(rounds):
        for run in runs:
            inp = inputs[run.photometry]
            run.estimate(*inp.spectra["warm"])
            run.estimate(*inp.spectra["snr"])
            out[run.label].append(len(inp.sets["snr"]) / run.seconds)
    return out


# -- report ----------------------------------------------------------------------------------

def pct(f1, f2):
    return f"{100 * f1:4.1f}% / {100 * f2:4.1f}%"


def mad(name, value):
    """mad_std to 4 significant digits (as the release decisions printed it)."""
    return f"{value:#.4g} K" if name == "teff" else f"{value:#.4g} dex"


def report_model(run, acc, cv, inputs):
    lines = [f"== {run.label}: {run.kind}{', with photometry' if run.photometry else ''}"
             f" ({run.directory})",
             f"   sha256 {' '.join(s[:12] for s in acc['meta']['sha256'])}"]
    n = len(inputs.sets["snr"])
    lines.append(f"1. validation, Teff < 7000 K, S/N > 50, {n} stars"
                 + (" with all six magnitudes" if run.photometry else "")
                 + ", estimate_parameters:")
    lines.append(f"   {'label':10s} {'mad_std':>11s}  within 1 / 2 sigma (in-sample)")
    for name in LABELS:
        m = acc["metrics"][name]
        lines.append(f"   {NAMES[name]:10s} {mad(name, m['mad_std']):>11s}  "
                     f"{pct(m['within1'], m['within2'])}")
    lines.append("   mad_std " + " / ".join(mad(k, acc["metrics"][k]["mad_std"])
                                            for k in LABELS))
    lines.append("   out-of-domain flags: " + ", ".join(
        f"{label} {100 * acc['ood'][key][0]:.2f}% (N={acc['ood'][key][1]})"
        for key, label in OOD_SETS))
    lines.append(f"2. cross-fitted coverage (fit on one half of {cv['n']} in-domain "
                 f"validation stars, {cv['n_hi']} with S/N > 50, measured on the other; "
                 f"mean of {cv['measurements']}), within 1 / 2 sigma:")
    lines.append(f"   {'label':10s} {'star-by-star, S/N > 50':22s} {'in bands':9s} "
                 f"{'share inside':13s} {'all S/N':16s} {'S/N < 50':16s} "
                 "one-factor, S/N > 50")
    ins = in_bands(cv["star_hi"])
    for i, name in enumerate(LABELS):
        lines.append(f"   {NAMES[name]:10s} {pct(*cv['star_hi'][:, i]):22s} "
                     f"{'yes' if ins[i] else 'NO':9s} {100 * cv['inside'][i]:5.0f}%{'':7s} "
                     f"{pct(*cv['star_all'][:, i]):16s} {pct(*cv['star_lo'][:, i]):16s} "
                     f"{pct(*cv['one_hi'][:, i])}")
    lines.append("   star-by-star S/N > 50: " + ", ".join(
        f"{100 * a:.1f}/{100 * b:.1f}" for a, b in cv["star_hi"].T)
        + "   one-factor: " + ", ".join(f"{100 * a:.1f}/{100 * b:.1f}"
                                        for a, b in cv["one_hi"].T))
    lines.append("   (in bands: the mean inside 63-73% and 93-97%; share inside: of the "
                 f"{cv['measurements']} measurements, those inside both bands; all S/N, "
                 "S/N < 50: the star-by-star calibration on those stars of the measured "
                 "half)")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="registered model names")
    parser.add_argument("--registry", nargs="+", default=[str(ROOT / "weights")],
                        metavar="DIR", help="directories holding a registry.json and its "
                        "files; every model is run from each (default: weights/)")
    parser.add_argument("--rounds", type=int, default=9,
                        help="timed calls of each model, alternating (default 9)")
    parser.add_argument("--cv-halvings", type=int, default=10,
                        help="random halvings of the validation stars (default 10)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/spectra_validation.txt"),
                        help="file the report is written to ('' for none)")
    args = parser.parse_args(argv)
    t_start = time.time()
    load0 = os.getloadavg()
    many = len(args.registry) > 1
    runs = [ModelRun(name, d, str(d) if many else "") for d in args.registry
            for name in args.models]
    lib = load_validation()
    inputs = {p: Inputs(lib, p) for p in sorted({r.photometry for r in runs})}
    results = {}
    for run in runs:
        acc = accuracy(run, inputs[run.photometry])
        cv = cross_fitted(*validation_mixture(run, lib), halvings=args.cv_halvings)
        results[run.label] = (acc, cv)
        print(f"{time.strftime('%H:%M:%S')} {run.label} done", flush=True)
    speed = speeds(runs, inputs, args.rounds)
    forget_loaded_models()

    lines = ["Validation-split figures of the Gaia XP label models "
             "(benchmarks/spectra_validation.py; the test split is not read)",
             f"date {time.strftime('%Y-%m-%d %H:%M %Z')}; command: python "
             f"benchmarks/spectra_validation.py {' '.join(sys.argv[1:] if argv is None else argv)}",
             f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}),"
             f" device cpu; load average at start {load0[0]:.2f}, at end "
             f"{os.getloadavg()[0]:.2f}", ""]
    for run in runs:
        acc, cv = results[run.label]
        lines += report_model(run, acc, cv, inputs[run.photometry]) + [""]
    lines.append(f"3. speed, estimate_parameters on the S/N > 50 spectrum, {args.rounds} "
                 "alternating timed calls (each after a warm-up on 10 spectra), spectra/s:")
    for run in runs:
        s = np.array(speed[run.label])
        lines.append(f"   {run.label:40s} median {np.median(s):7,.0f}  range "
                     f"{s.min():7,.0f} - {s.max():7,.0f}  "
                     f"(N={len(inputs[run.photometry].sets['snr'])}; "
                     f"calls: {', '.join(f'{v:,.0f}' for v in s)})")
    lines.append(f"\n{time.time() - t_start:.0f} s in all")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
