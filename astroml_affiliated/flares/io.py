"""Light curve files: read one with lightkurve, write one that `lightkurve.read` reads."""

import os
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["read_lightcurve", "write_lightcurve_fits"]


def read_lightcurve(path):
    """Read a light curve file with lightkurve (FITS from any mission, or ECSV/CSV).

    Raises
    ------
    InputError
        If the file holds a target pixel file or something else than a light curve.
    """
    import warnings

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lightkurve as lk

        if path.lower().endswith((".ecsv", ".csv", ".txt", ".dat")):
            obj = lk.LightCurve.read(path)
        else:
            obj = lk.read(path)
    if not isinstance(obj, lk.LightCurve):
        raise InputError(f"{path} holds a {type(obj).__name__}, not a light curve")
    return obj


def write_lightcurve_fits(lc, path, *, overwrite=False):
    """Write a light curve as a TESS-SPOC-like FITS file that `lightkurve.read` reads.

    (lightkurve's own ``to_fits`` output is not recognised by ``lightkurve.read``.)
    Time is written in BTJD, flux and ``flux_err`` as ``PDCSAP_FLUX`` and
    ``SAP_FLUX``; ``quality`` (if any) as ``QUALITY``; ``meta`` keys ``TICID``,
    ``SECTOR`` and ``OBJECT`` go into the primary header.
    """
    from astropy.io import fits

    n = len(lc)
    time_ = lc.time.btjd if hasattr(lc.time, "btjd") else lc.time.jd - 2457000.0
    unit = str(getattr(lc.flux, "unit", "") or "")
    flux = np.asarray(getattr(lc.flux, "value", lc.flux), dtype=float)
    err = (np.asarray(getattr(lc.flux_err, "value", lc.flux_err), dtype=float)
           if "flux_err" in lc.colnames else np.full(n, np.nan))
    quality = (np.asarray(getattr(lc["quality"], "value", lc["quality"]), dtype=np.int32)
               if "quality" in lc.colnames else np.zeros(n, np.int32))
    cadenceno = (np.asarray(lc["cadenceno"], dtype=np.int32) if "cadenceno" in lc.colnames
                 else np.arange(n, dtype=np.int32))
    cols = [fits.Column("TIME", "D", unit="BJD - 2457000, days", array=np.asarray(time_)),
            fits.Column("CADENCENO", "J", array=cadenceno)]
    for name in ("SAP_FLUX", "PDCSAP_FLUX"):
        cols.append(fits.Column(name, "E", unit=unit or None, array=flux))
        cols.append(fits.Column(name + "_ERR", "E", unit=unit or None, array=err))
    cols.append(fits.Column("QUALITY", "J", array=quality))
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "TESS"
    primary.header["CREATOR"] = "astroml_affiliated LightCurveExporterPipelineModule"
    primary.header["ORIGIN"] = "astroml_affiliated (synthetic or converted)"
    for key in ("OBJECT", "TICID", "SECTOR", "CAMERA", "CCD"):
        if lc.meta.get(key) not in (None, ""):
            primary.header[key] = lc.meta[key]
    table = fits.BinTableHDU.from_columns(cols, name="LIGHTCURVE")
    table.header.update(TELESCOP="TESS", BJDREFI=2457000, BJDREFF=0.0, TIMEUNIT="d",
                        TIMESYS="TDB")
    fits.HDUList([primary, table]).writeto(path, overwrite=overwrite)
    return Path(path)
