"""The demo's model preset and training configs (sphinx-demo, demo-stage1, demo-stage2)."""

from __future__ import annotations

import pytest
import torch

from sphinx_train import SphinxConfig, SphinxModel, create_model
from sphinx_train.batch import collate
from sphinx_train.training.config import load_config


@pytest.fixture(scope="module")
def demo():
    torch.manual_seed(0)
    return create_model("sphinx-demo")


@pytest.fixture(scope="module")
def scaled():
    """The demo preset with image tokens scaled by 0.05 (the option, not the demo's default)."""
    import dataclasses

    from sphinx_train.presets import get_model_preset, register_model_preset

    preset = dataclasses.replace(get_model_preset("sphinx-demo"), image_token_scale=0.05)
    register_model_preset("sphinx-demo-scaled-test", preset, overwrite=True)
    torch.manual_seed(0)
    return create_model("sphinx-demo-scaled-test")


def test_demo_reads_boxes_as_coordinate_tokens_and_places_its_patch_tokens(demo):
    assert len(demo.tokenizer.encode("[0.12,0.34,0.56,0.78]")) == 9
    assert demo.encoder.config.patch_positions == "sincos-2d"
    assert demo.config.image_token_scale == 1.0


def test_image_tokens_enter_the_llm_scaled(scaled):
    from PIL import Image

    sample = scaled.prepare_sample("a red circle", Image.new("RGB", (224, 224), (200, 30, 30)))
    batch = collate([sample], pad_id=scaled.tokenizer.pad_id)
    with torch.no_grad():
        inputs = scaled.assemble_inputs(batch)
        tokens = scaled.encoder(batch.pixel_values, batch.image_index).embeds[0]
    count = scaled.encoder.tokens_per_view
    assert inputs.image_tokens.tolist() == [count]
    torch.testing.assert_close(inputs.inputs_embeds[0, 1 : 1 + count], 0.05 * tokens)
    # The CLS token carries no position: RMS 1 from the projection's LayerNorm before the
    # scale, 0.05 after, near the text embeddings' init std of 0.02.
    rms = inputs.inputs_embeds[0, 2].pow(2).mean().sqrt().item()
    assert 0.04 < rms < 0.06


def test_scale_survives_save_and_reload(scaled, tmp_path):
    scaled.save_pretrained(tmp_path / "m")
    assert SphinxModel.from_pretrained(tmp_path / "m").config.image_token_scale == 0.05


def test_sphinx_presets_keep_unit_scale():
    assert create_model("sphinx-nano").config.image_token_scale == 1.0


@pytest.mark.parametrize("value", [0, -1.0, "big", True])
def test_bad_scale_is_refused(value):
    with pytest.raises(ValueError, match="image_token_scale"):
        SphinxConfig.from_dict({"image_token_scale": value}, source="m/config.json")


def test_demo_configs_use_one_model_preset_and_2_to_4_unique_objects():
    stage1, stage2 = load_config("demo-stage1"), load_config("demo-stage2")
    assert stage1.model.preset == stage2.model.preset == "sphinx-demo"
    tasks = stage2.data.streams[0].sources[0]
    assert tasks.options["min_objects"] == 2 and tasks.options["unique_phrases"] is True
    # The sampler draws a source by weight x size: the 1k views get 16 x 64 of 21024 rows.
    sources = stage2.data.streams[0].sources
    drawn = {s.tiling: s.weight * s.size for s in sources}
    assert drawn["sphinx-1k"] / sum(drawn.values()) == pytest.approx(1024 / 21024)


def test_a_reloaded_demo_model_gives_the_same_image_tokens(demo, tmp_path):
    # from_pretrained builds the encoder on the meta device and fills it from the file: the
    # 2-D positions must be there again, not uninitialised memory.
    demo.save_pretrained(tmp_path / "m")
    reloaded = SphinxModel.from_pretrained(tmp_path / "m")
    views = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.encoder.encode_views(views),
                                   demo.encoder.encode_views(views))
