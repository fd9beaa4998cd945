"""Deciding, before any data is read, what happens to every key.

Rules for keys and dtypes:

* Keys are taken in the first source's order. A key missing from some source, or whose
  shape differs between sources, is a mismatch; ``on_missing`` decides: ``error`` (the
  default, listing the first mismatches), ``skip`` (leave the key out) or ``copy-first``
  (take the first source's tensor). Keys that only later sources hold are left out under
  ``skip`` and ``copy-first``.
* Floating tensors of different dtypes mix fine: all are converted to the compute dtype and
  the result is cast to ``out_dtype`` if given, else to the first source's dtype.
* Integer and bool tensors are never averaged; they are copied from the first source.
  A key that is floating in one source and integer in another is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .checkpoint import Checkpoint
from .errors import MixError
from .options import MixOptions

_SHOWN_PROBLEMS = 5


@dataclass(frozen=True)
class KeyPlan:
    """One output tensor: copied from the first source, or mixed with these coefficients."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    coefficients: tuple[float, ...] | None

    @property
    def nbytes(self) -> int:
        return torch.Size(self.shape).numel() * self.dtype.itemsize


def plan_keys(
    checkpoints: Sequence[Checkpoint],
    coefficients_for: Callable[[str], tuple[float, ...] | None],
    options: MixOptions,
) -> list[KeyPlan]:
    """Plan every output key; ``coefficients_for`` returns None for keys to copy."""
    first = checkpoints[0]
    problems: list[str] = []
    plans = []
    for key in first:
        info = first.info(key)
        key_problems = _mismatches(key, checkpoints)
        if key_problems:
            problems.extend(key_problems)
            if options.on_missing == "copy-first":
                plans.append(KeyPlan(key, info.shape, _out_dtype(info.dtype, options), None))
            continue
        dtypes = [checkpoint.info(key).dtype for checkpoint in checkpoints]
        floating = [dtype.is_floating_point for dtype in dtypes]
        if any(floating) and not all(floating):
            listing = ", ".join(
                f"{cp.label}: {dtype}" for cp, dtype in zip(checkpoints, dtypes, strict=True)
            )
            raise MixError(f"{key}: floating and integer tensors cannot be mixed ({listing})")
        coefficients = coefficients_for(key) if all(floating) else None
        if any(dtype.is_complex for dtype in dtypes) and coefficients_for(key) is not None:
            raise MixError(
                f"{key}: complex tensors ({dtypes[0]}) are not mixed; exclude the key to copy it "
                "from the first source"
            )
        plans.append(KeyPlan(key, info.shape, _out_dtype(info.dtype, options), coefficients))
    for checkpoint in checkpoints[1:]:
        problems.extend(
            f"{key!r} is in {checkpoint.label} but not in {first.label}"
            for key in checkpoint
            if key not in first
        )
    if problems and options.on_missing == "error":
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        raise MixError(
            f"key sets or shapes differ ({len(problems)} mismatches): {shown}"
            + ("; ..." if len(problems) > _SHOWN_PROBLEMS else "")
            + " (choose on_missing 'skip' or 'copy-first' to go on)"
        )
    if not plans:
        raise MixError("nothing to write: no key is present in every source")
    return plans


def _mismatches(key: str, checkpoints: Sequence[Checkpoint]) -> list[str]:
    first = checkpoints[0]
    shape = first.info(key).shape
    found = []
    for checkpoint in checkpoints[1:]:
        if key not in checkpoint:
            found.append(f"{key!r} is missing from {checkpoint.label}")
        elif checkpoint.info(key).shape != shape:
            found.append(
                f"{key!r} has shape {list(checkpoint.info(key).shape)} in {checkpoint.label} "
                f"but {list(shape)} in {first.label}"
            )
    return found


def _out_dtype(source_dtype: torch.dtype, options: MixOptions) -> torch.dtype:
    if options.out_torch_dtype is not None and source_dtype.is_floating_point:
        return options.out_torch_dtype
    return source_dtype


def split_shards(plans: Sequence[KeyPlan], shard_bytes: int) -> list[list[KeyPlan]]:
    """Group keys in order into shards of at most ``shard_bytes`` (a bigger tensor stands alone)."""
    shards: list[list[KeyPlan]] = [[]]
    size = 0
    for plan in plans:
        if shards[-1] and size + plan.nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(plan)
        size += plan.nbytes
    return shards
