"""Digests of the input files, computed in a thread while the mix runs.

BLAKE3 is the default: a cryptographic hash (collision and preimage resistant like
sha256) that runs about four times faster than hashlib's sha256 on one core, so the
integrity record no longer costs more than the mix. ``sha256`` stays available for
digests that must match ``sha256sum`` or a model hub's file listing. Files are hashed
from a memory map, page range by page range, and each range is released once hashed:
no copy into Python buffers, and the pages never pile up in the process.
"""

from __future__ import annotations

import hashlib
import mmap
import threading
from collections.abc import Sequence

from .errors import MixError
from .pages import drop_pages, map_address, populate_pages

DIGESTS = ("blake3", "sha256")
_PLACEHOLDER = "0" * 64
_BLOCK = 16 << 20


def new_digest(name: str):
    if name == "blake3":
        from blake3 import blake3

        return blake3()
    if name == "sha256":
        return hashlib.sha256()
    raise MixError(f"digest={name!r}: expected one of {', '.join(DIGESTS)}")


def file_digest(path: str, name: str, stop: threading.Event | None = None) -> str:
    """Hex digest of a whole file, read through a memory map in blocks."""
    digest = new_digest(name)
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return digest.hexdigest()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY) as mapped:
            address = map_address(mapped)
            view = memoryview(mapped)
            try:
                for start in range(0, size, _BLOCK):
                    if stop is not None and stop.is_set():
                        break
                    count = min(_BLOCK, size - start)
                    if not populate_pages(address + start, count):
                        raise ValueError("the file became shorter while being hashed")
                    digest.update(view[start : start + count])
                    drop_pages(address + start, count)
            finally:
                view.release()
    return digest.hexdigest()


class InputHasher:
    """Digests of every input file, computed in a background thread."""

    def __init__(self, files: Sequence[str], digest: str | None):
        self.files = list(files)
        self.digest = digest
        self._digests: dict[str, str] = {}
        self._error: MixError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sphinx-mix-hash", daemon=True)
        if digest is not None:
            new_digest(digest)  # an unknown name fails here, before any work
            self._thread.start()

    def _run(self) -> None:
        for name in self.files:
            try:
                self._digests[name] = file_digest(name, self.digest, self._stop)
            except (OSError, ValueError) as error:
                reason = getattr(error, "strerror", None) or str(error)
                self._error = MixError(f"{name}: cannot read to hash ({reason})")
                return
            if self._stop.is_set():
                return

    def stop(self) -> None:
        """Give up (the mix failed): the thread ends after its current block."""
        self._stop.set()

    def placeholder(self) -> dict[str, str] | None:
        """Same-length digests, so the final header fits where the first one was written."""
        return dict.fromkeys(self.files, _PLACEHOLDER) if self.digest else None

    def result(self) -> dict[str, str] | None:
        if self.digest is None:
            return None
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digests
