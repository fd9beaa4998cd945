"""Property tests: format -> parse round trips, and parsers that never raise."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from sphinx_tasks import (
    COCO_KEYPOINT_NAMES,
    GROUNDING_FORMATS,
    Box,
    Detection,
    Keypoints,
    Point,
    convert_grounding,
    find_mentions,
    format_boxes,
    format_detections,
    format_keypoints,
    parse_box_reference,
    parse_boxes,
    parse_detections,
    parse_keypoints,
)

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def boxes(draw):
    x1, x2 = sorted((draw(unit), draw(unit)))
    y1, y2 = sorted((draw(unit), draw(unit)))
    return Box(x1, y1, x2, y2)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=12).filter(str.strip)


def close(a: Box, b: Box, tol: float) -> bool:
    return all(abs(u - v) <= tol for u, v in zip(a.as_tuple(), b.as_tuple(), strict=True))


@settings(deadline=None, max_examples=300)
@given(st.lists(boxes(), min_size=1, max_size=4), st.sampled_from([2, 3, 4]))
def test_boxes_round_trip(items, decimals):
    result = parse_boxes(format_boxes(items, decimals))
    assert result.problems == []
    assert len(result.boxes) == len(items)
    for parsed, original in zip(result.boxes, items, strict=True):
        assert close(parsed, original, 0.5 * 10**-decimals + 1e-9)


@settings(deadline=None, max_examples=300)
@given(
    st.lists(st.tuples(names, st.lists(boxes(), min_size=1, max_size=3)), min_size=1, max_size=4)
)
def test_detections_round_trip(items):
    text = format_detections([Detection(n, b) for n, b in items])
    result = parse_detections(text)
    assert result.problems == []
    assert [d.name for d in result.detections] == [n.strip() for n, _ in items]
    for detection, (_, originals) in zip(result.detections, items, strict=True):
        assert len(detection.boxes) == len(originals)
        assert all(
            close(p, o, 0.005 + 1e-9) for p, o in zip(detection.boxes, originals, strict=True)
        )


@settings(deadline=None, max_examples=200)
@given(st.dictionaries(st.sampled_from(COCO_KEYPOINT_NAMES), st.tuples(unit, unit), max_size=17))
def test_keypoints_round_trip(points):
    keypoints = Keypoints({name: Point(*xy) for name, xy in points.items()})
    result = parse_keypoints(format_keypoints(keypoints))
    assert result.problems == []
    assert set(dict(result.keypoints.items())) == set(points)
    for name, point in result.keypoints.items():
        assert abs(point.x - points[name][0]) <= 0.005 + 1e-9
        assert abs(point.y - points[name][1]) <= 0.005 + 1e-9


# Hostile text: pieces of every format's syntax, unclosed tags, control and unicode separator
# characters, other digits, huge and non-finite numbers, glued together in any order.
FRAGMENTS = [
    "<p>", "</p>", "<ref>", "</ref>", "<phrase>", "</phrase>", "<object>", "</object>",
    "<box>", "</box>", "<delim>", "<loc_", "<patch_index_", "</delimiter_of_multi_objects/>",
    "[", "]", "(", ")", "{", "}", "<", ">", ",", ";", ".", "-", "+", "e", "_", " ", "\n", "a",
    "0", "1", "0.5", "999", "1000", "1024", "0001", "1e400", "2e305", "-1e309", "nan", "inf",
    "1" * 40, "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u0661", "\x00", "\ud800",
]  # fmt: skip
hostile_text = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join) | st.text(max_size=40)
FUZZ = settings(deadline=5000, max_examples=400)


@FUZZ
@given(hostile_text)
def test_parse_boxes_never_raises(text):
    result = parse_boxes(text)
    assert all(0 <= v <= 1 for box in result.boxes for v in box.as_tuple())


@FUZZ
@given(hostile_text)
def test_parse_detections_never_raises(text):
    result = parse_detections(text)
    assert all(isinstance(d.name, str) and d.boxes for d in result.detections)


@FUZZ
@given(hostile_text)
def test_parse_keypoints_never_raises(text):
    result = parse_keypoints(text)
    assert set(dict(result.keypoints.items())) <= set(COCO_KEYPOINT_NAMES)


@FUZZ
@given(hostile_text)
def test_parse_box_reference_never_raises(text):
    assert isinstance(parse_box_reference(text), Box)


@FUZZ
@given(hostile_text, st.sampled_from(sorted(GROUNDING_FORMATS)))
def test_find_mentions_never_raises(text, fmt):
    for mention in find_mentions(text, fmt):
        assert 0 <= mention.start <= mention.end <= len(text)
        assert all(math.isfinite(v) for box in mention.boxes for v in box.as_tuple())


@FUZZ
@given(
    hostile_text,
    st.sampled_from(sorted(GROUNDING_FORMATS)),
    st.sampled_from(sorted(GROUNDING_FORMATS)),
)
def test_convert_grounding_never_raises(text, source, target):
    assert isinstance(convert_grounding(text, source, target, (37, 91)), str)


# Worst-case coordinate error after sphinx -> format -> sphinx (square image, so the frames
# agree): the format's quantisation plus 0.005 for SPHINX's two decimals.
QUANTISATION = {"qwen_vl": 0.001, "minigpt_v2": 0.01, "florence2": 0.001, "kosmos2": 1 / 32}


@settings(deadline=None, max_examples=100)
@given(
    st.lists(st.tuples(names, st.lists(boxes(), min_size=1, max_size=3)), min_size=1, max_size=3),
    st.sampled_from(sorted(QUANTISATION)),
)
def test_foreign_formats_round_trip(items, fmt):
    text = format_detections([Detection(n, b) for n, b in items])
    back = convert_grounding(
        convert_grounding(text, "sphinx", fmt, (64, 64)), fmt, "sphinx", (64, 64)
    )
    result = parse_detections(back)
    assert [d.name for d in result.detections] == [n.strip() for n, _ in items]
    tolerance = QUANTISATION[fmt] + 0.005 + 1e-9
    for detection, (_, originals) in zip(result.detections, items, strict=True):
        assert len(detection.boxes) == len(originals)
        for parsed, original in zip(detection.boxes, originals, strict=True):
            assert close(parsed, original, tolerance)
