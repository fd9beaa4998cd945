"""``data.feature_cache``: fit reads frozen features back instead of running the backbones,
and trains exactly as without the cache."""

from __future__ import annotations

import json

import pytest
import torch.distributed as dist

from sphinx_train.training.config import ConfigError, load_config
from sphinx_train.training.loop import Trainer

pytestmark = pytest.mark.slow

# 4 caption scenes and 4 per step: every step is one epoch over the same 4 images
SMALL = ["logging.progress=false", "data.preflight_samples=0", "schedule.total_steps=3",
         "data.streams.0.sources.0.size=4", "data.streams.0.per_step=4",
         "data.streams.1.per_step=2"]


def losses(config, out) -> list[float]:
    try:
        Trainer(config, out).run()
    finally:
        dist.destroy_process_group()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"loss"' in line]


def test_cached_features_train_as_the_backbones_and_are_reused(tmp_path):
    cache = tmp_path / "cache"
    plain = losses(load_config("nano-stage1", SMALL), tmp_path / "plain")
    cached_config = load_config("nano-stage1", [*SMALL, f"data.feature_cache={cache}"])
    first = losses(cached_config, tmp_path / "first")
    index = json.loads((cache / "rank-0-of-1" / "index.json").read_text())
    assert len(index["entries"]) == 4  # the 4 scenes, computed once over 3 epochs
    assert index["next_shard"] == 1  # written in step 1 only: steps 2 and 3 read
    second = losses(cached_config, tmp_path / "second")  # a later run, same cache
    assert json.loads((cache / "rank-0-of-1" / "index.json").read_text()) == index
    assert first == pytest.approx(plain, abs=1e-6)
    assert second == pytest.approx(plain, abs=1e-6)


def test_cache_is_refused_while_a_backbone_trains(tmp_path):
    config = load_config("nano-stage1", [*SMALL, f"data.feature_cache={tmp_path / 'c'}",
                                         "trainable=[llm, projections, encoder.patch_encoders]"])
    with pytest.raises(ConfigError, match=r"data.feature_cache: backbone parameter encoder\."):
        try:
            Trainer(config, tmp_path / "out").setup()
        finally:
            dist.destroy_process_group()
    assert not (tmp_path / "out").exists() and not (tmp_path / "c").exists()


def test_another_world_size_reuses_the_other_folders(tmp_path, monkeypatch):
    """Rank 1 of 2 finds the images rank 0 of a one-rank run cached: copied into its own
    folder, the backbones never run."""
    from types import SimpleNamespace

    import torch

    from sphinx_train.training.features import TrainingFeatures
    from sphinx_train.training.loop import build_model

    cache = tmp_path / "cache"
    config = load_config("nano-stage1", [*SMALL, f"data.feature_cache={cache}"])
    losses(config, tmp_path / "one-rank")
    index = json.loads((cache / "rank-0-of-1" / "index.json").read_text())
    keys = [json.loads(entry)[2] for entry in index["entries"]]
    model = build_model(config)  # seeded: the same weights, so the same fingerprint
    monkeypatch.setattr(model.encoder, "frozen_features", lambda *a, **k: 1 / 0)
    features = TrainingFeatures(cache, model, rank=1, world_size=2)
    views = torch.zeros(len(keys), 3, 224, 224)
    batch = SimpleNamespace(pixel_values=views, image_index=torch.arange(len(keys)))
    got = features.features(keys, batch)
    from sphinx_encoders import FeatureCache

    stored = FeatureCache(cache / "rank-0-of-1").get(keys, tiling="sphinx-train-fit",
                                                      encoder=model.encoder)
    assert torch.equal(got.patch, torch.cat([hit.patch for hit in stored]))
    copied = json.loads((cache / "rank-1-of-2" / "index.json").read_text())
    assert sorted(copied["entries"]) == sorted(index["entries"])
