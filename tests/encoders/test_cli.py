"""The `sphinx-encoders` command line: list, config, check."""

import pytest
import torch
import yaml

from sphinx_encoders import EncoderConfig, create_encoder
from sphinx_encoders.cli import main


def test_list_shows_token_counts(capsys):
    assert main(["list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["sphinx"][1] == "291" and rows["sphinx-tiny"][1] == "291"
    assert rows["qformer"][1] == "34" and rows["dinov2"][1] == "259"


def test_config_to_stdout_and_file(capsys, tmp_path):
    assert main(["config", "sphinx-tiny", "--llm-dim", "40"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["llm_dim"] == 40 and data["query_encoder"]["kind"] == "qformer"
    assert main(["config", "sphinx", "-o", str(tmp_path / "s.json")]) == 0
    assert EncoderConfig.load(tmp_path / "s.json").patch_encoders[2].embed_dim == 1536


def test_check_reference_shard(tiny, tmp_path, capsys):
    shard = {f"llma.{k}": v for k, v in tiny.reference_state_dict().items()}
    torch.save({"model": shard}, tmp_path / "consolidated.00-of-01.model.pth")
    assert main(["check", "sphinx-tiny", str(tmp_path)]) == 0
    assert "fit preset 'sphinx-tiny' (llm_dim 40)" in capsys.readouterr().out
    # the same file against the real sizes: every shape is wrong, reported on one line
    assert main(["check", "sphinx", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sphinx-encoders: error: ") and err.count("\n") == 1
    assert "clip.visual.conv1.weight: file (32, 3, 14, 14), model (1024, 3, 14, 14)" in err


def test_check_own_state_dict_with_a_missing_key(tmp_path, capsys):
    state = create_encoder("clip-vit-tiny", llm_dim=8).state_dict()
    del state["visual_proj.1.bias"]
    torch.save(state, tmp_path / "enc.pt")
    assert main(["check", "clip-vit-tiny", str(tmp_path / "enc.pt")]) == 1
    assert "1 missing keys: visual_proj.1.bias" in capsys.readouterr().err


def test_bad_usage_exits_2_and_bad_input_exits_1(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert main(["config", "no-such-preset"]) == 1
    assert "unknown encoder preset 'no-such-preset'" in capsys.readouterr().err
    assert main(["check", "sphinx-tiny", str(tmp_path / "absent.pth")]) == 1
    assert "no such file" in capsys.readouterr().err
