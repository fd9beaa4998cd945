"""``sphinx-mix``: mix checkpoints from the command line.

Exit codes: 0 done, 1 bad input (one-line error), 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import sys
import warnings
from importlib.metadata import version

from ._house import run_cli
from .digests import DIGESTS
from .errors import MixError
from .options import ON_MISSING

EXAMPLES = """examples:
  sphinx-mix linear real/ synthetic/ --beta 0.7 --out mixed/
  sphinx-mix linear a.safetensors b.safetensors c.safetensors --out soup/ --out-dtype bf16
  sphinx-mix task-arithmetic math/ code/ --base llama/ --scales 0.5 --out merged/
  sphinx-mix run recipe.yml --overwrite
"""


def _add_options(parser: argparse.ArgumentParser, with_output: bool = True) -> None:
    if with_output:
        parser.add_argument(
            "--out", required=True, help="output folder (must not exist unless --overwrite)"
        )
    group = parser.add_argument_group("options")
    group.add_argument("--compute-dtype", help="dtype of the arithmetic (default float32)")
    group.add_argument(
        "--out-dtype", help="dtype of every floating output tensor (default: the first source's)"
    )
    group.add_argument("--device", help="device for the arithmetic, e.g. cuda (default cpu)")
    group.add_argument(
        "--shard-size", help="largest output shard, e.g. 2GB or 500MiB (default 5GB)"
    )
    group.add_argument(
        "--on-missing",
        choices=ON_MISSING,
        help="keys missing from a source or with different shapes: stop with an error (default), "
        "skip them, or copy the first source's tensor",
    )
    group.add_argument(
        "--check-finite",
        action="store_true",
        default=None,
        help="stop if a result holds NaN or Inf",
    )
    group.add_argument(
        "--no-hash",
        dest="hash_inputs",
        action="store_false",
        default=None,
        help="do not record a digest of the input files in the output metadata",
    )
    group.add_argument(
        "--digest",
        choices=DIGESTS,
        help="digest recorded for every input file: blake3 (default, cryptographic and ~4x "
        "faster) or sha256 (comparable with sha256sum and model hub listings)",
    )
    group.add_argument(
        "--overwrite", action="store_true", default=None, help="replace an existing output folder"
    )
    group.add_argument(
        "--threads",
        type=int,
        help="threads for the arithmetic (default 1: on two cores the other one is busy "
        "writing and hashing; e.g. --threads 4 on a larger machine)",
    )
    group.add_argument(
        "--no-direct-io",
        dest="direct_io",
        action="store_false",
        default=None,
        help="write through the page cache instead of O_DIRECT (by default the output goes "
        "straight to disk where the file system allows, leaving the inputs cached)",
    )
    group.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="hide the progress bar",
    )


def _add_selection(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--include",
        action="append",
        metavar="PATTERN",
        help="mix only keys matching this glob (repeatable); others are copied from the first source",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        metavar="PATTERN",
        help="copy keys matching this glob from the first source",
    )
    parser.add_argument(
        "--rule",
        action="append",
        metavar=f"PATTERN={what.upper()}",
        type=_parse_rule,
        help=f"per-pattern {what}, comma-separated, one per source, e.g. '*.mlp.*=0.5,0.5'; "
        "the first matching rule wins",
    )


def _parse_rule(text: str) -> tuple[str, list[float]]:
    pattern, _, values = text.rpartition("=")
    try:
        numbers = [float(value) for value in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected PATTERN=NUMBER,NUMBER,...") from None
    if not pattern:
        raise argparse.ArgumentTypeError(f"{text!r}: expected PATTERN=NUMBER,NUMBER,...")
    return pattern, numbers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphinx-mix",
        description="Mix checkpoints tensor by tensor without loading whole models: linear "
        "mixes, task arithmetic, uniform soups. Inputs: safetensors files or folders (sharded "
        "with an index), Hugging Face model folders, torch .bin/.pth, or the reference "
        "consolidated.XX-of-YY.model.pth shards. Output: sharded safetensors with an index.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('sphinx-mix')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a YAML/JSON recipe (ours, or a mergekit config: linear, slerp, ties, "
        "dare_linear, dare_ties, model_stock)",
    )
    run.add_argument("recipe", help="recipe file (.yml, .yaml or .json)")
    run.add_argument("--out", help="output folder (default: the recipe's 'output')")
    run.add_argument(
        "--seed",
        type=int,
        help="seed of the random drop of dare_linear / dare_ties, e.g. --seed 7 (default 0)",
    )
    _add_options(run, with_output=False)

    mix = commands.add_parser("linear", help="weighted sum of checkpoints")
    mix.add_argument("sources", nargs="+", help="checkpoints (files or folders)")
    weights = mix.add_mutually_exclusive_group()
    weights.add_argument(
        "--weights", type=float, nargs="+", help="one weight per source (default: equal)"
    )
    weights.add_argument(
        "--beta", type=float, help="two sources only: beta * first + (1 - beta) * second"
    )
    mix.add_argument(
        "--no-normalize",
        dest="normalize",
        action="store_false",
        help="use the weights as given instead of dividing them by their sum",
    )
    _add_selection(mix, "weights")
    _add_options(mix)

    task = commands.add_parser("task-arithmetic", help="base + sum of scaled (source - base)")
    task.add_argument("sources", nargs="+", help="fine-tuned checkpoints")
    task.add_argument("--base", required=True, help="the base checkpoint")
    task.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0],
        help="one scale per source, or one for all (default 1)",
    )
    _add_selection(task, "scales")
    _add_options(task)

    soup = commands.add_parser("uniform-soup", help="plain average of checkpoints")
    soup.add_argument("sources", nargs="+", help="checkpoints (files or folders)")
    _add_options(soup)
    return parser


_OPTION_NAMES = (
    "compute_dtype",
    "out_dtype",
    "device",
    "shard_size",
    "on_missing",
    "check_finite",
    "hash_inputs",
    "digest",
    "overwrite",
    "progress",
    "threads",
    "direct_io",
)


def _run(args: argparse.Namespace) -> int:
    # Importing torch builds about a million objects; the cyclic collector's passes over
    # them midway cost ~0.3 s and free nothing, so it waits until the imports are done.
    gc.disable()
    try:
        from .ops import linear, task_arithmetic, uniform_soup
        from .recipe import load_recipe
    finally:
        gc.enable()

    options = {
        name: getattr(args, name) for name in _OPTION_NAMES if getattr(args, name) is not None
    }
    if args.command == "run":
        seed = {"seed": args.seed} if args.seed is not None else {}
        result = load_recipe(args.recipe).run(args.out, **seed, **options)
    elif args.command == "linear":
        result = linear(
            args.sources,
            args.weights,
            args.out,
            beta=args.beta,
            normalize=args.normalize,
            include=args.include,
            exclude=args.exclude,
            rules=args.rule,
            **options,
        )
    elif args.command == "task-arithmetic":
        scales = args.scales[0] if len(args.scales) == 1 else args.scales
        result = task_arithmetic(
            args.base,
            args.sources,
            scales,
            args.out,
            include=args.include,
            exclude=args.exclude,
            rules=args.rule,
            **options,
        )
    else:
        result = uniform_soup(args.sources, args.out, **options)
    print(f"wrote {result}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = lambda message, category, *rest: f"sphinx-mix: warning: {message}\n"
    return run_cli("sphinx-mix", lambda: _run(args), errors=(MixError,))


if __name__ == "__main__":
    sys.exit(main())
