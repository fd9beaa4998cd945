"""Reading ahead in a thread: memory-mapped views, or a small ring of reusable buffers.

While the main thread mixes key ``k``, the reader thread maps key ``k + 1`` (and asks the
kernel for ``k + 2``), and the writer thread writes key ``k - 1``. Safetensors tensors are
views of a memory map whose pages the reader maps ahead and the consumer releases after
use; other formats are copied into reused buffers. Either way memory stays at a few
tensors per source whatever the model size, and nothing is faulted in twice.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial

import torch

from .checkpoint import Checkpoint
from .errors import MixError
from .pages import drop_mapped_pages, populate_pages, tensor_range
from .plan import KeyPlan

_POLL_SECONDS = 0.1
_DONE = object()


class BufferRing:
    """``depth`` uint8 buffers handed out in turn; each is reused only once released."""

    def __init__(self, depth: int, nbytes: int):
        self.nbytes = nbytes
        self._buffers: list[torch.Tensor | None] = [None] * depth
        self._free = [threading.Semaphore(1) for _ in range(depth)]
        self._next = 0

    def acquire(self, stop: threading.Event) -> tuple[torch.Tensor, Callable[[], None]] | None:
        """The next buffer and the call that releases it; None once ``stop`` is set."""
        index = self._next
        self._next = (index + 1) % len(self._buffers)
        while not self._free[index].acquire(timeout=_POLL_SECONDS):
            if stop.is_set():
                return None
        if self._buffers[index] is None:
            self._buffers[index] = torch.empty(self.nbytes, dtype=torch.uint8)
        return self._buffers[index], self._free[index].release


def readers_of(checkpoints: Sequence[Checkpoint], plan: KeyPlan) -> Sequence[Checkpoint]:
    """The sources a key needs: all of them to mix, the first one to copy."""
    return checkpoints if plan.coefficients is not None else checkpoints[:1]


class ReadAhead:
    """Iterates ``(plan, tensors, release)`` with the reads done in a background thread.

    ``release`` must be called once the tensors are no longer needed (after the mix, or
    after the write when a tensor is copied as is); until then their buffers stay taken.
    """

    def __init__(self, checkpoints: Sequence[Checkpoint], plans: Sequence[KeyPlan], depth: int = 2):
        self._checkpoints = checkpoints
        self._plans = plans
        self._rings = [
            BufferRing(depth, max(_sizes(index, plans, checkpoints), default=0))
            if checkpoint.reads_into_buffers
            else None
            for index, checkpoint in enumerate(checkpoints)
        ]
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sphinx-mix-reader", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[tuple[KeyPlan, list[torch.Tensor], Callable[[], None]]]:
        while (item := self._queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            for position, plan in enumerate(self._plans):
                if position + 1 < len(self._plans):
                    for checkpoint in readers_of(self._checkpoints, self._plans[position + 1]):
                        checkpoint.prefetch(self._plans[position + 1].key)
                item = self._read(plan)
                if item is None or not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as error:  # handed to the main thread, which raises it
            self._put(error)

    def _read(self, plan: KeyPlan):
        tensors, releases = [], []
        for checkpoint, ring in zip(readers_of(self._checkpoints, plan), self._rings, strict=False):
            view = checkpoint.mapped(plan.key)
            if view is not None:
                if not populate_pages(*tensor_range(view)):
                    raise MixError(
                        f"{checkpoint.label}: file ended while reading {plan.key!r}; "
                        "was it truncated?"
                    )
                tensors.append(view)
                releases.append(partial(drop_mapped_pages, view))
                continue
            if ring is None:
                tensors.append(checkpoint.read(plan.key, None))
                continue
            taken = ring.acquire(self._stop)
            if taken is None:
                return None
            buffer, release = taken
            releases.append(release)
            tensors.append(checkpoint.read(plan.key, buffer))
        return plan, tensors, partial(_release_all, releases)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False


def _release_all(releases: Sequence[Callable[[], None]]) -> None:
    for release in releases:
        release()


def _sizes(index: int, plans: Sequence[KeyPlan], checkpoints: Sequence[Checkpoint]):
    """Bytes of every tensor that source ``index`` must read."""
    for plan in plans:
        if index < len(readers_of(checkpoints, plan)):
            yield checkpoints[index].info(plan.key).nbytes
