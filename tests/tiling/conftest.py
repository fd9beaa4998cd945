"""Shared test images: real photos from scikit-image and synthetic gradients."""

import numpy as np
import pytest
from PIL import Image

PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "page", "rocket")


def gradient(width: int, height: int) -> np.ndarray:
    """An RGB image whose pixels encode their own position: R = x % 256, G = y % 256,
    B = 16 * (y // 256) + (x // 256) % 16, so every region is recognisable."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs % 256, ys % 256, 16 * (ys // 256) + (xs // 256) % 16], axis=-1).astype(
        np.uint8
    )


@pytest.fixture(scope="session", name="gradient")
def gradient_fixture():
    return gradient


@pytest.fixture(params=PHOTO_NAMES)
def photo(request, photos) -> Image.Image:
    """Each scikit-image photo in turn, as RGB."""
    return photos[request.param].convert("RGB")


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    from skimage import data

    return {name: Image.fromarray(getattr(data, name)()) for name in PHOTO_NAMES}
