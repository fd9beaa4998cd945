"""The demo encoder preset: a two-member mix on a 7x7 grid at 224."""

from __future__ import annotations

import torch

from sphinx_encoders import create_encoder


def test_demo_mix_has_49_cells_plus_cls_per_member_and_concatenates_channels():
    encoder = create_encoder("sphinx-demo", llm_dim=32)
    assert list(encoder.patch_encoders) == ["clip", "convnext"]
    # 224 / 32 = 7 cells a side for the ViT's patches and the ConvNeXt's stride-32 map,
    # plus one CLS token; the view is [start | 50 patch tokens | end].
    assert encoder.patch_tokens == 7 * 7 + 1
    assert encoder.tokens_per_view == 52
    channels = sum(e.out_channels for e in encoder.patch_encoders.values())
    assert channels == 32 + 48  # the tiny ViT's width + the tiny ConvNeXt's last stage
    out = encoder(torch.zeros(2, 3, 224, 224), torch.tensor([0, 1]))
    assert out.embeds.shape == (2, 52, 32)
