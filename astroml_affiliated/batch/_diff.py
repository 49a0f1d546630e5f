"""The image-differencing task of a batch run: pairs of images, the file names of their
difference images, and what is done to one pair (difference, write, find transients)."""

import os
from pathlib import Path

from .._io import _is_pathlike
from ..errors import InputError
from ._tasks import _import
from ._write import write_ccd_atomic


class _ImagePair:
    """A science and a reference image, and the name of their difference image."""

    __slots__ = ("science", "reference", "name", "diff_file")

    def __init__(self, science, reference, name):
        self.science, self.reference, self.name = science, reference, name
        self.diff_file = ""


_IMAGE_EXTENSIONS = (".fits", ".fit", ".fts")


def _image_stem(path):
    name = os.path.basename(os.fspath(path))
    for ext in (".gz", ".fz", ".bz2"):
        if name.lower().endswith(ext):
            name = name[:-len(ext)]
    for ext in _IMAGE_EXTENSIONS:
        if name.lower().endswith(ext):
            name = name[:-len(ext)]
    return name


def _diff_name(pair):
    """File name of a pair's difference image (None for in-memory images)."""
    science, reference = pair
    if not (_is_pathlike(science) and _is_pathlike(reference)):
        return None
    return f"{_image_stem(science)}-minus-{_image_stem(reference)}.fits"


def read_image_pair(pair, *, unit=None):
    """Read a (science, reference) pair of image files with `read_image`.

    Elements that are already `~astropy.nddata.CCDData` (or `~astropy.nddata.NDData`)
    objects are kept as they are (not copied: image differencing does not modify them).
    """
    science, reference = pair
    read_image = _import("astroml_affiliated.batch:read_image")  # see TASKS
    images = [read_image(p, unit=unit) if _is_pathlike(p) else p
              for p in (science, reference)]
    return _ImagePair(images[0], images[1], _diff_name(pair))


def _difference_pair(pair, *, outdir=None, threshold=5, **options):
    """Difference one pair, write the difference image, find its transients."""
    import astropy.units as u

    from ..imagediff import difference, find_transients

    diff = difference(pair.science, pair.reference, **options)
    if outdir is not None and pair.name:
        path = Path(outdir) / pair.name
        write_ccd_atomic(diff, path)
        pair.diff_file = os.fspath(path)
    table = find_transients(diff, threshold)
    if "sky" in table.colnames:  # plain columns: they stack with rows that lack them
        sky = table["sky"].icrs
        index = table.colnames.index("sky")
        table.remove_column("sky")
        table.add_column(sky.ra.to(u.deg), name="ra", index=index)
        table.add_column(sky.dec.to(u.deg), name="dec", index=index + 1)
    for key in ("model", "version", "sha256", "device"):
        if key in diff.meta:
            table.meta[key] = diff.meta[key]
    return table


def _check_diff_options(pairs, options):
    """Check the unit; create the directory of the difference images; refuse pairs
    whose difference images would have the same file name."""
    from ..imagediff.io import _parse_unit

    _parse_unit(options.get("unit"))
    outdir = options.get("outdir")
    if outdir is None:
        return
    outdir = os.fspath(outdir)
    options["outdir"] = outdir
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise InputError(f"outdir {outdir} exists and is not a directory")
    names = {}
    for pair in pairs:
        name = _diff_name(pair)
        if name is not None:
            if name in names and names[name] != pair:
                raise InputError(
                    f"the pairs {names[name][0]} - {names[name][1]} and {pair[0]} - "
                    f"{pair[1]} would both write {name} in {outdir}: rename a file or "
                    "split the run")
            names[name] = pair
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create outdir {outdir}: {exc.strerror}") from None
