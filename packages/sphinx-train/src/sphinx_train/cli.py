"""``sphinx-train``: one command with subcommands (chat, convert-accessory; more to come)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _chat(args: argparse.Namespace) -> int:
    from sphinx_train.checkpoint import load_model

    model = load_model(args.model, device=args.device)
    result = model.chat(
        args.image,
        args.question,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
    )
    print(result.text)
    if result.boxes and args.image is not None:
        output = args.boxes_output or Path(args.image).with_name(
            Path(args.image).stem + "_boxes.png"
        )
        draw_boxes(args.image, result, output)
        print(f"boxes drawn to {output}", file=sys.stderr)
    return 0


def draw_boxes(image_path, result, output: Path) -> None:
    """Save the image with the answer's boxes (and named detections' names) drawn on it."""
    from PIL import ImageDraw

    from sphinx_tiling import load_image

    image = load_image(image_path)
    draw = ImageDraw.Draw(image)
    named = {box: name for name, boxes in result.detections for box in boxes}
    for box in result.boxes:
        draw.rectangle(box, outline=(255, 0, 0), width=max(2, image.width // 200))
        if box in named:
            draw.text((box[0] + 3, box[1] + 2), named[box], fill=(255, 0, 0))
    temporary = output.with_name(output.name + ".tmp" + output.suffix)
    image.save(temporary)
    temporary.replace(output)


def _convert(args: argparse.Namespace) -> int:
    from sphinx_train.accessory import convert_accessory

    written = convert_accessory(
        args.source, args.output, encoder=args.encoder, tokenizer=args.tokenizer, dtype=args.dtype
    )
    print(f"converted {args.source} -> {written}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphinx-train", description="Run, convert (and later train) SPHINX models."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser(
        "chat",
        help="answer a question about an image",
        description="Answer a question about an image.",
    )
    chat.add_argument(
        "--model",
        required=True,
        type=Path,
        help="model folder (save_pretrained / convert-accessory output)",
    )
    chat.add_argument("--image", help="image file; leave out for a text-only question")
    chat.add_argument("question", help="the question (the sphinx template is applied)")
    chat.add_argument(
        "--max-new-tokens", type=int, default=512, help="most tokens to generate (default 512)"
    )
    chat.add_argument(
        "--temperature",
        type=float,
        default=0.1,
        help="sampling temperature, 0 = greedy (default 0.1)",
    )
    chat.add_argument(
        "--top-p", type=float, default=0.75, help="nucleus sampling mass (default 0.75)"
    )
    chat.add_argument("--seed", type=int, default=0, help="random seed for sampling (default 0)")
    chat.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    chat.add_argument(
        "--boxes-output",
        type=Path,
        default=None,
        help="where to write the image with the answer's boxes (default: IMAGE_boxes.png beside it)",
    )
    chat.set_defaults(run=_chat)

    convert = commands.add_parser(
        "convert-accessory",
        help="convert a reference SPHINX checkpoint",
        description="Convert a LLaMA2-Accessory SPHINX checkpoint (consolidated.XX-of-YY.model.pth, "
        "config.json, meta.json, tokenizer.model) into a sphinx-train model folder.",
    )
    convert.add_argument("source", type=Path, help="folder of the reference checkpoint")
    convert.add_argument("output", type=Path, help="model folder to write (replaced when complete)")
    convert.add_argument(
        "--encoder",
        default="sphinx",
        help="sphinx-encoders preset of the vision part (default sphinx)",
    )
    convert.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="tokenizer.model to use (default: SOURCE/tokenizer.model)",
    )
    convert.add_argument(
        "--dtype",
        choices=["bfloat16", "float16", "float32"],
        default=None,
        help="convert weights to this dtype (default: keep the checkpoint's)",
    )
    convert.set_defaults(run=_convert)
    for module_name in COMMAND_MODULES:
        _register_commands(module_name, commands)
    return parser


# Subcommands that live beside their code. Each module defines `register(commands)`, which
# adds its parsers with `set_defaults(run=handler)`; it imports only argparse at module
# level, so that `--help` stays instant.
COMMAND_MODULES = ("sphinx_train.training.command", "sphinx_train.evaluation.command")


def _register_commands(module_name: str, commands) -> None:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and module_name.startswith(err.name):
            return  # that part of the package is not built yet
        raise
    module.register(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"sphinx-train {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
