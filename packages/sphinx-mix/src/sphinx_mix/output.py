"""Where mixed tensors go: memory, sharded safetensors, or reference ``.pth`` shards.

Files are written into a hidden temporary folder beside the target and the folder is
renamed only when everything (shards, index, copied files) is complete, so a failed or
interrupted run never leaves something that looks like a finished checkpoint.
"""

from __future__ import annotations

import json
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import MixError
from .plan import KeyPlan, split_shards
from .safetensors_io import SafetensorsWriter

INDEX_NAME = "model.safetensors.index.json"


@contextmanager
def atomic_folder(target: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary folder that becomes ``target`` only if the block finishes."""
    target = Path(target).absolute()
    if target.exists() and not overwrite:
        raise MixError(f"{target}: already exists (pass overwrite to replace it)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.incomplete-", dir=target.parent))
    except OSError as error:
        raise MixError(f"{target}: cannot create output ({error.strerror})") from None
    try:
        yield staging
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            target.rename(retired / target.name)
            staging.rename(target)
            shutil.rmtree(retired)
        else:
            staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


class ShardedSafetensorsSink:
    """Writes planned keys into ``model-XXXXX-of-YYYYY.safetensors`` files plus an index."""

    def __init__(self, folder: Path, plans: Sequence[KeyPlan], shard_bytes: int, metadata: str):
        shards = split_shards(plans, shard_bytes)
        names = (
            ["model.safetensors"]
            if len(shards) == 1
            else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        )
        self.folder = folder
        self.weight_map = {
            plan.key: name for name, shard in zip(names, shards, strict=True) for plan in shard
        }
        self.total_size = sum(plan.nbytes for plan in plans)
        self._pending = [
            (folder / name, [(plan.key, plan.dtype, plan.shape) for plan in shard])
            for name, shard in zip(names, shards, strict=True)
        ]
        self._initial_metadata = _header_metadata(metadata)
        self._writers: list[SafetensorsWriter] = []

    def add(self, key: str, tensor: torch.Tensor) -> None:
        if not self._writers or self._writers[-1].path.name != self.weight_map[key]:
            path, layout = self._pending.pop(0)
            self._writers.append(SafetensorsWriter(path, layout, self._initial_metadata))
        self._writers[-1].write(key, tensor)

    def finish(self, metadata: str) -> None:
        for writer in self._writers:
            writer.finish(_header_metadata(metadata))
        index = {
            "metadata": {"total_size": self.total_size, "sphinx_mix": json.loads(metadata)},
            "weight_map": self.weight_map,
        }
        (self.folder / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


class MemorySink:
    """Collects the output in a state dict (copies, so nothing points into mapped files)."""

    def __init__(self) -> None:
        self.state_dict: dict[str, torch.Tensor] = {}

    def add(self, key: str, tensor: torch.Tensor) -> None:
        self.state_dict[key] = tensor.clone()

    def finish(self, metadata: str) -> None:
        """Nothing to finalise in memory."""

    def close(self) -> None:
        """Nothing to release."""


class BackgroundSink:
    """Hands writes to a thread so disk writes overlap the next tensor's arithmetic."""

    def __init__(self, sink, depth: int = 2):
        self._sink = sink
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="sphinx-mix-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            key, tensor, when_written = item
            try:
                if self._error is None:
                    self._sink.add(key, tensor)
            except BaseException as error:  # re-raised in the caller's thread
                self._error = error
            finally:
                when_written()

    def add(self, key: str, tensor: torch.Tensor, when_written: Callable[[], None]) -> None:
        """Queue a write; ``when_written`` runs in the writer thread once it is done."""
        self._raise_pending()
        self._queue.put((key, tensor, when_written))

    def join(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise_pending()

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error


def _header_metadata(metadata: str) -> dict[str, str]:
    return {"format": "pt", "sphinx_mix": metadata}


def copy_extra_files(files: Sequence[Path], folder: Path) -> None:
    for path in files:
        if not (folder / path.name).exists():
            try:
                shutil.copy2(path, folder / path.name)
            except OSError as error:
                raise MixError(f"{path}: cannot copy ({error.strerror})") from None
