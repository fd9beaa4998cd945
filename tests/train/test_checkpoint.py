"""save_pretrained -> from_pretrained round trips, and the plain-LLaMA subfolder."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from sphinx_train import SphinxModel, SphinxSample, collate, create_model, encode_prompt


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(1)
    model = create_model("sphinx-nano", tiling="sphinx-1k").eval()
    folder = tmp_path_factory.mktemp("ckpt") / "nano"
    model.save_pretrained(folder)
    return model, folder


def _batch(model):
    image = Image.new("RGB", (320, 240), (200, 40, 90))
    pixels = model.image_views(image)[0]
    return collate(
        [
            SphinxSample(encode_prompt(model.tokenizer, "What colour is it?"), pixel_values=pixels),
            SphinxSample(encode_prompt(model.tokenizer, "Hi")),
        ],
        pad_id=model.tokenizer.pad_id,
    )


def test_round_trip_gives_identical_logits(saved):
    model, folder = saved
    loaded = SphinxModel.from_pretrained(folder)
    assert loaded.config == model.config
    assert loaded.tiling.name == "sphinx-1k"
    batch = _batch(model)
    assert batch.pixel_values.shape[0] == 5
    with torch.no_grad():
        assert torch.equal(model(batch).logits, loaded(batch).logits)
    assert loaded.tokenizer.encode("### Human: hi") == model.tokenizer.encode("### Human: hi")


def test_llm_folder_loads_as_plain_llama(saved):
    from transformers import LlamaForCausalLM

    model, folder = saved
    plain = LlamaForCausalLM.from_pretrained(folder / "llm").eval()
    ids = torch.tensor([[1, 5, 9, 33, 200]])
    with torch.no_grad():
        assert torch.equal(plain(ids).logits, model.llm(ids).logits)


def test_config_records_the_composition(saved):
    model, folder = saved
    config = json.loads((folder / "config.json").read_text())
    assert config["tiling"] == "sphinx-1k"
    assert config["encoder"] == "sphinx-tiny"
    assert config["template"] == "sphinx"
    assert config["encoder_config"] == model.encoder.config.to_dict()


def test_failed_save_keeps_the_previous_folder(saved, tmp_path, monkeypatch):
    model, _ = saved
    target = tmp_path / "model"
    model.save_pretrained(target)
    before = sorted(p.relative_to(target) for p in target.rglob("*"))

    def broken(directory):
        raise OSError("disk full")

    monkeypatch.setattr(model.tokenizer, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(target, overwrite=True)
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        SphinxModel.from_pretrained(tmp_path)


def test_hand_assembled_model_round_trips(tmp_path, make_llm, nano_tokenizer):
    from sphinx_encoders import create_encoder

    torch.manual_seed(4)
    model = SphinxModel(
        make_llm(512), create_encoder("sphinx-tiny", llm_dim=32), nano_tokenizer
    ).eval()
    model.save_pretrained(tmp_path / "custom")
    loaded = SphinxModel.from_pretrained(tmp_path / "custom")
    batch = _batch(model)
    with torch.no_grad():
        assert torch.equal(model(batch).logits, loaded(batch).logits)
