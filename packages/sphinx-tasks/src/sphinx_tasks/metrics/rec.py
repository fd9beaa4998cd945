"""Referring expression comprehension: Acc@IoU and mean IoU, as the reference scores them.

The reference reads the first ``[...]`` of the answer (``\\[(.*?)\\]``, so no newline inside),
falls back to the text before the first ``]`` when there is no bracket pair, and takes it
only if it splits into exactly 4 ``float()`` values (else the box is (0, 0, 0, 0)). The box
is scaled by the padded square's side, the ground truth shifted into that square, and the
IoU computed in float32 (torch), counted at IoU >= 0.5.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..geometry import Box, SquareFrame
from ..parsing import parse_boxes

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_FIRST_BRACKETS = re.compile(r"\[(.*?)\]")
_ZERO = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class RecScore:
    accuracy: float  # at ``threshold``
    mean_iou: float
    count: int
    ious: list[float]
    accuracy_at: dict[float, float] = field(default_factory=dict)  # Acc@0.1 .. Acc@0.9


def reference_box(answer: str) -> tuple[float, float, float, float]:
    """The reference parse of a predicted [0, 1] box (see the module docstring)."""
    if not isinstance(answer, str):
        return _ZERO
    found = _FIRST_BRACKETS.findall(answer)
    inside = found[0] if found else answer.split("]")[0]
    parts = inside.split(",")
    if len(parts) != 4:
        return _ZERO
    try:
        return tuple(float(part) for part in parts)
    except ValueError:
        return _ZERO


def predicted_box(answer: str, parse: str = "strict") -> Box | None:
    """The predicted square-frame box: the reference parse, or the first box the robust parser finds."""
    if parse == "strict":
        return Box(*reference_box(answer))
    if parse == "robust":
        boxes = parse_boxes(answer).boxes
        return boxes[0] if boxes else None
    raise ValueError(f"parse must be 'strict' or 'robust', got {parse!r}")


def _f32(value: float) -> float:
    """Round to the nearest float32 (inf beyond its range), as a torch float32 tensor holds it."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def _nan_max(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else max(a, b)


def _nan_min(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else min(a, b)


def float32_iou(box: Sequence[float], target: Sequence[float]) -> float:
    """IoU of two x1y1x2y2 boxes with every step rounded to float32 (torchvision's box_iou;
    areas are not clipped, so an inverted box has a negative area)."""
    a = [_f32(v) for v in box]
    b = [_f32(v) for v in target]
    area_a = _f32(_f32(a[2] - a[0]) * _f32(a[3] - a[1]))
    area_b = _f32(_f32(b[2] - b[0]) * _f32(b[3] - b[1]))
    w = _f32(_nan_min(a[2], b[2]) - _nan_max(a[0], b[0]))
    h = _f32(_nan_min(a[3], b[3]) - _nan_max(a[1], b[1]))
    w, h = (w if math.isnan(w) else max(w, 0.0)), (h if math.isnan(h) else max(h, 0.0))
    inter = _f32(w * h)
    union = _f32(_f32(area_a + area_b) - inter)
    if union == 0:
        return math.nan if inter == 0 or math.isnan(inter) else math.copysign(math.inf, inter)
    return _f32(inter / union)


def rec_score(
    answers: Sequence[str],
    targets: Sequence[Box],
    sizes: Sequence[tuple[int, int]],
    threshold: float = 0.5,
    parse: str = "strict",
) -> RecScore:
    """Share of answers whose box has IoU >= threshold with the ground truth (pixels, x1y1x2y2).

    Both boxes are compared in the padded square, in pixels, as the reference does. A NaN
    IoU (empty boxes) counts as a miss and as 0 in the mean.
    """
    if not len(answers) == len(targets) == len(sizes):
        raise ValueError(
            f"answers, targets and sizes differ in length: {len(answers)}, {len(targets)}, {len(sizes)}"
        )
    ious = []
    for answer, target, (width, height) in zip(answers, targets, sizes, strict=True):
        side = SquareFrame(width, height).side
        dx, dy = SquareFrame(width, height).offset
        box = predicted_box(answer, parse)
        if box is None:
            ious.append(0.0)
            continue
        scaled = [_f32(_f32(v) * side) for v in (box.x1, box.y1, box.x2, box.y2)]
        shifted = (target.x1 + dx, target.y1 + dy, target.x2 + dx, target.y2 + dy)
        iou = float32_iou(scaled, shifted)
        ious.append(0.0 if math.isnan(iou) else iou)
    count = len(ious)
    if count == 0:
        return RecScore(0.0, 0.0, 0, [], {t: 0.0 for t in THRESHOLDS})
    at = {t: sum(iou >= t for iou in ious) / count for t in THRESHOLDS}
    return RecScore(sum(iou >= threshold for iou in ious) / count, sum(ious) / count, count, ious, at)
