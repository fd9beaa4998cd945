"""Render a plan's canvas: pad, PIL-bicubic resize, paste.

The result is byte-identical to padding the whole image and calling one PIL ``resize``, but
cheaper. Pillow resizes in two independent passes through an 8-bit intermediate:
horizontal (each row on its own) then vertical (each column on its own). So

* padding rows are all alike: their horizontal pass is computed once, not once per row;
* rows (horizontal pass) and columns (vertical pass) are split into bands resized on
  separate threads (Pillow releases the GIL while resampling).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
from PIL import Image

from .plan import CanvasPlan

_BICUBIC = Image.Resampling.BICUBIC
# Below this many output pixels per pass, threading costs more than it saves (measured on
# 2 shared cores: a 448 x 448 canvas resizes faster on one thread).
_MIN_PIXELS_TO_SPLIT = 250_000


def render_canvas(image: Image.Image, plan: CanvasPlan, fill: tuple[int, int, int]) -> np.ndarray:
    """The canvas of `plan` for an RGB `image`, as a (height, width, 3) uint8 array."""
    width, height = image.size
    padded_w, padded_h = plan.padded_size
    resized_w, resized_h = plan.resized_size
    dx, dy = plan.pad_offset

    if resized_w != padded_w:
        rows = image
        if padded_w != width:
            rows = Image.new("RGB", (padded_w, height), fill)
            rows.paste(image, (dx, 0))
        stretched = _resize_rows(rows, resized_w)
        grid = np.empty((padded_h, resized_w, 3), np.uint8)
        if padded_h != height:
            fill_row = Image.new("RGB", (padded_w, 1), fill).resize((resized_w, 1), _BICUBIC)
            grid[:] = np.asarray(fill_row)
        grid[dy : dy + height] = stretched
    else:
        grid = np.empty((padded_h, padded_w, 3), np.uint8)
        if (padded_w, padded_h) != (width, height):
            grid[:] = fill
        grid[dy : dy + height, dx : dx + width] = np.asarray(image)

    if resized_h != padded_h:
        grid = _resize_columns(grid, resized_h)

    canvas_w, canvas_h = plan.canvas_size
    if (canvas_w, canvas_h) == (resized_w, resized_h):
        return grid
    canvas = np.empty((canvas_h, canvas_w, 3), np.uint8)
    canvas[:] = fill
    qx, qy = plan.paste_offset
    canvas[qy : qy + resized_h, qx : qx + resized_w] = grid
    return canvas


def _resize_rows(image: Image.Image, new_width: int) -> np.ndarray:
    """Horizontal pass only, in bands of rows."""
    width, height = image.size
    bands = _bands(height, new_width * height)
    if len(bands) == 1:
        return np.asarray(image.resize((new_width, height), _BICUBIC))
    out = np.empty((height, new_width, 3), np.uint8)

    def run(band: tuple[int, int]) -> None:
        top, bottom = band
        part = image.crop((0, top, width, bottom)).resize((new_width, bottom - top), _BICUBIC)
        out[top:bottom] = np.asarray(part)

    list(_pool().map(run, bands))
    return out


def _resize_columns(grid: np.ndarray, new_height: int) -> np.ndarray:
    """Vertical pass only, in bands of columns."""
    height, width = grid.shape[:2]
    bands = _bands(width, width * new_height)
    if len(bands) == 1:
        return np.asarray(Image.fromarray(grid).resize((width, new_height), _BICUBIC))
    source = Image.fromarray(grid)
    out = np.empty((new_height, width, 3), np.uint8)

    def run(band: tuple[int, int]) -> None:
        left, right = band
        part = source.crop((left, 0, right, height)).resize((right - left, new_height), _BICUBIC)
        out[:, left:right] = np.asarray(part)

    list(_pool().map(run, bands))
    return out


def _bands(length: int, work: int) -> list[tuple[int, int]]:
    count = min(_thread_count(), length)
    if work < _MIN_PIXELS_TO_SPLIT or count < 2:
        return [(0, length)]
    edges = [length * i // count for i in range(count + 1)]
    return list(itertools.pairwise(edges))


@cache
def _thread_count() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cpus))


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_thread_count(), thread_name_prefix="sphinx-tiling")


# A forked child (e.g. a DataLoader worker) inherits the pool without its threads.
os.register_at_fork(after_in_child=_pool.cache_clear)
