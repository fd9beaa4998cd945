"""VizWiz training records ask the question as the reference evaluation does.

accessory/eval_mm/annotations/annotation_config.json, "vizwiz_val": the prompt is
"{} When the provided information is insufficient, respond with 'Unanswerable'.\\nAnswer the
question using a single word or phrase." (a space after the question). LLaVA-1.5's VizWiz
questions put the hint on its own line instead; that wording is the named `vizwiz-llava`.
"""

import json

import pytest

from sphinx_tasks.converters import ConvertOptions, Skip, iter_records

HINT = "When the provided information is insufficient, respond with 'Unanswerable'."
SHORT = "Answer the question using a single word or phrase."


@pytest.fixture
def annotations(tmp_path):
    path = tmp_path / "val.json"
    path.write_text(json.dumps([
        {"image": "VizWiz_val_00000007.jpg", "question": "What flavour is this?",
         "answers": [{"answer": "mint"}] * 6 + [{"answer": "unanswerable"}] * 4},
    ]))  # fmt: skip
    return path


def question(path, fmt):
    records = [r for r in iter_records(path, fmt, ConvertOptions()) if not isinstance(r, Skip)]
    assert len(records) == 1
    return records[0]["conversations"][0]["value"], records[0]["conversations"][1]["value"]


def test_default_wording_is_the_reference_evaluation_prompt(annotations):
    text, answer = question(annotations, "vizwiz")
    assert text == "<image>\nWhat flavour is this? " + HINT + "\n" + SHORT
    assert answer == "mint"


def test_llava_wording_is_a_named_choice(annotations):
    text, _ = question(annotations, "vizwiz-llava")
    assert text == "<image>\nWhat flavour is this?\n" + HINT + "\n" + SHORT
