"""Question-answer datasets: VQAv2, OK-VQA, A-OKVQA, GQA, VizWiz, OCR-VQA, and TextCaps captions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from .. import instructions as ins
from .base import ConversionError, ConvertOptions, Record, Skip, chunks, most_common, record
from .jsonstream import iter_array, iter_json, iter_object


def _vqa_answers(path: Path) -> dict[int, str]:
    """question_id -> answer: the annotators' consensus answer, else the most common one."""
    answers = {}
    for item in iter_array(path, "annotations"):
        if not isinstance(item, dict) or "question_id" not in item:
            continue
        answer = item.get("multiple_choice_answer")
        if not answer:
            answer = most_common(
                [
                    a.get("answer")
                    for a in item.get("answers", [])
                    if isinstance(a, dict) and a.get("answer")
                ]
            )
        if answer:
            answers[item["question_id"]] = answer
    return answers


def _vqa(path: Path, options: ConvertOptions, source: str) -> Iterator[Record | Skip]:
    if options.annotations is None:
        raise ConversionError(
            f"{source}: pass the answers file with --annotations (SOURCE is the questions file)"
        )
    answers = _vqa_answers(options.annotations)
    # The image folder ("val2014"): from the file's data_subtype, else from its name.
    named = re.search(r"(train|val|test)\d{4}", path.name)
    subtype = named.group(0) if named else None
    for key, value in iter_json(path, stream=("questions",)):
        if key == "data_subtype":
            subtype = value
        if key != "questions":
            continue
        if subtype is None:
            raise ConversionError(
                f"{path}: no 'data_subtype' (e.g. train2014) before 'questions', nor one in the file name"
            )
        if not isinstance(value, dict) or not all(
            k in value for k in ("question_id", "image_id", "question")
        ):
            yield Skip("question without question_id, image_id or question")
            continue
        answer = answers.get(value["question_id"])
        if answer is None:
            yield Skip("question without an answer")
            continue
        image = options.image_path(f"COCO_{subtype}_{int(value['image_id']):012d}.jpg")
        yield record(image, [(ins.short_vqa_instruction(value["question"]), answer)], "vqa", source)


def vqav2(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """VQAv2: SOURCE is the questions JSON, --annotations the answers JSON."""
    return _vqa(path, options, "vqav2")


def okvqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """OK-VQA: the same file layout as VQAv2."""
    return _vqa(path, options, "okvqa")


def aokvqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """A-OKVQA: a multiple-choice record and a short-answer record per question."""
    for item in iter_array(path):
        if not isinstance(item, dict) or "question" not in item or "image_id" not in item:
            yield Skip("item without question or image_id")
            continue
        image = options.image_path(
            f"{item.get('split', 'train')}2017/{int(item['image_id']):012d}.jpg"
        )
        choices = item.get("choices")
        correct = item.get("correct_choice_idx")
        if isinstance(choices, list) and isinstance(correct, int) and 0 <= correct < len(choices):
            letter = ins.option_letters(len(choices))[correct]
            question = ins.multiple_choice_instruction(item["question"], choices)
            yield record(image, [(question, letter)], "multiple_choice", "aokvqa")
        else:
            yield Skip("question without choices and correct_choice_idx")
        answer = most_common(
            [a for a in item.get("direct_answers", []) if isinstance(a, str) and a]
        )
        if answer is None:
            yield Skip("question without direct answers")
            continue
        yield record(
            image, [(ins.short_vqa_instruction(item["question"]), answer)], "vqa", "aokvqa"
        )


def gqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """GQA questions JSON (an object keyed by question id)."""
    for _, item in iter_object(path):
        if not isinstance(item, dict) or not all(
            k in item for k in ("imageId", "question", "answer")
        ):
            yield Skip("question without imageId, question or answer")
            continue
        image = options.image_path(f"{item['imageId']}.jpg")
        yield record(
            image, [(ins.short_vqa_instruction(item["question"]), item["answer"])], "vqa", "gqa"
        )


def vizwiz(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """VizWiz-VQA annotations (a list); the most common of the 10 answers is the target."""
    for item in iter_array(path):
        if not isinstance(item, dict) or "image" not in item or "question" not in item:
            yield Skip("item without image or question")
            continue
        answer = most_common(
            [
                a["answer"]
                for a in item.get("answers", [])
                if isinstance(a, dict) and a.get("answer")
            ]
        )
        if answer is None:
            yield Skip("question without answers")
            continue
        if answer.lower() == "unanswerable":
            answer = "Unanswerable"
        image = options.image_path(item["image"])
        yield record(image, [(ins.vizwiz_instruction(item["question"]), answer)], "vqa", "vizwiz")


def ocrvqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """OCR-VQA dataset.json: per book cover, its questions and answers as rounds of one chat."""
    for key, item in iter_object(path):
        questions = item.get("questions") if isinstance(item, dict) else None
        answers = item.get("answers") if isinstance(item, dict) else None
        if not (isinstance(questions, list) and isinstance(answers, list)) or len(questions) != len(
            answers
        ):
            yield Skip("entry without matching questions and answers")
            continue
        if not questions:
            yield Skip("entry without questions")
            continue
        turns = [
            (ins.short_vqa_instruction(q), str(a)) for q, a in zip(questions, answers, strict=True)
        ]
        image = options.image_path(f"{key}.jpg")
        for chunk in chunks(turns, options.max_turns):
            yield record(image, chunk, "vqa", "ocrvqa")


def textcaps(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """TextCaps JSON ("data" list): one short-caption record per caption."""
    for item in iter_array(path, "data"):
        if not isinstance(item, dict) or "image_path" not in item:
            yield Skip("item without image_path")
            continue
        caption = item.get("caption_str")
        if not caption:
            yield Skip("item without a caption (test split)")
            continue
        image = options.image_path(item["image_path"])
        yield record(image, [(ins.SHORT_CAPTION, caption)], "caption", "textcaps")
