"""Batch invariance, interrupted runs that resume, rank sharding, the CLI."""

from __future__ import annotations

import json

import pytest

from sphinx_train.evaluation import DecodeSettings, EvalOptions, decode, run_eval


def test_batched_answers_equal_batch_one(nano, pope_data):
    from sphinx_train.evaluation.registry import get_task
    from sphinx_train.evaluation.runner import _render

    data, images = pope_data
    task = get_task("pope")
    samples = task.loader(data, images, "random")
    # different prompt lengths, so the batch really is left-padded
    samples[2].question += " Look closely at the whole picture please."
    prompts = [_render(nano, s, task.prompt())[0] for s in samples]
    keys = [s.id for s in samples]
    for temperature in (0.0, 0.1, 1.0):
        settings = DecodeSettings(12, temperature=temperature, top_p=0.75)
        one = [decode(nano, [p], [s.image], [k], settings)[0]
               for p, s, k in zip(prompts, samples, keys, strict=True)]  # fmt: skip
        batched = decode(nano, prompts, [s.image for s in samples], keys, settings)
        assert batched == one
    assert len(set(one)) > 1  # sampling at temperature 1 gives different answers


def _options(data, images, tmp_path, name, **extra):
    return EvalOptions(task="pope", data=data, images=images, out=tmp_path / name,
                       cache=tmp_path / f"{name}.cache", batch_size=2, progress=False,
                       splits=["random"], **extra)  # fmt: skip


def test_interrupted_run_resumes_without_regenerating(nano, pope_data, tmp_path):
    data, images = pope_data
    generated: list[str] = []

    def stop_after_two_batches(ids):
        generated.extend(ids)
        if len(generated) >= 4:
            raise KeyboardInterrupt

    options = _options(data, images, tmp_path, "run")
    with pytest.raises(KeyboardInterrupt):
        run_eval(nano, options, on_batch=stop_after_two_batches)
    assert not options.out.exists()  # nothing partial
    first = list(generated)
    # resume on two ranks: rank 1 first, then rank 0 merges
    for rank in (1, 0):
        resumed = _options(data, images, tmp_path, "run", rank=rank, world_size=2)
        run_eval(nano, resumed, on_batch=generated.extend)
    assert sorted(generated) == sorted(str(i) for i in range(1, 7))  # each sample exactly once
    assert len(first) == 4
    lines = (options.cache_folder / "responses-rank0.jsonl").read_text().splitlines()
    assert all(json.loads(line)["answer"] is not None for line in lines)


def test_two_ranks_merge_equals_one_rank(nano, pope_data, tmp_path):
    data, images = pope_data
    single = run_eval(nano, _options(data, images, tmp_path, "one"))
    assert run_eval(nano, _options(data, images, tmp_path, "two", rank=1, world_size=2)) is None
    merged = run_eval(nano, _options(data, images, tmp_path, "two", rank=0, world_size=2))
    assert merged == single
    read = [(tmp_path / name / "samples.jsonl").read_text() for name in ("one", "two")]
    assert read[0] == read[1]


def test_a_cut_cache_line_is_ignored(nano, pope_data, tmp_path):
    data, images = pope_data
    options = _options(data, images, tmp_path, "cut", limit=2)
    run_eval(nano, options)
    path = options.cache_folder / "responses-rank0.jsonl"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # killed mid-write
    generated: list[str] = []
    run_eval(nano, _options(data, images, tmp_path, "cut", limit=2, overwrite=True),
             on_batch=generated.extend)  # fmt: skip
    assert generated == ["2"]


def test_cli_list_and_errors(capsys, tmp_path, nano_folder, pope_data):
    from sphinx_train.cli import main

    assert main(["eval", "--list"]) == 0
    assert "refcoco+" in capsys.readouterr().out
    assert main(["eval", "--model", str(nano_folder), "--task", "nope", "--data", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 1  # fmt: skip
    error = capsys.readouterr().err.strip()
    assert error.startswith("sphinx-train eval: error: unknown evaluation task 'nope'")
    assert "\n" not in error
    data, images = pope_data
    out = tmp_path / "cli-out"
    assert main(["eval", "--model", str(nano_folder), "--task", "pope", "--split", "random",
                 "--data", str(data), "--images", str(images), "--limit", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    assert json.loads((out / "results.json").read_text())["pope"]["random"]["n"] == 2
    assert "scorer variant: `official`" in (out / "results.md").read_text()
