"""Views as normalised float tensors, with the SPHINX reference numerics (needs torch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._torch import require_torch
from .images import DEFAULT_MAX_PIXELS, ImageSource
from .layout import Layout
from .plan import CanvasPlan
from .presets import Preset, get_preset
from .tiling import prepare

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
) -> torch.Tensor:
    """`image`'s views as a float32 tensor (n_views, 3, side, side).

    Same numbers as the SPHINX reference: PIL bicubic resize of the padded canvas, /255,
    normalise, global view = torch bicubic (align_corners=False) of the normalised canvas,
    crops = slices of it. `normalize` is "clip", "imagenet" or None (values in [0, 1]).
    """
    torch = require_torch("tile_tensor")
    stats = _stats(normalize)
    prepared = prepare(image, preset, max_pixels=max_pixels)
    side = prepared.plan.side
    out = torch.empty((prepared.plan.n_views, 3, side, side), dtype=torch.float32)
    _write_views(torch, prepared.canvas, prepared.plan, stats, out)
    return out


def tile_batch(
    images: Sequence[ImageSource],
    preset: str | Preset,
    normalize: str | None = "clip",
    device: Any = None,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> TiledBatch:
    """Tile many images into one stacked tensor plus the view -> image index.

    With `device` (e.g. "cuda"), the canvases travel as uint8 and normalisation and the
    global-view interpolation run there; the PIL resize stays on the CPU so the numbers
    keep the reference's resampling.
    """
    torch = require_torch("tile_batch")
    stats = _stats(normalize)
    preset = get_preset(preset)
    prepared = [prepare(image, preset, max_pixels=max_pixels) for image in images]
    counts = [p.plan.n_views for p in prepared]
    device = torch.device(device) if device is not None else torch.device("cpu")
    side = preset.side
    pixel_values = torch.empty((sum(counts), 3, side, side), dtype=torch.float32, device=device)
    start = 0
    for item, count in zip(prepared, counts, strict=True):
        _write_views(torch, item.canvas, item.plan, stats, pixel_values[start : start + count])
        start += count
    image_index = torch.repeat_interleave(
        torch.arange(len(prepared), device=device),
        torch.tensor(counts, dtype=torch.long, device=device),
    )
    return TiledBatch(pixel_values, image_index, [p.layout for p in prepared])


def _stats(normalize: str | None):
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize={normalize!r}: expected one of {list(NORMALIZATIONS)}")
    return NORMALIZATIONS[normalize]


def _write_views(torch, canvas: np.ndarray, plan: CanvasPlan, stats, out) -> None:
    """Fill `out` (n_views, 3, side, side) with the views of a uint8 HWC canvas."""
    side, rows, cols = plan.side, plan.rows, plan.cols
    single = rows * cols == 1
    if out.device.type != "cpu":
        full = torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1))).to(out.device)
        full = _normalise_tensor(torch, full.to(out.dtype), stats)
    else:
        full_array = out[0].numpy() if single else np.empty((3, *canvas.shape[:2]), np.float32)
        _normalise_array(canvas, stats, full_array)
        full = torch.from_numpy(full_array)
    if single:
        out[0] = full
        return
    first_crop = 0
    if plan.has_global_view:
        out[0] = _global_view(torch, full, rows, cols, side)
        first_crop = 1
    crops = out[first_crop : first_crop + rows * cols].view(rows, cols, 3, side, side)
    tiles = full.view(3, rows, side, cols, side).permute(1, 3, 0, 2, 4)
    if out.device.type == "cpu":
        np.copyto(crops.numpy(), tiles.numpy())
    else:
        crops.copy_(tiles)


def _global_view(torch, full, rows: int, cols: int, side: int):
    """torch bicubic interpolation (align_corners=False) of the canvas to side x side.

    Shrinking by an odd whole factor k samples at k * i + (k - 1) / 2 exactly, where the
    cubic weights are exactly (0, 1, 0, 0): the result is then a strided slice, bit for bit.
    """
    if rows % 2 == 1 and cols % 2 == 1:
        return full[:, rows // 2 :: rows, cols // 2 :: cols]
    return torch.nn.functional.interpolate(
        full[None], size=(side, side), mode="bicubic", align_corners=False
    )[0]


# ToTensor + Normalize step by step (x / 255, - mean, / std), each rounded to float32 as torch
# does, so the values are bit-identical; numpy keeps these cheap passes off torch's thread pool.
def _normalise_array(canvas: np.ndarray, stats, out: np.ndarray) -> None:
    np.copyto(out, canvas.transpose(2, 0, 1), casting="unsafe")
    out /= np.float32(255)
    if stats is not None:
        mean, std = (np.asarray(v, np.float32).reshape(3, 1, 1) for v in stats)
        out -= mean
        out /= std


def _normalise_tensor(torch, full, stats):
    full = full.div_(255)
    if stats is None:
        return full
    mean, std = (torch.tensor(v, dtype=full.dtype, device=full.device).view(3, 1, 1) for v in stats)
    return full.sub_(mean).div_(std)
