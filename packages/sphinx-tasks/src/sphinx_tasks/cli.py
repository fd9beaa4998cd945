"""Command line: ``sphinx-tasks convert SOURCE --format NAME --out FILE.jsonl``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .converters import CONVERTERS, ConversionError, ConvertOptions, convert
from .converters.jsonstream import JsonStreamError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphinx-tasks",
        description="SPHINX task data tools: convert datasets to conversation records.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert",
        help="convert a dataset's annotations to JSON-lines conversation records",
        description="Convert standard annotation files into LLaVA-style conversation records "
        '({"image", "conversations", "task", "source"} per line) with SPHINX task instructions; '
        "boxes are written in the padded-square frame of each image. A summary of records "
        "written and skipped (with reasons) goes to stderr.",
    )
    conv.add_argument(
        "source",
        type=Path,
        help="annotation file (or folder, for flickr30k-entities and image-folder)",
    )
    conv.add_argument(
        "--format", required=True, choices=sorted(CONVERTERS), help="the dataset's format"
    )
    conv.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output .jsonl file (written to a temporary name, then renamed)",
    )
    conv.add_argument(
        "--image-prefix", default="", help="prefix joined to every image path in the records"
    )
    conv.add_argument(
        "--image-root",
        type=Path,
        help="image folder, to read sizes from headers when annotations lack them",
    )
    conv.add_argument(
        "--annotations",
        type=Path,
        help="vqav2/okvqa: the answers file (SOURCE is the questions file); "
        "refcoco-refs: the COCO instances file with the boxes",
    )
    conv.add_argument(
        "--image-data", type=Path, help="Visual Genome image_data.json (image sizes and paths)"
    )
    conv.add_argument(
        "--class-names", type=Path, help="image-folder class names: JSON map or 'folder name' lines"
    )
    conv.add_argument(
        "--max-turns",
        type=int,
        default=10,
        help="most question/answer rounds per record (default 10)",
    )
    conv.add_argument("--split", help="keep only this split (refcoco-refs: train, val, testA, ...)")
    conv.add_argument(
        "--source-name",
        help='the "source" field for refcoco-refs records (refcoco, refcoco+, refcocog)',
    )
    conv.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    commands.add_parser("formats", help="list the dataset formats convert understands")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "formats":
        print("\n".join(sorted(CONVERTERS)))
        return 0
    if args.max_turns < 1:
        parser.error("--max-turns must be at least 1")
    options = ConvertOptions(
        image_prefix=args.image_prefix,
        image_root=args.image_root,
        annotations=args.annotations,
        image_data=args.image_data,
        class_names=args.class_names,
        max_turns=args.max_turns,
        split=args.split,
        source_name=args.source_name,
    )
    try:
        summary = convert(
            args.source, args.format, args.out, options, progress=not args.no_progress
        )
    except (ConversionError, JsonStreamError, OSError, UnicodeDecodeError) as exc:
        print(f"sphinx-tasks: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {summary.describe()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
