"""Chunked tensor arithmetic in a wide dtype, written back in the output dtype.

Large tensors are processed in slices so the float32 temporaries stay small (and in cache)
whatever the tensor size; results go straight into the preallocated output. With several
workers each takes one contiguous part of every tensor (Python threads: torch releases
the GIL inside each slice's kernels), which keeps a second core busy without OpenMP's
spin-waiting, which stalls badly when other processes share the cores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

CHUNK_ELEMENTS = 1 << 17
_FLOAT8 = {
    getattr(torch, name)
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
    if hasattr(torch, name)
}


class Combiner:
    """Reusable scratch buffers for ``out = sum(c_i * x_i)`` and ``base + sum(l_i (x_i - base))``."""

    def __init__(
        self,
        compute_dtype: torch.dtype,
        device: torch.device,
        chunk: int = CHUNK_ELEMENTS,
        workers: int = 1,
    ):
        self.compute_dtype = compute_dtype
        self.device = device
        self.chunk = chunk
        workers = workers if device.type == "cpu" else 1
        self._scratch = [
            [torch.empty(chunk, dtype=compute_dtype, device=device) for _ in range(3)]
            for _ in range(workers)
        ]
        self._pool = ThreadPoolExecutor(workers - 1, "sphinx-mix-math") if workers > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def _widen(self, piece: torch.Tensor) -> torch.Tensor:
        """On the compute device; float8 is converted first, since torch will not promote it."""
        if piece.dtype in _FLOAT8:
            return piece.to(device=self.device, dtype=self.compute_dtype)
        return piece.to(self.device)

    def _split(self, numel: int, work: Callable[[int, int, list[torch.Tensor]], None]) -> None:
        """Run ``work(start, stop, scratch)`` over contiguous parts, one per worker."""
        parts = min(len(self._scratch), -(-numel // self.chunk))
        if parts <= 1:
            work(0, numel, self._scratch[0])
            return
        step = -(-numel // parts // self.chunk) * self.chunk
        bounds = [(start, min(start + step, numel)) for start in range(0, numel, step)]
        assert self._pool is not None
        futures = [
            self._pool.submit(work, start, stop, scratch)
            for (start, stop), scratch in zip(bounds[1:], self._scratch[1:], strict=False)
        ]
        work(*bounds[0], self._scratch[0])
        for future in futures:
            future.result()

    def weighted_sum(
        self, tensors: Sequence[torch.Tensor], weights: Sequence[float], out: torch.Tensor
    ) -> torch.Tensor:
        flat_out = out.view(-1)
        flats = [tensor.reshape(-1) for tensor in tensors]

        def work(first: int, last: int, scratch: list[torch.Tensor]) -> None:
            for start in range(first, last, self.chunk):
                stop = min(start + self.chunk, last)
                total = scratch[0][: stop - start]
                total.copy_(flats[0][start:stop])
                total.mul_(weights[0])
                for flat, weight in zip(flats[1:], weights[1:], strict=True):
                    # mixed-dtype in-place add: the source is widened on the fly, no extra pass
                    total.add_(self._widen(flat[start:stop]), alpha=weight)
                flat_out[start:stop].copy_(total)

        self._split(flat_out.numel(), work)
        return out

    def task_sum(
        self,
        base: torch.Tensor,
        tensors: Sequence[torch.Tensor],
        scales: Sequence[float],
        out: torch.Tensor,
    ) -> torch.Tensor:
        flat_out = out.view(-1)
        flat_base = base.reshape(-1)
        flats = [tensor.reshape(-1) for tensor in tensors]

        def work(first: int, last: int, scratch: list[torch.Tensor]) -> None:
            for start in range(first, last, self.chunk):
                stop = min(start + self.chunk, last)
                size = stop - start
                total, piece, anchor = (buffer[:size] for buffer in scratch)
                anchor.copy_(flat_base[start:stop])
                total.copy_(anchor)
                for flat, scale in zip(flats, scales, strict=True):
                    torch.sub(self._widen(flat[start:stop]), anchor, out=piece)
                    total.add_(piece, alpha=scale)
                flat_out[start:stop].copy_(total)

        self._split(flat_out.numel(), work)
        return out
