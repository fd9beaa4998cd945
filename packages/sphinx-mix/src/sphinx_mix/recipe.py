"""Recipes: a mix described in a YAML/JSON file, including mergekit ``linear`` configs.

Our own recipe is flat::

    operation: linear            # linear | task_arithmetic | uniform_soup
    sources: [real/, synthetic/]
    beta: 0.7                    # or weights: [0.7, 0.3]
    include: ["llma.layers.*"]   # others are copied from the first source
    rules: [{pattern: "*.attention.*", weights: [0.5, 0.5]}]
    output: mixed/
    shard_size: 2GB              # and any other MixOptions field

A mergekit config (recognised by its ``merge_method`` key) is translated: ``models`` with
``parameters.weight`` (a number, or a list of ``{filter, value}`` conditions where the
filter is a substring of the key), ``parameters.normalize``, ``dtype`` and ``out_dtype``.
As in mergekit, the arithmetic runs in float32 and ``dtype`` sets the output dtype, and
relative paths are taken from the working directory.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .errors import MixError
from .ops import linear, task_arithmetic, uniform_soup
from .options import MixOptions

OPERATIONS = ("linear", "task_arithmetic", "uniform_soup")
_MERGEKIT_KEYS = {"models", "merge_method", "parameters", "dtype", "out_dtype", "base_model"}

Weight = float | list[dict]


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
    weights: list[Weight] | None = None
    beta: float | None = None
    normalize: bool = True
    base: str | None = None
    scales: list[float] | float = 1.0
    include: list[str] | None = None
    exclude: list[str] | None = None
    rules: list[dict] = field(default_factory=list)
    options: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, origin: str = "recipe") -> MixRecipe:
        if not isinstance(data, dict):
            raise MixError(f"{origin}: expected a mapping at the top level")
        if "merge_method" in data:
            return _from_mergekit(data, origin)
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
        text = path.read_text()
    except OSError as error:
        raise MixError(f"{path}: cannot read recipe ({error.strerror})") from None
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


def _number(value: object) -> float | None:
    """A number, or a string YAML left unparsed such as ``1e-1`` (mergekit accepts those)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _weights(weights: list[Weight] | None):
    """Plain numbers pass through; conditional entries become a function of the key."""
    if weights is None:
        return None
    if all(_number(weight) is not None for weight in weights):
        return [_number(weight) for weight in weights]
    for weight in weights:
        _check_conditions(weight)

    def weights_for(key: str) -> list[float]:
        return [_evaluate(weight, key) for weight in weights]

    return weights_for


def _check_conditions(weight: Weight) -> None:
    if _number(weight) is not None:
        return
    for condition in weight if isinstance(weight, list) else [weight]:
        if not isinstance(condition, dict) or _number(condition.get("value")) is None:
            raise MixError(
                f"weight {weight!r}: expected a number or a list of {{filter: substring, "
                "value: number}} conditions (gradients, i.e. lists of numbers, are not supported)"
            )


def _evaluate(weight: Weight, key: str) -> float:
    if _number(weight) is not None:
        return _number(weight)
    for condition in weight:
        pattern = condition.get("filter")
        if pattern in (None, "*") or pattern in key:
            return _number(condition["value"])
    raise MixError(f"no weight condition matches {key!r} in {weight!r}; add one without filter")


def _from_mergekit(data: dict, origin: str) -> MixRecipe:
    unsupported = set(data) - _MERGEKIT_KEYS
    if unsupported:
        raise MixError(f"{origin}: mergekit keys {sorted(unsupported)} are not supported")
    if data["merge_method"] != "linear":
        raise MixError(
            f"{origin}: merge_method {data['merge_method']!r}: only 'linear' is supported"
        )
    models = data.get("models") or []
    if not models:
        raise MixError(f"{origin}: 'models' is empty")
    parameters = dict(data.get("parameters") or {})
    default_weight = parameters.pop("weight", None)
    normalize = parameters.pop("normalize", True)
    if parameters:
        raise MixError(f"{origin}: unsupported global parameters {sorted(parameters)}")
    sources, weights = [], []
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise MixError(
                f"{origin}: model entry {entry!r}: expected {{model: path, parameters: ...}}"
            )
        model_parameters = entry.get("parameters") or {}
        weight = model_parameters.get("weight", default_weight)
        if weight is None:
            raise MixError(f"{origin}: model {entry['model']!r} has no parameters.weight")
        if isinstance(weight, dict):
            weight = [weight]
        _check_conditions(weight)
        sources.append(entry["model"])
        weights.append(weight)
    if "base_model" in data:
        warnings.warn(f"{origin}: base_model is not used by a linear merge; ignored", stacklevel=3)
    out_dtype = data.get("out_dtype") or data.get("dtype")
    options = {"out_dtype": out_dtype} if out_dtype else {}
    if (data.get("dtype") or "") in ("float64",):
        options["compute_dtype"] = "float64"
    return MixRecipe(sources=sources, weights=weights, normalize=bool(normalize), options=options)
