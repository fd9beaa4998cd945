"""``sphinx-train``: one command with subcommands (chat, convert-accessory, fit, eval, ...).

Only argparse is imported at module level, so that ``--help`` and ``--version`` are instant.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "sphinx-train"

CHAT_EXAMPLES = """examples:
  sphinx-train chat --model my-sphinx --image photo.jpg "What is in the image?"
  sphinx-train chat --model my-sphinx --image photo.jpg --draw boxes.png \\
      "Detect all objects shown in the image."
  sphinx-train chat --model sphinx-nano --interactive     # a preset: random weights
  sphinx-train chat --model my-sphinx --generation reference-eval --max-new-tokens 10 "Hi?"
"""

CONVERT_EXAMPLES = """examples:
  sphinx-train convert-accessory /ckpt/SPHINX-1k /models/sphinx-1k
  sphinx-train convert-accessory /ckpt/SPHINX /models/sphinx --dtype bf16 --overwrite
  # first release (shards only): name the LLM and the tokenizer by hand
  sphinx-train convert-accessory /ckpt/SPHINX-v1 /models/sphinx-v1 --llama-type llama_ens \\
      --llm-shape llama2-13b --tokenizer /models/llama-2/tokenizer.model
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected an integer >= 1")
    return value


def _temperature(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text}: expected a finite number >= 0")
    return value


def _top_p(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: expected a number in (0, 1]")
    return value


def _load_chat_model(args: argparse.Namespace):
    """A model folder, or a preset name built with random weights (said plainly)."""
    from sphinx_train.checkpoint import check_device, load_model

    check_device(args.device)
    if Path(args.model).is_dir():
        return load_model(args.model, device=args.device)
    from sphinx_train.presets import create_model, get_model_preset

    if not Path(args.model).exists():
        try:
            get_model_preset(args.model)
        except KeyError:
            raise ValueError(
                f"{args.model}: neither a model folder nor a model preset "
                "(see sphinx_train.list_models())"
            ) from None
    print(
        f"{PROG} chat: {args.model} is a preset with RANDOM weights: the answers are noise",
        file=sys.stderr,
    )
    return create_model(args.model, device=args.device)


def _generation_options(args: argparse.Namespace) -> dict:
    options = {"generation": args.generation}
    for key in ("max_new_tokens", "temperature", "top_p", "seed"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    return options


def _answer(model, image, conversation, options: dict):
    """Generate one answer, printing it as the tokens come."""
    from sphinx_train.generation import TextStreamer, get_generation_preset

    preset = get_generation_preset(options["generation"] or model.processor.generation)
    preset = preset.replace(**{k: v for k, v in options.items() if k != "generation"})

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    streamer = TextStreamer(model.require_tokenizer(), preset, write)
    result = model.chat(image, conversation, generation=preset, on_token=streamer)
    streamer.finish(result.text)
    write("\n")
    return result


def _chat(args: argparse.Namespace) -> int:
    if args.draw is not None and args.image is None:
        raise ValueError("--draw needs --image")
    if args.question is None and not args.interactive:
        raise ValueError("give a question, or --interactive for a session")
    if args.question is not None:
        from sphinx_train.processor import check_conversation

        check_conversation(args.question)
    if args.draw is not None:
        from sphinx_train._house import check_output

        check_output(args.draw, [args.image], overwrite=args.overwrite)
    model = _load_chat_model(args)
    options = _generation_options(args)
    messages: list[dict] = []
    question = args.question
    while True:
        if question is None:
            try:
                question = input("> ")
            except EOFError:
                return 0
            if not question.strip():
                return 0
        messages.append({"role": "user", "content": question})
        result = _answer(model, args.image, messages, options)
        messages.append({"role": "assistant", "content": result.text})
        if args.draw is not None and result.boxes:
            draw_boxes(model, args.image, result, args.draw, overwrite=True)
            print(f"boxes drawn to {args.draw}", file=sys.stderr)
        if not args.interactive:
            return 0
        question = None


def draw_boxes(model, image_path, result, output: Path, *, overwrite: bool = False) -> None:
    """Save the image with the answer's boxes (and named detections' names) drawn on it."""
    from PIL import ImageDraw

    from sphinx_train._house import staged_file

    image = model.processor.load_image(image_path).copy()
    draw = ImageDraw.Draw(image)
    named = {box: name for name, boxes in result.detections for box in boxes}
    for box in result.boxes:
        draw.rectangle(box, outline=(255, 0, 0), width=max(2, image.width // 200))
        if box in named:
            draw.text((box[0] + 3, box[1] + 2), named[box], fill=(255, 0, 0))
    with staged_file(output, [image_path], overwrite=overwrite) as stage:
        image.save(stage, format=_image_format(output))


def _image_format(path: Path) -> str:
    from PIL import Image

    Image.init()
    try:
        return Image.EXTENSION[Path(path).suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: unknown image extension (use .png or .jpg)") from None


def _convert(args: argparse.Namespace) -> int:
    from sphinx_train.accessory import convert_accessory

    written = convert_accessory(
        args.source,
        args.output,
        encoder=args.encoder,
        tokenizer=args.tokenizer,
        dtype=args.dtype,
        overwrite=args.overwrite,
        llama_type=args.llama_type,
        llm_args=args.llm_shape,
    )
    print(f"converted {args.source} -> {written}")
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("sphinx-train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run, convert, train and evaluate SPHINX models.",
        epilog="examples:\n  sphinx-train chat --model my-sphinx --image photo.jpg 'Hi?'\n"
        "  sphinx-train convert-accessory /ckpt/SPHINX-1k /models/sphinx-1k",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_chat(commands)
    _add_convert(commands)
    for module_name in COMMAND_MODULES:
        _register_commands(module_name, commands)
    return parser


def _add_chat(commands) -> None:
    chat = commands.add_parser(
        "chat",
        help="answer a question about an image",
        description="Answer a question about an image; the answer is printed as it is "
        "generated. Defaults follow the reference chat (generation preset reference-chat: "
        "stop at a new line + ###, temperature 0.1, top-p 0.5, 512 tokens, seed 0).",
        epilog=CHAT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument(
        "--model",
        required=True,
        help="model folder (save_pretrained / convert-accessory output), or a model preset "
        "name such as sphinx-nano (random weights, for trying the pipeline)",
    )
    chat.add_argument("--image", help="image file; leave out for a text-only question")
    chat.add_argument(
        "question", nargs="?", help="the question (the model's template is applied)"
    )
    chat.add_argument(
        "--interactive", action="store_true", help="a multi-turn session: one question a line"
    )
    chat.add_argument(
        "--generation",
        default=None,
        help="generation preset: reference-chat (the model's default) or reference-eval",
    )
    chat.add_argument(
        "--max-new-tokens", type=_positive_int, default=None, help="most tokens to generate"
    )
    chat.add_argument(
        "--temperature", type=_temperature, default=None, help="sampling temperature, 0 = greedy"
    )
    chat.add_argument("--top-p", type=_top_p, default=None, help="nucleus sampling mass in (0, 1]")
    chat.add_argument("--seed", type=int, default=None, help="random seed for sampling")
    chat.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    chat.add_argument(
        "--draw",
        type=Path,
        default=None,
        metavar="OUT",
        help="write the image with the answer's boxes drawn to OUT (.png/.jpg); nothing is "
        "written unless asked",
    )
    chat.add_argument("--overwrite", action="store_true", help="let --draw replace OUT")
    chat.set_defaults(run=_chat)


def _add_convert(commands) -> None:
    convert = commands.add_parser(
        "convert-accessory",
        help="convert a reference SPHINX checkpoint",
        description="Convert a LLaMA2-Accessory SPHINX checkpoint (consolidated.XX-of-YY.model.pth, "
        "config.json, meta.json, tokenizer.model) into a sphinx-train model folder. The output "
        "is written under a hidden name and renamed when complete; it may not be, hold or lie "
        "inside the source.",
        epilog=CONVERT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("source", type=Path, help="folder of the reference checkpoint")
    convert.add_argument("output", type=Path, help="model folder to write")
    convert.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output folder (only if it holds nothing but model files)",
    )
    convert.add_argument(
        "--encoder",
        default=None,
        help="sphinx-encoders preset of the vision part (default: the llama_type's: sphinx, "
        "sphinx-light, sphinx-light-1k, sphinx-moe or sphinx-moe-1k)",
    )
    convert.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="tokenizer.model to use (default: SOURCE/tokenizer.model)",
    )
    convert.add_argument(
        "--dtype",
        default=None,
        help="convert weights to this dtype: float32|fp32, bfloat16|bf16, float16|fp16|half "
        "(default: keep the checkpoint's)",
    )
    convert.add_argument(
        "--llama-type",
        default=None,
        help="reference llama_type (llama_ens, llama_ens5, llama_ens10, llama_ens_light, "
        "llama_ens5_light) when there is no meta.json",
    )
    convert.add_argument(
        "--llm-shape",
        default=None,
        help="LLM shape (llama2-7b, llama2-13b, tinyllama-1.1b) when there is no config.json",
    )
    convert.set_defaults(run=_convert)


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
    from sphinx_train._house import run_cli

    args = build_parser().parse_args(argv)
    return run_cli(
        f"{PROG} {args.command}",
        lambda: args.run(args),
        errors=(OSError, ValueError, KeyError, RuntimeError),
    )


if __name__ == "__main__":
    sys.exit(main())
