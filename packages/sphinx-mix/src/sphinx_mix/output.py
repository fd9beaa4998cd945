"""Where mixed tensors go: memory, sharded safetensors, or reference ``.pth`` shards.

Files are written into a hidden temporary folder beside the target and the folder is
renamed only when everything (shards, index, copied files) is complete, so a failed or
interrupted run never leaves something that looks like a finished checkpoint.
"""

from __future__ import annotations

import json
import queue
import shutil
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from ._house import OutputError, staged_dir
from .direct_file import pwrite_all
from .errors import MixError
from .plan import KeyPlan, split_shards
from .safetensors_io import SafetensorsWriter, tensor_bytes

INDEX_NAME = "model.safetensors.index.json"


# Everything a mix writes into its output folder, besides the files copied from the first
# source: an existing folder is replaced only when it holds nothing else.
OWNED_FILES = (
    "model.safetensors",
    "model-*-of-*.safetensors",
    INDEX_NAME,
    "consolidated.*-of-*.model.pth",
    "sphinx_mix.json",
)


@contextmanager
def output_folder(
    target: Path, inputs: Sequence[Path], overwrite: bool, copied: Sequence[str] = ()
) -> Iterator[Path]:
    """A hidden staging folder that becomes ``target`` only if the block finishes.

    The house rules apply: an input is never replaced or written into, an existing folder
    only with ``overwrite`` and only when it holds the mix's own files, and a killed run's
    staging folder is removed by the next run.
    """
    try:
        with staged_dir(
            target, inputs, overwrite=overwrite, owns=(*OWNED_FILES, *copied)
        ) as staging:
            yield staging
    except OutputError as error:
        raise MixError(str(error)) from None
    except OSError as error:
        raise MixError(f"{target}: cannot write the output ({error.strerror or error})") from None


class ShardedSafetensorsSink:
    """Writes planned keys into ``model-XXXXX-of-YYYYY.safetensors`` files plus an index."""

    def __init__(
        self,
        folder: Path,
        plans: Sequence[KeyPlan],
        shard_bytes: int,
        metadata: str,
        direct: bool = True,
    ):
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
        self._direct = direct
        self._writers: list[SafetensorsWriter] = []

    def add(self, key: str, tensor: torch.Tensor, offset: int = 0) -> None:
        if not self._writers or self._writers[-1].path.name != self.weight_map[key]:
            if self._writers:  # a finished shard keeps no buffer or descriptor open
                self._writers[-1].close()
            path, layout = self._pending.pop(0)
            self._writers.append(
                SafetensorsWriter(path, layout, self._initial_metadata, self._direct)
            )
        self._writers[-1].write(key, tensor, offset)

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


class ReferenceShardSink:
    """One ``consolidated.XX-of-YY.model.pth`` written tensor by tensor.

    ``torch.save`` under ``skip_data`` lays out the zip with room for every storage but
    no bytes; each tensor is then written at its record's offset, so no rank's output is
    ever held whole. Records are numbered in the order the state dict is pickled.
    """

    def __init__(self, path: Path, plans: Sequence[KeyPlan]):
        placeholders = {plan.key: torch.empty(plan.shape, dtype=plan.dtype) for plan in plans}
        with torch.serialization.skip_data():
            torch.save({"model": placeholders}, path)
        self._offsets = dict(zip(placeholders, _record_offsets(path, plans), strict=True))
        self._handle = open(path, "r+b")  # noqa: SIM115 - closed by close()

    def add(self, key: str, tensor: torch.Tensor, offset: int = 0) -> None:
        pwrite_all(self._handle.fileno(), tensor_bytes(tensor), self._offsets[key] + offset)

    def finish(self, metadata: str) -> None:
        """The metadata goes to sphinx_mix.json beside the shards."""

    def close(self) -> None:
        self._handle.close()


def _record_offsets(path: Path, plans: Sequence[KeyPlan]) -> list[int]:
    """File offsets of the storage records ``data/0``, ``data/1``, ... in order."""
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        records = {}
        for info in archive.infolist():
            folder, _, name = info.filename.rpartition("/")
            if folder.endswith("/data") and name.isdigit():
                handle.seek(info.header_offset)
                name_length, extra_length = struct.unpack("<HH", handle.read(30)[26:30])
                records[int(name)] = (
                    info.header_offset + 30 + name_length + extra_length,
                    info.file_size,
                )
    if sorted(records) != list(range(len(plans))) or any(
        records[index][1] != plan.nbytes for index, plan in enumerate(plans)
    ):
        raise MixError(f"{path}: unexpected torch.save layout; cannot stream into it")
    return [records[index][0] for index in range(len(plans))]


class MemorySink:
    """Collects the output in a state dict (copies, so nothing points into mapped files)."""

    def __init__(self, plans: Sequence[KeyPlan]) -> None:
        self._plans = {plan.key: plan for plan in plans}
        self.state_dict: dict[str, torch.Tensor] = {}

    def add(self, key: str, tensor: torch.Tensor, offset: int = 0) -> None:
        if key not in self.state_dict:
            plan = self._plans[key]
            self.state_dict[key] = torch.empty(plan.shape, dtype=plan.dtype)
        flat = self.state_dict[key].view(-1).view(torch.uint8)
        piece = tensor.reshape(-1).view(torch.uint8)
        flat[offset : offset + piece.numel()].copy_(piece)

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
            key, tensor, offset, when_written = item
            try:
                if self._error is None:
                    self._sink.add(key, tensor, offset)
            except BaseException as error:  # re-raised in the caller's thread
                self._error = error
            finally:
                when_written()

    def add(
        self, key: str, tensor: torch.Tensor, when_written: Callable[[], None], offset: int = 0
    ) -> None:
        """Queue a write (of a whole tensor, or its bytes from ``offset`` on); ``when_written``
        runs in the writer thread once it is done."""
        self._raise_pending()
        self._queue.put((key, tensor, offset, when_written))

    def join(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise_pending()

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error


def _header_metadata(metadata: str) -> dict[str, str]:
    return {"format": "pt", "sphinx_mix": metadata}


def copy_extra_files(
    files: Sequence[Path], folder: Path, out_dtype: torch.dtype | None = None
) -> None:
    """Copy the first source's non-weight files; ``config.json`` gets the new dtype."""
    for path in files:
        target = folder / path.name
        if target.exists():
            continue
        try:
            if path.name == "config.json" and out_dtype is not None:
                _write_config_with_dtype(path, target, out_dtype)
            else:
                shutil.copy2(path, target)
        except OSError as error:
            raise MixError(f"{path}: cannot copy ({error.strerror})") from None


def _write_config_with_dtype(source: Path, target: Path, dtype: torch.dtype) -> None:
    """A Hugging Face config names the weights' dtype (``torch_dtype``, or ``dtype`` in 5.x)."""
    try:
        config = json.loads(source.read_text())
    except (UnicodeDecodeError, ValueError):
        config = None
    if not isinstance(config, dict):
        shutil.copy2(source, target)
        return
    name = str(dtype).removeprefix("torch.")
    keys = [key for key in ("torch_dtype", "dtype") if key in config] or ["torch_dtype"]
    for key in keys:
        config[key] = name
    target.write_text(json.dumps(config, indent=2) + "\n")
