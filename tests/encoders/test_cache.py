"""The frozen-feature cache: exact reuse, misses on another encoder, clear errors."""

import json
import os

import pytest
import torch

from sphinx_encoders import FeatureCache, FeatureCacheError, create_encoder, encoder_fingerprint

KEYS = ["astronaut-a", "astronaut-b"]
IMAGE_INDEX = torch.tensor([1, 0, 1, 1, 0])  # views of two images, interleaved


def test_cached_features_are_bit_identical_to_recomputed(tiny, views5, tmp_path):
    expected = tiny(views5, IMAGE_INDEX)
    cache = FeatureCache(tmp_path)
    first = cache.encode(tiny, views5, IMAGE_INDEX, KEYS, tiling="sphinx-1k")
    assert len(cache) == 2
    # a new process: everything comes from disk
    reopened = FeatureCache(tmp_path)
    calls = []
    original = tiny.frozen_features
    tiny.frozen_features = lambda views, *index: calls.append(views) or original(views, *index)
    try:
        second = reopened.encode(tiny, views5, IMAGE_INDEX, KEYS, tiling="sphinx-1k")
    finally:
        del tiny.frozen_features
    assert calls == []
    for features in (first, second):
        out = tiny.from_features(features, IMAGE_INDEX)
        assert torch.equal(out.embeds, expected.embeds) and torch.equal(out.mask, expected.mask)
    # cached values are the backbones' own outputs, per image and in view order
    direct = tiny.frozen_features(views5[IMAGE_INDEX == 1])
    (hit,) = reopened.get(["astronaut-b"], tiling="sphinx-1k", encoder=tiny)
    assert torch.equal(hit.patch, direct.patch) and torch.equal(hit.query, direct.query)


def test_only_missing_images_are_computed(tiny, views5, tmp_path):
    cache = FeatureCache(tmp_path)
    cache.encode(tiny, views5[:2], None, ["v0", "v1"], tiling="t")
    seen = []
    original = tiny.frozen_features
    tiny.frozen_features = lambda views, *index: seen.append(len(views)) or original(views, *index)
    try:
        features = cache.encode(tiny, views5[:3], None, ["v0", "v1", "v2"], tiling="t")
    finally:
        del tiny.frozen_features
    assert seen == [1]
    assert torch.equal(tiny.project(features), tiny.encode_views(views5[:3]))


def test_another_encoder_or_tiling_misses(tiny, views5, tmp_path):
    cache = FeatureCache(tmp_path)
    cache.encode(tiny, views5[:1], None, ["v0"], tiling="t")
    assert cache.get(["v0"], tiling="t", encoder=tiny)[0] is not None
    assert cache.get(["v0"], tiling="other", encoder=tiny) == [None]
    assert cache.missing(["v0", "v1"], tiling="t", encoder=tiny) == ["v1"]
    assert cache.missing(["v0"], tiling="other", encoder=tiny) == ["v0"]
    torch.manual_seed(5)
    other_weights = create_encoder("sphinx-tiny", llm_dim=40)
    assert cache.get(["v0"], tiling="t", encoder=other_weights) == [None]
    other_config = create_encoder("clip-vit-tiny", llm_dim=40)
    assert cache.get(["v0"], tiling="t", encoder=other_config) == [None]
    # the projections and the LLM width are not part of what is cached
    wider = create_encoder("sphinx-tiny", llm_dim=64)
    wider.load_state_dict(
        {k: v for k, v in tiny.state_dict().items() if k.startswith(("patch_", "query_"))},
        strict=False,
    )
    assert encoder_fingerprint(wider) == encoder_fingerprint(tiny)


def test_truncated_shard_is_one_clear_error(tiny, views5, tmp_path):
    cache = FeatureCache(tmp_path)
    cache.encode(tiny, views5[:1], None, ["v0"], tiling="t")
    (shard,) = tmp_path.glob("shard-*.safetensors")
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(
        FeatureCacheError, match=r"shard-000000\.safetensors: cache shard is"
    ) as info:
        FeatureCache(tmp_path).get(["v0"], tiling="t", encoder=tiny)
    assert "truncated" in str(info.value) and "\n" not in str(info.value)


def test_a_killed_put_leaves_the_index_consistent(tiny, views5, tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)
    cache.encode(tiny, views5[:1], None, ["v0"], tiling="t")
    index_before = (tmp_path / "index.json").read_text()
    # a stale staging file and an unindexed shard, as a run killed mid-put leaves them
    (tmp_path / ".shard-000001.safetensors.staging-999999999").write_bytes(b"partial")
    (tmp_path / "shard-000001.safetensors").write_bytes(b"complete but never indexed")
    reopened = FeatureCache(tmp_path)
    assert (tmp_path / "index.json").read_text() == index_before
    features = reopened.encode(tiny, views5[1:2], None, ["v1"], tiling="t")
    assert torch.equal(tiny.project(features), tiny.encode_views(views5[1:2]))
    names = sorted(os.listdir(tmp_path))
    assert names == ["index.json", "shard-000000.safetensors", "shard-000001.safetensors"]
    assert set(json.loads((tmp_path / "index.json").read_text())["shards"]) == {
        "shard-000000.safetensors",
        "shard-000001.safetensors",
    }


def test_bad_index_and_view_count_mismatch(tiny, views5, tmp_path):
    (tmp_path / "index.json").write_text("{broken")
    with pytest.raises(FeatureCacheError, match=r"index\.json: unreadable cache index"):
        FeatureCache(tmp_path)
    (tmp_path / "index.json").unlink()
    cache = FeatureCache(tmp_path)
    cache.encode(tiny, views5[:2], torch.tensor([0, 0]), ["img"], tiling="t")
    with pytest.raises(FeatureCacheError, match="'img' has 2 cached views, the batch 1"):
        cache.encode(tiny, views5[:1], None, ["img"], tiling="t")


def test_views_from_canvas_encoders_are_cached_per_image(make_views, tmp_path):
    """Light-1k DINOv2 builds an image's views from all five: the cache must group them."""
    torch.manual_seed(0)
    encoder = create_encoder("sphinx-light-1k-tiny", llm_dim=8)
    views = make_views(6, side=512)
    index = torch.tensor([1, 0, 1, 1, 1, 1])  # a one-view image and a five-view image
    expected = encoder.frozen_features(views, index)
    cache = FeatureCache(tmp_path)
    for _ in range(2):  # computed, then read back
        got = cache.encode(encoder, views, index, ["single", "five"], tiling="t")
        assert torch.equal(got.patch, expected.patch)
    assert not torch.equal(got.patch[index == 1], encoder.frozen_features(views[index == 1]).patch)
