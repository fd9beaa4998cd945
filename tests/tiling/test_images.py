"""Decoding inputs: every input kind, mode conversion, EXIF, guards and bad files."""

import io

import numpy as np
import pytest
from PIL import Image

from sphinx_tiling import CLIP_MEAN_RGB, ImageLoadError, load_image, pad_to_square

FILL = (122, 116, 104)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_clip_mean_fill_is_truncated_mean_times_255():
    mean = (0.48145466, 0.4578275, 0.40821073)
    assert tuple(int(m * 255) for m in mean) == CLIP_MEAN_RGB == FILL


@pytest.mark.parametrize("kind", ["pil", "array", "path", "str", "bytes", "bytearray"])
def test_every_input_kind_gives_the_same_rgb_pixels(kind, tmp_path, photos):
    photo = photos["chelsea"]
    path = tmp_path / "cat.png"
    photo.save(path)
    source = {
        "pil": photo,
        "array": np.asarray(photo),
        "path": path,
        "str": str(path),
        "bytes": path.read_bytes(),
        "bytearray": bytearray(path.read_bytes()),
    }[kind]
    image = load_image(source)
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(photo))


def test_grey_array_and_single_channel_array_become_grey_rgb():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    for array in (grey, grey[:, :, None]):
        rgb = np.asarray(load_image(array))
        assert rgb.shape == (3, 4, 3)
        assert all(np.array_equal(rgb[:, :, c], grey) for c in range(3))


def test_rgba_array_alpha_is_composited_over_fill():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (0, 255, 0, 0)  # fully transparent shows the fill
    rgba[1, 0] = (255, 255, 255, 128)  # half white over the fill
    rgb = np.asarray(load_image(rgba)).astype(int)
    assert tuple(rgb[0, 0]) == (255, 0, 0)
    assert tuple(rgb[0, 1]) == FILL
    expected = [(255 * 128 + f * 127) / 255 for f in FILL]
    assert np.allclose(rgb[1, 0], expected, atol=1)


def test_alpha_fill_colour_is_configurable():
    rgba = np.zeros((1, 1, 4), np.uint8)
    assert tuple(np.asarray(load_image(rgba, fill=(1, 2, 3)))[0, 0]) == (1, 2, 3)


def test_mode_l_and_la():
    grey = Image.new("L", (3, 2), 77)
    assert tuple(np.asarray(load_image(grey))[1, 2]) == (77, 77, 77)
    la = Image.new("LA", (3, 2), (200, 0))
    assert tuple(np.asarray(load_image(la))[0, 0]) == FILL
    la_opaque = Image.new("LA", (3, 2), (200, 255))
    assert tuple(np.asarray(load_image(la_opaque))[0, 0]) == (200, 200, 200)


def test_mode_p_with_and_without_transparency():
    palette_image = Image.new("P", (4, 1))
    palette_image.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    palette_image.putdata([0, 1, 0, 1])
    rgb = np.asarray(load_image(palette_image))
    assert tuple(rgb[0, 0]) == (10, 20, 30) and tuple(rgb[0, 1]) == (40, 50, 60)
    palette_image.info["transparency"] = 1
    rgb = np.asarray(load_image(palette_image))
    assert tuple(rgb[0, 0]) == (10, 20, 30) and tuple(rgb[0, 1]) == FILL


def test_cmyk_converts_to_rgb():
    # Pure cyan ink: no red, full green and blue (Pillow's naive CMYK -> RGB).
    cmyk = Image.new("CMYK", (2, 2), (255, 0, 0, 0))
    assert tuple(np.asarray(load_image(cmyk))[0, 0]) == (0, 255, 255)


def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path):
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    loaded = Image.open(path)
    assert loaded.mode.startswith("I")
    rgb = np.asarray(load_image(path))
    assert list(rgb[0, :, 0]) == [0, 1, 255, 128]
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_exif_orientation_is_applied():
    # A 4x2 landscape image stored with orientation 6 (rotate 90 clockwise to view).
    stored = Image.new("RGB", (4, 2), (0, 0, 0))
    stored.putpixel((0, 0), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="PNG", exif=exif)
    upright = load_image(buffer.getvalue())
    assert upright.size == (2, 4)
    # The stored top-left corner ends up top-right after a clockwise quarter turn.
    assert tuple(np.asarray(upright)[0, 1]) == (255, 255, 255)
    assert tuple(np.asarray(upright)[0, 0]) == (0, 0, 0)


@pytest.mark.parametrize("size", [(1, 4000), (4000, 1), (1, 1)])
def test_extreme_sizes_load(size):
    image = load_image(Image.new("RGB", size, (9, 9, 9)))
    assert image.size == size


def test_max_pixels_guard_refuses_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 200)).save(path)
    with pytest.raises(ImageLoadError, match=r"big\.png.*60000 pixels exceeds max_pixels=59999"):
        load_image(path, max_pixels=59_999)
    assert load_image(path, max_pixels=60_000).size == (300, 200)
    assert load_image(path, max_pixels=None).size == (300, 200)
    with pytest.raises(ImageLoadError, match="exceeds max_pixels"):
        load_image(np.zeros((10, 10, 3), np.uint8), max_pixels=99)


def test_truncated_file_names_the_input(tmp_path, photos):
    path = tmp_path / "cut.jpg"
    buffer = io.BytesIO()
    photos["coffee"].save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg.*truncated or corrupt"):
        load_image(path)


def test_corrupt_and_non_image_inputs(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ImageLoadError, match=r"junk\.png"):
        load_image(junk)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ImageLoadError, match=r"notes\.txt.*not a recognised image"):
        load_image(text)
    with pytest.raises(ImageLoadError, match=r"<5 bytes>"):
        load_image(b"hello")
    with pytest.raises(ImageLoadError, match=r"missing\.png.*no such image file"):
        load_image(tmp_path / "missing.png")


def test_bad_arrays_and_types():
    with pytest.raises(ImageLoadError, match="expected a uint8 array, got dtype float32"):
        load_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageLoadError, match=r"shape \(4, 4, 2\)"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageLoadError, match="no pixels"):
        load_image(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ImageLoadError, match="expected a path, bytes"):
        load_image(12345)


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (5, 5), (1, 7), (8, 1)])
def test_pad_to_square_puts_fill_around_the_centred_image(size):
    width, height = size
    image = Image.new("RGB", size, (1, 2, 3))
    square = pad_to_square(image)
    side = max(width, height)
    assert square.size == (side, side)
    pixels = np.asarray(square)
    dx, dy = (side - width) // 2, (side - height) // 2
    inside = np.zeros((side, side), bool)
    inside[dy : dy + height, dx : dx + width] = True
    assert (pixels[inside] == (1, 2, 3)).all()
    assert (pixels[~inside] == FILL).all()


def test_pad_to_square_offsets_by_hand():
    # 5 wide, 2 high: square 5, image rows start at (5 - 2) // 2 = 1.
    pixels = np.asarray(pad_to_square(Image.new("RGB", (5, 2), (0, 0, 0)), fill=(9, 8, 7)))
    assert [tuple(pixels[y, 0]) for y in range(5)] == [
        (9, 8, 7),
        (0, 0, 0),
        (0, 0, 0),
        (9, 8, 7),
        (9, 8, 7),
    ]


def test_pad_to_square_keeps_grey_mode():
    square = pad_to_square(Image.new("L", (2, 4), 0))
    assert square.mode == "L"
    assert np.asarray(square)[0, 0] == FILL[0]


def test_pad_to_square_rgba_fill_is_opaque():
    square = pad_to_square(Image.new("RGBA", (2, 4), (0, 0, 0, 0)))
    assert tuple(np.asarray(square)[0, 0]) == (*FILL, 255)
