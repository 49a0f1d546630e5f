"""Figures of `estimate_parameters` results: spectra with their labels, Kiel diagram."""

import numpy as np

__all__ = ["plot_parameters"]


def _label_text(row):
    def val(name):
        return float(np.asarray(getattr(row[name], "value", row[name])))

    text = (f"Teff = {val('teff'):.0f} ± {val('teff_err'):.0f} K\n"
            f"log g = {val('logg'):.2f} ± {val('logg_err'):.2f}\n"
            f"[Fe/H] = {val('fe_h'):.2f} ± {val('fe_h_err'):.2f}\n"
            f"[α/M] = {val('alpha_m'):.3f} ± {val('alpha_m_err'):.3f}")
    if row["ood_flag"]:
        text += "\nOUT OF DOMAIN"
    return text


def plot_parameters(table, spectrum=None, *, figure=None, max_spectra=6):
    """Plot labels from `estimate_parameters`.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        The result of `estimate_parameters`.
    spectrum : `specutils.Spectrum` or list, optional
        The spectra the table was computed from (the first ``max_spectra`` are drawn,
        each labelled with its parameters).
    figure : `matplotlib.figure.Figure`, optional
        Figure to draw into; a new one by default.
    max_spectra : int
        Most spectra drawn.

    Returns
    -------
    `matplotlib.figure.Figure`
        Left: the spectra (median-normalised, offset) with their labels; right (for more
        than one row): a Kiel diagram (Teff against log g, coloured by [Fe/H], with
        error bars; out-of-domain stars as crosses).
    """
    import astropy.units as u
    import matplotlib.pyplot as plt

    many = len(table) > 1
    if figure is None:
        figure = plt.figure(figsize=(12 if many else 7, 5), layout="constrained")
    axes = figure.subplots(1, 2 if many else 1, squeeze=False)[0]
    ax = axes[0]
    if spectrum is not None:
        spectra = list(spectrum) if isinstance(spectrum, (list, tuple)) else [spectrum]
        rows = []
        for s in spectra:
            wave = u.Quantity(s.spectral_axis).to_value(u.nm, equivalencies=u.spectral())
            flux = np.atleast_2d(u.Quantity(s.flux).value)
            rows.extend((wave, f) for f in flux)
        for i, ((wave, f), row) in enumerate(zip(rows[:max_spectra], table)):
            order = np.argsort(wave)
            fn = f[order] / np.nanmax(f)
            line, = ax.plot(wave[order], fn + 1.4 * i, lw=1)
            if many:
                ax.text(wave.min(), 1.4 * i + 1.03, _label_text(row).replace("\n", ", "),
                        fontsize=6.5, ha="left", va="bottom", color=line.get_color())
        ax.set_xlabel("wavelength [nm]")
        ax.set_ylabel("flux / maximum" + (" + offset" if many else ""))
        if not many:
            ax.text(0.98, 0.95, _label_text(table[0]), transform=ax.transAxes,
                    ha="right", va="top", fontsize=9,
                    bbox=dict(facecolor="white", alpha=0.8, edgecolor="0.7"))
    else:
        ax.axis("off")
        ax.text(0.05, 0.95, "\n\n".join(_label_text(r) for r in table[:max_spectra]),
                va="top", fontsize=8, transform=ax.transAxes)
    if many:
        kx = axes[1]
        teff = u.Quantity(table["teff"]).value
        logg = u.Quantity(table["logg"]).value
        feh = u.Quantity(table["fe_h"]).value
        ok = ~np.asarray(table["ood_flag"], bool)
        kx.errorbar(teff, logg, xerr=u.Quantity(table["teff_err"]).value,
                    yerr=u.Quantity(table["logg_err"]).value, fmt="none", ecolor="0.7",
                    lw=0.7, zorder=1)
        sc = kx.scatter(teff[ok], logg[ok], c=feh[ok], cmap="viridis", s=25, zorder=2)
        if (~ok).any():
            kx.scatter(teff[~ok], logg[~ok], marker="x", c="crimson", s=30, zorder=3,
                       label="out of domain")
            kx.legend(loc="lower left", fontsize=8)
        figure.colorbar(sc, ax=kx, label="[Fe/H] [dex]")
        kx.invert_xaxis()
        kx.invert_yaxis()
        kx.set_xlabel("Teff [K]")
        kx.set_ylabel("log g [dex]")
        kx.set_title(f"{table.meta.get('model', '')} {table.meta.get('version', '')}")
    return figure
