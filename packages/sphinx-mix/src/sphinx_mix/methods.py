"""Whole-tensor merge rules: SLERP, TIES / DARE (sparsified task vectors), Model Stock.

Unlike the weighted sums of :mod:`arithmetic`, these need a whole tensor at once (a norm, a
magnitude ranking, an angle), so each key is widened to the work dtype in full; memory is
a few copies of the largest tensor per source, still never a whole model.

The operation order follows mergekit 0.1.5 (``merge_methods/slerp.py``,
``generalized_task_arithmetic.py``, ``sparsify.py``, ``model_stock.py``) so that, given the
same work dtype, results agree bit for bit; the formulas are those of the papers.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Elements per slice when SLERP accumulates its norms and dot product (as mergekit does).
SLERP_CHUNK = 1 << 20


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold=0.9995, eps=1e-8):
    """``sin((1-t)W)/sin W * v0 + sin(tW)/sin W * v1``, W the angle between the flattened tensors.

    Shoemake (1985), as used for model merging: nearly parallel (or opposite) tensors,
    ``|cos W| > dot_threshold``, fall back to the linear ``(1-t) v0 + t v1``. Works in
    float32 (float64 for float64 inputs) and returns that dtype.
    """
    dtype = torch.float64 if v0.dtype == torch.float64 else torch.float32
    a = v0.reshape(1, -1)
    b = v1.reshape(1, -1)
    factor = torch.tensor([t], device=v0.device).reshape(-1, 1).to(dtype)
    if a.shape[1] == 0:
        return ((1 - factor) * a + factor * b).reshape(v0.shape)
    slices = range(0, a.shape[1], SLERP_CHUNK)

    def piece(x: torch.Tensor, start: int) -> torch.Tensor:
        return x[:, start : start + SLERP_CHUNK].to(dtype)

    norm_a = _norm_of_norms([piece(a, start) for start in slices])
    norm_b = _norm_of_norms([piece(b, start) for start in slices])
    norm_a = torch.where(norm_a > eps, norm_a, 1)
    norm_b = torch.where(norm_b > eps, norm_b, 1)
    dots = [
        ((piece(a, s) / norm_a) * (piece(b, s) / norm_b)).sum(dim=1, keepdim=True) for s in slices
    ]
    dot = torch.stack(dots).sum(dim=0).clamp(-1, 1)
    straight = dot.abs() > dot_threshold
    angle = torch.acos(torch.where(straight, 0, dot))
    sine = torch.sin(angle)
    coef_a = torch.where(straight, 1 - factor, torch.sin((1 - factor) * angle) / sine)
    coef_b = torch.where(straight, factor, torch.sin(factor * angle) / sine)
    result = torch.empty_like(a, dtype=dtype)
    for start in slices:
        result[:, start : start + SLERP_CHUNK] = coef_a * piece(a, start) + coef_b * piece(b, start)
    return result.reshape(v0.shape)


def _norm_of_norms(pieces: list[torch.Tensor]) -> torch.Tensor:
    parts = [torch.linalg.vector_norm(x, dim=1, keepdim=True) for x in pieces]
    return torch.linalg.vector_norm(torch.stack(parts), dim=0)


@dataclass(frozen=True)
class TaskVectorRule:
    """TIES / DARE / task arithmetic as one rule over task vectors ``delta_i = theta_i - base``.

    ``sparsify``: ``None``, ``"magnitude"`` (TIES trim: keep the ``density`` fraction with the
    largest ``|delta|``) or ``"random"`` (DARE: keep each entry with probability
    ``density``). ``rescale``: after sparsifying, ``None``, ``"inverse"`` (DARE paper:
    divide by ``density``) or ``"l1"`` (mergekit: restore the L1 norm of ``delta``).
    ``consensus``: TIES sign election (the sign of ``sum_i w_i delta_i``) and disjoint merge
    (only entries agreeing with it count). ``normalize`` divides by the sum of the weights
    that count, ``scale`` (mergekit's ``lambda``) multiplies the merged delta.
    """

    sparsify: str | None
    consensus: bool
    normalize: bool
    rescale: str | None = None
    scale: float = 1.0
    seed: int = 0

    def __call__(
        self,
        key: str,
        base: torch.Tensor,
        others: Sequence[torch.Tensor],
        weights: Sequence[float],
        densities: Sequence[float],
    ) -> torch.Tensor:
        deltas = base.new_empty((len(others), *base.shape))
        for index, (other, density) in enumerate(zip(others, densities, strict=True)):
            delta = other - base
            if self.sparsify == "magnitude":
                delta = _keep_largest(delta, density, self.rescale)
            elif self.sparsify == "random":
                delta = _keep_random(
                    delta, density, self.rescale, _key_generator(self.seed, key, index)
                )
            deltas[index] = delta
        factors = torch.tensor(list(weights), dtype=deltas.dtype, device=deltas.device)
        factors = factors.reshape(-1, *([1] * base.dim()))
        deltas.mul_(factors)
        if self.consensus:
            elected = (deltas.sum(dim=0) >= 0).to(deltas.dtype) * 2 - 1
            agree = deltas.sign() == elected
            merged = (deltas * agree).sum(dim=0)
            divisor = (factors * agree).sum(dim=0)
            divisor[divisor == 0] = 1
        else:
            merged = deltas.sum(dim=0)
            divisor = factors.sum(dim=0)
            divisor[divisor.abs() < 1e-8] = 1
        if self.normalize:
            merged /= divisor
        if self.scale != 1:
            merged *= self.scale
        return (base + merged).to(base.dtype)


def _key_generator(seed: int, key: str, index: int) -> torch.Generator:
    """One generator per (seed, key, source): masks do not depend on the order keys are visited."""
    mixed = zlib.crc32(f"{index}:{key}".encode()) ^ (seed * 0x9E3779B1)
    return torch.Generator().manual_seed(mixed & 0xFFFF_FFFF_FFFF)


def _keep_largest(delta: torch.Tensor, density: float, rescale: str | None) -> torch.Tensor:
    """TIES trim; ties in magnitude at the cut are broken as ``torch.argsort`` orders them."""
    if density >= 1:
        return delta
    if density <= 0 or delta.numel() == 0:
        return torch.zeros_like(delta)
    keep = max(1, int(density * delta.numel()))
    mask = torch.zeros(delta.numel(), dtype=delta.dtype, device=delta.device)
    magnitude = delta.abs().reshape(-1)
    if magnitude.device.type == "cpu":
        magnitude = magnitude.float()
    mask[torch.argsort(magnitude, descending=True)[:keep]] = 1
    return _rescaled(delta, mask.reshape_as(delta), rescale, density)


def _keep_random(
    delta: torch.Tensor, density: float, rescale: str | None, generator: torch.Generator
) -> torch.Tensor:
    """DARE drop: each entry survives with probability ``density`` (seeded, on the CPU)."""
    if density >= 1:
        return delta
    work = delta.dtype if delta.dtype in (torch.bfloat16, torch.float64) else torch.float32
    mask = (torch.rand(delta.shape, generator=generator) < density).to(work).to(delta.device)
    return _rescaled(delta.to(work), mask, rescale, density).to(delta.dtype)


def _rescaled(delta: torch.Tensor, mask: torch.Tensor, rescale: str | None, density: float):
    masked = delta * mask
    if rescale is None:
        return masked
    if rescale == "inverse":
        return masked / density
    before, after = delta.abs().sum(), masked.abs().sum()
    if before < 1e-7 or after < 1e-7:
        return masked
    return masked * (before / after)


def model_stock(base: torch.Tensor, others: Sequence[torch.Tensor], filter_wise: bool = False):
    """Model Stock (Jang et al., 2024): ``t * mean(theta_i) + (1 - t) * base``.

    ``t = N cos / (1 + (N-1) cos)`` with ``cos`` the mean pairwise cosine between the task
    vectors ``theta_i - base`` (over the whole tensor, or per row with ``filter_wise``).
    Where ``1 + (N-1) cos`` vanishes the base is kept. Needs two or more ``others``.
    """
    shape = base.shape
    if filter_wise:
        if base.dim() == 1:
            base, others = base.unsqueeze(0), [other.unsqueeze(0) for other in others]
    else:
        base, others = base.reshape(-1), [other.reshape(-1) for other in others]
    offsets = [other - base for other in others]
    cosines = []
    for index, first in enumerate(offsets):
        for second in offsets[index + 1 :]:
            lengths = torch.norm(first, dim=-1) * torch.norm(second, dim=-1)
            cosines.append(((first * second).sum(dim=-1) / lengths.clamp(min=1e-6)).clamp(-1, 1))
    cosine = torch.stack(cosines).mean(dim=0).unsqueeze(-1)
    count = len(others)
    denominator = 1 + (count - 1) * cosine
    singular = denominator.abs() < 1e-6
    ratio = (count * cosine) / torch.where(singular, torch.ones_like(denominator), denominator)
    factor = torch.where(singular, torch.zeros_like(cosine), ratio)
    average = sum(others) / count
    return (factor * average + (1 - factor) * base).reshape(shape)
