"""Converters and the CLI on hostile or wrong input: one line naming it, nothing lost."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sphinx_tasks.cli import main
from sphinx_tasks.converters import ConversionError, ConvertOptions, Skip, iter_records

FIXTURES = Path(__file__).parent / "fixtures"
GQA = FIXTURES / "gqa/val_balanced_questions.json"


def cli(*argv):
    return main(["convert", *map(str, argv), "--no-progress"])


def test_output_equal_to_input_is_refused_and_the_input_survives(tmp_path, capsys):
    source = tmp_path / "x.json"
    source.write_bytes(GQA.read_bytes())
    assert cli(source, "--format", "gqa", "--out", source, "--overwrite") == 1
    assert capsys.readouterr().err == (
        f"sphinx-tasks: error: {source}: the output would replace the input {source}\n"
    )
    assert source.read_bytes() == GQA.read_bytes()


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    out.write_text("keep me\n")
    assert cli(GQA, "--format", "gqa", "--out", out) == 1
    assert "already exists; pass overwrite (--overwrite)" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
    assert cli(GQA, "--format", "gqa", "--out", out, "--overwrite") == 0
    assert json.loads(out.read_text().splitlines()[0])["image"] == "2354786.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl"]


def test_version_and_example_epilog(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == "sphinx-tasks 0.1.0"
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    assert "examples:\n  sphinx-tasks convert" in capsys.readouterr().out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_with_one_line_and_nothing_partial(tmp_path, signum):
    source = tmp_path / "questions.json"
    questions = {
        str(i): {"imageId": str(i), "question": "What color is it?", "answer": "red"}
        for i in range(150_000)
    }
    source.write_text(json.dumps(questions))
    out = tmp_path / "o.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sphinx_tasks.cli",
            "convert",
            str(source),
            "--format",
            "gqa",
            "--out",
            str(out),
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(".o.jsonl.staging-") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    if process.returncode == 0:
        pytest.skip("the conversion finished before the signal arrived")
    assert process.returncode == 130
    assert err == "sphinx-tasks: interrupted\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["questions.json"]


def convert_text(tmp_path, name, text, fmt, **options):
    path = tmp_path / name
    path.write_text(text if isinstance(text, str) else json.dumps(text))
    with pytest.raises(ConversionError) as info:
        list(iter_records(path, fmt, ConvertOptions(**options)))
    return str(info.value).replace(str(path), "FILE")


COCO = {"categories": [{"id": 1, "name": "dog"}]}


def coco(images=None, annotations=None):
    return {
        "images": images or [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
        "annotations": annotations
        or [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}],
        **COCO,
    }


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (
            {"q": {"imageId": "1", "question": "Q?", "answer": ["x"]}},
            "gqa",
            "FILE: question 'q': key 'answer': expected a string, found an array ['x']",
        ),
        (
            [{"image": 5, "question": "Q?", "answers": []}],
            "vizwiz",
            "FILE: [0]: key 'image': expected a string, found a number 5",
        ),
        (
            coco(annotations=[{"id": 1, "image_id": [1], "category_id": 1, "bbox": [0, 0, 5, 5]}]),
            "coco-detection",
            "FILE: annotations[0]: key 'image_id': expected an integer or string id, found an array [1]",
        ),
        (
            coco(annotations=[{"id": 1, "image_id": 1, "bbox": [0, 0, 5, 5]}]),
            "coco-detection",
            "FILE: annotations[0]: key 'category_id': expected an integer or string id, "
            "found nothing (the key is missing)",
        ),
        (
            coco(images=[{"id": 1, "file_name": "a.jpg", "width": 0.5, "height": 10}]),
            "coco-detection",
            "FILE: images[0]: key 'width': expected a positive whole number of pixels, found a number 0.5",
        ),
        (
            coco(images=[{"id": 1, "file_name": "a.jpg", "width": 1e400, "height": 10}]),
            "coco-detection",
            "FILE: images[0]: key 'width': expected a positive whole number of pixels, found a number inf",
        ),
        (
            coco(
                annotations=[{"id": 1, "image_id": 1, "keypoints": "1 2 3", "bbox": [0, 0, 5, 5]}]
            ),
            "coco-keypoints",
            "FILE: annotations[0]: key 'keypoints': expected an array of some finite numbers, "
            "found a string '1 2 3'",
        ),
        (
            [{"split": "train", "ann_id": 1719310, "sentences": 3}],
            "refcoco-refs",
            "FILE: refs[0]: key 'sentences': expected an array, found a number 3",
        ),
        ([1, 2, 3], "aokvqa", "FILE: [0]: expected a JSON object, found a number 1"),
    ],
)
def test_wrong_field_types_are_one_line_naming_file_record_and_key(tmp_path, data, fmt, message):
    options = (
        {"annotations": FIXTURES / "refcoco_refs/instances.json"} if fmt == "refcoco-refs" else {}
    )
    assert convert_text(tmp_path, "data.json", data, fmt, **options) == message


def test_vqa_image_id_must_be_an_integer(tmp_path):
    answers = tmp_path / "answers.json"
    answers.write_text('{"annotations": [{"question_id": 1, "multiple_choice_answer": "yes"}]}')
    questions = {
        "data_subtype": "val2014",
        "questions": [{"question_id": 1, "image_id": "abc", "question": "Q?"}],
    }
    assert convert_text(tmp_path, "q.json", questions, "vqav2", annotations=answers) == (
        "FILE: questions[0]: key 'image_id': expected an integer, found a string 'abc'"
    )


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a/../../b.jpg"])
def test_data_paths_cannot_escape_the_image_prefix(tmp_path, name):
    data = coco(images=[{"id": 1, "file_name": name, "width": 10, "height": 10}])
    message = convert_text(tmp_path, "data.json", data, "coco-detection", image_prefix="coco")
    assert message == f"FILE: images[0]: image path {name!r}: must be a relative path inside coco"


def test_nan_boxes_are_skipped_not_flattened(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(
        json.dumps(
            coco(
                annotations=[
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 5, 5]},
                ]
            )
        ).replace("[0, 0, 5, 5]", "[NaN, 0, 5, 5]", 1)
    )
    with pytest.raises(ConversionError, match="key 'bbox': expected an array of 4 finite numbers"):
        list(iter_records(path, "coco-detection"))


def test_box_outside_the_image_is_skipped_and_counted(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(
        json.dumps(
            coco(
                annotations=[
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 5, 5]},
                ]
            )
        )
    )
    items = list(iter_records(path, "coco-detection"))
    assert [i.reason for i in items if isinstance(i, Skip)] == ["box outside the image"]
    # 10 x 10 image: xywh (0, 0, 5, 5) -> [0.00,0.00,0.50,0.50]
    assert items[-1]["conversations"][1]["value"] == "<p>dog</p> [0.00,0.00,0.50,0.50]"


def test_flickr_box_missing_a_corner_or_inverted_is_skipped(tmp_path):
    (tmp_path / "Sentences").mkdir()
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Sentences/1.txt").write_text("[/EN#1/people A man] and [/EN#2/other a dog] .\n")
    (tmp_path / "Annotations/1.xml").write_text(
        "<annotation><filename>1.jpg</filename><size><width>100</width><height>100</height></size>"
        "<object><name>1</name><bndbox><xmin>11</xmin><ymin>21</ymin><xmax>51</xmax></bndbox></object>"
        "<object><name>2</name><bndbox><xmin>61</xmin><ymin>61</ymin><xmax>41</xmax><ymax>81</ymax>"
        "</bndbox></object>"
        "<object><name>2</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>51</xmax><ymax>101</ymax>"
        "</bndbox></object></annotation>"
    )
    items = list(iter_records(tmp_path, "flickr30k-entities"))
    assert [i.reason for i in items if isinstance(i, Skip)] == [
        "box with a missing or non-numeric corner"
    ]
    # the inverted box is dropped; (1, 1, 51, 101) -> (0, 0, 50, 100) / 100
    assert (
        items[-1]["conversations"][1]["value"] == "A man and <p>a dog</p> [0.00,0.00,0.50,1.00] ."
    )


def test_flickr_phrase_pattern_is_linear(tmp_path):
    (tmp_path / "Sentences").mkdir()
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Sentences/1.txt").write_text("[/EN#1" + "/type" * 5000 + "\n")
    (tmp_path / "Annotations/1.xml").write_text(
        "<annotation><filename>1.jpg</filename></annotation>"
    )
    start = time.perf_counter()
    items = list(iter_records(tmp_path, "flickr30k-entities", ConvertOptions()))
    assert time.perf_counter() - start < 2  # exponential before: 24 parts took 3.4 s
    assert [i.reason for i in items] == ["image size missing and no --image-root to read it from"]


def test_wrong_schema_array_is_not_a_successful_empty_conversion(tmp_path, capsys):
    source = tmp_path / "coco_list.json"
    source.write_text(json.dumps([{"id": 1, "file_name": "a.jpg"}] * 3))
    out = tmp_path / "o.jsonl"
    assert cli(source, "--format", "llava-instruct", "--out", out) == 1
    assert capsys.readouterr().err == (
        f"sphinx-tasks: error: {source}: no records to write (0 records written, 3 skipped "
        "(item without a human/gpt conversation: 3))\n"
    )
    assert not out.exists()
