"""Samples per second of ``sphinx-train eval`` at batch 8 against a batch-1 loop (the way
LLaVA's model_vqa_loader runs, which asserts batch size 1), same answers required.

    uv run python benchmarks/eval/bench_eval.py [--samples 48] [--threads 2]

sphinx-nano with random weights on a POPE-layout fixture (the real file layout, 96x64 images).
Prints a table and writes benchmarks/results/eval.md, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sphinx_train import create_model
from sphinx_train.evaluation import EvalOptions, run_eval

RESULTS = Path(__file__).resolve().parents[1] / "results" / "eval.md"


def write_pope(root: Path, count: int) -> tuple[Path, Path]:
    data, images = root / "pope", root / "val2014"
    data.mkdir()
    images.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        name = f"COCO_val2014_{i:012d}.jpg"
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(images / name)
        lines.append(json.dumps({"question_id": i, "image": name, "label": "yes",
                                 "text": f"Is there a {['cat', 'dog', 'red car'][i % 3]} here?"}))  # fmt: skip
    (data / "coco_pope_random.json").write_text("\n".join(lines) + "\n")
    return data, images


def timed_run(model, data, images, root: Path, batch_size: int) -> tuple[float, list[str]]:
    out = root / f"out-b{batch_size}"
    options = EvalOptions(task="pope", data=data, images=images, out=out, splits=["random"],
                          batch_size=batch_size, progress=False)  # fmt: skip
    start = time.perf_counter()
    run_eval(model, options)
    seconds = time.perf_counter() - start
    answers = [json.loads(line)["answer"] for line in (out / "samples.jsonl").open()]
    return seconds, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("sphinx-nano").eval()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data, images = write_pope(root, args.samples)
        (root / "warm").mkdir()
        timed_run(model, data, images, root / "warm", 8)  # imports and first-call costs
        load_before = os.getloadavg()[0]
        one, answers_one = timed_run(model, data, images, root, 1)
        eight, answers_eight = timed_run(model, data, images, root, 8)
        load_after = os.getloadavg()[0]
    same = answers_one == answers_eight
    rows = [("batch-1 loop (peer)", one), ("eval --batch-size 8", eight)]
    lines = [
        f"# sphinx-train eval throughput ({platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads {args.threads}, load average {load_before:.1f} -> {load_after:.1f})",
        "",
        f"sphinx-nano (random weights), POPE layout, {args.samples} samples, 10 new tokens max, "
        "reference-eval sampling (temperature 0.1, top-p 0.75), per-sample seeds.",
        "",
        "| run | seconds | samples/s |",
        "|---|---|---|",
        *[f"| {name} | {sec:.2f} | {args.samples / sec:.1f} |" for name, sec in rows],
        "",
        f"speed-up: {one / eight:.2f}x; identical answers: {same}",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
