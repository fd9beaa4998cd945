"""BLIP-2 Q-Former through transformers: EVA ViT + Q-Former + the learned query tokens."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel, Blip2VisionConfig, Blip2VisionModel

from ..config import QFormerConfig
from ..weights import WeightsError, assign_weights, read_state_dict
from .frozen import FrozenBackbone
from .views import fit_views

# transformers < 5 stored the vision attention bias as separate q/v vectors (k has none).
_SPLIT_BIAS = re.compile(r"^(vision_model\.encoder\.layers\.\d+\.self_attn)\.(q_bias|v_bias)$")
# Text-input feed-forward of each Q-Former layer: stored by older transformers, unused by queries.
_TEXT_FFN = re.compile(r"^qformer\.encoder\.layer\.\d+\.(intermediate|output)\.")
_OWN_PREFIXES = ("vision_model.", "qformer.", "query_tokens")


class QFormerBackbone(FrozenBackbone):
    """The 32 query tokens' last hidden state, like `Blip2Model.get_qformer_features`."""

    def __init__(self, config: QFormerConfig):
        super().__init__()
        self.config = config
        vision = Blip2VisionConfig(
            hidden_size=config.vision_width,
            intermediate_size=config.vision_mlp,
            num_hidden_layers=config.vision_layers,
            num_attention_heads=config.vision_heads,
            image_size=config.image_size,
            patch_size=config.patch_size,
            layer_norm_eps=config.vision_ln_eps,
            qkv_bias=True,
            # Only random builds see this; BLIP-2's default (1e-10) makes every token equal.
            initializer_range=0.02,
        )
        qformer = Blip2QFormerConfig(
            hidden_size=config.qformer_width,
            num_hidden_layers=config.qformer_layers,
            num_attention_heads=config.qformer_heads,
            intermediate_size=config.qformer_mlp,
            layer_norm_eps=config.qformer_ln_eps,
            cross_attention_frequency=config.cross_attention_frequency,
            encoder_hidden_size=config.vision_width,
        )
        attention = "sdpa"
        self.vision_model = Blip2VisionModel._from_config(vision, attn_implementation=attention)
        self.qformer = Blip2QFormerModel._from_config(qformer, attn_implementation=attention)
        self.query_tokens = nn.Parameter(
            torch.randn(1, config.num_query_tokens, config.qformer_width) * 0.02
        )
        self.num_tokens = config.num_query_tokens
        self.out_channels = config.qformer_width
        self.reference_prefix = config.reference_prefix
        self.uses_image_index = config.views_from_canvas
        self.freeze()

    def forward(self, views: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
        views = fit_views(views, image_index, self.config, self.dtype)
        image_embeds = self.vision_model(pixel_values=views).last_hidden_state
        queries = self.query_tokens.expand(views.shape[0], -1, -1)
        # No encoder mask: every image token is real, and a mask of ones changes nothing.
        out = self.qformer(query_embeds=queries, encoder_hidden_states=image_embeds)
        return out.last_hidden_state

    def to_reference_keys(self, state):
        out = {}
        for key, value in state.items():
            if key.endswith(".self_attn.qkv.bias"):
                stem = key.removesuffix(".qkv.bias")
                q_bias, _, v_bias = value.chunk(3)
                out[f"{stem}.q_bias"], out[f"{stem}.v_bias"] = q_bias, v_bias
            else:
                out[key] = value
        return out

    def from_reference_keys(self, state):
        out, halves = {}, {}
        for key, value in state.items():
            match = _SPLIT_BIAS.match(key)
            if match:
                halves.setdefault(match.group(1), {})[match.group(2)] = value
            else:
                out[key] = value
        for stem, parts in halves.items():
            if set(parts) != {"q_bias", "v_bias"}:
                raise WeightsError(f"{stem}: needs both q_bias and v_bias, found {sorted(parts)}")
            q_bias, v_bias = parts["q_bias"], parts["v_bias"]
            out[f"{stem}.qkv.bias"] = torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])
        return out

    def unused_reference_keys(self, keys):
        return [k for k in keys if _TEXT_FFN.match(k)]

    def load_pretrained(self, path: str | Path, strict: bool = True) -> list[str]:
        """A Hugging Face BLIP-2 folder or file (the language model part is skipped)."""
        state = read_state_dict(path)
        state = {k: v for k, v in state.items() if k.startswith(_OWN_PREFIXES)}
        if not state:
            raise WeightsError(f"{path}: no BLIP-2 vision_model / qformer / query_tokens weights")
        state = self.from_reference_keys(state)
        ignored = self.unused_reference_keys(list(state))
        return assign_weights(self, state, str(path), strict=strict, ignored=ignored)
