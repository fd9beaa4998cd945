"""Every input layout gives the same mix; outputs are sharded safetensors with an index."""

import hashlib
import json

import pytest
import torch
from blake3 import blake3
from safetensors import safe_open

from sphinx_mix import linear, open_checkpoint


def test_sharded_and_single_file_inputs_give_identical_outputs(tmp_path, kit):
    a, b = kit.tiny_state_dict(0, torch.bfloat16), kit.tiny_state_dict(1, torch.bfloat16)
    single = [kit.save_single(tmp_path / f"{n}.safetensors", s) for n, s in (("a", a), ("b", b))]
    sharded = [kit.save_sharded(tmp_path / f"{n}_sharded", s) for n, s in (("a", a), ("b", b))]
    out_single = linear(single, beta=0.3, out=tmp_path / "from_single", progress=False)
    out_sharded = linear(sharded, beta=0.3, out=tmp_path / "from_sharded", progress=False)
    left, right = kit.read_folder(out_single), kit.read_folder(out_sharded)
    assert left.keys() == right.keys() == a.keys()
    for key in left:
        assert torch.equal(left[key], right[key])
    kit.assert_bf16_close(
        left["model.norm.weight"],
        0.3 * a["model.norm.weight"].double() + 0.7 * b["model.norm.weight"].double(),
    )


def test_output_is_split_by_shard_size_with_a_complete_index(tmp_path, kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    out = linear([a, b], out=tmp_path / "out", shard_size=600, progress=False)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1
    assert shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    total = 0
    for name in shards:
        with safe_open(str(out / name), framework="pt") as handle:
            sizes = [
                handle.get_tensor(k).numel() * handle.get_tensor(k).element_size()
                for k in handle.keys()  # noqa: SIM118 - safe_open is not iterable
            ]
        # a shard exceeds 600 bytes only when it holds a single bigger tensor
        assert sum(sizes) <= 600 or len(sizes) == 1
        total += sum(sizes)
    assert index["metadata"]["total_size"] == total
    assert kit.read_folder(out).keys() == a.keys()


def test_metadata_records_sources_weights_and_input_hashes(tmp_path, kit):
    paths = [
        kit.save_single(tmp_path / "a.safetensors", kit.tiny_state_dict(0)),
        kit.save_sharded(tmp_path / "b", kit.tiny_state_dict(1)),
    ]
    out = linear(paths, [3, 1], out=tmp_path / "out", progress=False)
    record = kit.output_metadata(out)
    assert record["sources"] == [str(paths[0]), str(paths[1])]
    assert record["weights"] == [0.75, 0.25]
    inputs = [
        paths[0],
        *sorted(paths[1].glob("*.safetensors")),
        paths[1] / "model.safetensors.index.json",
    ]
    assert "sha256" not in record
    assert set(record["blake3"]) == {str(path) for path in inputs}
    for path in inputs:
        assert record["blake3"][str(path)] == blake3(path.read_bytes()).hexdigest()
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        assert json.loads(handle.metadata()["sphinx_mix"]) == record


def test_sha256_digest_matches_hashlib_over_many_blocks(tmp_path, kit, monkeypatch):
    import sphinx_mix.digests

    # blocks that are not page multiples, so every block edge lands inside a page
    monkeypatch.setattr(sphinx_mix.digests, "_BLOCK", 3 * 4096 + 123)
    paths = [
        kit.save_single(
            tmp_path / f"{name}.safetensors", {"w": torch.randn(64, 512), "b": torch.randn(3)}
        )
        for name in "ab"
    ]
    assert paths[0].stat().st_size > 10 * (3 * 4096 + 123)
    out = linear(paths, [1, 1], out=tmp_path / "out", progress=False, digest="sha256")
    record = kit.output_metadata(out)
    assert "blake3" not in record
    for path in paths:
        assert record["sha256"][str(path)] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_blake3_digest_of_an_empty_file_is_the_published_vector(tmp_path):
    from sphinx_mix.digests import file_digest

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    # the BLAKE3 specification's test vector for the empty input
    expected = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert file_digest(str(empty), "blake3") == expected


def test_hugging_face_folder_copies_non_weight_files_from_first_source(tmp_path, kit):
    first = kit.save_sharded(tmp_path / "first", kit.tiny_state_dict(0))
    second = kit.save_sharded(tmp_path / "second", kit.tiny_state_dict(1))
    (first / "config.json").write_text('{"model_type": "llama"}')
    (first / "tokenizer.model").write_bytes(b"\x00tok")
    (second / "config.json").write_text('{"model_type": "other"}')
    out = linear([first, second], out=tmp_path / "out", progress=False)
    assert (out / "config.json").read_text() == '{"model_type": "llama"}'
    assert (out / "tokenizer.model").read_bytes() == b"\x00tok"
    assert sorted(path.name for path in out.iterdir()) == [
        "config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "tokenizer.model",
    ]


@pytest.mark.parametrize("suffix", [".bin", ".pth"])
def test_torch_state_dicts_are_memory_mapped_and_mixed(tmp_path, kit, suffix):
    a, b = kit.tiny_state_dict(0, torch.bfloat16), kit.tiny_state_dict(1, torch.bfloat16)
    torch.save(a, tmp_path / f"a{suffix}")
    torch.save({"state_dict": b}, tmp_path / f"b{suffix}")
    mixed = linear([tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"], beta=0.6, progress=False)
    key = "model.layers.1.mlp.up_proj.weight"
    kit.assert_bf16_close(mixed[key], 0.6 * a[key].double() + 0.4 * b[key].double())


def test_legacy_torch_serialisation_is_loaded_whole_with_a_warning(tmp_path, kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    torch.save(a, tmp_path / "old.bin", _use_new_zipfile_serialization=False)
    with pytest.warns(UserWarning, match="cannot be memory-mapped"):
        mixed = linear([tmp_path / "old.bin", b], beta=0.5, progress=False)
    key = "model.norm.weight"
    torch.testing.assert_close(mixed[key], (a[key] + b[key]) / 2)


def test_torch_sharded_index_folder(tmp_path, kit):
    state = kit.tiny_state_dict(0)
    folder = tmp_path / "hf_bin"
    folder.mkdir()
    keys = list(state)
    torch.save({k: state[k] for k in keys[:4]}, folder / "pytorch_model-00001-of-00002.bin")
    torch.save({k: state[k] for k in keys[4:]}, folder / "pytorch_model-00002-of-00002.bin")
    weight_map = {
        k: f"pytorch_model-0000{1 if i < 4 else 2}-of-00002.bin" for i, k in enumerate(keys)
    }
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    other = kit.tiny_state_dict(1)
    mixed = linear([folder, other], beta=0.5, progress=False)
    key = keys[-2]
    torch.testing.assert_close(mixed[key], (state[key] + other[key]) / 2)


def _save_reference(folder, state, ranks):
    """Split a state dict like the reference model-parallel code and save the shards."""
    folder.mkdir(parents=True)
    column = ("wq", "w1", "output")
    for rank in range(ranks):
        shard = {}
        for key, tensor in state.items():
            if any(f".{name}." in f".{key}" for name in column):
                shard[key] = tensor.chunk(ranks, dim=0)[rank].clone()
            elif ".w2." in key:
                shard[key] = tensor.chunk(ranks, dim=1)[rank].clone()
            else:
                shard[key] = tensor.clone()
        torch.save({"model": shard}, folder / f"consolidated.{rank:02d}-of-{ranks:02d}.model.pth")
    (folder / "meta.json").write_text('{"llama_type": "llama_ens"}')
    return folder


def _reference_state(seed):
    generator = torch.Generator().manual_seed(seed)
    return {
        "llma.layers.0.attention.wq.weight": torch.randn(8, 8, generator=generator).bfloat16(),
        "llma.layers.0.feed_forward.w1.weight": torch.randn(12, 8, generator=generator).bfloat16(),
        "llma.layers.0.feed_forward.w2.weight": torch.randn(8, 12, generator=generator).bfloat16(),
        "llma.norm.weight": torch.randn(8, generator=generator).bfloat16(),
        "llma.output.weight": torch.randn(16, 8, generator=generator).bfloat16(),
    }


def test_reference_consolidated_shards_are_mixed_shard_by_shard(tmp_path, kit):
    real, synthetic = _reference_state(0), _reference_state(1)
    first = _save_reference(tmp_path / "real", real, ranks=2)
    second = _save_reference(tmp_path / "syn", synthetic, ranks=2)
    out = linear([first, second], beta=0.7, out=tmp_path / "mixed", progress=False)
    names = sorted(path.name for path in out.glob("consolidated.*"))
    assert names == ["consolidated.00-of-02.model.pth", "consolidated.01-of-02.model.pth"]
    assert (out / "meta.json").read_text() == '{"llama_type": "llama_ens"}'
    shards = [torch.load(out / name, weights_only=True)["model"] for name in names]
    full_wq = torch.cat([shard["llma.layers.0.attention.wq.weight"] for shard in shards], dim=0)
    full_w2 = torch.cat([shard["llma.layers.0.feed_forward.w2.weight"] for shard in shards], dim=1)
    for key, full in (
        ("llma.layers.0.attention.wq.weight", full_wq),
        ("llma.layers.0.feed_forward.w2.weight", full_w2),
    ):
        kit.assert_bf16_close(full, 0.7 * real[key].double() + 0.3 * synthetic[key].double())
    record = json.loads((out / "sphinx_mix.json").read_text())
    assert record["weights"] == pytest.approx([0.7, 0.3])
    assert len(record["blake3"]) == 4


def test_reference_layouts_must_match(tmp_path):
    from sphinx_mix import MixError

    first = _save_reference(tmp_path / "two", _reference_state(0), ranks=2)
    second = _save_reference(tmp_path / "one", _reference_state(1), ranks=1)
    with pytest.raises(MixError, match=r"model-parallel layouts differ"):
        linear([first, second], out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_open_checkpoint_reports_keys_without_reading_data(tmp_path, kit):
    path = kit.save_single(tmp_path / "a.safetensors", kit.tiny_state_dict(0, torch.bfloat16))
    checkpoint = open_checkpoint(path)
    assert checkpoint.info("model.norm.weight").shape == (8,)
    assert checkpoint.info("model.norm.weight").dtype == torch.bfloat16
    assert set(checkpoint.keys()) == set(kit.tiny_state_dict(0))
