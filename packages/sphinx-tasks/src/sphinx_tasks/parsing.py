"""Parsers for boxes, detections and keypoints in model text.

They never raise on text: whatever can be recovered is returned together with a list of
problems (human-readable strings) describing what was repaired or skipped. Every scan is
linear in the length of the text: numbers are matched with ASCII-only patterns (so ``float``
never sees a character it refuses) and tags are paired in one pass, never with a lazy ``.*?``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .geometry import COCO_KEYPOINT_NAMES, Box, Keypoints, Point
from .textformat import Detection

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_GROUP = re.compile(rf"\[\s*({_NUMBER}(?:\s*[,;]\s*{_NUMBER})*)\s*(\]|\Z)", re.ASCII)
_FIRST_BRACKET = re.compile(r"\[([^\[\]]*)\]")
ASCII_SPACE = " \t\n\r\f\v"


@dataclass(frozen=True)
class TagSpan:
    """``text[start:end]`` is ``<open>content</close>``; the content is ``text[inner_start:inner_end]``."""

    start: int
    inner_start: int
    inner_end: int
    end: int


def tag_spans(text: str, open_tag: str, close_tag: str) -> list[TagSpan]:
    """Each opening tag closed by the very next tag, in one pass; unclosed openings are skipped."""
    tags = re.compile(f"({re.escape(open_tag)})|{re.escape(close_tag)}")
    spans = []
    pending = None
    for match in tags.finditer(text):
        if match.group(1) is not None:
            pending = match
        elif pending is not None:
            spans.append(TagSpan(pending.start(), pending.end(), match.start(), match.end()))
            pending = None
    return spans


@dataclass
class ParseResult:
    boxes: list[Box] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class DetectionParseResult:
    detections: list[Detection] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class KeypointParseResult:
    keypoints: Keypoints = field(default_factory=Keypoints)
    problems: list[str] = field(default_factory=list)


@dataclass
class Group:
    """One ``[...]`` of numbers at ``text[start:end]``, its entries already on the [0, 1] scale."""

    start: int
    end: int
    entries: list[tuple[float, ...]]
    problems: list[str] = field(default_factory=list)


def _check_scale(scale: float) -> None:
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number (1, 100, 1000, ...), got {scale!r}")


def _normalize(values: list[float], scale: float, tolerance: float, problems: list[str]):
    """Divide by the scale and clip small excursions; None when a value is out of range."""
    if all(0.0 <= value <= scale for value in values):  # the common case, checked quickly
        return tuple(value / scale for value in values)
    result = []
    for value in values:
        if not math.isfinite(value):
            problems.append(f"skipped an entry with a non-finite number {value!r}")
            return None
        scaled = value / scale
        if -tolerance <= scaled < 0 or 1 < scaled <= 1 + tolerance:
            problems.append(f"clipped {value:g} to [0, {scale:g}]")
            scaled = min(1.0, max(0.0, scaled))
        elif not 0 <= scaled <= 1:
            hint = " (is the text on a 0-100 or 0-1000 scale?)" if scale == 1 and value > 1 else ""
            problems.append(f"skipped an entry with {value:g} outside [0, {scale:g}]{hint}")
            return None
        result.append(scaled)
    return tuple(result)


def scan_groups(text: object, scale: float, tolerance: float, problems: list[str]) -> list[Group]:
    _check_scale(scale)
    if not isinstance(text, str):
        problems.append(f"expected text, got {type(text).__name__}")
        return []
    groups = []
    for match in _GROUP.finditer(text):
        found: list[str] = []
        if match.group(2) != "]":
            found.append("closing ']' missing at the end of the text")
        entries = []
        for raw_entry in match.group(1).split(";"):
            numbers = [float(part.strip(ASCII_SPACE)) for part in raw_entry.split(",")]
            normalized = _normalize(numbers, scale, tolerance, found)
            if normalized is not None:
                entries.append(normalized)
        groups.append(Group(match.start(), match.end(), entries, found))
        problems.extend(found)
    return groups


def boxes_from_entries(entries: list[tuple[float, ...]], problems: list[str]) -> list[Box]:
    boxes = []
    for entry in entries:
        if len(entry) % 4 == 0 and len(entry) > 4:
            problems.append(f"read {len(entry)} numbers without ';' as {len(entry) // 4} boxes")
        elif len(entry) != 4:
            problems.append(f"skipped an entry of {len(entry)} numbers (a box needs 4)")
            continue
        for i in range(0, len(entry), 4):
            box = Box(*entry[i : i + 4])
            if box.x1 > box.x2 or box.y1 > box.y2:
                problems.append("swapped corners of a box given bottom-right first")
                box = box.ordered()
            boxes.append(box)
    return boxes


def parse_boxes(text: str, scale: float = 1.0, tolerance: float = 0.05) -> ParseResult:
    """All boxes in the text, in order, on a [0, 1] scale.

    ``scale`` is what the text's numbers count up to (1, 100 or 1000); values up to
    ``tolerance`` outside the range are clipped, further ones drop their box.
    """
    problems: list[str] = []
    boxes = []
    for group in scan_groups(text, scale, tolerance, problems):
        boxes.extend(boxes_from_entries(group.entries, problems))
    return ParseResult(boxes, problems)


def _named_groups(text: object, scale: float, tolerance: float, problems: list[str]):
    """(name, entries) per ``<p>name</p>``; groups before any name get the name ''."""
    groups = scan_groups(text, scale, tolerance, problems)
    if not isinstance(text, str):
        return []
    names = [
        (t.end, text[t.inner_start : t.inner_end].strip()) for t in tag_spans(text, "<p>", "</p>")
    ]
    named: list[tuple[str, list[tuple[float, ...]]]] = [(name, []) for _, name in names]
    unnamed: list[tuple[float, ...]] = []
    name_index = -1
    for group in groups:
        while name_index + 1 < len(names) and names[name_index + 1][0] <= group.start:
            name_index += 1
        if name_index < 0:
            unnamed.extend(group.entries)
        else:
            named[name_index][1].extend(group.entries)
    if unnamed:
        problems.append(f"{len(unnamed)} entries came before any <p>name</p>")
        named.insert(0, ("", unnamed))
    for name, entries in named:
        if not entries:
            problems.append(f"no coordinates after <p>{name}</p>")
    return [(name, entries) for name, entries in named if entries]


def parse_detections(
    text: str, scale: float = 1.0, tolerance: float = 0.05
) -> DetectionParseResult:
    """Named boxes: ``<p>name</p> [..;..] [..]`` gives one Detection with all following boxes."""
    problems: list[str] = []
    detections = []
    for name, entries in _named_groups(text, scale, tolerance, problems):
        boxes = boxes_from_entries(entries, problems)
        if boxes:
            detections.append(Detection(name, boxes))
    return DetectionParseResult(detections, problems)


def _keypoint_name(raw: str) -> str:
    return "_".join(raw.lower().replace("-", " ").replace("_", " ").split())


def parse_keypoints(text: str, scale: float = 1.0, tolerance: float = 0.05) -> KeypointParseResult:
    """One person's keypoints: ``<p>nose</p> [x,y] <p>left_eye</p> [x,y] ...``."""
    problems: list[str] = []
    points: dict[str, Point] = {}
    for raw_name, entries in _named_groups(text, scale, tolerance, problems):
        name = _keypoint_name(raw_name)
        if name not in COCO_KEYPOINT_NAMES:
            problems.append(f"skipped unknown keypoint name {raw_name!r}")
            continue
        pairs = [entry for entry in entries if len(entry) == 2]
        if len(pairs) != len(entries):
            problems.append(f"skipped entries of {name} that are not 2 numbers")
        if not pairs:
            continue
        if name in points or len(pairs) > 1:
            problems.append(f"kept the first of several points for {name}")
        points.setdefault(name, Point(*pairs[0]))
    return KeypointParseResult(Keypoints(points), problems)


def parse_box_reference(text: str) -> Box:
    """The reference evaluation's parse: the first ``[...]`` with 4 numbers, else (0, 0, 0, 0)."""
    zero = Box(0.0, 0.0, 0.0, 0.0)
    if not isinstance(text, str):
        return zero
    match = _FIRST_BRACKET.search(text)
    if match is None:
        return zero
    parts = match.group(1).split(",")
    if len(parts) != 4:
        return zero
    try:  # Python's float(), as the reference: it also reads "inf", "1_0" and other digits
        return Box(*(float(part) for part in parts))
    except ValueError:
        return zero
