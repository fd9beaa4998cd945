"""``sphinx-train eval``: generate (sharded by rank, batched, cached), merge, score, report.

Ranks share nothing but the cache folder: each answers the samples ``i % world == rank``
that the cache lacks and appends them to its own file; rank 0 then waits until the cache
holds every sample, merges in the loader's order and writes ``OUT``. No collective call, so
the result does not depend on the number of ranks or on the order they finish in.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sphinx_train._house import staged_dir
from sphinx_train.evaluation.cache import ResponseWriter, read_responses, response_key
from sphinx_train.evaluation.decoding import (
    GENERATION_PRESET,
    REFERENCE_EVAL,
    DecodeSettings,
    decode,
)
from sphinx_train.evaluation.registry import EvalSample, get_task

OUTPUT_FILES = ("results.json", "results.md", "samples.jsonl")


@dataclass
class EvalOptions:
    task: str
    data: Path
    out: Path
    splits: list[str] | None = None
    images: Path | None = None
    limit: int | None = None
    batch_size: int = 8
    prompt: str | None = None
    variant: str | None = None
    cache: Path | None = None  # default: OUT beside, named OUT.cache
    temperature: float = REFERENCE_EVAL["temperature"]
    top_p: float = REFERENCE_EVAL["top_p"]
    seed: int = REFERENCE_EVAL["seed"]
    rank: int = 0
    world_size: int = 1
    overwrite: bool = False
    progress: bool = True
    merge_timeout: float = 24 * 3600.0

    @property
    def cache_folder(self) -> Path:
        return self.cache or self.out.with_name(self.out.name + ".cache")


def model_fingerprint(model) -> str:
    """A short hash of the config and of a strided sample of every weight (cheap at 13B,
    changes when any tensor is retrained or converted differently)."""
    import torch

    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        stride = max(1, flat.numel() // 4096)
        sample = flat[::stride].to("cpu", torch.float32).contiguous()
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def _render(model, sample: EvalSample, prompt) -> tuple[str, str]:
    from sphinx_tasks import get_template

    user, prefix = prompt.build(sample)
    rendered = get_template(model.config.template).render(
        [{"role": "user", "content": user}], add_generation_prompt=True
    )
    return rendered.text + prefix, prefix


def _wait_for(folder: Path, keys: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        found = read_responses(folder)
        missing = sum(key not in found for key in keys)
        if not missing:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"{folder}: {missing} answers still missing after {timeout:.0f} s")
        time.sleep(2.0)


def _progress(total: int, enabled: bool, label: str):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, desc=label, unit="sample", dynamic_ncols=True)


def load_samples(task, options: EvalOptions, split: str) -> list[EvalSample]:
    """The split's samples; text that is not UTF-8, absurd nesting or no sample at all is one
    line naming the data, never a traceback or an empty score."""
    try:
        samples = task.loader(Path(options.data), options.images, split)
    except UnicodeDecodeError as error:
        raise ValueError(f"{options.data}: not UTF-8 text (byte {error.start})") from None
    except RecursionError:
        raise ValueError(f"{options.data}: JSON nested too deeply to be a benchmark file") from None
    if not samples:
        raise ValueError(f"{options.data}: no {options.task} samples for split {split!r}")
    return samples


def evaluate_split(model, options: EvalOptions, split: str, fingerprint: str,
                   on_batch: Callable[[list[str]], None] | None = None):  # fmt: skip
    """Answer (or read from the cache) one split; rank 0 returns (samples, answers, prompts)."""
    task = get_task(options.task)
    samples = load_samples(task, options, split)
    if options.limit is not None:
        samples = samples[: options.limit]
    prompt = task.prompt(options.prompt)
    settings = DecodeSettings(task.max_new_tokens, options.temperature, options.top_p,
                              REFERENCE_EVAL["stop"], options.seed)  # fmt: skip
    rendered = [_render(model, sample, prompt) for sample in samples]
    keys = [response_key(options.task, split, s.id, text, settings.as_dict(), fingerprint)
            for s, (text, _) in zip(samples, rendered, strict=True)]  # fmt: skip
    folder = options.cache_folder
    cached = read_responses(folder)
    mine = [i for i in range(len(samples))
            if i % options.world_size == options.rank and keys[i] not in cached]  # fmt: skip
    if mine:
        writer = ResponseWriter(folder, options.rank)
        bar = _progress(len(mine), options.progress, f"{options.task}/{split}")
        try:
            for start in range(0, len(mine), options.batch_size):
                rows = mine[start : start + options.batch_size]
                answers = decode(model, [rendered[i][0] for i in rows],
                                 [samples[i].image for i in rows], [keys[i] for i in rows],
                                 settings)  # fmt: skip
                writer.write([{"key": keys[i], "task": options.task, "split": split,
                               "id": samples[i].id, "answer": answer}
                              for i, answer in zip(rows, answers, strict=True)])  # fmt: skip
                if on_batch is not None:
                    on_batch([samples[i].id for i in rows])
                bar.update(len(rows))
        finally:
            bar.close()
            writer.close()
    if options.rank != 0:
        return None
    found = _wait_for(folder, keys, options.merge_timeout)
    return samples, [found[key] for key in keys], rendered, prompt.name, settings


def score_split(task_name: str, samples, answers, rendered, variant: str, tiling: str):
    task = get_task(task_name)
    for sample, (_, prefix) in zip(samples, rendered, strict=True):
        sample.meta["prefix"], sample.meta["tiling"] = prefix, tiling
    parsed = [task.parser(s, a, variant) for s, a in zip(samples, answers, strict=True)]
    result, scores = task.scorer(samples, parsed, variant)
    result["n"] = len(samples)
    return result, parsed, scores


def run_eval(model, options: EvalOptions, on_batch=None) -> dict | None:
    """Evaluate one task on its splits; rank 0 writes OUT and returns the results."""
    task = get_task(options.task)
    variant = options.variant or task.variants[0]
    if variant not in task.variants:
        raise ValueError(f"task {options.task!r} has no scorer variant {variant!r}; "
                         f"expected one of {', '.join(task.variants)}")  # fmt: skip
    splits = options.splits or list(task.splits)
    for split in splits:
        if split not in task.splits:
            raise ValueError(f"task {options.task!r} has no split {split!r}; "
                             f"expected one of {', '.join(task.splits)}")  # fmt: skip
    fingerprint = model_fingerprint(model)
    results: dict = {options.task: {}}
    records, settings_used, prompt_name = [], None, None
    for split in splits:
        merged = evaluate_split(model, options, split, fingerprint, on_batch)
        if merged is None:
            continue
        samples, answers, rendered, prompt_name, settings_used = merged
        result, parsed, scores = score_split(options.task, samples, answers, rendered, variant,
                                             model.config.tiling)  # fmt: skip
        results[options.task][split] = result
        for sample, (text, _), answer, value, score in zip(samples, rendered, answers, parsed,
                                                          scores, strict=True):  # fmt: skip
            records.append({"task": options.task, "split": split, "id": sample.id,
                            "prompt": text, "answer": answer, "parsed": value,
                            "score": score})  # fmt: skip
    if options.rank != 0:
        return None
    info = {"task": options.task, "prompt": prompt_name, "variant": variant, "model": fingerprint,
            "generation": {"preset": GENERATION_PRESET, **settings_used.as_dict()}, "date": datetime.datetime.now(
                datetime.UTC).isoformat(timespec="seconds")}  # fmt: skip
    _write_outputs(options, results, records, info)
    return results


def _markdown(results: dict, info: dict) -> str:
    lines = [f"# {info['task']}", "",
             f"- prompt: `{info['prompt']}`; scorer variant: `{info['variant']}`",
             f"- model fingerprint: `{info['model']}`; generation: `{json.dumps(info['generation'])}`",
             f"- date (UTC): {info['date']}", "", "| split | metric | value |", "|---|---|---|"]  # fmt: skip
    for split, metrics in results[info["task"]].items():
        for name, value in metrics.items():
            shown = value if isinstance(value, int) else f"{value:.2f}"
            lines.append(f"| {split} | {name} | {shown} |")
    return "\n".join(lines) + "\n"


def _write_outputs(options: EvalOptions, results: dict, records: list[dict], info: dict) -> None:
    inputs = [options.data] + ([options.images] if options.images else [])
    with staged_dir(options.out, inputs, overwrite=options.overwrite, owns=OUTPUT_FILES) as stage:
        payload = dict(results)
        (stage / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
        (stage / "results.md").write_text(_markdown(results, info))
        with open(stage / "samples.jsonl", "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
