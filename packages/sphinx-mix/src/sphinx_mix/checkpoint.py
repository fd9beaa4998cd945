"""Opening checkpoints of every supported layout behind one small interface.

A checkpoint exposes its keys, each tensor's dtype and shape without reading data, and
the tensor itself on demand. Safetensors tensors are read one at a time at their offsets
(into reusable buffers when streaming); torch ``.bin``/``.pth``
files are loaded with ``weights_only=True, mmap=True`` so their storages stay on disk
until touched. The reference SPHINX layout (``consolidated.XX-of-YY.model.pth``) opens as
a :class:`ShardedReference` holding one checkpoint per model-parallel rank.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from ._house import confined_path, unwrap_state_dict
from .errors import MixError
from .pages import drop_mapped_pages
from .safetensors_io import SafetensorsFile, TensorInfo, tensor_nbytes

TORCH_SUFFIXES = (".bin", ".pth", ".pt")
# Files that trainers leave beside the weights with a weight-like suffix; never weights.
NOT_WEIGHTS = (
    "training_args.bin",
    "optimizer.pt",
    "optimizer.bin",
    "scheduler.pt",
    "scaler.pt",
    "rng_state*.pth",
)
WEIGHT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
REFERENCE_SHARD = re.compile(r"consolidated\.(\d+)-of-(\d+)\.model\.pth")

Source = str | os.PathLike[str] | Mapping[str, torch.Tensor]


class Checkpoint:
    """Tensors by name, with dtypes and shapes known before any data is read."""

    def __init__(self, label: str, weight_files: list[Path], folder: Path | None = None):
        self.label = label
        self.weight_files = weight_files
        self.folder = folder
        self._infos: dict[str, TensorInfo] = {}

    def keys(self) -> list[str]:
        return list(self._infos)

    def info(self, key: str) -> TensorInfo:
        return self._infos[key]

    def __iter__(self):
        return iter(self._infos)

    def __contains__(self, key: str) -> bool:
        return key in self._infos

    def get(self, key: str) -> torch.Tensor:
        raise NotImplementedError

    def read(self, key: str, buffer: torch.Tensor | None) -> torch.Tensor:
        """The tensor, read into ``buffer`` (uint8, large enough) where the format allows."""
        return self.get(key)

    @property
    def reads_into_buffers(self) -> bool:
        return False

    def mapped(self, key: str) -> torch.Tensor | None:
        """A zero-copy view of ``key`` in a memory map (pages not yet mapped), where possible."""
        return None

    def prefetch(self, key: str) -> None:
        """Hint that ``key`` is needed soon; a no-op where the format gives no way to."""

    def close(self) -> None:
        """Release open files."""

    def extra_files(self) -> list[Path]:
        """Files of a model folder that are not weights (config, tokenizer, ...)."""
        if self.folder is None:
            return []
        return sorted(
            path
            for path in self.folder.iterdir()
            if path.is_file()
            and not _is_weight_file(path)
            and not _is_training_state(path)
            and not path.name.startswith(".")
        )


class SafetensorsCheckpoint(Checkpoint):
    def __init__(self, label: str, files: list[Path], folder: Path | None = None, index=None):
        super().__init__(label, files + ([index] if index else []), folder)
        self._files: list[SafetensorsFile] = []
        self._owner: dict[str, SafetensorsFile] = {}
        for path in files:
            opened = SafetensorsFile(path)
            self._files.append(opened)
            for key, info in opened.tensors.items():
                if key in self._owner:
                    raise MixError(f"{path}: key {key!r} also appears in {self._owner[key].path}")
                self._owner[key] = opened
                self._infos[key] = info

    def get(self, key: str) -> torch.Tensor:
        return self._owner[key].get(key)

    def read(self, key: str, buffer: torch.Tensor | None) -> torch.Tensor:
        if buffer is None:
            return self.get(key)
        return self._owner[key].read_into(key, buffer)

    @property
    def reads_into_buffers(self) -> bool:
        return True

    def mapped(self, key: str) -> torch.Tensor | None:
        return self._owner[key].mapped(key)

    def prefetch(self, key: str) -> None:
        self._owner[key].prefetch(key)

    def close(self) -> None:
        for opened in self._files:
            opened.close()


class StateDictCheckpoint(Checkpoint):
    """A state dict already in memory, or one loaded from a torch file."""

    def __init__(
        self,
        label: str,
        state_dict: Mapping[str, object],
        weight_files=(),
        folder=None,
        mapped: bool = False,
    ):
        super().__init__(label, list(weight_files), folder)
        self._mapped = mapped
        self._tensors: dict[str, torch.Tensor] = {}
        for key, value in state_dict.items():
            if not isinstance(value, torch.Tensor):
                raise MixError(
                    f"{label}: entry {key!r} is a {type(value).__name__}, expected a tensor"
                )
            self._tensors[key] = value
            shape = tuple(value.shape)
            self._infos[key] = TensorInfo(value.dtype, shape, 0, tensor_nbytes(value.dtype, shape))

    def get(self, key: str) -> torch.Tensor:
        return self._tensors[key]

    @property
    def reads_into_buffers(self) -> bool:
        """Memory-mapped files are copied out tensor by tensor, so their pages can go."""
        return self._mapped

    def read(self, key: str, buffer: torch.Tensor | None) -> torch.Tensor:
        source = self._tensors[key]
        if buffer is None or not self._mapped:
            return source
        info = self._infos[key]
        target = buffer[: info.nbytes].view(info.dtype).reshape(info.shape)
        target.copy_(source)
        drop_mapped_pages(source)
        return target


class ShardedReference:
    """The reference repo's model-parallel checkpoint: one state dict per rank."""

    def __init__(self, folder: Path, ranks: list[Checkpoint]):
        self.folder = folder
        self.label = str(folder)
        self.ranks = ranks
        self.weight_files = [path for rank in ranks for path in rank.weight_files]

    def extra_files(self) -> list[Path]:
        return self.ranks[0].extra_files()

    def close(self) -> None:
        for rank in self.ranks:
            rank.close()


def open_checkpoint(source: Source) -> Checkpoint | ShardedReference:
    """Open a file, a model folder, an index json or an in-memory state dict."""
    if isinstance(source, Mapping):
        return StateDictCheckpoint("<state dict>", source)
    path = Path(source)
    if not path.exists():
        raise MixError(f"{path}: no such file or directory")
    if path.is_dir():
        return _open_folder(path)
    if not os.access(path, os.R_OK):
        raise MixError(f"{path}: cannot open (permission denied)")
    if path.name.endswith(".index.json"):
        return _open_index(path, folder=None)
    if path.suffix == ".safetensors":
        return SafetensorsCheckpoint(str(path), [path])
    if path.suffix in TORCH_SUFFIXES:
        return _open_torch(str(path), [path])
    raise MixError(
        f"{path}: unrecognised checkpoint file (expected .safetensors, .bin, .pth, .pt "
        "or a *.index.json)"
    )


def _open_folder(folder: Path) -> Checkpoint | ShardedReference:
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except OSError as error:
        raise MixError(f"{folder}: cannot list folder ({error.strerror})") from None
    indexes = [name for name in names if name.endswith(".safetensors.index.json")]
    if len(indexes) > 1:
        raise MixError(f"{folder}: several safetensors indexes ({', '.join(indexes)}); pass one")
    if indexes:
        return _open_index(folder / indexes[0], folder)
    safetensors = [folder / name for name in names if name.endswith(".safetensors")]
    if safetensors:
        return SafetensorsCheckpoint(str(folder), safetensors, folder)
    reference = [name for name in names if REFERENCE_SHARD.fullmatch(name)]
    if reference:
        return _open_reference(folder, reference)
    bin_indexes = [name for name in names if name.endswith(".bin.index.json")]
    if bin_indexes:
        return _open_index(folder / bin_indexes[0], folder)
    torch_files = [
        folder / name
        for name in names
        if name.endswith(TORCH_SUFFIXES) and not _is_training_state(folder / name)
    ]
    if torch_files:
        return _open_torch(str(folder), torch_files, folder)
    raise MixError(
        f"{folder}: no weights found (expected *.safetensors, a *.index.json, "
        "consolidated.XX-of-YY.model.pth or *.bin/*.pth files)"
    )


def _open_index(index_path: Path, folder: Path | None) -> Checkpoint:
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
        files = sorted(set(weight_map.values()))
    except OSError as error:
        raise MixError(f"{index_path}: cannot read ({error.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MixError(
            f"{index_path}: not a valid index (expected a JSON object with a 'weight_map')"
        ) from None
    try:
        paths = [confined_path(index_path.parent, name, what="shard") for name in files]
    except ValueError as error:
        raise MixError(f"{index_path}: {error}") from None
    for path in paths:
        if not path.is_file():
            raise MixError(f"{index_path}: lists {path.name}, which does not exist")
    label = str(folder or index_path)
    if all(name.endswith(".safetensors") for name in files):
        checkpoint: Checkpoint = SafetensorsCheckpoint(label, paths, folder, index=index_path)
    else:
        checkpoint = _open_torch(label, paths, folder)
        checkpoint.weight_files.append(index_path)
    missing = [key for key in weight_map if key not in checkpoint]
    if missing:
        raise MixError(
            f"{index_path}: lists keys that its shards do not hold, e.g. {missing[:3]} "
            f"({len(missing)} in all)"
        )
    return checkpoint


def _open_reference(folder: Path, names: list[str]) -> ShardedReference:
    counts = {int(REFERENCE_SHARD.fullmatch(name).group(2)) for name in names}
    ranks = sorted(int(REFERENCE_SHARD.fullmatch(name).group(1)) for name in names)
    if len(counts) != 1 or ranks != list(range(next(iter(counts)))):
        raise MixError(
            f"{folder}: incomplete or inconsistent model-parallel shards: {', '.join(names)}"
        )
    shards = [
        _open_torch(str(folder / name), [folder / name], folder)
        for name in sorted(names, key=lambda name: int(REFERENCE_SHARD.fullmatch(name).group(1)))
    ]
    return ShardedReference(folder, shards)


def _open_torch(label: str, paths: list[Path], folder: Path | None = None) -> Checkpoint:
    state_dict: dict[str, object] = {}
    mapped = True
    for path in paths:
        loaded, file_mapped = _load_torch_file(path)
        mapped = mapped and file_mapped
        for key, value in loaded.items():
            if key in state_dict:
                raise MixError(f"{path}: key {key!r} also appears in an earlier file of {label}")
            state_dict[key] = value
    return StateDictCheckpoint(label, state_dict, paths, folder, mapped=mapped)


def _load_torch_file(path: Path) -> tuple[Mapping[str, object], bool]:
    """The state dict, and whether its tensors are memory-mapped from the file."""
    try:
        # mmap maps the zip members as they are stored: a re-packed (deflated) archive would
        # come back as compressed bytes, so only stored archives are memory-mapped.
        mappable = _stored_uncompressed(path)
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=mappable)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            warnings.warn(
                f"{path}: old torch serialisation cannot be memory-mapped; loading it whole",
                stacklevel=3,
            )
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            mappable = False
    except OSError as error:
        raise MixError(f"{path}: cannot open ({error.strerror or error})") from None
    except pickle.UnpicklingError:
        raise MixError(
            f"{path}: holds Python objects other than tensors; refusing to unpickle them"
        ) from None
    except Exception as error:  # torch raises many types for truncated or foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MixError(f"{path}: not a readable torch checkpoint ({reason})") from None
    try:
        return unwrap_state_dict(loaded, path), mappable
    except ValueError as error:
        raise MixError(str(error)) from None


def _stored_uncompressed(path: Path) -> bool:
    """True for a torch zip whose members are all stored (the layout torch.save writes)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    except zipfile.BadZipFile:
        return True  # not a zip: torch reports the legacy format itself


def _is_training_state(path: Path) -> bool:
    return any(fnmatch.fnmatchcase(path.name, pattern) for pattern in NOT_WEIGHTS)


def _is_weight_file(path: Path) -> bool:
    return path.name.endswith(WEIGHT_SUFFIXES) or path.name.endswith(".index.json")
