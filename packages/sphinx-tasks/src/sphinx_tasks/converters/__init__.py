"""Dataset converters: standard annotation files -> LLaVA-style conversation records.

Each converter takes (source path, ConvertOptions) and yields records
``{"image", "conversations": [{"from", "value"}], "task", "source"}``, ``Skip(reason)`` for
items left out (counted in the summary), or ``EmbeddedImage`` for image bytes carried inside
the annotations. Wrong field types stop the conversion with one ``ConversionError`` line
naming the file, the record and the key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from .._house import Registry, UnknownNameError
from .base import ConversionError, Converter, ConvertOptions, EmbeddedImage, Record, Skip, Summary
from .choice import mmbench, scienceqa
from .coco import coco_detection, coco_keypoints, document_layout, lvis, refcoco, refcoco_refs
from .grounding import flickr30k_entities, visual_genome_relations
from .jsonstream import JsonStreamError, iter_array, iter_json, iter_lines, iter_object
from .output import write_records
from .refs import load_data_pickle
from .simple import detailed_captions, image_folder, llava_instruct
from .vqa import aokvqa, gqa, ocrvqa, okvqa, textcaps, textvqa, vizwiz, vizwiz_llava, vqav2, vsr

_CONVERTERS: Registry[Converter] = Registry("dataset format")


def register_converter(name: str, converter: Converter, overwrite: bool = False) -> Converter:
    """Add a dataset format: ``converter(source, options)`` yields records and skips."""
    return _CONVERTERS.register(name, converter, overwrite=overwrite)


def list_converters(pattern: str | None = None) -> list[str]:
    """Known dataset format names, optionally filtered by a glob pattern."""
    return _CONVERTERS.names(pattern)


def get_converter(name: str) -> Converter:
    return _CONVERTERS.get(name)


for _name, _converter in {
    "coco-detection": coco_detection,
    "coco-keypoints": coco_keypoints,
    "lvis": lvis,
    "doc-layout": document_layout,
    "refcoco": refcoco,
    "refcoco-refs": refcoco_refs,
    "vqav2": vqav2,
    "okvqa": okvqa,
    "aokvqa": aokvqa,
    "gqa": gqa,
    "vizwiz": vizwiz,
    "vizwiz-llava": vizwiz_llava,
    "ocrvqa": ocrvqa,
    "textvqa": textvqa,
    "vsr": vsr,
    "scienceqa": scienceqa,
    "mmbench": mmbench,
    "textcaps": textcaps,
    "flickr30k-entities": flickr30k_entities,
    "vg-relations": visual_genome_relations,
    "llava-instruct": llava_instruct,
    "sharegpt": llava_instruct,
    "detailed-captions": detailed_captions,
    "image-folder": image_folder,
}.items():
    register_converter(_name, _converter)


def _inputs(source: Path, options: ConvertOptions) -> list[Path]:
    paths = [options.annotations, options.image_data, options.class_names, options.image_root]
    return [source, *(p for p in paths if p is not None)]


def iter_records(
    source: str | PathLike, fmt: str, options: ConvertOptions | None = None
) -> Iterator[Record | Skip | EmbeddedImage]:
    """Records (and skips) of one source file or folder in the named format."""
    try:
        converter = get_converter(fmt)
    except UnknownNameError as exc:
        raise ConversionError(str(exc)) from None
    path = Path(source)
    if not path.exists():
        raise ConversionError(f"{path}: no such file or folder")
    return converter(path, options or ConvertOptions())


def convert(
    source: str | PathLike,
    fmt: str,
    out: str | PathLike,
    options: ConvertOptions | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> Summary:
    """Convert ``source`` to a JSON-lines file ``out``; returns the counts.

    ``out`` is refused when it exists (unless ``overwrite``) or is one of the inputs, and it
    appears only once complete.
    """
    options = options or ConvertOptions()
    items = iter_records(source, fmt, options)
    return write_records(
        items,
        os.fspath(out),
        inputs=_inputs(Path(source), options),
        overwrite=overwrite,
        images_out=options.images_out,
        progress=progress,
    )


__all__ = [
    "ConversionError",
    "ConvertOptions",
    "EmbeddedImage",
    "JsonStreamError",
    "Skip",
    "Summary",
    "convert",
    "get_converter",
    "iter_array",
    "iter_json",
    "iter_lines",
    "iter_object",
    "iter_records",
    "list_converters",
    "load_data_pickle",
    "register_converter",
    "write_records",
]
