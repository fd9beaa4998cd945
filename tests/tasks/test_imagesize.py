import struct

import pytest

from sphinx_tasks.imagesize import ImageSizeError, image_size


def test_hand_made_headers(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + struct.pack(">II", 640, 480)
        + b"\x08\x02\0\0\0"
    )
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a" + struct.pack("<HH", 31, 17) + b"\0" * 10)
    bmp = tmp_path / "a.bmp"
    # 14-byte file header, then a 40-byte info header with a negative (top-down) height
    bmp.write_bytes(b"BM" + b"\0" * 12 + struct.pack("<Iii", 40, 123, -45) + b"\0" * 28)
    assert image_size(png) == (640, 480)
    assert image_size(gif) == (31, 17)
    assert image_size(bmp) == (123, 45)


def test_jpeg_with_exif_segment_before_frame(tmp_path):
    app1 = b"\xff\xe1" + struct.pack(">H", 8) + b"Exif\0\0"
    sof2 = b"\xff\xc2" + struct.pack(">HBHHB", 11, 8, 300, 500, 3) + b"\0" * 3
    path = tmp_path / "a.jpg"
    path.write_bytes(b"\xff\xd8" + app1 + sof2 + b"\xff\xd9")
    assert image_size(path) == (500, 300)


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [("JPEG", "jpg"), ("PNG", "png"), ("GIF", "gif"), ("BMP", "bmp"), ("WEBP", "webp")],
)
@pytest.mark.parametrize("size", [(37, 21), (300, 1000)])
def test_agrees_with_pillow(tmp_path, fmt, suffix, size):
    image_module = pytest.importorskip("PIL.Image")
    path = tmp_path / f"x.{suffix}"
    image_module.new("RGB", size, (10, 200, 30)).save(path, fmt)
    with image_module.open(path) as opened:
        assert image_size(path) == opened.size


def test_webp_lossless_and_extended(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    lossless = tmp_path / "l.webp"
    image_module.new("RGB", (123, 77)).save(lossless, "WEBP", lossless=True)
    extended = tmp_path / "e.webp"
    image_module.new("RGBA", (50, 60), (1, 2, 3, 100)).save(extended, "WEBP")
    assert image_size(lossless) == (123, 77)
    assert image_size(extended) == (50, 60)


def test_unknown_and_truncated(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text("hello")
    with pytest.raises(ImageSizeError, match="not a JPEG"):
        image_size(text)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(b"\xff\xd8\xff\xe0")
    with pytest.raises(ImageSizeError, match="cut short"):
        image_size(cut)
