"""``fit`` on the nano model next to a plain hand-written PyTorch loop, same model and batches.

Both draw the same samples in the same order and encode them with the same data code
(tiling, tokenizer), so what differs is the trainer itself: the global token-count
all-reduces, replicated-grad averaging, per-source accounting, metrics and sample logs (one
fp32 rank is not FSDP-wrapped, as fit does there).
fit is timed from the outside, from the start of one step to the start of the next (data,
step, metrics and sample logs included; model build, final checkpoint and export excluded);
the plain loop times the same steps after the same warm-up steps. Both compare by the median
step (step i is the same batch in both): a shared machine's stray slow steps move a total
far more than a median.

    uv run python benchmarks/train/fit_overhead.py            # nano-stage1, 3 + 12 steps, x4

Writes the table to benchmarks/results/train_fit_overhead.md. Target: overhead <= 5%.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
from llm_throughput import write_table

from sphinx_train.batch import collate
from sphinx_train.training.config import load_config
from sphinx_train.training.data.encode import encode_record
from sphinx_train.training.data.sampler import NaturalSampler
from sphinx_train.training.data.sources import open_source
from sphinx_train.training.loop import Trainer, build_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "train_fit_overhead.md"


class TimedTrainer(Trainer):
    """fit's trainer, with a clock read at the start of every step (nothing else changed)."""

    def step_samples(self):
        self.stamps.append(time.perf_counter())
        return super().step_samples()


def fit_run(config, warmup: int, timed: int, out: Path) -> tuple[list[float], list[int]]:
    """Seconds of each of fit's steps warmup .. warmup+timed (start to start, everything fit
    does per step) and those steps' tokens from metrics.jsonl."""
    trainer = TimedTrainer(config, out, max_steps=warmup + timed + 1, checkpoint_every=10**9)
    trainer.stamps = []
    trainer.run()
    dist.destroy_process_group()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    tokens = [json.loads(line)["tokens"] for line in lines if '"loss"' in line]
    stamps = trainer.stamps[warmup: warmup + timed + 1]
    return [end - start for start, end in itertools.pairwise(stamps)], tokens[warmup:-1]


def open_streams(config):
    """Every stream with its sources and sampler, opened as fit opens them (one rank)."""
    streams = []
    for stream in config.data.streams:
        sources = [open_source(source, config.seed) for source in stream.sources]
        sampler = NaturalSampler([len(s) for s in sources],
                                 [s.weight for s in stream.sources], seed=config.seed)
        streams.append((stream, sources, sampler))
    return streams


def plain_loop(config, warmup: int, timed: int) -> tuple[list[float], list[int]]:
    """The hand-written loop: freeze, AdamW, micro-batches by length, token-mean loss, clip."""
    model = build_model(config)
    projections = {f"encoder.{name}" for name, _ in model.encoder.named_trainable_parameters()}
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("llm.") or name in projections)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=config.optimizer.lr, betas=tuple(config.optimizer.betas),
        fused=True,  # as fit's default: the comparison is of the loop, not the AdamW kernel
    )
    streams = open_streams(config)
    pad = model.tokenizer.pad_id or 0
    model.train()
    tokens, stamps = [], []
    for step in range(warmup + timed):
        stamps.append(time.perf_counter())
        torch.manual_seed(step)
        samples = []
        for stream, sources, sampler in streams:
            for source, index in sampler.take(stream.per_step):
                samples.append(encode_record(sources[source].record(index), model,
                                             stream.template, config.data.max_length))
        samples.sort(key=lambda item: item.tokens)
        count = config.parallel.micro_batches
        total = sum(item.supervised for item in samples)
        for group in (samples[i::count] for i in range(count)):
            output = model(collate([item.sample for item in group], pad_id=pad))
            (output.sample_loss_sum.sum() / total).backward()  # the model's own NLL sums
        torch.nn.utils.clip_grad_norm_(params, config.optimizer.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens.append(sum(item.tokens for item in samples))
    stamps = [*stamps[warmup:], time.perf_counter()]
    return [end - start for start, end in itertools.pairwise(stamps)], tokens[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="nano-stage1", help="fit config (default nano-stage1)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (default 3)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps (default 12)")
    parser.add_argument("--repeats", type=int, default=4,
                        help="runs of each loop in ABBA order, steps pooled (default 4)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(args.config, ["logging.progress=false", "data.preflight_samples=0",
                                       f"schedule.total_steps={args.warmup + args.steps + 1}"])
    load_before = os.getloadavg()[0]
    timed = args.steps
    plain_runs, fit_runs = [], []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            # ABBA order: whichever runs second in a process measured a few % slower
            # (heap state), so each loop goes first half of the time.
            order = [plain_runs, fit_runs] if repeat % 2 == 0 else [fit_runs, plain_runs]
            for runs in order:
                runs.append(plain_loop(config, args.warmup, timed) if runs is plain_runs else
                            fit_run(config, args.warmup, timed, Path(folder) / f"fit-{repeat}"))
    load_after = os.getloadavg()[0]
    plain_tokens, fit_tokens = plain_runs[0][1], fit_runs[0][1]
    if any(run[1] != plain_tokens for run in plain_runs + fit_runs):
        raise SystemExit(f"different batches: fit {fit_tokens} vs plain {plain_tokens}")
    per_step = sum(plain_tokens) / timed
    rows = [("plain PyTorch loop", [t for run, _ in plain_runs for t in run]),
            ("sphinx-train fit", [t for run, _ in fit_runs for t in run])]
    lines = [
        f"### {args.config}: fit vs a plain loop, {timed} timed steps of {per_step:,.0f} "
        f"tokens after {args.warmup} warm-up, {args.repeats} runs of each in ABBA order "
        f"(steps pooled), 1 CPU thread; load average {load_before:.1f} before, "
        f"{load_after:.1f} after (shared 2-core machine)",
        "",
        "| loop | median ms / step | mean ms / step | tokens / s (median) | vs plain (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    plain_median = statistics.median(rows[0][1])
    for name, steps in rows:
        median = statistics.median(steps)
        lines.append(f"| {name} | {median * 1000:,.1f} | {statistics.fmean(steps) * 1000:,.1f} "
                     f"| {per_step / median:,.0f} | {median / plain_median:.3f}x |")
    overhead = statistics.median(rows[1][1]) / plain_median - 1
    lines += ["", f"fit overhead (median step): {overhead:+.1%} (target <= +5%)"]
    table = "\n".join(lines) + "\n"
    print(table)
    write_table(args.output, table)


if __name__ == "__main__":
    main()
