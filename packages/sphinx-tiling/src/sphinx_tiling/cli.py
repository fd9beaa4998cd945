"""`sphinx-tile`: cut one image into a preset's views and save them with their layout."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from .images import CLIP_MEAN_RGB, DEFAULT_MAX_PIXELS, ImageLoadError, load_image
from .layout import Layout
from .presets import Preset, get_preset, list_presets
from .tiling import tile

_GRID_COLOURS = ("#ff3b30", "#34c759", "#007aff", "#ffcc00", "#af52de", "#ff9500")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphinx-tile",
        description="Cut an image into encoder-sized views (PNG files) and write their layout "
        "(JSON: the geometry that maps boxes between pixels, the padded square and each view).",
    )
    parser.add_argument("image", help="the image file to tile")
    parser.add_argument(
        "--preset",
        default="sphinx-1k",
        help=f"a preset name ({', '.join(list_presets())}) or a preset .json/.yaml file "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output folder; created if missing. Writes view_00.png, view_01.png, ... "
        "and layout.json",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="also write grid.png: the image with each view's region outlined",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="refuse images with more pixels than this, a guard against decompression bombs "
        "(default: %(default)s; 0 disables the guard)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        preset = _resolve_preset(args.preset)
        written = run(args.image, preset, args.out, show=args.show, max_pixels=args.max_pixels)
    except (ImageLoadError, ValueError, OSError) as err:
        print(f"sphinx-tile: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def run(
    image_path: str | Path,
    preset: Preset,
    out_dir: Path,
    *,
    show: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> list[Path]:
    """Tile `image_path` and write the views, layout.json and optionally grid.png."""
    limit = max_pixels or None
    image = load_image(image_path, max_pixels=limit, fill=preset.fill)
    tiling = tile(image, preset, max_pixels=limit)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, view in enumerate(tiling.views):
        written.append(_save_png(view, out_dir / f"view_{index:02d}.png"))
    layout_json = json.dumps(tiling.layout.to_dict(), indent=2) + "\n"
    written.append(_write_atomic(out_dir / "layout.json", layout_json.encode()))
    if show:
        picture = draw_grid(image, tiling.layout, fill=preset.fill)
        written.append(_save_png(picture, out_dir / "grid.png"))
    return written


def draw_grid(
    image: Image.Image, layout: Layout, fill: tuple[int, int, int] = CLIP_MEAN_RGB
) -> Image.Image:
    """The padded square with each view's region outlined (view 0 thicker)."""
    side = layout.square_side
    scale = min(1.0, 1024 / side)
    size = max(1, round(side * scale))
    square = Image.new("RGB", (side, side), fill)
    square.paste(image, layout.offset)
    picture = square.resize((size, size), Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(picture)
    for view in layout.views:
        x1, y1, x2, y2 = (v * size for v in view.box)
        colour = _GRID_COLOURS[view.index % len(_GRID_COLOURS)]
        width = 5 if view.kind == "global" else 2
        pen.rectangle((x1, y1, x2 - 1, y2 - 1), outline=colour, width=width)
        pen.text((x1 + 6, y1 + 4), str(view.index), fill=colour)
    return picture


def _resolve_preset(value: str) -> Preset:
    if value.endswith((".json", ".yaml", ".yml")):
        return Preset.from_file(value)
    return get_preset(value)


def _save_png(image: Image.Image, path: Path) -> Path:
    encoded = io.BytesIO()
    image.save(encoded, format="PNG")
    return _write_atomic(path, encoded.getvalue())


def _write_atomic(path: Path, data: bytes) -> Path:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


if __name__ == "__main__":
    sys.exit(main())
