"""Geometry of a view plan: where the image lands on the canvas that is cut into tiles."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .presets import Preset, get_preset


@dataclass(frozen=True)
class CanvasPlan:
    """The image is padded (centred) to `padded_size`, resized to `resized_size`, and pasted
    at `paste_offset` on a `cols * side` x `rows * side` canvas filled with the fill colour."""

    width: int
    height: int
    padded_size: tuple[int, int]
    pad_offset: tuple[int, int]
    resized_size: tuple[int, int]
    paste_offset: tuple[int, int]
    rows: int
    cols: int
    side: int
    global_view: bool

    @property
    def canvas_size(self) -> tuple[int, int]:
        return self.cols * self.side, self.rows * self.side

    @property
    def n_views(self) -> int:
        return self.rows * self.cols + int(self.has_global_view)

    @property
    def has_global_view(self) -> bool:
        return self.global_view and self.rows * self.cols > 1

    def canvas_to_pixels(self, x: float, y: float) -> tuple[float, float]:
        """A canvas point in original-image pixel coordinates."""
        (pw, ph), (rw, rh) = self.padded_size, self.resized_size
        qx, qy = self.paste_offset
        dx, dy = self.pad_offset
        return (x - qx) * pw / rw - dx, (y - qy) * ph / rh - dy


def plan_canvas(width: int, height: int, preset: str | Preset) -> CanvasPlan:
    """Plan the canvas for a `width` x `height` image under `preset`."""
    preset = get_preset(preset)
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if preset.rule == "anyres-llava":
        rows, cols = select_llava_grid(width, height, preset.grids, preset.side)
        canvas_w, canvas_h = cols * preset.side, rows * preset.side
        fit_w, fit_h = _fit_inside(width, height, canvas_w, canvas_h)
        return CanvasPlan(
            width, height, (width, height), (0, 0), (fit_w, fit_h),
            ((canvas_w - fit_w) // 2, (canvas_h - fit_h) // 2),
            rows, cols, preset.side, preset.global_view,
        )  # fmt: skip
    if preset.rule == "anyres-internvl":
        rows, cols = select_internvl_grid(
            width, height, preset.min_tiles, preset.max_tiles, preset.side
        )
        canvas = (cols * preset.side, rows * preset.side)
        return CanvasPlan(
            width, height, (width, height), (0, 0), canvas, (0, 0),
            rows, cols, preset.side, preset.global_view,
        )  # fmt: skip
    rows, cols = preset.rows, preset.cols
    padded = _pad_to_aspect(width, height, cols, rows)
    return CanvasPlan(
        width, height, padded, ((padded[0] - width) // 2, (padded[1] - height) // 2),
        (cols * preset.side, rows * preset.side), (0, 0),
        rows, cols, preset.side, preset.global_view,
    )  # fmt: skip


def select_llava_grid(
    width: int, height: int, grids: tuple[tuple[int, int], ...], side: int
) -> tuple[int, int]:
    """The (rows, cols) grid LLaVA-NeXT would choose for a `width` x `height` image."""
    best, best_key = grids[0], None
    for rows, cols in grids:
        canvas_w, canvas_h = cols * side, rows * side
        scale = min(canvas_w / width, canvas_h / height)
        kept = min(int(width * scale) * int(height * scale), width * height)
        key = (kept, -(canvas_w * canvas_h - kept))
        if best_key is None or key > best_key:
            best, best_key = (rows, cols), key
    return best


def select_internvl_grid(
    width: int, height: int, min_tiles: int, max_tiles: int, side: int
) -> tuple[int, int]:
    """The (rows, cols) grid InternVL's dynamic tiling would choose for the image."""
    candidates = sorted(
        {
            (cols, rows)
            for cols in range(1, max_tiles + 1)
            for rows in range(1, max_tiles + 1)
            if min_tiles <= cols * rows <= max_tiles
        },
        key=lambda grid: (grid[0] * grid[1], grid),
    )
    aspect = width / height
    best_cols, best_rows = 1, 1
    best_diff = math.inf
    for cols, rows in candidates:
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best_diff, best_cols, best_rows = diff, cols, rows
        elif diff == best_diff and width * height > 0.5 * side * side * cols * rows:
            best_cols, best_rows = cols, rows
    return best_rows, best_cols


def _fit_inside(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """Aspect-preserving size inside the box, rounding the free side up as LLaVA-NeXT does."""
    scale_w, scale_h = box_w / width, box_h / height
    if scale_w < scale_h:
        return box_w, min(math.ceil(height * scale_w), box_h)
    return min(math.ceil(width * scale_h), box_w), box_h


def _pad_to_aspect(width: int, height: int, cols: int, rows: int) -> tuple[int, int]:
    """Smallest size at least the image's with (nearly) the cols:rows aspect ratio."""
    if width * rows >= height * cols:
        return width, max(height, (width * rows + cols // 2) // cols)
    return max(width, (height * cols + rows // 2) // rows), height
