"""Hostile image files (huge declared size, truncated data) get one line naming the file."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from sphinx_apps.images import load_mask, load_rgb


def _png_header_only(path, width, height):
    """A PNG whose IHDR declares width x height but holds a single tiny IDAT chunk."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("reader", [load_rgb, lambda p: load_mask(p, (10, 10))])
def test_bomb_sized_png_is_refused_naming_the_file(tmp_path, reader):
    path = tmp_path / "bomb.png"
    _png_header_only(path, 100_000, 100_000)  # 1e10 pixels, over Pillow's 2 x 89.5 M limit
    with pytest.raises(ValueError) as error:
        reader(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message


def test_truncated_mask_names_the_file(tmp_path):
    path = tmp_path / "mask.png"
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"mask\.png"):
        load_mask(path, (40, 40))
