"""The demo's benchmarks, registered with sphinx-train's evaluation runner.

REC and VQA reuse the built-in RefCOCO and VQAv2 tasks' prompts, parsers and scorers with a
loader for the demo's held-out scenes; detection has its own scorer (F1 at IoU 0.5, names
must match). The data folder holds ``heldout.jsonl`` and ``images/``, as ``write_data``
leaves them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sphinx_tasks import Box, instructions, parse_detections

from .._house import confined_path
from .scenes import HeldOutScene, detection_counts, f1

REC, VQA, DETECTION = "demo-rec", "demo-vqa", "demo-detection"
SPLIT = "heldout"
INDEX = "heldout.jsonl"


def write_data(scenes: list[HeldOutScene], folder: Path) -> None:
    """The held-out scenes as PNG files and one JSON line each (what the loaders read)."""
    (folder / "images").mkdir(parents=True)
    with open(folder / INDEX, "w", encoding="utf-8") as handle:
        for scene in scenes:
            name = f"images/{scene.id}.png"
            scene.image.save(folder / name)
            row = {
                "id": scene.id, "image": name, "size": list(scene.image.size),
                "phrase": scene.phrase, "target": scene.target,
                "objects": [{"kind": o.kind, "colour": o.colour, "size": o.size,
                             "box": list(o.box)} for o in scene.objects],
                "vqa_question": scene.vqa_question, "vqa_answer": scene.vqa_answer,
            }
            handle.write(json.dumps(row) + "\n")


def _rows(data: Path, split: str) -> list[dict]:
    if split != SPLIT:
        raise ValueError(f"split {split!r}: the demo's tasks have only {SPLIT!r}")
    path = Path(data) / INDEX
    if not path.is_file():
        raise ValueError(f"{path}: no such file; expected the demo's held-out index")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _image(data: Path, row: dict) -> str:
    return str(confined_path(data, row["image"], what="image"))


def _load_rec(data: Path, images: Path | None, split: str):
    from sphinx_train.evaluation import EvalSample

    samples = []
    for row in _rows(data, split):
        width, height = row["size"]
        box = row["objects"][row["target"]]["box"]
        pixels = [box[0] * width, box[1] * height, box[2] * width, box[3] * height]
        samples.append(EvalSample(row["id"], row["phrase"], _image(data, row), pixels,
                                  {"width": width, "height": height}))
    return samples


def _load_vqa(data: Path, images: Path | None, split: str):
    from sphinx_train.evaluation import EvalSample

    return [EvalSample(row["id"], row["vqa_question"], _image(data, row), [row["vqa_answer"]] * 10)
            for row in _rows(data, split)]


def _load_detection(data: Path, images: Path | None, split: str):
    from sphinx_train.evaluation import EvalSample

    return [EvalSample(row["id"], instructions.detect_all_instruction(), _image(data, row),
                       [[o["kind"], *o["box"]] for o in row["objects"]])
            for row in _rows(data, split)]


def _detection_parse(sample, answer: str, variant: str) -> list:
    return [[d.name, *box.as_tuple()] for d in parse_detections(answer).detections
            for box in d.boxes]


def _named_boxes(entries) -> list[tuple[str, Box]]:
    return [(entry[0], Box(*map(float, entry[1:5]))) for entry in entries]


def _detection_score(samples, parsed, variant):
    totals, scores = [0, 0, 0], []
    for sample, predicted in zip(samples, parsed, strict=True):
        counts = detection_counts(_named_boxes(predicted), _named_boxes(sample.target))
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        scores.append(f1(*counts))
    hits, predictions, truths = totals
    return {
        "f1": 100.0 * f1(*totals),
        "precision": 100.0 * hits / max(predictions, 1),
        "recall": 100.0 * hits / max(truths, 1),
    }, scores


def register_demo_tasks() -> None:
    """Register (or refresh) the three demo tasks; safe to call more than once."""
    from sphinx_train.evaluation import EvalTask, Prompt, get_task, register_task

    described = "the sphinx-demo held-out synthetic scenes"
    register_task(REC, dataclasses.replace(get_task("refcoco"), loader=_load_rec, splits=(SPLIT,),
                                           description=f"REC on {described}"), overwrite=True)
    register_task(VQA, dataclasses.replace(get_task("vqav2"), loader=_load_vqa, splits=(SPLIT,),
                                           description=f"counting VQA on {described}"),
                  overwrite=True)
    register_task(DETECTION, EvalTask(
        _load_detection, [Prompt("sphinx", lambda sample: (sample.question, ""))], 160,
        _detection_parse, _detection_score, (SPLIT,), description=f"detection on {described}",
    ), overwrite=True)
