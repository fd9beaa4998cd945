"""Synthetic scenes with known shapes, and small helpers shared by the sphinx-apps tests."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 112, 96
ELLIPSE = (34, 24, 82, 70)  # the object's bounding box (x1, y1, x2, y2), pixels


def gradient_background(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A smooth background (linear ramps), the case Telea fills almost exactly."""
    xs = np.linspace(0, 1, width)[None, :]
    ys = np.linspace(0, 1, height)[:, None]
    red = 60 + 80 * xs + 0 * ys
    green = 120 + 60 * ys + 0 * xs
    blue = 170 - 40 * xs + 30 * ys
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


def ellipse_mask(box=ELLIPSE, size=(WIDTH, HEIGHT)) -> np.ndarray:
    canvas = Image.new("L", size, 0)
    ImageDraw.Draw(canvas).ellipse(box, fill=255)
    return np.asarray(canvas) > 127


@pytest.fixture
def scene():
    """(image, background, true mask): an orange ellipse on a gradient, light noise on both."""
    rng = np.random.default_rng(0)
    background = gradient_background()
    mask = ellipse_mask()
    pixels = background.copy()
    pixels[mask] = (235, 140, 30)
    noise = rng.integers(-4, 5, pixels.shape)
    pixels = np.clip(pixels.astype(int) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels), background, mask


def iou(first: np.ndarray, second: np.ndarray) -> float:
    return float((first & second).sum() / (first | second).sum())


@pytest.fixture
def shapes():
    """The scene's constants and helpers (test modules cannot import conftest directly)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        width=WIDTH,
        height=HEIGHT,
        ellipse=ELLIPSE,
        ellipse_mask=ellipse_mask,
        gradient_background=gradient_background,
        iou=iou,
    )
