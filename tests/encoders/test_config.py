"""Configs survive dict / YAML / JSON round trips and rebuild the same architecture."""

import pytest
import torch

from sphinx_encoders import (
    ConfigError,
    EncoderConfig,
    create_encoder,
    get_encoder_config,
)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_saved_config_rebuilds_the_same_architecture(tiny, tmp_path, suffix):
    path = tmp_path / f"encoder{suffix}"
    tiny.config.save(path)
    assert not list(tmp_path.glob("*.tmp"))
    rebuilt = create_encoder(path)
    assert rebuilt.llm_dim == 40
    ours = {k: tuple(v.shape) for k, v in tiny.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    assert ours == theirs
    rebuilt.load_state_dict(tiny.state_dict())
    views = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.encode_views(views), tiny.encode_views(views))


def test_dict_round_trip_keeps_every_field():
    config = get_encoder_config("sphinx")
    data = config.to_dict()
    assert [p["kind"] for p in data["patch_encoders"]] == ["clip_vit", "convnext", "dinov2"]
    assert data["patch_encoders"][1]["dims"] == [384, 768, 1536, 3072]
    assert EncoderConfig.from_dict(data) == config


def test_yaml_written_by_hand(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text(
        "name: mine\nllm_dim: 16\npatch_encoders:\n"
        "  - {kind: clip_vit, width: 32, layers: 1, head_width: 16, output_dim: 8}\n"
    )
    encoder = create_encoder(str(path))
    assert encoder.tokens_per_view == 259 and encoder.llm_dim == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\npatch_encoders: [{kind: resnet}]\n", r"patch_encoders\[0\]: 'kind' must be"),
        ("name: x\npatch_encoders: [{kind: clip_vit, widht: 3}]\n", r"unknown keys \['widht'\]"),
        ("name: x\ncolour: red\n", r"unknown keys \['colour'\]"),
        ("patch_encoders: []\n", "missing key 'name'"),
        ("name: [unclosed\n", "not valid YAML at line 2"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        EncoderConfig.load(path)
    assert str(path) in str(info.value)


def test_missing_llm_dim_is_an_error():
    with pytest.raises(ValueError, match="llm_dim"):
        create_encoder("clip-vit-tiny")
