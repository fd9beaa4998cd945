"""The operations: linear mix, task arithmetic, uniform and greedy soups.

Each takes checkpoints (paths, folders or in-memory state dicts) and either writes a
sharded safetensors folder (``out`` given, returns its path) or returns a state dict.
Keyword options are those of :class:`~sphinx_mix.options.MixOptions`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch

from .checkpoint import Source
from .engine import Formula, run_mix
from .errors import MixError
from .options import MixOptions
from .selection import WeightRule, make_selection

Rules = Sequence[WeightRule | tuple[str, Sequence[float]]] | None
StateDict = dict[str, torch.Tensor]


def linear(
    sources: Sequence[Source],
    weights: Sequence[float] | Callable[[str], Sequence[float]] | None = None,
    out: str | Path | None = None,
    *,
    beta: float | None = None,
    normalize: bool = True,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    rules: Rules = None,
    **options,
) -> StateDict | Path:
    """``sum_i w_i * theta_i``; with two sources ``beta`` gives ``beta*theta_0 + (1-beta)*theta_1``.

    ``weights`` may also be a function of the key returning one weight per source.
    Weights (and each rule's weights) are divided by their sum unless ``normalize=False``,
    in which case a warning says when they do not sum to 1. Keys outside ``include`` or
    inside ``exclude`` are copied from the first source.
    """
    count = len(sources)
    requested = make_selection(include, exclude, rules, count)
    selection = replace(
        requested,
        rules=tuple(
            WeightRule(
                rule.pattern, _normalised(rule.coefficients, normalize, f"rule {rule.pattern!r}")
            )
            for rule in requested.rules
        ),
    )
    if callable(weights):
        if beta is not None:
            raise MixError("give either weights or beta, not both")
        per_key = _PerKeyWeights(weights, count, normalize)
        coefficients_for = partial(_key_coefficients, selection, per_key)
        recorded: object = "per key"
    else:
        default = _normalised(_resolve_weights(count, weights, beta), normalize, "weights")
        coefficients_for = partial(selection.coefficients_for, default=default)
        recorded = list(default)
    description = {
        "operation": "linear",
        "weights": recorded,
        "normalize": normalize,
        **_selection_record(selection),
    }
    return run_mix(
        sources, Formula("linear", coefficients_for, description), out, MixOptions(**options)
    )


class _PerKeyWeights:
    """Weights computed from the key (e.g. mergekit filters), checked and normalised once each."""

    def __init__(self, function: Callable[[str], Sequence[float]], count: int, normalize: bool):
        self._function = function
        self._count = count
        self._normalize = normalize
        self._seen: dict[tuple[float, ...], tuple[float, ...]] = {}

    def __call__(self, key: str) -> tuple[float, ...]:
        weights = tuple(float(weight) for weight in self._function(key))
        if len(weights) != self._count:
            raise MixError(f"{key}: got {len(weights)} weights for {self._count} sources")
        if weights not in self._seen:
            self._seen[weights] = _normalised(weights, self._normalize, f"weights {list(weights)}")
        return self._seen[weights]


def _key_coefficients(selection, per_key: _PerKeyWeights, key: str) -> tuple[float, ...] | None:
    if not selection.is_mixed(key):
        return None
    return selection.coefficients_for(key, default=per_key(key))


def task_arithmetic(
    base: Source,
    sources: Sequence[Source],
    scales: Sequence[float] | float = 1.0,
    out: str | Path | None = None,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    rules: Rules = None,
    **options,
) -> StateDict | Path:
    """``base + sum_i lambda_i * (theta_i - base)``: add scaled task vectors to a base model.

    Keys outside the selection are copied from ``base``; rules give per-pattern scales.
    """
    count = len(sources)
    if count == 0:
        raise MixError("task_arithmetic needs at least one source besides the base")
    scales = (
        [float(scales)] * count if isinstance(scales, int | float) else [float(s) for s in scales]
    )
    if len(scales) != count:
        raise MixError(f"got {len(scales)} scales for {count} sources; expected one per source")
    _finite(scales, "scales")
    selection = make_selection(include, exclude, rules, count, label="scales")
    coefficients_for = partial(selection.coefficients_for, default=tuple(scales))

    description = {
        "operation": "task_arithmetic",
        "base": _label(base),
        "scales": scales,
        **_selection_record(selection),
    }
    formula = Formula("task", coefficients_for, description)
    return run_mix([base, *sources], formula, out, MixOptions(**options))


def uniform_soup(
    candidates: Sequence[Source], out: str | Path | None = None, **options
) -> StateDict | Path:
    """The plain average of all candidates (the model-soups paper's uniform soup)."""
    if not candidates:
        raise MixError("uniform_soup needs at least one candidate")
    return linear(candidates, [1.0] * len(candidates), out, **options)


@dataclass(frozen=True)
class SoupStep:
    """One greedy-soup trial: the candidate, the soup's score with it, and whether it stayed."""

    candidate: str
    score: float
    kept: bool


@dataclass
class GreedySoupResult:
    """Which candidates made it into the soup, every score seen, and the soup itself."""

    kept: list[str]
    individual_scores: dict[str, float]
    steps: list[SoupStep]
    score: float
    soup: StateDict | Path


def greedy_soup(
    candidates: Sequence[Source],
    evaluate: Callable[[StateDict], float],
    out: str | Path | None = None,
    **options,
) -> GreedySoupResult:
    """Greedy soup (Wortsman et al., 2022): higher ``evaluate`` scores are better.

    Candidates are scored alone and tried best first; each is kept only if the uniform
    average of the kept ones plus it scores at least as well as without it. ``evaluate``
    receives in-memory state dicts, so every trial soup is materialised once.
    """
    if not candidates:
        raise MixError("greedy_soup needs at least one candidate")
    labels = [_label(candidate, index) for index, candidate in enumerate(candidates)]
    quiet = {**options, "progress": False}
    individual = {}
    for label, candidate in zip(labels, candidates, strict=True):
        individual[label] = _score(evaluate, uniform_soup([candidate], **quiet), label)
    order = sorted(range(len(candidates)), key=lambda i: individual[labels[i]], reverse=True)
    kept = [order[0]]
    best = individual[labels[order[0]]]
    steps = [SoupStep(labels[order[0]], best, True)]
    for index in order[1:]:
        trial = uniform_soup([candidates[i] for i in [*kept, index]], **quiet)
        score = _score(evaluate, trial, labels[index])
        keep = score >= best
        steps.append(SoupStep(labels[index], score, keep))
        if keep:
            kept.append(index)
            best = score
    chosen = [candidates[i] for i in kept]
    soup = (
        uniform_soup(chosen, out, **options) if out is not None else uniform_soup(chosen, **quiet)
    )
    return GreedySoupResult([labels[i] for i in kept], individual, steps, best, soup)


def _score(evaluate: Callable[[StateDict], float], state_dict: StateDict, label: str) -> float:
    score = float(evaluate(state_dict))
    if math.isnan(score):
        raise MixError(f"evaluate returned NaN for the soup with {label}")
    return score


def _resolve_weights(
    count: int, weights: Sequence[float] | None, beta: float | None
) -> list[float]:
    if count == 0:
        raise MixError("linear needs at least one source")
    if beta is not None:
        if weights is not None:
            raise MixError("give either weights or beta, not both")
        if count != 2:
            raise MixError(f"beta mixes exactly two sources; got {count}")
        _finite([float(beta)], "beta")
        return [float(beta), 1.0 - float(beta)]
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise MixError(f"got {len(weights)} weights for {count} sources; expected one per source")
    return [float(weight) for weight in weights]


def _finite(values: Sequence[float], what: str) -> None:
    for value in values:
        if not math.isfinite(value):
            raise MixError(f"{what}: {value!r} is not a finite number")


def _normalised(weights: Sequence[float], normalize: bool, what: str) -> tuple[float, ...]:
    _finite(weights, what)
    total = math.fsum(weights)
    if normalize:
        if total == 0:
            raise MixError(f"{what} sum to 0 and cannot be normalised")
        return tuple(weight / total for weight in weights)
    if not math.isclose(total, 1.0, rel_tol=1e-6):
        warnings.warn(f"{what} sum to {total:g}, not 1, and normalize is off", stacklevel=3)
    return tuple(weights)


def _selection_record(selection) -> dict:
    return {
        "include": list(selection.include),
        "exclude": list(selection.exclude),
        "rules": [
            {"pattern": r.pattern, "coefficients": list(r.coefficients)} for r in selection.rules
        ],
    }


def _label(source: Source, index: int = 0) -> str:
    return f"<state dict {index}>" if isinstance(source, Mapping) else str(source)
