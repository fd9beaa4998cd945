"""Translating a mergekit YAML config into a :class:`~sphinx_mix.recipe.MixRecipe`.

Understood: ``merge_method`` (linear, slerp, ties, dare_linear, dare_ties, model_stock),
``models`` (or one slice covering every layer of each model), ``base_model``,
``parameters`` globally and per model, ``dtype``, ``out_dtype`` and ``tokenizer_source``
when it names the base. Parameter values are numbers (YAML strings such as ``1e-1`` too),
gradients (a list of numbers interpolated over the layers: layer ``i`` of ``L`` sits at
``i / (L - 1)``, weights outside the layers at 0) and ``{filter, value}`` conditions whose
filter is a substring of the key, first match winning, as in mergekit. Anything else is
refused with a line naming the key.

As in mergekit, ``dtype`` is the dtype the inputs are cast to: ties, dare and model_stock
compute in it, linear and slerp in float32; the output takes ``out_dtype`` or ``dtype``.
"""

from __future__ import annotations

import re
import warnings
from functools import cached_property

from .errors import MixError

TOP_KEYS = {
    "models",
    "slices",
    "merge_method",
    "parameters",
    "dtype",
    "out_dtype",
    "base_model",
    "tokenizer_source",
}
_TASK_VECTOR = {"weight", "density", "normalize", "rescale", "lambda", "int8_mask"}
PARAMETERS = {
    "linear": {"weight", "normalize"},
    "slerp": {"t"},
    "ties": _TASK_VECTOR,
    "dare_linear": _TASK_VECTOR,
    "dare_ties": _TASK_VECTOR,
    "model_stock": {"filter_wise"},
}
_PER_MODEL = {"weight", "density"}
# mergekit's defaults for normalize / rescale per method
_DEFAULTS = {
    "linear": {"normalize": True},
    "ties": {"normalize": True, "rescale": False},
    "dare_linear": {"normalize": False, "rescale": True},
    "dare_ties": {"normalize": False, "rescale": True},
}
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def number(value: object) -> float | None:
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


class LayerPosition:
    """Where a key sits in the layer stack, 0..1, for gradients; counted from the base's keys."""

    def __init__(self, source: str):
        self.source = source

    @cached_property
    def count(self) -> int:
        from .checkpoint import open_checkpoint

        opened = open_checkpoint(self.source)
        try:
            keys = opened.ranks[0].keys() if hasattr(opened, "ranks") else opened.keys()
        finally:
            opened.close()
        return len({match.group(1) for key in keys if (match := _LAYER.search(key))})

    def __call__(self, key: str) -> float:
        match = _LAYER.search(key)
        if match is None:
            return 0.0
        return int(match.group(1)) / (self.count - 1) if self.count > 1 else 1.0


def check_setting(setting: object, where: str) -> None:
    """Refuse, before any data is read, a value that is no number, gradient or condition list."""
    if number(setting) is not None:
        return
    if isinstance(setting, list) and setting and all(number(item) is not None for item in setting):
        return
    conditions = setting if isinstance(setting, list) else [setting]
    for condition in conditions:
        if not isinstance(condition, dict) or "value" not in condition:
            raise MixError(
                f"{where}: {setting!r}: expected a number, a gradient (list of numbers) or a "
                "list of {filter: substring, value: ...} conditions"
            )
        check_setting(condition["value"], where)


def evaluate(setting: object, key: str, position: float) -> float | None:
    """mergekit's rule: numbers as they are, gradients interpolated, first matching filter."""
    if number(setting) is not None:
        return number(setting)
    if isinstance(setting, list) and all(number(item) is not None for item in setting):
        values = [number(item) for item in setting]
        scaled = position * (len(values) - 1)
        low = int(scaled)
        high = min(len(values) - 1, low + 1)
        fraction = scaled - low
        return (1 - fraction) * values[low] + fraction * values[high]
    for condition in setting if isinstance(setting, list) else [setting]:
        pattern = condition.get("filter")
        if pattern in (None, "*") or pattern in key:
            return evaluate(condition["value"], key, position)
    return None


def from_mergekit(data: dict, origin: str):
    """The recipe for a mergekit config (see the module docstring)."""
    from .recipe import MixRecipe

    unsupported = set(data) - TOP_KEYS
    if unsupported:
        raise MixError(f"{origin}: mergekit keys {sorted(unsupported)} are not supported")
    method = data["merge_method"]
    if method not in PARAMETERS:
        raise MixError(
            f"{origin}: merge_method {method!r} is not supported (expected one of "
            f"{', '.join(PARAMETERS)})"
        )
    entries = _model_entries(data, origin)
    global_parameters = dict(data.get("parameters") or {})
    for name in global_parameters:
        _check_parameter(method, name, global_parameters[name], f"{origin}: parameters.{name}")
    base = data.get("base_model")
    if base is not None and not isinstance(base, str):
        raise MixError(f"{origin}: base_model {base!r}: expected a path")
    if method == "linear":
        if base is not None:
            warnings.warn(
                f"{origin}: base_model is not used by a linear merge; ignored", stacklevel=4
            )
        base = None
    elif base is None:
        raise MixError(f"{origin}: merge_method {method!r} needs a base_model")
    _check_tokenizer_source(data.get("tokenizer_source"), base, origin)
    others = [entry for entry in entries if entry["model"] != base]
    if method == "slerp" and len(others) != 1:
        raise MixError(f"{origin}: slerp merges the base_model with exactly one other model")
    if method == "model_stock" and len(others) < 2:
        raise MixError(f"{origin}: model_stock needs two or more models besides the base_model")
    if not others:
        raise MixError(f"{origin}: no model to merge besides the base_model")
    for entry in others:
        for name, setting in (entry.get("parameters") or {}).items():
            where = f"{origin}: model {entry['model']!r} parameters.{name}"
            _check_parameter(method, name, setting, where)
    position = LayerPosition(base or others[0]["model"])
    flags = {**_DEFAULTS.get(method, {}), **_flags(global_parameters, origin)}
    sources = [entry["model"] for entry in others]

    def per_model(name: str, default: float | None):
        settings = []
        for entry in others:
            setting = (entry.get("parameters") or {}).get(
                name, global_parameters.get(name, default)
            )
            if setting is None:
                raise MixError(f"{origin}: model {entry['model']!r} has no parameters.{name}")
            settings.append(setting)
        return _PerKey(settings, position, name)

    recipe = MixRecipe(
        sources=sources, operation=method, base=base, normalize=flags.get("normalize", True)
    )
    if "weight" in PARAMETERS[method]:
        recipe.weights = per_model("weight", None)
    if "density" in PARAMETERS[method]:
        recipe.density = per_model("density", 1.0)
        recipe.method_options = {
            "normalize": flags["normalize"],
            "scale": flags.get("lambda", 1.0),
            "rescale": "l1" if flags["rescale"] else None,
        }
    if method == "slerp":
        recipe.t = _PerKey([global_parameters.get("t", 0.5)], position, "t").first
    if method == "model_stock":
        recipe.method_options = {"filter_wise": flags.get("filter_wise", False)}
    recipe.options = _dtype_options(data, method)
    return recipe


class _PerKey:
    """One setting per source, resolved for each key (gradients need the layer position)."""

    def __init__(self, settings: list, position: LayerPosition, name: str):
        self.settings = settings
        self.position = position
        self.name = name

    def __call__(self, key: str) -> list[float]:
        values = []
        where = self.position(key) if _needs_position(self.settings) else 0.0
        for setting in self.settings:
            value = evaluate(setting, key, where)
            if value is None:
                raise MixError(f"{key}: no {self.name} condition matches; add one without filter")
            values.append(value)
        return values

    def first(self, key: str) -> float:
        return self(key)[0]


def _needs_position(settings: list) -> bool:
    return any(isinstance(setting, list | dict) for setting in settings)


def _model_entries(data: dict, origin: str) -> list[dict]:
    if "slices" in data:
        if "models" in data:
            raise MixError(f"{origin}: give either models or slices, not both")
        return _single_slice(data["slices"], origin)
    models = data.get("models") or []
    if not models:
        raise MixError(f"{origin}: 'models' is empty")
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise MixError(
                f"{origin}: model entry {entry!r}: expected {{model: path, parameters: ...}}"
            )
    return models


def _single_slice(slices: object, origin: str) -> list[dict]:
    """One slice taking every layer of each model is a plain ``models`` list."""
    if not isinstance(slices, list) or len(slices) != 1 or not isinstance(slices[0], dict):
        raise MixError(f"{origin}: slices: only one slice covering every layer is supported")
    extra = set(slices[0]) - {"sources"}
    if extra:
        raise MixError(f"{origin}: slices[0] keys {sorted(extra)} are not supported")
    entries = []
    for source in slices[0].get("sources") or []:
        if not isinstance(source, dict) or not isinstance(source.get("model"), str):
            raise MixError(
                f"{origin}: slices[0].sources: {source!r}: expected {{model, layer_range}}"
            )
        layers = LayerPosition(source["model"]).count
        if source.get("layer_range") not in (None, [0, layers]):
            raise MixError(
                f"{origin}: slices[0] layer_range {source['layer_range']} of {source['model']}: "
                f"only the whole stack [0, {layers}] is supported"
            )
        entries.append({"model": source["model"], "parameters": source.get("parameters")})
    if not entries:
        raise MixError(f"{origin}: slices[0] has no sources")
    return entries


def _check_parameter(method: str, name: str, setting: object, where: str) -> None:
    if name not in PARAMETERS[method]:
        raise MixError(
            f"{where}: not a parameter of merge_method {method!r} (expected "
            f"{', '.join(sorted(PARAMETERS[method]))})"
        )
    if name in _PER_MODEL or name == "t":
        check_setting(setting, where)


def _flags(parameters: dict, origin: str) -> dict:
    """The shared settings, which must be plain values."""
    flags = {}
    for name in ("normalize", "rescale", "int8_mask", "filter_wise"):
        if name in parameters:
            if not isinstance(parameters[name], bool):
                raise MixError(
                    f"{origin}: parameters.{name} {parameters[name]!r}: expected true or false"
                )
            flags[name] = parameters[name]
    if "lambda" in parameters:
        if number(parameters["lambda"]) is None:
            raise MixError(
                f"{origin}: parameters.lambda {parameters['lambda']!r}: expected a number"
            )
        flags["lambda"] = number(parameters["lambda"])
    return flags


def _check_tokenizer_source(value: object, base: str | None, origin: str) -> None:
    """Tokenizer files are copied from the first source (the base), so only that is meaningful."""
    if value in (None, "base") or (base is not None and value == base):
        return
    raise MixError(
        f"{origin}: tokenizer_source {value!r}: only 'base' (the base model's tokenizer is "
        "copied) is supported"
    )


def _dtype_options(data: dict, method: str) -> dict:
    dtype, out_dtype = data.get("dtype"), data.get("out_dtype")
    options = {}
    if out_dtype or dtype:
        options["out_dtype"] = out_dtype or dtype
    if dtype == "float64":
        options["compute_dtype"] = "float64"
    elif dtype and method in ("ties", "dare_linear", "dare_ties", "model_stock"):
        options["compute_dtype"] = dtype
    return options
