"""Webdataset tar shards (``key.jpg|png|webp`` + ``key.txt|json``, as img2dataset writes).

Read with the standard library's ``tarfile``: each shard is indexed once (member offsets by
key), and a sample is two seeks and reads; nothing is unpickled. A shard that cannot be
opened is counted as missing, never fatal here (the trainer decides what share it accepts).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
TEXT_SUFFIXES = (".txt", ".json")


def _split_key(name: str) -> tuple[str, str]:
    base = name.rsplit("/", 1)[-1]
    stem, dot, suffix = base.partition(".")
    folder = name[: len(name) - len(base)]
    return folder + stem, (dot + suffix).lower()


class WebDatasetShards:
    """All complete (image, text) pairs of the ``*.tar`` shards in a folder (or one shard)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        shards = sorted(path.glob("*.tar")) if path.is_dir() else [path]
        if not shards or not shards[0].exists():
            raise FileNotFoundError(f"{path}: no .tar shards found")
        self.missing_shards: list[str] = []
        self.corrupt = 0
        # (shard, (image offset, size, suffix), (text offset, size, suffix)) per sample
        self.samples: list[tuple[Path, tuple, tuple]] = []
        for shard in shards:
            self._index(shard)

    def _index(self, shard: Path) -> None:
        pairs: dict[str, dict[str, tuple]] = {}
        try:
            with tarfile.open(shard, "r:") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    key, suffix = _split_key(member.name)
                    role = "image" if suffix in IMAGE_SUFFIXES else (
                        "text" if suffix in TEXT_SUFFIXES else None
                    )
                    if role:
                        pairs.setdefault(key, {})[role] = (member.offset_data, member.size, suffix)
        except (OSError, tarfile.TarError):
            self.missing_shards.append(str(shard))
            return
        for key in sorted(pairs):
            found = pairs[key]
            if "image" in found and "text" in found:
                self.samples.append((shard, found["image"], found["text"]))
            else:
                self.corrupt += 1

    def __len__(self) -> int:
        return len(self.samples)

    def sample(self, index: int) -> tuple[bytes, bytes, str] | None:
        """(image bytes, text bytes, text suffix), or None when the shard has gone."""
        shard, image, text = self.samples[index]
        try:
            with shard.open("rb") as handle:
                handle.seek(image[0])
                image_bytes = handle.read(image[1])
                handle.seek(text[0])
                text_bytes = handle.read(text[1])
        except OSError:
            return None
        if len(image_bytes) != image[1] or len(text_bytes) != text[1]:
            self.corrupt += 1
            return None
        return image_bytes, text_bytes, text[2]
