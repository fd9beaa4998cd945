"""A missing optional dependency is one line naming the sphinx-apps extra that installs it."""

import sys

import pytest

from sphinx_apps import LamaInpainter, MissingExtraError


def test_lama_without_torch_names_the_lama_extra(tmp_path, monkeypatch):
    weights = tmp_path / "big-lama.pt"
    weights.write_bytes(b"not read: torch is missing")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(MissingExtraError) as error:
        LamaInpainter(weights)
    message = str(error.value)
    assert message.startswith("LamaInpainter needs torch")
    assert message.endswith("install it with: pip install 'sphinx-apps[lama]'")
    assert "\n" not in message


def test_cli_model_without_sphinx_train_exits_1_naming_the_sphinx_extra(
    tmp_path, monkeypatch, capsys
):
    from PIL import Image

    from sphinx_apps.cli import main

    image = tmp_path / "scene.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(image)
    monkeypatch.setitem(sys.modules, "sphinx_train", None)
    code = main(["segment", str(image), "the red square", "--model", str(tmp_path / "m"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert "pip install 'sphinx-apps[sphinx]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
