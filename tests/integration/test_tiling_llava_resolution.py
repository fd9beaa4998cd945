"""sphinx-tiling's anyres-llava choice agrees with transformers' select_best_resolution."""

import itertools

import pytest

from sphinx_tiling import get_preset, plan_canvas, select_llava_grid

image_processing_utils = pytest.importorskip("transformers.image_processing_utils")
select_best_resolution = image_processing_utils.select_best_resolution

SIZES = sorted(
    set(
        itertools.product(
            [1, 7, 100, 224, 300, 333, 448, 500, 640, 672, 1000, 1344, 4000], repeat=2
        )
    )
    | {(1, 4000), (4000, 1), (1023, 767), (767, 1023), (1920, 1080), (1080, 1920), (2048, 512)}
)


def test_at_least_fifty_sizes():
    assert len(SIZES) >= 50


@pytest.mark.parametrize("side", [224, 336])
def test_grid_choice_matches_transformers_on_many_sizes(side):
    grids = get_preset("anyres-llava").grids
    resolutions = [(rows * side, cols * side) for rows, cols in grids]  # (height, width)
    for width, height in SIZES:
        rows, cols = select_llava_grid(width, height, grids, side)
        expected = select_best_resolution((height, width), resolutions)
        assert (rows * side, cols * side) == tuple(expected), (width, height)


def test_plan_uses_the_same_choice_with_custom_candidates():
    grids = ((1, 1), (1, 2), (2, 1), (2, 2), (1, 4), (4, 1), (2, 3), (3, 2))
    preset = get_preset("anyres-llava", grids=grids, side=112)
    resolutions = [(r * 112, c * 112) for r, c in grids]
    for width, height in SIZES:
        plan = plan_canvas(width, height, preset)
        expected = select_best_resolution((height, width), resolutions)
        assert (plan.rows * 112, plan.cols * 112) == tuple(expected), (width, height)
