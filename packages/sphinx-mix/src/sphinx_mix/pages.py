"""Managing the pages of file-backed memory maps.

A private, read-only-in-practice mapping (torch ``mmap=True``, or ``mmap.ACCESS_COPY``)
keeps every page it has read in the process (and in its RSS) until unmapped, so streaming a
whole file through one would end up holding it all. ``madvise(MADV_DONTNEED)`` drops pages
from the process only; they stay in the page cache, and reading them again faults them back
in from the file. ``MADV_POPULATE_READ`` (Linux 5.14) maps a range ahead of use in one call,
from a background thread, so the thread that computes takes no page faults; it also reports
a range past the end of a truncated file as an error instead of a later SIGBUS. Only ever
used on file-backed mappings (on anonymous memory DONTNEED would zero data).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no torch at import: the CLI's --help and --version stay instant
    import torch

_MADV_WILLNEED = 3
_MADV_DONTNEED = 4
_MADV_POPULATE_READ = 22
_libc = (
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None
)


def map_address(mapped: mmap.mmap) -> int:
    """Start address of a writable (``ACCESS_COPY`` or ``ACCESS_WRITE``) mapping."""
    anchor = ctypes.c_char.from_buffer(mapped)
    try:
        return ctypes.addressof(anchor)
    finally:
        del anchor  # the export would keep the map from closing


def _whole_pages(start: int, nbytes: int, inward: bool) -> tuple[int, int]:
    """The page-aligned range inside (``inward``) or around ``[start, start + nbytes)``."""
    size = mmap.PAGESIZE
    end = start + nbytes
    if inward:
        return -(-start // size) * size, end // size * size
    return start // size * size, -(-end // size) * size


def drop_pages(start: int, nbytes: int) -> None:
    """Release the whole pages inside a mapped byte range (a no-op off Linux)."""
    first, last = _whole_pages(start, nbytes, inward=True)
    if _libc is not None and last > first:
        _libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)


def populate_pages(start: int, nbytes: int) -> bool:
    """Map a byte range of a file mapping now; False if the file ends before the range does.

    Falls back to a read-ahead hint where the kernel lacks ``MADV_POPULATE_READ``.
    """
    first, last = _whole_pages(start, nbytes, inward=False)
    if _libc is None or last <= first:
        return True
    length = ctypes.c_size_t(last - first)
    if _libc.madvise(ctypes.c_void_p(first), length, _MADV_POPULATE_READ) == 0:
        return True
    if ctypes.get_errno() in (errno.EFAULT, errno.EIO):  # past the end of the file
        return False
    _libc.madvise(ctypes.c_void_p(first), length, _MADV_WILLNEED)  # older kernel: a hint
    return True


def tensor_range(tensor: torch.Tensor) -> tuple[int, int]:
    return tensor.data_ptr(), tensor.numel() * tensor.element_size()


def drop_mapped_pages(tensor: torch.Tensor) -> None:
    """Release the whole pages inside ``tensor``'s bytes."""
    if tensor.numel():
        drop_pages(*tensor_range(tensor))
