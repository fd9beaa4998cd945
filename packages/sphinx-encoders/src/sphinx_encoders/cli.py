"""`sphinx-encoders`: list presets, write their configs, check weight files against them.

The heavy libraries (torch, timm, open_clip, transformers) are imported only once a
command runs, so `--help` and `--version` answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from ._house import run_cli

PROG = "sphinx-encoders"

_EXAMPLES = """\
examples:
  sphinx-encoders list                              presets, tokens per view, frozen parameters
  sphinx-encoders list 'sphinx*'                    only the presets matching a glob
  sphinx-encoders config sphinx -o encoder.yaml     a preset's config, to edit and reuse
  sphinx-encoders check sphinx /models/SPHINX       keys and shapes of a checkpoint (exit 1 if
                                                    it does not fit)
  sphinx-encoders check sphinx-light /models/SPHINX-Tiny --llm-dim 2048
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect the SPHINX mixed visual encoder presets and check weight files.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser(
        "list", help="list the presets with their tokens per view and parameter counts"
    )
    listing.add_argument(
        "pattern", nargs="?", help="glob filter on preset names, e.g. 'sphinx*'; default: all"
    )
    config = commands.add_parser("config", help="write a preset's config as YAML or JSON")
    config.add_argument("preset", help="preset name (see `list`) or a config file")
    config.add_argument(
        "-o", "--output", help="file to write (.yaml/.yml or .json); default: YAML on stdout"
    )
    config.add_argument("--llm-dim", type=int, help="LLM width to record in the config")
    config.add_argument(
        "--overwrite", action="store_true", help="replace the output file if it exists"
    )
    check = commands.add_parser(
        "check",
        help="check a weights file against a preset (keys and shapes) without loading it",
        description="Builds the preset on the meta device (no memory), so real-size "
        "checkpoints can be checked anywhere. Exit status 1 when the file does not fit.",
    )
    check.add_argument("preset", help="preset name (see `list`) or a config file")
    check.add_argument(
        "weights",
        help="reference SPHINX folder (consolidated.*.model.pth), shard, or state-dict file",
    )
    check.add_argument(
        "--llm-dim", type=int, help="LLM width; default: read from the file's start_img"
    )
    return parser


def _list(args: argparse.Namespace) -> None:
    from .presets import create_encoder, list_encoders

    print(f"{'preset':<18} {'tokens/view':>11} {'params (M)':>11}  backbones")
    for name in list_encoders(args.pattern):
        encoder = create_encoder(name, llm_dim=8, device="meta")
        backbones = [n for n, _ in encoder.backbones()]
        frozen = sum(p.numel() for _, b in encoder.backbones() for p in b.parameters())
        print(
            f"{name:<18} {encoder.tokens_per_view:>11} {frozen / 1e6:>11.1f}  {', '.join(backbones)}"
        )


def _config(args: argparse.Namespace) -> None:
    import yaml

    from .presets import get_encoder_config

    config = get_encoder_config(args.preset)
    if args.llm_dim is not None:
        config.llm_dim = args.llm_dim
    if args.output:
        config.save(args.output, overwrite=args.overwrite)
    else:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")


def _check(args: argparse.Namespace) -> None:
    from .loading import check_weights, read_encoder_weights
    from .presets import create_encoder
    from .weights import WeightsError

    encoder = create_encoder(args.preset, llm_dim=args.llm_dim or 1, device="meta")
    if args.llm_dim is None:
        source, _, state = read_encoder_weights(encoder, args.weights)
        if "start_img" not in state:
            raise WeightsError(f"{source}: no start_img to read the LLM width from; give --llm-dim")
        encoder = create_encoder(args.preset, llm_dim=state["start_img"].shape[-1], device="meta")
    names = check_weights(encoder, args.weights)
    print(f"ok: {len(names)} tensors fit preset {args.preset!r} (llm_dim {encoder.llm_dim})")


_COMMANDS = {"list": _list, "config": _config, "check": _check}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def body() -> int:
        _COMMANDS[args.command](args)
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
