"""What every dataset converter shares: options, records, skips, image sizes and box mapping."""

from __future__ import annotations

import dataclasses
import posixpath
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._house import confined_path
from ..geometry import Box, SquareFrame
from ..imagesize import ImageSizeError, image_size

Record = dict


class ConversionError(ValueError):
    """Input that a converter cannot read at all (wrong file, wrong layout)."""


@dataclass(frozen=True)
class Skip:
    """An item left out of the output, with the reason counted in the summary."""

    reason: str


@dataclass(frozen=True)
class EmbeddedImage:
    """Image bytes carried inside the annotations (MMBench TSV), to be written as ``name``."""

    name: str
    data: bytes


@dataclass
class ConvertOptions:
    """Settings shared by the converters; each uses the ones that make sense for its format.

    image_prefix: prepended (posix-joined) to every image path written in the records.
    image_root: folder holding the images, to read sizes from file headers when the
        annotations lack them.
    annotations: companion answers file (VQAv2 / OK-VQA annotations).
    image_data: Visual Genome image_data.json (sizes and paths).
    class_names: ImageNet-style class name map (JSON object or "wnid name, ..." lines).
    max_turns: most question/answer rounds in one record.
    split: keep only items of this split, for files that mark one (refcoco-refs, OCR-VQA,
        ScienceQA, LVIS paths); those default to "train", so test items never slip in unasked.
    source_name: the "source" written in records, for formats shared by several datasets.
    images_out: folder to write images embedded in the annotations (MMBench TSV) into.
    """

    image_prefix: str = ""
    image_root: Path | None = None
    annotations: Path | None = None
    image_data: Path | None = None
    class_names: Path | None = None
    max_turns: int = 10
    split: str | None = None
    source_name: str | None = None
    images_out: Path | None = None

    @classmethod
    def from_dict(cls, data: Mapping) -> ConvertOptions:
        """From a parsed JSON/YAML mapping; path options may be strings."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConversionError(
                f"convert options: unknown keys {unknown}; expected some of {sorted(known)}"
            )
        paths = {"image_root", "annotations", "image_data", "class_names", "images_out"}
        values = {k: Path(v) if k in paths and v is not None else v for k, v in data.items()}
        return cls(**values)

    @property
    def wanted_split(self) -> str:
        return self.split or "train"

    def image_path(self, relative: object, where: str = "record") -> str:
        """The record's image path: ``relative`` (from the data) kept inside the prefix."""
        try:
            confined_path(self.image_prefix or ".", relative, what=f"{where}: image path")
        except ValueError as exc:
            raise ConversionError(str(exc)) from None
        return posixpath.join(self.image_prefix, relative) if self.image_prefix else relative

    def image_size(
        self, relative: str, width: int | None = None, height: int | None = None
    ) -> tuple[int, int] | Skip:
        """Size from the annotations when given, else from the image file's header."""
        if width is not None and height is not None:
            return width, height
        if self.image_root is None:
            return Skip("image size missing and no --image-root to read it from")
        try:
            return image_size(confined_path(self.image_root, relative, what="image path"))
        except FileNotFoundError:
            return Skip("image file not found")
        except (ImageSizeError, OSError):
            return Skip("image header unreadable")
        except ValueError as exc:
            raise ConversionError(str(exc)) from None


@dataclass
class Summary:
    written: int = 0
    skipped: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        text = f"{self.written} records written, {sum(self.skipped.values())} skipped"
        if self.skipped:
            reasons = "; ".join(
                f"{reason}: {count}" for reason, count in self.skipped.most_common()
            )
            text += f" ({reasons})"
        return text


def conversation(turns: Sequence[tuple[str, str]], with_image: bool = True) -> list[dict]:
    """LLaVA-style turns; the first question carries the ``<image>`` marker."""
    messages = []
    for index, (question, answer) in enumerate(turns):
        if index == 0 and with_image:
            question = "<image>\n" + question
        messages.append({"from": "human", "value": question})
        messages.append({"from": "gpt", "value": answer})
    return messages


def record(image: str | None, turns: Sequence[tuple[str, str]], task: str, source: str) -> Record:
    result: Record = {}
    if image is not None:
        result["image"] = image
    result["conversations"] = conversation(turns, with_image=image is not None)
    result["task"] = task
    result["source"] = source
    return result


def square_box(frame: SquareFrame, x: float, y: float, w: float, h: float) -> Box | None:
    """A pixel xywh box in the padded-square [0, 1] frame, clipped to it; None when empty."""
    return square_corners(frame, Box.from_xywh(x, y, w, h))


def square_corners(frame: SquareFrame, box: Box) -> Box | None:
    """A pixel corner box in the padded-square frame, clipped; None when nothing is left."""
    result = frame.box_to_square(box).clipped()
    return result if result.width > 0 and result.height > 0 else None


def chunks(turns: list[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(turns), max(1, size)):
        yield turns[start : start + max(1, size)]


def most_common(answers: Sequence[str]) -> str | None:
    """The most frequent answer; ties go to the one seen first."""
    counts = Counter(answers)
    if not counts:
        return None
    best = max(counts.values())
    return next(answer for answer in answers if counts[answer] == best)


Converter = Callable[[Path, ConvertOptions], Iterator[Record | Skip]]
