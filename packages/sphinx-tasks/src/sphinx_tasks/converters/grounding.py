"""Region-level datasets: Flickr30k Entities grounded captions, Visual Genome relationships."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ElementTree
import xml.parsers.expat
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .. import instructions as ins
from ..geometry import Box, SquareFrame
from ..textformat import format_boxes, format_named
from .base import (
    ConversionError,
    ConvertOptions,
    Record,
    Skip,
    chunks,
    record,
    square_box,
    square_corners,
)
from .fields import Fields
from .jsonstream import iter_array

# "[/EN#18/people A man]": entity id, one or more types, the phrase. A type holds no "/", so
# the type list splits one way only (a "/" inside the type class made it exponential).
_FLICKR_PHRASE = re.compile(r"\[/EN#(\d+)((?:/[^\s\]/]+)+) ([^\]]*)\]")
_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _pixel_corner(text: str | None) -> float | None:
    """A Flickr30k Entities corner, 1-based in the XML, as a 0-based pixel coordinate."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value - 1 if math.isfinite(value) else None


class _Declaration(Exception):
    """Raised from the expat handlers at the first DTD or entity declaration."""


def _refuse_declarations(*_args: object) -> None:
    raise _Declaration


def _annotation_root(path: Path) -> ElementTree.Element:
    """The parsed XML, refusing any DTD or entity declaration before it is expanded.

    The dataset's files declare none; a declaration is how an entity bomb ("billion laughs")
    or an external entity gets in, so it is an error rather than a skipped file.
    """
    data = path.read_bytes()
    scan = xml.parsers.expat.ParserCreate()
    scan.StartDoctypeDeclHandler = _refuse_declarations
    scan.EntityDeclHandler = _refuse_declarations
    scan.ExternalEntityRefHandler = _refuse_declarations
    try:
        scan.Parse(data, True)
    except _Declaration:
        raise ConversionError(
            f"{path}: declares a DTD or entities; annotation XML must not (entity bombs)"
        ) from None
    except xml.parsers.expat.ExpatError as exc:
        raise ElementTree.ParseError(str(exc)) from None
    return ElementTree.fromstring(data)


def _flickr_annotation(path: Path) -> tuple[str, int, int, dict[str, list[Box]], int]:
    """File name, size, boxes per entity id, and the count of boxes left out as unreadable.

    Corners lose 1, as the dataset's own ``get_annotations`` utility does.
    """
    root = _annotation_root(path)
    filename = (root.findtext("filename") or f"{path.stem}.jpg").strip()
    width = int(root.findtext("size/width") or 0)
    height = int(root.findtext("size/height") or 0)
    boxes: dict[str, list[Box]] = defaultdict(list)
    unreadable = 0
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            continue  # scene / not-visual entities have no box
        corners = [_pixel_corner(box.findtext(k)) for k in _CORNERS]
        if None in corners:
            unreadable += 1
            continue
        for name in obj.iter("name"):
            boxes[(name.text or "").strip()].append(Box(*corners))
    return filename, width, height, boxes, unreadable


def _flickr_sentences(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ConversionError(f"{path}: not UTF-8 text ({exc.reason})") from None


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
            filename, width, height, pixel_boxes, unreadable = _flickr_annotation(xml_file)
        except ConversionError:
            raise
        except (ElementTree.ParseError, ValueError):
            yield Skip("unreadable annotation XML")
            continue
        for _ in range(unreadable):
            yield Skip("box with a missing or non-numeric corner")
        size = options.image_size(filename, width or None, height or None)
        if isinstance(size, Skip):
            yield size
            continue
        frame = SquareFrame(*size)
        square = {
            entity: [b for b in (square_corners(frame, box) for box in boxes) if b is not None]
            for entity, boxes in pixel_boxes.items()
        }

        def grounded(match: re.Match, square: dict = square) -> str:
            phrase, boxes = match.group(3), square.get(match.group(1))
            return format_named(phrase, format_boxes(boxes)) if boxes else phrase

        image = options.image_path(filename, str(xml_file))
        for line in _flickr_sentences(sentence_file):
            if not line.strip():
                continue
            caption = _FLICKR_PHRASE.sub(grounded, line.strip())
            if "<p>" not in caption:
                yield Skip("caption without any boxed phrase")
                continue
            yield record(
                image, [(ins.GROUNDED_CAPTION, caption)], "grounded_caption", "flickr30k_entities"
            )


def _vg_images(options: ConvertOptions) -> dict[object, dict]:
    if options.image_data is None:
        return {}
    images = {}
    for index, item in enumerate(iter_array(options.image_data)):
        image = Fields(item, f"{options.image_data}: [{index}]")
        images[image.identifier("image_id")] = {
            "url": image.text("url", None),
            "width": image.size("width"),
            "height": image.size("height"),
        }
    return images


def _vg_name(entity: Fields) -> str:
    names = entity.strings("names", [])
    return names[0] if names else entity.text("name", "object")


def _vg_box(entity: Fields, frame: SquareFrame) -> Box | None:
    x, y, w, h = (entity.number(k) for k in "xywh")
    return square_box(frame, x, y, w, h) if w > 0 and h > 0 else None


def _vg_turn(relation: Fields, frame: SquareFrame) -> tuple[str, str] | None:
    subject = Fields(relation.data.get("subject"), f"{relation.where}: subject")
    obj = Fields(relation.data.get("object"), f"{relation.where}: object")
    subject_box, object_box = _vg_box(subject, frame), _vg_box(obj, frame)
    predicate = relation.text("predicate", "").strip().lower()
    if subject_box is None or object_box is None or not predicate:
        return None
    question = ins.relation_instruction(subject_box, object_box)
    return question, f"{_vg_name(subject)} {predicate} {_vg_name(obj)}".strip().lower()


def visual_genome_relations(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """relationships.json; sizes and paths from --image-data (image_data.json) or image headers."""
    images = _vg_images(options)
    for index, value in enumerate(iter_array(path)):
        item = Fields(value, f"{path}: [{index}]")
        image_id = item.identifier("image_id")
        meta = images.get(image_id, {})
        url = meta.get("url")
        relative = "/".join(PurePosixPath(url).parts[-2:]) if url else f"{image_id}.jpg"
        size = options.image_size(relative, meta.get("width"), meta.get("height"))
        if isinstance(size, Skip):
            yield size
            continue
        frame = SquareFrame(*size)
        turns: list[tuple[str, str]] = []
        relationships = item.array("relationships", [])
        for number, relation in enumerate(relationships):
            turn = _vg_turn(Fields(relation, f"{item.where}: relationships[{number}]"), frame)
            if turn is None:
                yield Skip("relationship without two boxes and a predicate")
            elif turn not in turns:
                turns.append(turn)
        if not turns:
            yield Skip("image without usable relationships")
            continue
        for chunk in chunks(turns, options.max_turns):
            yield record(
                options.image_path(relative, item.where), chunk, "relation", "visual_genome"
            )
