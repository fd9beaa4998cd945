"""The task registry: what a benchmark needs to run (loader, prompt, decoding length, parser,
scorer, splits), registered by name as timm registers models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sphinx_train._house import Registry


@dataclass
class EvalSample:
    """One benchmark question. ``image`` is a file path, raw bytes (TSV benchmarks) or None;
    ``target`` and ``meta`` are plain JSON values used by the scorer."""

    id: str
    question: str
    image: str | bytes | None
    target: Any
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    """The user turn and any text that opens the assistant's answer (ScienceQA's
    " The answer is"), built from a sample."""

    name: str
    build: Callable[[EvalSample], tuple[str, str]]


@dataclass(frozen=True)
class EvalTask:
    """A benchmark. ``loader(data, images, split)`` reads the official local files;
    ``parser(sample, answer, variant)`` turns an answer into a JSON value;
    ``scorer(samples, parsed, variant)`` gives (metrics, one score per sample)."""

    loader: Callable[[Path, Path | None, str], list[EvalSample]]
    prompts: Sequence[Prompt]  # the first is the default (the reference's strings)
    max_new_tokens: int
    parser: Callable[[EvalSample, str, str], Any]
    scorer: Callable[[Sequence[EvalSample], Sequence[Any], str], tuple[dict, list[float]]]
    splits: tuple[str, ...]
    variants: tuple[str, ...] = ("official",)
    description: str = ""

    def prompt(self, name: str | None = None) -> Prompt:
        if name is None:
            return self.prompts[0]
        for prompt in self.prompts:
            if prompt.name == name:
                return prompt
        known = ", ".join(p.name for p in self.prompts)
        raise ValueError(f"unknown prompt {name!r}; this task has {known}")


TASKS: Registry[EvalTask] = Registry("evaluation task")


def register_task(name: str, task: EvalTask, overwrite: bool = False) -> EvalTask:
    return TASKS.register(name, task, overwrite=overwrite)


def list_tasks(pattern: str | None = None) -> list[str]:
    return TASKS.names(pattern)


def get_task(name: str) -> EvalTask:
    return TASKS.get(name)
