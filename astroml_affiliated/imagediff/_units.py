"""The flux unit of a sum of pixels of an image: what `find_transients` reports."""

import numpy as np

from ..errors import InputError

__all__ = ["pixel_sum_unit"]


def pixel_sum_unit(unit, wcs):
    """Unit of a sum over pixels of an image in ``unit``, and the factor to apply.

    A per-pixel quantity (adu, electron, electron/s, Jy, erg/(s cm2 A)) summed over pixels
    keeps its unit; a unit per pixel (``adu / pix``) loses the ``pix``; a surface
    brightness (``MJy / sr``, ``mJy / arcsec2``) is multiplied by the pixel solid angle
    from the celestial WCS (at the reference pixel), giving Jy for any spectral flux
    density per solid angle.

    Returns
    -------
    factor : float
        Multiply the pixel sum by this.
    unit : `~astropy.units.Unit`

    Raises
    ------
    InputError
        A logarithmic unit (magnitudes), or a surface brightness without a celestial WCS.
    """
    import astropy.units as u

    if isinstance(unit, u.FunctionUnitBase) or isinstance(getattr(unit, "physical_unit",
                                                                   None), u.UnitBase):
        raise InputError(f"a difference image in {unit} (a logarithmic unit) cannot be "
                         "summed into a flux: give the images a linear flux unit (adu, "
                         "electron, Jy, MJy/sr, ...)")
    unit = u.Unit(unit)
    powers = dict(zip(unit.bases, unit.powers)) if hasattr(unit, "bases") else {}
    if u.pix in powers and powers[u.pix] < 0:
        unit = unit * u.pix ** -powers[u.pix]
    decomposed = unit.decompose()
    rad = dict(zip(decomposed.bases, decomposed.powers)).get(u.rad, 0)
    if rad == -2:
        if wcs is None or not getattr(wcs, "has_celestial", False):
            raise InputError(
                f"the difference image is in {unit}, a surface brightness: its fluxes "
                "need the pixel solid angle, from a celestial WCS, which it does not "
                "have. Give the images a celestial WCS, or convert them to a flux per "
                "pixel (e.g. Jy) first")
        from astropy.wcs.utils import proj_plane_pixel_area

        area = proj_plane_pixel_area(wcs.celestial) * u.deg ** 2
        if not (np.isfinite(area.value) and area.value > 0):
            raise InputError(f"the WCS's pixel solid angle ({area}) is not a positive "
                             f"number: the fluxes of an image in {unit} cannot be derived")
        total = (1.0 * unit * area).decompose()
        target = next((t for t in (u.Jy, u.erg / u.s / u.cm ** 2 / u.AA,
                                   u.W / u.m ** 2) if total.unit.is_equivalent(t)),
                      unit * u.sr)
        q = (1.0 * unit * area).to(target)
        return float(q.value), u.Unit(target)
    return 1.0, unit
