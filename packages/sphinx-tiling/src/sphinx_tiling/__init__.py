"""Cut images of any size into encoder-sized views, the SPHINX way and beyond.

Pillow and numpy only; `tile_tensor` and `tile_batch` need the `torch` extra.
"""

from importlib.metadata import version as _version

from .images import (
    CLIP_MEAN_RGB,
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

__version__ = _version("sphinx-tiling")

__all__ = [
    "CLIP_MEAN_RGB",
    "DEFAULT_MAX_PIXELS",
    "NORMALIZATIONS",
    "CanvasPlan",
    "ClippedBox",
    "ImageLoadError",
    "Layout",
    "Preset",
    "TiledBatch",
    "Tiling",
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
