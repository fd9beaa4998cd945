"""SPHINX applications: language-referred segmentation, removal, editing, dense captions, pose.

Names are imported on first use, so ``sphinx-apps --help`` starts without numpy or OpenCV.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version as _version

__version__ = _version("sphinx-apps")

_EXPORTS = {
    "Region": "protocols",
    "Grounder": "protocols",
    "Segmenter": "protocols",
    "Inpainter": "protocols",
    "BoxesGrounder": "grounding",
    "SphinxGrounder": "grounding",
    "GrabCutSegmenter": "grabcut",
    "SamSegmenter": "sam",
    "TeleaInpainter": "telea",
    "LamaInpainter": "lama",
    "DiffusionInpainter": "diffusion",
    "MissingExtraError": "_extras",
    "NothingFoundError": "recipes",
    "segment": "recipes",
    "remove": "recipes",
    "edit": "recipes",
    "dense_caption": "recipes",
    "reason_with_detections": "recipes",
    "referring_pose": "recipes",
    "SegmentResult": "results",
    "InpaintResult": "results",
    "DenseCaptionResult": "results",
    "RegionCaption": "results",
    "ReasonResult": "results",
    "PoseResult": "results",
    "draw_overlay": "drawing",
    "dilate": "images",
    "load_mask": "images",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sphinx_apps' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
