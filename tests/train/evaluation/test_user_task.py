"""A task registered by a user (a loader reading a JSONL of synthetic scenes, its own prompt,
parser and scorer) runs through the runner and through ``sphinx-train eval --tasks-module``."""

from __future__ import annotations

import importlib
import json

import pytest
from PIL import Image, ImageDraw

from .conftest import run_with_answers

# What a user writes: the module the CLI imports with --tasks-module scene_tasks.
SCENE_TASKS = """
import json
from pathlib import Path

from sphinx_train.evaluation import EvalSample, EvalTask, Prompt, register_task


def load(data, images, split):
    rows = [json.loads(line) for line in (Path(data) / f"{split}.jsonl").open() if line.strip()]
    return [EvalSample(row["id"], row["question"], str(Path(data) / row["image"]), row["answer"])
            for row in rows]


def parse(sample, answer, variant):
    return answer.strip().lower()


def score(samples, parsed, variant):
    scores = [float(p == s.target) for s, p in zip(samples, parsed)]
    return {"accuracy": 100.0 * sum(scores) / len(scores)}, scores


register_task("scene-colour", EvalTask(
    load, [Prompt("short", lambda s: (s.question + " Answer with one word.", ""))], 6, parse,
    score, splits=("heldout",), description="colour of the one shape in a synthetic scene"),
    overwrite=True)
"""
COLOURS = ["red", "green", "blue", "red"]


@pytest.fixture
def scenes(tmp_path, monkeypatch):
    """Four synthetic scenes (one coloured square each) and the user's task module."""
    data = tmp_path / "scenes"
    (data / "images").mkdir(parents=True)
    with open(data / "heldout.jsonl", "w") as handle:
        for i, colour in enumerate(COLOURS):
            image = Image.new("RGB", (80, 64), "white")
            ImageDraw.Draw(image).rectangle([10 + 5 * i, 12, 40 + 5 * i, 44], fill=colour)
            image.save(data / "images" / f"scene{i}.png")
            handle.write(json.dumps({"id": f"s{i}", "image": f"images/scene{i}.png",
                                     "question": "What colour is the square?",
                                     "answer": colour}) + "\n")  # fmt: skip
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "scene_tasks.py").write_text(SCENE_TASKS)
    monkeypatch.syspath_prepend(str(modules))
    return data


def check_outputs(out):
    results = json.loads((out / "results.json").read_text())["scene-colour"]["heldout"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == ["s0", "s1", "s2", "s3"]
    assert all(s["prompt"].count("What colour is the square? Answer with one word.") == 1
               for s in samples)  # fmt: skip
    answers = [s["answer"].strip().lower() for s in samples]
    right = [a == colour for a, colour in zip(answers, COLOURS, strict=True)]
    assert results == {"accuracy": pytest.approx(100 * sum(right) / 4), "n": 4}
    assert "prompt: `short`" in (out / "results.md").read_text()


def test_registered_task_runs_through_the_runner(nano, scenes, tmp_path):
    importlib.import_module("scene_tasks")
    answers = {"s0": " Red", "s1": "blue", "s2": "blue", "s3": "red."}  # right, wrong, right, wrong
    result, samples = run_with_answers(nano, "scene-colour", "heldout", scenes, None, tmp_path,
                                       answers)  # fmt: skip
    assert result == {"accuracy": 50.0, "n": 4}
    assert [samples[i]["parsed"] for i in answers] == ["red", "blue", "blue", "red."]
    check_outputs(tmp_path / "out-scene-colour")


def test_registered_task_runs_through_the_cli(capsys, nano_folder, scenes, tmp_path):
    from sphinx_train.cli import main

    assert main(["eval", "--tasks-module", "scene_tasks", "--list"]) == 0
    assert "scene-colour" in capsys.readouterr().out
    out = tmp_path / "cli-out"
    assert main(["eval", "--tasks-module", "scene_tasks", "--model", str(nano_folder),
                 "--task", "scene-colour", "--data", str(scenes), "--out", str(out)]) == 0  # fmt: skip
    check_outputs(out)


def test_a_missing_tasks_module_is_one_line(capsys):
    from sphinx_train.cli import main

    assert main(["eval", "--tasks-module", "no_such_tasks_module", "--list"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("sphinx-train eval: error: --tasks-module no_such_tasks_module")
    assert "\n" not in error
