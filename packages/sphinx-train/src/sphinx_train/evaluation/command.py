"""The ``eval`` subcommand (imports only argparse here, so ``--help`` stays instant)."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  sphinx-train eval --list
  sphinx-train eval --tasks-module my_benchmarks --list
  sphinx-train eval --model ckpt/sphinx --task pope --data data/pope --images coco/val2014 \\
      --out results/pope
  torchrun --nproc-per-node 8 -m sphinx_train.cli eval --model ckpt/sphinx --task refcoco \\
      --split val --data refer/refcoco --images coco/train2014 --out results/refcoco-val
"""


def register(commands) -> None:
    parser = commands.add_parser(
        "eval",
        help="score a model on a benchmark from its local files",
        description="Answer a benchmark's questions (batched, cached, sharded by rank under "
        "torchrun) and score them by the official rule; writes OUT/results.json, results.md "
        "and samples.jsonl.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument("--tasks-module", action="append", metavar="MODULE",
                        help="Python module to import first, whose register_task calls add tasks "
                        "(repeatable), e.g. --tasks-module my_benchmarks")  # fmt: skip
    parser.add_argument("--model", help="model folder (save_pretrained / convert-accessory)")
    parser.add_argument("--task", help="task name (see --list), e.g. pope")
    parser.add_argument("--split", action="append", help="split (repeatable; default: all)")
    parser.add_argument("--data", help="folder of the benchmark's official files")
    parser.add_argument("--images", help="image folder when not inside --data (e.g. COCO)")
    parser.add_argument("--limit", type=int, help="first N samples only (smoke tests)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per step (default 8)")
    parser.add_argument("--prompt", help="named prompt (default: the reference's)")
    parser.add_argument(
        "--variant", help="scorer variant: official (default), accessory, lmms-eval"
    )
    parser.add_argument("--temperature", type=float, default=0.1, help="0 = greedy (default 0.1)")
    parser.add_argument("--top-p", type=float, default=0.75, help="nucleus mass (default 0.75)")
    parser.add_argument("--seed", type=int, default=0, help="per-sample seeds derive from it")
    parser.add_argument("--cache", help="response cache folder (default: OUT.cache beside OUT)")
    parser.add_argument("--device", help="torch device (default: cuda:LOCAL_RANK if any, else cpu)")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from sphinx_train.evaluation.command_body import run_command

    return run_command(args)
