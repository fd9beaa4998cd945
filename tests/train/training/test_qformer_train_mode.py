"""``model.qformer_train_mode``: the reference trains SPHINX with its frozen Q-Former in
train mode (BLIP-2's dropout 0.1 active); fit can do the same, and refuses it where it
cannot apply."""

from __future__ import annotations

import json

import pytest
import torch.distributed as dist

from sphinx_train.presets import ModelPreset, register_model_preset
from sphinx_train.training.config import ConfigError, load_config
from sphinx_train.training.loop import Trainer

pytestmark = pytest.mark.slow

SMALL = ["logging.progress=false", "data.preflight_samples=0", "schedule.total_steps=2",
         "data.streams.0.per_step=4", "data.streams.1.per_step=2"]


def losses(overrides, out) -> list[float]:
    try:
        Trainer(load_config("nano-stage1", [*SMALL, *overrides]), out).run()
    finally:
        dist.destroy_process_group()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"loss"' in line]


def setup_error(overrides, out) -> str:
    with pytest.raises(ConfigError) as caught:
        try:
            Trainer(load_config("nano-stage1", [*SMALL, *overrides]), out).setup()
        finally:
            dist.destroy_process_group()
    assert not out.exists()
    return str(caught.value)


def test_train_mode_changes_the_training_step(tmp_path):
    plain = losses([], tmp_path / "plain")
    again = losses([], tmp_path / "again")
    dropout = losses(["model.qformer_train_mode=true"], tmp_path / "dropout")
    assert plain == again  # the run is deterministic, so a difference is the dropout's
    assert dropout[0] != plain[0] and abs(dropout[0] - plain[0]) < 0.5


def test_train_mode_with_a_feature_cache_is_refused(tmp_path):
    message = setup_error(["model.qformer_train_mode=true",
                           f"data.feature_cache={tmp_path / 'cache'}"], tmp_path / "out")
    assert message.startswith("data.feature_cache: model.qformer_train_mode runs the Q-Former")
    assert not (tmp_path / "cache").exists()


def test_train_mode_without_a_qformer_is_refused(tmp_path):
    register_model_preset("test-nano-light", ModelPreset(
        "llama-nano", "sphinx-light-tiny", "sphinx-light", vocab_size=512,
        builds_own_tokenizer=True), overwrite=True)
    message = setup_error(["model.preset=test-nano-light", "model.tiling=sphinx-light",
                           "model.qformer_train_mode=true"], tmp_path / "out")
    assert message == ("model.qformer_train_mode: model 'test-nano-light' has no Q-Former; "
                       "set it to false")
