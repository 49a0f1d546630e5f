"""Put the reference on the science image's pixel grid (reproject), with mask and errors."""

import numpy as np

from .._nddata import uncertainty_variance
from ..errors import InputError

__all__ = ["to_stddev", "align_reference", "same_grid"]


def to_stddev(ccd, what):
    """The 1-sigma uncertainty of ``ccd`` as a float array in its own unit, or None."""
    var = uncertainty_variance(ccd.uncertainty, ccd.data.shape, what, data_unit=ccd.unit)
    if var is None:
        return None
    with np.errstate(invalid="ignore"):
        return np.sqrt(var)


def same_grid(wcs_a, wcs_b, shape, tol=1e-3):
    """True if both WCSs map the corners and centre of ``shape`` to the same pixels."""
    ny, nx = shape
    x = np.array([0, nx - 1, 0, nx - 1, (nx - 1) / 2])
    y = np.array([0, 0, ny - 1, ny - 1, (ny - 1) / 2])
    try:
        world = wcs_a.pixel_to_world_values(x, y)
        xb, yb = wcs_b.world_to_pixel_values(*world)
    except Exception:
        return False
    return bool(np.all(np.abs(xb - x) < tol) and np.all(np.abs(yb - y) < tol))


def _pixel_area(wcs, shape):
    from astropy.wcs.utils import proj_plane_pixel_area

    try:
        return float(proj_plane_pixel_area(wcs.celestial))
    except Exception:
        return None


def align_reference(science, reference, ref_data, ref_mask, ref_std, *, method="interp"):
    """Resample the reference onto the science grid when their WCSs differ.

    Parameters
    ----------
    science, reference : `~astropy.nddata.CCDData`
        Only their ``wcs`` and shapes are used here.
    ref_data, ref_mask, ref_std : ndarray
        The reference's data (in the science's unit; masked pixels NaN), mask and
        1-sigma uncertainty (or None).
    method : {'interp', 'exact'}
        `reproject.reproject_interp` (bicubic) or `reproject.reproject_exact`
        (flux-conserving spherical polygon intersection; slower).

    Returns
    -------
    data, mask, std : ndarray (std may be None)
        On the science grid; ``mask`` includes pixels outside the reference's footprint.
    alignment : str
        What was done, for the result's provenance.
    """
    sci_shape = science.data.shape
    wcs_s, wcs_r = science.wcs, reference.wcs
    if wcs_s is None or wcs_r is None or not (wcs_s.has_celestial and wcs_r.has_celestial):
        if ref_data.shape != sci_shape:
            which = ("neither image has" if wcs_s is None and wcs_r is None else
                     "the science image has no" if wcs_s is None or
                     not wcs_s.has_celestial else "the reference has no")
            raise InputError(
                f"science shape {sci_shape} and reference shape {ref_data.shape} differ "
                f"and {which} celestial WCS, so the reference cannot be resampled: give "
                "both images a WCS, or pass images already on one pixel grid")
        return ref_data, ref_mask, ref_std, "none (no WCS; same shape assumed aligned)"
    if ref_data.shape == sci_shape and same_grid(wcs_s, wcs_r, sci_shape):
        return ref_data, ref_mask, ref_std, "none (same pixel grid)"

    if method not in ("interp", "exact"):
        raise InputError(f"align must be 'interp' or 'exact', not {method!r}")
    import reproject

    # one call resamples data, mask and uncertainty together (reproject broadcasts over
    # the leading axis), so the costly WCS transform runs once
    level = float(np.nanmedian(ref_data[~ref_mask])) if (~ref_mask).any() else 0.0
    planes = [np.where(ref_mask, level, ref_data), ref_mask.astype(float)]
    if ref_std is not None:
        planes.append(np.where(ref_mask | ~np.isfinite(ref_std), 0.0, ref_std))
    stack = np.stack(planes)
    if method == "interp":
        res, footprint = reproject.reproject_interp(
            (stack, wcs_r), wcs_s, shape_out=sci_shape, order="bicubic",
            roundtrip_coords=False)
    else:
        res, footprint = reproject.reproject_exact((stack, wcs_r), wcs_s,
                                                   shape_out=sci_shape)
    footprint = footprint[0] if footprint.ndim == 3 else footprint
    if not np.any(footprint > 0):
        raise InputError(
            "the reference does not overlap the science image (reprojecting it onto the "
            "science WCS leaves no pixel covered): check that both frames show the same "
            "field and that their WCSs are right")
    out = res[0]
    mask = (~np.isfinite(out) | (footprint < 0.999)
            | ~(np.nan_to_num(np.abs(res[1]), nan=1.0) < 1e-3))
    std = None
    if ref_std is not None:
        std = np.abs(res[2])
        mask |= ~np.isfinite(std)
    # reproject conserves surface brightness; data per pixel scale with the pixel area
    area_s, area_r = _pixel_area(wcs_s, sci_shape), _pixel_area(wcs_r, ref_data.shape)
    factor = area_s / area_r if area_s and area_r else 1.0
    out = out * factor
    if std is not None:
        # resampling to larger pixels averages noise down roughly with sqrt(area)
        std = std * np.sqrt(factor) if factor > 1 else std * factor
    return out, mask, std, (f"reproject_{method} onto the science WCS "
                            f"(pixel area ratio {factor:.4g})")
