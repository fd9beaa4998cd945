"""Data sets: indexable lists of records (an image or None, and text or a conversation).

A record that cannot be read (missing file, corrupt image) comes back as ``None``; the
caller counts it. Every source knows its size up front, so the sampler can weigh it.
"""

from __future__ import annotations

import bisect
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sphinx_train._house import confined_path
from sphinx_train.training.config import SourceConfig
from sphinx_train.training.data.webdataset import WebDatasetShards

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass
class Record:
    """``text`` is a plain string (raw text, every token supervised) or a list of messages."""

    source: str
    text: Any
    image: Any = None
    tiling: str | None = None


def decode_image(data: bytes):
    """Pillow decode with its decompression-bomb guard as an error, not a warning."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data))
        return image.convert("RGB")


class Source:
    name: str
    tiling: str | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def record(self, index: int) -> Record | None:
        raise NotImplementedError


class JsonLinesSource(Source):
    """One JSON object a line: ``{"text"}``, ``{"image", "caption"|"text"}`` or conversations.

    Only line offsets are kept in memory; records are read when asked for.
    """

    def __init__(self, config: SourceConfig, path: Path | None = None, items=None):
        self.name, self.tiling = config.name, config.tiling
        self.path = Path(path or config.path)
        self.root = Path(config.image_root) if config.image_root else self.path.parent
        self.items = items
        if items is None:
            if not self.path.is_file():
                raise FileNotFoundError(f"{self.path}: no such file (source {config.name!r})")
            self.offsets = []
            with self.path.open("rb") as handle:
                position = 0
                for line in handle:
                    if line.strip():
                        self.offsets.append(position)
                    position += len(line)

    def __len__(self) -> int:
        return len(self.items) if self.items is not None else len(self.offsets)

    def _item(self, index: int) -> dict:
        if self.items is not None:
            return self.items[index]
        with self.path.open("rb") as handle:
            handle.seek(self.offsets[index])
            return json.loads(handle.readline())

    def record(self, index: int) -> Record | None:
        item = self._item(index)
        if not isinstance(item, dict):
            raise ValueError(f"{self.path}: item {index} is not a JSON object")
        text = item.get("conversations", item.get("caption", item.get("text")))
        if text is None:
            raise ValueError(
                f"{self.path}: item {index} has none of conversations, caption, text"
            )
        image = None
        if item.get("image"):
            path = confined_path(self.root, item["image"], what=f"{self.path} item {index} image")
            try:
                image = decode_image(path.read_bytes())
            except (OSError, ValueError, Exception):
                return None
        return Record(self.name, text, image, self.tiling)


class ParquetTextSource(Source):
    """The ``text`` column of a parquet file (the ``parquet`` extra), one row group in memory."""

    def __init__(self, config: SourceConfig):
        try:
            import pyarrow.parquet as pq
        except ImportError as error:
            raise ImportError(f"source {config.name!r}: kind text-parquet needs the parquet "
                              "extra: pip install 'sphinx-train[parquet]'") from error
        self.name, self.tiling, self.path = config.name, None, Path(config.path)
        self.file = pq.ParquetFile(self.path)
        columns = self.file.schema_arrow.names
        if "text" not in columns:
            raise ValueError(f"{self.path}: no 'text' column (columns: {', '.join(columns)})")
        sizes = [self.file.metadata.row_group(i).num_rows
                 for i in range(self.file.num_row_groups)]
        self.starts = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self._group: tuple[int, list] | None = None

    def __len__(self) -> int:
        return self.starts[-1]

    def record(self, index: int) -> Record | None:
        group = bisect.bisect_right(self.starts, index) - 1
        if self._group is None or self._group[0] != group:
            column = self.file.read_row_group(group, columns=["text"]).column("text")
            self._group = (group, column.to_pylist())
        text = self._group[1][index - self.starts[group]]
        return None if not text else Record(self.name, text)


class ShardSource(Source):
    """Image-caption pairs from webdataset tar shards."""

    def __init__(self, config: SourceConfig):
        self.name, self.tiling = config.name, config.tiling
        self.shards = WebDatasetShards(config.path)

    def __len__(self) -> int:
        return len(self.shards)

    def record(self, index: int) -> Record | None:
        sample = self.shards.sample(index)
        if sample is None:
            return None
        image_bytes, text_bytes, suffix = sample
        try:
            image = decode_image(image_bytes)
            if suffix == ".json":
                meta = json.loads(text_bytes)
                text = meta.get("caption", meta.get("text"))
            else:
                text = text_bytes.decode("utf-8").strip()
        except Exception:
            self.shards.corrupt += 1
            return None
        if not text:
            self.shards.corrupt += 1
            return None
        return Record(self.name, text, image, self.tiling)


def _conversation_items(path: Path) -> list | None:
    """LLaVA JSON (one list) is loaded whole; JSONL returns None (read lazily)."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of conversations")
        return data
    return None


def _meta_sources(config: SourceConfig) -> list[Source]:
    """The reference's ``META: [{path, type}]`` YAML: one conversation file per entry."""
    import yaml

    meta_path = Path(config.path)
    data = yaml.safe_load(meta_path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("META"), list):
        raise ValueError(f"{meta_path}: expected a mapping with a META list of {{path, type}}")
    sources = []
    for index, entry in enumerate(data["META"]):
        if not isinstance(entry, dict) or "path" not in entry:
            raise ValueError(f"{meta_path}: META[{index}] needs a path")
        path = Path(entry["path"])
        path = path if path.is_absolute() else meta_path.parent / path
        sub = SourceConfig(name=config.name, kind="conversations", path=str(path),
                           tiling=config.tiling, image_root=config.image_root)
        sources.append(JsonLinesSource(sub, path, _conversation_items(path)))
    return sources


class ConcatSource(Source):
    def __init__(self, name: str, parts: list[Source]):
        self.name, self.parts = name, parts

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def record(self, index: int) -> Record | None:
        for part in self.parts:
            if index < len(part):
                return part.record(index)
            index -= len(part)
        raise IndexError(index)


def open_source(config: SourceConfig, seed: int = 0) -> Source:
    """The source a config entry describes (files are checked now, read later)."""
    if config.kind.startswith("synthetic"):
        from sphinx_train.training.synthetic import SyntheticSource

        return SyntheticSource(config, seed)
    if config.kind == "webdataset":
        return ShardSource(config)
    if config.kind == "text-parquet":
        return ParquetTextSource(config)
    if config.kind == "meta-yaml":
        return ConcatSource(config.name, _meta_sources(config))
    path = Path(config.path)
    if config.kind == "image-jsonl" and path.is_dir():
        return _folder_source(config, path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (source {config.name!r})")
    items = _conversation_items(path) if config.kind == "conversations" else None
    return JsonLinesSource(config, path, items)


def _folder_source(config: SourceConfig, folder: Path) -> Source:
    """A folder of images, each with a caption in a ``.txt`` file of the same stem."""
    items = []
    for image in sorted(folder.iterdir()):
        caption = image.with_suffix(".txt")
        if image.suffix.lower() in IMAGE_SUFFIXES and caption.is_file():
            items.append({"image": image.name, "caption": caption.read_text().strip()})
    if not items:
        raise ValueError(f"{folder}: no image with a .txt caption beside it")
    sub = SourceConfig(name=config.name, kind=config.kind, path=str(folder / "index"),
                       tiling=config.tiling, image_root=str(folder))
    return JsonLinesSource(sub, folder / "index", items)
