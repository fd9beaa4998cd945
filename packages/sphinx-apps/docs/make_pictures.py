"""Make the README's pictures from scikit-image photos and a synthetic scene.

    uv run python packages/sphinx-apps/docs/make_pictures.py [--out packages/sphinx-apps/docs]

Everything runs with the weights-free defaults (GrabCut, Telea) and user boxes. The dense
caption and pose pictures show how results are drawn: their texts and keypoints come from a
scripted stand-in for the model (a random-weight SPHINX would only write gibberish).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from sphinx_apps import BoxesGrounder, dense_caption, referring_pose, remove, segment

HERE = Path(__file__).resolve().parent


def side_by_side(*panels: tuple[str, Image.Image]) -> Image.Image:
    """Panels in a row with a caption strip above each."""
    strip = 18
    width = sum(image.width for _, image in panels) + 8 * (len(panels) - 1)
    height = max(image.height for _, image in panels) + strip
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw, left = ImageDraw.Draw(canvas), 0
    for title, image in panels:
        canvas.paste(image.convert("RGB"), (left, strip))
        draw.text((left + 4, 3), title, fill=(0, 0, 0))
        left += image.width + 8
    return canvas


def on_checkers(image: Image.Image, square: int = 16) -> Image.Image:
    """An RGBA image over a grey checkerboard, so its transparent parts show."""
    rows, cols = np.indices((image.height, image.width)) // square
    board = np.where(((rows + cols) % 2)[..., None] == 0, 200, 150).repeat(3, axis=2)
    canvas = Image.fromarray(board.astype(np.uint8)).convert("RGBA")
    return Image.alpha_composite(canvas, image).convert("RGB")


def scene() -> Image.Image:
    """Three shapes with known boxes on a soft gradient."""
    xs = np.linspace(0, 1, 320)[None, :, None]
    ys = np.linspace(0, 1, 240)[:, None, None]
    base = np.array([150, 180, 210]) + np.array([40, 20, -30]) * xs + np.array([-30, 10, 20]) * ys
    image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((30, 60, 120, 150), fill=(220, 40, 40))
    draw.rectangle((170, 40, 250, 120), fill=(40, 70, 200))
    draw.polygon([(200, 220), (250, 140), (300, 220)], fill=(250, 200, 30))
    return image


SHAPES = {"red circle": (30, 60, 120, 150), "blue square": (170, 40, 250, 120),
          "yellow triangle": (200, 140, 300, 220)}  # fmt: skip


@dataclass
class Scripted:
    """Answers like SPHINX would, from a table (prompt prefix -> text)."""

    answers: dict[str, str]
    keypoints: dict = field(default_factory=dict)

    def chat(self, image, prompt, **generation):
        text = next((v for k, v in self.answers.items() if str(prompt).startswith(k)), "")
        return Answer(text, self.keypoints)


@dataclass
class Answer:
    text: str
    keypoints: dict


def make(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    astronaut = Image.fromarray(data.astronaut())
    head = BoxesGrounder([(150, 15, 305, 160)])
    found = segment(astronaut, "her head", head)
    side_by_side(("photo", astronaut), ('segment "her head"', found.overlay()),
                 ("cutout", on_checkers(found.cutout()))).save(out / "segment.png")  # fmt: skip

    rocket = Image.fromarray(data.rocket())
    gone = remove(rocket, "the rocket", BoxesGrounder([(290, 110, 360, 412)]), dilation=15)
    side_by_side(("photo", rocket), ("mask (dilated)", Image.fromarray(gone.painted_mask)),
                 ('remove "the rocket"', gone.result)).save(out / "remove.png")  # fmt: skip

    shapes = scene()
    boxes = BoxesGrounder(list(SHAPES.values()), labels=list(SHAPES))
    removed = remove(shapes, "the red circle", BoxesGrounder([SHAPES["red circle"]]), dilation=5)
    model = Scripted(
        {
            "Please provide a short description for this region: [0.09": "a red circle",
            "Please provide a short description for this region: [0.53": "a blue square",
            "Please provide a short description for this region: [0.62": "a yellow triangle",
        }
    )
    captions = dense_caption(shapes, model, boxes)
    side_by_side(("scene", shapes), ('remove "the red circle"', removed.result),
                 ("dense caption (scripted texts)", captions.overlay())).save(out / "scene.png")  # fmt: skip

    points = {"nose": (223, 126), "left_eye": (243, 104), "right_eye": (203, 104),
              "left_ear": (268, 112), "right_ear": (178, 112), "left_shoulder": (320, 255),
              "right_shoulder": (130, 250), "left_elbow": (350, 390), "right_elbow": (55, 380),
              "left_wrist": (300, 470), "right_wrist": (140, 495)}  # fmt: skip
    pose = referring_pose(astronaut, "the astronaut", Scripted({}, points),
                          BoxesGrounder([(20, 10, 500, 512)]))  # fmt: skip
    side_by_side(("photo", astronaut), ("pose drawing (scripted points)", pose.overlay())).save(
        out / "pose.png"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help=f"folder (default {HERE})")
    make(parser.parse_args().out)


if __name__ == "__main__":
    main()
