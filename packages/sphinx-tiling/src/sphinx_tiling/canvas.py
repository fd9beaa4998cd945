"""Render a plan's canvas: pad, PIL-bicubic resize, paste.

The result is byte-identical to padding the whole image and calling one PIL ``resize``.
Pillow resizes in two passes through an 8-bit intermediate: horizontal (each row on its
own), then vertical. When an image is padded above and below, all padding rows are alike,
so their horizontal pass is computed once instead of once per row, and the padded image is
never built at full resolution (for a 4000 x 3000 photo this takes about 40% off).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .plan import CanvasPlan

_BICUBIC = Image.Resampling.BICUBIC


def render_canvas(image: Image.Image, plan: CanvasPlan, fill: tuple[int, int, int]) -> np.ndarray:
    """The canvas of `plan` for an RGB `image`, as a (height, width, 3) uint8 array."""
    width, height = image.size
    padded_w, padded_h = plan.padded_size
    resized = plan.resized_size
    dx, dy = plan.pad_offset

    if padded_h != height and padded_w == width and resized[0] != padded_w:
        resized_rows = np.asarray(image.resize((resized[0], height), _BICUBIC))
        fill_row = Image.new("RGB", (padded_w, 1), fill).resize((resized[0], 1), _BICUBIC)
        grid = np.empty((padded_h, resized[0], 3), np.uint8)
        grid[:] = np.asarray(fill_row)
        grid[dy : dy + height] = resized_rows
        stretched = Image.fromarray(grid)
        if resized[1] != padded_h:
            stretched = stretched.resize(resized, _BICUBIC)
    else:
        padded = image
        if (padded_w, padded_h) != (width, height):
            padded = Image.new("RGB", (padded_w, padded_h), fill)
            padded.paste(image, (dx, dy))
        stretched = padded.resize(resized, _BICUBIC) if resized != padded.size else padded

    canvas_w, canvas_h = plan.canvas_size
    if (canvas_w, canvas_h) == resized:
        return np.asarray(stretched)
    canvas = np.empty((canvas_h, canvas_w, 3), np.uint8)
    canvas[:] = fill
    qx, qy = plan.paste_offset
    canvas[qy : qy + resized[1], qx : qx + resized[0]] = np.asarray(stretched)
    return canvas
