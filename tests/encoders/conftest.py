"""Shared fixtures: tiny encoders and CLIP-normalised views built from a real photo."""

import numpy as np
import pytest
import torch
from skimage import data

from sphinx_encoders import create_encoder

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def photo_views(n: int, side: int = 224, seed: int = 0) -> torch.Tensor:
    """n different crops of skimage's astronaut, CLIP-normalised, (n, 3, side, side)."""
    image = torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1).float() / 255
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        y, x = rng.integers(0, image.shape[1] - side, size=2)
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
