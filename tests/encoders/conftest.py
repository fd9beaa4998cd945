"""Shared fixtures: tiny encoders and CLIP-normalised views built from a real photo."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from transformers import Blip2Config, Blip2Model

from sphinx_encoders import create_encoder

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def photo_views(n: int, side: int = 224, seed: int = 0) -> torch.Tensor:
    """n crops of skimage's astronaut (the whole 512 photo at side 512), CLIP-normalised."""
    image = torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1).float() / 255
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        y, x = rng.integers(0, max(image.shape[1] - side, 1), size=2)
        crops.append(image[:, y : y + side, x : x + side])
    return (torch.stack(crops) - CLIP_MEAN) / CLIP_STD


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_encoder("sphinx-tiny", llm_dim=40)


@pytest.fixture(scope="module")
def views5():
    return photo_views(5)


@pytest.fixture(scope="session")
def make_views():
    return photo_views


@pytest.fixture(scope="session")
def clip_stats():
    return CLIP_MEAN, CLIP_STD


def blip2_like(cfg) -> Blip2Model:
    """A transformers Blip2Model with the vision / Q-Former sizes of a QFormerConfig."""
    config = Blip2Config(
        vision_config=dict(
            hidden_size=cfg.vision_width,
            intermediate_size=cfg.vision_mlp,
            num_hidden_layers=cfg.vision_layers,
            num_attention_heads=cfg.vision_heads,
        ),
        qformer_config=dict(
            hidden_size=cfg.qformer_width,
            intermediate_size=cfg.qformer_mlp,
            num_hidden_layers=cfg.qformer_layers,
            num_attention_heads=cfg.qformer_heads,
        ),
        text_config=dict(
            model_type="opt",
            hidden_size=16,
            word_embed_proj_dim=16,
            ffn_dim=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            vocab_size=64,
        ),
        num_query_tokens=cfg.num_query_tokens,
    )
    return Blip2Model(config).eval()


@pytest.fixture(scope="session")
def make_blip2():
    return blip2_like


def _dinov2_pos_embed(stored: torch.Tensor, grid: int) -> torch.Tensor:
    """DINOv2's interpolation: bicubic with scale (grid + 0.1) / pretraining grid."""
    side = int((stored.shape[1] - 1) ** 0.5)
    patch = stored[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = (grid + 0.1) / side
    patch = F.interpolate(patch, scale_factor=(scale, scale), mode="bicubic", align_corners=False)
    return torch.cat([stored[:, :1], patch.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)], 1)


@pytest.fixture(scope="session")
def dinov2_pos():
    return _dinov2_pos_embed
