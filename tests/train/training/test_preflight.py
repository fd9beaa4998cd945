"""The pre-flight report of ``fit``: samples truncated or dropped, and why, before step 1;
and the running counts of both in metrics.jsonl during training."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml
from PIL import Image

from .conftest import read_jsonl, run_fit

pytestmark = pytest.mark.slow


def image_folder(folder, count):
    folder.mkdir()
    for index in range(count):
        Image.new("RGB", (64, 48), (40 * index, 90, 200)).save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(f"a blue picture number {index}")
    return str(folder)


def test_fit_reports_truncated_and_dropped_samples(tmp_path):
    has_tensorboard = importlib.util.find_spec("tensorboard") is not None
    long_text = "the red square is left of the blue circle " * 200  # far past 400 tokens
    texts = ["a short line", long_text, "another short line", long_text]
    (tmp_path / "text.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    config = {
        "model": {"preset": "sphinx-nano", "tiling": "sphinx"},
        "data": {"max_length": 400, "streams": [
            {"name": "captions", "per_step": 2, "sources": [
                {"name": "small", "kind": "image-jsonl",
                 "path": image_folder(tmp_path / "small", 2)},
                # 1k tiling: 5 views x 291 tokens = 1455 image tokens, more than max_length
                {"name": "big", "kind": "image-jsonl", "tiling": "sphinx-1k",
                 "path": image_folder(tmp_path / "big", 2)}]},
            {"name": "text", "per_step": 2, "sources": [
                {"name": "text", "kind": "text-jsonl", "path": str(tmp_path / "text.jsonl")}]},
        ]},
        "schedule": {"total_steps": 2, "warmup_steps": 1},
        "logging": {"progress": False, "tensorboard": has_tensorboard, "every": 1,
                    "samples": True},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_fit(path, tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    dropped = "dropped: its 1455 image tokens alone exceed max_length 400"
    assert json.loads((tmp_path / "run" / "preflight.json").read_text()) == {
        "small": {"checked": 2, "kept whole": 2},
        "big": {"checked": 2, dropped: 2},
        "text": {"checked": 4, "kept whole": 2, "truncated to max_length": 2},
    }
    assert f"pre-flight big: 2 {dropped} (of the first 2)" in result.stderr
    assert "pre-flight text: 2 truncated to max_length (of the first 4)" in result.stderr
    assert "pre-flight small" not in result.stderr
    metrics = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    # every "big" draw is dropped, every odd "text" row (the long ones) truncated
    truncated = dropped = 0
    for metric, logged in zip(metrics, read_jsonl(tmp_path / "run" / "samples.jsonl"),
                              strict=True):
        dropped += sum(name == "big" for name, _ in logged["samples"])
        truncated += sum(name == "text" and index % 2 for name, index in logged["samples"])
        assert (metric["samples_truncated"], metric["samples_dropped"]) == (truncated, dropped)
    assert truncated and dropped  # the draw (seed 0) hits both kinds
    if has_tensorboard:  # the same step's loss as a TensorBoard scalar
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
        events.Reload()
        scalars = events.Scalars("loss")
        assert [scalar.step for scalar in scalars] == [1, 2]
        for scalar, metric in zip(scalars, metrics, strict=True):
            assert scalar.value == pytest.approx(metric["loss"], rel=1e-6)
