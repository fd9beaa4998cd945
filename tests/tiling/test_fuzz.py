"""load_image on hostile bytes: random, truncated, mangled real files and odd PIL modes.
Whatever comes in, the result is an RGB image or an ImageLoadError, quickly."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sphinx_tiling import ImageLoadError, load_image

# Pillow warns about the corrupt EXIF and truncated reads these files are made of.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def encoded(fmt: str, mode: str = "RGB", size=(9, 7)) -> bytes:
    image = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    ).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = [
    encoded("PNG"),
    encoded("PNG", "RGBA"),
    encoded("PNG", "I;16"),
    encoded("JPEG"),
    encoded("GIF", "P"),
    encoded("BMP"),
    encoded("TIFF"),
    encoded("TIFF", "F"),
    encoded("WEBP"),
    encoded("ICO", size=(16, 16)),
    encoded("PPM"),
]
FUZZ = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def decodes_or_refuses(data: bytes, decoding: str) -> None:
    try:
        image = load_image(data, decoding=decoding, max_pixels=4_000_000)
    except ImageLoadError as err:
        assert "\n" not in str(err) and str(err).startswith(f"<{len(data)} bytes>")
    else:
        assert image.mode == "RGB" and image.width * image.height <= 4_000_000


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from(["reference", "corrected"]))
def test_random_bytes(data, decoding):
    decodes_or_refuses(data, decoding)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.integers(0, 10_000),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.sampled_from(["reference", "corrected"]),
)
def test_truncated_and_mangled_real_files(seed, cut, flips, decoding):
    data = bytearray(seed[: max(1, cut % (len(seed) + 1))])
    for where, value in flips:
        data[where % len(data)] = value
    decodes_or_refuses(bytes(data), decoding)


MODES = ["1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV",
         "I", "F", "LA", "La", "PA", "I;16", "I;16L", "I;16B", "I;16N"]  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("decoding", ["reference", "corrected"])
def test_every_pil_mode_decodes_to_rgb(mode, decoding):
    image = Image.new(mode, (5, 3))
    rgb = load_image(image, decoding=decoding)
    assert rgb.mode == "RGB" and rgb.size == (5, 3)
