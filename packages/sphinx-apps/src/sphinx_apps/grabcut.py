"""GrabCut segmentation inside a box: no weights, the default segmenter."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from sphinx_tasks import Box

from .images import check_box


class GrabCutSegmenter:
    """OpenCV's GrabCut initialised with the box: colour models of the box versus around it.

    Each box is cut from a window around it (the box plus `context` of its size on every
    side), so the cost follows the object's size rather than the photo's. A window longer
    than `max_side` pixels is cut at that size (aspect kept) and its mask scaled back up:
    GrabCut's time grows with the pixel count, and a colour model does not need them all.
    ``max_side=None`` always works at full resolution.
    """

    def __init__(
        self, iterations: int = 5, context: float = 0.5, max_side: int | None = 512
    ) -> None:
        if iterations < 1:
            raise ValueError(f"GrabCut iterations {iterations}: expected at least 1")
        if max_side is not None and max_side < 16:
            raise ValueError(f"GrabCut max_side {max_side}: expected at least 16 pixels or None")
        self.iterations, self.context, self.max_side = iterations, context, max_side

    def __call__(self, image: Image.Image, boxes: Sequence[Box]) -> list[np.ndarray]:
        pixels = np.asarray(image.convert("RGB"))[..., ::-1].copy()  # OpenCV wants BGR
        return [self._one(pixels, check_box(box, image.size)) for box in boxes]

    def _one(self, pixels: np.ndarray, box: Box) -> np.ndarray:
        height, width = pixels.shape[:2]
        x1, y1 = int(np.floor(box.x1)), int(np.floor(box.y1))
        x2, y2 = int(np.ceil(box.x2)), int(np.ceil(box.y2))
        pad_x = int(self.context * (x2 - x1)) + 2
        pad_y = int(self.context * (y2 - y1)) + 2
        wx1, wy1 = max(0, x1 - pad_x), max(0, y1 - pad_y)
        wx2, wy2 = min(width, x2 + pad_x), min(height, y2 + pad_y)
        window = pixels[wy1:wy2, wx1:wx2]
        rx1, ry1, rx2, ry2 = x1 - wx1, y1 - wy1, x2 - wx1, y2 - wy1
        if (rx1, ry1, rx2, ry2) == (0, 0, window.shape[1], window.shape[0]):
            # the box is the whole picture: GrabCut needs some background, take the border
            rx1, ry1, rx2, ry2 = 1, 1, rx2 - 1, ry2 - 1
        full = np.zeros((height, width), dtype=bool)
        if rx2 - rx1 < 2 or ry2 - ry1 < 2:
            full[y1:y2, x1:x2] = True  # too thin to model: the box itself
            return full
        rect = (rx1, ry1, rx2, ry2)
        small = self._smaller(window.shape[1], window.shape[0], rect)
        if small is None:
            cut = self._cut(window, rect)
        else:
            size, small_rect = small
            cut = self._cut(cv2.resize(window, size, interpolation=cv2.INTER_AREA), small_rect)
            size = (window.shape[1], window.shape[0])
            cut = cv2.resize(cut.astype(np.uint8) * 255, size, interpolation=cv2.INTER_LINEAR) > 127
        full[wy1:wy2, wx1:wx2] = cut
        return full

    def _smaller(self, width: int, height: int, rect):
        """The reduced window size and box, or None to work at full resolution."""
        if self.max_side is None or max(width, height) <= self.max_side:
            return None
        scale = self.max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        x1, y1, x2, y2 = (round(v * scale) for v in rect)
        x2, y2 = min(x2, size[0]), min(y2, size[1])
        if (x1, y1, x2, y2) == (0, 0, *size):  # as at full size: some background is needed
            x1, y1, x2, y2 = 1, 1, x2 - 1, y2 - 1
        if x2 - x1 < 2 or y2 - y1 < 2:
            return None  # too thin once reduced: keep every pixel
        return size, (x1, y1, x2, y2)

    def _cut(self, window: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
        x1, y1, x2, y2 = rect
        labels = np.zeros(window.shape[:2], dtype=np.uint8)
        background = np.zeros((1, 65), dtype=np.float64)
        foreground = np.zeros((1, 65), dtype=np.float64)
        cv2.grabCut(
            window,
            labels,
            (x1, y1, x2 - x1, y2 - y1),
            background,
            foreground,
            self.iterations,
            cv2.GC_INIT_WITH_RECT,
        )
        return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
