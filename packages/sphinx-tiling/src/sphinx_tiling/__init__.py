"""Cut images of any size into encoder-sized views, the SPHINX way and beyond.

Pillow and numpy only; `tile_tensor` and `tile_batch` need the `torch` extra. The public
names are imported on first use (module ``__getattr__``), so ``import sphinx_tiling`` and
``sphinx-tile --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: public name -> the submodule that defines it
_EXPORTS = {
    "CLIP_MEAN_RGB": "images",
    "DECODINGS": "images",
    "DEFAULT_MAX_PIXELS": "images",
    "ImageLoadError": "images",
    "load_image": "images",
    "pad_to_square": "images",
    "to_rgb": "images",
    "ClippedBox": "layout",
    "Layout": "layout",
    "ViewGeometry": "layout",
    "CanvasPlan": "plan",
    "plan_canvas": "plan",
    "select_internvl_grid": "plan",
    "select_llava_grid": "plan",
    "Preset": "presets",
    "get_preset": "presets",
    "list_presets": "presets",
    "register_preset": "presets",
    "NORMALIZATIONS": "tensor",
    "TiledBatch": "tensor",
    "tile_batch": "tensor",
    "tile_tensor": "tensor",
    "Tiling": "tiling",
    "tile": "tiling",
    "UnknownNameError": "_house",
}

__all__ = [
    "CLIP_MEAN_RGB",
    "DECODINGS",
    "DEFAULT_MAX_PIXELS",
    "NORMALIZATIONS",
    "CanvasPlan",
    "ClippedBox",
    "ImageLoadError",
    "Layout",
    "Preset",
    "TiledBatch",
    "Tiling",
    "UnknownNameError",
    "ViewGeometry",
    "__version__",
    "get_preset",
    "list_presets",
    "load_image",
    "pad_to_square",
    "plan_canvas",
    "register_preset",
    "select_internvl_grid",
    "select_llava_grid",
    "tile",
    "tile_batch",
    "tile_tensor",
    "to_rgb",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        value = version("sphinx-tiling")
    elif name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from ._house import UnknownNameError
    from .images import (
        CLIP_MEAN_RGB,
        DECODINGS,
        DEFAULT_MAX_PIXELS,
        ImageLoadError,
        load_image,
        pad_to_square,
        to_rgb,
    )
    from .layout import ClippedBox, Layout, ViewGeometry
    from .plan import CanvasPlan, plan_canvas, select_internvl_grid, select_llava_grid
    from .presets import Preset, get_preset, list_presets, register_preset
    from .tensor import NORMALIZATIONS, TiledBatch, tile_batch, tile_tensor
    from .tiling import Tiling, tile
