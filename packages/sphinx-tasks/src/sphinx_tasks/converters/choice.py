"""Multiple-choice benchmarks: ScienceQA (problems.json) and MMBench (TSV, base64 images)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import re
from collections.abc import Iterator
from pathlib import Path

from .. import instructions as ins
from .base import ConversionError, ConvertOptions, EmbeddedImage, Record, Skip, record
from .fields import Fields
from .jsonstream import iter_object

_MAX_FIELD = 64 << 20  # a base64 image larger than this is not an MMBench image


def _choice_prompt(question: str, hint: str) -> str:
    return f"Context: {hint}\n{question}" if hint.strip() else question


def scienceqa(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """ScienceQA problems.json (an object keyed by problem id) of ``--split`` (default train):
    question, its hint as context, lettered choices; the image is ``<split>/<id>/image.png``,
    and problems without an image give text-only records."""
    wanted = options.wanted_split
    for key, value in iter_object(path):
        item = Fields(value, f"{path}: problem {key!r}")
        if item.text("split", None) != wanted:
            yield Skip(f"problem outside split {wanted!r}")
            continue
        choices = item.strings("choices")
        answer = item.integer("answer")
        if not 0 < len(choices) <= 26 or not 0 <= answer < len(choices):
            raise item.error("answer", f"the index of one of the {len(choices)} choices")
        prompt = ins.multiple_choice_instruction(
            _choice_prompt(item.text("question"), item.text("hint", "")), choices
        )
        image_name = item.text("image", None)
        image = (
            options.image_path(f"{wanted}/{key}/{image_name}", item.where) if image_name else None
        )
        letter = ins.option_letters(len(choices))[answer]
        yield record(image, [(prompt, letter)], "multiple_choice", "scienceqa")


_MAGIC = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png", b"GIF8": ".gif", b"BM": ".bmp"}


def _image_suffix(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((suffix for magic, suffix in _MAGIC.items() if data.startswith(magic)), None)


@contextlib.contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _mmbench_rows(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        with _csv_field_limit(_MAX_FIELD), path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            if not {"index", "question", "A", "B"} <= set(reader.fieldnames or ()):
                raise ConversionError(
                    f"{path}: not an MMBench TSV (expected columns index, question, A, B, ...)"
                )
            for row in reader:
                yield reader.line_num, row
    except csv.Error as exc:
        raise ConversionError(f"{path}: unreadable TSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConversionError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _present(text: str | None) -> str:
    """A TSV cell, with pandas' empty markers read as empty."""
    text = (text or "").strip()
    return "" if text.lower() in ("nan", "none") else text


def mmbench(path: Path, options: ConvertOptions) -> Iterator[Record | Skip]:
    """MMBench / CCBench TSV: question (after its hint), "There are several options:" with
    the lettered options, answered by the letter. Images are embedded as base64 and written
    as ``<index>.<ext>`` under --images-out; a row whose image cell is another row's index
    shares that image."""
    for line, row in _mmbench_rows(path):
        where = f"{path}:{line}"
        index = _present(row.get("index"))
        if not re.fullmatch(r"\d+", index):
            raise ConversionError(f"{where}: column 'index': expected a number, found {index!r}")
        options_text = []
        for letter in "ABCDEFGHI":
            cell = _present(row.get(letter))
            if not cell:
                break
            options_text.append(cell)
        answer = _present(row.get("answer")).upper()
        if answer not in ins.option_letters(len(options_text)):
            yield Skip("question without an answer among its options (test split)")
            continue
        cell = _present(row.get("image"))
        if re.fullmatch(r"\d{1,12}", cell):
            image = options.image_path(f"{cell}.jpg", where)
        else:
            try:
                data = base64.b64decode(cell, validate=True)
            except (binascii.Error, ValueError):
                raise ConversionError(f"{where}: column 'image': not base64 image data") from None
            suffix = _image_suffix(data)
            if suffix is None:
                raise ConversionError(f"{where}: column 'image': not a JPEG/PNG/GIF/BMP/WebP image")
            yield EmbeddedImage(f"{index}{suffix}", data)
            image = options.image_path(f"{index}{suffix}", where)
        question = _choice_prompt(_present(row.get("question")), _present(row.get("hint")))
        prompt = ins.mmbench_instruction(question, options_text)
        yield record(image, [(prompt, answer)], "multiple_choice", options.source_name or "mmbench")
