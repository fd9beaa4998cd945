"""Hostile and broken inputs: one line naming the input, nothing built in vain, no hangs."""

import argparse
import subprocess
import sys
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from sphinx_encoders import (
    ConfigError,
    EncoderConfig,
    UnknownNameError,
    WeightsError,
    create_encoder,
    get_encoder_config,
    list_encoders,
    read_state_dict,
    register_encoder,
)
from sphinx_encoders import mixed as mixed_module
from sphinx_encoders.cli import main


def test_import_and_help_do_not_load_the_heavy_libraries():
    code = (
        "import sys, sphinx_encoders\n"
        "from sphinx_encoders.cli import _parser\n"
        "try:\n    _parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'timm', 'open_clip', 'transformers') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
    assert "examples:" in out.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("sphinx-encoders 0.")


def test_self_referential_container_is_refused_not_looped(tmp_path):
    container = {}
    container["state_dict"] = container
    torch.save(container, tmp_path / "c.pth")
    with pytest.raises(WeightsError, match=r"c\.pth: expected a state dict"):
        read_state_dict(tmp_path / "c.pth")


def test_deflated_repack_loads_the_true_tensors(tmp_path):
    state = {"a": torch.arange(4096.0).reshape(64, 64), "b": torch.full((300,), 7.0)}
    torch.save(state, tmp_path / "plain.pth")
    with (
        zipfile.ZipFile(tmp_path / "plain.pth") as source,
        zipfile.ZipFile(tmp_path / "deflated.pth", "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            target.writestr(member.filename, source.read(member.filename))
    with zipfile.ZipFile(tmp_path / "deflated.pth") as archive:
        assert {m.compress_type for m in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    loaded = read_state_dict(tmp_path / "deflated.pth")
    assert torch.equal(loaded["a"], state["a"]) and torch.equal(loaded["b"], state["b"])


def test_corrupt_safetensors_names_the_file(tmp_path):
    save_file({"x": torch.ones(100)}, tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "w.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"w\.safetensors: not a valid \.safetensors file"):
        read_state_dict(tmp_path / "w.safetensors")


def test_blocked_pickle_payload_is_one_line(tmp_path):
    torch.save({"x": argparse.Namespace(a=1), "y": torch.ones(1)}, tmp_path / "p.pth")
    with pytest.raises(WeightsError, match=r"p\.pth: holds non-tensor objects") as info:
        read_state_dict(tmp_path / "p.pth")
    assert "\n" not in str(info.value)


def test_hf_index_without_weight_map_or_escaping_shards(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text('{"metadata": {}}')
    with pytest.raises(WeightsError, match="no 'weight_map'"):
        read_state_dict(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "../outside.safetensors"}}'
    )
    with pytest.raises(WeightsError, match="must be a relative path inside"):
        read_state_dict(tmp_path)


@pytest.mark.parametrize(
    ("suffix", "raw", "message"),
    [
        (
            ".yaml",
            b"name: x\npatch_encoders: [{kind: clip_vit, layers: abc}]\n",
            r"patch_encoders\[0\]: 'layers' must be int, got str 'abc'",
        ),
        (".yaml", b"name: x\nimage_size: 22.5\n", r"'image_size' must be int, got float"),
        (".json", b'{"name": "x",}', r"not valid JSON at line 1 column 14"),
        (".yaml", b"name: caf\xe9\n", r"not UTF-8 text \(byte 9\)"),
        (
            ".yaml",
            b"name: x\npatch_encoders: [{kind: convnext, resize_dtype: int8}]\n",
            r"unknown dtype 'int8'",
        ),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, suffix, raw, message):
    path = tmp_path / f"enc{suffix}"
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match=message) as info:
        EncoderConfig.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cli_config_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "enc.yaml"
    target.write_text("mine")
    assert main(["config", "sphinx-tiny", "-o", str(target)]) == 1
    assert "already exists" in capsys.readouterr().err and target.read_text() == "mine"
    assert main(["config", "sphinx-tiny", "-o", str(target), "--overwrite"]) == 0
    assert EncoderConfig.load(target).name == "sphinx-tiny"


@pytest.fixture
def no_build(monkeypatch):
    """Any attempt to build an encoder fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder was built before the inputs were checked")

    monkeypatch.setattr(mixed_module.MixedVisualEncoder, "__init__", refuse)


def test_missing_weights_fail_before_building(no_build, tmp_path):
    with pytest.raises(WeightsError, match=r"absent\.pth: no such file"):
        create_encoder("sphinx", 5120, weights=tmp_path / "absent.pth")
    with pytest.raises(WeightsError, match="no backbone named 'eva'"):
        create_encoder("sphinx", 5120, weights={"eva": tmp_path})
    with pytest.raises(WeightsError, match=r"dino\.pth: no such file"):
        create_encoder("sphinx", 5120, weights={"dinov2": tmp_path / "dino.pth"})


def test_cuda_without_cuda_fails_before_building(no_build, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'cuda': CUDA is not available"):
        create_encoder("sphinx", 5120, device="cuda")
    with pytest.raises(ValueError, match="unknown dtype 'int4'"):
        create_encoder("sphinx", 5120, dtype="int4")


def _small(name: str) -> EncoderConfig:
    # a buildable config, so that later tests listing every preset still work
    return EncoderConfig(
        name=name, patch_encoders=[get_encoder_config("clip-vit-tiny").patch_encoders[0]]
    )


def test_registry_refuses_silent_overwrite_and_filters():
    register_encoder("test-mine", _small("test-mine"))
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("test-mine", _small("other"))
    register_encoder("test-mine", lambda: _small("replaced"), overwrite=True)
    assert get_encoder_config("test-mine").name == "replaced"
    assert list_encoders("sphinx-light*") == [
        "sphinx-light",
        "sphinx-light-1k",
        "sphinx-light-1k-tiny",
        "sphinx-light-tiny",
    ]
    with pytest.raises(UnknownNameError, match=r"known: .*sphinx-light") as info:
        get_encoder_config("sphinx-lite")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_registered_configs_are_copied_on_use():
    register_encoder("test-copied", _small("test-copied"))
    get_encoder_config("test-copied").image_size = 999
    assert get_encoder_config("test-copied").image_size == 224
