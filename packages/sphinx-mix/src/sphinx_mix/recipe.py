"""Recipes: a mix described in a YAML/JSON file, ours or a mergekit config.

Our own recipe is flat::

    operation: linear            # linear | task_arithmetic | uniform_soup | slerp | ties
                                 # | dare_linear | dare_ties | model_stock (these need base)
    sources: [real/, synthetic/]
    beta: 0.7                    # or weights: [0.7, 0.3]
    include: ["llma.layers.*"]   # others are copied from the first source
    rules: [{pattern: "*.attention.*", weights: [0.5, 0.5]}]
    output: mixed/
    shard_size: 2GB              # and any other MixOptions field

The other operations take ``t`` (slerp), ``density`` and ``seed`` (ties, dare_*) and
``method_options`` (keywords of the function in :mod:`sphinx_mix.merges`).

A mergekit config (recognised by its ``merge_method`` key) is translated by
:mod:`sphinx_mix.mergekit_config`; relative paths are taken from the working directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from . import merges
from .errors import MixError
from .mergekit_config import check_setting, evaluate, from_mergekit, number
from .ops import linear, task_arithmetic, uniform_soup
from .options import MixOptions

OPERATIONS = (
    "linear",
    "task_arithmetic",
    "uniform_soup",
    "slerp",
    "ties",
    "dare_linear",
    "dare_ties",
    "model_stock",
)

Weight = float | list[dict]
PerKey = Callable[[str], object]


@dataclass
class MixRecipe:
    """One mix: the operation, its inputs and coefficients, the output and options.

    ``weights`` entries are numbers or, for a per-key weight, lists of
    ``{"filter": substring, "value": number}`` conditions (first match wins, a condition
    without filter matches every key).
    """

    sources: list[str]
    output: str | None = None
    operation: str = "linear"
    weights: list[Weight] | PerKey | None = None
    beta: float | None = None
    normalize: bool = True
    base: str | None = None
    scales: list[float] | float = 1.0
    include: list[str] | None = None
    exclude: list[str] | None = None
    rules: list[dict] = field(default_factory=list)
    t: float | PerKey = 0.5
    density: float | list[float] | PerKey = 1.0
    seed: int = 0
    method_options: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, origin: str = "recipe") -> MixRecipe:
        if not isinstance(data, dict):
            raise MixError(f"{origin}: expected a mapping at the top level")
        if "merge_method" in data:
            return from_mergekit(data, origin)
        own = {item.name for item in fields(cls)} - {"options"}
        unknown = set(data) - own - MixOptions.names()
        if unknown:
            raise MixError(
                f"{origin}: unknown keys {sorted(unknown)} (expected {sorted(own | MixOptions.names())})"
            )
        if "sources" not in data:
            raise MixError(f"{origin}: missing 'sources' (a list of checkpoints)")
        options = {key: value for key, value in data.items() if key in MixOptions.names()}
        recipe = cls(**{key: value for key, value in data.items() if key in own}, options=options)
        if recipe.operation not in OPERATIONS:
            raise MixError(
                f"{origin}: operation {recipe.operation!r} is not one of {', '.join(OPERATIONS)}"
            )
        return recipe

    def run(self, output: str | Path | None = None, **overrides):
        """Run the mix; ``output`` and keyword options override the recipe's."""
        out = output if output is not None else self.output
        if out is None:
            raise MixError("the recipe names no output; give one")
        options = {**self.options, **overrides}
        seed = options.pop("seed", self.seed)
        selection = {"include": self.include, "exclude": self.exclude}
        if self.operation in merges.NEEDS_BASE and self.base is None:
            raise MixError(f"{self.operation} needs a 'base' checkpoint")
        if self.operation == "slerp":
            if len(self.sources) != 1:
                raise MixError(f"slerp takes the base and one source; got {len(self.sources)}")
            return merges.slerp(self.base, self.sources[0], self.t, out, **selection, **options)
        if self.operation == "model_stock":
            return merges.model_stock(
                self.base, self.sources, out, **self.method_options, **selection, **options
            )
        if self.operation in ("ties", "dare_linear", "dare_ties"):
            extra = {"seed": seed} if self.operation != "ties" else {}
            return getattr(merges, self.operation)(
                self.base,
                self.sources,
                _weights(self.weights) if self.weights is not None else 1.0,
                self.density,
                out,
                **self.method_options,
                **extra,
                **selection,
                **options,
            )
        if self.operation == "task_arithmetic":
            if self.base is None:
                raise MixError("task_arithmetic needs a 'base' checkpoint")
            return task_arithmetic(
                self.base,
                self.sources,
                self.scales,
                out,
                include=self.include,
                exclude=self.exclude,
                rules=_rules(self.rules, "scales"),
                **options,
            )
        if self.operation == "uniform_soup":
            return uniform_soup(
                self.sources, out, include=self.include, exclude=self.exclude, **options
            )
        return linear(
            self.sources,
            _weights(self.weights),
            out,
            beta=self.beta,
            normalize=self.normalize,
            include=self.include,
            exclude=self.exclude,
            rules=_rules(self.rules, "weights"),
            **options,
        )


def load_recipe(path: str | Path) -> MixRecipe:
    """Read a recipe (ours or mergekit's) from a YAML or JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MixError(f"{path}: cannot read recipe ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise MixError(f"{path}: not a UTF-8 text recipe (byte {error.start})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0]
        raise MixError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'} ({reason})"
        ) from None
    return MixRecipe.from_dict(data, str(path))


def _rules(rules: Sequence[dict], key: str) -> list[tuple[str, Sequence[float]]]:
    parsed = []
    for rule in rules:
        if not isinstance(rule, dict) or "pattern" not in rule:
            raise MixError(f"rule {rule!r}: expected {{pattern: ..., {key}: [...]}}")
        if key == "weights" and "beta" in rule:
            parsed.append((rule["pattern"], [rule["beta"], 1 - rule["beta"]]))
        elif key in rule:
            parsed.append((rule["pattern"], rule[key]))
        else:
            raise MixError(f"rule {rule['pattern']!r}: missing {key!r}")
    return parsed


def _weights(weights):
    """Plain numbers pass through; conditional entries become a function of the key."""
    if weights is None or callable(weights):
        return weights
    if all(number(weight) is not None for weight in weights):
        return [number(weight) for weight in weights]
    for weight in weights:
        check_setting(weight, "weights")

    def weights_for(key: str) -> list[float]:
        values = [evaluate(weight, key, 0.0) for weight in weights]
        if None in values:
            raise MixError(f"no weight condition matches {key!r}; add one without filter")
        return values

    return weights_for
