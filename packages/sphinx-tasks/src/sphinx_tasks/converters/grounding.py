"""Region-level datasets: Flickr30k Entities grounded captions, Visual Genome relationships."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .. import instructions as ins
from ..geometry import Box, SquareFrame
from ..textformat import format_boxes, format_named
from .base import ConversionError, ConvertOptions, Record, Skip, chunks, record, square_box
from .jsonstream import iter_array

# "[/EN#18/people A man]": entity id, one or more types, the phrase.
_FLICKR_PHRASE = re.compile(r"\[/EN#(\d+)((?:/[^\s\]]+)+) ([^\]]*)\]")


def _flickr_annotation(path: Path) -> tuple[str, int, int, dict[str, list[Box]]]:
    root = ElementTree.parse(path).getroot()
    filename = root.findtext("filename") or f"{path.stem}.jpg"
    width = int(root.findtext("size/width") or 0)
    height = int(root.findtext("size/height") or 0)
    boxes: dict[str, list[Box]] = defaultdict(list)
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            continue  # scene / not-visual entities have no box
        coordinates = [float(box.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")]
        for name in obj.iter("name"):
            boxes[(name.text or "").strip()].append(Box(*coordinates))
    return filename, width, height, boxes


def flickr30k_entities(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """SOURCE is the Flickr30k Entities folder with Sentences/*.txt and Annotations/*.xml."""
    sentences_dir, annotations_dir = path / "Sentences", path / "Annotations"
    if not sentences_dir.is_dir() or not annotations_dir.is_dir():
        raise ConversionError(f"{path}: expected the folders Sentences/ and Annotations/ inside")
    for sentence_file in sorted(sentences_dir.glob("*.txt")):
        xml_file = annotations_dir / f"{sentence_file.stem}.xml"
        if not xml_file.exists():
            yield Skip("sentences without an annotation XML")
            continue
        try:
            filename, width, height, pixel_boxes = _flickr_annotation(xml_file)
        except (ElementTree.ParseError, ValueError):
            yield Skip("unreadable annotation XML")
            continue
        size = options.image_size(filename, width, height)
        if isinstance(size, Skip):
            yield size
            continue
        frame = SquareFrame(*size)

        def grounded(match: re.Match, frame: SquareFrame = frame, pixel_boxes=pixel_boxes) -> str:
            phrase = match.group(3)
            boxes = [frame.box_to_square(b).clipped() for b in pixel_boxes.get(match.group(1), [])]
            return format_named(phrase, format_boxes(boxes)) if boxes else phrase

        image = options.image_path(filename)
        for line in sentence_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            caption = _FLICKR_PHRASE.sub(grounded, line.strip())
            if "<p>" not in caption:
                yield Skip("caption without any boxed phrase")
                continue
            yield record(
                image, [(ins.GROUNDED_CAPTION, caption)], "grounded_caption", "flickr30k_entities"
            )


def _vg_images(options: ConvertOptions) -> dict[int, dict]:
    if options.image_data is None:
        return {}
    images = {}
    for item in iter_array(options.image_data):
        if isinstance(item, dict) and "image_id" in item:
            images[item["image_id"]] = item
    return images


def _vg_name(entity: dict) -> str:
    names = entity.get("names")
    if isinstance(names, list) and names:
        return str(names[0])
    return str(entity.get("name", "object"))


def _vg_box(entity: object, frame: SquareFrame) -> Box | None:
    if not isinstance(entity, dict) or not all(
        isinstance(entity.get(k), int | float) for k in "xywh"
    ):
        return None
    if entity["w"] <= 0 or entity["h"] <= 0:
        return None
    return square_box(frame, entity["x"], entity["y"], entity["w"], entity["h"])


def visual_genome_relations(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """relationships.json; sizes and paths from --image-data (image_data.json) or image headers."""
    images = _vg_images(options)
    for item in iter_array(path):
        if not isinstance(item, dict) or "image_id" not in item:
            yield Skip("item without image_id")
            continue
        meta = images.get(item["image_id"], {})
        url = meta.get("url")
        relative = "/".join(PurePosixPath(url).parts[-2:]) if url else f"{item['image_id']}.jpg"
        size = options.image_size(relative, meta.get("width"), meta.get("height"))
        if isinstance(size, Skip):
            yield size
            continue
        frame = SquareFrame(*size)
        turns = []
        seen = set()
        for relation in item.get("relationships", []):
            subject = relation.get("subject") if isinstance(relation, dict) else None
            obj = relation.get("object") if isinstance(relation, dict) else None
            subject_box, object_box = _vg_box(subject, frame), _vg_box(obj, frame)
            predicate = (
                str(relation.get("predicate", "")).strip().lower()
                if isinstance(relation, dict)
                else ""
            )
            if subject_box is None or object_box is None or not predicate:
                yield Skip("relationship without two boxes and a predicate")
                continue
            question = ins.relation_instruction(subject_box, object_box)
            answer = f"{_vg_name(subject)} {predicate} {_vg_name(obj)}".strip().lower()
            if (question, answer) in seen:
                continue
            seen.add((question, answer))
            turns.append((question, answer))
        if not turns:
            yield Skip("image without usable relationships")
            continue
        for chunk in chunks(turns, options.max_turns):
            yield record(options.image_path(relative), chunk, "relation", "visual_genome")
