"""What ``sphinx-train eval`` does once its arguments are parsed."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from sphinx_train._house import run_cli
from sphinx_train.evaluation.registry import get_task, list_tasks


def _device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def import_tasks(module: str, option: str = "--tasks-module") -> None:
    """A user's module of ``register_task`` calls (found on sys.path or the current folder);
    ``option`` names where it was given, for the error."""
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"{option} {module}: cannot import it ({err})") from None


def run_command(args: argparse.Namespace) -> int:
    return run_cli("sphinx-train eval", lambda: _body(args),
                   errors=(ValueError, OSError, KeyError, RuntimeError))  # fmt: skip


def _body(args: argparse.Namespace) -> int:
    import sphinx_train.evaluation.tasks  # noqa: F401 (registers the built-in tasks)

    for module in args.tasks_module or []:
        import_tasks(module)
    if args.list:
        for name in list_tasks():
            task = get_task(name)
            print(f"{name:10s} splits: {', '.join(task.splits)}; prompts: "
                  f"{', '.join(p.name for p in task.prompts)}; variants: {', '.join(task.variants)}")  # fmt: skip
        return 0
    missing = [f"--{name}" for name in ("model", "task", "data", "out") if not getattr(args, name)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or use --list)")
    from sphinx_train.checkpoint import load_model
    from sphinx_train.evaluation.runner import EvalOptions, run_eval

    get_task(args.task)
    options = EvalOptions(
        task=args.task, data=Path(args.data), out=Path(args.out), splits=args.split,
        images=Path(args.images) if args.images else None, limit=args.limit,
        batch_size=args.batch_size, prompt=args.prompt, variant=args.variant,
        cache=Path(args.cache) if args.cache else None, temperature=args.temperature,
        top_p=args.top_p, seed=args.seed, rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)), overwrite=args.overwrite,
    )  # fmt: skip
    model = load_model(args.model, device=_device(args.device))
    results = run_eval(model, options)
    if results is not None:
        for split, metrics in results[args.task].items():
            shown = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in metrics.items())  # fmt: skip
            print(f"{args.task}/{split}: {shown}")
        print(f"wrote {options.out}")
    return 0
