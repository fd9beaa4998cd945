"""DINOv2 on timm's ViT modules, with DINOv2's own position-embedding interpolation.

timm's DINOv2 models share the original module names (`blocks.N.norm1`, `cls_token`, ...)
except the packed SwiGLU (`mlp.w12` / `mlp.w3` there, `mlp.fc1` / `mlp.fc2` here), so the
original checkpoints map by two renames. timm resamples position embeddings by output size;
DINOv2 scales the 37x37 grid by `(grid + 0.1) / 37`, which gives different values, so that
step is replaced here to match the reference features.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.layers import Mlp, SwiGLUPacked
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from ..config import DinoV2Config
from ..weights import WeightsError, assign_weights, read_state_dict
from .frozen import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, FrozenBackbone
from .views import fit_views

_ORIGINAL_TO_TIMM = (
    (re.compile(r"\.mlp\.w12\."), ".mlp.fc1."),
    (re.compile(r"\.mlp\.w3\."), ".mlp.fc2."),
)
_TIMM_TO_ORIGINAL = (
    (re.compile(r"\.mlp\.fc1\."), ".mlp.w12."),
    (re.compile(r"\.mlp\.fc2\."), ".mlp.w3."),
)
# Hugging Face hub files (`facebook/dinov2-*`): module names -> the original ones.
_HF_TO_ORIGINAL = (
    (re.compile(r"^embeddings\.cls_token$"), "cls_token"),
    (re.compile(r"^embeddings\.mask_token$"), "mask_token"),
    (re.compile(r"^embeddings\.position_embeddings$"), "pos_embed"),
    (re.compile(r"^embeddings\.patch_embeddings\.projection\."), "patch_embed.proj."),
    (re.compile(r"^encoder\.layer\."), "blocks."),
    (re.compile(r"\.attention\.output\.dense\."), ".attn.proj."),
    (re.compile(r"\.layer_scale(\d)\.lambda1$"), r".ls\1.gamma"),
    (re.compile(r"\.mlp\.weights_in\."), ".mlp.w12."),
    (re.compile(r"\.mlp\.weights_out\."), ".mlp.w3."),
    (re.compile(r"^layernorm\."), "norm."),
)
_HF_SPLIT_QKV = re.compile(
    r"^(blocks\.\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$"
)


class _DinoV2ViT(VisionTransformer):
    """timm ViT whose position embeddings are interpolated the way DINOv2 does it."""

    def __init__(self, interpolate_offset: float, **kwargs):
        super().__init__(**kwargs)
        self.interpolate_offset = interpolate_offset

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, channels = x.shape
        stored = self.pos_embed.float()
        side = self.patch_embed.grid_size[0]
        patch_pos = stored[:, 1:].reshape(1, side, side, channels).permute(0, 3, 1, 2)
        if (height, width) != (side, side):
            scale = (
                (height + self.interpolate_offset) / side,
                (width + self.interpolate_offset) / side,
            )
            patch_pos = F.interpolate(
                patch_pos, scale_factor=scale, mode="bicubic", antialias=False
            )
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, height * width, channels)
        pos = torch.cat([stored[:, :1], patch_pos], dim=1).to(x.dtype)
        tokens = torch.cat(
            [self.cls_token.expand(batch, -1, -1), x.reshape(batch, -1, channels)], 1
        )
        return self.pos_drop(tokens + pos)


class DinoV2Backbone(FrozenBackbone):
    """Normed CLS + patch tokens of DINOv2 for CLIP-normalised views."""

    def __init__(self, config: DinoV2Config):
        super().__init__()
        self.config = config
        swiglu = config.ffn == "swiglu"
        if config.ffn not in ("swiglu", "mlp"):
            raise ValueError(f"DINOv2 ffn must be 'swiglu' or 'mlp', got {config.ffn!r}")
        # DINOv2's fused SwiGLU hidden width: 2/3 of mlp_ratio * dim, rounded up to 8.
        hidden = (int(config.embed_dim * config.mlp_ratio * 2 / 3) + 7) // 8 * 8
        self.vit = _DinoV2ViT(
            interpolate_offset=config.interpolate_offset,
            img_size=config.pos_grid * config.patch_size,
            patch_size=config.patch_size,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            # timm takes int(dim * ratio) as the hidden width; +0.5 keeps it exact.
            mlp_ratio=(2 * hidden + 0.5) / config.embed_dim if swiglu else config.mlp_ratio,
            mlp_layer=SwiGLUPacked if swiglu else Mlp,
            act_layer=nn.SiLU if swiglu else nn.GELU,
            init_values=1e-5,
            num_classes=0,
            dynamic_img_size=True,
        )
        grid = config.image_size // config.patch_size
        self.num_tokens = grid * grid + 1
        self.out_channels = config.embed_dim
        self.reference_prefix = config.reference_prefix
        self.uses_image_index = config.views_from_canvas
        self.freeze()

    def renormalize(self, views: torch.Tensor) -> torch.Tensor:
        """CLIP-normalised pixels -> ImageNet-normalised pixels, in the views' dtype.

        The statistics are float32 tensors cast to the views' dtype, as the reference does.
        """

        def stat(values):
            return torch.tensor(values, device=views.device).to(views.dtype).view(3, 1, 1)

        clip_mean, clip_std = stat(CLIP_MEAN), stat(CLIP_STD)
        mean, std = stat(IMAGENET_MEAN), stat(IMAGENET_STD)
        if self.config.renormalize == "affine":
            return views * (clip_std / std) + (clip_mean - mean) / std
        return (views * clip_std + clip_mean - mean) / std

    def resize(self, views: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        """Views of another side -> `image_size` (see `fit_views`)."""
        return fit_views(views, image_index, self.config, self.dtype)

    def forward(self, views: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        resized = self.resize(views.to(self.dtype), image_index)
        return self.vit.forward_features(self.renormalize(resized))

    def to_reference_keys(self, state):
        return {_rename(k.removeprefix("vit."), _TIMM_TO_ORIGINAL): v for k, v in state.items()}

    def from_reference_keys(self, state):
        return {f"vit.{_rename(k, _ORIGINAL_TO_TIMM)}": v for k, v in state.items()}

    def unused_reference_keys(self, keys):
        return [k for k in keys if k == "mask_token"]

    def load_pretrained(self, path: str | Path, strict: bool = True) -> list[str]:
        """An original DINOv2 checkpoint (torch hub release), a timm file or a HF folder."""
        state = read_state_dict(path)
        if any(k.startswith("embeddings.") for k in state):
            state = _hugging_face_to_original(state)
        state = self.from_reference_keys(
            {k: v for k, v in state.items() if k != "mask_token" and not k.startswith("head.")}
        )
        if not state:
            raise WeightsError(f"{path}: no DINOv2 weights found")
        return assign_weights(self, state, str(path), strict=strict)


def _rename(key: str, rules) -> str:
    for pattern, replacement in rules:
        key = pattern.sub(replacement, key)
    return key


def _hugging_face_to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a Hugging Face DINOv2 state dict and fuse its q/k/v into one `qkv`."""
    out, split = {}, {}
    for key, value in state.items():
        key = _rename(key, _HF_TO_ORIGINAL)
        match = _HF_SPLIT_QKV.match(key)
        if match:
            split.setdefault((match.group(1), match.group(3)), {})[match.group(2)] = value
        else:
            out[key] = value
    for (block, kind), parts in split.items():
        if set(parts) != {"query", "key", "value"}:
            raise WeightsError(
                f"{block}.attention {kind}: needs query, key and value, found {sorted(parts)}"
            )
        out[f"{block}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return out
