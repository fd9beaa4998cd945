"""Referring expression comprehension: Acc@IoU and mean IoU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..geometry import Box, SquareFrame
from ..parsing import parse_box_reference, parse_boxes


@dataclass(frozen=True)
class RecScore:
    accuracy: float
    mean_iou: float
    count: int
    ious: list[float]


def predicted_box(answer: str, parse: str = "strict") -> Box | None:
    """The predicted square-frame box: the reference parse, or the first box the robust parser finds."""
    if parse == "strict":
        return parse_box_reference(answer)
    if parse == "robust":
        boxes = parse_boxes(answer).boxes
        return boxes[0] if boxes else None
    raise ValueError(f"parse must be 'strict' or 'robust', got {parse!r}")


def rec_score(
    answers: Sequence[str],
    targets: Sequence[Box],
    sizes: Sequence[tuple[int, int]],
    threshold: float = 0.5,
    parse: str = "strict",
) -> RecScore:
    """Share of answers whose box has IoU >= threshold with the pixel ground truth.

    As in the reference evaluation both boxes are compared in the padded square, in pixels:
    the prediction scaled by the square side, the target shifted by the padding offset.
    """
    if not len(answers) == len(targets) == len(sizes):
        raise ValueError(
            f"answers, targets and sizes differ in length: {len(answers)}, {len(targets)}, {len(sizes)}"
        )
    ious = []
    for answer, target, (width, height) in zip(answers, targets, sizes, strict=True):
        frame = SquareFrame(width, height)
        box = predicted_box(answer, parse)
        if box is None:
            ious.append(0.0)
            continue
        dx, dy = frame.offset
        predicted = box.scaled(frame.side)
        expanded = Box(target.x1 + dx, target.y1 + dy, target.x2 + dx, target.y2 + dy)
        ious.append(predicted.iou(expanded))
    count = len(ious)
    if count == 0:
        return RecScore(0.0, 0.0, 0, [])
    hits = sum(iou >= threshold for iou in ious)
    return RecScore(hits / count, sum(ious) / count, count, ious)
