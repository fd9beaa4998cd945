"""Letting go of memory-mapped pages once a tensor has been copied out of them.

A torch file loaded with ``mmap=True`` is a private, read-only mapping: every page read
stays in the process (and counts in its RSS) until unmapped, so streaming a whole shard
would end up holding it all. ``madvise(MADV_DONTNEED)`` drops the pages from the process
only; they stay in the page cache, and reading them again faults them back in from the
file. Only ever used on file-backed mappings (on anonymous memory it would zero data).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys

import torch

_MADV_DONTNEED = 4
_libc = (
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None
)


def drop_mapped_pages(tensor: torch.Tensor) -> None:
    """Release the whole pages inside ``tensor``'s bytes (a no-op off Linux)."""
    if _libc is None or tensor.numel() == 0:
        return
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
    last = end // mmap.PAGESIZE * mmap.PAGESIZE
    if last > first:
        _libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)
