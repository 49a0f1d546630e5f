"""Image differencing: FWHM, photometric scale, flux units and calibrated significance."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("photutils")

import astropy.units as u  # noqa: E402
from astropy.nddata import CCDData, StdDevUncertainty  # noqa: E402

from astroml_affiliated import InputError  # noqa: E402
from astroml_affiliated.imagediff import core  # noqa: E402


def _star_field(shape, fwhm, *, n=80, seed=0, noise=3.0, sky=100.0, flux=(2.5, 5.0),
                beta=None):
    """Stars (Gaussian integrated over pixels, or a Moffat of ``beta``) plus sky and noise."""
    from astroml_affiliated.imagediff.demo import _render

    rng = np.random.default_rng(seed)
    ys = rng.uniform(5, shape[0] - 5, n)
    xs = rng.uniform(5, shape[1] - 5, n)
    fl = 10 ** rng.uniform(*flux, n)
    if beta is None:
        yy, xx = np.indices(shape, dtype=float)
        img = np.zeros(shape)
        for y, x, f in zip(ys, xs, fl):
            img += core._gaussian_prf([f, y, x, fwhm / 2.3548, 0.0], yy, xx)
    else:
        img = _render(shape, xs, ys, fl, fwhm, beta=beta)
    return img + sky + rng.normal(0, noise, shape), np.column_stack([xs, ys, fl])


@pytest.mark.parametrize("fwhm", [1.5, 2.3, 4.0, 6.0])
def test_fwhm_estimate_within_10_percent(fwhm):
    # the second-moment estimate in a 15x15 box was biased high: +81% at 1.5 px, +53% at
    # 2.3 px, +16% at 4 px (the issue measured 7.6 px on JWST frames of 2.33 px)
    img, _ = _star_field((256, 256), fwhm, seed=int(10 * fwhm))
    assert abs(core.estimate_fwhm(img) / fwhm - 1) < 0.1


def test_fwhm_estimate_agrees_with_photutils_fit():
    from photutils.psf import fit_fwhm

    img, stars = _star_field((256, 256), 4.0, seed=3, beta=3.5)
    est = core.estimate_fwhm(img)
    level, _ = core.robust_background(img)
    xy = stars[:, :2]
    d = np.hypot(*(xy[:, None] - xy[None]).T)
    np.fill_diagonal(d, np.inf)
    iso = ((d.min(axis=0) > 15) & (stars[:, 2] > 3e3) & (stars[:, 2] < 5e4)
           & np.all((xy > 12) & (xy < 243), axis=1))
    ref = np.median(fit_fwhm(img - level, xypos=xy[iso], fwhm=4.0, fit_shape=11))
    assert iso.sum() >= 5
    assert abs(est / ref - 1) < 0.1


def _difference_like(unit, *, wcs=True, seed=0, flux=5000.0, fwhm=3.0):
    """A difference-like CCDData: one point source on Gaussian noise (sigma 10)."""
    from astroml_affiliated.imagediff.demo import _wcs

    rng = np.random.default_rng(seed)
    yy, xx = np.indices((96, 96), dtype=float)
    data = core._gaussian_prf([flux, 47.3, 50.6, fwhm / 2.3548, 0.0], yy, xx)
    data += rng.normal(0, 10.0, data.shape)
    return CCDData(data, unit=unit, uncertainty=StdDevUncertainty(np.full(data.shape, 10.0)),
                   wcs=_wcs(data.shape, scale_arcsec=1.2) if wcs else None,
                   meta={"fwhm": fwhm})


@pytest.mark.parametrize("unit, expected", [("adu", u.adu), ("electron", u.electron),
                                            ("adu / pix", u.adu),
                                            ("electron / s", u.electron / u.s)])
def test_transient_flux_in_the_image_flux_unit(unit, expected):
    # it was "adu pix": a sum of a per-pixel flux is a flux
    from astroml_affiliated.imagediff import find_transients

    row = find_transients(_difference_like(unit))[0]
    assert row["flux"].unit == expected and row["flux_err"].unit == expected
    assert abs(row["flux"].value / 5000.0 - 1) < 0.05


def test_transient_flux_of_a_surface_brightness_in_jy():
    # MJy/sr integrates with the pixel solid angle (1.2" pixels): it was "MJy pix / sr"
    from astroml_affiliated.imagediff import find_transients

    row = find_transients(_difference_like("MJy / sr"))[0]
    assert row["flux"].unit == u.Jy
    pixel_sr = ((1.2 * u.arcsec) ** 2).to_value(u.sr)
    assert abs(row["flux"].value / (5000.0 * 1e6 * pixel_sr) - 1) < 0.05
    assert row["flux_err"].unit == u.Jy and row["flux_err"].value > 0
    # without a celestial WCS the solid angle is unknown: a clear error, not a number
    with pytest.raises(InputError, match="surface brightness.*celestial WCS"):
        find_transients(_difference_like("MJy / sr", wcs=False))


@pytest.mark.parametrize("seed", [5, 8, 9])
def test_photometric_scale_within_1_percent(seed):
    # a kernel least-squares fit over the whole pair (Moffat science PSF, Gaussian
    # reference PSF of another width): within 1% of the truth. The median or slope of
    # aperture ratios on a few stars was off by 1.8%, 3.6% and 4.3% on these pairs.
    from astroml_affiliated.imagediff.demo import synthetic_pair

    science, reference, truth = synthetic_pair(seed=seed, wcs=False, fwhm_sci=6.0,
                                               fwhm_ref=4.0)
    s, r = science.data, reference.data
    bad = np.zeros(s.shape, bool)
    s = s - core.robust_background(s)[0]
    r = r - core.robust_background(r)[0]
    fwhm = (core.estimate_fwhm(s), core.estimate_fwhm(r))
    ratio, n_sources = core.flux_ratio(s, r, bad, fwhm)
    assert n_sources >= 10
    assert abs(ratio * truth["ref_scale"] - 1) < 0.01


def _pair_of_one_scene(fwhm, seed, transient=None):
    """Two independent noise realisations of one star field (electrons), optionally with a
    point source of (x, y, flux) added to the first (the science)."""
    scene, _ = _star_field((256, 256), fwhm, seed=seed, noise=0.0, sky=200.0)
    rng = np.random.default_rng(seed + 100)
    err = np.sqrt(scene + 25.0)
    sci = scene.copy()
    if transient is not None:
        x, y, f = transient
        yy, xx = np.indices(scene.shape, dtype=float)
        sci += core._gaussian_prf([f, y, x, fwhm / 2.3548, 0.0], yy, xx)
    sci = sci + np.sqrt(sci + 25.0) * rng.standard_normal(scene.shape)
    ref = scene + err * rng.standard_normal(scene.shape)
    return (CCDData(sci, unit="electron", uncertainty=StdDevUncertainty(np.sqrt(
                np.clip(sci, 0, None) + 25.0))),
            CCDData(ref, unit="electron", uncertainty=StdDevUncertainty(err)))


@pytest.mark.parametrize("fwhm", [1.5, 4.0])
def test_significance_has_unit_scatter_on_noise(fwhm):
    # the network's denoised difference scattered 15-50 times less than its stated
    # uncertainty, and its matched-filter S/N had a scatter of 0.07-0.09 instead of 1
    from astroml_affiliated.imagediff import difference, find_transients, snr_map

    science, reference = _pair_of_one_scene(fwhm, seed=1)
    diff = difference(science, reference, device="cpu")
    good = ~diff.mask
    z = diff.data[good] / diff.uncertainty.array[good]
    assert 0.9 < z.std() < 1.1
    _, snr = snr_map(diff)
    assert 0.9 < snr[good].std() < 1.1
    assert len(find_transients(diff)) <= 1


@pytest.mark.parametrize("fwhm", [1.5, 6.0])
def test_injected_source_keeps_its_flux(fwhm):
    # 1.1.0 broadened undersampled sources (FWHM 2.3 -> 3.75 px) and lost half their
    # PSF flux; an empty-sky source is now in the linear difference, flux kept
    from astroml_affiliated.imagediff import difference, find_transients

    flux = 200 * 15 * fwhm  # S/N ~ 200 on a sky of 200 e- (aperture noise ~1%)
    science, reference = _pair_of_one_scene(fwhm, seed=2, transient=(131.3, 97.6, flux))
    table = find_transients(difference(science, reference, device="cpu"))
    d = np.hypot(table["x"] - 131.3, table["y"] - 97.6)
    row = table[int(np.argmin(d))]
    assert d.min() < 1.0 and row["sign"] == 1
    assert abs(row["flux"].value / flux - 1) < 0.05
