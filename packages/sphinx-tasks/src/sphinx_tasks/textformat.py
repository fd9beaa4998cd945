"""Writing boxes, detections and keypoints in SPHINX's text format.

``[x1,y1,x2,y2]`` in the padded-square [0, 1] frame with two decimals and no spaces; boxes of
one object share a bracket, separated by ``;``; names go in ``<p>..</p>`` before their boxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .geometry import Box, Keypoints, Point


@dataclass(frozen=True)
class Detection:
    """A named object and all its boxes."""

    name: str
    boxes: list[Box] = field(default_factory=list)


def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _entry(values: Sequence[float], decimals: int) -> str:
    return ",".join(_number(v, decimals) for v in values)


def format_box(box: Box, decimals: int = 2) -> str:
    return "[" + _entry(box.as_tuple(), decimals) + "]"


def format_boxes(boxes: Iterable[Box], decimals: int = 2) -> str:
    """Boxes of one object in one bracket: ``[a1,b1,c1,d1;a2,b2,c2,d2]``."""
    return "[" + ";".join(_entry(box.as_tuple(), decimals) for box in boxes) + "]"


def format_point(point: Point, decimals: int = 2) -> str:
    return "[" + _entry(point.as_tuple(), decimals) + "]"


def format_named(name: str, body: str) -> str:
    return f"<p>{name}</p> {body}"


def format_detections(
    detections: Iterable[Detection | tuple[str, Sequence[Box]]], decimals: int = 2
) -> str:
    """``<p>name</p> [boxes]`` per object, separated by spaces."""
    parts = []
    for detection in detections:
        name, boxes = (
            (detection.name, detection.boxes) if isinstance(detection, Detection) else detection
        )
        parts.append(format_named(name, format_boxes(boxes, decimals)))
    return " ".join(parts)


def format_keypoints(keypoints: Keypoints, decimals: int = 2) -> str:
    """``<p>nose</p> [x,y] <p>left_eye</p> [x,y] ...`` in COCO order, visible points only."""
    return " ".join(format_named(name, format_point(p, decimals)) for name, p in keypoints.items())
