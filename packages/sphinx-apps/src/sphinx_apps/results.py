"""What the recipes return: dataclasses that draw themselves and save the house way."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ._house import staged_dir
from .drawing import draw_overlay
from .images import mask_image, union
from .protocols import Region

OUTPUT_FILES = ("mask.png", "result.png", "overlay.png", "result.json")


class Stages:
    """Seconds spent per named step, reported to `progress` as each step starts."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.progress, self.seconds = progress, {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass
class RecipeResult:
    """The picture, the regions found in it and how long each step took."""

    image: Image.Image
    regions: list[Region]
    timings: dict[str, float] = field(default_factory=dict)

    def overlay(self) -> Image.Image:
        return draw_overlay(self.image, self.regions)

    def to_json(self) -> dict:
        return {
            "image_size": list(self.image.size),
            "regions": [region.to_json() for region in self.regions],
            "timings_s": {name: round(value, 4) for name, value in self.timings.items()},
        }

    def pictures(self) -> dict[str, Image.Image]:
        """Files to write besides result.json and overlay.png (mask.png, result.png)."""
        return {}

    def save(self, folder: str | os.PathLike[str], inputs=(), *, overwrite: bool = False) -> None:
        """Write the pictures, overlay.png and result.json into `folder` (staged, then renamed)."""
        with staged_dir(folder, inputs, overwrite=overwrite, owns=OUTPUT_FILES) as stage:
            for name, picture in self.pictures().items():
                picture.save(stage / name)
            self.overlay().save(stage / "overlay.png")
            (stage / "result.json").write_text(json.dumps(self.to_json(), indent=2) + "\n")


@dataclass
class SegmentResult(RecipeResult):
    """One boolean mask per region."""

    masks: list[np.ndarray] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray:
        return union(self.masks, self.image.size)

    def overlay(self) -> Image.Image:
        return draw_overlay(self.image, self.regions, self.masks)

    def cutout(self) -> Image.Image:
        """The image with everything outside the masks transparent."""
        cut = self.image.convert("RGBA")
        cut.putalpha(mask_image(self.mask))
        return cut

    def pictures(self) -> dict[str, Image.Image]:
        return {"mask.png": mask_image(self.mask), "result.png": self.cutout()}

    def to_json(self) -> dict:
        data = super().to_json()
        data["mask_pixels"] = [int(mask.sum()) for mask in self.masks]
        return data


@dataclass
class InpaintResult(SegmentResult):
    """Masks, the (dilated) mask that was painted, and the painted image."""

    painted_mask: np.ndarray | None = None
    result: Image.Image | None = None
    prompt: str | None = None
    kept: str = "background"  # what stayed: "background" (object changed) or "object"

    def pictures(self) -> dict[str, Image.Image]:
        return {"mask.png": mask_image(self.painted_mask), "result.png": self.result}

    def to_json(self) -> dict:
        data = super().to_json()
        data.update(painted_pixels=int(self.painted_mask.sum()), prompt=self.prompt, kept=self.kept)
        return data


@dataclass
class RegionCaption:
    """Three levels of text for one region: the region's description and its crop's captions."""

    region: Region
    description: str
    caption: str
    detailed: str

    def to_json(self) -> dict:
        return {
            **self.region.to_json(),
            "description": self.description,
            "caption": self.caption,
            "detailed": self.detailed,
        }


@dataclass
class DenseCaptionResult(RecipeResult):
    """Per region texts (``captions``) plus captions of the whole image."""

    captions: list[RegionCaption] = field(default_factory=list)
    caption: str = ""
    detailed: str = ""

    def overlay(self) -> Image.Image:
        labelled = [
            Region(item.region.box, item.description or item.region.label, None)
            for item in self.captions
        ]
        return draw_overlay(self.image, labelled)

    def to_json(self) -> dict:
        data = super().to_json()
        data.update(
            caption=self.caption,
            detailed=self.detailed,
            regions=[item.to_json() for item in self.captions],
        )
        return data


@dataclass
class ReasonResult(RecipeResult):
    """The answer to a question asked after the model listed what it sees."""

    question: str = ""
    answer: str = ""
    context: str = ""  # the detections as the model was shown them

    def to_json(self) -> dict:
        data = super().to_json()
        data.update(question=self.question, context=self.context, answer=self.answer)
        return data


@dataclass
class PoseResult(RecipeResult):
    """Keypoints (COCO names -> pixel x, y) of the person in each region."""

    keypoints: list[dict[str, tuple[float, float]]] = field(default_factory=list)

    def overlay(self) -> Image.Image:
        return draw_overlay(self.image, self.regions, keypoints=self.keypoints)

    def to_json(self) -> dict:
        data = super().to_json()
        for entry, points in zip(data["regions"], self.keypoints, strict=True):
            entry["keypoints"] = {
                name: [round(x, 2), round(y, 2)] for name, (x, y) in points.items()
            }
        return data
