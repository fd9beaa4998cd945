"""LLaVA-Instruct passthrough and ImageNet-style class folders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .. import instructions as ins
from .base import ConversionError, ConvertOptions, Record, Skip, record
from .jsonstream import iter_array

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


def _valid_conversation(turns: object) -> bool:
    return (
        isinstance(turns, list)
        and len(turns) >= 2
        and all(
            isinstance(t, dict)
            and t.get("from") in ("human", "gpt")
            and isinstance(t.get("value"), str)
            for t in turns
        )
    )


def llava_instruct(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """LLaVA-Instruct JSON (a list): kept as it is, plus task/source fields and the image prefix."""
    for item in iter_array(path):
        if not isinstance(item, dict) or not _valid_conversation(item.get("conversations")):
            yield Skip("item without a human/gpt conversation")
            continue
        result = dict(item)
        if isinstance(item.get("image"), str):
            result["image"] = options.image_path(item["image"])
        result.setdefault("task", "instruct")
        result.setdefault("source", "llava_instruct")
        yield result


def _class_names(path: Path | None) -> dict[str, str]:
    """Folder name -> class name, from a JSON map or "wnid name, synonyms" lines."""
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ConversionError(f"{path}: expected a JSON object of class names")
        names = {}
        for key, value in data.items():
            if isinstance(value, list) and len(value) == 2:  # {"0": ["n01440764", "tench"]}
                names[str(value[0])] = str(value[1])
            else:
                names[str(key)] = str(value)
        return names
    names = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2:
            raise ConversionError(f"{path}:{number}: expected 'folder class name', got {line!r}")
        names[parts[0]] = parts[1].split(",")[0].strip()
    return names


def image_folder(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """ROOT/<class folder>/<image>: "Classify the image." -> "This is a {class}"."""
    if not path.is_dir():
        raise ConversionError(f"{path}: expected a folder with one sub-folder per class")
    names = _class_names(options.class_names)
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        name = names.get(class_dir.name, class_dir.name.replace("_", " "))
        for image in sorted(class_dir.iterdir()):
            if image.suffix.lower() not in IMAGE_SUFFIXES:
                yield Skip("file that is not an image")
                continue
            relative = f"{class_dir.name}/{image.name}"
            turns = [(ins.CLASSIFY, ins.classification_answer(name))]
            yield record(
                options.image_path(relative), turns, "classification", path.name or "image_folder"
            )
