"""COCO-style JSON: detection (COCO, LVIS, document layouts), keypoints, and RefCOCO/+/g."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .. import instructions as ins
from ..geometry import Box, Keypoints, Point, SquareFrame
from ..textformat import format_boxes, format_detections, format_keypoints
from .base import ConversionError, ConvertOptions, Record, Skip, chunks, record, square_box
from .fields import Fields
from .jsonstream import iter_json
from .refs import iter_refs


@dataclass
class _Coco:
    images: list[dict] = field(default_factory=list)
    categories: dict[object, str] = field(default_factory=dict)
    annotations: dict[object, list[dict]] = field(default_factory=lambda: defaultdict(list))
    skips: list[Skip] = field(default_factory=list)


def _file_name(image: Fields) -> str:
    """``file_name``, else LVIS's rule: the last two parts of ``coco_url`` (``val2017/x.jpg``)."""
    if image.has("file_name") or not image.has("coco_url"):
        return image.text("file_name")
    parts = [p for p in urlsplit(image.text("coco_url")).path.split("/") if p]
    if len(parts) < 2:
        raise image.error("coco_url", "an image URL ending in <split folder>/<file name>")
    return posixpath.join(*parts[-2:])


def _image_entry(value: object, where: str) -> dict:
    image = Fields(value, where)
    return {
        "id": image.identifier("id"),
        "file_name": _file_name(image),
        "width": image.size("width"),
        "height": image.size("height"),
        "caption": image.text("caption", None),
        "dataset_name": image.text("dataset_name", None),
        "where": where,
    }


def _annotation(value: object, where: str, keep: tuple[str, ...]) -> dict | Skip:
    """The ``keep`` keys of one annotation, type-checked, or why it is left out."""
    annotation = Fields(value, where)
    result = {"image_id": annotation.identifier("image_id")}
    bbox = annotation.numbers("bbox", 4)
    if bbox[2] <= 0 or bbox[3] <= 0:
        return Skip("annotation without a usable bbox")
    if annotation.integer("iscrowd", 0):
        return Skip("crowd annotation left out")
    result["bbox"] = bbox
    if "category_id" in keep:
        result["category_id"] = annotation.identifier("category_id")
    if "keypoints" in keep:
        result["keypoints"] = annotation.numbers("keypoints", default=None)
    if "id" in keep:
        result["id"] = annotation.identifier("id")
    return result


def _categories(value: object, path: Path) -> dict[object, str]:
    if not isinstance(value, list):
        raise ConversionError(f"{path}: key 'categories': expected an array of categories")
    names = {}
    for index, item in enumerate(value):
        category = Fields(item, f"{path}: categories[{index}]")
        names[category.identifier("id")] = category.text("name").replace("_", " ").strip()
    return names


def _load(path: Path, keep: tuple[str, ...]) -> _Coco:
    """Images and categories whole, annotations grouped per image with only the ``keep`` keys."""
    coco = _Coco()
    counts: dict[str, int] = defaultdict(int)
    for key, value in iter_json(path, stream=("images", "annotations")):
        index = counts[key]
        counts[key] += 1
        if key == "images":
            coco.images.append(_image_entry(value, f"{path}: images[{index}]"))
        elif key == "annotations":
            annotation = _annotation(value, f"{path}: annotations[{index}]", keep)
            if isinstance(annotation, Skip):
                coco.skips.append(annotation)
            else:
                coco.annotations[annotation["image_id"]].append(annotation)
        elif key == "categories":
            coco.categories = _categories(value, path)
    for required in ("images", "annotations"):
        if required not in counts:
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
        size = options.image_size(image["file_name"], image["width"], image["height"])
        yield size if isinstance(size, Skip) else (image, annotations, SquareFrame(*size))


def _named_boxes(
    coco: _Coco, annotations: list[dict], frame: SquareFrame
) -> Iterator[tuple[str, Box] | Skip]:
    for annotation in annotations:
        name = coco.categories.get(annotation["category_id"])
        box = square_box(frame, *annotation["bbox"])
        if name is None:
            yield Skip("annotation with an unknown category_id")
        elif box is None:
            yield Skip("box outside the image")
        else:
            yield name, box


def _detections(
    path: Path, options: ConvertOptions
) -> Iterator[tuple[str, list[tuple[str, list[Box]]]] | Skip]:
    """(image path, [(category name, boxes)] in category order) per annotated image."""
    coco = _load(path, ("category_id",))
    if not coco.categories:
        raise ConversionError(f"{path}: no 'categories' list to name the boxes")
    order: dict[str, int] = {}  # the categories' file order (COCO lists them by id)
    for name in coco.categories.values():
        order.setdefault(name, len(order))
    for item in _annotated_images(coco, options, "image without annotations"):
        if isinstance(item, Skip):
            yield item
            continue
        image, annotations, frame = item
        grouped: dict[str, list[Box]] = defaultdict(list)
        for named in _named_boxes(coco, annotations, frame):
            if isinstance(named, Skip):
                yield named
            else:
                grouped[named[0]].append(named[1])
        if grouped:
            path_in_record = options.image_path(image["file_name"], image["where"])
            yield path_in_record, sorted(grouped.items(), key=lambda kv: order[kv[0]])


def _detection_records(path: Path, options: ConvertOptions, source: str) -> Iterator[Record | Skip]:
    for item in _detections(path, options):
        if isinstance(item, Skip):
            yield item
            continue
        image_path, detections = item
        yield record(
            image_path, [(ins.DETECT_ALL, format_detections(detections))], "detection", source
        )
        per_category = [
            (ins.detect_category_instruction(name), format_detections([(name, boxes)]))
            for name, boxes in detections
        ]
        for turns in chunks(per_category, options.max_turns):
            yield record(image_path, turns, "detection_category", source)


def coco_detection(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """Per image: "Detect all objects" with every named box, then "Detect all {category}" rounds."""
    return _detection_records(path, options, options.source_name or "coco")


def lvis(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """LVIS v1 (images name their file only through ``coco_url``): as COCO detection."""
    return _detection_records(path, options, options.source_name or "lvis")


def document_layout(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """PubLayNet / DocLayNet COCO-style files: "Detect all texts" with every named region."""
    source = options.source_name or "publaynet"
    for item in _detections(path, options):
        if isinstance(item, Skip):
            yield item
            continue
        image_path, detections = item
        yield record(
            image_path, [(ins.DETECT_TEXTS, format_detections(detections))], "layout", source
        )


def _square_keypoints(frame: SquareFrame, flat: list[float]) -> Keypoints:
    pixels = Keypoints.from_coco(flat)
    return Keypoints(
        {
            name: Point(*(min(1.0, max(0.0, v)) for v in frame.point_to_square(p).as_tuple()))
            for name, p in pixels.items()
        }
    )


def coco_keypoints(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """Per image: "Detect all people", then the keypoints of each person in its box."""
    coco = _load(path, ("keypoints",))
    for item in _annotated_images(coco, options, "image without people"):
        if isinstance(item, Skip):
            yield item
            continue
        image, people, frame = item
        placed = [(person, square_box(frame, *person["bbox"])) for person in people]
        boxes = [box for _, box in placed if box is not None]
        if len(boxes) < len(placed):
            yield Skip("box outside the image")
        if not boxes:
            continue
        turns = [(ins.DETECT_PEOPLE, format_detections([("person", boxes)]))]
        for person, box in placed:
            flat = person.get("keypoints")
            if box is None:
                continue
            if flat is None or len(flat) != 51:
                yield Skip("person without 17 keypoints")
                continue
            square = _square_keypoints(frame, flat)
            if len(square):
                turns.append((ins.keypoints_in_region_instruction(box), format_keypoints(square)))
        image_path = options.image_path(image["file_name"], image["where"])
        for chunk in chunks(turns, options.max_turns):
            yield record(image_path, chunk, "pose", "coco")


def refcoco(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """MDETR-style RefCOCO/+/g JSON: each image entry is one expression ("caption") and its
    annotations are the referred object; gives a REC record and, for one box, a REG record."""
    coco = _load(path, ())
    for item in _annotated_images(coco, options, "expression without a box"):
        if isinstance(item, Skip):
            yield item
            continue
        entry, annotations, frame = item
        expression = (entry["caption"] or "").strip()
        if not expression:
            yield Skip("entry without a referring expression")
            continue
        boxes = [b for b in (square_box(frame, *a["bbox"]) for a in annotations) if b]
        if not boxes:
            yield Skip("box outside the image")
            continue
        source = (entry["dataset_name"] or "refcoco").lower()
        image_path = options.image_path(entry["file_name"], entry["where"])
        yield record(
            image_path, [(ins.rec_instruction(expression), format_boxes(boxes))], "rec", source
        )
        if len(boxes) == 1:
            yield record(image_path, [(ins.reg_instruction(boxes[0]), expression)], "reg", source)


def _instances_by_id(path: Path) -> tuple[dict, dict]:
    """image id -> image entry and annotation id -> annotation, from a COCO instances file."""
    images, annotations = {}, {}
    counts: dict[str, int] = defaultdict(int)
    for key, value in iter_json(path, stream=("images", "annotations")):
        where = f"{path}: {key}[{counts[key]}]"
        counts[key] += 1
        if key == "images":
            image = _image_entry(value, where)
            images[image["id"]] = image
        elif key == "annotations":
            annotation = _annotation(value, where, ("id",))
            if not isinstance(annotation, Skip):
                annotations[annotation["id"]] = annotation
    return images, annotations


def refcoco_refs(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """refer-toolkit refs (the original ``refs(unc).p`` pickle, or a JSON export) with the boxes
    and sizes from the COCO instances file given as --annotations. Only refs of ``--split``
    (default train) are written: one record of REC rounds, plus a REG record from the first
    expression."""
    if options.annotations is None:
        raise ConversionError("refcoco-refs: pass the COCO instances.json with --annotations")
    images, annotations = _instances_by_id(options.annotations)
    source = options.source_name or "refcoco"
    for ref in iter_refs(path):
        if ref.text("split", None) != options.wanted_split:
            yield Skip(f"ref outside split {options.wanted_split!r}")
            continue
        annotation = annotations.get(ref.identifier("ann_id"))
        image = images.get(annotation["image_id"]) if annotation else None
        if image is None:
            yield Skip("ref whose annotation or image is not in the instances file")
            continue
        sentences = ref.array("sentences", [])
        expressions = []
        for index in range(len(sentences)):
            sentence = Fields(sentences[index], f"{ref.where}: sentences[{index}]")
            expressions.append(sentence.text("sent", "").strip())
        expressions = [e for e in expressions if e]
        if not expressions:
            yield Skip("ref without expressions")
            continue
        size = options.image_size(image["file_name"], image["width"], image["height"])
        if isinstance(size, Skip):
            yield size
            continue
        box = square_box(SquareFrame(*size), *annotation["bbox"])
        if box is None:
            yield Skip("box outside the image")
            continue
        image_path = options.image_path(image["file_name"], image["where"])
        rounds = [(ins.rec_instruction(e), format_boxes([box])) for e in expressions]
        for turns in chunks(rounds, options.max_turns):
            yield record(image_path, turns, "rec", source)
        yield record(image_path, [(ins.reg_instruction(box), expressions[0])], "reg", source)
