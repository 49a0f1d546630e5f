"""Demo: find flares in a synthetic TESS 2-minute light curve of known truth.

The light curve is generated here (it is *synthetic*, not an observation): a spotted M
dwarf (two spots, rotation period 0.83 d), correlated (red) plus white noise, a data gap
(the mid-sector downlink, 1 day), and 12 injected flares (Davenport 2014 template) with
known peak times, amplitudes and FWHMs, one of them in the last cadences of the sector.
"""

from pathlib import Path

import numpy as np

from . import core

__all__ = ["synthetic_lightcurve", "run_demo"]

CAD = 2.0 / 1440


def synthetic_lightcurve(seed=2026, n=13000):
    """A synthetic TESS 2-min light curve and the table of its injected flares.

    Returns
    -------
    lc : `lightkurve.TessLightCurve`
        Flux in e-/s, labelled ``OBJECT = 'SYNTHETIC M dwarf'``.
    truth : `~astropy.table.QTable`
        ``index``, ``tpeak``, ``amplitude``, ``fwhm`` [min] of the injected flares.
    """
    import lightkurve as lk
    from astropy import units as u
    from astropy.table import QTable
    from astropy.time import Time

    rng = np.random.default_rng(seed)
    t = 1600.0 + np.arange(n) * CAD
    phase = 2 * np.pi * (t - t[0]) / 0.83
    spots = 1 - 0.012 * (1 + np.cos(phase)) - 0.006 * (1 + np.cos(phase + 2.1)) ** 2
    red = np.convolve(rng.normal(0, 1, n + 60), np.ones(60) / np.sqrt(60), "valid")[:n]
    noise = 0.004
    flux = spots * (1 + 0.4 * noise * red) + rng.normal(0, noise, n)
    # flares: index, amplitude, FWHM [min]; the last one is 8 cadences from the end
    idx = np.array([700, 1900, 2600, 3500, 4800, 5200, 8100, 9000, 10400, 11300, 12200,
                    n - 8])
    ampl = np.array([0.05, 0.30, 0.03, 0.08, 0.02, 0.12, 0.04, 1.20, 0.06, 0.025, 0.09,
                     0.07])
    fwhm = np.array([6, 14, 4, 8, 6, 10, 5, 20, 6, 8, 7, 6], dtype=float)
    for i, a, w in zip(idx, ampl, fwhm):
        flux += spots * core.flare_template(t, t[i] + 0.3 * CAD, w / 1440, a, exptime=CAD)
    keep = np.ones(n, dtype=bool)
    keep[6200:6200 + 720] = False  # 1-day data downlink gap
    flux_e = 350.0 * flux[keep]
    lc = lk.TessLightCurve(time=Time(t[keep], format="btjd", scale="tdb"),
                           flux=flux_e * u.electron / u.s,
                           flux_err=np.full(keep.sum(), 350.0 * noise) * u.electron / u.s)
    lc["cadenceno"] = np.arange(n)[keep] + 500000
    lc["quality"] = np.zeros(keep.sum(), dtype=np.int32)
    lc.meta.update({"OBJECT": "SYNTHETIC M dwarf", "TARGETID": 0, "SECTOR": 0,
                    "LABEL": "synthetic light curve (astroml_affiliated demo)"})
    new_index = np.cumsum(keep) - 1
    truth = QTable({"index": new_index[idx], "tpeak": Time(t[idx] + 0.3 * CAD,
                                                             format="btjd"),
                    "amplitude": ampl, "fwhm": fwhm * u.min})
    return lc, truth


def run_demo(outdir):
    """Write ``flares.ecsv`` and ``flares.png`` for the synthetic light curve to ``outdir``.

    Returns the `FlareTable`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._high_level import find_flares

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    lc, truth = synthetic_lightcurve()
    tab = find_flares(lc)
    found = np.asarray(tab["peak_index"])
    hit = np.array([np.any(np.abs(found - i) <= 3) for i in truth["index"]])
    matched = np.array([np.any(np.abs(np.asarray(truth["index"]) - p) <= 3) for p in found])
    tab.meta["description"] = ("flares found in a SYNTHETIC TESS 2-min light curve "
                               "(astroml_affiliated.flares.demo)")
    tab.write(outdir / "flares.ecsv", overwrite=True)
    fig, ax = plt.subplots(figsize=(12, 4))
    tab.plot(lc, ax=ax)
    for i in truth["index"]:
        ax.axvline(lc.time.value[i], color="C0", lw=0.6, ls=":", zorder=0)
    ax.set_title(f"SYNTHETIC light curve: {hit.sum()}/{len(truth)} injected flares "
                 f"recovered, {int((~matched).sum())} other event(s) "
                 "(dotted: injected peaks; red: found)")
    fig.tight_layout()
    fig.savefig(outdir / "flares.png", dpi=110)
    plt.close(fig)
    print(f"flares: synthetic TESS 2-min light curve ({len(lc)} cadences, spots, red "
          f"noise, a 1-day gap); {len(tab)} flare(s) found, {hit.sum()} of "
          f"{len(truth)} injected flares recovered (peak within 3 cadences), "
          f"{int((~matched).sum())} event(s) not injected.")
    for a, w, ok in zip(truth["amplitude"], truth["fwhm"].value, hit):
        if not ok:
            print(f"  missed: amplitude {a:.3f}, FWHM {w:.0f} min")
    print(f"  model {tab.meta['model']} {tab.meta['version']} on {tab.meta['device']}; "
          f"wrote {outdir / 'flares.ecsv'} and {outdir / 'flares.png'}")
    return tab
