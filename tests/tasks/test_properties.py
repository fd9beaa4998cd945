"""Property tests: format -> parse round trips, and parsers that never raise."""

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


# Text made mostly of the characters the parsers look for, so that near-misses are common.
model_text = st.text(alphabet="[]();,.-+eE0123456789 <>/p_ab\n{}", max_size=60) | st.text(
    max_size=40
)


@settings(deadline=None, max_examples=10_000)
@given(model_text)
def test_parsers_never_raise(text):
    for parse in (parse_boxes, parse_detections, parse_keypoints):
        result = parse(text)
        assert isinstance(result.problems, list)
    assert isinstance(parse_box_reference(text), Box)
    for fmt in GROUNDING_FORMATS:
        find_mentions(text, fmt)


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
