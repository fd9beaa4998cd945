"""Reading images, boxes and masks given by a user, with one-line errors naming the input."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from sphinx_tasks import Box

ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray  # or an H x W (x 3) uint8 tensor
BoxInput = Box | Sequence[float]


def load_rgb(image: ImageInput, what: str = "image") -> Image.Image:
    """An RGB Pillow image from a path, a Pillow image or an H x W (x 3) uint8 array / tensor.

    A torch tensor is copied to numpy with ``detach().cpu()``, which also works on tensors
    made under ``torch.inference_mode`` or that require grad (torch is not imported here).
    """
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    if type(image).__module__.startswith("torch") and hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(
                f"{what}: expected an H x W or H x W x 3 uint8 array, "
                f"got {image.dtype} of shape {image.shape}"
            )
        return Image.fromarray(image).convert("RGB")
    if not isinstance(image, (str, os.PathLike)):
        raise ValueError(
            f"{what}: expected a path, a Pillow image or a uint8 array, got {type(image).__name__}"
        )
    return _read(image, "RGB", what)


def _read(source: str | os.PathLike[str], mode: str, what: str) -> Image.Image:
    """A file decoded to ``mode``; unreadable, truncated and bomb-sized files name the path."""
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    try:
        with Image.open(path) as opened:
            return opened.convert(mode)
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: not a readable {what} ({error})") from None


def check_box(box: BoxInput, size: tuple[int, int]) -> Box:
    """A box in pixels of a `size` (width, height) image, clipped to it; refused if outside."""
    if not isinstance(box, Box):
        values = list(box)
        if len(values) != 4:
            raise ValueError(f"box {values}: expected 4 numbers x1,y1,x2,y2")
        box = Box(*(float(v) for v in values))
    width, height = size
    shown = f"[{box.x1:g},{box.y1:g},{box.x2:g},{box.y2:g}]"
    if not all(np.isfinite(box.as_tuple())):
        raise ValueError(f"box {shown}: coordinates must be finite numbers")
    box = box.ordered()
    clipped = Box(
        min(max(box.x1, 0.0), width),
        min(max(box.y1, 0.0), height),
        min(max(box.x2, 0.0), width),
        min(max(box.y2, 0.0), height),
    )
    if clipped.width < 1 or clipped.height < 1:
        raise ValueError(
            f"box {shown}: lies outside the {width}x{height} image "
            "(expected pixel corners x1,y1,x2,y2 inside it)"
        )
    return clipped


def load_mask(mask: ImageInput, size: tuple[int, int], what: str = "mask") -> np.ndarray:
    """A boolean H x W mask matching a `size` (width, height) image; empty masks are refused."""
    if isinstance(mask, np.ndarray):
        array = mask
    elif isinstance(mask, Image.Image):
        array = np.asarray(mask.convert("L"))
    else:
        array = np.asarray(_read(mask, "L", what))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{what}: expected one channel (H x W), got shape {array.shape}")
    width, height = size
    if array.shape != (height, width):
        raise ValueError(
            f"{what}: is {array.shape[1]}x{array.shape[0]} but the image is {width}x{height}"
        )
    array = array > (127 if array.dtype == np.uint8 else 0)
    if not array.any():
        raise ValueError(f"{what}: is empty (no pixel set), so there is nothing to change")
    return array


def mask_image(mask: np.ndarray) -> Image.Image:
    """A boolean mask as a black / white Pillow image."""
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L")


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a mask by `pixels` in every direction (a disc), to cover object edges and shadows."""
    if pixels <= 0:
        return mask.copy()
    import cv2

    offsets = np.arange(-pixels, pixels + 1)
    kernel = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= pixels**2).astype(np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def union(masks: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """All masks in one; an all-False mask of `size` (width, height) when there are none."""
    combined = np.zeros((size[1], size[0]), dtype=bool)
    for mask in masks:
        combined |= mask
    return combined
