"""Where to work on a large image: a window around the mask, scaled to what a model expects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A crop (left, top, right, bottom) of the image and the size the model sees it at."""

    left: int
    top: int
    right: int
    bottom: int
    work_size: tuple[int, int]  # (width, height) handed to the model

    @property
    def size(self) -> tuple[int, int]:
        return (self.right - self.left, self.bottom - self.top)

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)


def _span(low: int, high: int, want: int, limit: int) -> tuple[int, int]:
    """Grow [low, high) around its centre to `want` long, shifted to stay inside [0, limit)."""
    want = min(max(want, high - low), limit)
    start = (low + high) // 2 - want // 2
    start = min(max(start, 0), limit - want)
    return start, start + want


def mask_window(mask: np.ndarray, side: int, *, context: float = 0.5, multiple: int = 1) -> Window:
    """The part of the image worth sending to a model that works best at `side` pixels.

    The window holds the mask's bounding box plus `context` of its size on each side, at
    least `side` pixels where the image allows. A window larger than `side` is scaled down,
    aspect kept, so its longer side is `side`; `multiple` rounds the working size to what
    the model accepts (8 for latent diffusion).
    """
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    y1, y2 = int(rows.min()), int(rows.max()) + 1
    x1, x2 = int(cols.min()), int(cols.max()) + 1
    margin = int(context * max(x2 - x1, y2 - y1))
    left, right = _span(x1, x2, max(side, x2 - x1 + 2 * margin), width)
    top, bottom = _span(y1, y2, max(side, y2 - y1 + 2 * margin), height)
    crop_w, crop_h = right - left, bottom - top
    scale = min(1.0, side / max(crop_w, crop_h))
    work = tuple(max(multiple, round(n * scale / multiple) * multiple) for n in (crop_w, crop_h))
    return Window(left, top, right, bottom, work)


def composite(original: np.ndarray, painted: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`painted` inside the mask, the original bytes everywhere else."""
    return np.where(mask[..., None], painted, original)
