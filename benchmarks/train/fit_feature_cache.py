"""What ``data.feature_cache`` saves: fit's median step without the cache, with an empty
cache (the first epoch: the backbones run and their features are written) and with a full
one (later epochs and runs: features are read back, only the projections run).

All runs draw the same samples in the same order (same config and seed); a warm run
reuses the cache a cold run filled. Steps are timed start to start, everything fit does
per step included, as in ``fit_overhead.py``.

    uv run python benchmarks/train/fit_feature_cache.py       # nano-stage1 and nano-stage2

Writes the table to benchmarks/results/train_fit_feature_cache.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch
from fit_overhead import fit_run
from llm_throughput import write_table

from sphinx_train.training.config import load_config

COLD, WARM = "cache, cold (first epoch)", "cache, warm (later epochs, runs)"
RESULTS = Path(__file__).resolve().parents[1] / "results" / "train_fit_feature_cache.md"


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def measure(name: str, warmup: int, steps: int, folder: Path) -> list[str]:
    """One table row per kind of run: no cache, cold cache, warm cache.

    A first, discarded run warms the process (the first fit in a process measured ~5-10%
    slower); then each kind runs twice in palindromic order (none, cold A, warm A, warm A,
    cold B, none) and its steps are pooled, so drift over time favours none of them.
    """
    overrides = ["logging.progress=false", "data.preflight_samples=0",
                 f"schedule.total_steps={warmup + steps + 1}"]
    order = [("discarded", None), ("no cache", None), (COLD, "a"), (WARM, "a"), (WARM, "a"),
             (COLD, "b"), ("no cache", None)]
    seconds: dict[str, list[float]] = {}
    tokens = set()
    for run, (label, cache) in enumerate(order):
        extra = [] if cache is None else [f"data.feature_cache={folder / name / cache}"]
        config = load_config(name, [*overrides, *extra])
        times, seen = fit_run(config, warmup, steps, folder / name / f"run-{run}")
        seconds.setdefault(label, []).extend(times)
        tokens.add(tuple(seen))
    if len(tokens) != 1:
        raise SystemExit(f"{name}: the runs saw different batches: {sorted(tokens)}")
    base = statistics.median(seconds["no cache"])
    rows = []
    for label in ("no cache", COLD, WARM):
        median = statistics.median(seconds[label])
        rows.append(f"| {name} | {label} | {median * 1000:,.1f} | {median / base:.3f}x |")
    cache = folder / name / "a"
    shards = len(list(cache.rglob("shard-*.safetensors")))
    rows.append(f"| {name} | cache on disk | {folder_bytes(cache) / 2**20:,.1f} MiB "
                f"in {shards} shards | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["nano-stage1", "nano-stage2"],
                        help="fit configs to measure (default nano-stage1 nano-stage2)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (default 3)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps (default 12)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.configs:
            rows += measure(name, args.warmup, args.steps, Path(folder))
    load_after = os.getloadavg()[0]
    lines = [
        f"### fit with and without data.feature_cache: median of {args.steps} timed steps x 2 "
        f"runs after {args.warmup} warm-up, 1 CPU thread; load average {load_before:.1f} before, "
        f"{load_after:.1f} after (shared 2-core machine)",
        "",
        "| config | run | median ms / step | vs no cache |",
        "|---|---|---:|---:|",
        *rows,
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    write_table(args.output, table)


if __name__ == "__main__":
    main()
