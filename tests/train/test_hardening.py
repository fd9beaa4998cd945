"""Hardening: saving never destroys user files, loading is strict, bad options get one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from sphinx_train import SphinxModel, create_model, list_models, register_model_preset
from sphinx_train.cli import main


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(7)
    return create_model("sphinx-nano").eval()


@pytest.fixture(scope="module")
def saved(nano, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hard") / "nano"
    nano.save_pretrained(folder)
    return folder


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "copy")


# -- save_pretrained -----------------------------------------------------------------------


def test_save_over_a_folder_with_user_files_keeps_them(nano, tmp_path):
    target = tmp_path / "p"
    target.mkdir()
    (target / "my_notes.txt").write_text("precious")
    with pytest.raises(ValueError, match="already exists"):
        nano.save_pretrained(target)
    with pytest.raises(ValueError, match=r"did not write \(my_notes\.txt\)") as info:
        nano.save_pretrained(target, overwrite=True)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in target.iterdir()) == ["my_notes.txt"]
    assert (target / "my_notes.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_save_over_a_file_leaves_it_and_nothing_else(nano, tmp_path):
    target = tmp_path / "p"
    target.write_text("a file")
    with pytest.raises(ValueError, match="already exists"):
        nano.save_pretrained(target)
    with pytest.raises(ValueError, match="is a file"):
        nano.save_pretrained(target, overwrite=True)
    assert target.read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no .p.old-<pid>


def test_overwrite_replaces_a_model_folder_with_normal_permissions(nano, saved, tmp_path):
    import os
    import stat

    target = _copy(saved, tmp_path)
    nano.save_pretrained(target, overwrite=True)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((target / "config.json").stat().st_mode) == 0o666 & ~mask


# -- strict loading ------------------------------------------------------------------------


def _rewrite_llm(folder, change):
    from safetensors.torch import load_file, save_file

    path = folder / "llm" / "model.safetensors"
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def test_missing_lm_head_is_an_error_naming_folder_and_key(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _rewrite_llm(folder, lambda t: t.pop("lm_head.weight"))
    with pytest.raises(ValueError, match=r"llm: the LLM weights .*missing \['lm_head\.weight'\]"):
        SphinxModel.from_pretrained(folder)


def test_corrupt_safetensors_names_the_file(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "llm" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad")
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors"):
        SphinxModel.from_pretrained(folder)
    folder2 = _copy(saved, tmp_path / "b")
    (folder2 / "encoder.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"encoder\.safetensors: not a readable safetensors"):
        SphinxModel.from_pretrained(folder2)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"metadata": {}}, "expected a non-empty 'weight_map'"),
        ({"weight_map": {"lm_head.weight": "../x.safetensors"}}, "must be a relative path inside"),
        ({"weight_map": {"lm_head.weight": "/etc/x.safetensors"}}, "must be a relative path"),
    ],
)
def test_bad_index_is_refused(saved, tmp_path, index, message):
    folder = _copy(saved, tmp_path)
    (folder / "llm" / "model.safetensors").rename(folder / "llm" / "model-00001.safetensors")
    (folder / "llm" / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=message) as info:
        SphinxModel.from_pretrained(folder)
    assert "model.safetensors.index.json" in str(info.value)


# -- generation options --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_new_tokens": -5}, "max_new_tokens=-5"),
        ({"max_new_tokens": 0}, "max_new_tokens=0"),
        ({"temperature": math.nan}, "temperature=nan"),
        ({"temperature": -1.0}, "temperature=-1.0"),
        ({"top_p": -1.0}, r"top_p=-1\.0"),
        ({"top_p": math.nan}, "top_p=nan"),
        ({"generation": "no-such"}, "unknown generation preset 'no-such'; known: reference-chat"),
        ({"truncation": "cut"}, "truncation='cut'"),
    ],
)
def test_bad_generation_options_are_one_line_value_errors(nano, options, message):
    with pytest.raises(ValueError, match=message) as info:
        nano.chat(None, "Hi", **options)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("caf\udcff", r"character 3 \('\\udcff'\) is a lone surrogate"),
        (None, "expected a question string or a list of messages, got NoneType"),
        ([{"role": "user", "content": "x\ud800"}], "lone surrogate"),
    ],
)
def test_bad_questions_are_value_errors(nano, question, message):
    with pytest.raises(ValueError, match=message):
        nano.chat(None, question)


def test_cli_bad_options_exit_2_and_bad_input_exit_1(saved, capsys):
    for option in (["--max-new-tokens", "-5"], ["--temperature", "nan"], ["--top-p", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["chat", "--model", str(saved), *option, "Hi"])
        assert exit_info.value.code == 2
    capsys.readouterr()
    assert main(["chat", "--model", str(saved), "caf\udcff"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sphinx-train chat: error: ")


def test_cli_preset_model_says_random_weights(capsys):
    assert main(["chat", "--model", "sphinx-nano", "--max-new-tokens", "2", "Hi"]) == 0
    assert "RANDOM weights" in capsys.readouterr().err
    assert main(["chat", "--model", "no-such-model", "Hi"]) == 1
    assert "neither a model folder nor a model preset" in capsys.readouterr().err


# -- one vocabulary, one registry idiom, cheap imports -------------------------------------


def test_bf16_is_a_dtype_name_everywhere():
    model = create_model("sphinx-nano", dtype="bf16", with_encoder=False)
    assert model.llm.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'bf17'"):
        create_model("sphinx-nano", dtype="bf17")


def test_model_preset_registry_idiom():
    from sphinx_train import ModelPreset, UnknownNameError, get_model_preset

    preset = ModelPreset("llama-nano", None, "sphinx", vocab_size=512, builds_own_tokenizer=True)
    with pytest.raises(ValueError, match="already registered"):
        register_model_preset("sphinx-nano", preset)
    register_model_preset("test-text-only", preset)
    register_model_preset("test-text-only", preset, overwrite=True)
    assert list_models("sphinx-1k*") == ["sphinx-1k", "sphinx-1k-13b", "sphinx-1k-7b"]
    assert "test-text-only" in list_models()
    message = r"unknown model preset 'sphinx-70b'; known: .*sphinx"
    with pytest.raises(UnknownNameError, match=message):
        get_model_preset("sphinx-70b")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_fails_before_building(monkeypatch):
    from sphinx_train import presets

    def never(*args, **kwargs):
        raise AssertionError("built before the device was checked")

    monkeypatch.setattr(presets, "build_llm", never)
    with pytest.raises(ValueError, match="CUDA is not available"):
        create_model("sphinx-13b", device="cuda")


def test_help_and_version_do_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "from sphinx_train.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n        main(['--version'])\n    except SystemExit:\n        pass\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print(out.getvalue().splitlines()[0])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sphinx-train 0.1.0")
