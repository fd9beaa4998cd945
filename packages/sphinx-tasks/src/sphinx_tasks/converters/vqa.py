"""Question-answer datasets: VQAv2, OK-VQA, A-OKVQA, GQA, VizWiz, OCR-VQA, TextVQA, VSR, and
TextCaps captions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from .. import instructions as ins
from .base import ConversionError, ConvertOptions, Record, Skip, chunks, most_common, record
from .fields import Fields
from .jsonstream import iter_array, iter_json, iter_lines, iter_object

_SPLIT_IN_NAME = re.compile(r"(train|val|test)(\d{4})?")


def _answer_texts(item: Fields, key: str = "answers") -> list[str]:
    """Non-empty ``answer`` strings of a list of answer objects."""
    answers = item.array(key, [])
    texts = [
        Fields(a, f"{item.where}: {key}[{i}]").text("answer", "") for i, a in enumerate(answers)
    ]
    return [text for text in texts if text]


def _vqa_answers(path: Path) -> dict[object, str]:
    """question_id -> answer: the annotators' consensus answer, else the most common one."""
    answers = {}
    for index, value in enumerate(iter_array(path, "annotations")):
        item = Fields(value, f"{path}: annotations[{index}]")
        if not item.has("question_id"):
            continue
        answer = item.text("multiple_choice_answer", "") or most_common(_answer_texts(item))
        if answer:
            answers[item.identifier("question_id")] = answer
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
    index = 0
    for key, value in iter_json(path, stream=("questions",)):
        if key == "data_subtype":
            if not isinstance(value, str):
                raise ConversionError(f"{path}: key 'data_subtype': expected a string")
            subtype = value
        if key != "questions":
            continue
        if subtype is None:
            raise ConversionError(
                f"{path}: no 'data_subtype' (e.g. train2014) before 'questions', "
                "nor one in the file name"
            )
        item = Fields(value, f"{path}: questions[{index}]")
        index += 1
        if not all(item.has(k) for k in ("question_id", "image_id", "question")):
            yield Skip("question without question_id, image_id or question")
            continue
        answer = answers.get(item.identifier("question_id"))
        question = item.text("question")
        image_id = item.integer("image_id")
        if answer is None:
            yield Skip("question without an answer")
            continue
        image = options.image_path(f"COCO_{subtype}_{image_id:012d}.jpg", item.where)
        yield record(image, [(ins.short_vqa_instruction(question), answer)], "vqa", source)


def vqav2(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """VQAv2: SOURCE is the questions JSON, --annotations the answers JSON."""
    return _vqa(path, options, "vqav2")


def okvqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """OK-VQA: the same file layout as VQAv2."""
    return _vqa(path, options, "okvqa")


def aokvqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """A-OKVQA: a multiple-choice record and a short-answer record per question."""
    named = _SPLIT_IN_NAME.search(path.name)
    default_split = named.group(1) if named else "train"
    for index, value in enumerate(iter_array(path)):
        item = Fields(value, f"{path}: [{index}]")
        if not item.has("question") or not item.has("image_id"):
            yield Skip("item without question or image_id")
            continue
        question = item.text("question")
        split = item.text("split", default_split)
        image = options.image_path(f"{split}2017/{item.integer('image_id'):012d}.jpg", item.where)
        choices = item.strings("choices", None)
        correct = item.integer("correct_choice_idx", None)
        if choices and correct is not None and 0 <= correct < len(choices) <= 26:
            letter = ins.option_letters(len(choices))[correct]
            prompt = ins.multiple_choice_instruction(question, choices)
            yield record(image, [(prompt, letter)], "multiple_choice", "aokvqa")
        else:
            yield Skip("question without choices and correct_choice_idx")
        answer = most_common([a for a in item.strings("direct_answers", []) if a])
        if answer is None:
            yield Skip("question without direct answers")
            continue
        yield record(image, [(ins.short_vqa_instruction(question), answer)], "vqa", "aokvqa")


def gqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """GQA questions JSON (an object keyed by question id)."""
    for key, value in iter_object(path):
        item = Fields(value, f"{path}: question {key!r}")
        if not all(item.has(k) for k in ("imageId", "question", "answer")):
            yield Skip("question without imageId, question or answer")
            continue
        image = options.image_path(f"{item.identifier('imageId')}.jpg", item.where)
        turn = (ins.short_vqa_instruction(item.text("question")), item.text("answer"))
        yield record(image, [turn], "vqa", "gqa")


def vizwiz(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """VizWiz-VQA annotations (a list); the most common of the 10 answers is the target. The
    question is asked as the reference evaluation asks it (a space before the hint), so a model
    trained on these records sees its benchmark's wording."""
    return _vizwiz(path, options, ins.get_instruction("vizwiz_val").format)


def vizwiz_llava(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """VizWiz-VQA with LLaVA-1.5's wording (the hint on its own line), for mixtures evaluated
    with LLaVA's prompts."""
    return _vizwiz(path, options, ins.vizwiz_instruction)


def _vizwiz(path: Path, options: ConvertOptions, instruction) -> Iterator[Record | Skip]:
    for index, value in enumerate(iter_array(path)):
        item = Fields(value, f"{path}: [{index}]")
        if not item.has("image") or not item.has("question"):
            yield Skip("item without image or question")
            continue
        image = options.image_path(item.text("image"), item.where)
        question = item.text("question")
        answer = most_common(_answer_texts(item))
        if answer is None:
            yield Skip("question without answers")
            continue
        if answer.lower() == "unanswerable":
            answer = "Unanswerable"
        yield record(image, [(instruction(question), answer)], "vqa", "vizwiz")


# OCR-VQA's dataset.json marks each book's split with a number (its loadDataset.py).
_OCRVQA_SPLITS = {1: "train", 2: "val", 3: "test"}


def _url_suffix(item: Fields, key: str) -> str:
    """The image file extension the dataset's downloader takes from the image URL."""
    suffix = PurePosixPath(urlsplit(item.text(key, "")).path).suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,5}", suffix) else ".jpg"


def ocrvqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """OCR-VQA dataset.json: per book cover of ``--split`` (default train), its questions and
    answers as rounds of one chat; the image is ``<id><extension of imageURL>``."""
    wanted = options.wanted_split
    if wanted not in _OCRVQA_SPLITS.values():
        raise ConversionError(f"ocrvqa: --split {wanted!r}: expected train, val or test")
    for key, value in iter_object(path):
        item = Fields(value, f"{path}: book {key!r}")
        split = _OCRVQA_SPLITS.get(item.integer("split", 1))
        if split is None:
            raise item.error("split", "1 (train), 2 (val) or 3 (test)")
        if split != wanted:
            yield Skip(f"book outside split {wanted!r}")
            continue
        questions, answers = item.strings("questions", []), item.strings("answers", [])
        if len(questions) != len(answers):
            yield Skip("entry without matching questions and answers")
            continue
        if not questions:
            yield Skip("entry without questions")
            continue
        turns = [(ins.short_vqa_instruction(q), a) for q, a in zip(questions, answers, strict=True)]
        image = options.image_path(f"{key}{_url_suffix(item, 'imageURL')}", item.where)
        for chunk in chunks(turns, options.max_turns):
            yield record(image, chunk, "vqa", "ocrvqa")


def _textcaps_image(relative: str) -> str:
    """TextCaps JSON says ``train/<id>.jpg``; the released zip unpacks to ``train_images/``."""
    folder, _, name = relative.partition("/")
    return f"{folder}_images/{name}" if folder in ("train", "test") and name else relative


def textcaps(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """TextCaps JSON ("data" list): one short-caption record per caption."""
    for index, value in enumerate(iter_array(path, "data")):
        item = Fields(value, f"{path}: data[{index}]")
        if not item.has("image_path"):
            yield Skip("item without image_path")
            continue
        image = options.image_path(_textcaps_image(item.text("image_path")), item.where)
        caption = item.text("caption_str", "")
        if not caption:
            yield Skip("item without a caption (test split)")
            continue
        yield record(image, [(ins.SHORT_CAPTION, caption)], "caption", "textcaps")


def _ocr_tokens(path: Path | None) -> dict[object, list[str]] | None:
    """image_id -> OCR tokens from a TextVQA Rosetta OCR file (``{"data": [...]}``)."""
    if path is None:
        return None
    tokens = {}
    for index, value in enumerate(iter_array(path, "data")):
        item = Fields(value, f"{path}: data[{index}]")
        tokens[item.identifier("image_id")] = item.strings("ocr_tokens", [])
    return tokens


def textvqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """TextVQA_0.5.1_<split>.json ("data" list); images in ``train_images/<image_id>.jpg``.

    With the Rosetta OCR file as --annotations, questions carry the reference's
    "Reference OCR token:" line; the target is the most common of the 10 answers.
    """
    ocr = _ocr_tokens(options.annotations)
    for index, value in enumerate(iter_array(path, "data")):
        item = Fields(value, f"{path}: data[{index}]")
        if not item.has("image_id") or not item.has("question"):
            yield Skip("question without image_id or question")
            continue
        image_id = item.identifier("image_id")
        question = item.text("question")
        image = options.image_path(f"train_images/{image_id}.jpg", item.where)
        answer = most_common([a for a in item.strings("answers", []) if a])
        if answer is None:
            yield Skip("question without answers (test split)")
            continue
        if ocr is None:
            prompt = ins.short_vqa_instruction(question)
        else:
            prompt = ins.textvqa_instruction(question, ocr.get(image_id, []))
        yield record(image, [(prompt, answer)], "vqa", "textvqa")


def vsr(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """Visual Spatial Reasoning JSON lines (``caption``, ``label``, ``image``, ``image_link``):
    "Is the following statement ... true or false?" answered true / false. The image sits in
    the COCO 2017 folder named by its link (``train2017/<image>``)."""
    for number, value in iter_lines(path):
        item = Fields(value, f"{path}:{number}")
        caption = item.text("caption")
        label = item.data.get("label")
        if label not in (0, 1) or isinstance(label, float):
            raise item.error("label", "0 (false) or 1 (true)")
        name = item.text("image")
        link = PurePosixPath(urlsplit(item.text("image_link", "")).path)
        relative = f"{link.parent.name}/{name}" if link.parent.name else name
        question = f'Is the following statement "{caption.strip()}" true or false?'
        answer = "true" if label else "false"
        image = options.image_path(relative, item.where)
        yield record(image, [(ins.short_vqa_instruction(question), answer)], "vqa", "vsr")
