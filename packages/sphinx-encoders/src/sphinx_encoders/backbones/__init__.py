"""Frozen wrappers of the library backbones that the mixed encoder concatenates."""

from .clip_vit import ClipViTBackbone
from .convnext import ConvNeXtBackbone
from .dinov2 import DinoV2Backbone
from .frozen import FrozenBackbone
from .qformer import QFormerBackbone

__all__ = [
    "ClipViTBackbone",
    "ConvNeXtBackbone",
    "DinoV2Backbone",
    "FrozenBackbone",
    "QFormerBackbone",
]
