"""Dataset converters: standard annotation files -> LLaVA-style conversation records.

Each converter takes (source path, ConvertOptions) and yields records
``{"image", "conversations": [{"from", "value"}], "task", "source"}`` or ``Skip(reason)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from .base import ConversionError, Converter, ConvertOptions, Record, Skip, Summary
from .coco import coco_detection, coco_keypoints, refcoco, refcoco_refs
from .grounding import flickr30k_entities, visual_genome_relations
from .jsonstream import JsonStreamError, iter_array, iter_json, iter_object
from .simple import image_folder, llava_instruct
from .vqa import aokvqa, gqa, ocrvqa, okvqa, textcaps, vizwiz, vqav2
from .writer import write_records

CONVERTERS: dict[str, Converter] = {
    "coco-detection": coco_detection,
    "coco-keypoints": coco_keypoints,
    "refcoco": refcoco,
    "refcoco-refs": refcoco_refs,
    "vqav2": vqav2,
    "okvqa": okvqa,
    "aokvqa": aokvqa,
    "gqa": gqa,
    "vizwiz": vizwiz,
    "ocrvqa": ocrvqa,
    "textcaps": textcaps,
    "flickr30k-entities": flickr30k_entities,
    "vg-relations": visual_genome_relations,
    "llava-instruct": llava_instruct,
    "image-folder": image_folder,
}


def iter_records(
    source: str | PathLike, fmt: str, options: ConvertOptions | None = None
) -> Iterator[Record | Skip]:
    """Records (and skips) of one source file or folder in the named format."""
    try:
        converter = CONVERTERS[fmt]
    except KeyError:
        raise ConversionError(
            f"unknown format {fmt!r}; known: {', '.join(sorted(CONVERTERS))}"
        ) from None
    path = Path(source)
    if not path.exists():
        raise ConversionError(f"{path}: no such file or folder")
    return converter(path, options or ConvertOptions())


def convert(
    source: str | PathLike,
    fmt: str,
    out: str | PathLike,
    options: ConvertOptions | None = None,
    progress: bool = False,
) -> Summary:
    """Convert ``source`` to a JSON-lines file ``out`` (written atomically); returns the counts."""
    return write_records(iter_records(source, fmt, options), out, progress=progress)


__all__ = [
    "CONVERTERS",
    "ConversionError",
    "ConvertOptions",
    "JsonStreamError",
    "Skip",
    "Summary",
    "convert",
    "iter_array",
    "iter_json",
    "iter_object",
    "iter_records",
    "write_records",
]
