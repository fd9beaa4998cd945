import pytest

from sphinx_tasks import (
    Box,
    Point,
    parse_box_reference,
    parse_boxes,
    parse_detections,
    parse_keypoints,
)


def test_reference_format():
    result = parse_boxes("[0.26,0.23,0.52,0.82]")
    assert result.boxes == [Box(0.26, 0.23, 0.52, 0.82)]
    assert result.problems == []


def test_spaces_decimals_and_prose():
    text = "The box is [ 0.1 , 0.2345,0.3,0.40 ] and also [.5,0.5,1,1.0]."
    assert parse_boxes(text).boxes == [Box(0.1, 0.2345, 0.3, 0.4), Box(0.5, 0.5, 1, 1)]


def test_integer_scales():
    assert parse_boxes("[10,20,30,40]", scale=100).boxes == [Box(0.1, 0.2, 0.3, 0.4)]
    assert parse_boxes("[100, 200, 300, 400]", scale=1000).boxes == [Box(0.1, 0.2, 0.3, 0.4)]
    result = parse_boxes("[10,20,30,40]")
    assert result.boxes == []
    assert "0-100 or 0-1000" in result.problems[0]


def test_swapped_corners_are_fixed_and_flagged():
    result = parse_boxes("[0.5,0.6,0.1,0.2]")
    assert result.boxes == [Box(0.1, 0.2, 0.5, 0.6)]
    assert any("swapped" in p for p in result.problems)


def test_slightly_outside_is_clipped_and_flagged():
    result = parse_boxes("[-0.02,0.1,1.03,0.5]")
    assert result.boxes == [Box(0.0, 0.1, 1.0, 0.5)]
    assert len([p for p in result.problems if "clipped" in p]) == 2


def test_missing_closing_bracket_at_end():
    result = parse_boxes("Sure: [0.1,0.2,0.3,0.4")
    assert result.boxes == [Box(0.1, 0.2, 0.3, 0.4)]
    assert any("missing" in p for p in result.problems)
    assert parse_boxes("[0.1,0.2,0.3,0.4 and more").boxes == []


def test_several_boxes_in_one_bracket_and_wrong_counts():
    result = parse_boxes("[0.1,0.1,0.2,0.2;0.3,0.3,0.4,0.4;0.5,0.5]")
    assert result.boxes == [Box(0.1, 0.1, 0.2, 0.2), Box(0.3, 0.3, 0.4, 0.4)]
    assert any("2 numbers" in p for p in result.problems)
    eight = parse_boxes("[0.1,0.1,0.2,0.2,0.3,0.3,0.4,0.4]")
    assert len(eight.boxes) == 2 and eight.problems


@pytest.mark.parametrize("text", ["", "no boxes here", "[a,b,c,d]", "[]", "[[[", None, 42])
def test_garbage_gives_nothing_without_raising(text):
    result = parse_boxes(text)
    assert result.boxes == []


def test_detections_several_boxes_per_name():
    text = (
        "I see <p>two dogs</p> [0.10,0.20,0.30,0.40;0.50,0.50,0.60,0.70] "
        "and <p>a cat</p> [0.00,0.00,0.10,0.10] [0.20,0.20,0.30,0.30]. <p>bird</p> nowhere"
    )
    result = parse_detections(text)
    assert [(d.name, len(d.boxes)) for d in result.detections] == [("two dogs", 2), ("a cat", 2)]
    assert result.detections[1].boxes[1] == Box(0.2, 0.2, 0.3, 0.3)
    assert any("bird" in p for p in result.problems)


def test_detections_unnamed_boxes_are_kept_and_flagged():
    result = parse_detections("[0.1,0.1,0.2,0.2] <p>x</p> [0.3,0.3,0.4,0.4]")
    assert [d.name for d in result.detections] == ["", "x"]
    assert any("before any" in p for p in result.problems)


def test_keypoints():
    text = "<p>nose</p> [0.50,0.20] <p>Left Eye</p> [0.52,0.18] <p>tail</p> [0.1,0.1] <p>nose</p> [0.4,0.4]"
    result = parse_keypoints(text)
    assert dict(result.keypoints.items()) == {
        "nose": Point(0.5, 0.2),
        "left_eye": Point(0.52, 0.18),
    }
    assert any("tail" in p for p in result.problems)
    assert any("first of several" in p for p in result.problems)


def test_reference_parse_is_strict():
    assert parse_box_reference("x [0.1,0.2,0.3,0.4] [0.5,0.5,0.6,0.6]") == Box(0.1, 0.2, 0.3, 0.4)
    assert parse_box_reference("[0.1, 0.2, 0.3, 0.4]") == Box(0.1, 0.2, 0.3, 0.4)
    zero = Box(0, 0, 0, 0)
    assert parse_box_reference("[0.1,0.2,0.3]") == zero
    assert parse_box_reference("[0.1,0.2,0.3,0.4;0.5,0.5,0.6,0.6]") == zero
    assert parse_box_reference("0.1,0.2,0.3,0.4") == zero
    assert parse_box_reference("[a,b,c,d]") == zero


def test_bad_scale_is_a_usage_error():
    with pytest.raises(ValueError, match="scale"):
        parse_boxes("[1,2,3,4]", scale=0)


@pytest.mark.parametrize("control", ["\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028"])
def test_unicode_separators_next_to_numbers_do_not_raise(control):
    # str.split / \s treat these as whitespace but float() refuses them
    text = f"<p>dog</p> [0.1{control},0.2,0.3,0.4] [0.1,0.2,0.3,0.4{control}]"
    for parse in (parse_boxes, parse_detections, parse_keypoints):
        assert isinstance(parse(text).problems, list)
    assert parse_boxes(f"[0.1,0.2,0.3,0.4] [{control}0.5,0.5,0.6,0.6]").boxes[0] == Box(
        0.1, 0.2, 0.3, 0.4
    )


def test_non_ascii_digits_are_not_numbers():
    assert parse_boxes("[\u0661,0,0,0]").boxes == []  # ARABIC-INDIC DIGIT ONE


def test_huge_and_non_finite_numbers_are_skipped_and_named():
    result = parse_boxes("[1e400,0,0.5,0.5] [2e305,0,1,1] [0.1,0.1,0.2,0.2]")
    assert result.boxes == [Box(0.1, 0.1, 0.2, 0.2)]
    assert any("non-finite" in p for p in result.problems)
    assert any("2e+305 outside" in p for p in result.problems)


def test_a_name_never_spans_two_mentions():
    result = parse_detections("<p>a</p> and <p>b</p> [0.1,0.1,0.2,0.2]")
    assert [d.name for d in result.detections] == ["b"]
    assert any("<p>a</p>" in p for p in result.problems)
    # an unclosed opening is skipped, the next closed one names the boxes
    unclosed = parse_detections("<p>x <p>cat</p> [0.1,0.1,0.2,0.2]")
    assert [d.name for d in unclosed.detections] == ["cat"]
