"""The sphinx-train command line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sphinx_train import create_model
from sphinx_train.cli import main


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(2)
    folder = tmp_path_factory.mktemp("cli") / "nano"
    create_model("sphinx-nano").save_pretrained(folder)
    return folder


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "scene.png"
    Image.new("RGB", (200, 100), (255, 255, 255)).save(path)
    return path


def _chat(folder, image, *options):
    return main(["chat", "--model", str(folder), "--image", str(image), *options])


def test_chat_prints_the_models_answer(model_folder, image_file, capsys):
    from sphinx_train import SphinxModel

    assert _chat(model_folder, image_file, "--max-new-tokens", "4", "Hi?") == 0
    expected = SphinxModel.from_pretrained(model_folder).chat(
        Image.open(image_file), "Hi?", max_new_tokens=4
    )
    assert capsys.readouterr().out == expected.text + "\n"


def test_chat_draws_the_answers_boxes(model_folder, image_file, capsys, monkeypatch):
    from sphinx_train import generation

    def box_answer(model, batch, **options):
        ids = model.tokenizer.encode("<p>box</p> [0.25,0.25,0.75,0.75]\n###")
        return [generation.GeneratedTokens(ids, "stop")]

    monkeypatch.setattr(generation, "generate_tokens", box_answer)
    output = image_file.with_name("drawn.png")
    code = _chat(model_folder, image_file, "--draw", str(output), "Where?")
    assert code == 0
    assert capsys.readouterr().out.strip() == "<p>box</p> [0.25,0.25,0.75,0.75]"
    drawn = np.asarray(Image.open(output))
    # 200x100 padded to a 200x200 square (50 px above): the box is x 50..150, y 0..50 in pixels.
    assert tuple(drawn[25, 50]) == (255, 0, 0)
    assert tuple(drawn[0, 100]) == (255, 0, 0)
    assert tuple(drawn[25, 100]) == (255, 255, 255)
    assert tuple(drawn[75, 100]) == (255, 255, 255)


def test_bad_input_is_one_line_error(tmp_path, capsys):
    code = main(["convert-accessory", str(tmp_path / "missing"), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "missing: not a folder" in err
    assert not (tmp_path / "out").exists()


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", "no model given"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "convert-accessory" in capsys.readouterr().out
