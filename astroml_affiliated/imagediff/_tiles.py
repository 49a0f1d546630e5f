"""Fully convolutional inference on overlapping tiles, blended without seams.

The image is padded by reflection (so its own edges sit inside tiles), cut into tiles
of ``tile`` pixels that overlap by ``overlap`` pixels, and each tile's prediction is
weighted by a separable window that is flat in the middle and falls as a raised cosine
to almost zero over the overlap. The blended image is ``sum(w * pred) / sum(w)``, so every
pixel is a smooth mix of the tiles that see it far from their edges. Only the tiles of one
batch are held at a time: memory is the input, the output and two accumulators.
"""

import numpy as np

from .models import DOWNSAMPLING

__all__ = ["predict_tiled", "tile_starts", "blend_window"]


def _round_up(n, m=DOWNSAMPLING):
    return int(-(-n // m) * m)


def tile_starts(length, tile, overlap):
    """Start indices covering ``length`` with tiles of ``tile`` overlapping >= ``overlap``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def blend_window(tile, overlap, floor=1e-3):
    """1-D blending weight: raised-cosine ramps of ``overlap`` pixels at both ends."""
    w = np.ones(tile)
    if overlap > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)
        w[:overlap] = ramp
        w[-overlap:] = ramp[::-1]
    return np.maximum(w, floor)


def predict_tiled(model, pair, *, tile=256, overlap=64, batch_size=4):
    """Apply ``model`` (first output) to ``pair`` of shape (H, W, C) on blended tiles.

    Parameters
    ----------
    model : `keras.Model`
        Fully convolutional; input sizes must be multiples of 8.
    pair : ndarray, shape (H, W, C)
    tile : int
        Tile size in pixels (rounded up to a multiple of 8); smaller images use one tile
        of their own (padded) size.
    overlap : int
        Pixels shared by neighbouring tiles (blended); also the reflection margin.
    batch_size : int
        Tiles per network call.

    Returns
    -------
    ndarray, shape (H, W), float32
    """
    h, w, _ = pair.shape
    tile = _round_up(tile)
    margin = overlap // 2
    th = min(tile, _round_up(h + 2 * margin))
    tw = min(tile, _round_up(w + 2 * margin))
    ph = max(h + 2 * margin, th)
    pw = max(w + 2 * margin, tw)
    pad = ((margin, ph - h - margin), (margin, pw - w - margin), (0, 0))
    mode = "reflect" if min(h, w) > max(pad[0][1], pad[1][1], margin) else "symmetric"
    padded = np.pad(pair, pad, mode=mode)
    ov_h, ov_w = min(overlap, th // 2), min(overlap, tw // 2)
    window = np.outer(blend_window(th, ov_h), blend_window(tw, ov_w)).astype(np.float32)
    out = np.zeros((ph, pw), np.float32)
    wsum = np.zeros((ph, pw), np.float32)
    corners = [(y, x) for y in tile_starts(ph, th, ov_h) for x in tile_starts(pw, tw, ov_w)]
    for i in range(0, len(corners), batch_size):
        chunk = corners[i:i + batch_size]
        batch = np.stack([padded[y:y + th, x:x + tw] for y, x in chunk])
        pred = model(batch, training=False)
        if isinstance(pred, (list, tuple)):
            pred = pred[0]
        pred = np.asarray(pred)[..., 0]
        for (y, x), p in zip(chunk, pred):
            out[y:y + th, x:x + tw] += window * p
            wsum[y:y + th, x:x + tw] += window
    out /= wsum
    return out[margin:margin + h, margin:margin + w]
