"""The inputs of a batch run: paths, globs, ``@list`` files and objects expanded into a
list (`expand_inputs`, `expand_pairs`), and what names an input in a table and across runs."""

import glob
import os

import numpy as np

from .._io import _is_pathlike
from ..errors import InputError

_GLOB_CHARS = set("*?[")


def _expand_one(item, out, seen_lists):
    if not _is_pathlike(item):
        out.append(item)
        return
    text = os.fspath(item)
    if isinstance(item, str) and text.startswith("@"):
        listfile = os.path.expanduser(text[1:])
        key = os.path.abspath(listfile)
        if key in seen_lists:
            raise InputError(f"file list {listfile} includes itself")
        try:
            with open(listfile, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read the file list {listfile}: {exc.strerror}") \
                from None
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                _expand_one(line, out, seen_lists | {key})
        return
    text = os.path.expanduser(text)
    if _GLOB_CHARS & set(text) and not os.path.exists(text):
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise InputError(f"no files match {text!r}")
        out.extend(matches)
        return
    out.append(text)


def expand_inputs(inputs):
    """The list of inputs of a batch run.

    Parameters
    ----------
    inputs : str, path, object, or iterable of them
        Paths; glob patterns (``'sector5/*.fits'``, ``'**'`` recurses); ``'@list.txt'``
        (a file with one path or pattern per line; blank lines and lines starting with
        ``#`` are skipped; relative paths are relative to the current directory); or
        in-memory objects (light curves, spectra), kept as they are.

    Returns
    -------
    list
        Paths (`str`) and objects, in order, each path once.

    Raises
    ------
    InputError
        A pattern matches no file, a list file cannot be read, or there are no inputs.
    """
    if _is_pathlike(inputs) or hasattr(inputs, "meta") or hasattr(inputs, "flux"):
        inputs = [inputs]
    try:
        items = list(inputs)
    except TypeError:
        raise InputError(f"inputs must be paths, objects or a list of them, not "
                         f"{type(inputs).__name__}") from None
    out = []
    for item in items:
        _expand_one(item, out, frozenset())
    unique = _first_of_each(out)
    if not unique:
        raise InputError("no inputs given")
    return unique


def expand_pairs(pairs):
    """The list of (science, reference) pairs of a batch run of image differencing.

    Parameters
    ----------
    pairs : str, path, or iterable of (science, reference)
        A text file with two paths per line, science first (whitespace-separated;
        blank lines and lines starting with ``#`` are skipped; relative paths are
        relative to the current directory; ``'@pairs.txt'`` is accepted too), or a list
        of 2-element sequences of paths or `~astropy.nddata.CCDData` objects.

    Returns
    -------
    list of tuple
        ``(science, reference)``, paths as `str`, in order, each pair of paths once.

    Raises
    ------
    InputError
        The file cannot be read, a line or an item is not two paths, or there is no pair.
    """
    if _is_pathlike(pairs):
        text = os.path.expanduser(os.fspath(pairs))
        if isinstance(pairs, str) and text.startswith("@"):
            text = os.path.expanduser(text[1:])
        try:
            with open(text, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise InputError(f"cannot read the file of pairs {text}: {why}") from None
        items = []
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 2:
                raise InputError(f"{text}, line {number}: expected two paths (science "
                                 f"reference), found {len(fields)} field(s)")
            items.append(tuple(fields))
    else:
        try:
            items = list(pairs)
        except TypeError:
            raise InputError("pairs must be a file of pairs or a list of (science, "
                             f"reference), not {type(pairs).__name__}") from None
    out = []
    for number, item in enumerate(items):
        if _is_pathlike(item) or not hasattr(item, "__len__") or len(item) != 2:
            raise InputError(f"pair #{number} is not a (science, reference) pair: "
                             f"{item!r:.100}")
        out.append(tuple(os.path.expanduser(os.fspath(p)) if _is_pathlike(p) else p
                         for p in item))
    out = _first_of_each(out)
    if not out:
        raise InputError("no image pairs given")
    return out


def _path_key(path):
    return os.path.normpath(os.path.abspath(os.path.expanduser(path)))


def _item_key(item):
    """What identifies an input across runs (None for an in-memory object)."""
    if isinstance(item, str):
        return _path_key(item)
    if isinstance(item, tuple) and all(isinstance(p, str) for p in item):
        return "\n".join(_path_key(p) for p in item)
    return None


def _first_of_each(items):
    """``items`` in order, each input named by path(s) once (objects always kept)."""
    seen, unique = set(), []
    for item in items:
        key = _item_key(item)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        unique.append(item)
    return unique


def _row_keys(table, task):
    """`_item_key` of the inputs of a result table's rows."""
    if task.pairs:
        columns = [np.asarray(table[c], dtype=str) for c in ("science", "reference")]
        items = [tuple(p) for p in zip(*columns)]
    else:
        items = list(np.asarray(table["input"], dtype=str))
    return [None if any(p.startswith("<") or not p for p in
                        (item if isinstance(item, tuple) else (item,)))
            else _item_key(item) for item in items]


def _label(item, index):
    if isinstance(item, tuple):
        return " - ".join(_label(p, index) for p in item)
    return item if isinstance(item, str) else f"<{type(item).__name__} #{index}>"


def _item_columns(task, item, index):
    """Columns that name an input, on every row (results, empty and error)."""
    if task.pairs:
        return {"science": _label(item[0], index), "reference": _label(item[1], index)}
    return {}
