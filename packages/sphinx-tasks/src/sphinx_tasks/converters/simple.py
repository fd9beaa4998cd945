"""LLaVA-Instruct / ShareGPT passthrough, detailed captions and ImageNet-style class folders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .. import instructions as ins
from .base import ConversionError, ConvertOptions, Record, Skip, record
from .fields import Fields
from .jsonstream import iter_array

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


def _turns(item: Fields) -> list[dict] | None:
    """The conversation as human/gpt turns after an optional leading system message, or None.

    A ShareGPT chat that opens with the assistant loses that opening turn and one that ends
    with an unanswered question loses the question; anything else out of order is refused.
    """
    turns = []
    for index, value in enumerate(item.array("conversations")):
        turn = Fields(value, f"{item.where}: conversations[{index}]")
        turns.append({"from": turn.text("from"), "value": turn.text("value")})
    system = turns[:1] if turns and turns[0]["from"] == "system" else []
    chat = turns[len(system) :]
    if chat and chat[0]["from"] == "gpt":
        chat = chat[1:]
    if chat and chat[-1]["from"] == "human":
        chat = chat[:-1]
    expected = ["human", "gpt"] * (len(chat) // 2)
    if not chat or [turn["from"] for turn in chat] != expected:
        return None
    return system + chat


def llava_instruct(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """LLaVA-Instruct / ShareGPT JSON (a list): conversations kept as they are, plus task and
    source fields and the image prefix. Items without an image are text-only chats
    (task "text_instruct", source "sharegpt" unless --source-name says otherwise)."""
    for index, value in enumerate(iter_array(path)):
        item = Fields(value, f"{path}: [{index}]")
        turns = _turns(item) if item.has("conversations") else None
        if turns is None:
            yield Skip("item without a human/gpt conversation")
            continue
        result = dict(item.data, conversations=turns)
        if item.has("image"):
            result["image"] = options.image_path(item.text("image"), item.where)
            task, source = "instruct", options.source_name or "llava_instruct"
        else:
            task, source = "text_instruct", options.source_name or "sharegpt"
        result["task"] = item.text("task", task)
        result["source"] = item.text("source", source)
        yield result


def _caption(item: Fields) -> str:
    """A plain ``caption``, or the first assistant answer of a LLaVA-style conversation."""
    if item.has("caption") or not item.has("conversations"):
        return item.text("caption").strip()
    turns = _turns(item)
    return turns[-1]["value"].strip() if turns else ""


def detailed_captions(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """Long image descriptions (ShareGPT4V / LLaVA detail_23k conversations, or items with
    ``image`` and ``caption``): "Generate a detailed description about the image." per item."""
    source = options.source_name or path.stem
    for index, value in enumerate(iter_array(path)):
        item = Fields(value, f"{path}: [{index}]")
        if not item.has("image"):
            yield Skip("item without an image")
            continue
        image = options.image_path(item.text("image"), item.where)
        caption = _caption(item)
        if not caption:
            yield Skip("item without a description")
            continue
        yield record(image, [(ins.DETAILED_CAPTION, caption)], "detailed_caption", source)


def _class_names(path: Path | None) -> dict[str, str]:
    """Folder name -> class name, from a JSON map or "wnid name, synonyms" lines."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else None
    except ValueError as exc:
        raise ConversionError(f"{path}: unreadable class names ({exc})") from None
    if path.suffix == ".json":
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
