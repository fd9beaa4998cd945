"""OKVQA, TextVQA, VizWiz, GQA and SEED through the runner, on tiny files in the official
layouts, with sphinx-nano.

A random nano model answers nonsense, so each test runs twice: the first run generates (and
fills the response cache), then the cached answers are replaced by hand-written ones and the
second run must score those, generating nothing. Expected scores are worked out by hand from
the official rules, written out next to each case.
"""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import folders, picture, png_bytes, run_with_answers

# Official VQA accuracy (GT-Vision-Lab/VQA vqaEval.py): the humans' answers and the prediction
# are normalised (lower case, digit words to digits, articles and punctuation dropped) only when
# the 10 humans disagree; the score is the mean over the 10 leave-one-out subsets of
# min(1, matches / 3).
VQA_CASES = [
    # (humans, prediction, expected score)
    (["tea"] * 10, "tea", 1.0),  # 9 matches in every subset
    (["two"] * 2 + ["three"] * 8, "2", 0.6),  # "two" -> "2": (2 * 1/3 + 8 * 2/3) / 10
    (["a dog"] * 4 + ["cat"] * 6, "Dog", 1.0),  # "a dog" -> "dog", "Dog" -> "dog": >= 3 left
    (["Tea"] * 10, "tea", 0.0),  # unanimous humans: nothing is normalised, case differs
    (["red"] * 5 + ["blue"] * 5, "green", 0.0),
]
VQA_MEAN = 100 * (1.0 + 0.6 + 1.0 + 0.0 + 0.0) / 5


def test_okvqa(nano, tmp_path):
    data, images = folders(tmp_path, "okvqa", "val2014")
    questions, annotations, answers = [], [], {}
    for i, (humans, prediction, _) in enumerate(VQA_CASES):
        picture(i).save(images / f"COCO_val2014_{i + 3:012d}.jpg")
        questions.append({"question_id": 500 + i, "image_id": i + 3, "question": f"Drink {i}?"})
        annotations.append({"question_id": 500 + i, "image_id": i + 3, "answer_type": "other",
                            "answers": [{"answer": a, "raw_answer": a, "answer_confidence": "yes",
                                         "answer_id": k + 1} for k, a in enumerate(humans)]})  # fmt: skip
        answers[str(500 + i)] = prediction
    (data / "OpenEnded_mscoco_val2014_questions.json").write_text(
        json.dumps({"questions": questions})
    )
    (data / "mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": annotations}))
    result, samples = run_with_answers(nano, "okvqa", "val", data, images, tmp_path, answers)
    check_vqa(result, [samples[str(500 + i)] for i in range(5)])
    assert samples["500"]["prompt"].count("Drink 0?\nAnswer the question using a single word") == 1


def check_vqa(result, samples):
    assert result["n"] == len(VQA_CASES)
    assert [s["score"] for s in samples] == pytest.approx([case[2] for case in VQA_CASES])
    assert result["accuracy"] == pytest.approx(VQA_MEAN)


def test_textvqa(nano, tmp_path):
    data, images = folders(tmp_path, "textvqa", "textvqa/train_images")
    rows, answers = [], {}
    for i, (humans, prediction, _) in enumerate(VQA_CASES):
        picture(i).save(images / f"0a{i}f.jpg")
        rows.append({"question_id": 34602 + i, "question": f"what brand {i}?", "image_id": f"0a{i}f",
                     "answers": humans, "set_name": "val"})  # fmt: skip
        answers[str(34602 + i)] = prediction
    (data / "TextVQA_0.5.1_val.json").write_text(json.dumps({"dataset_name": "textvqa",
                                                             "data": rows}))  # fmt: skip
    result, samples = run_with_answers(nano, "textvqa", "val", data, None, tmp_path, answers)
    check_vqa(result, [samples[str(34602 + i)] for i in range(5)])
    assert samples["34602"]["prompt"].count("what brand 0?\nAnswer the question") == 1


def test_textvqa_ocr_prompt_reads_the_rosetta_tokens(tmp_path):
    from sphinx_train.evaluation.registry import get_task

    (tmp_path / "TextVQA_0.5.1_val.json").write_text(json.dumps({"data": [
        {"question_id": 1, "question": "what brand?", "image_id": "ab", "answers": ["sony"] * 10},
        {"question_id": 2, "question": "what year?", "image_id": "cd", "answers": ["1999"] * 10},
    ]}))  # fmt: skip
    task = get_task("textvqa")
    plain = task.loader(tmp_path, None, "val")
    with pytest.raises(ValueError, match="needs TextVQA_Rosetta_OCR"):
        task.prompt("ocr").build(plain[0])
    (tmp_path / "TextVQA_Rosetta_OCR_v0.2_val.json").write_text(json.dumps({"data": [
        {"image_id": "ab", "ocr_tokens": ["SONY", "cyber-shot"]}]}))  # fmt: skip
    samples = task.loader(tmp_path, None, "val")
    # LLaVA-1.5's llava_textvqa_val_v051_ocr questions: tokens joined by ", " on their own line
    assert [task.prompt("ocr").build(s)[0] for s in samples] == [
        "what brand?\nReference OCR token: SONY, cyber-shot\n"
        "Answer the question using a single word or phrase.",
        "what year?\nReference OCR token: \nAnswer the question using a single word or phrase.",
    ]
    assert task.prompt().build(samples[0])[0] == (
        "what brand?\nAnswer the question using a single word or phrase.")  # fmt: skip


def test_vizwiz(nano, tmp_path):
    data, images = folders(tmp_path, "vizwiz", "vizwiz/val")
    rows, answers = [], {}
    for i, (humans, prediction, _) in enumerate(VQA_CASES):
        name = f"VizWiz_val_{i:08d}.jpg"
        picture(i).save(images / name)
        rows.append(
            {
                "image": name,
                "question": f"What is this {i}?",
                "answerable": 1,
                "answers": [{"answer": a, "answer_confidence": "yes"} for a in humans],
            }
        )
        answers[f"VizWiz_val_{i:08d}"] = prediction
    (data / "val.json").write_text(json.dumps(rows))
    result, samples = run_with_answers(nano, "vizwiz", "val", data, None, tmp_path, answers)
    check_vqa(result, [samples[f"VizWiz_val_{i:08d}"] for i in range(5)])
    # annotation_config.json "vizwiz_val": a space (not a newline) before the hint
    assert ("What is this 0? When the provided information is insufficient, respond with "
            "'Unanswerable'.\nAnswer the question using a single word or phrase.") in (
        samples["VizWiz_val_00000000"]["prompt"])  # fmt: skip


def test_gqa(nano, tmp_path):
    # LLaVA's convert_gqa_for_eval.py: prediction.rstrip('.').lower(); GQA's eval.py: == gold
    cases = {"201": ("yes", "Yes.", 1.0), "202": ("left", "left", 1.0),
             "203": ("table", "the table", 0.0), "204": ("no", "No..", 1.0)}  # fmt: skip
    data, images = folders(tmp_path, "gqa", "gqa/images")
    questions = {}
    for i, (qid, (gold, _, _)) in enumerate(cases.items()):
        picture(i).save(images / f"n{qid}.jpg")
        questions[qid] = {"imageId": f"n{qid}", "question": f"Is it {qid}?", "answer": gold,
                          "fullAnswer": gold, "isBalanced": True}  # fmt: skip
    (data / "testdev_balanced_questions.json").write_text(json.dumps(questions))
    answers = {qid: case[1] for qid, case in cases.items()}
    result, samples = run_with_answers(nano, "gqa", "testdev", data, None, tmp_path, answers)
    assert [samples[q]["score"] for q in cases] == [case[2] for case in cases.values()]
    assert result["accuracy"] == pytest.approx(75.0) and result["n"] == 4


def test_seed(nano, tmp_path):
    # (options, right letter, answer, letter it picks); LLaVA's prompt, no answer prefix
    cases = [
        (["cat", "dog", "cow", "pig"], "B", "B", "B"),
        (["cat", "dog", "cow", "pig"], "C", "(C)", "C"),
        (["one", "two", "three", "four"], "D", "The answer is D.", "D"),
        (["red", "green", "blue", "black"], "A", "green", "B"),  # the option's own text
        (["up", "down", "left", "right"], "A", "E", None),
    ]  # no option E: no letter
    data = tmp_path / "seed"
    data.mkdir()
    header = ["index", "question", "A", "B", "C", "D", "answer", "category", "image"]
    lines = ["\t".join(header)]
    for i, (options, right, _, _) in enumerate(cases):
        lines.append("\t".join([str(i), f"Which one {i}?", *options, right, "Instance Identity",
                                base64.b64encode(png_bytes(i)).decode()]))  # fmt: skip
    (data / "SEEDBench_IMG.tsv").write_text("\n".join(lines) + "\n")
    answers = {str(i): case[2] for i, case in enumerate(cases)}
    result, samples = run_with_answers(nano, "seed", "img", data, None, tmp_path, answers)
    assert [samples[str(i)]["parsed"] for i in range(5)] == [case[3] for case in cases]
    assert [samples[str(i)]["score"] for i in range(5)] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert result["accuracy"] == pytest.approx(60.0) and result["n"] == 5
    assert "circular_accuracy" not in result
    assert (
        samples["0"]["prompt"].count(
            "Which one 0?\nA. cat\nB. dog\nC. cow\nD. pig\n"
            "Answer with the option's letter from the given choices directly."
        )
        == 1
    )
