"""Random JSON values in every field of every converter's input: either records, skips, or
the converter's own one-line error; never another exception."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sphinx_tasks.converters import ConversionError, JsonStreamError, iter_records

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**300), 10**300)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec="utf-8", categories=("Cc", "L", "N", "P")), max_size=8)
    | st.sampled_from(["../x.jpg", "/abs.jpg", "train", "human", "gpt", "system", "1"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)

IMAGE = {"id": 1, "file_name": "a.jpg", "width": 20, "height": 10, "caption": "a dog"}
BOX = {
    "id": 1,
    "image_id": 1,
    "category_id": 1,
    "bbox": [1, 1, 5, 5],
    "iscrowd": 0,
    "keypoints": [1, 1, 2] * 17,
}


def coco(record, where):
    images = [dict(IMAGE, **record)] if where == "image" else [IMAGE]
    annotations = [dict(BOX, **record)] if where == "annotation" else [BOX]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "dog"}]}


# format: (file name, the record with every field the converter reads, how the file holds it)
CASES = {
    "gqa": ("q.json", {"imageId": "1", "question": "Q?", "answer": "a"}, lambda r: {"k": r}),
    "vizwiz": (
        "v.json",
        {"image": "a.jpg", "question": "Q?", "answers": [{"answer": "a"}]},
        lambda r: [r],
    ),
    "aokvqa": (
        "a.json",
        {
            "question": "Q?",
            "image_id": 1,
            "split": "val",
            "choices": ["a", "b"],
            "correct_choice_idx": 1,
            "direct_answers": ["a"],
        },
        lambda r: [r],
    ),
    "ocrvqa": (
        "d.json",
        {"imageURL": "http://x/y.jpg", "questions": ["Q?"], "answers": ["a"], "split": 1},
        lambda r: {"B": r},
    ),
    "textcaps": (
        "t.json",
        {"image_path": "train/a.jpg", "caption_str": "c"},
        lambda r: {"data": [r]},
    ),
    "textvqa": (
        "t.json",
        {"image_id": "a", "question": "Q?", "answers": ["a"]},
        lambda r: {"data": [r]},
    ),
    "scienceqa": (
        "p.json",
        {
            "question": "Q?",
            "choices": ["a", "b"],
            "answer": 0,
            "hint": "h",
            "image": "image.png",
            "split": "train",
        },
        lambda r: {"1": r},
    ),
    "llava-instruct": (
        "l.json",
        {
            "image": "a.jpg",
            "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
        },
        lambda r: [r],
    ),
    "detailed-captions": ("c.json", {"image": "a.jpg", "caption": "long"}, lambda r: [r]),
    "coco-detection": ("i.json", BOX, lambda r: coco(r, "annotation")),
    "coco-keypoints": ("k.json", BOX, lambda r: coco(r, "annotation")),
    "refcoco": ("r.json", IMAGE, lambda r: coco(r, "image")),
    "lvis": ("l.json", dict(IMAGE, coco_url="http://x/val2017/a.jpg"), lambda r: coco(r, "image")),
    "vg-relations": (
        "rel.json",
        {
            "image_id": 1,
            "relationships": [
                {
                    "predicate": "on",
                    "subject": {"x": 1, "y": 1, "w": 2, "h": 2, "name": "a"},
                    "object": {"x": 1, "y": 1, "w": 2, "h": 2, "names": ["b"]},
                }
            ],
        },
        lambda r: [r],
    ),
}
KEYS = [(fmt, key) for fmt, (_, record, _) in CASES.items() for key in record]


def check(fmt, data, text=None):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CASES.get(fmt, ("x.jsonl",))[0]
        path.write_text(text if text is not None else json.dumps(data), encoding="utf-8")
        try:
            list(iter_records(path, fmt))
        except (ConversionError, JsonStreamError) as error:
            assert "\n" not in str(error) and str(path) in str(error)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(KEYS), value=VALUES, drop=st.booleans())
def test_random_field_values_give_records_skips_or_one_line(case, value, drop):
    fmt, key = case
    _, record, wrap = CASES[fmt]
    record = {k: v for k, v in record.items() if k != key} if drop else dict(record, **{key: value})
    check(fmt, wrap(record))


@settings(max_examples=60, deadline=None)
@given(value=VALUES, fmt=st.sampled_from(sorted(CASES)))
def test_random_whole_files(value, fmt):
    check(fmt, value)


@settings(max_examples=60, deadline=None)
@given(row=st.dictionaries(st.sampled_from(["image", "image_link", "caption", "label"]), VALUES))
def test_random_vsr_lines(row):
    check("vsr", None, json.dumps(row) + "\n")
