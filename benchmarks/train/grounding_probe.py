"""Grounding probe: held-out REC Acc@0.5 of a stage-2 run against the steps and seconds spent.

Trains a built-in config (default demo-stage2) through the trainer in chunks (each chunk resumes
the run), and after each chunk answers REC questions about held-out scenes with 2-4 shapes
(unique phrases) through ``model.generate``, parsing the SPHINX box format. Baselines on the
same questions: the centre box, the largest object's box, a random object's box. Prints a
markdown table and writes benchmarks/results/grounding_probe.md.

    uv run python benchmarks/train/grounding_probe.py --steps 100,200,400 --scenes 64
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import torch

HELD_OUT_SEED = 987_654  # far from any training source's seeds


def held_out_questions(count: int, seed: int = HELD_OUT_SEED):
    """(image, phrase, true box, all boxes) of REC questions on 2-4 object scenes."""
    from sphinx_train.training.synthetic import make_scene

    rows = []
    for index in range(count):
        scene = make_scene(seed + index, min_objects=2, max_objects=4, unique_phrases=True)
        target = random.Random(seed - index).choice(scene.objects)
        rows.append((scene.image, target.phrase, target.box, [o.box for o in scene.objects]))
    return rows


def iou(a, b) -> float:
    from sphinx_tasks import Box

    return Box(*a).iou(Box(*b))


def baselines(rows) -> dict[str, float]:
    rng = random.Random(0)
    centre = (0.25, 0.25, 0.75, 0.75)
    scores = {"centre": 0, "largest": 0, "random_object": 0}
    for _, _, truth, boxes in rows:
        largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        scores["centre"] += iou(centre, truth) >= 0.5
        scores["largest"] += iou(largest, truth) >= 0.5
        scores["random_object"] += iou(rng.choice(boxes), truth) >= 0.5
    return {name: value / len(rows) for name, value in scores.items()}


def rec_accuracy(model, rows, batch: int = 16) -> float:
    from sphinx_tasks import instructions, parse_boxes

    hits = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        questions = [instructions.rec_instruction(phrase) for _, phrase, _, _ in chunk]
        answers = model.generate(
            questions, [image for image, *_ in chunk], generation="reference-eval",
            max_new_tokens=24,
        )
        for answer, (_, _, truth, _) in zip(answers, chunk, strict=True):
            boxes = parse_boxes(answer.text).boxes
            if boxes:
                box = boxes[0]
                hits += iou((box.x1, box.y1, box.x2, box.y2), truth) >= 0.5
    return hits / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo-stage2", help="built-in config or YAML")
    parser.add_argument("--set", action="append", default=[], help="override, e.g. optimizer.lr=1e-3")
    parser.add_argument("--steps", default="100,200,400", help="steps at which to evaluate")
    parser.add_argument("--scenes", type=int, default=64, help="held-out REC questions")
    parser.add_argument("--out", default="/tmp/grounding_probe", help="run folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--label", default="", help="name of this run in the results file")
    parser.add_argument("--image-token-scale", type=float, default=None,
                        help="train a copy of the config's model preset with this scale, e.g. 1.0")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from sphinx_train import SphinxModel
    from sphinx_train.training.config import load_config
    from sphinx_train.training.loop import fit

    rows = held_out_questions(args.scenes)
    base = baselines(rows)
    config = load_config(args.config, args.set)
    if args.image_token_scale is not None:
        import dataclasses

        from sphinx_train.presets import get_model_preset, register_model_preset

        variant = f"{config.model.preset}-scale-{args.image_token_scale:g}"
        preset = get_model_preset(config.model.preset)
        register_model_preset(
            variant, dataclasses.replace(preset, image_token_scale=args.image_token_scale),
            overwrite=True,
        )
        config.model.preset = variant
    lines = [
        f"## {args.label or args.config} {' '.join(args.set)}",
        f"load average at start: {os.getloadavg()[0]:.1f} (2 cores); torch threads {args.threads}",
        f"baselines on {len(rows)} held-out 2-4 object scenes: "
        + ", ".join(f"{k} {v:.3f}" for k, v in base.items()),
        "",
        "| steps | train s | samples/s | REC Acc@0.5 | minus best baseline |",
        "|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    trained = 0.0
    per_step = sum(stream.per_step for stream in config.data.streams)
    for steps in [int(s) for s in args.steps.split(",")]:
        began = time.perf_counter()
        fit(config, args.out, max_steps=steps)
        trained += time.perf_counter() - began
        model = SphinxModel.from_pretrained(Path(args.out) / "final")
        model.eval()
        with torch.no_grad():
            accuracy = rec_accuracy(model, rows)
        rate = per_step * steps / trained
        line = (f"| {steps} | {trained:.0f} | {rate:.1f} | {accuracy:.3f} | "
                f"{accuracy - max(base.values()):+.3f} |")
        lines.append(line)
        print(line, flush=True)
    results = Path(__file__).resolve().parents[1] / "results" / "grounding_probe.md"
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as handle:
        handle.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
