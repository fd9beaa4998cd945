"""Recipes end to end with user boxes and the weights-free defaults, from Python and the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from sphinx_apps import BoxesGrounder, dilate, edit, remove, segment
from sphinx_apps.cli import main

BOX = (28, 19, 88, 75)


def test_segment_with_boxes_gives_the_ellipse(scene, shapes):
    image, _, truth = scene
    result = segment(image, "the ellipse", BoxesGrounder([BOX]))
    assert [region.label for region in result.regions] == ["the ellipse"]
    assert shapes.iou(result.mask, truth) >= 0.9
    assert result.overlay().size == image.size
    assert set(result.timings) == {"ground", "segment"}


def test_remove_with_boxes_restores_the_background(scene):
    image, background, truth = scene
    result = remove(image, "the ellipse", BoxesGrounder([BOX]), dilation=3)
    error = np.abs(np.asarray(result.result).astype(int) - background.astype(int))[truth]
    assert error.mean() < 10
    assert result.painted_mask.sum() > truth.sum()


def test_cli_remove_writes_the_four_files(scene, tmp_path):
    image = scene[0]
    source = tmp_path / "scene.png"
    image.save(source)
    out = tmp_path / "out"
    code = main(["remove", str(source), "the ellipse", "--box", "28,19,88,75", "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "mask.png",
        "overlay.png",
        "result.json",
        "result.png",
    ]
    data = json.loads((out / "result.json").read_text())
    assert data["regions"][0]["box"] == [28.0, 19.0, 88.0, 75.0]
    assert Image.open(out / "result.png").size == image.size


def test_cli_bad_box_is_one_line_and_writes_nothing(scene, tmp_path, capsys):
    source = tmp_path / "scene.png"
    scene[0].save(source)
    code = main(
        ["segment", str(source), "x", "--box", "500,500,600,600", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith(
        "sphinx-apps: error: box [500,500,600,600]: lies outside the 112x96 image"
    )
    assert not (tmp_path / "o").exists()


class Recorder:
    """An inpainter that paints the mask white and remembers the mask and prompt it got."""

    uses_prompt = True

    def __init__(self):
        self.calls = []

    def __call__(self, image, mask, prompt=None):
        self.calls.append((mask.copy(), prompt))
        pixels = np.asarray(image).copy()
        pixels[mask] = 255
        return Image.fromarray(pixels)


def test_edit_repaints_the_dilated_object_with_the_prompt(scene, shapes):
    image, _, truth = scene
    painter = Recorder()
    result = edit(image, "the ellipse", "a red fox", BoxesGrounder([BOX]), painter, dilation=2)
    ((mask, prompt),) = painter.calls
    assert prompt == "a red fox"
    # the object's mask grown by a disc of radius 2: a 2-pixel ring around the ellipse
    assert shapes.iou(result.masks[0], truth) >= 0.9
    assert np.array_equal(mask, dilate(result.masks[0], 2))
    assert (mask & ~result.masks[0]).any()
    assert result.kept == "background" and result.to_json()["prompt"] == "a red fox"


def test_edit_keep_object_repaints_everything_but_the_object(scene):
    image, _, _ = scene
    painter = Recorder()
    result = edit(image, "x", "a beach", BoxesGrounder([BOX]), painter, keep="object")
    ((mask, _),) = painter.calls
    assert np.array_equal(mask, ~result.masks[0])  # no growth: the object's own pixels stay
    kept = result.masks[0]
    assert np.array_equal(np.asarray(result.result)[kept], np.asarray(image)[kept])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keep": "sky"}, "keep='sky': expected 'background' or 'object'"),
        ({"prompt": "  "}, "edit needs a prompt describing the new content"),
    ],
)
def test_edit_bad_options_are_one_line(scene, options, message):
    arguments = {"prompt": "a fox", **options}
    prompt = arguments.pop("prompt")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        edit(scene[0], "x", prompt, BoxesGrounder([BOX]), Recorder(), **arguments)
