"""Grounders: boxes the user gives, or boxes SPHINX finds for a phrase."""

from __future__ import annotations

from collections.abc import Iterable

from PIL import Image

from sphinx_tasks import Box, instructions

from .images import BoxInput, check_box
from .protocols import Region


class BoxesGrounder:
    """Regions the user already knows; every call returns them, labelled with the phrase."""

    def __init__(self, boxes: Iterable[BoxInput], labels: Iterable[str] | None = None) -> None:
        self.boxes = [box if isinstance(box, Box) else Box(*map(float, box)) for box in boxes]
        if not self.boxes:
            raise ValueError("BoxesGrounder: no boxes given (expected at least one x1,y1,x2,y2)")
        self.labels = None if labels is None else list(labels)
        if self.labels is not None and len(self.labels) != len(self.boxes):
            raise ValueError(
                f"BoxesGrounder: {len(self.boxes)} boxes but {len(self.labels)} labels"
            )

    def __call__(self, image: Image.Image, phrase: str | None) -> list[Region]:
        labels = self.labels or [phrase or ""] * len(self.boxes)
        return [
            Region(check_box(box, image.size), label, 1.0)
            for box, label in zip(self.boxes, labels, strict=True)
        ]


class SphinxGrounder:
    """Ask a SPHINX model where a phrase is (REC) or for every object of a kind (detection).

    The model's chat result already maps its [0, 1] padded-square boxes to image pixels
    through the tiling layout; boxes are then clipped to the image. SPHINX gives no
    confidence, so regions carry ``score=None``.

    ``mode="refer"``: one object the phrase describes ("the man on the left").
    ``mode="detect"``: every instance of a category ("Detect all dogs shown in the image.").
    A phrase of None always detects every object, with the names the model gives.
    """

    def __init__(self, model, mode: str = "refer", **generation) -> None:
        if mode not in ("refer", "detect"):
            raise ValueError(f"SphinxGrounder mode {mode!r}: expected 'refer' or 'detect'")
        self.model, self.mode, self.generation = model, mode, generation

    def instruction(self, phrase: str | None) -> str:
        if phrase is None:
            return instructions.detect_all_instruction()
        if self.mode == "detect":
            return instructions.detect_category_instruction(phrase)
        return instructions.rec_instruction(phrase)

    def __call__(self, image: Image.Image, phrase: str | None) -> list[Region]:
        answer = self.model.chat(image, self.instruction(phrase), **self.generation)
        if phrase is None:
            named = [(name, box) for name, boxes in answer.detections for box in boxes]
        else:
            named = [(phrase, box) for box in answer.boxes]
        regions = []
        for label, box in named:
            try:
                regions.append(Region(check_box(box, image.size), label, None))
            except ValueError:
                continue  # the model pointed outside the picture: nothing to use
        return regions
