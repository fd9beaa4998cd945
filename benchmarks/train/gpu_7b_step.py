"""One full training step of SPHINX-1k at the 7B shape on one GPU: bf16, FSDP2, activation
checkpointing, fused AdamW, the trainer's own parallelize / loss / clip code.

Reported next to the measured anchors of a naive FSDP2 step of the bare LLaMA-2-7B shape
(7,855 tokens/s full step, 10,750 forward+backward; batch 4, seq 3072, compiled); the goal is
>= 9,000 tokens/s. The frozen encoder's forward is timed apart, and the step is timed
again from precomputed frozen features, as ``data.feature_cache`` runs it (its disk read
not counted).

    uv run python benchmarks/train/gpu_7b_step.py                # sphinx-1k-7b, cuda, batch 4 x 3072
    uv run python benchmarks/train/gpu_7b_step.py --tiny         # sphinx-nano (1k tiling), CPU

Writes the table to benchmarks/results/train_gpu_7b_step.md (``--tiny``: only printed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_throughput import machine_name, timed, write_table

from sphinx_train import SphinxSample, collate, create_model
from sphinx_train.training.config import ParallelConfig
from sphinx_train.training.loop import clip_gradients, optimizer_groups
from sphinx_train.training.parallelize import (
    average_replicated_grads,
    init_distributed,
    parallelize,
    set_trainable,
)

RESULTS = Path(__file__).resolve().parents[1] / "results" / "train_gpu_7b_step.md"
ANCHORS = [("anchor: naive FSDP2 LLaMA-2-7B step (measured elsewhere)", 7855),
           ("anchor: LLaMA-2-7B forward+backward only", 10750)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="sphinx-nano with sphinx-1k tiling on CPU, seq 1600 (a dry run)")
    parser.add_argument("--batch", type=int, default=4, help="samples per step (default 4)")
    parser.add_argument("--seq", type=int, default=None,
                        help="tokens per sample, 1455 image tokens included (default 3072)")
    parser.add_argument("--ac", choices=["none", "full", "selective"], default="full",
                        help="activation checkpointing per decoder block (default full)")
    parser.add_argument("--compile", action="store_true", help="torch.compile each block")
    parser.add_argument("--cpu-offload", action="store_true", help="FSDP2 CPU offload")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (default 2)")
    parser.add_argument("--output", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args()
    preset = "sphinx-nano" if args.tiny else "sphinx-1k-7b"
    seq = args.seq or (1600 if args.tiny else 3072)
    if args.tiny:
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        raise SystemExit("no CUDA device; run with --tiny for the CPU dry run")
    runtime = init_distributed()
    device = runtime.device

    torch.manual_seed(0)
    model = create_model(preset, tiling="sphinx-1k", dtype=torch.float32)  # fp32 masters
    set_trainable(model, ["llm", "projections"])
    parallel = ParallelConfig(activation_checkpointing=args.ac, compile=args.compile,
                              cpu_offload=args.cpu_offload)
    parallelize(model, parallel, runtime)
    model.train()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    sharded = [p for n, p in trainable if n.startswith("llm.")]
    replicated = [p for n, p in trainable if not n.startswith("llm.")]
    optimizer = torch.optim.AdamW(optimizer_groups(model, 0.1), lr=1e-5, betas=(0.9, 0.95),
                                  fused=device.type == "cuda" or None)

    picture = torch.randint(0, 255, (480, 640, 3), dtype=torch.uint8).numpy()
    views = model.image_views(picture)[0]
    image_tokens = views.shape[0] * model.encoder.tokens_per_view
    if seq - image_tokens < 2:
        raise SystemExit(f"--seq {seq} leaves no text after {image_tokens} image tokens")
    vocab = model.llm.config.vocab_size
    text = torch.randint(3, vocab, (args.batch, seq - image_tokens)).tolist()
    batch = collate([SphinxSample(ids, ids, views) for ids in text]).to(device)

    def full_step(features=None) -> None:
        output = model(batch, features=features)
        sums, counts = output.sample_loss_sum, output.sample_tokens
        (sums.sum() / counts.sum()).backward()
        average_replicated_grads(replicated)
        clip_gradients(sharded, replicated, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def encoder_forward() -> None:
        with torch.no_grad():
            model.encoder(batch.pixel_values, batch.image_index)

    started = time.perf_counter()
    step = timed(full_step, device, args.warmup, args.steps)
    encoder = timed(encoder_forward, device, 1, args.steps)
    with torch.no_grad():  # what data.feature_cache hands the step (read from disk there)
        cached = model.encoder.frozen_features(batch.pixel_values, batch.image_index)
    from_cache = timed(lambda: full_step(cached), device, 1, args.steps)
    tokens = args.batch * seq
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    lines = [
        f"### {preset} (sphinx-1k tiling), batch {args.batch} x {seq} tokens ({image_tokens} "
        f"image), {'fp32 (CPU)' if args.tiny else 'bf16'}, FSDP2 + AC {args.ac}"
        f"{', compiled' if args.compile else ''}, fused AdamW, on {machine_name(device)}",
        "",
        "| what | ms / step | tokens / s | vs 7,855 anchor |",
        "|---|---:|---:|---:|",
        f"| full step (encoder + LLM fwd/bwd + optimizer) | {step * 1000:,.1f} | "
        f"{tokens / step:,.0f} | {tokens / step / 7855:.2f}x |",
        f"| encoder forward alone ({args.batch * views.shape[0]} views) | "
        f"{encoder * 1000:,.1f} | - | - |",
        f"| full step from cached frozen features (projections, LLM, optimizer) | "
        f"{from_cache * 1000:,.1f} | {tokens / from_cache:,.0f} | "
        f"{tokens / from_cache / 7855:.2f}x |",
    ]
    lines += [f"| {name} | - | {rate:,} | {rate / 7855:.2f}x |" for name, rate in ANCHORS]
    lines += ["", f"peak memory {peak:.1f} GiB; wall {time.perf_counter() - started:.0f} s"]
    table = "\n".join(lines) + "\n"
    print(table)
    output = args.output or (None if args.tiny else RESULTS)
    if output is not None:
        write_table(output, table)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
