"""COCO-style JSON: detection, keypoints, and RefCOCO/RefCOCO+/RefCOCOg exports (MDETR layout)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import instructions as ins
from ..geometry import Box, Keypoints, Point, SquareFrame
from ..textformat import format_boxes, format_detections, format_keypoints
from .base import ConversionError, ConvertOptions, Record, Skip, chunks, record, square_box
from .jsonstream import iter_array, iter_json


@dataclass
class _Coco:
    images: list[dict] = field(default_factory=list)
    categories: dict[int, str] = field(default_factory=dict)
    annotations: dict[object, list[dict]] = field(default_factory=lambda: defaultdict(list))
    skips: list[Skip] = field(default_factory=list)


def _usable_bbox(bbox: object) -> bool:
    return (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(isinstance(v, int | float) for v in bbox)
        and bbox[2] > 0
        and bbox[3] > 0
    )


def _load(path: Path, keep: tuple[str, ...]) -> _Coco:
    """Images and categories whole, annotations grouped per image with only the ``keep`` keys."""
    coco = _Coco()
    seen = set()
    for key, value in iter_json(path, stream=("images", "annotations")):
        seen.add(key)
        if key == "images":
            if not isinstance(value, dict) or "id" not in value or "file_name" not in value:
                coco.skips.append(Skip("image entry without id or file_name"))
                continue
            coco.images.append(value)
        elif key == "annotations":
            if not isinstance(value, dict) or "image_id" not in value:
                coco.skips.append(Skip("annotation without image_id"))
                continue
            if not _usable_bbox(value.get("bbox")):
                coco.skips.append(Skip("annotation without a usable bbox"))
                continue
            if value.get("iscrowd"):
                coco.skips.append(Skip("crowd annotation left out"))
                continue
            coco.annotations[value["image_id"]].append({k: value[k] for k in keep if k in value})
        elif key == "categories" and isinstance(value, list):
            coco.categories = {
                c["id"]: c["name"] for c in value if isinstance(c, dict) and "id" in c
            }
    for required in ("images", "annotations"):
        if required not in seen:
            raise ConversionError(f"{path}: not a COCO annotation file (no {required!r} key)")
    return coco


def _annotated_images(
    coco: _Coco, options: ConvertOptions, empty_reason: str
) -> Iterator[tuple[dict, list[dict], SquareFrame] | Skip]:
    """(image entry, its annotations, its square frame), or why the image is left out."""
    yield from coco.skips
    for image in coco.images:
        annotations = coco.annotations.get(image["id"])
        if not annotations:
            yield Skip(empty_reason)
            continue
        size = options.image_size(image["file_name"], image.get("width"), image.get("height"))
        yield size if isinstance(size, Skip) else (image, annotations, SquareFrame(*size))


def coco_detection(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """Per image: "Detect all objects" with every named box, then "Detect all {category}" rounds."""
    coco = _load(path, ("bbox", "category_id"))
    if not coco.categories:
        raise ConversionError(f"{path}: no 'categories' list to name the boxes")
    for item in _annotated_images(coco, options, "image without annotations"):
        if isinstance(item, Skip):
            yield item
            continue
        image, annotations, frame = item
        boxes_by_category: dict[int, list[Box]] = defaultdict(list)
        for annotation in annotations:
            if annotation["category_id"] not in coco.categories:
                yield Skip("annotation with an unknown category_id")
                continue
            boxes_by_category[annotation["category_id"]].append(
                square_box(frame, *annotation["bbox"])
            )
        detections = [(coco.categories[c], boxes_by_category[c]) for c in sorted(boxes_by_category)]
        if not detections:
            continue
        image_path = options.image_path(image["file_name"])
        yield record(
            image_path, [(ins.DETECT_ALL, format_detections(detections))], "detection", "coco"
        )
        per_category = [
            (ins.detect_category_instruction(name), format_detections([(name, boxes)]))
            for name, boxes in detections
        ]
        for turns in chunks(per_category, options.max_turns):
            yield record(image_path, turns, "detection_category", "coco")


def coco_keypoints(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """Per image: "Detect all people", then the keypoints of each person in its box."""
    coco = _load(path, ("bbox", "keypoints", "num_keypoints"))
    for item in _annotated_images(coco, options, "image without people"):
        if isinstance(item, Skip):
            yield item
            continue
        image, people, frame = item
        boxes = [square_box(frame, *person["bbox"]) for person in people]
        turns = [(ins.DETECT_PEOPLE, format_detections([("person", boxes)]))]
        for person, box in zip(people, boxes, strict=True):
            flat = person.get("keypoints")
            if not isinstance(flat, list) or len(flat) != 51:
                yield Skip("person without 17 keypoints")
                continue
            pixels = Keypoints.from_coco(flat)
            if not len(pixels):
                continue
            square = Keypoints(
                {
                    name: Point(
                        *(min(1.0, max(0.0, v)) for v in frame.point_to_square(p).as_tuple())
                    )
                    for name, p in pixels.items()
                }
            )
            turns.append((ins.keypoints_in_region_instruction(box), format_keypoints(square)))
        image_path = options.image_path(image["file_name"])
        for chunk in chunks(turns, options.max_turns):
            yield record(image_path, chunk, "pose", "coco")


def refcoco(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """MDETR-style RefCOCO/+/g JSON: each image entry is one expression ("caption") and its
    annotations are the referred object; gives a REC record and, for one box, a REG record."""
    coco = _load(path, ("bbox",))
    for item in _annotated_images(coco, options, "expression without a box"):
        if isinstance(item, Skip):
            yield item
            continue
        entry, annotations, frame = item
        expression = entry.get("caption")
        if not isinstance(expression, str) or not expression.strip():
            yield Skip("entry without a referring expression")
            continue
        boxes = [square_box(frame, *a["bbox"]) for a in annotations]
        source = str(entry.get("dataset_name") or "refcoco").lower()
        image_path = options.image_path(entry["file_name"])
        expression = expression.strip()
        yield record(
            image_path, [(ins.rec_instruction(expression), format_boxes(boxes))], "rec", source
        )
        if len(boxes) == 1:
            yield record(image_path, [(ins.reg_instruction(boxes[0]), expression)], "reg", source)


def _instances_by_id(path: Path) -> tuple[dict, dict]:
    """image id -> image entry and annotation id -> annotation, from a COCO instances file."""
    images, annotations = {}, {}
    for key, value in iter_json(path, stream=("images", "annotations")):
        if not isinstance(value, dict) or "id" not in value:
            continue
        if key == "images":
            images[value["id"]] = value
        elif key == "annotations" and _usable_bbox(value.get("bbox")):
            annotations[value["id"]] = {"bbox": value["bbox"], "image_id": value.get("image_id")}
    return images, annotations


def refcoco_refs(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """refer-toolkit refs exported to JSON (a list of refs with "sentences" and "ann_id"), with
    the boxes and sizes from the COCO instances file given as --annotations. One record per
    ref: its expressions as REC rounds; plus a REG record from its first expression."""
    if options.annotations is None:
        raise ConversionError("refcoco-refs: pass the COCO instances.json with --annotations")
    images, annotations = _instances_by_id(options.annotations)
    for ref in iter_array(path):
        if not isinstance(ref, dict) or "ann_id" not in ref:
            yield Skip("ref without ann_id")
            continue
        if options.split is not None and ref.get("split") != options.split:
            yield Skip(f"ref outside split {options.split!r}")
            continue
        annotation = annotations.get(ref["ann_id"])
        image = images.get(annotation["image_id"]) if annotation else None
        if image is None or "file_name" not in image:
            yield Skip("ref whose annotation or image is not in the instances file")
            continue
        expressions = [
            s["sent"].strip()
            for s in ref.get("sentences", [])
            if isinstance(s, dict) and isinstance(s.get("sent"), str) and s["sent"].strip()
        ]
        if not expressions:
            yield Skip("ref without expressions")
            continue
        size = options.image_size(image["file_name"], image.get("width"), image.get("height"))
        if isinstance(size, Skip):
            yield size
            continue
        box = square_box(SquareFrame(*size), *annotation["bbox"])
        image_path = options.image_path(image["file_name"])
        source = options.source_name or "refcoco"
        rounds = [(ins.rec_instruction(e), format_boxes([box])) for e in expressions]
        for turns in chunks(rounds, options.max_turns):
            yield record(image_path, turns, "rec", source)
        yield record(image_path, [(ins.reg_instruction(box), expressions[0])], "reg", source)
