"""Overlay pictures: masks tinted, boxes with labels, keypoints joined into a skeleton."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .protocols import Region

# Limbs of the COCO person skeleton, as pairs of keypoint names.
COCO_SKELETON: tuple[tuple[str, str], ...] = (
    ("left_ankle", "left_knee"),
    ("left_knee", "left_hip"),
    ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"),
    ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"),
    ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"),
    ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"),
    ("left_eye", "right_eye"),
    ("nose", "left_eye"),
    ("nose", "right_eye"),
    ("left_eye", "left_ear"),
    ("right_eye", "right_ear"),
    ("left_ear", "left_shoulder"),
    ("right_ear", "right_shoulder"),
)

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
)


def color(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def draw_overlay(
    image: Image.Image,
    regions: Sequence[Region] = (),
    masks: Sequence[np.ndarray] = (),
    keypoints: Sequence[Mapping[str, tuple[float, float]]] = (),
    alpha: float = 0.45,
) -> Image.Image:
    """A copy of `image` with region i drawn in colour i (mask, box, label, skeleton)."""
    pixels = np.asarray(image.convert("RGB")).astype(np.float32)
    for index, mask in enumerate(masks):
        tint = np.array(color(index), dtype=np.float32)
        pixels[mask] = (1 - alpha) * pixels[mask] + alpha * tint
    canvas = Image.fromarray(pixels.round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(canvas.size) / 300))
    for index, region in enumerate(regions):
        box = region.box.as_tuple()
        draw.rectangle(box, outline=color(index), width=width)
        text = region.label if region.score is None else f"{region.label} {region.score:.2f}"
        if text.strip():
            left, top, right, bottom = draw.textbbox((box[0], box[1]), text)
            lift = bottom - top + 2
            draw.rectangle((left, top - lift, right + 2, bottom - lift), fill=color(index))
            draw.text((box[0] + 1, box[1] - lift), text, fill=(255, 255, 255))
    for index, points in enumerate(keypoints):
        for first, second in COCO_SKELETON:
            if first in points and second in points:
                draw.line([points[first], points[second]], fill=color(index), width=width + 1)
        radius = width + 2
        for x, y in points.values():
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 255, 255))
    return canvas
