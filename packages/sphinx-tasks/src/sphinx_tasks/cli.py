"""Command line: ``sphinx-tasks convert SOURCE --format NAME --out FILE.jsonl``."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version
from pathlib import Path

from ._house import run_cli
from .converters import ConvertOptions, convert, list_converters

PROG = "sphinx-tasks"

EXAMPLES = """examples:
  sphinx-tasks convert annotations/instances_val2017.json --format coco-detection \\
      --image-prefix coco/val2017 --out coco_det.jsonl
  sphinx-tasks convert refs.p --format refcoco-refs --annotations instances.json \\
      --split train --out refcoco_train.jsonl
  sphinx-tasks convert mmbench_dev_en.tsv --format mmbench --images-out mmbench_images \\
      --image-prefix mmbench_images --out mmbench.jsonl
  sphinx-tasks formats
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="SPHINX task data tools: convert datasets to conversation records.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version(PROG)}")
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert",
        help="convert a dataset's annotations to JSON-lines conversation records",
        description="Convert standard annotation files into LLaVA-style conversation records "
        '({"image", "conversations", "task", "source"} per line) with SPHINX task instructions; '
        "boxes are written in the padded-square frame of each image. A summary of records "
        "written and skipped (with reasons) goes to stderr. An existing output is refused "
        "unless --overwrite; the output never replaces an input and appears only when complete.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    conv.add_argument(
        "source",
        type=Path,
        help="annotation file (or folder, for flickr30k-entities and image-folder)",
    )
    conv.add_argument(
        "--format", required=True, choices=list_converters(), help="the dataset's format"
    )
    conv.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output .jsonl file (written under a hidden name, renamed when complete)",
    )
    conv.add_argument(
        "--overwrite", action="store_true", help="replace --out (and --images-out) if they exist"
    )
    conv.add_argument(
        "--image-prefix",
        default="",
        help="prefix joined to every image path in the records; paths from the data must "
        "stay inside it (absolute or '..' paths are refused)",
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
        "refcoco-refs: the COCO instances file with the boxes; "
        "textvqa: the Rosetta OCR file (adds the 'Reference OCR token:' line)",
    )
    conv.add_argument(
        "--image-data", type=Path, help="Visual Genome image_data.json (image sizes and paths)"
    )
    conv.add_argument(
        "--class-names", type=Path, help="image-folder class names: JSON map or 'folder name' lines"
    )
    conv.add_argument(
        "--images-out",
        type=Path,
        help="mmbench: folder to write the TSV's embedded images into (<index>.<ext>)",
    )
    conv.add_argument(
        "--max-turns",
        type=int,
        default=10,
        help="most question/answer rounds per record (default 10)",
    )
    conv.add_argument(
        "--split",
        help="refcoco-refs, ocrvqa, scienceqa: keep only this split (default train; "
        "e.g. val, testA)",
    )
    conv.add_argument(
        "--source-name",
        help='the "source" field for formats shared by several datasets '
        "(refcoco-refs: refcoco, refcoco+, refcocog; doc-layout: publaynet, doclaynet)",
    )
    conv.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    commands.add_parser("formats", help="list the dataset formats convert understands")
    return parser


def _convert(args: argparse.Namespace) -> int:
    options = ConvertOptions(
        image_prefix=args.image_prefix,
        image_root=args.image_root,
        annotations=args.annotations,
        image_data=args.image_data,
        class_names=args.class_names,
        max_turns=args.max_turns,
        split=args.split,
        source_name=args.source_name,
        images_out=args.images_out,
    )
    summary = convert(
        args.source,
        args.format,
        args.out,
        options,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(f"{args.out}: {summary.describe()}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "formats":
        print("\n".join(list_converters()))
        return 0
    if args.max_turns < 1:
        parser.error("--max-turns must be at least 1")
    return run_cli(PROG, lambda: _convert(args))


if __name__ == "__main__":
    sys.exit(main())
