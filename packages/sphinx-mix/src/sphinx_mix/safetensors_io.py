"""Reading and writing safetensors files one tensor at a time.

The reader parses and checks the header itself so that truncated files and corrupt headers
get one clear error, then reads single tensors at their offsets when asked. The writer lays out the header from the
planned shapes first and then streams tensor bytes, so it never holds a whole shard.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from .direct_file import SequentialFile
from .errors import MixError

_DTYPE_NAMES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
}
DTYPE_FROM_CODE = {
    code: getattr(torch, name) for code, name in _DTYPE_NAMES.items() if hasattr(torch, name)
}
CODE_FROM_DTYPE = {dtype: code for code, dtype in DTYPE_FROM_CODE.items()}
_ALIGNMENT = 8
_MAX_HEADER = 100_000_000  # the safetensors library's own limit


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(repr(key))
        seen[key] = value
    return seen


def _whole_numbers(values: object) -> bool:
    return isinstance(values, list) and all(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in values
    )


@dataclass(frozen=True)
class TensorInfo:
    """Where a tensor lives and what it is, known without reading its data."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int = 0
    nbytes: int = 0


def tensor_nbytes(dtype: torch.dtype, shape: tuple[int, ...]) -> int:
    numel = 1
    for size in shape:
        numel *= size
    return numel * dtype.itemsize


def tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """The raw bytes of a CPU tensor, without a copy when it is already contiguous."""
    flat = tensor.detach().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


class SafetensorsFile:
    """A safetensors file whose header has been validated; tensors are read on demand.

    A streaming mix takes tensors as views of a memory map (``mapped``): mapped ahead in a
    reader thread and released once used, so nothing is copied and the pages never pile
    up. Other reads go through ``os.preadv`` into a caller's buffer.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._map: mmap.mmap | None = None
        try:
            self._handle = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as error:
            raise MixError(f"{self.path}: cannot open ({error.strerror})") from None
        try:
            size = os.fstat(self._handle.fileno()).st_size
            header, data_start = _read_header(self.path, self._handle, size)
            header.pop("__metadata__", None)
            self.tensors = _parse_entries(self.path, header, data_start, size)
            # mapped at the checked size: a file cut later fails populate_pages, not a read
            self._map = mmap.mmap(self._handle.fileno(), size, access=mmap.ACCESS_COPY)
        except BaseException:
            self._handle.close()
            raise

    def keys(self) -> list[str]:
        return list(self.tensors)

    def get(self, key: str) -> torch.Tensor:
        """A tensor in freshly allocated memory."""
        return self.read_into(key, torch.empty(self.tensors[key].nbytes, dtype=torch.uint8))

    def read_into(self, key: str, buffer: torch.Tensor) -> torch.Tensor:
        """Read a tensor into the front of a uint8 ``buffer``; returns a typed view of it."""
        info = self.tensors[key]
        target = buffer[: info.nbytes]
        view = memoryview(target.numpy())
        done = 0
        while done < info.nbytes:
            try:
                count = os.preadv(self._handle.fileno(), [view[done:]], info.offset + done)
            except OSError as error:
                raise MixError(f"{self.path}: cannot read {key!r} ({error.strerror})") from None
            if count == 0:
                raise MixError(f"{self.path}: file ended while reading {key!r}; was it truncated?")
            done += count
        return target.view(info.dtype).reshape(info.shape)

    def mapped(self, key: str) -> torch.Tensor | None:
        """The tensor as a view of a memory map of the file (no copy), or None where its
        offset is not a multiple of its element size (or it is empty): read it instead.

        The pages are not mapped yet: call ``populate_pages`` on the view before use.
        """
        info = self.tensors[key]
        if info.nbytes == 0 or info.offset % info.dtype.itemsize:
            return None
        flat = torch.frombuffer(
            self._map,
            dtype=info.dtype,
            count=info.nbytes // info.dtype.itemsize,
            offset=info.offset,
        )
        return flat.reshape(info.shape)

    def prefetch(self, key: str) -> None:
        """Ask the kernel to start reading a tensor from disk while other work goes on."""
        info = self.tensors[key]
        os.posix_fadvise(self._handle.fileno(), info.offset, info.nbytes, os.POSIX_FADV_WILLNEED)

    def close(self) -> None:
        if self._map is not None:
            # a view still alive keeps the map open; it is unmapped when the view goes
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None
        self._handle.close()


def _read_header(path: Path, handle, size: int) -> tuple[dict, int]:
    if size < 8:
        raise MixError(
            f"{path}: truncated safetensors file ({size} bytes, shorter than the 8-byte header length)"
        )
    (header_len,) = struct.unpack("<Q", handle.read(8))
    if header_len > size - 8:
        raise MixError(
            f"{path}: corrupt safetensors header (declares {header_len} header bytes, "
            f"the file has {size - 8} after the length field)"
        )
    if header_len > _MAX_HEADER:
        raise MixError(f"{path}: corrupt safetensors header (declares {header_len} bytes)")
    try:
        header = json.loads(handle.read(header_len), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MixError(f"{path}: corrupt safetensors header (not valid JSON: {error})") from None
    except _DuplicateKey as duplicate:
        raise MixError(
            f"{path}: corrupt safetensors header (key {duplicate} appears twice)"
        ) from None
    if not isinstance(header, dict):
        raise MixError(f"{path}: corrupt safetensors header (expected a JSON object)")
    return header, 8 + header_len


def _parse_entries(path: Path, header: dict, data_start: int, size: int) -> dict[str, TensorInfo]:
    """Check the entries as the safetensors library does: known dtypes, whole-number shapes
    and offsets, and byte ranges that tile the data section exactly (no overlap, alias or hole).
    """
    entries = {}
    spans = []
    for key, entry in header.items():
        if (
            not isinstance(entry, dict)
            or entry.get("dtype") not in DTYPE_FROM_CODE
            or not _whole_numbers(entry.get("shape"))
            or not _whole_numbers(entry.get("data_offsets"))
            or len(entry["data_offsets"]) != 2
        ):
            raise MixError(
                f"{path}: corrupt safetensors header entry for {key!r}: {entry!r} "
                "(expected a known dtype, a shape and two data_offsets, all whole numbers)"
            )
        dtype, shape = DTYPE_FROM_CODE[entry["dtype"]], tuple(entry["shape"])
        begin, end = entry["data_offsets"]
        nbytes = tensor_nbytes(dtype, shape)
        if end - begin != nbytes:
            raise MixError(
                f"{path}: corrupt safetensors header entry for {key!r}: offsets {begin}..{end} "
                f"do not hold a {entry['dtype']} tensor of shape {list(shape)} ({nbytes} bytes)"
            )
        entries[key] = TensorInfo(dtype, shape, data_start + begin, nbytes)
        spans.append((begin, end, key))
    position = 0
    for begin, end, key in sorted(spans):
        if begin != position:
            problem = "overlaps another tensor" if begin < position else "leaves a gap before it"
            raise MixError(f"{path}: corrupt safetensors header: {key!r} {problem}")
        position = end
    if data_start + position > size:
        raise MixError(
            f"{path}: truncated safetensors file (the header describes {position} bytes of "
            f"tensor data, the file holds {size - data_start})"
        )
    if data_start + position < size:
        raise MixError(
            f"{path}: corrupt safetensors file ({size - data_start - position} bytes after "
            "the last tensor)"
        )
    return entries


class SafetensorsWriter:
    """Streams tensors into one safetensors file in a planned order.

    The header is written first from the planned dtypes and shapes. Its metadata can be
    replaced at the end (e.g. with input hashes computed meanwhile) as long as the new
    header is no longer than the first one, which is padded with spaces to fit.
    """

    def __init__(
        self,
        path: Path,
        plan: list[tuple[str, torch.dtype, tuple[int, ...]]],
        metadata: dict[str, str],
        direct: bool = True,
    ):
        self.path = path
        self._plan = plan
        self._next = 0
        self._written = 0  # bytes of the current key written so far
        self._header_len = len(self._encode_header(metadata))
        self._file = SequentialFile(path, direct)
        self._file.write(struct.pack("<Q", self._header_len))
        self._file.write(self._encode_header(metadata))

    def _encode_header(self, metadata: dict[str, str], pad_to: int | None = None) -> bytes:
        header: dict[str, object] = {"__metadata__": metadata}
        offset = 0
        for key, dtype, shape in self._plan:
            nbytes = tensor_nbytes(dtype, shape)
            header[key] = {
                "dtype": CODE_FROM_DTYPE[dtype],
                "shape": list(shape),
                "data_offsets": [offset, offset + nbytes],
            }
            offset += nbytes
        encoded = json.dumps(header, separators=(",", ":")).encode()
        target = pad_to if pad_to is not None else -(-len(encoded) // _ALIGNMENT) * _ALIGNMENT
        if len(encoded) > target:
            raise ValueError(f"new safetensors header of {self.path} outgrew the space reserved")
        return encoded + b" " * (target - len(encoded))

    def write(self, key: str, tensor: torch.Tensor, offset: int = 0) -> None:
        """Write ``tensor``, the planned key's bytes from ``offset`` on (a whole tensor or a part)."""
        expected_key, dtype, shape = self._plan[self._next]
        data = tensor_bytes(tensor)
        nbytes = tensor_nbytes(dtype, shape)
        if (
            key != expected_key
            or tensor.dtype != dtype
            or offset != self._written
            or offset + len(data) > nbytes
        ):
            raise ValueError(
                f"{self.path}: expected {expected_key} {dtype} {shape} from byte "
                f"{self._written}, got {key} {tensor.dtype} from byte {offset}"
            )
        self._file.write(data)
        self._written += len(data)
        if self._written == nbytes:
            self._next, self._written = self._next + 1, 0

    def finish(self, metadata: dict[str, str]) -> None:
        """Check that every planned tensor was written and put the final metadata in place."""
        if self._next != len(self._plan):
            raise ValueError(f"{self.path}: {len(self._plan) - self._next} tensors never written")
        self._file.patch(8, self._encode_header(metadata, pad_to=self._header_len))
        self.close()

    def close(self) -> None:
        """Write out and release the file; ``finish`` still works afterwards."""
        self._file.close()
