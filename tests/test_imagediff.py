"""Image differencing (issue 4): generated images only, committed weights, CPU."""

import copy
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("reproject")
pytest.importorskip("photutils")

import astropy.units as u  # noqa: E402
from astropy.nddata import CCDData, StdDevUncertainty  # noqa: E402

import astroml_affiliated  # noqa: E402,F401  (attaches the CCDData methods)
from astroml_affiliated import InputError  # noqa: E402
from astroml_affiliated.imagediff import difference, find_transients  # noqa: E402
from astroml_affiliated.imagediff._align import same_grid  # noqa: E402
from astroml_affiliated.imagediff.demo import synthetic_pair  # noqa: E402


def _nearest(table, x, y):
    d = np.hypot(table["x"] - x, table["y"] - y)
    i = int(np.argmin(d))
    return table[i], float(d[i])


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair(seed=11, transients=[(100.4, 150.7, 20000.0)])


@pytest.fixture(scope="module")
def diff(pair):
    science, reference, _ = pair
    science = science.copy()
    science.data[10:14, 200:204] = np.nan
    science.mask = np.zeros(science.shape, bool)
    science.mask[60:63, 30:33] = True
    return difference(science, reference, device="cpu"), science


def test_units_wcs_mask_uncertainty_and_provenance(diff):
    result, science = diff
    assert isinstance(result, CCDData)
    assert result.unit == u.electron
    assert result.shape == science.shape
    assert same_grid(result.wcs, science.wcs, science.shape)
    assert isinstance(result.uncertainty, StdDevUncertainty)
    err = result.uncertainty.array
    assert err.shape == science.shape and np.all(np.isfinite(err)) and np.all(err > 0)
    assert result.mask.dtype == bool
    assert result.mask[10:14, 200:204].all()      # NaN in the input
    assert result.mask[60:63, 30:33].all()        # the input's mask
    assert result.mask[0].all() and result.mask[:, -1].all()  # edges
    assert result.mask.mean() < 0.2
    for key in ("model", "version", "sha256", "align", "device"):
        assert key in result.meta
    assert len(result.meta["sha256"]) == 64
    assert result.meta["device"] == "cpu"
    # away from sources the difference is noise-like, at the level of the uncertainty
    good = ~result.mask
    assert np.median(np.abs(result.data[good])) < 2 * np.median(err[good])


def test_point_source_recovered(diff, pair):
    result, _ = diff
    table = find_transients(result)
    row, dist = _nearest(table, 100.4, 150.7)
    assert dist < 1.0
    assert row["sign"] == 1
    assert row["flux"].unit == u.electron
    assert abs(row["flux"].value / 20000.0 - 1) < 0.1


def test_source_on_a_tile_boundary():
    # tile 128, overlap 32: the image is padded by 16, tiles start at 0, 96, 192, ... of
    # the padded image, so x = y = 96 is the middle of a blending zone of four tiles
    x0 = y0 = 96.0
    science, reference, _ = synthetic_pair(shape=(320, 320), seed=5,
                                           transients=[(x0, y0, 20000.0)])
    small = difference(science, reference, device="cpu", tile=128, overlap=32)
    whole = difference(science, reference, device="cpu", tile=512, overlap=32)
    table = find_transients(small)
    row, dist = _nearest(table, x0, y0)
    assert dist < 1.0
    assert abs(row["flux"].value / 20000.0 - 1) < 0.1
    # seams: tiling changes the result far less than the noise
    good = ~small.mask
    assert np.median(np.abs(small.data - whole.data)[good]) < 0.2 * np.median(
        small.uncertainty.array[good])


def test_reference_shifted_by_wcs_is_aligned():
    science, reference, _ = synthetic_pair(seed=3, ref_pixel_offset=(3.4, -2.2),
                                           ref_rotation_deg=0.7,
                                           transients=[(140.2, 90.6, 15000.0)])
    result = science.difference(reference, device="cpu")   # the CCDData method
    assert result.meta["align"].startswith("reproject_interp")
    table = result.find_transients()
    row, dist = _nearest(table, 140.2, 90.6)
    assert dist < 1.0 and row["sign"] == 1
    assert abs(row["flux"].value / 15000.0 - 1) < 0.15
    # no bright false detection from misaligned stars
    others = table[np.hypot(table["x"] - 140.2, table["y"] - 90.6) > 5]
    assert len(others) == 0 or np.max(np.abs(others["snr"])) < abs(row["snr"])


def test_fading_source_found():
    science, reference, _ = synthetic_pair(seed=7, transients=[(80.3, 170.5, -15000.0)])
    table = find_transients(difference(science, reference, device="cpu"))
    fading = table[table["sign"] == -1]
    row, dist = _nearest(fading, 80.3, 170.5)
    assert dist < 1.0
    assert row["snr"] < -5
    # fading sources come out about 15% faint (the reference's sharper PSF): see the
    # model card's limits
    assert abs(-row["flux"].value / 15000.0 - 1) < 0.25
    assert "sky" in table.colnames


def test_bad_inputs_raise_input_error(pair):
    science, reference, _ = pair
    plain_s = CCDData(science.data, unit="electron")
    plain_r = CCDData(reference.data[:200, :200], unit="electron")
    with pytest.raises(InputError, match="shape"):
        difference(plain_s, plain_r, device="cpu")
    far = reference.copy()
    far.wcs = copy.deepcopy(reference.wcs)
    far.wcs.wcs.crval = [20.0, -40.0]
    with pytest.raises(InputError, match="overlap"):
        difference(science, far, device="cpu")
    nan = CCDData(np.full(science.shape, np.nan), unit="electron", wcs=science.wcs)
    with pytest.raises(InputError, match="no valid pixel"):
        difference(nan, reference, device="cpu")
    metres = CCDData(reference.data, unit="m", wcs=reference.wcs)
    with pytest.raises(InputError, match="unit"):
        difference(science, metres, device="cpu")
    with pytest.raises(InputError, match="CCDData"):
        difference(science.data, reference, device="cpu")
    with pytest.raises(InputError, match="threshold"):
        find_transients(science, threshold=-1)


def test_callers_objects_unchanged():
    science, reference, _ = synthetic_pair(seed=9, ref_pixel_offset=(1.5, 0.5))
    science.mask = np.zeros(science.shape, bool)
    science.mask[5:8, 5:8] = True
    before = [(c.data.copy(), None if c.mask is None else c.mask.copy(),
               c.uncertainty.array.copy(), c.wcs.to_header_string(), dict(c.meta))
              for c in (science, reference)]
    result = difference(science, reference, device="cpu")
    find_transients(result)
    for c, (data, mask, unc, wcs, meta) in zip((science, reference), before):
        np.testing.assert_array_equal(c.data, data)
        if mask is None:
            assert c.mask is None
        else:
            np.testing.assert_array_equal(c.mask, mask)
        np.testing.assert_array_equal(c.uncertainty.array, unc)
        assert c.wcs.to_header_string() == wcs
        assert dict(c.meta) == meta
    assert result.data is not science.data


def test_plot(diff):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from astroml_affiliated.imagediff import plot_difference

    result, _ = diff
    ax = plot_difference(result, find_transients(result))
    assert len(ax.patches) >= 1
    matplotlib.pyplot.close("all")


def test_import_is_light():
    code = ("import sys, astroml_affiliated.imagediff; "
            "print(sorted({'tensorflow', 'keras', 'reproject', 'photutils', 'matplotlib'}"
            " & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_other_pixel_scale_and_exact_alignment():
    from reproject import reproject_exact

    from astroml_affiliated.imagediff.demo import _wcs

    science, reference, _ = synthetic_pair(seed=3, ref_pixel_offset=(3.4, -2.2),
                                           ref_rotation_deg=0.7,
                                           transients=[(140.2, 90.6, 15000.0)])
    exact = difference(science, reference, device="cpu", align="exact")
    assert exact.meta["align"].startswith("reproject_exact")
    # the reference resampled to 0.4"/px (the science has 0.27"/px), flux per pixel kept
    coarse_wcs = _wcs((200, 200), scale_arcsec=0.4)
    arr, _ = reproject_exact((reference.data, reference.wcs), coarse_wcs,
                             shape_out=(200, 200))
    coarse = CCDData(np.nan_to_num(arr * (0.4 / 0.27) ** 2, nan=100.0), unit="electron",
                     wcs=coarse_wcs)
    for result in (exact, difference(science, coarse, device="cpu")):
        row, dist = _nearest(find_transients(result), 140.2, 90.6)
        assert dist < 1.0
        assert abs(row["flux"].value / 15000.0 - 1) < 0.15


def _isolated_star(truth, lo=2e4, hi=1e5):
    """A star of flux lo-hi, 40 px inside the frame, with no other star within 12 px."""
    st = truth["stars"]
    for x, y, f in st:
        if 40 < x < 216 and 40 < y < 216 and lo < f < hi:
            if np.sort(np.hypot(st[:, 0] - x, st[:, 1] - y))[1] > 12:
                return x, y, f
    raise AssertionError("no isolated star in this synthetic pair")


@pytest.mark.parametrize("seed", [5, 6])
def test_brightening_on_a_bright_star_found(seed):
    # a variable star: +50% on a star that is in the reference too (1.0.0 shrank such
    # changes on top of bright sources towards zero: it missed a real supernova on its
    # host's nucleus)
    x, y, f = _isolated_star(synthetic_pair(seed=seed)[2])
    science, reference, _ = synthetic_pair(seed=seed, transients=[(x, y, 0.5 * f)])
    table = find_transients(difference(science, reference, device="cpu"))
    assert len(table) == 1
    row, dist = _nearest(table, x, y)
    assert dist < 1.0 and row["sign"] == 1
    # the aperture misses ~8% and the network shrinks bright-spot changes somewhat
    assert 0.6 < row["flux"].value / (0.5 * f) < 1.2


def test_photometric_scale_measured_on_stars():
    errors = []
    for seed in (5, 6, 8, 9):
        science, reference, truth = synthetic_pair(seed=seed)
        diff = difference(science, reference, device="cpu")
        assert diff.meta["fluxhow"].startswith("measured")
        errors.append(diff.meta["fluxscal"] * truth["ref_scale"] - 1)
    assert np.mean(np.abs(errors)) < 0.025, errors


def test_gaussian_matched_difference():
    from astroml_affiliated.imagediff.core import gaussian_matched_difference
    from astroml_affiliated.imagediff.demo import _render

    sharp = _render((64, 64), [31.3], [30.6], [1000.0], 3.0)
    broad = _render((64, 64), [31.3], [30.6], [1000.0], 5.0)
    # the sharper image is broadened to the other's PSF, whichever it is
    assert np.abs(gaussian_matched_difference(broad, sharp, 5.0, 3.0)).max() < 0.01 * broad.max()
    assert np.abs(gaussian_matched_difference(sharp, broad, 3.0, 5.0)).max() < 0.01 * broad.max()
    assert np.array_equal(gaussian_matched_difference(sharp, broad, 4.0, 4.0), sharp - broad)


def test_uncertainty_in_another_unit_than_the_data(pair):
    # a variance in Jy2 (or inverse variance in 1/Jy2) for data in mJy: its unit was
    # ignored, which made the reference's noise 1000 times too small
    from astropy.nddata import InverseVariance, VarianceUncertainty

    science, reference, _ = pair
    sci = CCDData(science.data, unit="mJy", wcs=science.wcs,
                  uncertainty=StdDevUncertainty(science.uncertainty.array))
    err = reference.uncertainty.array
    expected = difference(sci, CCDData(reference.data, unit="mJy", wcs=reference.wcs,
                                       uncertainty=StdDevUncertainty(err)),
                          device="cpu", flux_scale=1.25)
    for unc in (VarianceUncertainty((err * 1e-3) ** 2, unit="Jy2"),
                InverseVariance((err * 1e-3) ** -2, unit="1/Jy2")):
        ref = CCDData(reference.data, unit="mJy", wcs=reference.wcs, uncertainty=unc)
        result = difference(sci, ref, device="cpu", flux_scale=1.25)
        np.testing.assert_allclose(result.uncertainty.array,
                                   expected.uncertainty.array, rtol=1e-6)


def test_argument_checks(diff, pair):
    result, _ = diff
    science, reference, _ = pair
    n = len(find_transients(result, threshold=5))
    # numpy scalars are numbers (np.int64 / np.float32 were refused)
    assert len(find_transients(result, threshold=np.int64(5))) == n
    assert len(find_transients(result, threshold=np.float32(5))) == n
    with pytest.raises(InputError, match="max_sources"):
        find_transients(result, max_sources=-1)   # silently dropped the last row
    with pytest.raises(InputError, match="flux_scale"):
        difference(science, reference, device="cpu", flux_scale="abc")  # bare ValueError
    with pytest.raises(InputError, match="align"):   # accepted when no resampling needed
        difference(science, science, device="cpu", align="bogus")


def test_plot_limits_and_uncertainty_types(diff):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from astropy.nddata import InverseVariance, VarianceUncertainty

    from astroml_affiliated.imagediff import plot_difference

    result, _ = diff
    table = find_transients(result)
    # vmin/vmax given by the caller (was: TypeError, multiple values for 'vmin')
    ax = plot_difference(result, table, vmin=-3, vmax=7)
    assert ax.images[0].get_clim() == (-3, 7)
    # the grey scale is +-5 sigma whatever the uncertainty's type (a variance or an
    # inverse variance was used as if it were a standard deviation)
    clim = plot_difference(result, table).images[0].get_clim()
    err = result.uncertainty.array
    for unc in (VarianceUncertainty(err ** 2), InverseVariance(err ** -2)):
        other = result.copy()
        other.uncertainty = unc
        np.testing.assert_allclose(plot_difference(other, table).images[0].get_clim(),
                                   clim, rtol=1e-9)
    matplotlib.pyplot.close("all")


def test_difference_arguments_checked(pair):
    # gain <= 0 silently replaced every pixel's uncertainty by the sky noise; a negative
    # edge silently masked nothing; tile=0, batch_size=0, overlap<0, npixels=0 and
    # aperture_radius=0 were bare ValueErrors from range(), numpy or photutils; a
    # saturation Quantity was a UnitConversionError
    science, reference, _ = pair
    plain = CCDData(reference.data, unit="electron", wcs=reference.wcs)
    for kwargs in ({"gain": 0}, {"gain": -2.0}, {"edge": -3}, {"tile": 0},
                   {"batch_size": 0}, {"overlap": -10}, {"saturation": np.nan},
                   {"saturation": 3000 * u.m}):
        with pytest.raises(InputError, match=next(iter(kwargs))):
            difference(science, plain, device="cpu", **kwargs)
    masked = difference(science, reference, device="cpu", saturation=3000.0)
    as_quantity = difference(science, reference, device="cpu",
                             saturation=3 * u.Unit("1000 electron"), edge=masked.meta["edge"],
                             tile=256.0)
    np.testing.assert_array_equal(masked.mask, as_quantity.mask)
    np.testing.assert_array_equal(masked.data, as_quantity.data)
    for kwargs in ({"npixels": 0}, {"aperture_radius": 0}):
        with pytest.raises(InputError, match=next(iter(kwargs))):
            find_transients(masked, **kwargs)
    # dimensionless Quantities and numpy scalars are numbers
    difference(science, plain, device="cpu", gain=2 * u.one, flux_scale=np.float32(1.25))
    assert len(find_transients(masked, threshold=5 * u.one, aperture_radius=np.float32(8))) \
        == len(find_transients(masked, aperture_radius=8))


def test_zero_weight_pixels_are_masked():
    # an inverse variance of 0 (a weight map's bad pixel) was not masked: with the
    # reference resampled, its bad column (uncertainty set to 0 there) made a fading
    # "transient" at S/N -12
    from astropy.nddata import InverseVariance

    science, reference, _ = synthetic_pair(seed=11, ref_pixel_offset=(2.3, -1.4),
                                           transients=[(100.4, 150.7, 20000.0)])
    ivar = science.uncertainty.array ** -2.0
    data = science.data.copy()
    data[60:64, 180] = 30000.0
    ivar[60:64, 180] = 0.0
    sci = CCDData(data, unit="electron", wcs=science.wcs, uncertainty=InverseVariance(ivar))
    ivar = reference.uncertainty.array ** -2.0
    data = reference.data.copy()
    data[200:204, 40] = 30000.0
    ivar[200:204, 40] = 0.0
    ref = CCDData(data, unit="electron", wcs=reference.wcs, uncertainty=InverseVariance(ivar))
    result = difference(sci, ref, device="cpu")
    assert result.mask[60:64, 180].all()
    x, y = result.wcs.world_to_pixel(reference.wcs.pixel_to_world(40, 201.5))
    assert result.mask[int(round(float(y))), int(round(float(x)))]
    table = find_transients(result)
    assert len(table) == 1
    assert np.hypot(table["x"][0] - 100.4, table["y"][0] - 150.7) < 1
