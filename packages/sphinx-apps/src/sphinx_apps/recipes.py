"""The paper's application chains, composed from a grounder, a segmenter and an inpainter."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sphinx_tasks import Detection, SquareFrame, format_detections, instructions

from .grabcut import GrabCutSegmenter
from .grounding import SphinxGrounder
from .images import ImageInput, dilate, load_rgb, union
from .protocols import Grounder, Inpainter, Region, Segmenter
from .results import (
    DenseCaptionResult,
    InpaintResult,
    PoseResult,
    ReasonResult,
    RegionCaption,
    SegmentResult,
    Stages,
)
from .telea import TeleaInpainter

Progress = Callable[[str], None] | None


class NothingFoundError(ValueError):
    """The grounder found no region for the phrase."""


def _ground(image, phrase, grounder: Grounder, stages: Stages) -> list[Region]:
    with stages.stage("ground"):
        regions = grounder(image, phrase)
    if not regions:
        what = f"{phrase!r}" if phrase else "any object"
        raise NothingFoundError(
            f"no region found for {what}; give boxes instead (--box x1,y1,x2,y2)"
        )
    return regions


def segment(
    image: ImageInput,
    phrase: str | None,
    grounder: Grounder,
    segmenter: Segmenter | None = None,
    *,
    progress: Progress = None,
) -> SegmentResult:
    """Language-referred segmentation: the phrase's boxes, then one mask per box."""
    image, stages = load_rgb(image), Stages(progress)
    regions = _ground(image, phrase, grounder, stages)
    with stages.stage("segment"):
        masks = (segmenter or GrabCutSegmenter())(image, [region.box for region in regions])
    return SegmentResult(image, regions, stages.seconds, masks)


def _inpaint(image, phrase, grounder, segmenter, inpainter, dilation, prompt, keep, progress):
    image, stages = load_rgb(image), Stages(progress)
    regions = _ground(image, phrase, grounder, stages)
    with stages.stage("segment"):
        masks = (segmenter or GrabCutSegmenter())(image, [region.box for region in regions])
    with stages.stage("dilate"):
        objects = union(masks, image.size)
        painted = ~objects if keep == "object" else dilate(objects, dilation)
    if not painted.any():
        raise ValueError("the mask to paint is empty: the segmenter found no pixels in the boxes")
    with stages.stage("inpaint"):
        result = inpainter(image, painted, prompt)
    return InpaintResult(image, regions, stages.seconds, masks, painted, result, prompt, keep)


def remove(
    image: ImageInput,
    phrase: str | None,
    grounder: Grounder,
    segmenter: Segmenter | None = None,
    inpainter: Inpainter | None = None,
    *,
    dilation: int = 15,
    progress: Progress = None,
) -> InpaintResult:
    """Remove an object: ground -> mask -> dilate by `dilation` pixels -> inpaint."""
    inpainter = inpainter or TeleaInpainter()
    return _inpaint(
        image, phrase, grounder, segmenter, inpainter, dilation, None, "background", progress
    )


def edit(
    image: ImageInput,
    phrase: str | None,
    prompt: str,
    grounder: Grounder,
    inpainter: Inpainter,
    segmenter: Segmenter | None = None,
    *,
    keep: str = "background",
    dilation: int = 5,
    progress: Progress = None,
) -> InpaintResult:
    """Repaint the object as `prompt` (keep="background") or its surroundings (keep="object").

    The inpainter should use the prompt (DiffusionInpainter); Telea and LaMa ignore it.
    """
    if keep not in ("background", "object"):
        raise ValueError(f"keep={keep!r}: expected 'background' or 'object'")
    if not prompt or not prompt.strip():
        raise ValueError("edit needs a prompt describing the new content")
    grow = dilation if keep == "background" else 0
    return _inpaint(image, phrase, grounder, segmenter, inpainter, grow, prompt, keep, progress)


def _in_square(box, frame: SquareFrame):
    return frame.box_to_square(box).clipped()


def _start(image, phrase, model, grounder, progress, generation):
    """What every model recipe begins with: the picture, its regions and its square frame."""
    image, stages = load_rgb(image), Stages(progress)
    if grounder is None:
        if model is None:
            raise ValueError("give a grounder (for example BoxesGrounder) or a SPHINX model")
        grounder = SphinxGrounder(model, **generation)
    regions = _ground(image, phrase, grounder, stages)
    return image, stages, regions, SquareFrame(*image.size)


def dense_caption(
    image: ImageInput,
    model,
    grounder: Grounder | None = None,
    *,
    progress: Progress = None,
    **generation,
) -> DenseCaptionResult:
    """Multi-level captions: every object, each region's description, captions of its crop,
    and captions of the whole image. `model` is a SPHINX model (anything with ``chat``)."""
    image, stages, regions, frame = _start(image, None, model, grounder, progress, generation)

    def ask(picture, text: str) -> str:
        return model.chat(picture, text, **generation).text

    captions = []
    for index, region in enumerate(regions, 1):
        with stages.stage(f"caption region {index}/{len(regions)}"):
            square = _in_square(region.box, frame)
            description = ask(image, instructions.reg_instruction(square))
            crop = image.crop(tuple(round(v) for v in region.box.as_tuple()))
            caption = ask(crop, instructions.short_caption_instruction())
            detailed = ask(crop, instructions.detailed_caption_instruction())
        captions.append(RegionCaption(region, description, caption, detailed))
    with stages.stage("caption image"):
        whole = ask(image, instructions.short_caption_instruction())
        detailed = ask(image, instructions.detailed_caption_instruction())
    timings = _merge_region_timings(stages.seconds)
    return DenseCaptionResult(image, regions, timings, captions, whole, detailed)


def _merge_region_timings(seconds: dict[str, float]) -> dict[str, float]:
    merged: dict[str, float] = {}
    for name, value in seconds.items():
        key = "caption regions" if name.startswith("caption region ") else name
        merged[key] = merged.get(key, 0.0) + value
    return merged


def reason_with_detections(
    image: ImageInput,
    question: str,
    model,
    grounder: Grounder | None = None,
    *,
    progress: Progress = None,
    **generation,
) -> ReasonResult:
    """Detect first, then answer with the detections as an earlier turn of the conversation."""
    image, stages, regions, frame = _start(image, None, model, grounder, progress, generation)
    by_name: dict[str, list] = {}
    for region in regions:
        by_name.setdefault(region.label or "object", []).append(_in_square(region.box, frame))
    context = format_detections([Detection(name, boxes) for name, boxes in by_name.items()])
    conversation = [
        {"role": "user", "content": instructions.detect_all_instruction()},
        {"role": "assistant", "content": context},
        {"role": "user", "content": question},
    ]
    with stages.stage("answer"):
        answer = model.chat(image, conversation, **generation).text
    return ReasonResult(image, regions, stages.seconds, question, answer, context)


def referring_pose(
    image: ImageInput,
    phrase: str,
    model,
    grounder: Grounder | None = None,
    *,
    progress: Progress = None,
    **generation,
) -> PoseResult:
    """The person a phrase describes, then the keypoints SPHINX gives inside that box."""
    image, stages, regions, frame = _start(image, phrase, model, grounder, progress, generation)
    keypoints = []
    with stages.stage("keypoints"):
        for region in regions:
            text = instructions.keypoints_in_region_instruction(_in_square(region.box, frame))
            answer = model.chat(image, text, **generation)
            keypoints.append(_inside_image(answer.keypoints, image.size))
    return PoseResult(image, regions, stages.seconds, keypoints)


def _inside_image(points: dict, size) -> dict[str, tuple[float, float]]:
    width, height = size
    return {
        name: (float(x), float(y))
        for name, (x, y) in points.items()
        if 0 <= x <= width and 0 <= y <= height and np.isfinite([x, y]).all()
    }
