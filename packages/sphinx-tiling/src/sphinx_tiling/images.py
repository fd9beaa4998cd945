"""Turn whatever the caller has (path, bytes, array, PIL image) into a plain RGB PIL image."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._house import one_line

#: The CLIP mean as 8-bit RGB, truncated as the SPHINX reference does: int(mean * 255).
CLIP_MEAN_RGB: tuple[int, int, int] = (122, 116, 104)

#: Images with more pixels than this are refused before decoding (decompression bombs).
DEFAULT_MAX_PIXELS = 100_000_000

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Image.Image

#: How a decoded image becomes RGB. "reference": only ``image.convert("RGB")``, as the SPHINX
#: reference does (no EXIF orientation, alpha dropped, 16-bit grey clipped), which reproduces
#: the released checkpoints' inputs. "corrected": EXIF orientation, alpha composited over the
#: fill colour, 16-bit grey rescaled, float images scaled from their value range.
DECODINGS = ("reference", "corrected")

_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


class ImageLoadError(ValueError):
    """An input could not be turned into an image; the message names the input."""


def describe_source(src: object) -> str:
    """A short human name for an input, used in error messages."""
    if isinstance(src, (str, os.PathLike)):
        return f"'{os.fspath(src)}'"
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    if isinstance(src, np.ndarray):
        return f"<array {src.dtype} {tuple(src.shape)}>"
    if isinstance(src, Image.Image):
        return f"<PIL image {src.mode} {src.size[0]}x{src.size[1]}>"
    return f"<{type(src).__name__}>"


def load_image(
    src: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    fill: tuple[int, int, int] = CLIP_MEAN_RGB,
    decoding: str = "corrected",
) -> Image.Image:
    """Decode `src` into an RGB image, the `decoding` way (see `DECODINGS`).

    "corrected" (the default) applies EXIF orientation, composites transparency over `fill`
    (the padding colour, so transparent pixels look like padding to the encoder), scales
    16-bit grey to 8 bits and float images from their range (`to_rgb`). "reference" only
    calls ``convert("RGB")``, like the SPHINX reference code. Images larger than
    `max_pixels` are refused before they are decoded (Pillow's own `Image.MAX_IMAGE_PIXELS`
    bomb check still applies on top).
    """
    check_decoding(decoding)
    name = describe_source(src)
    if isinstance(src, Image.Image):
        image = src
    elif isinstance(src, np.ndarray):
        image = _image_from_array(src, name)
    elif isinstance(src, (bytes, bytearray, memoryview)):
        image = _open(io.BytesIO(bytes(src)), name, max_pixels)
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise ImageLoadError(f"{name}: no such image file")
        image = _open(path, name, max_pixels)
    else:
        raise ImageLoadError(
            f"{name}: expected a path, bytes, a numpy HxWxC uint8 array or a PIL image"
        )
    _check_size(image, name, max_pixels)
    try:
        if decoding == "reference":
            return reference_rgb(image)
        # exif_transpose copies even upright images; skip it for them.
        if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        return to_rgb(image, fill=fill)
    except Exception as err:  # a hostile file can break a decoder in any way
        raise ImageLoadError(f"{name}: cannot decode image ({one_line(err)})") from err


def check_decoding(decoding: str) -> str:
    if decoding not in DECODINGS:
        raise ValueError(f"decoding={decoding!r}: expected one of {DECODINGS}")
    return decoding


def reference_rgb(image: Image.Image) -> Image.Image:
    """RGB as the SPHINX reference gets it: Pillow's ``convert("RGB")`` and nothing else.

    Pillow cannot convert premultiplied grey (La) straight to RGB; it goes through LA, which
    is what Pillow itself does for premultiplied RGBa (un-premultiply, drop alpha).
    """
    if image.mode == "RGB":
        return image
    if image.mode == "La":
        image = image.convert("LA")
    return image.convert("RGB")


def to_rgb(image: Image.Image, fill: tuple[int, int, int] = CLIP_MEAN_RGB) -> Image.Image:
    """Convert any PIL mode to RGB; alpha is composited over `fill`.

    16-bit grey is divided by 257 (65535 -> 255). Float images (mode F) are scaled by their
    value range: values within [0, 1] are taken as fractions (x 255), values within
    [0, 255] as levels, anything else is stretched linearly from its minimum to its maximum;
    NaN counts as 0 and infinities as the extreme finite values.
    """
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image).astype(np.float64)
        grey = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode == "F":
        return Image.fromarray(_float_levels(np.asarray(image)), "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode == "La":
        image = image.convert("LA")  # Pillow has no La -> RGBA conversion; LA un-premultiplies
    if image.mode in ("LA", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, tuple(fill))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _float_levels(values: np.ndarray) -> np.ndarray:
    """8-bit levels of a float image, scaled by its value range (see `to_rgb`)."""
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=high, neginf=low)
    if low >= 0.0 and high <= 1.0:
        levels = values * 255.0
    elif low >= 0.0 and high <= 255.0:
        levels = values
    else:
        levels = (values - low) * (255.0 / (high - low))
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)


def pad_to_square(image: Image.Image, fill: tuple[int, int, int] = CLIP_MEAN_RGB) -> Image.Image:
    """Centre the image on a square canvas of side max(W, H), as SPHINX does before resizing.

    The offset is ((S - W) // 2, (S - H) // 2); a square image is returned unchanged.
    Single-band images are padded with the first fill value, RGBA with an opaque fill.
    """
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    bands = len(image.getbands())
    canvas_fill = fill[0] if bands == 1 else (*fill, 255)[:bands]
    square = Image.new(image.mode, (side, side), canvas_fill)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def _open(fp: Path | io.BytesIO, name: str, max_pixels: int | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(fp)
            _check_size(image, name, max_pixels)
            image.load()
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageLoadError(f"{name}: refused as a decompression bomb ({err})") from err
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"{name}: not a recognised image format") from err
    except FileNotFoundError as err:
        raise ImageLoadError(f"{name}: no such image file") from err
    except (MemoryError, RecursionError) as err:
        raise ImageLoadError(f"{name}: too large to decode ({type(err).__name__})") from err
    except Exception as err:  # decoders of hostile files fail with struct, index, EOF errors
        raise ImageLoadError(f"{name}: truncated or corrupt image ({one_line(err)})") from err
    return image


def _check_size(image: Image.Image, name: str, max_pixels: int | None) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageLoadError(f"{name}: image has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageLoadError(
            f"{name}: {width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels}"
        )


def _image_from_array(array: np.ndarray, name: str) -> Image.Image:
    if array.dtype != np.uint8:
        raise ImageLoadError(f"{name}: expected a uint8 array, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), "L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        mode = "RGB" if array.shape[2] == 3 else "RGBA"
        return Image.fromarray(np.ascontiguousarray(array), mode)
    raise ImageLoadError(
        f"{name}: expected an HxW or HxWxC array with C in (1, 3, 4), got shape {array.shape}"
    )
