"""Forward + backward throughput of the SPHINX model next to a plain ``LlamaForCausalLM``.

Both see the same number of tokens per step: the plain model ``--seq`` text tokens, SPHINX one
image (its views' tokens) plus text filling the rest of ``--seq``. Three SPHINX numbers:
the LLM part alone (image tokens computed once and fed in, so only the composition and the
LLM run), the whole step including the encoder, and the encoder's forward alone.
The goal on a GPU is the LLM part within 10% of the plain model.

    uv run python benchmarks/train/llm_throughput.py --device cuda   # sphinx-1k-7b, bf16, seq 3072
    uv run python benchmarks/train/llm_throughput.py --model sphinx-nano --tiling sphinx-1k --dtype float32

Writes the table to benchmarks/results/train.md.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from sphinx_train import SphinxSample, build_llm, collate, create_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "train.md"
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


class PrecomputedImageTokens(nn.Module):
    """Stands in for the encoder: returns fixed image tokens (that still receive gradients)."""

    def __init__(self, encoded, llm_dim: int):
        super().__init__()
        self.encoded = encoded
        self.llm_dim = llm_dim

    def forward(self, pixel_values, image_index=None):
        embeds = self.encoded.embeds.detach().requires_grad_()
        return type(self.encoded)(embeds=embeds, mask=self.encoded.mask)


def timed(step: Callable[[], None], device: torch.device, warmup: int, steps: int) -> float:
    """Mean seconds per call after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def write_table(path: Path, table: str) -> None:
    """Write the markdown table beside its target, then rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(table)
    temporary.replace(path)


def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"1x {torch.cuda.get_device_name(device)}"
    return f"{os.cpu_count()}-core CPU, no GPU"


def measure_sphinx(args, device: torch.device, dtype: torch.dtype) -> dict:
    """Seconds per step of the whole SPHINX step, its LLM part, and the encoder forward."""
    torch.manual_seed(0)
    model = create_model(args.model, tiling=args.tiling, dtype=dtype, device=device).train()
    vocab = model.llm.config.vocab_size
    views = model.image_views(torch.randint(0, 255, (480, 640, 3), dtype=torch.uint8).numpy())[0]
    image_tokens = model.encoder.tokens_per_view * views.shape[0]
    text_length = args.seq - image_tokens
    if text_length < 2:
        raise SystemExit(
            f"--seq {args.seq} leaves no room for text after {image_tokens} image tokens"
        )
    text = torch.randint(3, vocab, (args.batch, text_length)).tolist()
    batch = collate([SphinxSample(ids, ids, views.to(dtype)) for ids in text]).to(device)

    def sphinx_step() -> None:
        model(batch).loss.backward()
        model.zero_grad(set_to_none=True)

    def encoder_forward() -> None:
        with torch.no_grad():
            model.encoder(batch.pixel_values, batch.image_index)

    full = timed(sphinx_step, device, args.warmup, args.steps)
    encoder_only = timed(encoder_forward, device, args.warmup, args.steps)
    with torch.no_grad():
        encoded = model.encoder(batch.pixel_values, batch.image_index)
    model.encoder = PrecomputedImageTokens(encoded, model.encoder.llm_dim)
    llm_part = timed(sphinx_step, device, args.warmup, args.steps)
    return {
        "full": full,
        "llm_part": llm_part,
        "encoder": encoder_only,
        "config": model.llm.config,
        "image_tokens": image_tokens,
        "views": views.shape[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="sphinx-1k-7b", help="sphinx-train preset (default sphinx-1k-7b)"
    )
    parser.add_argument(
        "--tiling", default=None, help="tiling preset override (default: the model's)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default="bfloat16", help="weights and compute dtype"
    )
    parser.add_argument(
        "--seq",
        type=int,
        default=3072,
        help="tokens per sample, image tokens included (default 3072)",
    )
    parser.add_argument("--batch", type=int, default=1, help="samples per step (default 1)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), DTYPES[args.dtype]

    sphinx = measure_sphinx(args, device, dtype)
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the SPHINX model is gone; free its memory for the peer
    plain = build_llm(sphinx["config"], dtype=dtype, device=device).train()
    ids = torch.randint(3, sphinx["config"].vocab_size, (args.batch, args.seq), device=device)

    def plain_step() -> None:
        plain(input_ids=ids, labels=ids).loss.backward()
        plain.zero_grad(set_to_none=True)

    plain_time = timed(plain_step, device, args.warmup, args.steps)
    full, llm_part, encoder_only = sphinx["full"], sphinx["llm_part"], sphinx["encoder"]
    image_tokens, text_length = sphinx["image_tokens"], args.seq - sphinx["image_tokens"]
    n_views = sphinx["views"]

    tokens = args.batch * args.seq
    rows = [
        ("plain LlamaForCausalLM, fwd+bwd", plain_time, tokens),
        ("SPHINX LLM part (image tokens precomputed), fwd+bwd", llm_part, tokens),
        ("SPHINX whole step (encoder + LLM), fwd+bwd", full, tokens),
        (f"encoder forward alone ({args.batch * n_views} views)", encoder_only, None),
    ]
    lines = [
        f"### {args.model} ({args.tiling or 'preset tiling'}), {args.dtype}, batch {args.batch} x {args.seq} tokens "
        f"({image_tokens} image + {text_length} text per sample) on {machine_name(device)}",
        "",
        "| what | ms / step | tokens / s | vs plain |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds, count in rows:
        rate = f"{count / seconds:,.0f}" if count else "-"
        ratio = f"{plain_time / seconds:.2f}x" if count else "-"
        lines.append(f"| {name} | {seconds * 1000:,.1f} | {rate} | {ratio} |")
    table = "\n".join(lines) + "\n"
    print(table)
    write_table(args.output, table)


if __name__ == "__main__":
    main()
