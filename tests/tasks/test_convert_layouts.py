"""Converters against small hand-written files in each dataset's published layout.

Layouts used (field names): LVIS v1 ``lvis_v1_val.json`` (images with ``coco_url``),
PubLayNet ``val.json`` (COCO style), OCR-VQA ``dataset.json`` (``imageURL``, ``split`` 1/2/3),
TextVQA ``TextVQA_0.5.1_val.json`` + ``TextVQA_Rosetta_OCR_v0.2_val.json``, VSR
``data/splits/random/train.jsonl``, ScienceQA ``data/scienceqa/problems.json``, MMBench
``mmbench_dev_en.tsv`` (VLMEvalKit columns), ShareGPT / ShareGPT4V conversation lists, and the
refer toolkit's ``refs(unc).p`` pickle.
Boxes: a 200 x 100 image sits in a 200 square at offset (0, 50), so
xywh (20, 10, 100, 50) -> [0.10,0.30,0.60,0.55] and (0, 0, 50, 30) -> [0.00,0.25,0.25,0.40].
"""

import base64
import json
import os
import pickle
from pathlib import Path

import pytest

from sphinx_tasks.converters import (
    ConversionError,
    ConvertOptions,
    EmbeddedImage,
    Skip,
    convert,
    iter_records,
)

FIXTURES = Path(__file__).parent / "fixtures"
SHORT = "\nAnswer the question using a single word or phrase."
BOX_A, BOX_B = "[0.10,0.30,0.60,0.55]", "[0.00,0.25,0.25,0.40]"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def run(path, fmt, **options):
    items = list(iter_records(path, fmt, ConvertOptions(**options)))
    records = [item for item in items if isinstance(item, dict)]
    skips = sorted(item.reason for item in items if isinstance(item, Skip))
    return records, skips


def turns(record):
    values = [message["value"] for message in record["conversations"]]
    return list(zip(values[::2], values[1::2], strict=True))


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_lvis_derives_the_file_from_coco_url(tmp_path):
    path = write_json(
        tmp_path / "lvis_v1_val.json",
        {
            "images": [
                {
                    "id": 397133,
                    "width": 200,
                    "height": 100,
                    "neg_category_ids": [],
                    "coco_url": "http://images.cocodataset.org/val2017/000000397133.jpg",
                }
            ],
            "annotations": [
                {"id": 1, "image_id": 397133, "category_id": 3, "bbox": [20, 10, 100, 50]}
            ],
            "categories": [
                {"id": 3, "name": "aerosol_can", "synonyms": ["aerosol_can", "spray_can"]}
            ],
        },
    )
    records, skips = run(path, "lvis")
    assert skips == []
    assert records[0]["image"] == "val2017/000000397133.jpg"
    assert turns(records[0]) == [
        ("<image>\nDetect all objects shown in the image.", f"<p>aerosol can</p> {BOX_A}")
    ]
    assert records[0]["source"] == "lvis"


def test_document_layout(tmp_path):
    path = write_json(
        tmp_path / "publaynet/val.json",
        {
            "images": [{"id": 1, "file_name": "PMC1_00001.jpg", "width": 200, "height": 100}],
            "annotations": [
                {"id": 5, "image_id": 1, "category_id": 2, "bbox": [0, 0, 50, 30], "iscrowd": 0},
                {"id": 6, "image_id": 1, "category_id": 1, "bbox": [20, 10, 100, 50], "iscrowd": 0},
            ],
            "categories": [{"id": 1, "name": "text"}, {"id": 2, "name": "title"}],
        },
    )
    records, _ = run(path, "doc-layout", image_prefix="publaynet/val")
    assert records[0]["image"] == "publaynet/val/PMC1_00001.jpg"
    assert turns(records[0]) == [
        (
            "<image>\nDetect all texts and provide their bounding box coordinate.",
            f"<p>text</p> {BOX_A} <p>title</p> {BOX_B}",
        )
    ]
    assert (records[0]["task"], records[0]["source"], len(records)) == ("layout", "publaynet", 1)


def ocrvqa_file(tmp_path):
    return write_json(
        tmp_path / "dataset.json",
        {
            "B1": {
                "imageURL": "http://ecx.images-amazon.com/images/I/51Y1Z.jpg",
                "questions": ["Who wrote this book?"],
                "answers": ["Erin"],
                "split": 1,
            },
            "B2": {
                "imageURL": "http://ecx.images-amazon.com/images/I/61ABC.gif",
                "questions": ["Is this a comedy book?"],
                "answers": ["No"],
                "split": 2,
            },
            "B3": {"imageURL": "http://x/y.png", "questions": ["Q?"], "answers": ["A"], "split": 3},
        },
    )


def test_ocrvqa_honours_split_and_url_extension(tmp_path):
    path = ocrvqa_file(tmp_path)
    records, skips = run(path, "ocrvqa")
    assert [r["image"] for r in records] == ["B1.jpg"]
    assert skips == ["book outside split 'train'"] * 2
    records, _ = run(path, "ocrvqa", split="val")
    assert [r["image"] for r in records] == ["B2.gif"]
    assert turns(records[0]) == [("<image>\nIs this a comedy book?" + SHORT, "No")]
    with pytest.raises(ConversionError, match="expected train, val or test"):
        run(path, "ocrvqa", split="testA")


def test_textvqa_with_reference_ocr_tokens(tmp_path):
    questions = write_json(
        tmp_path / "TextVQA_0.5.1_val.json",
        {
            "dataset_name": "textvqa",
            "data": [
                {
                    "question": "what is the brand of this camera?",
                    "image_id": "003a8ae2ef43b901",
                    "image_classes": ["Camera"],
                    "image_width": 1024,
                    "image_height": 664,
                    "answers": ["dakota"] * 6 + ["dakota digital"] * 4,
                    "question_id": 34602,
                    "set_name": "val",
                },
                {"question": "what?", "image_id": "ffff", "question_id": 1, "set_name": "test"},
            ],
        },
    )
    ocr = write_json(
        tmp_path / "TextVQA_Rosetta_OCR_v0.2_val.json",
        {
            "data": [
                {
                    "image_id": "003a8ae2ef43b901",
                    "ocr_tokens": ["DAKOTA", "DIGITAL"],
                    "ocr_info": [],
                }
            ]
        },
    )
    records, skips = run(questions, "textvqa", annotations=ocr)
    assert skips == ["question without answers (test split)"]
    assert records[0]["image"] == "train_images/003a8ae2ef43b901.jpg"
    # the paper's prompt: "{question}\nReference OCR token: {OCR}\nAnswer the question ..."
    assert turns(records[0]) == [
        (
            "<image>\nwhat is the brand of this camera?\nReference OCR token: DAKOTA, DIGITAL"
            + SHORT,
            "dakota",
        )
    ]
    plain, _ = run(questions, "textvqa")
    assert turns(plain[0])[0][0] == "<image>\nwhat is the brand of this camera?" + SHORT


def test_vsr_jsonl(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [
        {
            "image": "000000050403.jpg",
            "image_link": "http://images.cocodataset.org/train2017/000000050403.jpg",
            "caption": "The teddy bear is in front of the person.",
            "label": 1,
            "relation": "in front of",
        },
        {
            "image": "000000239417.jpg",
            "image_link": "http://images.cocodataset.org/val2017/000000239417.jpg",
            "caption": "The bench is at the right side of the train.",
            "label": 0,
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    records, _ = run(path, "vsr")
    assert [r["image"] for r in records] == [
        "train2017/000000050403.jpg",
        "val2017/000000239417.jpg",
    ]
    assert turns(records[1]) == [
        (
            '<image>\nIs the following statement "The bench is at the right side of the train." '
            "true or false?" + SHORT,
            "false",
        )
    ]
    assert turns(records[0])[0][1] == "true"


def test_scienceqa(tmp_path):
    path = write_json(
        tmp_path / "problems.json",
        {
            "5": {
                "question": "Which could Gordon's test show?",
                "choices": ["if damaged", "how steady"],
                "answer": 1,
                "hint": "Gordon was an engineer.",
                "image": "image.png",
                "split": "test",
            },
            "12": {
                "question": "Which word is a noun?",
                "choices": ["run", "cat", "blue"],
                "answer": 1,
                "hint": "",
                "image": None,
                "split": "train",
                "lecture": "",
                "solution": "",
            },
        },
    )
    records, skips = run(path, "scienceqa")
    assert skips == ["problem outside split 'train'"]
    assert "image" not in records[0]
    assert turns(records[0]) == [
        (
            "Which word is a noun?\nA. run\nB. cat\nC. blue\n"
            "Answer with the option's letter from the given choices directly.",
            "B",
        )
    ]
    records, _ = run(path, "scienceqa", split="test")
    assert records[0]["image"] == "test/5/image.png"
    assert turns(records[0])[0] == (
        "<image>\nContext: Gordon was an engineer.\nWhich could Gordon's test show?\n"
        "A. if damaged\nB. how steady\nAnswer with the option's letter from the given choices directly.",
        "B",
    )


def mmbench_file(tmp_path):
    header = "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\tsource\tl2-category\tcomment\tsplit"
    image = base64.b64encode(PNG).decode()
    rows = [
        f"0\tWhat is shown?\tnan\tcat\tdog\tnan\tnan\tB\tattr\t{image}\tx\ty\tnan\tdev",
        "1\tWhich animal?\tA pet.\tdog\tcat\tnan\tnan\tA\tattr\t0\tx\ty\tnan\tdev",
        f"2\tTest question\tnan\tx\ty\tnan\tnan\tnan\tattr\t{image}\tx\ty\tnan\ttest",
    ]
    path = tmp_path / "mmbench_dev_en.tsv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_mmbench_tsv_records_and_embedded_images(tmp_path):
    path = mmbench_file(tmp_path)
    items = list(iter_records(path, "mmbench"))
    # row 2 (test split, no answer) is skipped, so its image is not written either
    assert [i.name for i in items if isinstance(i, EmbeddedImage)] == ["0.png"]
    records = [i for i in items if isinstance(i, dict)]
    assert [r["image"] for r in records] == ["0.png", "0.jpg"]
    assert turns(records[0]) == [
        ("<image>\nWhat is shown?\nThere are several options: A. cat\nB. dog", "B")
    ]
    assert turns(records[1])[0][0] == (
        "<image>\nContext: A pet.\nWhich animal?\nThere are several options: A. dog\nB. cat"
    )
    out, images = tmp_path / "mmbench.jsonl", tmp_path / "images"
    options = ConvertOptions(images_out=images)
    summary = convert(path, "mmbench", out, options)
    assert summary.written == 2
    assert sorted(p.name for p in images.iterdir()) == ["0.png"]
    assert (images / "0.png").read_bytes() == PNG


def test_sharegpt_text_only_with_system_role(tmp_path):
    path = write_json(
        tmp_path / "sharegpt.json",
        [
            {
                "id": "a",
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "Hi"},
                    {"from": "gpt", "value": "Hello"},
                    {"from": "human", "value": "unanswered"},
                ],
            },
            {
                "id": "b",
                "conversations": [{"from": "human", "value": "x"}, {"from": "human", "value": "y"}],
            },
        ],
    )
    records, skips = run(path, "sharegpt")
    assert skips == ["item without a human/gpt conversation"]
    assert records[0]["conversations"] == [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello"},
    ]
    assert (records[0]["task"], records[0]["source"]) == ("text_instruct", "sharegpt")


def test_detailed_captions_from_sharegpt4v_layout(tmp_path):
    path = write_json(
        tmp_path / "sharegpt4v_instruct.json",
        [
            {
                "id": "1",
                "image": "coco/train2017/000000000009.jpg",
                "conversations": [
                    {"from": "human", "value": "What do you see happening in this image?\n<image>"},
                    {"from": "gpt", "value": "A plate of food sits on a table. "},
                ],
            },
            {"id": "2", "image": "sam/images/sa_1.jpg", "caption": "A street at dusk."},
        ],
    )
    records, _ = run(path, "detailed-captions")
    assert [turns(r) for r in records] == [
        [
            (
                "<image>\nGenerate a detailed description about the image.",
                "A plate of food sits on a table.",
            )
        ],
        [("<image>\nGenerate a detailed description about the image.", "A street at dusk.")],
    ]
    assert records[0]["image"] == "coco/train2017/000000000009.jpg"


def test_refcoco_refs_reads_the_original_pickle_and_defaults_to_train(tmp_path):
    refs = json.loads((FIXTURES / "refcoco_refs/refs_unc.json").read_text())
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps(refs, protocol=2))
    records, skips = run(path, "refcoco-refs", annotations=FIXTURES / "refcoco_refs/instances.json")
    assert skips == [
        "ref outside split 'train'",
        "ref whose annotation or image is not in the instances file",
    ]
    assert [r["task"] for r in records] == ["rec", "reg"]
    assert turns(records[1])[0][1] == "the lady with the blue shirt"


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "executed"
    payload = _Payload()
    payload.marker = marker
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([payload]))
    with pytest.raises(ConversionError) as info:
        run(path, "refcoco-refs", annotations=FIXTURES / "refcoco_refs/instances.json")
    assert str(info.value) == (
        f"{path}: not a plain-data pickle (refuses to load {os.system.__module__}.system: "
        "only builtin containers and scalars are allowed)"
    )
    assert not marker.exists()
