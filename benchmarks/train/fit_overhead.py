"""``fit`` on the nano model next to a plain hand-written PyTorch loop, same model and batches.

Both draw the same samples in the same order and encode them with the same data code
(tiling, tokenizer), so what differs is the trainer itself: FSDP2 wrapping (one rank here),
the global token-count all-reduces, per-source accounting, metrics and sample logs.
fit is timed from the outside, from the start of one step to the start of the step after the
timed ones (data, step, metrics and sample logs included; model build, final checkpoint and
export excluded); the plain loop times the same steps after the same warm-up steps.

    uv run python benchmarks/train/fit_overhead.py            # nano-stage1, 3 + 10 steps, x2

Writes the table to benchmarks/results/train_fit_overhead.md. Target: overhead <= 5%.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from llm_throughput import write_table

from sphinx_train.batch import collate
from sphinx_train.conversation import IGNORE_INDEX
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


def fit_run(config, warmup: int, timed: int, out: Path) -> tuple[float, list[int]]:
    """Seconds of fit's steps warmup .. warmup+timed (start to start, everything fit does
    per step) and those steps' tokens from metrics.jsonl."""
    trainer = TimedTrainer(config, out, max_steps=warmup + timed + 1, checkpoint_every=10**9)
    trainer.stamps = []
    trainer.run()
    dist.destroy_process_group()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    tokens = [json.loads(line)["tokens"] for line in lines if '"loss"' in line]
    return trainer.stamps[warmup + timed] - trainer.stamps[warmup], tokens[warmup:-1]


def open_streams(config):
    """Every stream with its sources and sampler, opened as fit opens them (one rank)."""
    streams = []
    for stream in config.data.streams:
        sources = [open_source(source, config.seed) for source in stream.sources]
        sampler = NaturalSampler([len(s) for s in sources],
                                 [s.weight for s in stream.sources], seed=config.seed)
        streams.append((stream, sources, sampler))
    return streams


def plain_loop(config, warmup: int, timed: int) -> tuple[float, list[int]]:
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
    )
    streams = open_streams(config)
    pad = model.tokenizer.pad_id or 0
    model.train()
    tokens, started = [], 0.0
    for step in range(warmup + timed):
        if step == warmup:
            started = time.perf_counter()
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
            loss = F.cross_entropy(output.logits[:, :-1].float().transpose(1, 2),
                                   output.labels[:, 1:], ignore_index=IGNORE_INDEX,
                                   reduction="sum") / total
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.optimizer.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens.append(sum(item.tokens for item in samples))
    return time.perf_counter() - started, tokens[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="nano-stage1", help="fit config (default nano-stage1)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (default 3)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternating runs of each loop; the fastest counts (default 2)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(args.config, ["logging.progress=false", "data.preflight_samples=0",
                                       f"schedule.total_steps={args.warmup + args.steps + 1}"])
    load_before = os.getloadavg()[0]
    timed = args.steps
    plain_runs, fit_runs = [], []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):  # alternate, keep the fastest of each
            plain_runs.append(plain_loop(config, args.warmup, timed))
            fit_runs.append(fit_run(config, args.warmup, timed, Path(folder) / f"fit-{repeat}"))
    load_after = os.getloadavg()[0]
    plain_seconds, plain_tokens = min(plain_runs)
    fit_seconds, fit_tokens = min(fit_runs)
    if fit_tokens != plain_tokens:
        raise SystemExit(f"different batches: fit {fit_tokens} vs plain {plain_tokens}")
    rate = sum(plain_tokens)
    rows = [("plain PyTorch loop", plain_seconds), ("sphinx-train fit", fit_seconds)]
    lines = [
        f"### {args.config}: fit vs a plain loop, {timed} timed steps of "
        f"{rate / timed:,.0f} tokens after {args.warmup} warm-up, fastest of {args.repeats} "
        f"alternating runs, 1 CPU thread; load average {load_before:.1f} before, "
        f"{load_after:.1f} after (shared 2-core machine)",
        "",
        "| loop | ms / step | tokens / s | vs plain |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in rows:
        lines.append(f"| {name} | {seconds / timed * 1000:,.1f} | {rate / seconds:,.0f} | "
                     f"{seconds / plain_seconds:.3f}x |")
    overhead = fit_seconds / plain_seconds - 1
    lines += ["", f"fit overhead: {overhead:+.1%} (target <= +5%)"]
    table = "\n".join(lines) + "\n"
    print(table)
    write_table(args.output, table)


if __name__ == "__main__":
    main()
