"""Coordinate maps: hand-computed values, clipping, JSON, and round trips (hypothesis)."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sphinx_tiling import Layout, get_preset, list_presets, tile
from sphinx_tiling.plan import plan_canvas


def layout_for(width: int, height: int, preset: str) -> Layout:
    return Layout.from_plan(plan_canvas(width, height, preset), preset)


def close(a, b, tol=1e-9):
    return all(math.isclose(x, y, rel_tol=tol, abs_tol=tol) for x, y in zip(a, b, strict=True))


def test_square_frame_by_hand():
    # 640 x 427: square 640, image rows start at (640 - 427) // 2 = 106.
    layout = layout_for(640, 427, "sphinx-1k")
    assert (layout.square_side, layout.offset) == (640, (0, 106))
    assert layout.box_to_square((0, 0, 640, 427)) == (0.0, 106 / 640, 1.0, 533 / 640)
    assert layout.point_to_square((320, 0)) == (0.5, 106 / 640)
    # The SPHINX recipe back to pixels: times the side, minus the offset of that axis.
    assert layout.box_from_square((0.25, 0.5, 0.75, 0.75)) == (160.0, 214.0, 480.0, 374.0)
    assert layout.point_from_square((0.0, 0.0)) == (0.0, -106.0)


def test_sphinx_view_boxes_by_hand():
    boxes = [v.box for v in layout_for(300, 200, "sphinx-1k").views]
    assert boxes == [
        (0.0, 0.0, 1.0, 1.0),
        (0.0, 0.0, 0.5, 0.5),
        (0.5, 0.0, 1.0, 0.5),
        (0.0, 0.5, 0.5, 1.0),
        (0.5, 0.5, 1.0, 1.0),
    ]
    third = [v.box for v in layout_for(300, 200, "sphinx-2k").views][6]  # row 1, col 2
    assert close(third, (2 / 3, 1 / 3, 1.0, 2 / 3))


def test_llava_view_boxes_by_hand():
    # 1000 x 500 fills a 448 x 224 canvas exactly; square 1000 with the image at y = 250.
    views = layout_for(1000, 500, "anyres-llava").views
    assert close(views[0].box, (0.0, 0.25, 1.0, 0.75))
    assert close(views[1].box, (0.0, 0.25, 0.5, 0.75))
    assert close(views[2].box, (0.5, 0.25, 1.0, 0.75))


def test_box_to_view_and_clipping_by_hand():
    layout = layout_for(300, 200, "sphinx-1k")
    inside = layout.box_to_view((0.25, 0.25, 0.5, 0.5), 1)
    assert inside == (0.5, 0.5, 1.0, 1.0) and not inside.clipped and inside.visible
    across = layout.box_to_view((0.4, 0.4, 0.6, 0.6), 1)
    assert close(across, (0.8, 0.8, 1.0, 1.0)) and across.clipped and across.visible
    outside = layout.box_to_view((0.1, 0.1, 0.2, 0.2), 4)
    assert outside == (0.0, 0.0, 0.0, 0.0) and outside.clipped and not outside.visible
    assert layout.box_to_view((0.1, 0.1, 0.2, 0.2), 0) == (0.1, 0.1, 0.2, 0.2)
    with pytest.raises(IndexError, match="view index 5 out of range for 5 views"):
        layout.box_to_view((0, 0, 1, 1), 5)


def test_arrays_of_boxes_map_in_one_call():
    layout = layout_for(640, 427, "sphinx-2k")
    boxes = np.array([[0, 0, 640, 427], [10, 20, 30, 40]], dtype=float)
    square = layout.box_to_square(boxes)
    assert isinstance(square, np.ndarray) and square.shape == (2, 4)
    assert np.allclose(square[1], [10 / 640, 126 / 640, 30 / 640, 146 / 640])
    assert np.allclose(layout.box_from_square(square), boxes)


def test_bad_shapes_are_refused():
    layout = layout_for(10, 10, "sphinx")
    with pytest.raises(ValueError, match=r"box \(x1, y1, x2, y2\)"):
        layout.box_to_square((1, 2, 3))
    with pytest.raises(ValueError, match=r"point \(x, y\)"):
        layout.point_to_square((1, 2, 3, 4))


def test_json_round_trip_and_bad_json():
    layout = tile(Image.new("RGB", (1000, 700)), "anyres-internvl").layout
    text = json.dumps(layout.to_dict())
    assert Layout.from_dict(json.loads(text)) == layout
    data = json.loads(text)
    data["offset"] = [1, 2]
    with pytest.raises(ValueError, match="'offset'"):
        Layout.from_dict(data)
    data = json.loads(text)
    del data["width"]
    with pytest.raises(ValueError, match="missing key 'width'"):
        Layout.from_dict(data)
    data = json.loads(text)
    data["views"][0]["kind"] = "zoom"
    with pytest.raises(ValueError, match="view kind 'zoom'"):
        Layout.from_dict(data)


# -- round trips ---------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=5000)
presets = st.sampled_from(sorted(list_presets()))
coords = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(sizes, sizes, presets, st.lists(coords, min_size=4, max_size=4))
def test_pixel_square_round_trip(width, height, preset, box):
    layout = layout_for(width, height, preset)
    assert close(layout.box_from_square(layout.box_to_square(tuple(box))), box, tol=1e-9)
    assert close(layout.point_from_square(layout.point_to_square(tuple(box[:2]))), box[:2])


@settings(max_examples=200, deadline=None)
@given(sizes, sizes, presets, st.data())
def test_square_view_round_trip_inside_a_view(width, height, preset, data):
    layout = layout_for(width, height, preset)
    index = data.draw(st.integers(min_value=0, max_value=layout.n_views - 1))
    in_view = data.draw(st.lists(unit, min_size=4, max_size=4))
    box_sq = layout.box_from_view(tuple(in_view), index)
    back = layout.box_to_view(box_sq, index)
    assert close(back, in_view)
    assert close(layout.box_from_view(back, index), box_sq)


@settings(max_examples=200, deadline=None)
@given(sizes, sizes, presets, st.data())
def test_points_round_trip_through_views_even_outside(width, height, preset, data):
    layout = layout_for(width, height, preset)
    index = data.draw(st.integers(min_value=0, max_value=layout.n_views - 1))
    point = tuple(data.draw(st.lists(coords, min_size=2, max_size=2)))
    assert close(layout.point_from_view(layout.point_to_view(point, index), index), point)


@settings(max_examples=200, deadline=None)
@given(
    sizes,
    sizes,
    st.sampled_from(["sphinx-1k", "sphinx-2k"]),
    st.lists(unit, min_size=4, max_size=4),
)
def test_clipping_flag_matches_whether_the_box_leaves_the_view(width, height, preset, box):
    layout = layout_for(width, height, preset)
    for index, view in enumerate(layout.views):
        mapped = layout.box_to_view(tuple(box), index)
        x1, y1, x2, y2 = view.box
        leaves = any(v < x1 or v > x2 for v in box[0::2]) or any(
            v < y1 or v > y2 for v in box[1::2]
        )
        assert mapped.clipped == leaves
        assert all(0.0 <= v <= 1.0 for v in mapped)


def test_views_cover_the_square_for_square_grids():
    # Crops of a square grid tile the padded square exactly, independent of the image size.
    for width, height in [(1, 4000), (4000, 1), (333, 777)]:
        layout = layout_for(width, height, "sphinx-2k")
        area = sum((v.box[2] - v.box[0]) * (v.box[3] - v.box[1]) for v in layout.views[1:])
        assert math.isclose(area, 1.0)


def test_grid_layout_of_a_custom_preset():
    preset = get_preset("grid", rows=1, cols=3)
    layout = Layout.from_plan(plan_canvas(900, 300, preset), "grid")
    assert close(layout.views[2].box, (1 / 3, 1 / 3, 2 / 3, 2 / 3))
