"""Helpers shared by the file readers of each capability and the batch runner: is an
input a path, and an exception as one line for a table cell or a message."""

import os

_MAX_ERROR_CHARS = 500


def _is_pathlike(item):
    return isinstance(item, (str, os.PathLike))


def _one_line(exc):
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    text = lines[0] + " (...)" if len(lines) > 3 else " ".join(lines)
    text = " ".join(text.split())
    if len(text) > _MAX_ERROR_CHARS:
        text = text[:_MAX_ERROR_CHARS - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
