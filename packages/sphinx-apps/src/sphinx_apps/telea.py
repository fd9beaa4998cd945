"""Telea's fast marching inpainting (OpenCV): no weights, the default inpainter."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .images import load_mask


class TeleaInpainter:
    """Fill the mask from its border inwards; good for small objects on smooth backgrounds."""

    uses_prompt = False

    def __init__(self, radius: int = 5) -> None:
        if radius < 1:
            raise ValueError(f"Telea radius {radius}: expected at least 1 pixel")
        self.radius = radius

    def __call__(
        self, image: Image.Image, mask: np.ndarray, prompt: str | None = None
    ) -> Image.Image:
        mask = load_mask(mask, image.size)
        pixels = np.asarray(image.convert("RGB"))
        filled = cv2.inpaint(pixels, mask.astype(np.uint8) * 255, self.radius, cv2.INPAINT_TELEA)
        return Image.fromarray(filled)
