"""Each runner end to end on tiny fixtures in the official layouts, with sphinx-nano."""

from __future__ import annotations

import json
import re

import pytest

from sphinx_train.evaluation import EvalOptions, run_eval


def run(nano, task, data, tmp_path, images=None, **options):
    out = tmp_path / f"out-{task}"
    results = run_eval(nano, EvalOptions(task=task, data=data, images=images, out=out,
                                         progress=False, **options))  # fmt: skip
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert json.loads((out / "results.json").read_text()) == results
    assert (out / "results.md").read_text().startswith(f"# {task}")
    return results[task], samples


def official_pope(text):
    # RUCAIBox/POPE evaluate.py
    if text.find(".") != -1:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if "No" in words or "not" in words or "no" in words else "yes"


def test_pope(nano, pope_data, tmp_path):
    data, images = pope_data
    results, samples = run(nano, "pope", data, tmp_path, images, splits=["random"])
    labels = {str(i + 1): "yes" if i % 2 else "no" for i in range(6)}
    read = [official_pope(s["answer"]) for s in samples]
    truth = [labels[s["id"]] for s in samples]
    tp = sum(r == t == "yes" for r, t in zip(read, truth, strict=True))
    tn = sum(r == t == "no" for r, t in zip(read, truth, strict=True))
    split = results["random"]
    assert split["n"] == 6
    assert split["accuracy"] == pytest.approx(100 * (tp + tn) / 6)
    assert split["yes_ratio"] == pytest.approx(100 * read.count("yes") / 6)
    assert [s["id"] for s in samples] == [str(i) for i in range(1, 7)]
    assert samples[0]["prompt"].count("Answer the question using a single word or phrase.") == 1




def test_unknown_split_and_variant(nano, pope_data, tmp_path):
    data, images = pope_data
    with pytest.raises(ValueError, match="no split 'val'"):
        run_eval(nano, EvalOptions(task="pope", data=data, out=tmp_path / "o", splits=["val"]))
    with pytest.raises(ValueError, match="variant"):
        run_eval(nano, EvalOptions(task="pope", data=data, out=tmp_path / "o", variant="x"))
    assert re  # keep the import for the REC test below
