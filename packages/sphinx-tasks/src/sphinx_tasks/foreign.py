"""Converting grounded text between SPHINX's box format and other grounding MLLMs' formats.

Mentions (an optional name and its boxes) are found in the source text and rewritten in place
in the target format; the prose around them is kept. SPHINX and Shikra give boxes in the padded
square, the others in the unpadded image, so converting between the two frames needs the image
size. Finding is linear in the text (box runs by regex, names by one pass over the tags), and
numbers outside a format's range drop their box with a problem on the mention, never an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from ._house import Registry
from .geometry import Box, SquareFrame
from .parsing import ASCII_SPACE, TagSpan, boxes_from_entries, scan_groups, tag_spans

KOSMOS_GRID = 32


@dataclass(frozen=True)
class Mention:
    """A grounded phrase: text[start:end] holds ``name`` (if the format marks it) and its boxes.

    ``problems`` says which boxes of the mention were dropped or repaired, and why.
    """

    start: int
    end: int
    name: str | None
    boxes: list[Box]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroundingFormat:
    name: str
    frame: str  # "square" (padded square, as SPHINX) or "image" (the unpadded image)
    find: Callable[[str], list[Mention]]
    render: Callable[[str | None, list[Box]], str]


@dataclass(frozen=True)
class GroundingConversion:
    """Converted text, and the problems of the mentions that were dropped or repaired."""

    text: str
    problems: list[str] = field(default_factory=list)


def _named_runs(
    text: str, runs: list[tuple[int, int]], names: list[TagSpan], gap: str
) -> Iterator[tuple[int, int, str | None]]:
    """(start, end, name) per run of boxes; a name is attached when it ends right before the run,
    with only characters of ``gap`` between, and starts after the previous mention."""
    index = -1
    previous_end = 0
    for run_start, run_end in runs:
        while index + 1 < len(names) and names[index + 1].end <= run_start:
            index += 1
        name = names[index] if index >= 0 else None
        if (
            name is not None
            and name.start >= previous_end
            and not text[name.end : run_start].strip(gap)
        ):
            yield name.start, run_end, text[name.inner_start : name.inner_end]
        else:
            yield run_start, run_end, None
        previous_end = run_end


def _unit(value: float) -> float:
    """Clamp to [0, 1] before any scaling, so huge or non-finite values never reach int()."""
    return min(1.0, max(0.0, value)) if value == value else 0.0


def _integer_boxes(
    values: list[int], scale: int, top: int, fmt: str, problems: list[str]
) -> list[Box]:
    """Each four integers in 0..top, divided by ``scale``, make a box; a value above top drops it."""
    boxes = []
    for i in range(0, len(values) - len(values) % 4, 4):
        quad = values[i : i + 4]
        if max(quad) > top:
            problems.append(f"skipped a {fmt} box with {max(quad)} outside 0-{top}")
            continue
        boxes.append(Box(*(v / scale for v in quad)))
    return boxes


def _bracket_render(decimals: int) -> Callable[[list[Box]], str]:
    def render(boxes: list[Box]) -> str:
        return (
            "[" + ";".join(",".join(f"{v:.{decimals}f}" for v in b.as_tuple()) for b in boxes) + "]"
        )

    return render


# SPHINX: <p>name</p> [x1,y1,x2,y2;...], two decimals, padded square.
# Shikra: the phrase then [x1,y1,x2,y2;...] right after it, three decimals, padded square.
def _decimal_mentions(text: str, named: bool) -> list[Mention]:
    """Bracketed boxes on [0, 1] (small excursions clipped, others dropped as parse_boxes does)."""
    groups = scan_groups(text, 1.0, 0.05, [])
    names = tag_spans(text, "<p>", "</p>") if named else []
    runs = [(group.start, group.end) for group in groups]
    mentions = []
    for group, (start, end, name) in zip(
        groups, _named_runs(text, runs, names, ASCII_SPACE), strict=True
    ):
        problems = list(group.problems)
        boxes = boxes_from_entries(group.entries, problems)
        stripped = name.strip() if name is not None else None
        mentions.append(Mention(start, end, stripped or None, boxes, tuple(problems)))
    return mentions


def _find_sphinx(text: str) -> list[Mention]:
    return _decimal_mentions(text, named=True)


def _render_sphinx(name: str | None, boxes: list[Box]) -> str:
    body = _bracket_render(2)([box.clipped() for box in boxes])
    return f"<p>{name}</p> {body}" if name else body


def _find_shikra(text: str) -> list[Mention]:
    return _decimal_mentions(text, named=False)


def _render_shikra(name: str | None, boxes: list[Box]) -> str:
    return (name or "") + _bracket_render(3)([box.clipped() for box in boxes])


def _integer_mentions(
    text: str, run: re.Pattern, number: re.Pattern, tags: tuple[str, str], gap: str, spec
) -> list[Mention]:
    """Mentions whose boxes are runs of integers; ``spec`` is (format, scale, largest value)."""
    fmt, scale, top = spec
    names = tag_spans(text, *tags)
    matches = list(run.finditer(text))
    runs = [(m.start(), m.end()) for m in matches]
    mentions = []
    for match, (start, end, name) in zip(matches, _named_runs(text, runs, names, gap), strict=True):
        problems: list[str] = []
        values = [int(v) for v in number.findall(match.group())]
        boxes = _integer_boxes(values, scale, top, fmt, problems)
        mentions.append(Mention(start, end, name, boxes, tuple(problems)))
    return mentions


# Qwen-VL: <ref>name</ref><box>(x1,y1),(x2,y2)</box>..., integers on [0, 1000), image frame
# (1000 itself is read as the image edge).
_QWEN_BOX = r"<box>\(\d{1,4},\d{1,4}\),\(\d{1,4},\d{1,4}\)</box>"
_QWEN_RUN = re.compile(rf"(?:{_QWEN_BOX})+", re.ASCII)
_QWEN_NUMBER = re.compile(r"\d+", re.ASCII)


def _find_qwen(text: str) -> list[Mention]:
    spec = ("Qwen-VL", 1000, 1000)
    return _integer_mentions(text, _QWEN_RUN, _QWEN_NUMBER, ("<ref>", "</ref>"), "", spec)


def _qwen_int(value: float) -> int:
    return min(999, int(_unit(value) * 1000))


def _render_qwen(name: str | None, boxes: list[Box]) -> str:
    body = "".join(
        f"<box>({_qwen_int(b.x1)},{_qwen_int(b.y1)}),({_qwen_int(b.x2)},{_qwen_int(b.y2)})</box>"
        for b in boxes
    )
    return (f"<ref>{name}</ref>" if name else "") + body


# MiniGPT-v2: <p>name</p> {<x1><y1><x2><y2>}<delim>{...}, integers 0-100, image frame.
_MINIGPT_BOX = r"\{<\d{1,3}><\d{1,3}><\d{1,3}><\d{1,3}>\}"
_MINIGPT_RUN = re.compile(rf"{_MINIGPT_BOX}(?:\s*<delim>\s*{_MINIGPT_BOX})*", re.ASCII)
_ANGLED_NUMBER = re.compile(r"<(\d+)>", re.ASCII)


def _find_minigpt(text: str) -> list[Mention]:
    spec = ("MiniGPT-v2", 100, 100)
    mentions = _integer_mentions(
        text, _MINIGPT_RUN, _ANGLED_NUMBER, ("<p>", "</p>"), ASCII_SPACE, spec
    )
    return [
        Mention(m.start, m.end, (m.name or "").strip() or None, m.boxes, m.problems)
        for m in mentions
    ]


def _minigpt_int(value: float) -> int:
    return int(_unit(value) * 100)


def _render_minigpt(name: str | None, boxes: list[Box]) -> str:
    body = "<delim>".join(
        "{" + "".join(f"<{_minigpt_int(v)}>" for v in b.as_tuple()) + "}" for b in boxes
    )
    return f"<p>{name}</p> {body}" if name else body


# Florence-2: name<loc_x1><loc_y1><loc_x2><loc_y2>..., 1000 bins (floor, 0-999), bin centres back.
_FLORENCE_RUN = re.compile(r"(?:<loc_\d{1,4}>){4,}", re.ASCII)
_FLORENCE_BIN = re.compile(r"<loc_(\d+)>", re.ASCII)


def _find_florence(text: str) -> list[Mention]:
    """A run of <loc_N> tokens names the text right before it, back to the previous tag."""
    mentions = []
    previous_end = 0
    for match in _FLORENCE_RUN.finditer(text):
        start = max(
            text.rfind(">", previous_end, match.start()) + 1,
            text.rfind("<", previous_end, match.start()) + 1,
            previous_end,
        )
        problems: list[str] = []
        bins = [int(v) for v in _FLORENCE_BIN.findall(match.group())]
        if len(bins) % 4:
            problems.append(f"ignored {len(bins) % 4} <loc_> tokens after the last full box")
        boxes = [
            Box(*((q + 0.5) / 1000 for q in box.as_tuple()))
            for box in _integer_boxes(bins, 1, 999, "Florence-2", problems)
        ]
        name = text[start : match.start()].strip()
        mentions.append(Mention(start, match.end(), name or None, boxes, tuple(problems)))
        previous_end = match.end()
    return mentions


def _florence_bin(value: float) -> int:
    return min(999, math.floor(_unit(value) * 1000))


def _render_florence(name: str | None, boxes: list[Box]) -> str:
    body = "".join("".join(f"<loc_{_florence_bin(v)}>" for v in b.as_tuple()) for b in boxes)
    return (name or "") + body


# Kosmos-2: <phrase>name</phrase><object><patch_index_UL><patch_index_LR>...</object>, 32x32 grid.
_KOSMOS_PAIR = r"<patch_index_\d{4}><patch_index_\d{4}>"
_KOSMOS_RUN = re.compile(
    rf"<object>{_KOSMOS_PAIR}(?:</delimiter_of_multi_objects/>{_KOSMOS_PAIR})*</object>", re.ASCII
)
_KOSMOS_INDEX = re.compile(r"<patch_index_(\d{4})>", re.ASCII)


def kosmos_patch_indices(box: Box, grid: int = KOSMOS_GRID) -> tuple[int, int]:
    """Grid cells of the top-left and bottom-right corners (Kosmos-2's rule)."""
    x1, y1, x2, y2 = (_unit(v) for v in box.as_tuple())
    left = min(grid - 1, max(0, math.floor(x1 * grid)))
    top = min(grid - 1, max(0, math.floor(y1 * grid)))
    right = min(grid - 1, max(left, math.ceil(x2 * grid - 1)))
    bottom = min(grid - 1, max(top, math.ceil(y2 * grid - 1)))
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
    cells = KOSMOS_GRID * KOSMOS_GRID
    names = tag_spans(text, "<phrase>", "</phrase>")
    matches = list(_KOSMOS_RUN.finditer(text))
    runs = [(m.start(), m.end()) for m in matches]
    mentions = []
    for match, (start, end, name) in zip(matches, _named_runs(text, runs, names, ""), strict=True):
        problems: list[str] = []
        indices = [int(v) for v in _KOSMOS_INDEX.findall(match.group())]
        boxes = []
        for upper_left, lower_right in zip(indices[::2], indices[1::2], strict=True):
            if max(upper_left, lower_right) >= cells:
                problems.append(
                    f"skipped a Kosmos-2 box with patch index {max(upper_left, lower_right)}"
                    f" outside 0-{cells - 1}"
                )
                continue
            boxes.append(kosmos_box(upper_left, lower_right))
        mentions.append(Mention(start, end, name, boxes, tuple(problems)))
    return mentions


def _render_kosmos(name: str | None, boxes: list[Box]) -> str:
    pairs = []
    for box in boxes:
        upper_left, lower_right = kosmos_patch_indices(box)
        pairs.append(f"<patch_index_{upper_left:04d}><patch_index_{lower_right:04d}>")
    body = "<object>" + "</delimiter_of_multi_objects/>".join(pairs) + "</object>"
    return (f"<phrase>{name}</phrase>" if name else "") + body


_FORMATS: Registry[GroundingFormat] = Registry("grounding format")


class _FormatsView(Mapping):
    """Read-only mapping over the registry, kept so ``GROUNDING_FORMATS[name]`` still works."""

    def __getitem__(self, name: str) -> GroundingFormat:
        return _FORMATS.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_FORMATS.names())

    def __len__(self) -> int:
        return len(_FORMATS.names())


GROUNDING_FORMATS: Mapping[str, GroundingFormat] = _FormatsView()


def register_grounding_format(
    name: str, fmt: GroundingFormat, overwrite: bool = False
) -> GroundingFormat:
    """Make a format known to :func:`find_mentions` and :func:`convert_grounding`."""
    if fmt.frame not in ("square", "image"):
        raise ValueError(f"grounding format {name!r}: frame must be 'square' or 'image'")
    return _FORMATS.register(name, fmt, overwrite=overwrite)


def list_grounding_formats(pattern: str | None = None) -> list[str]:
    """Names of the known formats, optionally filtered by a glob such as ``"*v*"``."""
    return _FORMATS.names(pattern)


def get_grounding_format(name: str) -> GroundingFormat:
    """The format registered under ``name``; an unknown name lists the known ones."""
    return _FORMATS.get(name)


for _fmt in (
    GroundingFormat("sphinx", "square", _find_sphinx, _render_sphinx),
    GroundingFormat("shikra", "square", _find_shikra, _render_shikra),
    GroundingFormat("qwen_vl", "image", _find_qwen, _render_qwen),
    GroundingFormat("minigpt_v2", "image", _find_minigpt, _render_minigpt),
    GroundingFormat("florence2", "image", _find_florence, _render_florence),
    GroundingFormat("kosmos2", "image", _find_kosmos, _render_kosmos),
):
    register_grounding_format(_fmt.name, _fmt)


def find_mentions(text: str, fmt: str) -> list[Mention]:
    """Grounded mentions of a text written in format ``fmt`` (boxes in that format's frame).

    Never raises on the text; boxes with numbers outside the format's range are dropped and
    named in the mention's ``problems``.
    """
    finder = get_grounding_format(fmt).find
    return finder(text) if isinstance(text, str) else []


def convert_grounding_result(
    text: str, source: str, target: str, size: tuple[int, int] | None = None
) -> GroundingConversion:
    """Like :func:`convert_grounding`, also returning the problems met on the way.

    A mention left with no usable box is kept as written, and reported.
    """
    src, dst = get_grounding_format(source), get_grounding_format(target)
    frame = None
    if src.frame != dst.frame:
        if size is None:
            raise ValueError(
                f"converting {source} ({src.frame} frame) to {target} ({dst.frame} frame)"
                " needs size=(width, height)"
            )
        frame = SquareFrame(*size)
    if not isinstance(text, str):
        return GroundingConversion("", [f"expected text, got {type(text).__name__}"])
    pieces = []
    problems: list[str] = []
    position = 0
    for mention in src.find(text):
        problems.extend(mention.problems)
        pieces.append(text[position : mention.start])
        position = mention.end
        if not mention.boxes:
            problems.append(f"kept {text[mention.start : mention.end]!r}: no usable box")
            pieces.append(text[mention.start : mention.end])
            continue
        boxes = mention.boxes
        if frame is not None:
            to_target = frame.box_to_image if src.frame == "square" else frame.box_from_image
            boxes = [to_target(box) for box in boxes]
        pieces.append(dst.render(mention.name, boxes))
    pieces.append(text[position:])
    return GroundingConversion("".join(pieces), problems)


def convert_grounding(
    text: str, source: str, target: str, size: tuple[int, int] | None = None
) -> str:
    """Rewrite every grounded mention of ``text`` from ``source`` format to ``target`` format.

    ``size`` (width, height) is needed when one format uses the padded square and the other the
    image itself. See :func:`convert_grounding_result` for the problems met on the way.
    """
    return convert_grounding_result(text, source, target, size).text
