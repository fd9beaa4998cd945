"""Chunked tensor arithmetic in a wide dtype, written back in the output dtype.

Large tensors are processed in slices so the float32 temporaries stay small (and in cache)
whatever the tensor size; results go straight into the preallocated output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

CHUNK_ELEMENTS = 1 << 18
_FLOAT8 = {
    getattr(torch, name)
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
    if hasattr(torch, name)
}


class Combiner:
    """Reusable scratch buffers for ``out = sum(c_i * x_i)`` and ``base + sum(l_i (x_i - base))``."""

    def __init__(
        self, compute_dtype: torch.dtype, device: torch.device, chunk: int = CHUNK_ELEMENTS
    ):
        self.compute_dtype = compute_dtype
        self.device = device
        self.chunk = chunk
        self._buffers = [torch.empty(chunk, dtype=compute_dtype, device=device) for _ in range(3)]

    def _widen(self, piece: torch.Tensor) -> torch.Tensor:
        """On the compute device; float8 is converted first, since torch will not promote it."""
        if piece.dtype in _FLOAT8:
            return piece.to(device=self.device, dtype=self.compute_dtype)
        return piece.to(self.device)

    def weighted_sum(
        self, tensors: Sequence[torch.Tensor], weights: Sequence[float], out: torch.Tensor
    ) -> torch.Tensor:
        flat_out = out.view(-1)
        flats = [tensor.reshape(-1) for tensor in tensors]
        acc = self._buffers[0]
        for start in range(0, flat_out.numel(), self.chunk):
            stop = min(start + self.chunk, flat_out.numel())
            total = acc[: stop - start]
            total.copy_(flats[0][start:stop])
            total.mul_(weights[0])
            for flat, weight in zip(flats[1:], weights[1:], strict=True):
                # mixed-dtype in-place add: the source is widened on the fly, no extra pass
                total.add_(self._widen(flat[start:stop]), alpha=weight)
            flat_out[start:stop].copy_(total)
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
        acc, term, base_buffer = self._buffers
        for start in range(0, flat_out.numel(), self.chunk):
            stop = min(start + self.chunk, flat_out.numel())
            size = stop - start
            total, piece, anchor = acc[:size], term[:size], base_buffer[:size]
            anchor.copy_(flat_base[start:stop])
            total.copy_(anchor)
            for flat, scale in zip(flats, scales, strict=True):
                torch.sub(self._widen(flat[start:stop]), anchor, out=piece)
                total.add_(piece, alpha=scale)
            flat_out[start:stop].copy_(total)
        return out
