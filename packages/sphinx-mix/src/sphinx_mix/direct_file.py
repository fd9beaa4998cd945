"""Writing a file front to back past the page cache (``O_DIRECT``), where the system allows.

A mix writes each output byte once and never reads it back. Through the page cache that
costs a copy into freshly allocated cache pages (on virtual machines, fresh pages can also
cost host faults: several times the copy itself) and evicts the inputs. Staged in an
aligned block and written with ``O_DIRECT``, the bytes go from one reused buffer straight
to the device. File systems that refuse ``O_DIRECT`` (tmpfs, some FUSE mounts) get plain
buffered writes; the file's contents are the same either way.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from pathlib import Path

BLOCK_BYTES = 4 << 20  # a multiple of every logical block size (512 B to 64 KiB)


class SequentialFile:
    """Appends bytes to a new file; ``patch`` rewrites a range already written."""

    def __init__(self, path: Path, direct: bool = True):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self._direct_fd = _open_direct(path) if direct else None
        self._block = mmap.mmap(-1, BLOCK_BYTES) if self._direct_fd is not None else None
        self._filled = 0  # bytes waiting in the block
        self._flushed = 0  # file offset where the block starts

    @property
    def direct(self) -> bool:
        return self._direct_fd is not None

    def write(self, data: bytes | memoryview) -> None:
        data = memoryview(data).cast("B")
        if self._block is None:
            pwrite_all(self._fd, data, self._flushed)
            self._flushed += len(data)
            return
        while len(data):
            count = min(len(data), BLOCK_BYTES - self._filled)
            self._block[self._filled : self._filled + count] = data[:count]
            self._filled += count
            data = data[count:]
            if self._filled == BLOCK_BYTES:
                self._write_block()

    def patch(self, offset: int, data: bytes) -> None:
        """Overwrite bytes at ``offset`` (already written, or still in the block); a
        closed file is opened again for it."""
        if self._fd < 0:
            fd = os.open(self.path, os.O_WRONLY)
            try:
                pwrite_all(fd, memoryview(data), offset)
            finally:
                os.close(fd)
            return
        pending = offset - self._flushed
        if self._block is not None and pending >= 0 and pending + len(data) <= self._filled:
            self._block[pending : pending + len(data)] = data
            return
        self._sync_tail()
        pwrite_all(self._fd, memoryview(data), offset)

    def close(self) -> None:
        """Write what is left in the block and close (also after an error)."""
        if self._fd < 0:
            return
        try:
            self._sync_tail()
        finally:
            if self._direct_fd is not None:
                os.close(self._direct_fd)
            os.close(self._fd)
            self._direct_fd, self._fd = None, -1
            if self._block is not None:
                # after an error a traceback may still hold a view of it: then GC unmaps it
                with contextlib.suppress(BufferError):
                    self._block.close()
                self._block = None

    def _write_block(self) -> None:
        assert self._block is not None
        if self._direct_fd is not None:
            try:
                pwrite_all(self._direct_fd, memoryview(self._block), self._flushed)
            except OSError as error:
                if error.errno != errno.EINVAL:
                    raise
                # opened, but direct writes refused after all: on through the page cache
                os.close(self._direct_fd)
                self._direct_fd = None
        if self._direct_fd is None:
            pwrite_all(self._fd, memoryview(self._block), self._flushed)
        self._flushed += self._filled
        self._filled = 0

    def _sync_tail(self) -> None:
        """The partial block goes out through the buffered descriptor (any length works)."""
        if self._block is not None and self._filled:
            pwrite_all(self._fd, memoryview(self._block)[: self._filled], self._flushed)
            self._flushed += self._filled
            self._filled = 0


def _open_direct(path: Path) -> int | None:
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | flag)
    except OSError as error:
        if error.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise


def pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """All of ``data`` at ``offset`` (``os.pwrite`` may write less than asked)."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)
