"""``metrics.jsonl`` (one object per logged step), rate-limited warnings, the learning rate."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by device-name fragment, most specific first.
PEAK_TFLOPS = (("H200", 989.0), ("H100", 989.0), ("H800", 989.0), ("B200", 2250.0),
               ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("A10G", 70.0))


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    """FLOP/s of one device for MFU: the configured figure, else the table's, else None."""
    if override_tflops is not None:
        return override_tflops * 1e12
    for fragment, tflops in PEAK_TFLOPS:
        if fragment in device_name:
            return tflops * 1e12
    return None


def training_flops_per_token(llm_config, mean_length: float) -> float:
    """Forward + backward FLOPs of one token through the LLM (PaLM's MFU count): 6 per
    parameter a token passes through, the token embedding excluded and, for sparse experts,
    only the top-k of each layer's experts; plus 12 * layers * width * sequence length for
    attention. The frozen encoders' forward is not counted (MFU measures the trained part)."""
    width, layers = llm_config.hidden_size, llm_config.num_hidden_layers
    heads, kv_heads = llm_config.num_attention_heads, llm_config.num_key_value_heads
    head_dim = getattr(llm_config, "head_dim", None) or width // heads
    attention = width * head_dim * (2 * heads + 2 * kv_heads)  # q, o and k, v projections
    ffn = 3 * width * llm_config.intermediate_size
    ffn *= getattr(llm_config, "num_experts_per_tok", 1) if getattr(
        llm_config, "num_local_experts", 0) else 1
    router = width * getattr(llm_config, "num_local_experts", 0)
    head = width * llm_config.vocab_size
    parameters = layers * (attention + ffn + router) + head
    return 6 * parameters + 12 * layers * width * mean_length


def learning_rate(step: int, lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine down to ``min_lr`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def tensorboard_writer(folder: Path, resume_step: int | None = None):
    """A TensorBoard writer, imported only when asked for (the ``tensorboard`` extra).
    On resume, events a killed run wrote after ``resume_step`` are purged when TensorBoard
    loads the folder, as ``MetricsLog`` drops those lines, so the curve does not double back."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError("logging.tensorboard needs the tensorboard extra: "
                          "pip install 'sphinx-train[tensorboard]'") from error
    return SummaryWriter(str(folder),
                         purge_step=None if resume_step is None else resume_step + 1)


class MetricsLog:
    """Appends JSON lines; on resume, lines after the checkpoint's step are dropped first.
    With a TensorBoard ``writer``, every number of a record is also a scalar at its step."""

    def __init__(self, path: Path, resume_step: int | None, writer=None):
        self.path, self.writer = path, writer
        if resume_step is None:
            path.write_text("")
        elif path.is_file():
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self.writer.add_scalar(key, value, record["step"])
            self.writer.flush()


class Warnings:
    """At most one line per ``interval`` seconds per kind, with the count since the last one."""

    def __init__(self, interval: float = 30.0):
        self.interval, self.last, self.pending = interval, {}, {}

    def warn(self, kind: str, message: str) -> None:
        self.pending[kind] = self.pending.get(kind, 0) + 1
        now = time.monotonic()
        if now - self.last.get(kind, -math.inf) >= self.interval:
            count = self.pending.pop(kind)
            print(f"sphinx-train fit: warning: {message} ({count} so far of this kind)",
                  file=sys.stderr)
            self.last[kind] = now
