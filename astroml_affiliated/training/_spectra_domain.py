"""Version 1.4.0 of ``gaiaxp-labels``: a second hot-star classifier and a
masked-fraction term, refitted on the registered network
(``python -m astroml_affiliated.training.spectra --refit-domain``).

Re-exported by `astroml_affiliated.training.spectra`.
"""

import json
import time
from pathlib import Path

import numpy as np

from ..spectra import core
from ._spectra_calibration import COVERAGE_BANDS, predict_members
from ._spectra_data import MODEL_NAME, TEFF_MAX, load_library

# -- version 1.4.0: a second hot-star classifier and a masked-fraction term -----------

DOMAIN_VERSION = "1.4.0"  # the 1.3.0 network with new out-of-domain and masking constants
#: Inverse regularisation of the second hot-star classifier (chosen on validation
#: among 0.1, 1 and 10) and its own whitened components of the standardised flux.
HOT_C = 10.0
HOT_N_WHITEN = 80
#: Largest fraction of the validation stars with Teff < 7000 K and S/N > 50 that the
#: out-of-domain flag may take: sets the classifier's threshold (1.4.0 rule).
HOT_HEADLINE_FLAG_RATE = 0.015
#: The masked ends the masked-fraction term is fitted on: the bluest 30 pixels (9%) and
#: the reddest 60 (17%).
MASKED_ENDS = ((0, 30), (283, 343))


def network_outputs(model, const, flux, err, mask=None):
    """What `estimate_parameters` computes for library rows, from plain arrays (the
    same functions): the label means and calibrated sigmas (before the masked-fraction
    term), the standardised S/N, the `core.ood_parts` and the masked fractions.
    ``mask`` (True = bad) filled in as at inference."""
    from ..spectra._high_level import _features_block

    flux = np.asarray(flux, float)
    var = np.asarray(err, float) ** 2
    good = np.ones(flux.shape, bool) if mask is None else ~mask
    if mask is not None:
        flux = np.where(good, flux, np.nan)
        var = np.where(good, var, np.nan)
    x = np.empty((len(flux), core.n_inputs(const)), np.float32)
    parts = _features_block(flux, var, good, const, x, 0)
    out = predict_members([model], x)
    snr = core.snr_feature(x, const)
    mean, sigma, _ = core.combine_ensemble(out, const, snr)
    return mean, sigma, snr, parts, 1.0 - good.mean(axis=1)


def fit_hot_classifier(const, lib, train_out, tr):
    """The second hot-star classifier (`core.hot_probability`), fitted on the training
    rows ``tr`` (every temperature) and written into ``const``: a logistic regression
    (C = `HOT_C`) on the `core.hot_design` of what the network says (``train_out``:
    `network_outputs` of those rows) and on `HOT_N_WHITEN` whitened principal
    components of the standardised flux of the same stars (its own components, not
    the model's, which only know cool stars)."""
    from sklearn.linear_model import LogisticRegression

    mean, sigma, snr, parts, _ = train_out
    hot = lib["teff"][tr] >= TEFF_MAX
    feats = core.hot_label_features(mean, sigma, snr, parts)
    const["hot_label_mean"], const["hot_label_std"] = feats.mean(0), feats.std(0)
    z = (feats - const["hot_label_mean"]) / const["hot_label_std"]
    const["hot_label_lo"], const["hot_label_hi"] = z.min(0), z.max(0)
    q = core.hot_design(feats, const)
    qm, qs = q.mean(0), q.std(0)
    xs = core.standardise(lib["flux"][tr].astype(float), const)
    xm = xs.mean(0)
    _, sv, vt = np.linalg.svd(xs - xm, full_matrices=False)
    white = (vt[:HOT_N_WHITEN] / (sv[:HOT_N_WHITEN, None] / np.sqrt(len(xs) - 1))).T
    xw = (xs - xm) @ white
    wm, ws = xw.mean(0), xw.std(0)
    design = np.column_stack([(q - qm) / qs, (xw - wm) / ws])
    clf = LogisticRegression(C=HOT_C, max_iter=5000).fit(design, hot)
    coef, b = clf.coef_[0], float(clf.intercept_[0])
    cq, cw = coef[:q.shape[1]] / qs, coef[q.shape[1]:] / ws
    # folded: logit = design @ cq + xs @ (white @ cw) + offset
    const["hot_label_coef"] = cq
    const["hot_pixel_coef"] = white @ cw
    const["hot_offset"] = np.array(b - qm @ cq - (xm @ white + wm) @ cw)
    return const


def hot_threshold(const, val_out, headline):
    """The hot-star probability above which a star is flagged: the largest threshold
    with at most `HOT_HEADLINE_FLAG_RATE` of the ``headline`` validation stars flagged
    by the whole out-of-domain score."""
    mean, sigma, snr, parts, _ = val_out
    parts = parts.copy()
    parts[:, core.OOD_HOT] = core.hot_probability(mean, sigma, snr, parts, const)
    thr = const["ood_thresholds"].copy()
    others = np.arange(core.OOD_HOT)  # the statistics before the hot-star probability
    base = ((parts[:, others] / thr[others]).max(axis=1) > 1)[headline]
    p = np.sort(parts[headline, core.OOD_HOT][~base])[::-1]
    n_more = int(np.floor(HOT_HEADLINE_FLAG_RATE * headline.sum())) - int(base.sum())
    return float(p[max(n_more, 0)])  # flagged: p > threshold


def fit_masked_term(z_by_end, masked_by_end):
    """Per label, the ``a`` of the widening ``1 + a * masked_fraction``
    (`core.widen_for_masked`) that puts the fractions of stars within 1 sigma with each
    masked end (``z_by_end``: list of |residual| / sigma arrays (n, n_labels), the
    sigmas before widening; ``masked_by_end``: their masked fractions) inside 63-73%
    with the largest margin to the nearest band edge."""
    (lo, hi), _ = COVERAGE_BANDS
    grid = np.linspace(0.0, 30.0, 3001)
    coef = []
    for i in range(z_by_end[0].shape[1]):
        best = (np.inf, 0.0)
        for a in grid:
            margin = np.inf
            for z, m in zip(z_by_end, masked_by_end):
                ok = np.isfinite(z[:, i])
                f = np.mean(z[ok, i] / (1.0 + a * m[ok]) <= 1)
                margin = min(margin, f - lo, hi - f)
            if -margin < best[0]:
                best = (-margin, a)
        coef.append(best[1])
    return np.array(coef)


def refit_domain(args):
    """Version 1.4.0: the registered network (1.3.0 weights) with a second hot-star
    classifier (training split) and its threshold and a masked-fraction term
    (validation split); writes ``gaiaxp-labels-1.4.0-constants.npz`` next to the
    registry in ``args.out`` and registers it with the same weights file."""
    from ..device import import_keras
    from ..spectra.models import build_gaiaxp_mlp
    import_keras()
    t0 = time.time()
    out = Path(args.out)
    entry = json.loads((out / "registry.json").read_text())["models"][MODEL_NAME]
    net_file = [f["name"] for f in entry["files"] if f["name"].endswith(".weights.h5")][0]
    model = build_gaiaxp_mlp(**entry["architecture_kwargs"])
    model.load_weights(out / net_file)
    with np.load(out / entry["input"]["constants"]) as saved:
        const = {k: saved[k] for k in saved.files}
    for key in ("hot_label_coef", "hot_pixel_coef", "hot_offset", "hot_label_mean",
                "hot_label_std", "hot_label_lo", "hot_label_hi", "masked_coef"):
        const.pop(key, None)  # fitted below, from scratch
    const["ood_thresholds"] = const["ood_thresholds"][:5]
    lib = load_library()
    tr = lib["split"] == "train"  # every temperature
    va = lib["split"] == "val"
    flux, err = lib["flux"], lib["flux_error"]
    fit_hot_classifier(const, lib, network_outputs(model, const, flux[tr], err[tr]), tr)
    val_out = network_outputs(model, const, flux[va], err[va])
    teff, snr = lib["teff"][va], lib["snr"][va]
    headline = (teff < TEFF_MAX) & (snr > 50)
    thr = hot_threshold(const, val_out, headline)
    const["ood_thresholds"] = np.concatenate([const["ood_thresholds"][:4], [thr, np.inf]])
    print(f"hot-star classifier: threshold {thr:.4f} (validation)", flush=True)
    # the masked-fraction term, on the headline validation stars
    vh = np.flatnonzero(va)[headline]
    truth = np.stack([lib["teff"], lib["logg"], lib["fe_h"], lib["alpha_m"]], axis=1)[vh]
    zs, ms = [], []
    for a, b in MASKED_ENDS:
        mask = np.zeros(flux[vh].shape, bool)
        mask[:, a:b] = True
        mean, sigma, _, _, masked = network_outputs(model, const, flux[vh], err[vh], mask)
        zs.append(np.abs(mean - truth) / sigma)
        ms.append(masked)
    const["masked_coef"] = fit_masked_term(zs, ms)
    print("masked-fraction term:", np.round(const["masked_coef"], 3), flush=True)
    npz = out / f"{MODEL_NAME}-{args.student_version}-constants.npz"
    np.savez(npz, **{k: np.asarray(v) for k, v in const.items()})
    elapsed = time.time() - t0
    print(f"1.4.0 constants written to {npz} ({elapsed:.0f} s)", flush=True)
    if not args.no_register:
        from ..weights import write_registry_entry
        training = dict(entry["training"])
        training.update(
            command=training["command"] + " && python -m astroml_affiliated.training."
            f"spectra --out {args.out} --refit-domain --student-version "
            f"{args.student_version}",
            network_version=entry["version"],
            hot_classifier={"C": HOT_C, "n_whiten": HOT_N_WHITEN, "threshold": thr,
                            "headline_flag_rate": HOT_HEADLINE_FLAG_RATE,
                            "fitted_on": "training split, every Teff"},
            masked_coef=[float(c) for c in const["masked_coef"]],
            masked_ends=[list(e) for e in MASKED_ENDS],
            seconds_refit=round(elapsed))
        write_registry_entry(
            MODEL_NAME, version=args.student_version,
            description=entry["description"] + "; version 1.4.0: a second hot-star "
                        "classifier and uncertainties widened for filled-in pixels",
            architecture=entry["architecture"],
            architecture_kwargs=entry["architecture_kwargs"],
            files=[out / net_file, npz],
            input={**entry["input"], "constants": npz.name}, training=training,
            model_card=entry["model_card"], registry_path=out / "registry.json")
        print(f"registered {MODEL_NAME} {args.student_version} in {out / 'registry.json'}")
