"""Presets: real SPHINX shapes checked on the meta device (no memory, no download)."""

from __future__ import annotations

import pytest
import torch

from sphinx_train import create_model, list_models

# Published parameter counts of the LLaMA-2 models.
LLAMA2_PARAMETERS = {"7b": 6_738_415_616, "13b": 13_015_864_320}
VIEWS = {"sphinx": 1, "sphinx-1k": 5, "sphinx-2k": 10}


@pytest.mark.parametrize("variant", sorted(VIEWS))
@pytest.mark.parametrize("size", sorted(LLAMA2_PARAMETERS))
def test_llm_shapes_and_tiling(variant, size):
    model = create_model(f"{variant}-{size}", device="meta", with_encoder=False)
    llm = model.llm
    assert sum(p.numel() for p in llm.parameters()) == LLAMA2_PARAMETERS[size]
    assert all(p.device.type == "meta" for p in llm.parameters())
    assert llm.config.vocab_size == 32000
    assert llm.config.max_position_embeddings == 4096
    assert model.tiling.name == variant
    from PIL import Image

    from sphinx_tiling import tile

    assert len(tile(Image.new("RGB", (640, 480)), model.tiling).views) == VIEWS[variant]


def test_real_encoder_on_meta_gives_291_tokens_per_view():
    model = create_model("sphinx-1k-7b", device="meta", dtype=torch.bfloat16)
    assert model.encoder.tokens_per_view == 291
    assert model.encoder.llm_dim == 4096
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert model.tokenizer is None
    with pytest.raises(RuntimeError, match="no tokenizer"):
        model.chat(None, "hello")


def test_short_names_are_the_13b_models():
    assert {"sphinx", "sphinx-1k", "sphinx-2k", "sphinx-nano"} <= set(list_models())
    assert (
        create_model("sphinx-2k", device="meta", with_encoder=False).llm.config.hidden_size == 5120
    )


def test_nano_builds_its_own_tokenizer():
    model = create_model("sphinx-nano", with_encoder=False)
    assert model.tokenizer.vocab_size <= model.llm.config.vocab_size
    assert len(model.tokenizer.encode("###")) == 1  # the stop string is one token


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(KeyError, match="sphinx-nano"):
        create_model("sphinx-70b")
