"""Cut one image into views: the PIL path (no torch needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .canvas import render_canvas
from .images import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    ImageSource,
    check_decoding,
    describe_source,
    load_image,
)
from .layout import Layout
from .plan import CanvasPlan, plan_canvas
from .presets import Preset, get_preset


@dataclass(frozen=True)
class PreparedImage:
    """An image decoded, planned and rendered onto its canvas; the views are cut from it."""

    preset: Preset
    plan: CanvasPlan
    layout: Layout
    canvas: np.ndarray  # (3, height, width) uint8 channel planes


def prepare(
    image: ImageSource,
    preset: str | Preset,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    resample: str = "pil",
    decoding: str | None = None,
) -> PreparedImage:
    """Decode `image`, plan its views under `preset` and render the canvas."""
    preset = get_preset(preset)
    return render(*decode(image, preset, max_pixels, decoding), preset, resample)


def decode(
    image: ImageSource, preset: Preset, max_pixels: int | None, decoding: str | None = None
) -> tuple[Image.Image, CanvasPlan]:
    """The RGB image and its plan: all that is known before any resampling.

    `decoding` None means the preset's. The padded image that the canvas is resized from is
    held to `max_pixels` as well, so a 1 x 100000 strip cannot ask for a 100000^2 square.
    """
    decoding = check_decoding(preset.decoding if decoding is None else decoding)
    rgb = load_image(image, max_pixels=max_pixels, fill=preset.fill, decoding=decoding)
    plan = plan_canvas(rgb.width, rgb.height, preset)
    padded_w, padded_h = plan.padded_size
    if max_pixels is not None and padded_w * padded_h > max_pixels:
        raise ImageLoadError(
            f"{describe_source(image)}: the {rgb.width}x{rgb.height} image pads to "
            f"{padded_w}x{padded_h} = {padded_w * padded_h} pixels under preset "
            f"{preset.name!r}, over max_pixels={max_pixels}"
        )
    return rgb, plan


def render(rgb: Image.Image, plan: CanvasPlan, preset: Preset, resample: str) -> PreparedImage:
    """Render the canvas of a decoded image."""
    canvas = render_canvas(rgb, plan, preset.fill, resample)
    return PreparedImage(preset, plan, Layout.from_plan(plan, preset.name), canvas)


@dataclass(frozen=True)
class Tiling:
    """Views of one image (view 0 the global view, then crops row-major) and their layout."""

    views: list[Image.Image]
    layout: Layout


def tile(
    image: ImageSource,
    preset: str | Preset,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    decoding: str | None = None,
) -> Tiling:
    """Cut `image` into `preset`'s views as PIL images of side x side pixels.

    The global view is the canvas resized with PIL bicubic; `tile_tensor` instead follows
    the SPHINX reference numerics (torch bicubic on the normalised canvas). `decoding`
    ("reference" or "corrected") defaults to the preset's. `max_pixels` bounds the image
    and the padded image the canvas is resized from.
    """
    prepared = prepare(image, preset, max_pixels=max_pixels, decoding=decoding)
    plan = prepared.plan
    canvas = Image.fromarray(np.ascontiguousarray(prepared.canvas.transpose(1, 2, 0)))
    side = plan.side
    views = []
    if plan.rows * plan.cols == 1:
        views.append(canvas)
    else:
        if plan.has_global_view:
            views.append(canvas.resize((side, side), Image.Resampling.BICUBIC))
        for row in range(plan.rows):
            for col in range(plan.cols):
                box = (col * side, row * side, (col + 1) * side, (row + 1) * side)
                views.append(canvas.crop(box))
    return Tiling(views, prepared.layout)
