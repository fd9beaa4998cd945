"""Hostile and careless inputs: nothing lost, nothing silently wrong, one line each."""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import subprocess
import sys
import zipfile

import pytest
import safetensors
import torch
from safetensors.torch import save_file

from sphinx_mix import MixError, linear, load_recipe
from sphinx_mix import safetensors_io as io_module


def _raw(header: dict, data: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def _f32(offsets, shape=(1,)):
    return {"dtype": "F32", "shape": list(shape), "data_offsets": list(offsets)}


HOSTILE_HEADERS = {
    "overlap": _raw({"a": _f32([0, 8], (2,)), "b": _f32([4, 8])}, bytes(8)),
    "alias": _raw({"a": _f32([0, 4]), "b": _f32([0, 4])}, bytes(4)),
    "hole": _raw({"a": _f32([0, 4]), "b": _f32([8, 12])}, bytes(12)),
    "trailing": _raw({"a": _f32([0, 4])}, bytes(8)),
    "float_offsets": _raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0.0, 4.0]}},
                          bytes(4)),
    "string_shape": _raw({"a": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}},
                         bytes(4)),
    "reversed": _raw({"a": _f32([4, 0])}, bytes(4)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_HEADERS))
def test_reader_refuses_what_the_safetensors_library_refuses(tmp_path, name):
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(HOSTILE_HEADERS[name])
    with pytest.raises(Exception), safetensors.safe_open(path, "pt") as opened:  # noqa: B017
        [opened.get_tensor(key) for key in opened.keys()]  # noqa: SIM118  # the library's verdict
    with pytest.raises(MixError, match=rf"^{path}: (corrupt|truncated) safetensors"):
        io_module.SafetensorsFile(path)


def test_duplicate_header_key_is_refused(tmp_path):
    entry = json.dumps(_f32([0, 4]))
    encoded = f'{{"a":{entry},"a":{entry}}}'.encode()
    path = tmp_path / "dup.safetensors"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(4))
    with pytest.raises(MixError, match=r"key 'a' appears twice"):
        io_module.SafetensorsFile(path)


def test_entries_listed_out_of_offset_order_are_fine(tmp_path):
    path = tmp_path / "ok.safetensors"
    data = struct.pack("<2f", 1.0, 2.0)
    path.write_bytes(_raw({"b": _f32([4, 8]), "a": _f32([0, 4])}, data))
    with safetensors.safe_open(path, "pt") as opened:
        expected = {key: opened.get_tensor(key) for key in opened.keys()}  # noqa: SIM118
    ours = io_module.SafetensorsFile(path)
    assert {key: ours.get(key).tolist() for key in ours.keys()} == {  # noqa: SIM118
        key: value.tolist() for key, value in expected.items()
    }
    ours.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"beta": float("nan")}, "beta: nan is not a finite number"),
     ({"weights": [float("inf"), 1.0]}, r"weights: inf is not a finite number")],
)
def test_non_finite_weights_are_refused_before_writing(tmp_path, kit, kwargs, message):
    out = tmp_path / "out"
    with pytest.raises(MixError, match=message):
        linear([kit.tiny_state_dict(0), kit.tiny_state_dict(1)], out=out, progress=False, **kwargs)
    assert not out.exists()


def test_complex_tensors_are_refused_unless_excluded(kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    a["rotary.freqs"] = torch.polar(torch.ones(4), torch.arange(4.0))
    b["rotary.freqs"] = torch.polar(torch.ones(4), torch.arange(4.0) * 2)
    with pytest.raises(MixError, match=r"rotary\.freqs: complex tensors"):
        linear([a, b], progress=False)
    mixed = linear([a, b], exclude=["rotary.*"], progress=False)
    assert torch.equal(mixed["rotary.freqs"], a["rotary.freqs"])


def test_float8_sources_mix_in_the_compute_dtype(kit):
    a = {"w": torch.tensor([1.0, 2.0, -4.0]).to(torch.float8_e4m3fn)}
    b = {"w": torch.tensor([3.0, 2.0, 0.0]).to(torch.float8_e4m3fn)}
    mixed = linear([a, b], out_dtype="float32", progress=False)
    assert mixed["w"].tolist() == [2.0, 2.0, -2.0]  # (a + b) / 2 by hand


def test_config_json_gets_the_new_dtype(tmp_path, kit):
    folders = []
    for seed in (0, 1):
        folder = tmp_path / f"m{seed}"
        folder.mkdir()
        save_file(kit.tiny_state_dict(seed), folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps({"torch_dtype": "float32", "dim": 8}))
        folders.append(folder)
    out = linear(folders, out=tmp_path / "out", out_dtype="bf16", progress=False)
    assert json.loads((out / "config.json").read_text()) == {"torch_dtype": "bfloat16", "dim": 8}


def test_output_never_replaces_or_holds_an_input(tmp_path, kit):
    source = tmp_path / "models" / "real"
    source.mkdir(parents=True)
    save_file(kit.tiny_state_dict(0), source / "model.safetensors")
    other = kit.save_single(tmp_path / "b.safetensors", kit.tiny_state_dict(1))
    before = (source / "model.safetensors").read_bytes()
    for target in (source, tmp_path / "models", source / "mixed"):
        with pytest.raises(MixError, match="input"):
            linear([source, other], out=target, overwrite=True, progress=False)
    assert (source / "model.safetensors").read_bytes() == before
    assert sorted(path.name for path in source.iterdir()) == ["model.safetensors"]


def test_overwrite_keeps_a_folder_with_foreign_files(tmp_path, kit):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.md").write_text("my notes")
    sources = [kit.tiny_state_dict(0), kit.tiny_state_dict(1)]
    with pytest.raises(MixError, match=r"notes\.md"):
        linear(sources, out=out, overwrite=True, progress=False)
    assert (out / "notes.md").read_text() == "my notes"


def test_outputs_have_normal_permissions(tmp_path, kit):
    mask = os.umask(0o022)
    os.umask(mask)
    out = linear([kit.tiny_state_dict(0), kit.tiny_state_dict(1)], out=tmp_path / "o",
                 progress=False)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_disk_full_is_one_line_and_leaves_nothing(tmp_path, kit, monkeypatch):
    def full(self, key, tensor, offset=0):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io_module.SafetensorsWriter, "write", full)
    out = tmp_path / "out"
    with pytest.raises(MixError, match=r"out: cannot write the output \(No space left on device\)"):
        linear([kit.tiny_state_dict(0), kit.tiny_state_dict(1)], out=out, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_deflated_torch_zip_loads_the_true_values(tmp_path, kit):
    state = {"w": torch.arange(1000.0)}
    stored = tmp_path / "stored.pth"
    torch.save(state, stored)
    deflated = tmp_path / "deflated.pth"
    with zipfile.ZipFile(stored) as source, zipfile.ZipFile(deflated, "w",
                                                            zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    mixed = linear([deflated, deflated], progress=False)
    assert torch.equal(mixed["w"], state["w"])


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "x": Payload()}, path)
    with pytest.raises(MixError, match=r"evil\.pth: holds Python objects other than tensors"):
        linear([path, path], progress=False)
    assert not marker.exists()


def test_self_referential_container_is_refused(tmp_path):
    looped: dict = {}
    looped["state_dict"] = looped
    path = tmp_path / "loop.pth"
    torch.save(looped, path)
    code = f"from sphinx_mix import linear; linear([{str(path)!r}] * 2, progress=False)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "loop.pth: expected a state dict" in done.stderr


def test_index_cannot_point_outside_its_folder(tmp_path, kit):
    folder = tmp_path / "model"
    folder.mkdir()
    save_file(kit.tiny_state_dict(0), tmp_path / "outside.safetensors")
    weight_map = dict.fromkeys(kit.tiny_state_dict(0), "../outside.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(MixError, match=r"index\.json: shard '\.\./outside\.safetensors'"):
        linear([folder, folder], progress=False)


def test_training_files_beside_the_weights_are_ignored(tmp_path, kit):
    folder = tmp_path / "hf"
    folder.mkdir()
    torch.save(kit.tiny_state_dict(0), folder / "pytorch_model.bin")
    (folder / "training_args.bin").write_bytes(b"\x80\x04not a state dict")
    mixed = linear([folder, kit.tiny_state_dict(0)], progress=False)
    assert torch.equal(mixed["model.norm.weight"], kit.tiny_state_dict(0)["model.norm.weight"])


def test_mergekit_weights_written_as_strings(tmp_path, kit):
    a = kit.save_single(tmp_path / "a.safetensors", kit.tiny_state_dict(0))
    b = kit.save_single(tmp_path / "b.safetensors", kit.tiny_state_dict(1))
    recipe = tmp_path / "merge.yml"
    recipe.write_text(
        f"merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {{weight: 1e-1}}\n"
        f"  - model: {b}\n    parameters: {{weight: 9e-1}}\ndtype: float32\n"
    )
    out = load_recipe(recipe).run(tmp_path / "out", progress=False)
    mixed = kit.read_folder(out)
    for key, value in kit.tiny_state_dict(0).items():
        if not value.is_floating_point():
            continue
        expected = 0.1 * value + 0.9 * kit.tiny_state_dict(1)[key]  # by hand
        torch.testing.assert_close(mixed[key], expected, rtol=1e-6, atol=1e-7)


def test_cli_version_is_instant_and_names_the_package():
    code = "import sys; from sphinx_mix.cli import main; main(['--version'])"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True)
    assert done.stdout.strip() == "sphinx-mix 0.1.0"
    assert "| torch" not in done.stderr  # torch is not imported for --version
