"""Synthetic scenes: a few coloured shapes on a textured background, with their boxes known.

Each scene is a pure function of its seed, so a data set of N scenes needs no files and any
rank can rebuild any sample. Captions come in a terse "real" style (like alt text) and a long
templated "synthetic" style (like generated captions); tasks use the sphinx-tasks
instructions and box format, so a model trained on them answers in the SPHINX vocabulary.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from sphinx_train.training.config import SourceConfig
from sphinx_train.training.data.sources import Record, Source

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 190),
    "white": (245, 245, 245),
}
KINDS = ("square", "circle", "triangle")
SIZES = {"small": (0.15, 0.25), "large": (0.35, 0.5)}
TASKS = ("rec", "reg", "detection", "vqa", "grounded-caption", "rec-all")


@dataclass(frozen=True)
class SceneObject:
    kind: str
    colour: str
    size: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 as fractions of the side

    @property
    def phrase(self) -> str:
        return f"the {self.size} {self.colour} {self.kind}"


@dataclass(frozen=True)
class Scene:
    image: Image.Image
    objects: tuple[SceneObject, ...]
    background: str


def make_scene(
    seed: int,
    side: int = 224,
    *,
    min_objects: int = 1,
    max_objects: int = 4,
    unique_phrases: bool = False,
) -> Scene:
    """Draw ``min_objects``-``max_objects`` shapes (several colours, kinds, sizes) on a striped
    or dotted background. ``unique_phrases`` redraws an object whose phrase ("the small red
    circle") is already in the scene, so that every referring expression names one object."""
    if not 1 <= min_objects <= max_objects <= 4:
        raise ValueError(
            f"object counts {min_objects}-{max_objects}: expected 1 <= min <= max <= 4"
        )
    rng = random.Random(seed)
    base = tuple(rng.randint(60, 140) for _ in range(3))
    image = Image.new("RGB", (side, side), base)
    draw = ImageDraw.Draw(image)
    background = rng.choice(("stripes", "dots"))
    shade = tuple(min(255, value + 30) for value in base)
    step = rng.randint(8, 16)
    for offset in range(0, side, step):
        if background == "stripes":
            draw.line([(offset, 0), (0, offset), (side, offset)], fill=shade, width=2)
        else:
            for y in range(0, side, step):
                draw.ellipse([offset, y, offset + 2, y + 2], fill=shade)
    objects: list[SceneObject] = []
    for _ in range(rng.randint(min_objects, max_objects)):
        while True:
            size = rng.choice(tuple(SIZES))
            extent = rng.uniform(*SIZES[size])
            x1, y1 = rng.uniform(0, 1 - extent), rng.uniform(0, 1 - extent)
            box = (round(x1, 2), round(y1, 2), round(x1 + extent, 2), round(y1 + extent, 2))
            kind, colour = rng.choice(KINDS), rng.choice(tuple(COLOURS))
            phrase = SceneObject(kind, colour, size, box).phrase
            if not unique_phrases or all(o.phrase != phrase for o in objects):
                break
        pixels = [value * (side - 1) for value in box]
        if kind == "square":
            draw.rectangle(pixels, fill=COLOURS[colour])
        elif kind == "circle":
            draw.ellipse(pixels, fill=COLOURS[colour])
        else:
            draw.polygon(
                [((pixels[0] + pixels[2]) / 2, pixels[1]), (pixels[0], pixels[3]),
                 (pixels[2], pixels[3])],
                fill=COLOURS[colour],
            )
        objects.append(SceneObject(kind, colour, size, box))
    return Scene(image, tuple(objects), background)


def _count_word(count: int) -> str:
    return ("one", "two", "three", "four")[count - 1]


def real_caption(scene: Scene) -> str:
    """Terse alt-text style: "red circle, blue square"."""
    return ", ".join(f"{o.colour} {o.kind}" for o in scene.objects)


def synthetic_caption(scene: Scene) -> str:
    """Long templated style naming every object, its size and where it is."""
    parts = []
    for o in scene.objects:
        across = "left" if o.box[0] + o.box[2] < 1 else "right"
        down = "top" if o.box[1] + o.box[3] < 1 else "bottom"
        parts.append(f"a {o.size} {o.colour} {o.kind} in the {down} {across}")
    count = len(scene.objects)
    noun = "shape" if count == 1 else "shapes"
    return (
        f"The image shows {_count_word(count)} {noun} on a {scene.background} background: "
        + "; ".join(parts) + "."
    )


def task_conversation(scene: Scene, task: str, seed: int = 0) -> list[dict[str, str]]:
    """A conversation of a SPHINX task about the scene (boxes in sphinx-tasks format): one turn,
    or for ``rec-all`` one referring question per object."""
    from sphinx_tasks import Box, format_box, instructions

    rng = random.Random(seed)
    if task == "rec-all":
        # Every object referred to once, in a random order: one image, several boxes to learn.
        turns = []
        for o in rng.sample(scene.objects, len(scene.objects)):
            turns += [{"role": "user", "content": instructions.rec_instruction(o.phrase)},
                      {"role": "assistant", "content": format_box(Box(*o.box))}]
        return turns
    target = rng.choice(scene.objects)
    target_box = Box(*target.box)
    if task == "rec":
        question, answer = instructions.rec_instruction(target.phrase), format_box(target_box)
    elif task == "reg":
        question, answer = instructions.reg_instruction(target_box), target.phrase
    elif task == "detection":
        named: dict[str, list] = {}
        for o in scene.objects:
            named.setdefault(o.kind, []).append(Box(*o.box))
        question = instructions.detect_all_instruction()
        answer = instructions.detections_answer(list(named.items()))
    elif task == "vqa":
        colour = rng.choice(tuple(COLOURS))
        count = sum(o.colour == colour for o in scene.objects)
        question = instructions.short_vqa_instruction(f"How many {colour} shapes are there?")
        answer = str(count)
    elif task == "grounded-caption":
        question = instructions.grounded_caption_instruction()
        answer = " ".join(
            f"a {o.colour} {o.kind} {format_box(Box(*o.box))}" for o in scene.objects
        )
    else:
        raise ValueError(f"unknown synthetic task {task!r}; expected one of {', '.join(TASKS)}")
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def synthetic_text(seed: int) -> str:
    """A short text-only document (stage 1's text rows when no corpus is given)."""
    rng = random.Random(seed)
    colour, kind = rng.choice(tuple(COLOURS)), rng.choice(KINDS)
    count = rng.randint(2, 9)
    return (
        f"There are {count} {colour} {kind}s in the box. If one {kind} is taken away, "
        f"{count - 1} {colour} {kind}s are left in the box."
    )


SCENE_OPTIONS = ("side", "min_objects", "max_objects", "unique_phrases")


def task_cycle(weights: dict[str, int] | None) -> tuple[str, ...]:
    """The tasks in the order sample ``index`` takes them (``cycle[index % len]``).

    ``{"rec": 3, "detection": 1}`` gives rec three times as often as detection; None gives
    every task once.
    """
    if weights is None:
        return TASKS
    cycle = []
    for task, weight in weights.items():
        if task not in TASKS:
            raise ValueError(f"task_weights: unknown task {task!r}; expected one of {', '.join(TASKS)}")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"task_weights.{task}: {weight!r}; expected a whole number >= 0")
        cycle += [task] * weight
    if not cycle:
        raise ValueError(f"task_weights {weights}: expected at least one weight above 0")
    return tuple(cycle)


class SyntheticSource(Source):
    """Scenes drawn from ``(source seed, index)``: any rank rebuilds any sample.

    ``options`` (the source's YAML ``options:``) take ``side``, ``min_objects``,
    ``max_objects``, ``unique_phrases`` (see :func:`make_scene`) and ``task_weights``
    (see :func:`task_cycle`).
    """

    def __init__(self, config: SourceConfig, seed: int):
        self.name, self.kind, self.size, self.style = (
            config.name, config.kind, config.size, config.style
        )
        self.tiling = config.tiling
        self.seed = seed * 1_000_003 + sum(map(ord, config.name))
        options = dict(config.options)
        self.tasks = task_cycle(options.pop("task_weights", None))
        unknown = sorted(set(options) - set(SCENE_OPTIONS))
        if unknown:
            raise ValueError(
                f"source {config.name!r} options: unknown {', '.join(unknown)}; expected "
                f"{', '.join((*SCENE_OPTIONS, 'task_weights'))}"
            )
        self.scene_options = options
        make_scene(0, **options)  # a bad value fails here, not in the middle of training

    def __len__(self) -> int:
        return self.size

    def record(self, index: int) -> Record:
        seed = self.seed * 100_003 + index
        if self.kind == "synthetic-text":
            return Record(self.name, synthetic_text(seed))
        scene = make_scene(seed, **self.scene_options)
        if self.kind == "synthetic-tasks":
            task = self.tasks[index % len(self.tasks)]
            text = task_conversation(scene, task, seed)
        else:
            caption = (real_caption if self.style == "real"
                       else synthetic_caption)(scene)
            text = caption
        return Record(self.name, text, scene.image, self.tiling)
