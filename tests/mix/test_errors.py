"""Bad input: one clear error naming the file or key, and no output that looks finished."""

import os
import struct
from pathlib import Path

import pytest
import torch

from sphinx_mix import MixError, linear, open_checkpoint
from sphinx_mix import engine as engine_module


def _pair(kit):
    return kit.tiny_state_dict(0), kit.tiny_state_dict(1)


def test_missing_keys_are_listed(kit):
    a, b = _pair(kit)
    del b["model.norm.weight"], b["vision.proj.weight"]
    b["extra.weight"] = torch.zeros(2)
    with pytest.raises(MixError) as caught:
        linear([a, b], progress=False)
    message = str(caught.value)
    assert "3 mismatches" in message
    assert "'model.norm.weight' is missing from <state dict 1>" in message
    assert "'vision.proj.weight' is missing" in message
    assert "'extra.weight' is in" in message
    assert "\n" not in message


def test_shape_mismatch_is_listed(kit):
    a, b = _pair(kit)
    b["model.embed_tokens.weight"] = torch.zeros(20, 8)
    with pytest.raises(MixError, match=r"has shape \[20, 8\] in .* but \[16, 8\]"):
        linear([a, b], progress=False)


def test_on_missing_skip_and_copy_first(kit):
    a, b = _pair(kit)
    del b["model.norm.weight"]
    b["model.embed_tokens.weight"] = torch.zeros(20, 8)
    b["extra.weight"] = torch.zeros(2)
    skipped = linear([a, b], on_missing="skip", progress=False)
    assert "model.norm.weight" not in skipped
    assert "model.embed_tokens.weight" not in skipped
    assert "extra.weight" not in skipped
    copied = linear([a, b], on_missing="copy-first", progress=False)
    assert torch.equal(copied["model.norm.weight"], a["model.norm.weight"])
    assert torch.equal(copied["model.embed_tokens.weight"], a["model.embed_tokens.weight"])
    assert "extra.weight" not in copied
    key = "vision.proj.weight"
    torch.testing.assert_close(copied[key], (a[key] + b[key]) / 2)


def test_floating_and_integer_tensors_cannot_be_mixed(kit):
    a, b = _pair(kit)
    b["model.norm.weight"] = torch.ones(8, dtype=torch.int32)
    with pytest.raises(MixError, match=r"model.norm.weight: floating and integer"):
        linear([a, b], progress=False)


def test_nan_check_names_key_and_source(kit):
    a, b = _pair(kit)
    b["model.norm.weight"][3] = float("nan")
    assert not torch.isfinite(linear([a, b], progress=False)["model.norm.weight"]).all()
    with pytest.raises(
        MixError, match=r"model.norm.weight: the result holds NaN or Inf values \(already in"
    ):
        linear([a, b], check_finite=True, progress=False)


def test_overflow_to_inf_is_caught_in_the_arithmetic():
    big = {"w": torch.tensor([6e4], dtype=torch.float16)}
    with pytest.raises(MixError, match=r"produced by the arithmetic"), pytest.warns(UserWarning):
        linear([big, big], [1.0, 1.0], normalize=False, check_finite=True, progress=False)


def _valid_file(tmp_path, kit):
    return kit.save_single(tmp_path / "ok.safetensors", kit.tiny_state_dict(1))


def test_truncated_safetensors_file(tmp_path, kit):
    path = kit.save_single(tmp_path / "cut.safetensors", kit.tiny_state_dict(0))
    data = path.read_bytes()
    path.write_bytes(data[:-50])
    with pytest.raises(MixError, match=r"cut.safetensors: truncated safetensors file"):
        linear([path, _valid_file(tmp_path, kit)], progress=False)
    path.write_bytes(data[:5])
    with pytest.raises(MixError, match=r"cut.safetensors: truncated safetensors file \(5 bytes"):
        linear([path, _valid_file(tmp_path, kit)], progress=False)


def _with_length(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (struct.pack("<Q", 10**9) + b"{}", "declares 1000000000 header bytes"),
        (_with_length(b"{nope}"), "not valid JSON"),
        (_with_length(b"[]"), "expected a JSON object"),
        (
            _with_length(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}') + bytes(8),
            "do not hold a F32 tensor of shape [4]",
        ),
        (
            _with_length(b'{"w":{"dtype":"Q9","x":1}}'),
            "expected a known dtype, a shape and two data_offsets",
        ),
    ],
)
def test_corrupt_safetensors_header(tmp_path, kit, payload, reason):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(payload)
    with pytest.raises(MixError, match=r"bad.safetensors: corrupt safetensors header") as caught:
        linear([path, _valid_file(tmp_path, kit)], progress=False)
    assert reason in str(caught.value)


def test_unreadable_and_missing_paths(tmp_path, kit):
    with pytest.raises(MixError, match=r"nowhere.safetensors: no such file or directory"):
        linear([tmp_path / "nowhere.safetensors", _valid_file(tmp_path, kit)], progress=False)
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    with pytest.raises(MixError, match=r"empty_folder: no weights found"):
        linear([empty, _valid_file(tmp_path, kit)], progress=False)
    odd = tmp_path / "weights.npz"
    odd.write_bytes(b"x")
    with pytest.raises(MixError, match=r"weights.npz: unrecognised checkpoint file"):
        linear([odd, _valid_file(tmp_path, kit)], progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied(tmp_path, kit):
    path = kit.save_single(tmp_path / "locked.safetensors", kit.tiny_state_dict(0))
    path.chmod(0)
    with pytest.raises(MixError, match=r"locked.safetensors: cannot open"):
        linear([path, _valid_file(tmp_path, kit)], progress=False)


def test_truncated_torch_file(tmp_path, kit):
    path = tmp_path / "cut.pth"
    torch.save(kit.tiny_state_dict(0), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(MixError, match=r"cut.pth: not a readable torch checkpoint"):
        linear([path, kit.tiny_state_dict(1)], progress=False)


def test_torch_file_with_non_tensor_objects_is_refused(tmp_path, kit):
    path = tmp_path / "odd.pth"
    torch.save({"w": torch.zeros(2), "note": "hello"}, path)
    with pytest.raises(MixError, match=r"entry 'note' is a str, expected a tensor"):
        linear([path, path], progress=False)


def test_index_listing_a_missing_shard(tmp_path, kit):
    folder = kit.save_sharded(tmp_path / "a", kit.tiny_state_dict(0))
    (folder / "model-00002-of-00004.safetensors").unlink()
    with pytest.raises(MixError, match=r"model.safetensors.index.json: lists model-00002-of-00004"):
        linear([folder, _valid_file(tmp_path, kit)], progress=False)


def _files_under(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_failed_run_leaves_nothing_behind(tmp_path, kit):
    a, b = _pair(kit)
    b["vision.proj.weight"][0, 0] = float("inf")
    before = _files_under(tmp_path)
    with pytest.raises(MixError):
        linear([a, b], out=tmp_path / "out", check_finite=True, progress=False)
    assert _files_under(tmp_path) == before


def test_interrupted_run_leaves_nothing_and_keeps_the_old_output(tmp_path, kit, monkeypatch):
    a, b = _pair(kit)
    old = linear([a, b], out=tmp_path / "out", progress=False)
    before = _files_under(tmp_path)
    original = engine_module._combine
    calls = []

    def interrupt_midway(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(engine_module, "_combine", interrupt_midway)
    with pytest.raises(KeyboardInterrupt):
        linear([a, b], beta=0.9, out=old, overwrite=True, progress=False)
    assert _files_under(tmp_path) == before


def test_existing_output_needs_overwrite(tmp_path, kit):
    a, b = _pair(kit)
    out = linear([a, b], out=tmp_path / "out", progress=False)
    with pytest.raises(MixError, match=r"already exists"):
        linear([a, b], beta=0.9, out=out, progress=False)
    linear([a, b], beta=0.9, out=out, overwrite=True, progress=False)
    key = "model.norm.weight"
    torch.testing.assert_close(kit.read_folder(out)[key], 0.9 * a[key] + 0.1 * b[key])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_bad_option_values(kit):
    a, b = _pair(kit)
    with pytest.raises(MixError, match=r"on_missing='ignore'"):
        linear([a, b], on_missing="ignore")
    with pytest.raises(MixError, match=r"shard_size='lots'"):
        linear([a, b], shard_size="lots")
    with pytest.raises(MixError, match=r"compute_dtype='int8'"):
        linear([a, b], compute_dtype="int8")
    with pytest.raises(MixError, match=r"out_dtype='float99'"):
        linear([a, b], out_dtype="float99")


def test_file_truncated_after_opening(tmp_path, kit):
    path = kit.save_single(tmp_path / "shrinking.safetensors", kit.tiny_state_dict(0))
    checkpoint = open_checkpoint(path)
    os.truncate(path, 200)
    with pytest.raises(MixError, match=r"shrinking\.safetensors: file ended while reading"):
        for key in checkpoint:
            checkpoint.get(key)
    checkpoint.close()


def test_file_truncated_during_a_streaming_mix(tmp_path, kit, monkeypatch):
    """Mapped reads check the range first: one error, not a SIGBUS, and no output."""
    paths = [
        kit.save_single(tmp_path / f"{name}.safetensors", {"w": torch.randn(64, 512)})
        for name in ("shrinking", "other")
    ]
    opened = engine_module.open_checkpoint

    def open_then_truncate(source):
        checkpoint = opened(source)
        if Path(source) == paths[0]:
            os.truncate(source, 3 * 4096)
        return checkpoint

    monkeypatch.setattr(engine_module, "open_checkpoint", open_then_truncate)
    with pytest.raises(MixError, match=r"shrinking\.safetensors: file ended while reading 'w'"):
        linear(paths, out=tmp_path / "out", progress=False, hash_inputs=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "other.safetensors",
        "shrinking.safetensors",
    ]
