"""The weights-free defaults on scenes whose answer is known: GrabCut, Telea, windows, inputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sphinx_apps import GrabCutSegmenter, TeleaInpainter, dilate, load_mask
from sphinx_apps.images import check_box, load_rgb
from sphinx_apps.lama import pad_to_multiple
from sphinx_apps.windows import mask_window
from sphinx_tasks import Box


def test_grabcut_finds_the_ellipse_inside_a_loose_box(scene, shapes):
    image, _, truth = scene
    x1, y1, x2, y2 = shapes.ellipse
    loose = Box(x1 - 6, y1 - 5, x2 + 6, y2 + 5)
    (mask,) = GrabCutSegmenter()(image, [loose])
    assert mask.shape == (shapes.height, shapes.width) and mask.dtype == bool
    assert shapes.iou(mask, truth) >= 0.9


def test_grabcut_gives_one_mask_per_box_in_order(scene, shapes):
    image, _, truth = scene
    corner = shapes.ellipse_mask((0, 0, 20, 20))
    image = np.asarray(image).copy()
    image[corner] = (20, 200, 40)
    masks = GrabCutSegmenter()(Image.fromarray(image), [Box(28, 18, 88, 76), Box(0, 0, 26, 26)])
    assert shapes.iou(masks[0], truth) >= 0.9
    assert shapes.iou(masks[1], corner) >= 0.8
    assert not (masks[1] & truth).any()


def test_telea_removal_restores_the_known_background(scene):
    image, background, truth = scene
    removed = np.asarray(TeleaInpainter()(image, dilate(truth, 2))).astype(int)
    error = np.abs(removed - background.astype(int))[truth]
    assert error.mean() < 8  # the object differs from the background by ~100 levels
    assert np.array_equal(
        np.asarray(removed)[~dilate(truth, 2)], np.asarray(image)[~dilate(truth, 2)]
    )


def test_dilate_grows_by_a_disc_of_the_given_radius():
    mask = np.zeros((21, 21), dtype=bool)
    mask[10, 10] = True
    grown = dilate(mask, 3)
    ys, xs = np.nonzero(grown)
    assert grown.sum() == 29  # lattice points with x^2 + y^2 <= 9: 7 + 2 * 5 + 2 * 5 + 2
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (7, 13, 7, 13)
    assert not grown[7, 7]  # a disc, not a square


def test_mask_window_centres_the_mask_and_scales_to_the_model_side():
    mask = np.zeros((1000, 2000), dtype=bool)
    mask[400:500, 900:1100] = True  # 200 x 100 box centred at (1000, 450)
    small = mask_window(mask, 512)
    assert small.box == (744, 194, 1256, 706) and small.work_size == (512, 512)
    big = np.zeros((1000, 2000), dtype=bool)
    big[100:900, 200:1800] = True  # 1600 x 800: with context 0.5 the window is the whole image
    window = mask_window(big, 512, multiple=8)
    assert window.box == (0, 0, 2000, 1000)
    assert window.work_size == (512, 256)


def test_pad_to_multiple_mirrors_bottom_and_right():
    array = np.arange(10 * 13).reshape(10, 13)
    padded = pad_to_multiple(array, 8)
    assert padded.shape == (16, 16)
    assert np.array_equal(padded[:10, :13], array)
    assert np.array_equal(padded[10, :13], array[9])  # symmetric: the edge row is repeated
    assert np.array_equal(padded[11, :13], array[8])


@pytest.mark.parametrize(
    ("box", "message"),
    [((200, 10, 260, 40), "lies outside the 112x96 image"), ((1, 2, 3), "expected 4 numbers")],
)
def test_bad_box_is_one_clear_line(box, message):
    width, height = 112, 96
    with pytest.raises(ValueError, match=message) as caught:
        check_box(box, (width, height))
    assert "\n" not in str(caught.value)


def test_box_partly_outside_is_clipped_and_corners_ordered():
    assert check_box((120, 50, 100, -5), (112, 96)) == Box(100, 0, 112, 50)


def test_empty_mask_and_mask_of_another_size_are_refused(scene):
    image = scene[0]
    with pytest.raises(ValueError, match="mask: is empty"):
        TeleaInpainter()(image, np.zeros((96, 112), dtype=bool))
    with pytest.raises(ValueError, match="mask: is 50x40 but the image is 112x96"):
        load_mask(np.ones((40, 50), dtype=bool), image.size)


def test_gradient_background_is_smooth(shapes):
    background = shapes.gradient_background().astype(int)
    assert np.abs(np.diff(background, axis=1)).max() <= 2


def test_load_rgb_takes_a_tensor_made_under_inference_mode():
    torch = pytest.importorskip("torch")
    with torch.inference_mode():
        photo = torch.full((4, 5, 3), 7, dtype=torch.uint8)
        image = load_rgb(photo)
    assert image.size == (5, 4) and image.getpixel((4, 3)) == (7, 7, 7)
    with pytest.raises(
        ValueError, match=r"expected an H x W or H x W x 3 uint8 array, got float32"
    ):
        load_rgb(torch.zeros(4, 5, requires_grad=True))


def test_load_rgb_refuses_other_objects_in_one_line():
    with pytest.raises(
        ValueError, match=r"^image: expected a path, a Pillow image or a uint8 array, got int$"
    ):
        load_rgb(3)


def _large_scene(shapes_module):
    """A 1200 x 900 orange ellipse (box 400, 250, 900, 700) on a gradient."""
    pixels = shapes_module.gradient_background(1200, 900)
    truth = shapes_module.ellipse_mask((400, 250, 900, 700), (1200, 900))
    pixels[truth] = (235, 140, 30)
    return Image.fromarray(pixels), truth


def _spy_grabcut(monkeypatch):
    """Record the shape of every window handed to cv2.grabCut."""
    import cv2

    seen, real = [], cv2.grabCut
    monkeypatch.setattr(
        cv2, "grabCut", lambda window, *a: seen.append(window.shape) or real(window, *a)
    )
    return seen


def test_grabcut_cuts_a_large_window_at_max_side(monkeypatch, shapes):
    image, truth = _large_scene(shapes)
    seen = _spy_grabcut(monkeypatch)
    (mask,) = GrabCutSegmenter(max_side=512)(image, [Box(370, 220, 930, 730)])
    # box 560 x 510 plus half of it each side, clipped: window 1112 x 900 -> 512 x 414
    assert seen == [(414, 512, 3)]
    assert mask.shape == (900, 1200)
    assert shapes.iou(mask, truth) >= 0.95


@pytest.mark.slow
def test_grabcut_whole_picture_box_keeps_a_background_border_when_reduced(monkeypatch, shapes):
    image, _ = _large_scene(shapes)
    seen = _spy_grabcut(monkeypatch)
    (mask,) = GrabCutSegmenter(max_side=512)(image, [Box(0, 0, 1200, 900)])
    assert seen == [(384, 512, 3)]
    # the reduced picture's outer pixel ring is background: 1200 / 512 > 2 full pixels
    assert not mask[:2].any() and not mask[-2:].any()
    assert not mask[:, :2].any() and not mask[:, -2:].any()


def test_grabcut_max_side_below_16_is_refused():
    with pytest.raises(ValueError, match="GrabCut max_side 8: expected at least 16 pixels or None"):
        GrabCutSegmenter(max_side=8)


def test_grabcut_max_side_none_works_at_full_size(scene, shapes, monkeypatch):
    seen = _spy_grabcut(monkeypatch)
    (mask,) = GrabCutSegmenter(max_side=None)(scene[0], [Box(28, 19, 88, 75)])
    # box 60 x 56 plus 32 / 30 each side, clipped to the 112 x 96 picture
    assert seen == [(96, 112, 3)]
    assert shapes.iou(mask, scene[2]) >= 0.9
