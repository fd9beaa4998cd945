"""Decoding choices, the fp16 global view and the SPHINX-Tiny presets, against the
reference code's steps written out here (`Image.open(p).convert("RGB")`, padded_resize,
`F.interpolate(x.half(), ...)`)."""

import io

import numpy as np
import pytest
from PIL import Image

from sphinx_tiling import get_preset, load_image, tile, tile_batch, tile_tensor

FILL = (122, 116, 104)
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def reference_decode(path):
    """What SPHINX/sphinx.py does to a file: open and convert("RGB"), nothing else."""
    return Image.open(path).convert("RGB")


@pytest.fixture
def rotated_jpeg(tmp_path):
    # 8 wide, 4 high, stored with EXIF orientation 6 (a viewer turns it upright 90 degrees).
    stored = np.zeros((4, 8, 3), np.uint8)
    stored[:, :4] = (250, 10, 10)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    return path


@pytest.fixture
def rgba_png(tmp_path):
    pixels = np.zeros((6, 10, 4), np.uint8)
    pixels[..., :3] = (0, 200, 0)
    pixels[:, 5:, 3] = 255  # right half opaque, left half transparent green
    path = tmp_path / "cutout.png"
    Image.fromarray(pixels, "RGBA").save(path)
    return path


@pytest.fixture
def deep_png(tmp_path):
    values = np.array([[0, 100, 300, 40000, 65535, 255]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    return path


@pytest.mark.parametrize("fixture", ["rotated_jpeg", "rgba_png", "deep_png"])
def test_reference_decoding_is_convert_rgb(fixture, request):
    path = request.getfixturevalue(fixture)
    expected = np.asarray(reference_decode(path))
    assert np.array_equal(np.asarray(load_image(path, decoding="reference")), expected)
    # ... and it is the default of the sphinx presets, while "corrected" differs here.
    padded = tile(path, "sphinx").views[0]
    square = Image.new("RGB", (max(expected.shape[:2]),) * 2, FILL)
    ref = Image.fromarray(expected)
    square.paste(ref, ((square.width - ref.width) // 2, (square.height - ref.height) // 2))
    assert np.array_equal(
        np.asarray(padded), np.asarray(square.resize((224, 224), Image.Resampling.BICUBIC))
    )
    corrected = np.asarray(load_image(path, decoding="corrected"))
    assert corrected.shape != expected.shape or not np.array_equal(corrected, expected)


def test_corrected_decoding_by_hand(rotated_jpeg, rgba_png, deep_png):
    upright = np.asarray(load_image(rotated_jpeg, decoding="corrected"))
    assert upright.shape == (8, 4, 3)  # turned upright
    # a clockwise quarter turn takes the stored left (red) half to the top
    assert upright[0, 0, 0] > 200 and upright[-1, 0, 0] < 50
    cutout = np.asarray(load_image(rgba_png, decoding="corrected"))
    assert tuple(cutout[0, 0]) == FILL and tuple(cutout[0, 9]) == (0, 200, 0)
    deep = np.asarray(load_image(deep_png, decoding="corrected"))[0, :, 0]
    assert list(deep) == [round(v / 257) for v in (0, 100, 300, 40000, 65535, 255)]


def test_decoding_choice_reaches_every_entry_point(rgba_png):
    torch = pytest.importorskip("torch")
    ref = tile_tensor(rgba_png, "sphinx", normalize=None)
    fixed = tile_tensor(rgba_png, "sphinx", normalize=None, decoding="corrected")
    assert not torch.equal(ref, fixed)
    assert torch.equal(tile_tensor(rgba_png, get_preset("sphinx", decoding="corrected"),
                                   normalize=None), fixed)  # fmt: skip
    batch = tile_batch([rgba_png], "sphinx", normalize=None, decoding="corrected", workers=1)
    assert torch.equal(batch.pixel_values, fixed)
    assert np.array_equal(
        np.asarray(tile(rgba_png, "grid").views[1]),
        np.asarray(tile(rgba_png, "grid", decoding="corrected").views[1]),
    )  # non-sphinx presets decode "corrected" already
    with pytest.raises(ValueError, match=r"decoding='exif'.*'reference', 'corrected'"):
        tile(rgba_png, "sphinx", decoding="exif")


def test_presets_record_their_decoding():
    for name in ("sphinx", "sphinx-1k", "sphinx-2k", "sphinx-light", "sphinx-light-1k"):
        assert get_preset(name).decoding == "reference"
    for name in ("grid", "anyres-llava", "anyres-internvl"):
        assert get_preset(name).decoding == "corrected"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # fractions
        ([0.0, 100.0, 255.0], [0, 100, 255]),  # levels
        ([-1.0, 0.0, 1.0], [0, 128, 255]),  # anything else: min..max
        ([np.nan, 0.25, 1.0], [0, 64, 255]),
    ],
)
def test_float_images_are_scaled_by_their_range(values, expected):
    image = Image.fromarray(np.array([values], np.float32), "F")
    assert list(np.asarray(load_image(image))[0, :, 0]) == expected


def test_premultiplied_grey_la_is_accepted():
    image = Image.new("La", (2, 1), (100, 128))  # premultiplied: straight grey 199
    assert tuple(np.asarray(load_image(image, decoding="reference"))[0, 0]) == (199,) * 3
    over_fill = np.asarray(load_image(image)).astype(int)[0, 0]
    assert np.allclose(over_fill, [(199 * 128 + f * 127) / 255 for f in FILL], atol=1.5)


# ---------------------------------------------------------------- fp16 global view, Tiny presets

torch = pytest.importorskip("torch")
F = torch.nn.functional


def padded_resize(image: Image.Image, size: int) -> "torch.Tensor":
    """accessory/data/transform.py T_padded_resize: PadToSquare, Resize (PIL bicubic),
    ToTensor, Normalize with the CLIP statistics."""
    width, height = image.size
    side = max(width, height)
    square = Image.new("RGB", (side, side), FILL)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    x = torch.from_numpy(np.array(square.resize((size, size), Image.Resampling.BICUBIC)))
    x = x.permute(2, 0, 1).float().div(255)
    return ((x - torch.tensor(CLIP[0]).view(3, 1, 1)) / torch.tensor(CLIP[1]).view(3, 1, 1))[None]


def test_fp16_global_view_is_the_reference_half_interpolation(photos):
    image = photos["astronaut"].resize((160, 120))
    x = padded_resize(image, 448)
    expected = F.interpolate(x.half(), size=(224, 224), mode="bicubic").to(x)
    views = tile_tensor(image, "sphinx-1k", view_dtype="fp16")
    assert torch.equal(views[0], expected[0])
    assert torch.equal(views[1], x[0, :, :224, :224])  # crops stay float32 slices
    assert not torch.equal(tile_tensor(image, "sphinx-1k")[0], views[0])
    # odd grids take the strided-slice path; it must agree with the half interpolation too
    x3 = padded_resize(image, 672)
    expected3 = F.interpolate(x3.half(), size=(224, 224), mode="bicubic").to(x3)
    assert torch.equal(tile_tensor(image, "sphinx-2k", view_dtype="half")[0], expected3[0])


def test_sphinx_light_is_one_512_view(photos):
    image = photos["coffee"].resize((150, 100))
    views = tile_tensor(image, "sphinx-light")
    assert torch.equal(views, padded_resize(image, 512))


def test_sphinx_light_1k_is_llama_ens5_light_views(photos):
    # llama_ens5_light.encode_image on the 1024 padded_resize tensor: the global 512 view is
    # F.interpolate(image.half(), (512, 512), bicubic), then the four 512 quadrants.
    image = photos["chelsea"].resize((120, 90))
    x = padded_resize(image, 1024)
    expected = [
        F.interpolate(x.half(), size=(512, 512), mode="bicubic").to(x),
        x[..., :512, :512], x[..., :512, 512:], x[..., 512:, :512], x[..., 512:, 512:],
    ]  # fmt: skip
    views = tile_tensor(image, "sphinx-light-1k")
    assert views.shape == (5, 3, 512, 512)
    assert torch.equal(views, torch.cat(expected))


def test_reference_decoding_of_a_jpeg_through_tile_tensor(rotated_jpeg):
    expected = padded_resize(reference_decode(rotated_jpeg), 224)
    assert torch.equal(tile_tensor(rotated_jpeg, "sphinx"), expected)


def test_png_bytes_and_paths_decode_alike(rgba_png):
    data = rgba_png.read_bytes()
    assert np.array_equal(
        np.asarray(load_image(io.BytesIO(data).getvalue(), decoding="reference")),
        np.asarray(reference_decode(rgba_png)),
    )
