"""PIL views: known regions of synthetic images, and the reference pipeline on photos."""

import numpy as np
import pytest
from PIL import Image

from sphinx_tiling import get_preset, tile

FILL = np.array((122, 116, 104), np.uint8)
BICUBIC = Image.Resampling.BICUBIC


def padded_square(pixels: np.ndarray) -> np.ndarray:
    """Pad to square by hand: fill everywhere, the image at ((S-W)//2, (S-H)//2)."""
    height, width = pixels.shape[:2]
    side = max(width, height)
    square = np.empty((side, side, 3), np.uint8)
    square[:] = FILL
    dx, dy = (side - width) // 2, (side - height) // 2
    square[dy : dy + height, dx : dx + width] = pixels
    return square


@pytest.mark.parametrize("size", [(448, 448), (448, 300), (301, 448)])
def test_sphinx_1k_crops_are_the_known_regions_when_no_resize_is_needed(size, gradient):
    # A padded square of exactly 448 is cut without resampling, so crops are exact slices.
    pixels = gradient(*size)
    square = padded_square(pixels)
    views = tile(pixels, "sphinx-1k").views
    regions = [(0, 0), (0, 224), (224, 0), (224, 224)]  # (top, left), row-major
    for view, (top, left) in zip(views[1:], regions, strict=True):
        assert np.array_equal(np.asarray(view), square[top : top + 224, left : left + 224])


def test_fill_colour_at_known_offsets():
    # 448 x 100: rows 0..173 and 274..447 of the square are padding.
    views = tile(np.zeros((100, 448, 3), np.uint8), "sphinx-1k").views
    top_left, bottom_right = np.asarray(views[1]), np.asarray(views[4])
    assert (top_left[:174] == FILL).all() and (top_left[174:] == 0).all()
    assert (bottom_right[:50] == 0).all() and (bottom_right[50:] == FILL).all()


def test_grid_crops_of_an_exact_canvas_need_no_resampling(gradient):
    preset = get_preset("grid", rows=2, cols=3, side=32, global_view=False)
    pixels = gradient(96, 64)
    views = tile(pixels, preset).views
    for index, view in enumerate(views):
        row, col = divmod(index, 3)
        expected = pixels[row * 32 : (row + 1) * 32, col * 32 : (col + 1) * 32]
        assert np.array_equal(np.asarray(view), expected)


def reference_views(image: Image.Image, grid: int) -> list[np.ndarray]:
    """The SPHINX recipe written out with PIL: pad, one bicubic resize, global + crops."""
    width, height = image.size
    side = max(width, height)
    square = Image.new("RGB", (side, side), tuple(int(v) for v in FILL))
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    big = square.resize((224 * grid, 224 * grid), BICUBIC)
    if grid == 1:
        return [np.asarray(big)]
    views = [np.asarray(big.resize((224, 224), BICUBIC))]
    for row in range(grid):
        for col in range(grid):
            views.append(
                np.asarray(big.crop((col * 224, row * 224, (col + 1) * 224, (row + 1) * 224)))
            )
    return views


@pytest.mark.parametrize(("preset", "grid"), [("sphinx", 1), ("sphinx-1k", 2), ("sphinx-2k", 3)])
def test_photo_views_match_the_plain_pil_recipe(photo, preset, grid):
    image = photo
    got = [np.asarray(view) for view in tile(image, preset).views]
    expected = reference_views(image, grid)
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("size", [(1, 4000), (4000, 1), (1, 1), (2, 3), (1500, 700), (700, 1500)])
def test_extreme_and_large_sizes_match_the_plain_pil_recipe(size):
    # 1 x 4000 pads 3999 columns; 4000 x 1 takes the shared padding-row path.
    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    got = [np.asarray(view) for view in tile(image, "sphinx-1k").views]
    for ours, theirs in zip(got, reference_views(image, 2), strict=True):
        assert np.array_equal(ours, theirs)


def test_llava_views_are_cut_from_the_fitted_canvas():
    # 1000 x 400 -> canvas 672 x 224, image resized to 560 x 224 and pasted at x = 56.
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (400, 1000, 3), dtype=np.uint8)
    views = tile(pixels, "anyres-llava").views
    canvas = Image.new("RGB", (672, 224), tuple(int(v) for v in FILL))
    canvas.paste(Image.fromarray(pixels).resize((560, 224), BICUBIC), (56, 0))
    expected = [canvas.resize((224, 224), BICUBIC)] + [
        canvas.crop((c * 224, 0, (c + 1) * 224, 224)) for c in range(3)
    ]
    assert len(views) == 4
    for ours, theirs in zip(views, expected, strict=True):
        assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_internvl_thumbnail_first_then_stretched_tiles():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (700, 1000, 3), dtype=np.uint8)
    views = tile(pixels, "anyres-internvl").views
    canvas = Image.fromarray(pixels).resize((672, 448), BICUBIC)
    expected = [canvas.resize((224, 224), BICUBIC)] + [
        canvas.crop((c * 224, r * 224, (c + 1) * 224, (r + 1) * 224))
        for r in range(2)
        for c in range(3)
    ]
    assert len(views) == 7
    for ours, theirs in zip(views, expected, strict=True):
        assert np.array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize(("preset", "grid"), [("sphinx-1k", 2), ("sphinx-2k", 3)])
def test_portrait_photo_views_match_the_plain_pil_recipe(photo, preset, grid):
    # Tall images are padded left and right instead of above and below.
    image = photo.transpose(Image.Transpose.TRANSPOSE)
    got = [np.asarray(view) for view in tile(image, preset).views]
    for ours, theirs in zip(got, reference_views(image, grid), strict=True):
        assert np.array_equal(ours, theirs)
