"""Readers of the benchmarks' official local layouts (no hub, no converted copies).

Each loader takes ``data`` (the folder of the benchmark's own files), ``images`` (the image
folder, when it lives elsewhere, e.g. COCO) and a split, and returns :class:`EvalSample`s in
the files' order. Paths read from the files are confined to the image folder.
"""

from __future__ import annotations

import base64
import csv
import json
import pickle
import sys
from pathlib import Path

from sphinx_train._house import confined_path
from sphinx_train.evaluation.registry import EvalSample

REFER_SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
OPTION_LETTERS = "ABCDEFGHI"


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: not found (expected the benchmark's official file)"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None


def _one_of(folder: Path, names: list[str]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: none of {', '.join(names)} found")


def _field(record: dict, key: str, where: str):
    try:
        return record[key]
    except (KeyError, TypeError):
        raise ValueError(f"{where}: missing key {key!r}") from None


class _PlainUnpickler(pickle.Unpickler):
    """Reads pickles of builtin containers and scalars only; any class or function is refused,
    so nothing in the file can run."""

    def find_class(self, module: str, name: str):
        raise ValueError(f"refs pickle names {module}.{name}; only plain data is accepted")


def _read_refs(folder: Path, split_by: str) -> list[dict]:
    json_path, pickle_path = folder / f"refs({split_by}).json", folder / f"refs({split_by}).p"
    if json_path.is_file():
        return _read_json(json_path)
    if not pickle_path.is_file():
        raise FileNotFoundError(f"{folder}: neither refs({split_by}).p nor refs({split_by}).json")
    with open(pickle_path, "rb") as handle:
        return _PlainUnpickler(handle, encoding="latin1").load()


def load_refer(dataset: str):
    """RefCOCO / RefCOCO+ / RefCOCOg (the refer layout: ``refs(unc|umd).p`` and
    ``instances.json``), one sample per referring sentence; targets are x1y1x2y2 pixels."""

    def load(data: Path, images: Path | None, split: str) -> list[EvalSample]:
        refs = _read_refs(data, REFER_SPLIT_BY[dataset])
        instances = _read_json(data / "instances.json")
        pictures = {image["id"]: image for image in instances["images"]}
        boxes = {annotation["id"]: annotation["bbox"] for annotation in instances["annotations"]}
        image_root = images or data / "images"
        samples = []
        for ref in refs:
            if ref.get("split") != split:
                continue
            picture = pictures[ref["image_id"]]
            x, y, w, h = boxes[ref["ann_id"]]
            path = confined_path(image_root, picture["file_name"], what="image")
            for number, sentence in enumerate(ref["sentences"]):
                samples.append(EvalSample(
                    f"{ref['ref_id']}-{number}", sentence["sent"], str(path), [x, y, x + w, y + h],
                    {"width": picture["width"], "height": picture["height"]},
                ))  # fmt: skip
        return samples

    return load


def load_pope(data: Path, images: Path | None, split: str) -> list[EvalSample]:
    """POPE: ``coco_pope_<split>.json``, one JSON object per line (question_id, image, text, label)."""
    path = _one_of(data, [f"coco_pope_{split}.json", f"coco_pope_{split}.jsonl"])
    samples = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{path}:{number}: not a JSON object") from None
            where = f"{path}:{number}"
            image = confined_path(images or data, _field(row, "image", where), what="image")
            samples.append(EvalSample(str(_field(row, "question_id", where)),
                                      _field(row, "text", where), str(image),
                                      _field(row, "label", where)))  # fmt: skip
    return samples


def load_mme(data: Path, images: Path | None, split: str) -> list[EvalSample]:
    """MME_Benchmark_release_version: a folder per subtask with ``<image>.txt`` files of two
    "question<TAB>answer" lines, beside the images or under ``questions_answers_YN/`` + ``images/``."""
    from sphinx_tasks.metrics import MME_COGNITION, MME_PERCEPTION

    samples = []
    for subtask in (*MME_PERCEPTION, *MME_COGNITION):
        folder = data / subtask
        if not folder.is_dir():
            continue
        split_layout = (folder / "questions_answers_YN").is_dir()
        texts = folder / "questions_answers_YN" if split_layout else folder
        image_folder = folder / "images" if split_layout else folder
        for text in sorted(texts.glob("*.txt")):
            candidates = [image_folder / (text.stem + ext) for ext in (".jpg", ".png", ".jpeg")]
            image = next((c for c in candidates if c.is_file()), None)
            if image is None:
                raise FileNotFoundError(f"{text}: no image {text.stem}.jpg/.png beside it")
            lines = [line for line in text.read_text(encoding="utf-8").splitlines() if line]
            for number, line in enumerate(lines):
                question, tab, answer = line.partition("\t")
                if not tab:
                    raise ValueError(f"{text}:{number + 1}: expected 'question<TAB>answer'")
                samples.append(EvalSample(f"{subtask}/{text.stem}/{number}", question,
                                          str(image), answer.strip(),
                                          {"subtask": subtask, "image": text.stem}))  # fmt: skip
    if not samples:
        raise FileNotFoundError(f"{data}: no MME subtask folders (existence/, count/, ...)")
    return samples


def load_vqa_pair(questions: str, annotations: str, image_name: str):
    """VQAv2 / OKVQA: the official questions and annotations JSON; COCO image names."""

    def load(data: Path, images: Path | None, split: str) -> list[EvalSample]:
        asked = _read_json(data / questions.format(split=split))["questions"]
        answers = {a["question_id"]: a for a in _read_json(data / annotations.format(split=split))[
            "annotations"]}  # fmt: skip
        root = images or data / f"{split}2014"
        samples = []
        for question in asked:
            humans = [a["answer"] for a in answers[question["question_id"]]["answers"]]
            name = image_name.format(split=split, image_id=question["image_id"])
            samples.append(EvalSample(str(question["question_id"]), question["question"],
                                      str(confined_path(root, name, what="image")), humans))  # fmt: skip
        return samples

    return load


def load_textvqa(data: Path, images: Path | None, split: str) -> list[EvalSample]:
    """TextVQA: ``TextVQA_0.5.1_<split>.json`` (``data`` list); images ``train_images/<id>.jpg``.
    With ``TextVQA_Rosetta_OCR_v0.2_<split>.json`` beside it, each sample carries its image's
    OCR tokens (``meta["ocr_tokens"]``, for the ``ocr`` prompt)."""
    rows = _read_json(data / f"TextVQA_0.5.1_{split}.json")["data"]
    ocr_path = data / f"TextVQA_Rosetta_OCR_v0.2_{split}.json"
    ocr = None
    if ocr_path.is_file():
        ocr = {str(_field(entry, "image_id", str(ocr_path))): list(entry.get("ocr_tokens", []))
               for entry in _read_json(ocr_path)["data"]}  # fmt: skip
    root = images or data / "train_images"
    return [EvalSample(str(row["question_id"]), row["question"],
                       str(confined_path(root, f"{row['image_id']}.jpg", what="image")),
                       list(row["answers"]),
                       {} if ocr is None else {"ocr_tokens": ocr.get(str(row["image_id"]), [])})
            for row in rows]  # fmt: skip


def load_vizwiz(data: Path, images: Path | None, split: str) -> list[EvalSample]:
    """VizWiz VQA: ``<split>.json`` (image, question, answers); images in ``<split>/``."""
    rows = _read_json(data / f"{split}.json")
    root = images or data / split
    return [EvalSample(Path(row["image"]).stem, row["question"],
                       str(confined_path(root, row["image"], what="image")),
                       [a["answer"] for a in row["answers"]]) for row in rows]  # fmt: skip


def load_gqa(data: Path, images: Path | None, split: str) -> list[EvalSample]:
    """GQA: ``<split>_balanced_questions.json`` (id -> imageId, question, answer); ``images/``."""
    rows = _read_json(data / f"{split}_balanced_questions.json")
    root = images or data / "images"
    return [EvalSample(qid, row["question"],
                       str(confined_path(root, f"{row['imageId']}.jpg", what="image")),
                       row["answer"]) for qid, row in rows.items()]  # fmt: skip


def _tsv_rows(data: Path, split: str) -> tuple[Path, list[dict]]:
    if data.is_file():
        path = data
    else:
        found = sorted(p for p in data.glob("*.tsv") if split.lower() in p.name.lower())
        if not found:
            raise FileNotFoundError(f"{data}: no .tsv file with {split!r} in its name")
        path = found[0]
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as handle:
        return path, list(csv.DictReader(handle, delimiter="\t"))


def _present(value: str | None) -> bool:
    return value is not None and value.strip() not in ("", "nan", "NaN", "None")


def load_choice_tsv(circular: bool):
    """MMBench / SEED TSV (index, question, [hint], A.., answer, base64 image). With
    ``circular``, each question is also asked with its options rotated (MMBench's circular
    evaluation), unless the file already holds the rotations (index >= 1e6)."""

    def load(data: Path, images: Path | None, split: str) -> list[EvalSample]:
        path, rows = _tsv_rows(data, split)
        has_rotations = any(int(row["index"]) >= 1_000_000 for row in rows)
        samples = []
        for number, row in enumerate(rows, 2):
            letters = [c for c in OPTION_LETTERS if _present(row.get(c))]
            if not letters or row.get("answer", "").strip() not in letters:
                raise ValueError(f"{path}:{number}: expected options A.. and an answer among them")
            options = [row[c] for c in letters]
            image = base64.b64decode(_field(row, "image", f"{path}:{number}"))
            hint = row.get("hint") if _present(row.get("hint")) else None
            group = int(row["index"]) % 1_000_000
            shifts = range(len(options)) if circular and not has_rotations else [0]
            for shift in shifts:
                rotated = options[shift:] + options[:shift]
                answer = letters[rotated.index(options[letters.index(row["answer"].strip())])]
                suffix = f"-r{shift}" if len(shifts) > 1 else ""
                samples.append(EvalSample(f"{row['index']}{suffix}", row["question"], image,
                                          answer, {"options": rotated, "hint": hint,
                                                   "group": group}))  # fmt: skip
        return samples

    return load


def load_scienceqa(data: Path, images: Path | None, split: str) -> list[EvalSample]:
    """ScienceQA: ``problems.json`` and ``pid_splits.json``; the questions with an image
    (``images/<split>/<pid>/image.png``), as the reference evaluates."""
    problems = _read_json(data / "problems.json")
    ids = _read_json(data / "pid_splits.json")[split]
    root = images or data / "images"
    samples = []
    for pid in ids:
        problem = problems[pid]
        if not problem.get("image"):
            continue
        image = confined_path(root, f"{split}/{pid}/{problem['image']}", what="image")
        samples.append(EvalSample(pid, problem["question"], str(image),
                                  OPTION_LETTERS[int(problem["answer"])],
                                  {"options": problem["choices"],
                                   "hint": problem.get("hint") or ""}))  # fmt: skip
    return samples
