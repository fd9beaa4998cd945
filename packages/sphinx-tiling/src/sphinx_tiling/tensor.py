"""Views as normalised float tensors, with the SPHINX reference numerics (needs torch)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._torch import require_torch
from .images import DEFAULT_MAX_PIXELS, ImageSource
from .layout import Layout
from .presets import Preset, get_preset
from .tiling import PreparedImage, prepare

if TYPE_CHECKING:
    import torch

#: Per-channel (mean, std) of each normalisation; None gives raw [0, 1] values.
NORMALIZATIONS: dict[str | None, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    None: None,
}


@dataclass(frozen=True)
class TiledBatch:
    """Views of several images stacked in one tensor.

    `image_index[k]` is the image view k belongs to (non-decreasing), so images may have
    different numbers of views.
    """

    pixel_values: torch.Tensor  # (total_views, 3, side, side) float32
    image_index: torch.Tensor  # (total_views,) int64
    layouts: list[Layout]

    @property
    def views_per_image(self) -> list[int]:
        return [layout.n_views for layout in self.layouts]


def tile_tensor(
    image: ImageSource,
    preset: str | Preset,
    normalize: str | None = "clip",
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    resample: str = "pil",
) -> torch.Tensor:
    """`image`'s views as a float32 tensor (n_views, 3, side, side).

    Same numbers as the SPHINX reference: PIL bicubic resize of the padded canvas, /255,
    normalise, global view = torch bicubic (align_corners=False) of the normalised canvas,
    crops = slices of it. `normalize` is "clip", "imagenet" or None (values in [0, 1]).
    `resample="torch"` resizes with torch's uint8 kernels instead of Pillow: about 3x
    faster, pixels within 2 levels of Pillow's, no longer bit-identical to the reference.
    """
    torch = require_torch("tile_tensor")
    stats = _stats(normalize)
    prepared = prepare(image, preset, max_pixels=max_pixels, resample=resample)
    side = prepared.plan.side
    out = torch.empty((prepared.plan.n_views, 3, side, side), dtype=torch.float32)
    _write_views(torch, [prepared], stats, [out])
    return out


def tile_batch(
    images: Sequence[ImageSource],
    preset: str | Preset,
    normalize: str | None = "clip",
    device: Any = None,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    resample: str = "pil",
) -> TiledBatch:
    """Tile many images into one stacked tensor plus the view -> image index.

    Images are decoded and resized on `workers` threads (default: one per CPU core, at most
    one per image; Pillow releases the GIL while resampling); pass ``workers=1`` inside
    DataLoader workers. With `device` (e.g. "cuda"), the canvases travel as uint8 and
    normalisation and the global-view interpolation run there; the PIL resize stays on the
    CPU so the numbers keep the reference's resampling. `resample` is as in `tile_tensor`.
    """
    torch = require_torch("tile_batch")
    stats = _stats(normalize)
    preset = get_preset(preset)
    prepared = _prepare_all(images, preset, max_pixels, workers, resample)
    counts = [p.plan.n_views for p in prepared]
    device = torch.device(device) if device is not None else torch.device("cpu")
    side = preset.side
    pixel_values = torch.empty((sum(counts), 3, side, side), dtype=torch.float32, device=device)
    starts = np.cumsum([0, *counts])
    outputs = [pixel_values[a:b] for a, b in itertools.pairwise(starts)]
    # Images with the same canvas share one normalisation buffer and one interpolation call.
    groups: dict[tuple, list[int]] = {}
    for index, item in enumerate(prepared):
        groups.setdefault((item.canvas.shape, item.plan.rows, item.plan.cols), []).append(index)
    for members in groups.values():
        _write_views(torch, [prepared[i] for i in members], stats, [outputs[i] for i in members])
    image_index = torch.repeat_interleave(
        torch.arange(len(prepared), device=device),
        torch.tensor(counts, dtype=torch.long, device=device),
    )
    return TiledBatch(pixel_values, image_index, [p.layout for p in prepared])


def _prepare_all(images, preset: Preset, max_pixels: int | None, workers: int | None, resample):
    def run(image):
        return prepare(image, preset, max_pixels=max_pixels, resample=resample)

    workers = min(len(images), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [run(image) for image in images]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sphinx-tiling") as pool:
        return list(pool.map(run, images))


def _stats(normalize: str | None):
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize={normalize!r}: expected one of {list(NORMALIZATIONS)}")
    return NORMALIZATIONS[normalize]


def _write_views(torch, items: list[PreparedImage], stats, outs: list) -> None:
    """Fill each `outs[k]` (n_views, 3, side, side) with the views of `items[k]`.

    All items share one canvas shape and grid.
    """
    plan = items[0].plan
    side, rows, cols = plan.side, plan.rows, plan.cols
    device = outs[0].device
    height, width = items[0].canvas.shape[:2]
    if rows * cols == 1:  # the canvas is the only view: normalise straight into the output
        for item, out in zip(items, outs, strict=True):
            _normalise_into(torch, item.canvas, stats, out[0])
        return
    full = torch.empty((len(items), 3, height, width), dtype=torch.float32, device=device)
    for k, item in enumerate(items):
        _normalise_into(torch, item.canvas, stats, full[k])
    first_crop = 0
    if plan.has_global_view:
        global_views = _global_views(torch, full, rows, cols, side)
        for k, out in enumerate(outs):
            out[0] = global_views[k]
        first_crop = 1
    tiles = full.view(len(items), 3, rows, side, cols, side).permute(0, 2, 4, 1, 3, 5)
    for k, out in enumerate(outs):
        crops = out[first_crop : first_crop + rows * cols].view(rows, cols, 3, side, side)
        if device.type == "cpu":
            np.copyto(crops.numpy(), tiles[k].numpy())
        else:
            crops.copy_(tiles[k])


def _global_views(torch, full, rows: int, cols: int, side: int):
    """torch bicubic interpolation (align_corners=False) of the canvases to side x side.

    Shrinking by an odd whole factor k samples at k * i + (k - 1) / 2 exactly, where the
    cubic weights are exactly (0, 1, 0, 0): the result is then a strided slice, bit for bit.
    """
    if rows % 2 == 1 and cols % 2 == 1:
        return full[:, :, rows // 2 :: rows, cols // 2 :: cols]
    return torch.nn.functional.interpolate(
        full, size=(side, side), mode="bicubic", align_corners=False
    )


def _normalise_into(torch, canvas: np.ndarray, stats, out) -> None:
    """Normalise a uint8 HWC canvas into the float32 (3, H, W) tensor `out`."""
    if out.device.type == "cpu":
        _normalise_array(canvas, stats, out.numpy())
        return
    out.copy_(torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1))).to(out.device))
    out.div_(255)
    if stats is not None:
        mean, std = (
            torch.tensor(v, dtype=out.dtype, device=out.device).view(3, 1, 1) for v in stats
        )
        out.sub_(mean).div_(std)


# ToTensor + Normalize step by step (x / 255, - mean, / std), each rounded to float32 as torch
# does, so the values are bit-identical; numpy keeps these cheap passes off torch's thread pool.
def _normalise_array(canvas: np.ndarray, stats, out: np.ndarray) -> None:
    np.copyto(out, canvas.transpose(2, 0, 1), casting="unsafe")
    out /= np.float32(255)
    if stats is not None:
        mean, std = (np.asarray(v, np.float32).reshape(3, 1, 1) for v in stats)
        out -= mean
        out /= std
