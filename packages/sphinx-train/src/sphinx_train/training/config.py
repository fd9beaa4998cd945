"""The trainer's configuration: dataclasses filled from YAML, with dotted ``--set`` overrides.

Every key is checked: an unknown key or a value of the wrong type is one error naming the
dotted key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

SOURCE_KINDS = (
    "synthetic-captions",
    "synthetic-tasks",
    "synthetic-text",
    "webdataset",
    "image-jsonl",
    "text-jsonl",
    "text-parquet",
    "conversations",
    "meta-yaml",
)


@dataclass
class ModelConfig:
    """Where the model comes from: a preset with random weights, or a saved model folder."""

    preset: str = "sphinx-nano"
    init: str | None = None
    tokenizer: str | None = None
    tiling: str | None = None
    # The reference trains with its (frozen) Q-Former in train mode: dropout 0.1 active.
    qformer_train_mode: bool = False


@dataclass
class SourceConfig:
    """One data set. ``size`` is the number of synthetic samples (synthetic kinds only);
    ``options`` are keyword options of the synthetic scene generator (synthetic kinds only)."""

    name: str = ""
    kind: str = "synthetic-captions"
    path: str | None = None
    weight: float = 1.0
    size: int = 256
    style: str = "real"
    tiling: str | None = None
    image_root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamConfig:
    """Samples drawn from its sources for every optimizer step (global count over all ranks).

    ``template`` None means raw text with every token supervised (stage 1: no template).
    """

    name: str = ""
    per_step: int = 8
    template: str | None = None
    sources: list[SourceConfig] = field(default_factory=list)


@dataclass
class DataConfig:
    streams: list[StreamConfig] = field(default_factory=list)
    max_length: int = 3072
    held_out: list[SourceConfig] = field(default_factory=list)
    held_out_samples: int = 16
    max_missing_share: float = 0.01
    preflight_samples: int = 256  # per source, checked before training (0: no pre-flight)
    feature_cache: str | None = None  # folder: frozen image features reused across epochs/runs


@dataclass
class OptimizerConfig:
    lr: float = 5e-5
    min_lr: float = 5e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    fused: str | bool = "auto"  # auto: fused on CUDA and CPU


@dataclass
class ScheduleConfig:
    """Cosine decay after a linear warm-up; ``warmup_epochs`` (stage 2) overrides the steps."""

    total_steps: int = 180_000
    warmup_steps: int = 2000
    warmup_epochs: float | None = None


@dataclass
class ParallelConfig:
    """``micro_batch_tokens`` > 0 replaces the fixed ``micro_batches`` count by a token
    budget: length-sorted rows are packed while rows x longest row (text + image tokens)
    stays within it."""

    micro_batches: int = 1
    micro_batch_tokens: int = 0
    activation_checkpointing: str = "none"
    compile: bool = False
    cpu_offload: bool = False
    param_dtype: str = "auto"


@dataclass
class CheckpointConfig:
    every: int = 1000
    keep_latest_k: int = 2
    async_save: bool = False  # write in a background thread while training goes on


@dataclass
class EvalTaskConfig:
    """A generation benchmark scored every ``logging.eval_every`` steps (``sphinx-train eval``'s
    task registry; ``limit`` samples per split)."""

    task: str = ""
    data: str = ""
    images: str | None = None
    splits: list[str] | None = None
    limit: int | None = 64


@dataclass
class LoggingConfig:
    every: int = 1
    progress: bool = True
    eval_every: int = 0
    samples: bool = False  # write samples.jsonl: the global (source, index) list of each step
    tensorboard: bool = False  # also OUT/tensorboard/ event files (the tensorboard extra)
    # dense bf16 peak of one GPU for `mfu`; null: known from the device name (H100, ...)
    peak_tflops: float | None = None
    eval_tasks: list[EvalTaskConfig] = field(default_factory=list)
    eval_tasks_module: str | None = None  # a module that registers the tasks (import name)


@dataclass
class TrainConfig:
    name: str = "custom"
    seed: int = 0
    trainable: list[str] = field(default_factory=lambda: ["llm", "projections"])
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A config key or value that does not fit the dataclasses."""


def _describe(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))


def _convert(kind: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(kind)
        return [_convert(item, entry, f"{key}.{index}") for index, entry in enumerate(value)]
    if dataclasses.is_dataclass(kind):
        return build(kind, value, key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-4 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if (kind in (int, float) and isinstance(value, bool)) or not isinstance(value, kind):
        raise ConfigError(f"{key}: expected {_describe(kind)}, got {value!r}")
    return value


def build(cls: type, data: Any, key: str = "config") -> Any:
    """A dataclass from a mapping, checking every key and type (``key`` names the place)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {item.name for item in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        place = f"{key}.{unknown[0]}" if key != "config" else unknown[0]
        raise ConfigError(f"{place}: unknown key; expected one of {', '.join(sorted(known))}")
    values = {}
    for name, value in data.items():
        place = name if key == "config" else f"{key}.{name}"
        values[name] = _convert(hints[name], value, place)
    return cls(**values)


def apply_override(data: dict, assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML; list items by index) to a raw config dict."""
    import yaml

    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. optimizer.lr=1e-4")
    dotted, raw = assignment.split("=", 1)
    parts = dotted.strip().split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {dotted}: {part!r} is not an index of a {len(node)}-list")
            index: Any = int(part)
        else:
            index = part
            if not last and index not in node:
                node[index] = {}
        if last:
            node[index] = yaml.safe_load(raw)
        else:
            node = node[index]


def list_presets() -> list[str]:
    folder = resources.files("sphinx_train.training") / "presets"
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir()
                  if entry.name.endswith(".yaml"))


def read_config_data(source: str | Path) -> dict:
    """The raw mapping of a built-in preset name or a YAML/JSON file."""
    import yaml

    path = Path(source)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            text, label = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not a UTF-8 text config (byte {error.start})") from None
    else:
        if str(source) not in list_presets():
            raise ConfigError(
                f"unknown config {str(source)!r}: not a file and not a built-in "
                f"({', '.join(list_presets())})"
            )
        preset = resources.files("sphinx_train.training") / "presets" / f"{source}.yaml"
        text, label = preset.read_text(), f"preset {source}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{label}: not valid YAML ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping at the top level")
    return data


def load_config(source: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Read a config (preset or file), apply ``--set`` overrides, check it."""
    data = read_config_data(source)
    for assignment in overrides:
        apply_override(data, assignment)
    config = build(TrainConfig, data)
    check_config(config)
    return config


def check_config(config: TrainConfig) -> None:
    """Value checks the types cannot express."""
    if not config.data.streams:
        raise ConfigError("data.streams: expected at least one stream")
    for s_index, stream in enumerate(config.data.streams):
        if stream.per_step < 1:
            raise ConfigError(f"data.streams.{s_index}.per_step: expected >= 1")
        if not stream.sources:
            raise ConfigError(f"data.streams.{s_index}.sources: expected at least one source")
        for index, source in enumerate([*stream.sources]):
            place = f"data.streams.{s_index}.sources.{index}"
            check_source(source, place)
    for index, source in enumerate(config.data.held_out):
        check_source(source, f"data.held_out.{index}")
    names = [s.name for stream in config.data.streams for s in stream.sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"data.streams: source names must be unique, got {names}")
    if config.parallel.activation_checkpointing not in ("none", "full", "selective"):
        raise ConfigError(
            "parallel.activation_checkpointing: expected none, full or selective, got "
            f"{config.parallel.activation_checkpointing!r}"
        )
    if config.parallel.micro_batches < 1:
        raise ConfigError("parallel.micro_batches: expected >= 1")
    if config.parallel.micro_batch_tokens < 0:
        raise ConfigError("parallel.micro_batch_tokens: expected >= 0 (0: use micro_batches)")
    if len(config.optimizer.betas) != 2:
        raise ConfigError(f"optimizer.betas: expected two numbers, got {config.optimizer.betas}")
    if not isinstance(config.optimizer.fused, bool) and config.optimizer.fused != "auto":
        raise ConfigError(
            f"optimizer.fused: expected auto, true or false, got {config.optimizer.fused!r}"
        )
    for part in config.trainable:
        if part not in ("llm", "projections") and not part.startswith("encoder."):
            raise ConfigError(
                f"trainable: {part!r}; expected llm, projections or encoder.<parameter prefix>"
            )


def check_source(source: SourceConfig, place: str) -> None:
    if not source.name:
        raise ConfigError(f"{place}.name: expected a name (used in loss/<name>)")
    if source.kind not in SOURCE_KINDS:
        raise ConfigError(f"{place}.kind: {source.kind!r}; expected one of {', '.join(SOURCE_KINDS)}")
    if not source.kind.startswith("synthetic") and not source.path:
        raise ConfigError(f"{place}.path: {source.kind} needs a path (fill in the template)")
    if source.weight <= 0:
        raise ConfigError(f"{place}.weight: expected > 0, got {source.weight}")
