"""Image width and height read from file headers (JPEG, PNG, GIF, BMP, WebP), standard library only.

Like PIL's ``Image.size`` this ignores the EXIF orientation, which is also what the reference
padding sees.
"""

from __future__ import annotations

import struct
from os import PathLike
from pathlib import Path

_HEAD_BYTES = 64
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageSizeError(ValueError):
    """The file is not an image this reader understands, or its header is cut short."""


def _jpeg_size(handle, path: str) -> tuple[int, int]:
    handle.seek(2)
    while True:
        byte = handle.read(1)
        while byte and byte != b"\xff":
            byte = handle.read(1)
        while byte == b"\xff":
            byte = handle.read(1)
        if not byte:
            raise ImageSizeError(f"{path}: JPEG ended before its frame header")
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD9:
            continue  # markers without a length field
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            raise ImageSizeError(f"{path}: JPEG segment cut short")
        (length,) = struct.unpack(">H", length_bytes)
        if marker in _JPEG_SOF:
            frame = handle.read(5)
            if len(frame) < 5:
                raise ImageSizeError(f"{path}: JPEG frame header cut short")
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        handle.seek(length - 2, 1)


def _webp_size(head: bytes, path: str) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    raise ImageSizeError(f"{path}: unsupported WebP chunk {chunk!r}")


def image_size(path: str | PathLike) -> tuple[int, int]:
    """(width, height) of an image file, from its header only."""
    name = str(path)
    with Path(path).open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
            return struct.unpack(">II", head[16:24])
        if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
            return struct.unpack("<HH", head[6:10])
        if head[:2] == b"BM" and len(head) >= 26:
            (header_size,) = struct.unpack("<I", head[14:18])
            if header_size == 12:
                return struct.unpack("<HH", head[18:22])
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_size(head, name)
        if head[:2] == b"\xff\xd8":
            return _jpeg_size(handle, name)
    raise ImageSizeError(f"{name}: not a JPEG, PNG, GIF, BMP or WebP file")
