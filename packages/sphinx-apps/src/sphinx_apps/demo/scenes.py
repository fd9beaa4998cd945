"""Held-out scenes for the demo: the evaluation set, the baselines, true masks, detection F1.

The scenes come from sphinx-train's synthetic generator (seeds far from every training
source's), kept only when they hold 2-4 objects and the target's phrase names one object alone,
so that "the small red circle" has exactly one right answer, and at least ``MIN_VISIBLE``
of the target's shape is in sight (the generator lets later shapes cover earlier ones).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from sphinx_tasks import Box

HELD_OUT_BASE = 2**40  # training sources seed their scenes below 2**40 for any sane --seed
BASELINES = ("centre", "largest", "random_object")
MIN_VISIBLE = 0.7  # share of the target's shape that later shapes may not cover


@dataclass(frozen=True)
class HeldOutScene:
    """One evaluation scene: its picture, objects, the target of its REC and VQA questions."""

    id: str
    scene: object  # sphinx_train.training.synthetic.Scene
    target: int  # index of the object the phrase describes
    vqa_question: str
    vqa_answer: str

    @property
    def image(self) -> Image.Image:
        return self.scene.image

    @property
    def objects(self):
        return self.scene.objects

    @property
    def phrase(self) -> str:
        return self.objects[self.target].phrase

    def box(self, index: int) -> Box:
        return Box(*self.objects[index].box)


def held_out_scenes(count: int, seed: int) -> list[HeldOutScene]:
    """``count`` scenes with 2-4 objects and a uniquely named, visible target; a pure function
    of ``seed``."""
    from sphinx_train.training import synthetic

    scenes, index = [], 0
    while len(scenes) < count:
        scene_seed = HELD_OUT_BASE + seed * 1_000_003 + index
        index += 1
        scene = synthetic.make_scene(scene_seed)
        if not 2 <= len(scene.objects) <= 4:
            continue
        phrases = [o.phrase for o in scene.objects]
        candidate = HeldOutScene("", scene, 0, "", "")
        usable = [i for i, phrase in enumerate(phrases)
                  if phrases.count(phrase) == 1 and visible_share(candidate, i) >= MIN_VISIBLE]
        if not usable:
            continue
        rng = random.Random(scene_seed)
        colour = rng.choice(sorted({o.colour for o in scene.objects}))
        count_of = sum(o.colour == colour for o in scene.objects)
        scenes.append(HeldOutScene(
            f"scene-{len(scenes):03d}", scene, rng.choice(usable),
            f"How many {colour} shapes are there?", str(count_of),
        ))
    return scenes


# -- baselines --------------------------------------------------------------------------------


def baseline_boxes(scenes: list[HeldOutScene]) -> dict[str, list[list[Box]]]:
    """Per baseline and scene, the candidate boxes it answers with (scored as their mean hit).

    centre: one box of the held-out targets' mean width and height, centred in the picture
    (an oracle size prior, so a generous baseline). largest: the biggest object's box.
    random_object: every object's box, each with weight 1/n: the expected score of pointing
    at one of the scene's objects at random.
    """
    width = float(np.mean([s.box(s.target).width for s in scenes]))
    height = float(np.mean([s.box(s.target).height for s in scenes]))
    centre = Box(0.5 - width / 2, 0.5 - height / 2, 0.5 + width / 2, 0.5 + height / 2)
    boxes: dict[str, list[list[Box]]] = {name: [] for name in BASELINES}
    for s in scenes:
        all_boxes = [s.box(i) for i in range(len(s.objects))]
        boxes["centre"].append([centre])
        boxes["largest"].append([max(all_boxes, key=lambda b: b.area)])
        boxes["random_object"].append(all_boxes)
    return boxes


def baseline_accuracy(scenes: list[HeldOutScene]) -> dict[str, float]:
    """Acc@0.5 of each baseline on the scenes' REC targets."""
    scores = {}
    for name, per_scene in baseline_boxes(scenes).items():
        hits = [np.mean([box.iou(s.box(s.target)) >= 0.5 for box in candidates])
                for s, candidates in zip(scenes, per_scene, strict=True)]
        scores[name] = float(np.mean(hits))
    return scores


# -- masks ------------------------------------------------------------------------------------


def shape_mask(obj, side: int) -> np.ndarray:
    """Boolean mask of one shape as the generator draws it (box scaled by side - 1)."""
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    x1, y1, x2, y2 = (value * (side - 1) for value in obj.box)
    if obj.kind == "square":
        draw.rectangle([x1, y1, x2, y2], fill=255)
    elif obj.kind == "circle":
        draw.ellipse([x1, y1, x2, y2], fill=255)
    else:
        draw.polygon([((x1 + x2) / 2, y1), (x1, y2), (x2, y2)], fill=255)
    return np.asarray(canvas) > 0


def visible_mask(scene: HeldOutScene, index: int) -> np.ndarray:
    """The pixels of object ``index`` that no later-drawn object covers."""
    side = scene.image.size[0]
    mask = shape_mask(scene.objects[index], side)
    for later in scene.objects[index + 1:]:
        mask &= ~shape_mask(later, side)
    return mask


def visible_share(scene: HeldOutScene, index: int) -> float:
    """The share of object ``index``'s shape that is in sight."""
    whole = shape_mask(scene.objects[index], scene.image.size[0]).sum()
    return float(visible_mask(scene, index).sum() / max(whole, 1))


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(predicted, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, truth).sum() / union)


# -- detection --------------------------------------------------------------------------------


def detection_counts(predicted: list[tuple[str, Box]], truth: list[tuple[str, Box]],
                     threshold: float = 0.5) -> tuple[int, int, int]:
    """(true positives, predictions, truths): greedy one-to-one matching by IoU, same name."""
    pairs = sorted(
        ((p_box.iou(t_box), p, t) for p, (p_name, p_box) in enumerate(predicted)
         for t, (t_name, t_box) in enumerate(truth) if p_name == t_name),
        key=lambda item: -item[0],
    )
    used_p, used_t = set(), set()
    for iou, p, t in pairs:
        if iou >= threshold and p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
    return len(used_p), len(predicted), len(truth)


def f1(true_positives: int, predictions: int, truths: int) -> float:
    """Harmonic mean of precision and recall (0 when nothing matched)."""
    if true_positives == 0:
        return 0.0
    precision, recall = true_positives / predictions, true_positives / truths
    return 2 * precision * recall / (precision + recall)
