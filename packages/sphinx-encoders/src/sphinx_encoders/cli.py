"""`sphinx-encoders`: list presets, write their configs, check weight files against them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

from .config import ConfigError
from .loading import check_weights, read_encoder_weights
from .presets import create_encoder, get_encoder_config, list_encoders
from .weights import WeightsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphinx-encoders",
        description="Inspect the SPHINX mixed visual encoder presets and check weight files.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "list", help="list the presets with their tokens per view and parameter counts"
    )
    config = commands.add_parser("config", help="write a preset's config as YAML or JSON")
    config.add_argument("preset", help="preset name (see `list`) or a config file")
    config.add_argument(
        "-o", "--output", help="file to write (.yaml/.yml or .json); default: YAML on stdout"
    )
    config.add_argument("--llm-dim", type=int, help="LLM width to record in the config")
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


def _list() -> None:
    print(f"{'preset':<16} {'tokens/view':>11} {'params (M)':>11}  backbones")
    for name in list_encoders():
        encoder = create_encoder(name, llm_dim=8, device="meta")
        backbones = [n for n, _ in encoder.backbones()]
        frozen = sum(p.numel() for _, b in encoder.backbones() for p in b.parameters())
        print(
            f"{name:<16} {encoder.tokens_per_view:>11} {frozen / 1e6:>11.1f}  {', '.join(backbones)}"
        )


def _config(args: argparse.Namespace) -> None:
    config = get_encoder_config(args.preset)
    if args.llm_dim is not None:
        config.llm_dim = args.llm_dim
    if args.output:
        config.save(args.output)
    else:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")


def _check(args: argparse.Namespace) -> None:
    encoder = create_encoder(args.preset, llm_dim=args.llm_dim or 1, device="meta")
    if args.llm_dim is None:
        source, _, state = read_encoder_weights(encoder, args.weights)
        if "start_img" not in state:
            raise WeightsError(f"{source}: no start_img to read the LLM width from; give --llm-dim")
        encoder = create_encoder(args.preset, llm_dim=state["start_img"].shape[-1], device="meta")
    names = check_weights(encoder, args.weights)
    print(f"ok: {len(names)} tensors fit preset {args.preset!r} (llm_dim {encoder.llm_dim})")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            _list()
        elif args.command == "config":
            _config(args)
        else:
            _check(args)
    except (ConfigError, WeightsError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
