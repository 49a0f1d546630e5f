"""The ensemble's outputs and their star-by-star calibration on the validation split.

Re-exported by `astroml_affiliated.training.spectra`.
"""

import numpy as np

from ..spectra import core
from ._spectra_data import TEFF_MAX, _rows

def predict_members(models, x, batch=8192):
    """Outputs of every member, shape (n, n_members, 2 * n_labels)."""
    from ..spectra.models import stack_ensemble
    ens = stack_ensemble(models)
    return np.asarray(ens.predict(x, batch_size=batch, verbose=0))


#: Issue 9's bands for the fractions of residuals within 1 and 2 predicted sigma.
COVERAGE_BANDS = ((0.63, 0.73), (0.93, 0.97))


def fit_calibration(z_abs, bands=None):
    """Per-label factor s on sigma, from |residual| / sigma of validation stars.

    Without ``bands``: |residual| / (s sigma) holds 68.3% within 1 and 95.4% within 2
    as closely as possible (least squares on the two fractions; versions up to 1.1.0).
    With ``bands`` (``((lo1, hi1), (lo2, hi2))``): the s that puts both fractions
    inside their bands with the largest margin to the nearest band edge. Heavy-tailed
    residuals cannot give 68.3% and 95.4% at once; least squares then lands below the
    2-sigma band, while this puts both fractions inside theirs where they can be."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(3.0), 541))
    out = []
    for z in z_abs.T:
        z = z[np.isfinite(z)]
        f1 = np.array([(z <= s).mean() for s in grid])
        f2 = np.array([(z <= 2 * s).mean() for s in grid])
        if bands is None:
            cost = (f1 - 0.6827) ** 2 + (f2 - 0.9545) ** 2
        else:
            (lo1, hi1), (lo2, hi2) = bands
            cost = -np.minimum.reduce([f1 - lo1, hi1 - f1, f2 - lo2, hi2 - f2])
        out.append(grid[np.argmin(cost)])
    return np.array(out)


def fit_sigma_model(mean, total, snr, truth, rows, const, ridge=1e-3):
    """The star-by-star part of the uncertainty calibration (`core.calibrated_sigma`),
    written into ``const``: per label, log(sigma_new / sigma) is a quadratic function
    (no cross terms) of the standardised label means, the log of that label's sigma and
    the standardised log10 S/N (`core.calibration_design`), fitted to the residuals of
    the stars ``rows`` by Gaussian maximum likelihood with a small ridge penalty.

    ``mean``, ``total``: mixture mean and total variance (standardised units);
    ``snr``: `core.snr_feature`; ``truth``: standardised labels (NaN where missing).
    Returns z = |residual| / sigma_new for every star (NaN where the label is missing).
    """
    from scipy.optimize import minimize

    sd = np.sqrt(total)
    n_lab = sd.shape[1]
    n_feat = mean.shape[1] + 2
    for key in ("calib_feat_mean", "calib_feat_std", "calib_feat_lo", "calib_feat_hi"):
        const[key] = np.zeros((n_lab, n_feat))
    const["calib_feat_std"][:] = 1.0
    const["calib_coef"] = np.zeros((n_lab, 1 + 2 * n_feat))
    z = np.full(sd.shape, np.nan)
    for i in range(n_lab):
        ok = rows & np.isfinite(truth[:, i])
        f = np.column_stack([mean, np.log(sd[:, i]), snr])[ok]
        const["calib_feat_mean"][i], const["calib_feat_std"][i] = f.mean(0), f.std(0)
        fz = (f - f.mean(0)) / f.std(0)
        const["calib_feat_lo"][i], const["calib_feat_hi"][i] = fz.min(0), fz.max(0)
        design = core.calibration_design(mean[ok], sd[ok], snr[ok], const, i)
        res2 = (mean[ok, i] - truth[ok, i]) ** 2
        base = np.log(sd[ok, i])
        penalty = np.r_[0.0, np.full(design.shape[1] - 1, ridge)]

        def nll(w):
            ls = base + design @ w
            q = res2 * np.exp(-2 * ls)
            value = np.mean(ls + 0.5 * q) + np.sum(penalty * w ** 2)
            grad = design.T @ (1 - q) / len(q) + 2 * penalty * w
            return value, grad

        const["calib_coef"][i] = minimize(nll, np.zeros(design.shape[1]), jac=True,
                                          method="L-BFGS-B").x
        has = np.isfinite(truth[:, i])
        design = core.calibration_design(mean[has], sd[has], snr[has], const, i)
        z[has, i] = np.abs(mean[has, i] - truth[has, i]) / (
            sd[has, i] * np.exp(design @ const["calib_coef"][i]))
    return z


def calibrate(members, const, lib, va, flux, err, mags=None, sigma_model=False):
    """Calibration and out-of-domain thresholds of ``members`` (one network or an
    ensemble) on the validation stars ``va`` (Teff < 7000 K), in place in ``const``;
    the hot-star classifier is fitted on the training split unless ``const`` has one.
    With ``sigma_model`` (version 1.2.0 on): the star-by-star `fit_sigma_model` on
    every validation star, then one factor per label that puts the stars with S/N > 50
    inside issue 9's coverage bands (`fit_calibration` with `COVERAGE_BANDS`); without
    it, one factor per label only (least squares to 68.3% / 95.4%, S/N > 50).
    Returns the validation figures for the registry."""
    for key in ("calib_coef", "calib_feat_mean", "calib_feat_std", "calib_feat_lo",
                "calib_feat_hi"):
        const.pop(key, None)  # fitted below, from scratch
    const["calibration"] = np.ones(len(core.LABELS))
    xv = core.model_inputs(flux[va], err[va], const, _rows(mags, va))
    out = predict_members(members, xv)
    truth = np.stack([lib["teff"], lib["logg"], lib["fe_h"], lib["alpha_m"]], axis=1)[va]
    good_lab = lib["snr"][va] > 50
    if sigma_model:
        mean_s, spread, total = core.mixture(out)
        truth_s = np.stack([np.log10(truth[:, 0]), *truth[:, 1:].T], axis=1)
        truth_s = (truth_s - const["label_mean"]) / const["label_std"]
        z = fit_sigma_model(mean_s, total, core.snr_feature(xv, const), truth_s,
                            np.ones(len(truth), bool), const)
        calib = fit_calibration(z[good_lab], bands=COVERAGE_BANDS)
    else:
        mean, sigma, spread = core.combine_ensemble(out, const)
        z = np.abs(mean - truth) / sigma
        calib = fit_calibration(z[good_lab])
    const["calibration"] = calib
    print("calibration factors (validation, XP S/N > 50):", np.round(calib, 3))
    if "hot_coef" not in const:
        # hot-star classifier (training split, every Teff): part of the out-of-domain score
        from sklearn.linear_model import LogisticRegression
        trall = lib["split"] == "train"
        xall = np.clip((core.standardise(flux[trall], const) - const["pca_mean"])
                       @ const["whiten"], -const["feature_clip"], const["feature_clip"])
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(
            xall, lib["teff"][trall] >= TEFF_MAX)
        const["hot_coef"], const["hot_intercept"] = clf.coef_[0], clf.intercept_[0]
    parts = core.ood_parts(core.standardise(flux[va], const), spread, const)
    thr = np.quantile(parts, 0.995, axis=0)
    thr[4] = 0.5  # the hot-star probability: flagged above 0.5
    # one network: no disagreement (spread 0), that part is left out (threshold inf)
    const["ood_thresholds"] = np.where(thr > 0, thr, np.inf)
    flag = core.ood_score(parts, const) > 1
    print(f"validation OOD flag rate {flag.mean():.4f}")
    vhot = (lib["split"] == "val") & (lib["teff"] >= TEFF_MAX)
    if mags is not None:
        vhot &= core.complete_photometry(mags)
    xh = core.model_inputs(flux[vhot], err[vhot], const, _rows(mags, vhot))
    _, _, sph = core.combine_ensemble(predict_members(members, xh), const)
    hot_rate = (core.ood_score(core.ood_parts(core.standardise(flux[vhot], const), sph,
                                              const), const) > 1).mean()
    print(f"validation hot stars (Teff >= {TEFF_MAX:.0f} K): {vhot.sum()}, "
          f"flagged {hot_rate:.3f}", flush=True)
    return {"calibration": [float(c) for c in calib],
            "val_ood_flag_rate": float(flag.mean()), "val_hot_flag_rate": float(hot_rate)}
