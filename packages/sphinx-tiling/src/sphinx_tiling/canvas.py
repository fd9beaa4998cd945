"""Render a plan's canvas: pad, resize (Pillow bicubic, or torch's uint8 bicubic), paste.

The Pillow path is byte-identical to padding the whole image and calling one PIL
``resize``. Pillow resizes in two passes through an 8-bit intermediate: horizontal (each
row on its own), then vertical. When an image is padded above and below, all padding rows
are alike, so their horizontal pass is computed once instead of once per row, and the
padded image is never built at full resolution (about 40% off for a 4000 x 3000 photo).
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from ._torch import require_torch
from .plan import CanvasPlan

_BICUBIC = Image.Resampling.BICUBIC
RESAMPLERS = ("pil", "torch")


def render_canvas(
    image: Image.Image, plan: CanvasPlan, fill: tuple[int, int, int], resample: str = "pil"
) -> np.ndarray:
    """The canvas of `plan` for an RGB `image`, as (3, height, width) uint8 channel planes.

    Planes, not pixels, because the views are channel-first: normalising reads them
    straight through. `resample="pil"` gives Pillow's bicubic exactly (the reference
    numerics); "torch" uses torch's antialiased uint8 bicubic, about 3x faster and within
    2 levels of Pillow's.
    """
    if resample == "pil":
        return _planes(_canvas_pil(image, plan, fill))
    if resample != "torch":
        raise ValueError(f"resample={resample!r}: expected one of {RESAMPLERS}")
    stretched = _stretch_torch(image, plan, fill).transpose(2, 0, 1)
    canvas_w, canvas_h = plan.canvas_size
    if (canvas_w, canvas_h) == plan.resized_size:
        return stretched
    canvas = np.empty((3, canvas_h, canvas_w), np.uint8)
    canvas[:] = np.asarray(fill, np.uint8).reshape(3, 1, 1)
    (qx, qy), (resized_w, resized_h) = plan.paste_offset, plan.resized_size
    canvas[:, qy : qy + resized_h, qx : qx + resized_w] = stretched
    return canvas


def _planes(image: Image.Image) -> np.ndarray:
    # Pillow keeps RGB as 4 bytes a pixel; packing one band at a time is as cheap as one
    # RGB copy and leaves no transpose for later.
    width, height = image.size
    planes = np.empty((3, height, width), np.uint8)
    for plane, band in zip(planes, "RGB", strict=True):
        plane[:] = np.frombuffer(image.tobytes("raw", band), np.uint8).reshape(height, width)
    return planes


def _canvas_pil(image: Image.Image, plan: CanvasPlan, fill: tuple[int, int, int]) -> Image.Image:
    stretched = _stretch_pil(image, plan, fill)
    if plan.canvas_size == stretched.size:
        return stretched
    canvas = Image.new("RGB", plan.canvas_size, fill)
    canvas.paste(stretched, plan.paste_offset)
    return canvas


def _stretch_pil(image: Image.Image, plan: CanvasPlan, fill: tuple[int, int, int]) -> Image.Image:
    width, height = image.size
    padded_w, padded_h = plan.padded_size
    resized = plan.resized_size
    if padded_h != height and padded_w == width and resized[0] != padded_w:
        # Horizontal pass on the image rows and on one padding row, then the vertical pass.
        fill_row = Image.new("RGB", (padded_w, 1), fill).resize((resized[0], 1), _BICUBIC)
        grid = fill_row.resize((resized[0], padded_h), Image.Resampling.NEAREST)
        grid.paste(image.resize((resized[0], height), _BICUBIC), (0, plan.pad_offset[1]))
        return grid if resized[1] == padded_h else grid.resize(resized, _BICUBIC)
    padded = image
    if (padded_w, padded_h) != (width, height):
        padded = Image.new("RGB", (padded_w, padded_h), fill)
        padded.paste(image, plan.pad_offset)
    return padded.resize(resized, _BICUBIC) if resized != padded.size else padded


def _stretch_torch(image: Image.Image, plan: CanvasPlan, fill: tuple[int, int, int]) -> np.ndarray:
    torch = require_torch('resample="torch"')
    padded = image
    if plan.padded_size != image.size:
        padded = Image.new("RGB", plan.padded_size, fill)
        padded.paste(image, plan.pad_offset)
    array = np.asarray(padded)
    if plan.resized_size == padded.size:
        return array.copy()  # writable, as the views are read from it through torch
    with warnings.catch_warnings():  # read-only is fine: interpolate only reads its input
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        pixels = torch.from_numpy(array)
    # An HWC array seen as NCHW is channels-last, the layout torch's fast uint8 kernels use.
    resized_w, resized_h = plan.resized_size
    stretched = torch.nn.functional.interpolate(
        pixels.permute(2, 0, 1)[None],
        size=(resized_h, resized_w),
        mode="bicubic",
        antialias=True,
        align_corners=False,
    )
    return stretched[0].permute(1, 2, 0).numpy()  # an HWC view, whatever the memory order
