"""`sphinx-tile`: cut one image into a preset's views and save them with their layout."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

from ._house import run_cli, staged_dir
from .images import CLIP_MEAN_RGB, DECODINGS, DEFAULT_MAX_PIXELS
from .layout import Layout
from .presets import Preset, get_preset, list_presets

PROG = "sphinx-tile"
#: What sphinx-tile writes into its output folder (all it may replace there).
OUTPUTS = ("view_*.png", "layout.json", "grid.png")
_GRID_COLOURS = ("#ff3b30", "#34c759", "#007aff", "#ffcc00", "#af52de", "#ff9500")
_GRID_SIDE = 1024
_PRESET_FILES = (".json", ".yaml", ".yml")

EPILOG = """examples:
  sphinx-tile photo.jpg --preset sphinx-1k --out views/ --show
  sphinx-tile photo.jpg --preset my_preset.yaml --out views/ --overwrite
  sphinx-tile scan.png --preset anyres-internvl --decoding corrected --out scan_views/
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the example epilog as written and preset names (sphinx-light-1k) unbroken."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Cut an image into encoder-sized views (PNG files) and write their layout "
        "(JSON: the geometry that maps boxes between pixels, the padded square and each view).",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
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
        help="output folder, written as a whole: view_00.png, view_01.png, ..., layout.json "
        "(and grid.png with --show). Refused if it exists and is not empty, unless --overwrite",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output folder of an earlier run (only if it holds nothing "
        "but view_*.png, layout.json and grid.png)",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="also write grid.png: the padded image with each view's region outlined",
    )
    parser.add_argument(
        "--decoding",
        choices=DECODINGS,
        default=None,
        help="how the file becomes RGB: 'reference' (only convert('RGB'), as the SPHINX "
        "reference) or 'corrected' (EXIF orientation, alpha over the fill colour, 16-bit "
        "rescaled); default: the preset's (reference for sphinx*)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="refuse images, and padded images, with more pixels than this: a guard against "
        "decompression bombs (default: %(default)s; 0 disables the guard)",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version('sphinx-tiling')}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        written = run(
            args.image,
            args.preset,
            args.out,
            show=args.show,
            max_pixels=args.max_pixels,
            decoding=args.decoding,
            overwrite=args.overwrite,
        )
        print(f"wrote {len(written)} files to {args.out}")
        return 0

    return run_cli(PROG, body)


def run(
    image_path: str | Path,
    preset: str | Preset,
    out_dir: Path,
    *,
    show: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    decoding: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Tile `image_path` and write the views, layout.json and optionally grid.png.

    `preset` is a Preset, a preset name or a .json/.yaml preset file. The folder is filled under a hidden staging name and renamed when complete, so an
    error or an interrupt leaves no partial output; a rerun replaces the whole folder.
    """
    from .tiling import decode, tile

    limit = max_pixels or None
    inputs = [image_path]
    if isinstance(preset, (str, Path)) and str(preset).endswith(_PRESET_FILES):
        inputs.append(preset)
        preset = Preset.from_file(preset)
    preset = get_preset(preset)
    with staged_dir(out_dir, inputs, overwrite=overwrite, owns=OUTPUTS) as stage:
        image, _ = decode(image_path, preset, limit, decoding)  # errors name the file
        tiling = tile(image, preset, max_pixels=limit, decoding=decoding)
        names = [f"view_{i:02d}.png" for i in range(len(tiling.views))]
        for name, view in zip(names, tiling.views, strict=True):
            view.save(stage / name, format="PNG")
        layout_json = json.dumps(tiling.layout.to_dict(), indent=2) + "\n"
        (stage / "layout.json").write_text(layout_json)
        names.append("layout.json")
        if show:
            draw_grid(image, tiling.layout, fill=preset.fill).save(stage / "grid.png", "PNG")
            names.append("grid.png")
    return [out_dir / name for name in names]


def draw_grid(image, layout: Layout, fill: tuple[int, int, int] = CLIP_MEAN_RGB):
    """The padded square, at most 1024 pixels wide, with each view's region outlined.

    The image is shrunk before it is pasted, so the picture costs what it shows, not the
    full padded square (a 1 x 100000 strip would otherwise need a 100000^2 canvas).
    """
    from PIL import Image, ImageDraw

    side = layout.square_side
    scale = min(1.0, _GRID_SIDE / side)
    size = max(1, round(side * scale))
    shown = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    picture = Image.new("RGB", (size, size), fill)
    small = image if shown == image.size else image.resize(shown, Image.Resampling.BICUBIC)
    picture.paste(small, tuple(round(v * scale) for v in layout.offset))
    pen = ImageDraw.Draw(picture)
    for view in layout.views:
        x1, y1, x2, y2 = (v * size for v in view.box)
        colour = _GRID_COLOURS[view.index % len(_GRID_COLOURS)]
        width = 5 if view.kind == "global" else 2
        pen.rectangle((x1, y1, x2 - 1, y2 - 1), outline=colour, width=width)
        pen.text((x1 + 6, y1 + 4), str(view.index), fill=colour)
    return picture


if __name__ == "__main__":
    sys.exit(main())
