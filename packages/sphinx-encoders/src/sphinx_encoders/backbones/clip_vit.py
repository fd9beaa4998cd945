"""CLIP ViT through open_clip: every token (CLS + patches) after `ln_post`, no projection."""

from __future__ import annotations

from pathlib import Path

import torch
from open_clip.transformer import LayerNorm, QuickGELU, VisionTransformer
from torch import nn

from ..config import ClipViTConfig
from ..weights import WeightsError, assign_weights, read_state_dict
from .frozen import FrozenBackbone
from .views import fit_views

# Text-tower entries of a full open_clip model; the reference keeps them under `clip.`.
_TEXT_TOWER_PREFIXES = ("token_embedding.", "positional_embedding", "ln_final.", "text_projection")
_TEXT_TOWER_KEYS = ("logit_scale", "logit_bias", "attn_mask")


class ClipViTBackbone(FrozenBackbone):
    """open_clip `VisionTransformer`, read through its `forward_intermediates` token API."""

    def __init__(self, config: ClipViTConfig):
        super().__init__()
        self.config = config
        self.visual = VisionTransformer(
            image_size=config.image_size,
            patch_size=config.patch_size,
            width=config.width,
            layers=config.layers,
            heads=config.width // config.head_width,
            mlp_ratio=config.mlp_ratio,
            output_dim=config.output_dim,
            act_layer=QuickGELU if config.quick_gelu else nn.GELU,
            norm_layer=LayerNorm,
        )
        grid = config.image_size // config.patch_size
        self.num_tokens = grid * grid + 1
        self.out_channels = config.width
        self.reference_prefix = config.reference_prefix
        self.uses_image_index = config.views_from_canvas
        self.freeze()

    def forward(self, views: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        out = self.visual.forward_intermediates(
            fit_views(views, image_index, self.config, self.dtype),
            indices=1,
            normalize_intermediates=True,
            intermediates_only=True,
            output_fmt="NLC",
            output_extra_tokens=True,
        )
        return torch.cat([out["image_intermediates_prefix"][0], out["image_intermediates"][0]], 1)

    def unused_reference_keys(self, keys):
        return [k for k in keys if _is_text_tower(k)]

    def load_pretrained(self, path: str | Path, strict: bool = True) -> list[str]:
        """An open_clip checkpoint (full CLIP, keys `visual.*`) or a bare visual tower."""
        state = read_state_dict(path)
        if any(k.startswith("visual.") for k in state):
            state = {k: v for k, v in state.items() if not _is_text_tower(k)}
        else:
            state = {f"visual.{k}": v for k, v in state.items()}
        if not state:
            raise WeightsError(f"{path}: no CLIP vision weights found")
        return assign_weights(self, state, str(path), strict=strict)


def _is_text_tower(key: str) -> bool:
    if key.startswith("visual."):
        return False
    return (
        key.startswith(_TEXT_TOWER_PREFIXES)
        or key in _TEXT_TOWER_KEYS
        or key.startswith("transformer.")
    )
