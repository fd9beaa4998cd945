import pytest

from sphinx_tasks import (
    GROUNDING_FORMATS,
    Box,
    UnknownNameError,
    convert_grounding,
    convert_grounding_result,
    find_mentions,
    get_grounding_format,
    list_grounding_formats,
    register_grounding_format,
)
from sphinx_tasks.foreign import kosmos_box, kosmos_patch_indices

SIZE = (200, 100)  # square side 200, image 50 px below the square's top


def test_sphinx_to_qwen_vl_maps_square_to_image_frame():
    text = "A <p>dog</p> [0.10,0.30,0.60,0.55] sits."
    # square (0.1, 0.3, 0.6, 0.55) -> pixels (20, 10, 120, 60) -> image (0.1, 0.1, 0.6, 0.6)
    assert convert_grounding(text, "sphinx", "qwen_vl", SIZE) == (
        "A <ref>dog</ref><box>(100,100),(600,600)</box> sits."
    )
    back = convert_grounding(
        "A <ref>dog</ref><box>(100,100),(600,600)</box> sits.", "qwen_vl", "sphinx", SIZE
    )
    assert back == text


def test_shikra_three_decimals_same_frame():
    assert convert_grounding("<p>a man</p> [0.12,0.34,0.56,0.78]", "sphinx", "shikra") == (
        "a man[0.120,0.340,0.560,0.780]"
    )
    assert convert_grounding("a man[0.123,0.345,0.567,0.789] walks", "shikra", "sphinx") == (
        "a man[0.12,0.34,0.57,0.79] walks"
    )


def test_minigpt_v2_integers_0_100_and_delim():
    text = "<p>cup</p> {<12><20><30><40>}<delim>{<50><50><60><70>}"
    mentions = find_mentions(text, "minigpt_v2")
    assert mentions[0].name == "cup"
    assert mentions[0].boxes == [Box(0.12, 0.2, 0.3, 0.4), Box(0.5, 0.5, 0.6, 0.7)]
    square = Box(0.1234, 0.25, 0.5, 0.75)  # 100x100 image: both frames agree
    rendered = convert_grounding(
        f"<p>cup</p> [{0.1234},0.25,0.5,0.75]", "sphinx", "minigpt_v2", (100, 100)
    )
    assert rendered == "<p>cup</p> {<12><25><50><75>}"  # int(12.34) = 12
    assert square.x1 == 0.1234


def test_florence2_floor_bins_and_bin_centres():
    rendered = convert_grounding(
        "<p>car</p> [0.1234,0.5,0.9999,1.0]", "sphinx", "florence2", (100, 100)
    )
    # floor(123.4) = 123, floor(500) = 500, floor(999.9) = 999, 1000 clamps to 999
    assert rendered == "car<loc_123><loc_500><loc_999><loc_999>"
    mentions = find_mentions("car<loc_123><loc_500><loc_999><loc_999>", "florence2")
    assert mentions[0].name == "car"
    assert mentions[0].boxes[0].as_tuple() == pytest.approx((0.1235, 0.5005, 0.9995, 0.9995))


def test_kosmos2_hand_computed():
    # x1 = 0.1 -> column floor(3.2) = 3; y1 = 0.2 -> row floor(6.4) = 6 -> 6 * 32 + 3 = 195
    # x2 = 0.3 -> column ceil(9.6 - 1) = 9; y2 = 0.4 -> row ceil(12.8 - 1) = 12 -> 12 * 32 + 9 = 393
    assert kosmos_patch_indices(Box(0.1, 0.2, 0.3, 0.4)) == (195, 393)
    assert kosmos_box(195, 393).as_tuple() == pytest.approx(
        (3.5 / 32, 6.5 / 32, 9.5 / 32, 12.5 / 32)
    )
    # same column: whole cells
    assert kosmos_box(3, 3 + 32 * 4).as_tuple() == pytest.approx((3 / 32, 0, 4 / 32, 5 / 32))
    text = convert_grounding(
        "<p>snowman</p> [0.1,0.2,0.3,0.4;0.5,0.5,0.6,0.6]", "sphinx", "kosmos2", (50, 50)
    )
    assert text == (
        "<phrase>snowman</phrase><object><patch_index_0195><patch_index_0393>"
        "</delimiter_of_multi_objects/><patch_index_0528><patch_index_0627></object>"
    )


@pytest.mark.slow  # importing transformers takes seconds
def test_kosmos2_agrees_with_transformers():
    kosmos = pytest.importorskip("transformers.models.kosmos2.processing_kosmos2")
    for box in [
        (0.1, 0.2, 0.3, 0.4),
        (0.0, 0.0, 1.0, 1.0),
        (0.51, 0.02, 0.52, 0.9),
        (0.33, 0.33, 0.34, 0.34),
    ]:
        expected = kosmos.coordinate_to_patch_index(box, 32)
        assert kosmos_patch_indices(Box(*box)) == tuple(expected)
        assert kosmos_box(*expected).as_tuple() == pytest.approx(
            kosmos.patch_index_to_coordinate(*expected, 32)
        )


def test_frame_change_needs_size_and_names_formats():
    with pytest.raises(ValueError, match="needs size"):
        convert_grounding("[0.1,0.1,0.2,0.2]", "sphinx", "qwen_vl")
    with pytest.raises(ValueError, match="unknown grounding format 'yolo'"):
        convert_grounding("x", "sphinx", "yolo")


def test_names_are_per_mention():
    mentions = find_mentions("<p>a</p> and <p>b</p> [0.1,0.1,0.2,0.2]", "sphinx")
    assert [(m.name, m.boxes) for m in mentions] == [("b", [Box(0.1, 0.1, 0.2, 0.2)])]
    qwen = find_mentions("<ref>a</ref> <ref>b</ref><box>(1,2),(3,4)</box>", "qwen_vl")
    assert [m.name for m in qwen] == ["b"]
    kosmos = (
        "<phrase>a</phrase>x<phrase>b</phrase><object><patch_index_0000><patch_index_0033></object>"
    )
    assert [m.name for m in find_mentions(kosmos, "kosmos2")] == ["b"]


@pytest.mark.parametrize("target", ["qwen_vl", "minigpt_v2", "florence2", "kosmos2"])
def test_huge_finite_numbers_do_not_overflow(target):
    result = convert_grounding_result(
        "<p>x</p> [2e305,0,1,1] <p>y</p> [0.1,0.1,0.5,0.5]", "sphinx", target, (10, 10)
    )
    assert result.text.startswith("<p>x</p> [2e305,0,1,1] ")  # kept as written
    assert any("2e+305 outside" in p for p in result.problems)
    assert any("no usable box" in p for p in result.problems)


@pytest.mark.parametrize(
    ("text", "fmt", "bad"),
    [
        ("<ref>a</ref><box>(1001,0),(5,5)</box>", "qwen_vl", "1001 outside 0-1000"),
        ("<p>a</p> {<101><0><5><5>}", "minigpt_v2", "101 outside 0-100"),
        ("a<loc_1000><loc_0><loc_5><loc_5>", "florence2", "1000 outside 0-999"),
        (
            "<object><patch_index_1024><patch_index_0005></object>",
            "kosmos2",
            "1024 outside 0-1023",
        ),
    ],
)
def test_out_of_range_indices_and_bins_are_rejected_and_reported(text, fmt, bad):
    (mention,) = find_mentions(text, fmt)
    assert mention.boxes == []
    assert any(bad in p for p in mention.problems)
    result = convert_grounding_result(text, fmt, "sphinx", (10, 10))
    assert result.text == text
    assert any(bad in p for p in result.problems)


def test_florence_leftover_tokens_are_reported():
    (mention,) = find_mentions("car<loc_1><loc_2><loc_3><loc_4><loc_5>", "florence2")
    assert len(mention.boxes) == 1
    assert any("1 <loc_> tokens" in p for p in mention.problems)


def test_format_registry_idiom():
    assert list_grounding_formats("*2") == ["florence2", "kosmos2", "minigpt_v2"]
    assert set(GROUNDING_FORMATS) == set(list_grounding_formats())
    with pytest.raises(UnknownNameError, match="known: florence2, kosmos2"):
        find_mentions("x", "yolo")
    with pytest.raises(ValueError, match="already registered"):
        register_grounding_format("sphinx", get_grounding_format("shikra"))
