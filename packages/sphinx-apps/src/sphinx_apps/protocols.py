"""The three building blocks every recipe is made of; any object with the method fits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from sphinx_tasks import Box


@dataclass(frozen=True)
class Region:
    """A box in image pixels with what it shows; `score` is None when the source gives none."""

    box: Box
    label: str = ""
    score: float | None = None

    def to_json(self) -> dict:
        return {
            "box": [round(v, 2) for v in self.box.as_tuple()],
            "label": self.label,
            "score": self.score,
        }


@runtime_checkable
class Grounder(Protocol):
    """(image, phrase) -> regions in image pixels; a phrase of None asks for every object."""

    def __call__(self, image: Image.Image, phrase: str | None) -> list[Region]: ...


@runtime_checkable
class Segmenter(Protocol):
    """(image, boxes in pixels) -> one boolean H x W mask per box."""

    def __call__(self, image: Image.Image, boxes: Sequence[Box]) -> list[np.ndarray]: ...


@runtime_checkable
class Inpainter(Protocol):
    """(image, boolean mask[, prompt]) -> an image of the same size; pixels outside the mask kept.

    `uses_prompt` says whether the prompt changes anything (Telea and LaMa ignore it).
    """

    uses_prompt: bool

    def __call__(
        self, image: Image.Image, mask: np.ndarray, prompt: str | None = None
    ) -> Image.Image: ...
