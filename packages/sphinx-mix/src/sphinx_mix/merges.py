"""mergekit's other merge methods as streaming operations: slerp, ties, dare_*, model_stock.

Each takes a base checkpoint and the others, and like :func:`~sphinx_mix.ops.linear` writes
a folder (``out`` given) or returns a state dict. Coefficients (``t``, ``weights``,
``density``) are a number, one number per source, or a function of the key returning them,
which is how recipes pass mergekit's per-layer gradients and name filters. Keys outside
``include`` or inside ``exclude``, and integer tensors, are copied from the base.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from . import methods
from .checkpoint import Source
from .engine import Formula, run_mix
from .errors import MixError
from .options import MixOptions
from .selection import make_selection

Coefficient = float | Sequence[float] | Callable[[str], float | Sequence[float]]
RESCALES = (None, "inverse", "l1")
NEEDS_BASE = ("slerp", "ties", "dare_linear", "dare_ties", "model_stock")


def slerp(
    base: Source,
    other: Source,
    t: float | Callable[[str], float] = 0.5,
    out: str | Path | None = None,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    **options,
):
    """Spherical interpolation from ``base`` (``t=0``) to ``other`` (``t=1``), key by key."""
    factor = _per_key(t, 1, "t")
    description = {"operation": "slerp", "base": _label(base), "t": _recorded(t)}

    def merge(key, tensors, coefficients):
        return methods.slerp(coefficients[0], tensors[0], tensors[1])

    return _run([base, other], factor, merge, description, out, include, exclude, options)


def ties(
    base: Source,
    sources: Sequence[Source],
    weights: Coefficient = 1.0,
    density: Coefficient = 1.0,
    out: str | Path | None = None,
    *,
    normalize: bool = True,
    scale: float = 1.0,
    rescale: str | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    **options,
):
    """TIES-Merging (Yadav et al., 2023): trim each task vector to its ``density`` largest
    magnitudes, elect a sign per entry, and average only the entries that agree with it."""
    rule = methods.TaskVectorRule("magnitude", True, normalize, _rescale(rescale), scale)
    return _task_vectors(
        "ties", rule, base, sources, weights, density, out, include, exclude, options
    )


def dare_linear(
    base: Source,
    sources: Sequence[Source],
    weights: Coefficient = 1.0,
    density: Coefficient = 1.0,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    **keywords,
):
    """DARE (Yu et al., 2023) then task arithmetic: drop each task-vector entry with
    probability ``1 - density``, rescale the rest (by ``1/density``), add the weighted sum.

    The drop masks come from ``seed``, the key and the source's position only, so a run
    is reproducible whatever the machine, thread count or order of the keys. Keywords:
    ``normalize`` (default False), ``scale``, ``rescale`` (``"inverse"``, ``"l1"`` as
    mergekit does, or None), ``include``, ``exclude`` and the mix options.
    """
    return _dare("dare_linear", False, base, sources, weights, density, out, seed, keywords)


def dare_ties(
    base: Source,
    sources: Sequence[Source],
    weights: Coefficient = 1.0,
    density: Coefficient = 1.0,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    **keywords,
):
    """DARE's random drop and rescale, then TIES' sign election and disjoint merge;
    keywords as for :func:`dare_linear`."""
    return _dare("dare_ties", True, base, sources, weights, density, out, seed, keywords)


def _dare(name, consensus, base, sources, weights, density, out, seed, keywords):
    normalize = keywords.pop("normalize", False)
    scale = keywords.pop("scale", 1.0)
    rescale = _rescale(keywords.pop("rescale", "inverse"))
    rule = methods.TaskVectorRule("random", consensus, normalize, rescale, scale, seed)
    include, exclude = keywords.pop("include", None), keywords.pop("exclude", None)
    return _task_vectors(
        name, rule, base, sources, weights, density, out, include, exclude, keywords
    )


def model_stock(
    base: Source,
    sources: Sequence[Source],
    out: str | Path | None = None,
    *,
    filter_wise: bool = False,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    **options,
):
    """Model Stock (Jang et al., 2024): move from ``base`` towards the average of two or
    more fine-tuned models by a ratio set by the angle between their task vectors."""
    if len(sources) < 2:
        raise MixError(
            f"model_stock needs at least two sources besides the base; got {len(sources)}"
        )
    description = {"operation": "model_stock", "base": _label(base), "filter_wise": filter_wise}

    def merge(key, tensors, coefficients):
        return methods.model_stock(tensors[0], tensors[1:], filter_wise)

    def always(key: str) -> tuple[float, ...]:
        return ()

    return _run([base, *sources], always, merge, description, out, include, exclude, options)


def _task_vectors(name, rule, base, sources, weights, density, out, include, exclude, options):
    count = len(sources)
    if count == 0:
        raise MixError(f"{name} needs at least one source besides the base")
    weights_for = _per_key(weights, count, "weights")
    density_for = _per_key(density, count, "density")

    def coefficients(key: str) -> tuple[float, ...]:
        return (*weights_for(key), *density_for(key))

    def merge(key, tensors, values):
        return rule(key, tensors[0], tensors[1:], values[:count], values[count:])

    description = {
        "operation": name,
        "base": _label(base),
        "weights": _recorded(weights),
        "density": _recorded(density),
        "normalize": rule.normalize,
        "rescale": rule.rescale,
        "scale": rule.scale,
        **({"seed": rule.seed} if rule.sparsify == "random" else {}),
    }
    return _run([base, *sources], coefficients, merge, description, out, include, exclude, options)


def _run(inputs, coefficients, merge, description, out, include, exclude, options):
    selection = make_selection(include, exclude, None, len(inputs))
    description |= {"include": list(selection.include), "exclude": list(selection.exclude)}
    formula = Formula(
        "tensor", partial(_when_mixed, selection, coefficients), description, merge=merge
    )
    return run_mix(inputs, formula, out, MixOptions(**options))


def _when_mixed(selection, coefficients, key: str) -> tuple[float, ...] | None:
    return coefficients(key) if selection.is_mixed(key) else None


def _per_key(value: Coefficient, count: int, what: str) -> Callable[[str], tuple[float, ...]]:
    """A function of the key giving ``count`` finite numbers; constants are checked once."""
    if callable(value):
        return partial(_checked, value, count, what)
    constant = _checked(lambda key: value, count, what, "")
    return lambda key: constant


def _checked(function, count: int, what: str, key: str) -> tuple[float, ...]:
    value = function(key)
    values = [value] * count if isinstance(value, int | float) else list(value)
    where = f"{key}: " if key else ""
    if len(values) != count:
        raise MixError(
            f"{where}got {len(values)} {what} for {count} sources; expected one per source"
        )
    numbers = tuple(float(number) for number in values)
    for number in numbers:
        if not math.isfinite(number):
            raise MixError(f"{where}{what}: {number!r} is not a finite number")
    return numbers


def _rescale(rescale: str | None) -> str | None:
    if rescale not in RESCALES:
        raise MixError(f"rescale={rescale!r}: expected None, 'inverse' or 'l1'")
    return rescale


def _recorded(value: Coefficient) -> object:
    if callable(value):
        return "per key"
    return value if isinstance(value, int | float) else list(value)


def _label(source: Source) -> str:
    return str(source) if isinstance(source, str | Path) else "<state dict>"
