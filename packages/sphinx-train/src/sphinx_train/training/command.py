"""``sphinx-train fit`` and ``sphinx-train mix``: parsers here, work in the handlers.

Only argparse at module level, so that ``sphinx-train --help`` stays instant.
"""

from __future__ import annotations

import argparse

FIT_EPILOG = """examples:
  sphinx-train fit --list
  sphinx-train fit nano-stage1 --out runs/stage1 --max-steps 20
  torchrun --nproc_per_node 8 -m sphinx_train.cli fit my-stage2.yaml --out runs/s2 \\
      --set optimizer.lr=1e-5 --set data.streams.0.per_step=64
Running the same command again with the same --out resumes from the newest checkpoint."""

MIX_EPILOG = """example:
  sphinx-train mix runs/real/final runs/synthetic/final --beta 0.5 --out runs/mixed
The mixed folder is a model folder: start stage 2 from it with --set model.init=runs/mixed."""


def _fit(args: argparse.Namespace) -> int:
    from sphinx_train.training.config import list_presets, load_config

    if args.list:
        print("\n".join(list_presets()))
        return 0
    if args.config is None or args.out is None:
        raise ValueError("give CONFIG and --out DIR (or --list)")
    config = load_config(args.config, args.set or [])
    import torch.distributed as dist

    from sphinx_train.training.loop import fit

    try:
        out = fit(config, args.out, max_steps=args.max_steps,
                  checkpoint_every=args.checkpoint_every)
        rank = dist.get_rank()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:  # one line per run, not one per rank
        print(f"trained -> {out / 'final'}")
    return 0


def _mix(args: argparse.Namespace) -> int:
    from sphinx_train.training.mixing import mix_models

    written = mix_models(args.real, args.synthetic, args.out, beta=args.beta,
                         overwrite=args.overwrite)
    print(f"mixed -> {written}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def register(commands) -> None:
    fit = commands.add_parser(
        "fit", help="train a SPHINX model (stage 1 or 2), alone or under torchrun",
        description="Train with FSDP2 and resumable DCP checkpoints. CONFIG is a YAML file or "
        "a built-in config (--list).",
        epilog=FIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("config", nargs="?", help="YAML config file or built-in name")
    fit.add_argument("--out", help="run folder: config.yaml, metrics.jsonl, checkpoints/, final/")
    fit.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config value by dotted key, e.g. optimizer.lr=1e-4 "
                     "(repeatable; list items by index: data.streams.0.per_step=16)")
    fit.add_argument("--max-steps", type=_positive, default=None,
                     help="stop after this many optimizer steps (default: schedule.total_steps)")
    fit.add_argument("--checkpoint-every", type=_positive, default=None,
                     help="checkpoint every N steps (default: checkpoint.every)")
    fit.add_argument("--list", action="store_true", help="list the built-in configs and exit")
    fit.set_defaults(run=_fit)

    mix = commands.add_parser(
        "mix", help="mix two trained models: beta*real + (1-beta)*synthetic",
        description="Linear weight mix of the LLM and projections of two model folders "
        "(sphinx-mix); everything else is copied from the first.",
        epilog=MIX_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mix.add_argument("real", help="model folder trained on real captions (theta_real)")
    mix.add_argument("synthetic", help="model folder trained on synthetic captions (theta_syn)")
    mix.add_argument("--beta", type=float, default=0.5, help="weight of REAL (default 0.5)")
    mix.add_argument("--out", required=True, help="model folder to write")
    mix.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    mix.set_defaults(run=_mix)
