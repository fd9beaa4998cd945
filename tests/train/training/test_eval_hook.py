"""``logging.eval_tasks``: fit scores generation benchmarks every ``eval_every`` steps,
through the evaluation runner (the same numbers as ``sphinx-train eval`` would write)."""

from __future__ import annotations

import json

import pytest
import torch.distributed as dist
from PIL import Image

from sphinx_train.evaluation import EvalSample, EvalTask, Prompt, register_task
from sphinx_train.training.config import ConfigError, load_config
from sphinx_train.training.loop import Trainer

pytestmark = pytest.mark.slow

SMALL = ["logging.progress=false", "data.preflight_samples=0", "schedule.total_steps=2",
         "data.streams.0.per_step=2", "data.streams.1.per_step=2", "logging.eval_every=2"]


def register_colour_task(folder):
    """Four plain-colour pictures asked for their colour (the docs' "your own benchmark")."""
    colours = {"red": (220, 20, 20), "green": (20, 200, 40), "blue": (20, 40, 220),
               "white": (250, 250, 250)}
    for name, rgb in colours.items():
        Image.new("RGB", (64, 48), rgb).save(folder / f"{name}.png")

    def load(data, images, split):
        return [EvalSample(name, "What colour is it?", str(folder / f"{name}.png"), name)
                for name in colours]

    def score(samples, parsed, variant):
        scores = [float(p == s.target) for s, p in zip(samples, parsed, strict=True)]
        return {"accuracy": 100.0 * sum(scores) / len(scores)}, scores

    register_task("test-colour", EvalTask(
        load, [Prompt("short", lambda s: (s.question, ""))], max_new_tokens=3,
        parser=lambda sample, answer, variant: answer.strip().lower(), scorer=score,
        splits=("heldout",)), overwrite=True)


def test_fit_logs_generation_scores_of_the_eval_tasks(tmp_path):
    data = tmp_path / "colours"
    data.mkdir()
    register_colour_task(data)
    config = load_config("nano-stage1", [
        *SMALL, f"logging.eval_tasks=[{{task: test-colour, data: {data}}}]"])
    try:
        Trainer(config, tmp_path / "run").run()
    finally:
        dist.destroy_process_group()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    scored = [json.loads(line) for line in lines if "eval/" in line]
    assert [record["step"] for record in scored] == [0, 2]  # the start, then every 2 steps
    for record in scored:
        written = json.loads((tmp_path / "run" / "eval" / f"step-{record['step']}" /
                              "test-colour" / "results.json").read_text())
        accuracy = written["test-colour"]["heldout"]["accuracy"]
        assert record["eval/test-colour/heldout/accuracy"] == accuracy
        assert written["test-colour"]["heldout"]["n"] == 4


def test_an_unknown_eval_task_is_refused_before_training(tmp_path):
    config = load_config("nano-stage1", [*SMALL, "logging.eval_tasks=[{task: no-such-task}]"])
    with pytest.raises(ConfigError, match=r"^logging.eval_tasks.0.task: .*no-such-task"):
        try:
            Trainer(config, tmp_path / "run").setup()
        finally:
            dist.destroy_process_group()
    assert not (tmp_path / "run").exists()
