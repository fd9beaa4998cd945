"""SphinxGrounder and the text recipes on a real `sphinx-nano` model (random weights).

A random model answers gibberish, so most tests force its answer: the decoder is replaced by
one that returns the tokens of a scripted text, and everything else is the real path (the
processor's tiling layout, the template, the answer parser, the mapping back to pixels).
Expected pixels are computed by hand: on a W x H picture the padded square has side
max(W, H) and offset ((S - W) // 2, (S - H) // 2); pixel = square value * S - offset.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

sphinx_train = pytest.importorskip("sphinx_train")
torch = pytest.importorskip("torch")

from sphinx_apps import (  # noqa: E402
    BoxesGrounder,
    SphinxGrounder,
    dense_caption,
    reason_with_detections,
    referring_pose,
    remove,
)
from sphinx_apps.cli import main  # noqa: E402
from sphinx_train import generation as generation_module  # noqa: E402
from sphinx_train.generation import GeneratedTokens  # noqa: E402

pytestmark = pytest.mark.slow

DETECT_ALL = "Detect all objects shown in the image."


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return sphinx_train.create_model("sphinx-nano").eval()


@pytest.fixture
def forced(monkeypatch, model):
    """Make the model answer `script[last question]` (a callable gets the picture's size)."""
    script: dict = {}
    prompts: list[tuple[tuple[int, int], str]] = []

    def decode(model_, batch, **options):
        answers = []
        for row, layout in enumerate(batch.layouts):
            ids = batch.input_ids[row][batch.text_mask[row]].tolist()
            prompt = model_.tokenizer.decode(ids)
            size = (layout.width, layout.height)
            prompts.append((size, prompt))
            question = prompt.rsplit("### Human: ", 1)[-1].removesuffix("\n### Assistant:")
            answer = script.get(question, "nothing")
            answer = answer(size) if callable(answer) else answer
            answers.append(GeneratedTokens(model_.tokenizer.encode(answer), "eos"))
        return answers

    monkeypatch.setattr(generation_module, "generate_tokens", decode)
    return script, prompts


def wide():  # 200 x 100: square side 200, offset (0, 50)
    return Image.fromarray(np.full((100, 200, 3), 128, dtype=np.uint8))


def tall():  # 100 x 200: square side 200, offset (50, 0)
    return Image.fromarray(np.full((200, 100, 3), 128, dtype=np.uint8))


def test_refer_maps_the_square_box_to_pixels_of_a_wide_and_a_tall_picture(model, forced):
    script, prompts = forced
    rec = "Please provide the bounding box coordinate of the region this sentence describes: "
    script[rec + "the dog."] = "[0.25,0.30,0.75,0.60]"
    grounder = SphinxGrounder(model)
    (region,) = grounder(wide(), "the dog")
    assert region.box.as_tuple() == pytest.approx((50, 10, 150, 70))
    assert (region.label, region.score) == ("the dog", None)
    (region,) = grounder(tall(), "the dog")
    assert region.box.as_tuple() == pytest.approx((0, 60, 100, 120))
    # the prompt is the reference template around the REC instruction
    assert prompts[0][1].endswith("### Human: " + rec + "the dog.\n### Assistant:")


def test_detect_all_keeps_names_clips_edges_and_drops_boxes_off_the_picture(model, forced):
    script, _ = forced
    script[DETECT_ALL] = (
        "<p>dog</p> [0.25,0.30,0.75,0.60;0.80,0.20,1.00,0.40] "
        "<p>cat</p> [0.50,0.05,0.60,0.20]"  # y from -40 to -10: above the picture
    )
    regions = SphinxGrounder(model)(wide(), None)
    assert [region.label for region in regions] == ["dog", "dog"]
    assert regions[0].box.as_tuple() == pytest.approx((50, 10, 150, 70))
    assert regions[1].box.as_tuple() == pytest.approx((160, 0, 200, 30))  # y -10 clipped to 0


def test_detect_mode_asks_for_the_category(model, forced):
    script, prompts = forced
    script["Detect all dogs shown in the image."] = "<p>dogs</p> [0.00,0.25,0.50,0.75]"
    (region,) = SphinxGrounder(model, mode="detect")(wide(), "dogs")
    assert region.box.as_tuple() == pytest.approx((0, 0, 100, 100))
    assert prompts[0][1].endswith("### Human: Detect all dogs shown in the image.\n### Assistant:")


def test_remove_with_the_sphinx_grounder_paints_the_found_box(model, forced):
    script, _ = forced
    rec = "Please provide the bounding box coordinate of the region this sentence describes: "
    script[rec + "the square."] = "[0.25,0.30,0.75,0.60]"
    pixels = np.full((100, 200, 3), 60, dtype=np.uint8)
    pixels[20:60, 70:130] = (250, 40, 40)  # the square, inside (50, 10, 150, 70)
    result = remove(Image.fromarray(pixels), "the square", SphinxGrounder(model), dilation=3)
    painted = np.asarray(result.result)
    assert result.regions[0].box.as_tuple() == pytest.approx((50, 10, 150, 70))
    assert np.abs(painted[20:60, 70:130].astype(int) - 60).mean() < 10
    assert (painted[~result.painted_mask] == pixels[~result.painted_mask]).all()


def test_dense_caption_through_the_model(model, forced):
    script, prompts = forced
    script[DETECT_ALL] = "<p>dog</p> [0.25,0.30,0.75,0.60]"
    script["Please provide a short description for this region: [0.25,0.30,0.75,0.60]"] = "a dog"
    script["Provide a one-sentence caption for the provided image."] = lambda s: f"short {s}"
    script["Generate a detailed description about the image."] = lambda s: f"long {s}"
    result = dense_caption(wide(), model, max_new_tokens=8)
    (item,) = result.captions
    assert item.region.label == "dog"
    assert item.region.box.as_tuple() == pytest.approx((50, 10, 150, 70))
    # the crop of the box is 100 x 60 pixels; the whole picture 200 x 100
    assert (item.description, item.caption, item.detailed) == (
        "a dog",
        "short (100, 60)",
        "long (100, 60)",
    )
    assert (result.caption, result.detailed) == ("short (200, 100)", "long (200, 100)")
    assert len(prompts) == 6


def test_reason_puts_the_model_detections_before_the_question(model, forced):
    script, prompts = forced
    script[DETECT_ALL] = "<p>dog</p> [0.25,0.30,0.75,0.60]"
    script["How many dogs?"] = "One."
    result = reason_with_detections(wide(), "How many dogs?", model)
    assert result.answer == "One."
    assert prompts[-1][1].endswith(
        "### Human: Detect all objects shown in the image.\n"
        "### Assistant: <p>dog</p> [0.25,0.30,0.75,0.60]\n"
        "### Human: How many dogs?\n### Assistant:"
    )


def test_referring_pose_maps_keypoints_to_pixels(model, forced):
    script, _ = forced
    rec = "Please provide the bounding box coordinate of the region this sentence describes: "
    script[rec + "the man."] = "[0.25,0.30,0.75,0.60]"
    script["Detect the key points of the person in the region [0.25,0.30,0.75,0.60]."] = (
        "<p>nose</p> [0.40,0.45] <p>left_eye</p> [0.42,0.43] <p>left_ankle</p> [0.50,0.90]"
    )
    result = referring_pose(wide(), "the man", model)
    (points,) = result.keypoints
    # nose: (0.40 * 200, 0.45 * 200 - 50); the ankle lands at y = 130, below the picture
    assert points == {"nose": pytest.approx((80, 40)), "left_eye": pytest.approx((84, 36))}


def test_random_weights_under_inference_mode_give_regions_inside_the_picture(model):
    """No forcing: whatever the random model says, the grounder returns usable regions."""
    pixels = np.full((100, 200, 3), 60, dtype=np.uint8)
    pixels[30:50, 50:80] = (250, 40, 40)
    with torch.inference_mode():
        regions = SphinxGrounder(model, max_new_tokens=6)(wide(), "the dog")
        photo = torch.from_numpy(pixels) + 0  # an inference tensor, as torch code holds it
        result = remove(photo, "x", BoxesGrounder([(40, 20, 90, 60)]), dilation=2)
    for region in regions:
        x1, y1, x2, y2 = region.box.as_tuple()
        assert 0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 100
    painted = np.asarray(result.result)
    assert np.abs(painted[30:50, 50:80].astype(int) - 60).mean() < 10


@pytest.fixture(scope="module")
def folder(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("nano") / "model"
    model.save_pretrained(path)
    return path


def test_cli_pose_with_a_saved_model_folder(folder, forced, tmp_path):
    script, _ = forced
    script["Detect the key points of the person in the region [0.25,0.30,0.75,0.60]."] = (
        "<p>nose</p> [0.40,0.45]"
    )
    source = tmp_path / "wide.png"
    wide().save(source)
    out = tmp_path / "pose"
    argv = ["pose", str(source), "the man", "--model", str(folder), "--box", "50,10,150,70"]
    assert main([*argv, "--out", str(out)]) == 0
    data = json.loads((out / "result.json").read_text())
    assert data["regions"][0]["keypoints"] == {"nose": [80.0, 40.0]}
    assert sorted(p.name for p in out.iterdir()) == ["overlay.png", "result.json"]


def test_cli_dense_caption_and_reason_ask_the_model_for_the_regions(folder, forced, tmp_path):
    script, _ = forced
    script[DETECT_ALL] = "<p>dog</p> [0.25,0.30,0.75,0.60]"
    script["Please provide a short description for this region: [0.25,0.30,0.75,0.60]"] = "a dog"
    script["How many dogs?"] = "One."
    source = tmp_path / "wide.png"
    wide().save(source)
    model_args = ["--model", str(folder), "--max-new-tokens", "16"]
    assert main(["dense-caption", str(source), *model_args, "--out", str(tmp_path / "d")]) == 0
    data = json.loads((tmp_path / "d" / "result.json").read_text())
    assert [(r["label"], r["box"], r["description"]) for r in data["regions"]] == [
        ("dog", [50.0, 10.0, 150.0, 70.0], "a dog")
    ]
    question = ["reason", str(source), "How many dogs?", *model_args]
    assert main([*question, "--out", str(tmp_path / "r")]) == 0
    data = json.loads((tmp_path / "r" / "result.json").read_text())
    assert (data["answer"], data["context"]) == ("One.", "<p>dog</p> [0.25,0.30,0.75,0.60]")
