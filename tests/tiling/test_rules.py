"""The any-resolution grid choices against hand-computed answers."""

import pytest

from sphinx_tiling import get_preset, plan_canvas, select_internvl_grid, select_llava_grid

LLAVA_GRIDS = get_preset("anyres-llava").grids  # (rows, cols)


def test_llava_candidates_are_llava_next_pinpoints_in_tiles():
    # LLaVA-NeXT's 336-pixel pinpoints, as (rows, cols) of tiles.
    pinpoints = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    assert [(h // 336, w // 336) for h, w in pinpoints] == [(1, 2), (2, 1), (2, 2), (3, 1), (1, 3)]
    assert set(LLAVA_GRIDS) == {(1, 2), (2, 1), (2, 2), (3, 1), (1, 3)}


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        # 448x224 keeps all 448*224 of a 2:1 image and wastes nothing.
        (1000, 500, (1, 2)),
        # 300x1000 in 224x672: scale 0.672 keeps 201*672 = 135072 pixels, the most.
        (300, 1000, (3, 1)),
        # A square image fills 448x448 completely.
        (800, 800, (2, 2)),
        # 2000x600 in 672x224: scale 0.336 keeps 672*201, beating 448*134 elsewhere.
        (2000, 600, (1, 3)),
        # Small images keep all their pixels everywhere: least waste (1x2 and 2x1 tie,
        # the earlier candidate wins).
        (200, 100, (1, 2)),
        (100, 200, (1, 2)),
    ],
)
def test_llava_choices_by_hand(width, height, expected):
    assert select_llava_grid(width, height, LLAVA_GRIDS, 224) == expected


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1000, 500, (1, 2)),  # aspect 2 matches 2 cols x 1 row exactly
        (3000, 1000, (1, 3)),  # aspect 3
        (500, 500, (2, 2)),  # 1x1 and 2x2 tie on aspect; 250000 > 0.5 * 224^2 * 4
        (200, 200, (1, 1)),  # same tie, but 40000 < 100352 keeps 1x1
        (1000, 700, (2, 3)),  # aspect 1.43: 3:2 (off by 0.07) beats 1:1, 2:1 and 4:3 (> 6 tiles)
        (1, 4000, (6, 1)),  # the tallest grid allowed
    ],
)
def test_internvl_choices_by_hand(width, height, expected):
    assert select_internvl_grid(width, height, 1, 6, 224) == expected


def test_internvl_respects_min_and_max_tiles():
    assert select_internvl_grid(200, 200, 2, 6, 224) == (2, 2)  # 1x1 is below min_tiles
    assert select_internvl_grid(5000, 500, 1, 4, 224) == (1, 4)  # 10:1 capped at 4 tiles


def test_llava_canvas_fits_the_image_and_centres_it():
    # 1000x400: 448x224 keeps 448*179 pixels, 672x224 keeps 560*224, so 1x3 wins.
    plan = plan_canvas(1000, 400, "anyres-llava")
    assert (plan.rows, plan.cols) == (1, 3)
    # Height limits: scale 224/400 = 0.56, width ceil(1000 * 0.56) = 560.
    assert plan.resized_size == (560, 224)
    assert plan.paste_offset == ((672 - 560) // 2, 0)


def test_internvl_canvas_stretches_without_padding():
    plan = plan_canvas(1000, 700, "anyres-internvl")
    assert plan.resized_size == plan.canvas_size == (672, 448)
    assert plan.padded_size == (1000, 700) and plan.paste_offset == (0, 0)


def test_grid_pads_to_the_canvas_aspect_ratio():
    plan = plan_canvas(300, 300, get_preset("grid", rows=1, cols=3))
    assert plan.padded_size == (900, 300) and plan.pad_offset == (300, 0)
    plan = plan_canvas(300, 200, "sphinx-1k")
    assert plan.padded_size == (300, 300) and plan.pad_offset == (0, 50)
