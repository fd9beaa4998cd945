"""Each converter on a small hand-written fixture in its dataset's real file layout.

Expected boxes are worked out by hand in the comments: a W x H image sits in a max(W, H)
square at offset ((S - W) // 2, (S - H) // 2).
"""

import struct
from pathlib import Path

import pytest

from sphinx_tasks.converters import ConversionError, ConvertOptions, Skip, iter_records

FIXTURES = Path(__file__).parent / "fixtures"
SUFFIX = "\nAnswer the question using a single word or phrase."


def png_header(path: Path, width: int, height: int) -> None:
    """Signature + IHDR chunk: all a header reader needs."""
    ihdr = struct.pack(">II5B", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0")


def run(source, fmt, **options):
    items = list(iter_records(FIXTURES / source, fmt, ConvertOptions(**options)))
    records = [item for item in items if not isinstance(item, Skip)]
    skips = sorted(item.reason for item in items if isinstance(item, Skip))
    return records, skips


def turns(record):
    values = [message["value"] for message in record["conversations"]]
    return list(zip(values[::2], values[1::2], strict=True))


# 200 x 100 image: side 200, offset (0, 50).
# xywh (20, 10, 100, 50) -> (20, 60, 120, 110) / 200 = [0.10,0.30,0.60,0.55]
# xywh (0, 0, 50, 30)    -> (0, 50, 50, 80) / 200   = [0.00,0.25,0.25,0.40]
# xywh (100, 20, 60, 80) -> (100, 70, 160, 150) / 200 = [0.50,0.35,0.80,0.75]
DOG_1, DOG_2, PERSON = "0.10,0.30,0.60,0.55", "0.00,0.25,0.25,0.40", "0.50,0.35,0.80,0.75"


def test_coco_detection(tmp_path):
    png_header(tmp_path / "000000000003.png", 60, 40)
    records, skips = run(
        "coco/annotations/instances_val2017.json",
        "coco-detection",
        image_prefix="coco/val2017",
        image_root=tmp_path,
    )
    assert skips == ["crowd annotation left out", "image without annotations"]
    first = records[0]
    assert first["image"] == "coco/val2017/000000000001.jpg"
    assert first["task"] == "detection" and first["source"] == "coco"
    assert turns(first) == [
        (
            "<image>\nDetect all objects shown in the image.",
            f"<p>person</p> [{PERSON}] <p>dog</p> [{DOG_1};{DOG_2}]",
        )
    ]
    assert turns(records[1]) == [
        ("<image>\nDetect all person shown in the image.", f"<p>person</p> [{PERSON}]"),
        ("Detect all dog shown in the image.", f"<p>dog</p> [{DOG_1};{DOG_2}]"),
    ]
    # Image 3 has no size in the JSON: 60 x 40 read from the PNG header, side 60, offset (0, 10):
    # xywh (10, 10, 30, 30) -> (10, 20, 40, 50) / 60
    assert turns(records[2])[0][1] == "<p>person</p> [0.17,0.33,0.67,0.83]"
    assert len(records) == 4


def test_coco_detection_without_sizes_skips_with_reason():
    _, skips = run("coco/annotations/instances_val2017.json", "coco-detection")
    assert "image size missing and no --image-root to read it from" in skips


def test_coco_keypoints():
    records, skips = run("coco/annotations/person_keypoints_val2017.json", "coco-keypoints")
    assert skips == []
    # 100 x 200 image: side 200, offset (50, 0)
    # person xywh (10, 20, 40, 100) -> (60, 20, 100, 120) / 200; (60, 0, 20, 20) -> (110, 0, 130, 20) / 200
    # nose (30, 40) -> (80, 40) / 200; left_eye (32, 38) -> (82, 38) / 200
    assert turns(records[0]) == [
        (
            "<image>\nDetect all people shown in the image.",
            "<p>person</p> [0.30,0.10,0.50,0.60;0.55,0.00,0.65,0.10]",
        ),
        (
            "Detect the key points of the person in the region [0.30,0.10,0.50,0.60].",
            "<p>nose</p> [0.40,0.20] <p>left_eye</p> [0.41,0.19]",
        ),
    ]
    assert records[0]["task"] == "pose"


def test_refcoco_mdetr_layout():
    records, skips = run("refcoco/finetune_refcoco_val.json", "refcoco")
    assert skips == ["entry without a referring expression", "expression without a box"]
    rec, reg = records
    assert turns(rec) == [
        (
            "<image>\nPlease provide the bounding box coordinate of the region this sentence describes: "
            "the lady with the blue shirt.",
            f"[{DOG_1}]",
        )
    ]
    assert turns(reg) == [
        (
            f"<image>\nPlease provide a short description for this region: [{DOG_1}]",
            "the lady with the blue shirt",
        )
    ]
    assert (rec["task"], reg["task"], rec["source"]) == ("rec", "reg", "refcoco")


def test_vqav2():
    records, skips = run(
        "vqav2/v2_OpenEnded_mscoco_val2014_questions.json",
        "vqav2",
        annotations=FIXTURES / "vqav2/v2_mscoco_val2014_annotations.json",
    )
    assert skips == ["question without an answer"]
    assert [r["image"] for r in records] == ["COCO_val2014_000000000042.jpg"] * 2
    assert turns(records[0]) == [("<image>\nWhat color is the bus?" + SUFFIX, "red")]
    assert turns(records[1])[0][1] == "4"


def test_vqav2_needs_annotations():
    with pytest.raises(ConversionError, match="--annotations"):
        run("vqav2/v2_OpenEnded_mscoco_val2014_questions.json", "vqav2")


def test_okvqa_uses_most_common_answer():
    records, _ = run(
        "okvqa/OpenEnded_mscoco_val2014_questions.json",
        "okvqa",
        annotations=FIXTURES / "okvqa/mscoco_val2014_annotations.json",
    )
    # "motocross" x3 beats "race" x2
    assert turns(records[0]) == [
        ("<image>\nWhat sport can you use this for?" + SUFFIX, "motocross")
    ]
    assert records[0]["source"] == "okvqa"


def test_aokvqa():
    records, skips = run("aokvqa/aokvqa_v1p0_val.json", "aokvqa")
    assert skips == []
    choice, short = records
    assert choice["image"] == "val2017/000000461751.jpg"
    assert turns(choice) == [
        (
            "<image>\nWhat is in the motorcyclist's mouth?\nA. toothpick\nB. food\nC. popsicle stick\n"
            "D. cigarette\nAnswer with the option's letter from the given choices directly.",
            "D",
        )
    ]
    assert turns(short)[0][1] == "cigarette"


def test_gqa():
    records, skips = run("gqa/val_balanced_questions.json", "gqa")
    assert skips == ["question without imageId, question or answer"]
    assert records[0]["image"] == "2354786.jpg"
    assert turns(records[0]) == [("<image>\nWhich color is the car on the left?" + SUFFIX, "white")]


def test_vizwiz():
    records, skips = run("vizwiz/Annotations/val.json", "vizwiz", image_prefix="vizwiz/val")
    assert skips == ["question without answers"]
    assert records[0]["image"] == "vizwiz/val/VizWiz_val_00000000.jpg"
    assert turns(records[0])[0] == (
        "<image>\nOk. There is another picture I hope it is a better one. "
        "When the provided information is insufficient, respond with 'Unanswerable'.\n"
        "Answer the question using a single word or phrase.",
        "Unanswerable",
    )
    assert turns(records[1])[0][1] == "soup"


def test_ocrvqa_rounds_and_max_turns():
    records, skips = run("ocrvqa/dataset.json", "ocrvqa", max_turns=2)
    assert skips == ["entry without matching questions and answers"]
    assert [r["image"] for r in records] == ["1590282914.jpg"] * 2
    assert turns(records[0]) == [
        ("<image>\nWho wrote this book?" + SUFFIX, "Erin Grayson"),
        ("What is the title of this book?" + SUFFIX, "The Wedding Planner"),
    ]
    assert turns(records[1]) == [("<image>\nIs this a comedy book?" + SUFFIX, "No")]


def test_textcaps():
    records, skips = run("textcaps/TextCaps_0.1_val.json", "textcaps")
    assert skips == ["item without a caption (test split)"]
    # the JSON says train/<id>.jpg; the released zip unpacks to train_images/
    assert records[0]["image"] == "train_images/0054c91397f2fe05.jpg"
    assert turns(records[0]) == [
        (
            "<image>\nProvide a one-sentence caption for the provided image.",
            "A bus with the number 52 on its front.",
        )
    ]


def test_flickr30k_entities():
    records, skips = run("flickr30k_entities", "flickr30k-entities")
    assert skips == []
    assert records[0]["image"] == "1000092795.jpg"
    question = (
        "<image>\nDescribe the image concisely. Include the bounding box for each mentioned object."
    )
    # The XML corners are 1-based; the dataset's get_annotations utility subtracts 1:
    # entity 1: (20, 10, 120, 60) -> (19, 9, 119, 59) -> square (19, 59, 119, 109) / 200
    #   = 0.095, 0.295, 0.595, 0.545 (as floats just above / below the halves: 0.10,0.29,0.59,0.55)
    #   and (100, 20, 160, 100) -> (99, 69, 159, 149) / 200 = 0.49,0.34,0.80,0.74;
    # entities 2 and 4: (0, 0, 50, 30) -> (-1, 49, 49, 79) / 200, clipped: 0.00,0.24,0.24,0.40;
    # entity 3 is the scene (no box).
    assert turns(records[0]) == [
        (
            question,
            "<p>Two young guys</p> [0.10,0.29,0.59,0.55;0.49,0.34,0.80,0.74] with shaggy hair "
            "look at <p>their hands</p> [0.00,0.24,0.24,0.40] while hanging out in the yard .",
        )
    ]
    assert turns(records[1]) == [(question, "<p>A man</p> [0.00,0.24,0.24,0.40] stands .")]


def test_visual_genome_relations():
    records, skips = run(
        "visual_genome/relationships.json",
        "vg-relations",
        image_data=FIXTURES / "visual_genome/image_data.json",
    )
    assert skips == [
        "image without usable relationships",
        "relationship without two boxes and a predicate",
    ]
    assert records[0]["image"] == "VG_100K_2/1.jpg"
    assert turns(records[0]) == [
        (
            f"<image>\nWhat is the relationship between the object in [{DOG_1}] and the object in [{PERSON}]?",
            "shade on street",
        )
    ]


def test_llava_instruct_passthrough():
    records, skips = run(
        "llava/llava_instruct_150k.json", "llava-instruct", image_prefix="coco/train2017"
    )
    assert skips == ["item without a human/gpt conversation"]
    assert records[0]["image"] == "coco/train2017/000000033471.jpg"
    assert (
        records[0]["conversations"][0]["value"]
        == "What are the colors of the bus in the image?\n<image>"
    )
    assert records[0]["task"] == "instruct"
    assert "image" not in records[1]


def test_image_folder_with_synset_names(tmp_path):
    root = tmp_path / "train"
    (root / "n01440764").mkdir(parents=True)
    (root / "n02102040").mkdir()
    png_header(root / "n01440764" / "a.png", 4, 4)
    png_header(root / "n02102040" / "b.JPEG", 4, 4)
    (root / "n02102040" / "notes.txt").write_text("not an image")
    items = list(
        iter_records(
            root,
            "image-folder",
            ConvertOptions(class_names=FIXTURES / "imagenet/LOC_synset_mapping.txt"),
        )
    )
    records = [i for i in items if not isinstance(i, Skip)]
    assert [r["image"] for r in records] == ["n01440764/a.png", "n02102040/b.JPEG"]
    assert [turns(r)[0] for r in records] == [
        ("<image>\nClassify the image.", "This is a tench"),
        ("<image>\nClassify the image.", "This is a English springer"),
    ]
    assert [i.reason for i in items if isinstance(i, Skip)] == ["file that is not an image"]


def test_unknown_format_and_missing_source():
    with pytest.raises(
        ConversionError, match="unknown dataset format 'nope'; known: aokvqa, coco-detection"
    ):
        iter_records(FIXTURES, "nope")
    with pytest.raises(ConversionError, match="no such file"):
        iter_records(FIXTURES / "missing.json", "gqa")


def test_wrong_file_layout_is_named():
    with pytest.raises(ConversionError, match="not a COCO annotation file"):
        run("gqa/val_balanced_questions.json", "coco-detection")


def test_refcoco_refs_with_instances():
    records, skips = run(
        "refcoco_refs/refs_unc.json",
        "refcoco-refs",
        annotations=FIXTURES / "refcoco_refs/instances.json",
        split="train",
        source_name="refcoco",
    )
    assert skips == [
        "ref outside split 'train'",
        "ref whose annotation or image is not in the instances file",
    ]
    rec, reg = records
    assert rec["image"] == "COCO_train2014_000000581857.jpg"
    prefix = "Please provide the bounding box coordinate of the region this sentence describes: "
    assert turns(rec) == [
        (f"<image>\n{prefix}the lady with the blue shirt.", f"[{DOG_1}]"),
        (f"{prefix}lady.", f"[{DOG_1}]"),
    ]
    assert turns(reg) == [
        (
            f"<image>\nPlease provide a short description for this region: [{DOG_1}]",
            "the lady with the blue shirt",
        )
    ]


def test_vqa_image_folder_from_file_name_when_subtype_comes_late(tmp_path):
    questions = tmp_path / "OpenEnded_mscoco_train2014_questions.json"
    questions.write_text(
        '{"questions": [{"image_id": 5, "question": "Why?", "question_id": 50}], "data_subtype": "train2014"}'
    )
    answers = tmp_path / "answers.json"
    answers.write_text('{"annotations": [{"question_id": 50, "answers": [{"answer": "rain"}]}]}')
    records = list(iter_records(questions, "okvqa", ConvertOptions(annotations=answers)))
    assert [r["image"] for r in records] == ["COCO_train2014_000000000005.jpg"]
    unnamed = tmp_path / "q.json"
    unnamed.write_text(questions.read_text())
    with pytest.raises(ConversionError, match="data_subtype"):
        list(iter_records(unnamed, "okvqa", ConvertOptions(annotations=answers)))


def test_options_from_json_mapping():
    options = ConvertOptions.from_dict(
        {"image_prefix": "coco", "annotations": "a.json", "max_turns": 3}
    )
    assert options.annotations == Path("a.json") and options.max_turns == 3
    assert options.image_path("x.jpg") == "coco/x.jpg"
    with pytest.raises(ConversionError, match="unknown keys \\['turns'\\]"):
        ConvertOptions.from_dict({"turns": 3})
