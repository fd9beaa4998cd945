"""Settings shared by every operation, loadable from a recipe."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ._house import dtype_name
from .digests import DIGESTS
from .errors import MixError

if TYPE_CHECKING:
    import torch

ON_MISSING = ("error", "skip", "copy-first")
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", re.IGNORECASE)


@dataclass
class MixOptions:
    """How a mix runs; every field has a safe default.

    ``compute_dtype``: dtype of the arithmetic. ``out_dtype``: dtype of every floating output
    tensor (default: the first source's dtype for that tensor). ``on_missing``: what to do
    with keys absent from some sources or whose shapes differ: ``error``, ``skip`` them, or
    ``copy-first`` (take the first source's tensor). ``shard_size``: largest output shard,
    bytes or a string such as ``"5GB"``. ``hash_inputs`` / ``digest``: record a digest of
    every input file (``blake3``, or ``sha256`` to compare with ``sha256sum`` or a hub listing). ``threads``: threads for the arithmetic while
    the mix runs (default 1: on two cores the other one is busy writing and hashing). Sums
    split each tensor over that many Python threads; whole-tensor methods use torch's.
    ``direct_io``: write safetensors outputs past the page cache (``O_DIRECT``) where the
    file system allows; turn off on file systems where direct writes are slow.
    """

    compute_dtype: str = "float32"
    out_dtype: str | None = None
    device: str = "cpu"
    shard_size: int | str = "5GB"
    on_missing: str = "error"
    check_finite: bool = False
    hash_inputs: bool = True
    digest: str = "blake3"
    overwrite: bool = False
    progress: bool = True
    threads: int = 1
    direct_io: bool = True

    def __post_init__(self) -> None:
        import torch

        if self.on_missing not in ON_MISSING:
            raise MixError(
                f"on_missing={self.on_missing!r}: expected one of {', '.join(ON_MISSING)}"
            )
        self.compute_torch_dtype = parse_dtype(self.compute_dtype, "compute_dtype")
        if not self.compute_torch_dtype.is_floating_point:
            raise MixError(f"compute_dtype={self.compute_dtype!r}: expected a floating dtype")
        self.out_torch_dtype = parse_dtype(self.out_dtype, "out_dtype") if self.out_dtype else None
        self.shard_bytes = parse_size(self.shard_size)
        if self.digest not in DIGESTS:
            raise MixError(f"digest={self.digest!r}: expected one of {', '.join(DIGESTS)}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise MixError(f"threads={self.threads!r}: expected a positive integer")
        try:
            self.torch_device = torch.device(self.device)
        except RuntimeError:
            raise MixError(f"device={self.device!r}: not a torch device") from None

    @classmethod
    def names(cls) -> set[str]:
        return {field.name for field in fields(cls)}


def parse_dtype(name: str, what: str) -> torch.dtype:
    """The house dtype vocabulary (float32|fp32, bfloat16|bf16, float16|fp16|half), plus float64."""
    import torch

    if str(name).lower().removeprefix("torch.") in ("float64", "fp64", "double"):
        return torch.float64
    try:
        return getattr(torch, dtype_name(name))
    except ValueError as error:
        raise MixError(f"{what}={name!r}: {str(error).partition('; ')[2]}") from None


def parse_size(size: int | str) -> int:
    """Bytes from an int or a string like ``"500MB"``, ``"2GiB"`` or ``"1.5G"``."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        match = _SIZE.fullmatch(str(size))
        if not match:
            raise MixError(f"shard_size={size!r}: expected bytes or a size like '5GB'")
        number, unit, binary = match.groups()
        base = 1024 if binary else 1000
        value = int(float(number) * base ** " KMGT".index(unit.upper() or " "))
    if value <= 0:
        raise MixError(f"shard_size={size!r}: must be positive")
    return value
