"""Converting grounded text between SPHINX's box format and other grounding MLLMs' formats.

Mentions (an optional name and its boxes) are found in the source text and rewritten in place
in the target format; the prose around them is kept. SPHINX and Shikra give boxes in the padded
square, the others in the unpadded image, so converting between the two frames needs the image
size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from .geometry import Box, SquareFrame
from .parsing import _GROUP

KOSMOS_GRID = 32


@dataclass(frozen=True)
class Mention:
    """A grounded phrase: text[start:end] holds ``name`` (if the format marks it) and its boxes."""

    start: int
    end: int
    name: str | None
    boxes: list[Box]


@dataclass(frozen=True)
class GroundingFormat:
    name: str
    frame: str  # "square" (padded square, as SPHINX) or "image" (the unpadded image)
    find: Callable[[str], list[Mention]]
    render: Callable[[str | None, list[Box]], str]


def _decimal_boxes(body: str, scale: float = 1.0) -> list[Box]:
    boxes = []
    for entry in body.split(";"):
        values = [float(v) / scale for v in entry.split(",")]
        if len(values) == 4 and all(math.isfinite(v) for v in values):
            boxes.append(Box(*values))
    return boxes


def _bracket_render(decimals: int) -> Callable[[list[Box]], str]:
    def render(boxes: list[Box]) -> str:
        return (
            "[" + ";".join(",".join(f"{v:.{decimals}f}" for v in b.as_tuple()) for b in boxes) + "]"
        )

    return render


# SPHINX: <p>name</p> [x1,y1,x2,y2;...], two decimals, padded square.
_SPHINX_MENTION = re.compile(rf"(?:<p>(?P<name>.*?)</p>\s*)?{_GROUP.pattern}", re.DOTALL)


def _find_sphinx(text: str) -> list[Mention]:
    mentions = []
    for match in _SPHINX_MENTION.finditer(text):
        boxes = _decimal_boxes(match.group(2))
        name = match.group("name")
        mentions.append(Mention(match.start(), match.end(), name.strip() if name else None, boxes))
    return mentions


def _render_sphinx(name: str | None, boxes: list[Box]) -> str:
    body = _bracket_render(2)(boxes)
    return f"<p>{name}</p> {body}" if name else body


# Shikra: the phrase then [x1,y1,x2,y2;...] right after it, three decimals, padded square.
def _find_shikra(text: str) -> list[Mention]:
    return [
        Mention(m.start(), m.end(), None, _decimal_boxes(m.group(1))) for m in _GROUP.finditer(text)
    ]


def _render_shikra(name: str | None, boxes: list[Box]) -> str:
    return (name or "") + _bracket_render(3)(boxes)


# Qwen-VL: <ref>name</ref><box>(x1,y1),(x2,y2)</box>..., integers in [0, 1000), image frame.
_QWEN_BOX = r"<box>\((\d{1,4}),(\d{1,4})\),\((\d{1,4}),(\d{1,4})\)</box>"
_QWEN_MENTION = re.compile(rf"(?:<ref>(?P<name>.*?)</ref>)?(?P<boxes>(?:{_QWEN_BOX})+)", re.DOTALL)


def _find_qwen(text: str) -> list[Mention]:
    mentions = []
    for match in _QWEN_MENTION.finditer(text):
        boxes = [
            Box(*(int(v) / 1000 for v in m.groups()))
            for m in re.finditer(_QWEN_BOX, match.group("boxes"))
        ]
        mentions.append(Mention(match.start(), match.end(), match.group("name"), boxes))
    return mentions


def _qwen_int(value: float) -> int:
    return min(999, max(0, int(value * 1000)))


def _render_qwen(name: str | None, boxes: list[Box]) -> str:
    body = "".join(
        f"<box>({_qwen_int(b.x1)},{_qwen_int(b.y1)}),({_qwen_int(b.x2)},{_qwen_int(b.y2)})</box>"
        for b in boxes
    )
    return (f"<ref>{name}</ref>" if name else "") + body


# MiniGPT-v2: <p>name</p> {<x1><y1><x2><y2>}<delim>{...}, integers 0-100, image frame.
_MINIGPT_BOX = r"\{<(\d{1,3})><(\d{1,3})><(\d{1,3})><(\d{1,3})>\}"
_MINIGPT_MENTION = re.compile(
    rf"(?:<p>(?P<name>.*?)</p>\s*)?(?P<boxes>{_MINIGPT_BOX}(?:\s*<delim>\s*{_MINIGPT_BOX})*)",
    re.DOTALL,
)


def _find_minigpt(text: str) -> list[Mention]:
    mentions = []
    for match in _MINIGPT_MENTION.finditer(text):
        boxes = [
            Box(*(int(v) / 100 for v in m.groups()))
            for m in re.finditer(_MINIGPT_BOX, match.group("boxes"))
        ]
        name = match.group("name")
        mentions.append(Mention(match.start(), match.end(), name.strip() if name else None, boxes))
    return mentions


def _minigpt_int(value: float) -> int:
    return min(100, max(0, int(value * 100)))


def _render_minigpt(name: str | None, boxes: list[Box]) -> str:
    body = "<delim>".join(
        "{" + "".join(f"<{_minigpt_int(v)}>" for v in b.as_tuple()) + "}" for b in boxes
    )
    return f"<p>{name}</p> {body}" if name else body


# Florence-2: name<loc_x1><loc_y1><loc_x2><loc_y2>..., 1000 bins (floor, 0-999), bin centres back.
_FLORENCE_RUN = re.compile(r"(?:<loc_\d{1,4}>){4,}")


def _find_florence(text: str) -> list[Mention]:
    """A run of <loc_N> tokens names the text right before it, back to the previous tag."""
    mentions = []
    previous_end = 0
    for match in _FLORENCE_RUN.finditer(text):
        start = max(
            previous_end,
            text.rfind(">", 0, match.start()) + 1,
            text.rfind("<", 0, match.start()) + 1,
        )
        bins = [int(v) for v in re.findall(r"<loc_(\d{1,4})>", match.group())]
        usable = len(bins) - len(bins) % 4
        boxes = [Box(*((q + 0.5) / 1000 for q in bins[i : i + 4])) for i in range(0, usable, 4)]
        name = text[start : match.start()].strip()
        mentions.append(Mention(start, match.end(), name or None, boxes))
        previous_end = match.end()
    return mentions


def _florence_bin(value: float) -> int:
    return min(999, max(0, math.floor(value * 1000)))


def _render_florence(name: str | None, boxes: list[Box]) -> str:
    body = "".join("".join(f"<loc_{_florence_bin(v)}>" for v in b.as_tuple()) for b in boxes)
    return (name or "") + body


# Kosmos-2: <phrase>name</phrase><object><patch_index_UL><patch_index_LR>...</object>, 32x32 grid.
_KOSMOS_PAIR = r"<patch_index_(\d{4})><patch_index_(\d{4})>"
_KOSMOS_MENTION = re.compile(
    rf"(?:<phrase>(?P<name>.*?)</phrase>)?<object>(?P<pairs>{_KOSMOS_PAIR}"
    rf"(?:</delimiter_of_multi_objects/>{_KOSMOS_PAIR})*)</object>",
    re.DOTALL,
)


def kosmos_patch_indices(box: Box, grid: int = KOSMOS_GRID) -> tuple[int, int]:
    """Grid cells of the top-left and bottom-right corners (Kosmos-2's rule)."""
    left = min(grid - 1, max(0, math.floor(box.x1 * grid)))
    top = min(grid - 1, max(0, math.floor(box.y1 * grid)))
    right = min(grid - 1, max(left, math.ceil(box.x2 * grid - 1)))
    bottom = min(grid - 1, max(top, math.ceil(box.y2 * grid - 1)))
    return top * grid + left, bottom * grid + right


def kosmos_box(upper_left: int, lower_right: int, grid: int = KOSMOS_GRID) -> Box:
    """Box of two grid cells: cell centres, or whole cells when both share a row or column."""
    cell = 1.0 / grid
    ul_x, ul_y = upper_left % grid, upper_left // grid
    lr_x, lr_y = lower_right % grid, lower_right // grid
    if ul_x == lr_x or ul_y == lr_y:
        return Box(ul_x * cell, ul_y * cell, (lr_x + 1) * cell, (lr_y + 1) * cell)
    half = cell / 2
    return Box(ul_x * cell + half, ul_y * cell + half, lr_x * cell + half, lr_y * cell + half)


def _find_kosmos(text: str) -> list[Mention]:
    mentions = []
    for match in _KOSMOS_MENTION.finditer(text):
        pairs = re.findall(_KOSMOS_PAIR, match.group("pairs"))
        boxes = [kosmos_box(int(a), int(b)) for a, b in pairs]
        mentions.append(Mention(match.start(), match.end(), match.group("name"), boxes))
    return mentions


def _render_kosmos(name: str | None, boxes: list[Box]) -> str:
    pairs = []
    for box in boxes:
        upper_left, lower_right = kosmos_patch_indices(box)
        pairs.append(f"<patch_index_{upper_left:04d}><patch_index_{lower_right:04d}>")
    body = "<object>" + "</delimiter_of_multi_objects/>".join(pairs) + "</object>"
    return (f"<phrase>{name}</phrase>" if name else "") + body


GROUNDING_FORMATS: dict[str, GroundingFormat] = {
    fmt.name: fmt
    for fmt in (
        GroundingFormat("sphinx", "square", _find_sphinx, _render_sphinx),
        GroundingFormat("shikra", "square", _find_shikra, _render_shikra),
        GroundingFormat("qwen_vl", "image", _find_qwen, _render_qwen),
        GroundingFormat("minigpt_v2", "image", _find_minigpt, _render_minigpt),
        GroundingFormat("florence2", "image", _find_florence, _render_florence),
        GroundingFormat("kosmos2", "image", _find_kosmos, _render_kosmos),
    )
}


def _get_format(name: str) -> GroundingFormat:
    try:
        return GROUNDING_FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown grounding format {name!r}; known: {sorted(GROUNDING_FORMATS)}"
        ) from None


def find_mentions(text: str, fmt: str) -> list[Mention]:
    """Grounded mentions of a text written in format ``fmt`` (boxes in that format's frame)."""
    return _get_format(fmt).find(text)


def convert_grounding(
    text: str, source: str, target: str, size: tuple[int, int] | None = None
) -> str:
    """Rewrite every grounded mention of ``text`` from ``source`` format to ``target`` format.

    ``size`` (width, height) is needed when one format uses the padded square and the other the
    image itself.
    """
    src, dst = _get_format(source), _get_format(target)
    frame = None
    if src.frame != dst.frame:
        if size is None:
            raise ValueError(
                f"converting {source} ({src.frame} frame) to {target} ({dst.frame} frame) needs size=(width, height)"
            )
        frame = SquareFrame(*size)
    pieces = []
    position = 0
    for mention in src.find(text):
        boxes = mention.boxes
        if frame is not None:
            to_target = frame.box_to_image if src.frame == "square" else frame.box_from_image
            boxes = [to_target(box) for box in boxes]
        pieces.append(text[position : mention.start])
        pieces.append(dst.render(mention.name, boxes))
        position = mention.end
    pieces.append(text[position:])
    return "".join(pieces)
