"""tile_tensor / tile_batch against the SPHINX reference pipeline written out step by step."""

import warnings

import numpy as np
import pytest
from PIL import Image

from sphinx_tiling import ImageLoadError, get_preset, tile, tile_batch, tile_tensor

torch = pytest.importorskip("torch")
F = torch.nn.functional

CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def reference_tensor(image: Image.Image, grid: int, stats=CLIP) -> torch.Tensor:
    """Pad to square with the CLIP-mean colour, PIL bicubic resize, ToTensor, Normalize,
    global view = torch bicubic interpolation of the normalised tensor, crops = slices."""
    width, height = image.size
    side = max(width, height)
    square = Image.new("RGB", (side, side), (122, 116, 104))
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    big = square.resize((224 * grid, 224 * grid), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.array(big)).permute(2, 0, 1).contiguous().float().div(255)
    if stats is not None:
        mean = torch.tensor(stats[0]).view(3, 1, 1)
        std = torch.tensor(stats[1]).view(3, 1, 1)
        x = (x - mean) / std
    x = x.unsqueeze(0)
    if grid == 1:
        return x
    views = [F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=False)]
    for row in range(grid):
        for col in range(grid):
            views.append(x[:, :, row * 224 : (row + 1) * 224, col * 224 : (col + 1) * 224])
    return torch.cat(views)


@pytest.mark.parametrize(("preset", "grid"), [("sphinx", 1), ("sphinx-1k", 2), ("sphinx-2k", 3)])
def test_tile_tensor_equals_the_reference_pipeline_on_photos(photo, preset, grid):
    ours = tile_tensor(photo, preset)
    expected = reference_tensor(photo, grid)
    assert ours.shape == expected.shape == ((grid * grid + (grid > 1)), 3, 224, 224)
    assert ours.dtype == torch.float32
    assert torch.equal(ours, expected)


@pytest.mark.parametrize(("normalize", "stats"), [("imagenet", IMAGENET), (None, None)])
def test_other_normalisations(photos, normalize, stats):
    image = photos["coffee"]
    ours = tile_tensor(image, "sphinx-1k", normalize=normalize)
    assert torch.equal(ours, reference_tensor(image, 2, stats))
    if normalize is None:
        assert float(ours[1:].min()) >= 0.0 and float(ours[1:].max()) <= 1.0


def test_unknown_normalisation_is_refused():
    with pytest.raises(ValueError, match=r"normalize='clip2'.*'imagenet'"):
        tile_tensor(np.zeros((8, 8, 3), np.uint8), "sphinx", normalize="clip2")


def test_tensor_crops_match_the_pil_views(photos):
    # Same canvas: the crops of tile() and tile_tensor() hold the same pixels.
    image = photos["rocket"]
    pil_views = tile(image, "anyres-internvl").views
    tensor = tile_tensor(image, "anyres-internvl", normalize=None)
    assert tensor.shape[0] == len(pil_views)
    for view, values in zip(pil_views[1:], tensor[1:], strict=True):
        expected = torch.from_numpy(np.array(view)).permute(2, 0, 1).float() / 255
        assert torch.equal(values, expected)


def test_tile_batch_stacks_views_and_indexes_images(photos):
    # Under anyres-internvl a square photo (2x2), a 2:1 page (1x2) and a 10:1 strip (1x6)
    # get different numbers of views.
    images = [photos["astronaut"], photos["page"], np.zeros((40, 400, 3), np.uint8)]
    batch = tile_batch(images, "anyres-internvl")
    counts = [layout.n_views for layout in batch.layouts]
    assert counts == batch.views_per_image
    assert len(set(counts)) > 1  # really a ragged batch
    expected_index = [i for i, n in enumerate(counts) for _ in range(n)]
    assert batch.image_index.tolist() == expected_index
    assert batch.image_index.dtype == torch.long
    assert batch.pixel_values.shape == (sum(counts), 3, 224, 224)
    start = 0
    for image, count in zip(images, counts, strict=True):
        assert torch.equal(
            batch.pixel_values[start : start + count], tile_tensor(image, "anyres-internvl")
        )
        start += count


def test_tile_batch_sphinx_matches_reference(photos):
    names = ["chelsea", "page"]
    batch = tile_batch([photos[n] for n in names], "sphinx-1k")
    expected = torch.cat([reference_tensor(photos[n].convert("RGB"), 2) for n in names])
    assert torch.equal(batch.pixel_values, expected)
    assert batch.image_index.tolist() == [0] * 5 + [1] * 5


def test_custom_side_changes_the_view_size():
    preset = get_preset("sphinx-1k", side=56)
    out = tile_tensor(np.zeros((30, 90, 3), np.uint8), preset)
    assert out.shape == (5, 3, 56, 56)


@pytest.mark.gpu
def test_batch_on_cuda_matches_cpu(photos):
    images = [photos["coffee"], photos["astronaut"]]
    cpu = tile_batch(images, "sphinx-2k")
    gpu = tile_batch(images, "sphinx-2k", device="cuda")
    assert gpu.pixel_values.device.type == "cuda"
    assert torch.allclose(gpu.pixel_values.cpu(), cpu.pixel_values, atol=1e-5)
    assert torch.equal(gpu.image_index.cpu(), cpu.image_index)


@pytest.mark.parametrize(
    ("size", "grid"), [((1000, 700), (2, 3)), ((600, 200), (1, 3)), ((4000, 1), (1, 6))]
)
def test_global_view_is_torch_bicubic_of_the_normalised_canvas(size, grid):
    # InternVL canvases: the image stretched to (cols * 224, rows * 224) with PIL bicubic.
    rows, cols = grid
    rng = np.random.default_rng(rows * 10 + cols)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    canvas = Image.fromarray(pixels).resize((cols * 224, rows * 224), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.array(canvas)).permute(2, 0, 1).float().div(255)
    x = (x - torch.tensor(CLIP[0]).view(3, 1, 1)) / torch.tensor(CLIP[1]).view(3, 1, 1)
    expected = F.interpolate(x[None], size=(224, 224), mode="bicubic", align_corners=False)[0]
    ours = tile_tensor(pixels, "anyres-internvl")
    assert ours.shape[0] == rows * cols + 1
    assert torch.equal(ours[0], expected)


def test_tile_batch_threads_change_nothing_and_errors_name_the_input(photos):
    images = [photos["chelsea"], photos["rocket"], photos["astronaut"]]
    threaded = tile_batch(images, "sphinx-2k", workers=3)
    sequential = tile_batch(images, "sphinx-2k", workers=1)
    assert torch.equal(threaded.pixel_values, sequential.pixel_values)
    with pytest.raises(ImageLoadError, match=r"<9 bytes>"):
        tile_batch([photos["chelsea"], b"not a png"], "sphinx", workers=2)


def test_torch_resampling_stays_within_two_levels_of_pillow(photo):
    exact = tile_tensor(photo, "sphinx-2k", normalize=None)
    fast = tile_tensor(photo, "sphinx-2k", normalize=None, resample="torch")
    assert fast.shape == exact.shape
    assert float((fast - exact).abs().max()) <= 2 / 255 + 1e-6
    assert float((fast - exact).abs().mean()) < 0.1 / 255


@pytest.mark.parametrize("size", [(1, 4000), (4000, 1), (1, 1), (1000, 700)])
@pytest.mark.parametrize("preset", ["sphinx-1k", "anyres-llava", "anyres-internvl"])
def test_torch_resampling_handles_every_shape_and_rule(size, preset):
    pixels = np.full((size[1], size[0], 3), 200, np.uint8)
    exact = tile_batch([pixels], preset, normalize=None)
    fast = tile_batch([pixels], preset, normalize=None, resample="torch")
    assert fast.pixel_values.shape == exact.pixel_values.shape
    assert fast.layouts == exact.layouts
    # A flat image and flat padding: both resamplers keep flat areas flat.
    assert float((fast.pixel_values - exact.pixel_values).abs().max()) <= 2 / 255 + 1e-6


def test_unknown_resampler_is_refused():
    with pytest.raises(ValueError, match=r"resample='lanczos'.*'pil', 'torch'"):
        tile_tensor(np.zeros((8, 8, 3), np.uint8), "sphinx", resample="lanczos")


@pytest.mark.parametrize("normalize", ["clip", None])
def test_tile_batch_on_threads_matches_the_reference_for_every_orientation(
    photos, gradient, normalize
):
    # Portrait (padded left and right), upscaled, square and landscape canvases, written by
    # two workers at once into one output.
    images = [
        photos["rocket"].convert("RGB").transpose(Image.Transpose.ROTATE_90),
        photos["page"].convert("RGB"),
        Image.fromarray(gradient(300, 700)),
        photos["astronaut"],
        Image.fromarray(gradient(1000, 333)),
    ]
    stats = CLIP if normalize else None
    batch = tile_batch(images, "sphinx-1k", normalize=normalize, workers=2)
    expected = torch.cat([reference_tensor(image, 2, stats) for image in images])
    assert torch.equal(batch.pixel_values, expected)


@pytest.mark.parametrize("resample", ["pil", "torch"])
def test_a_canvas_that_needs_no_resize_raises_no_warning(resample):
    # 448 x 448 is the sphinx-1k canvas itself: no resampling, the pixels are used as given.
    pixels = np.random.default_rng(0).integers(0, 256, (448, 448, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        views = tile_tensor(pixels, "sphinx-1k", normalize=None, resample=resample)
    expected = torch.from_numpy(pixels[:224, 224:]).permute(2, 0, 1).float() / 255
    assert torch.equal(views[2], expected)


def test_tile_batch_under_inference_mode_matches_plain_tiling():
    """Workers write views into an inference tensor when the caller is in inference mode."""
    from PIL import Image

    images = [Image.new("RGB", (300, 200), (200, 30, 30)), Image.new("RGB", (120, 260), (9, 99, 199))]
    expected = tile_batch(images, "sphinx-1k", workers=2).pixel_values
    with torch.inference_mode():
        batch = tile_batch(images, "sphinx-1k", workers=2)
    assert batch.pixel_values.is_inference()
    assert torch.equal(batch.pixel_values, expected)
