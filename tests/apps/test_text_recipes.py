"""dense_caption, reason_with_detections and referring_pose with user boxes and a scripted model.

The scripted model stands in for SPHINX's chat: it records what it was asked (the picture's
size and the prompt) and answers from a table. The expected prompts are the paper's
instructions (Table 1) written out by hand, with boxes in the padded square computed by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from sphinx_apps import (
    BoxesGrounder,
    NothingFoundError,
    dense_caption,
    reason_with_detections,
    referring_pose,
)

# A 200 x 100 picture: padded square of side 200, offset (0, 50).
# Box (50, 10, 150, 70) in pixels is [0.25,0.30,0.75,0.60] in the square;
# box (10, 30, 30, 60) is [0.05,0.40,0.15,0.55].
DOG = (50, 10, 150, 70)
DOG_SQUARE = "[0.25,0.30,0.75,0.60]"
CAT = (10, 30, 30, 60)
CAT_SQUARE = "[0.05,0.40,0.15,0.55]"


@dataclass
class Answer:
    text: str
    keypoints: dict = field(default_factory=dict)


class ScriptedModel:
    """Answers from `script` (prompt -> text); records (picture size, prompt) of every call."""

    def __init__(self, script: dict[str, str], keypoints: dict | None = None) -> None:
        self.script, self.keypoints, self.calls = script, keypoints or {}, []

    def chat(self, image, conversation, **generation):
        self.calls.append((image.size, conversation, generation))
        key = conversation if isinstance(conversation, str) else "conversation"
        return Answer(self.script.get(key, "?"), self.keypoints)


@pytest.fixture
def picture():
    pixels = np.full((100, 200, 3), 90, dtype=np.uint8)
    pixels[10:70, 50:150] = (200, 120, 40)
    return Image.fromarray(pixels)


SHORT = "Provide a one-sentence caption for the provided image."
DETAILED = "Generate a detailed description about the image."


def test_dense_caption_asks_the_three_levels_per_region_then_the_whole_image(picture, tmp_path):
    model = ScriptedModel(
        {
            f"Please provide a short description for this region: {DOG_SQUARE}": "a dog",
            f"Please provide a short description for this region: {CAT_SQUARE}": "a cat",
            SHORT: "short",
            DETAILED: "long",
        }
    )
    grounder = BoxesGrounder([DOG, CAT], labels=["dog", "cat"])
    result = dense_caption(picture, model, grounder, max_new_tokens=7)
    asked = [(size, prompt) for size, prompt, _ in model.calls]
    assert asked == [
        ((200, 100), f"Please provide a short description for this region: {DOG_SQUARE}"),
        ((100, 60), SHORT),  # the crop of the dog box
        ((100, 60), DETAILED),
        ((200, 100), f"Please provide a short description for this region: {CAT_SQUARE}"),
        ((20, 30), SHORT),
        ((20, 30), DETAILED),
        ((200, 100), SHORT),
        ((200, 100), DETAILED),
    ]
    assert all(generation == {"max_new_tokens": 7} for _, _, generation in model.calls)
    assert [item.description for item in result.captions] == ["a dog", "a cat"]
    assert (result.caption, result.detailed) == ("short", "long")
    assert set(result.timings) == {"ground", "caption regions", "caption image"}
    result.save(tmp_path / "out")
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert [entry["description"] for entry in data["regions"]] == ["a dog", "a cat"]
    assert data["regions"][1]["box"] == [10.0, 30.0, 30.0, 60.0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["overlay.png", "result.json"]


def test_dense_caption_overlay_draws_each_region_box_in_its_colour(picture):
    model = ScriptedModel({})
    result = dense_caption(picture, model, BoxesGrounder([DOG]))
    drawn = np.asarray(result.overlay())
    # region 0 is outlined in the first palette colour (230, 25, 75), corners inclusive
    assert tuple(drawn[70, 100]) == (230, 25, 75)  # bottom edge
    assert tuple(drawn[40, 50]) == (230, 25, 75)  # left edge
    assert tuple(drawn[90, 100]) == (90, 90, 90)  # below the box: untouched


def test_reason_shows_the_detections_as_an_earlier_turn(picture):
    model = ScriptedModel({"conversation": "two animals"})
    grounder = BoxesGrounder([DOG, CAT, (60, 20, 80, 40)], labels=["dog", "cat", "dog"])
    result = reason_with_detections(picture, "How many animals?", model, grounder)
    ((_, conversation, _),) = model.calls
    context = f"<p>dog</p> [0.25,0.30,0.75,0.60;0.30,0.35,0.40,0.45] <p>cat</p> {CAT_SQUARE}"
    assert conversation == [
        {"role": "user", "content": "Detect all objects shown in the image."},
        {"role": "assistant", "content": context},
        {"role": "user", "content": "How many animals?"},
    ]
    assert (result.answer, result.context) == ("two animals", context)
    data = result.to_json()
    assert (data["question"], data["answer"]) == ("How many animals?", "two animals")


def test_referring_pose_asks_inside_the_box_and_drops_points_off_the_picture(picture):
    points = {"nose": (70.0, 40.0), "left_eye": (90.0, 40.0), "left_ankle": (100.0, 130.0)}
    model = ScriptedModel({}, keypoints=points)
    result = referring_pose(picture, "the man", model, BoxesGrounder([DOG]))
    ((_, prompt, _),) = model.calls
    assert prompt == f"Detect the key points of the person in the region {DOG_SQUARE}."
    kept = {"nose": (70.0, 40.0), "left_eye": (90.0, 40.0)}
    assert result.keypoints == [kept]
    assert result.to_json()["regions"][0]["keypoints"] == {"nose": [70, 40], "left_eye": [90, 40]}
    drawn = np.asarray(result.overlay())
    assert tuple(drawn[40, 80]) == (230, 25, 75)  # the nose - left_eye limb, region 0's colour
    assert tuple(drawn[40, 70]) == (255, 255, 255)  # the nose itself: a white dot


def test_text_recipes_without_grounder_or_model_say_what_is_missing(picture):
    with pytest.raises(ValueError, match=r"give a grounder .* or a SPHINX model"):
        dense_caption(picture, None)


def test_a_model_that_finds_nothing_is_one_clear_error(picture):
    class FindsNothing:
        def __call__(self, image, phrase):
            return []

    with pytest.raises(NothingFoundError, match="no region found for 'the man'"):
        referring_pose(picture, "the man", ScriptedModel({}), FindsNothing())
