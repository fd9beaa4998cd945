"""Config dataclasses of the mixed visual encoder, loadable from dicts, YAML and JSON.

A config names the architecture only (no weights), so a saved config rebuilds the same
modules with `create_encoder(config, ...)`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import yaml

from ._house import dtype_name, staged_file


class ConfigError(ValueError):
    """A config file or dict that does not describe a valid encoder."""


class ViewRule(Protocol):
    """How a backbone fits the tiler's views to the side it sees (`backbones.views`):
    `resize` (None: views go in as they are) computed in `resize_dtype` (None: the weights'
    dtype), or with `views_from_canvas` made from each image's canvas (the 1k variants of
    SPHINX-Tiny and SPHINX-MoE: global = canvas resized to `image_size`, crops = quarters of
    the canvas resized to twice that; an image of one view is its own canvas)."""

    image_size: int
    resize: str | None
    resize_dtype: str | None
    views_from_canvas: bool


def _check_view_rule(config) -> None:
    config.resize_dtype = _optional_dtype(config.resize_dtype)
    if config.resize not in (None, "bicubic", "bilinear", "nearest"):
        raise ValueError(f"resize must be bicubic, bilinear, nearest or null, got {config.resize!r}")
    if config.views_from_canvas and config.resize is None:
        raise ValueError("views_from_canvas=True needs a resize rule, got resize=None")


@dataclass
class ClipViTConfig:
    """An open_clip `VisionTransformer`; tokens = CLS + patches after `ln_post`."""

    kind: ClassVar[str] = "clip_vit"
    name: str = "clip"
    image_size: int = 224
    patch_size: int = 14
    width: int = 1024
    layers: int = 24
    head_width: int = 64
    mlp_ratio: float = 4.0
    # Width of open_clip's final projection: unused here, kept so checkpoints load as they are.
    output_dim: int = 768
    # The reference builds ViT-L-14 without `pretrained=`, which gives nn.GELU, not QuickGELU.
    quick_gelu: bool = False
    # Views of another side (SPHINX-MoE's 512): see `ViewRule`.
    resize: str | None = None
    resize_dtype: str | None = None
    views_from_canvas: bool = False
    reference_prefix: str = "clip"

    def __post_init__(self):
        _check_view_rule(self)


@dataclass
class ConvNeXtConfig:
    """A timm ConvNeXt trunk (as inside open_clip's `convnext_*` towers), pooling removed."""

    kind: ClassVar[str] = "convnext"
    name: str = "convnext"
    depths: tuple[int, ...] = (3, 4, 30, 3)
    dims: tuple[int, ...] = (384, 768, 1536, 3072)
    norm_eps: float = 1e-5
    # The view is resized (nearest) to this side before the trunk (SPHINX-Tiny: 512, native).
    input_size: int = 256
    # Feature maps are resampled to this grid by repeating rows and columns.
    output_grid: int = 16
    resample: str = "repeat"
    # The reference casts the view to float16 before the (nearest) resize, which rounds the
    # pixels of fp32 and bf16 runs alike; None resizes in the weights' dtype (as
    # llama_ens5_light does, which gives ConvNeXt its 512 views as they are).
    resize_dtype: str | None = "float16"
    reference_prefix: str = "openclip_convnext_xxl"

    def __post_init__(self):
        self.resize_dtype = _optional_dtype(self.resize_dtype)


@dataclass
class DinoV2Config:
    """A DINOv2 ViT (timm modules) with DINOv2's own position-embedding interpolation."""

    kind: ClassVar[str] = "dinov2"
    name: str = "dinov2"
    patch_size: int = 14
    embed_dim: int = 1536
    depth: int = 40
    num_heads: int = 24
    mlp_ratio: float = 4.0
    ffn: str = "swiglu"  # "swiglu" (ViT-g) or "mlp" (ViT-S/B/L)
    # Side of the pretraining grid of the stored position embeddings (518 / 14 = 37).
    pos_grid: int = 37
    interpolate_offset: float = 0.1
    # Side DINOv2 sees; views of another side are fitted by `ViewRule` (SPHINX-Tiny: its
    # 512 views go bicubic to 224, computed in float16 as the reference).
    image_size: int = 224
    resize: str | None = None
    resize_dtype: str | None = None
    # CLIP -> ImageNet statistics: "unnormalize" computes (x*clip_std + clip_mean - mean) / std
    # (llama_ens), "affine" x * (clip_std/std) + (clip_mean - mean)/std (llama_ens_light).
    # Equal up to float rounding; each preset follows its reference module.
    renormalize: str = "unnormalize"
    # SPHINX-Tiny-1k (llama_ens5_light): views from each image's canvas (`ViewRule`); other
    # view counts than 1 and 5 are refused; without a grouping (`image_index=None`: one
    # view per image) each view is resized.
    views_from_canvas: bool = False
    reference_prefix: str = "dinov2_vitg14"

    def __post_init__(self):
        _check_view_rule(self)
        if self.renormalize not in ("unnormalize", "affine"):
            raise ValueError(
                f"renormalize must be 'unnormalize' or 'affine', got {self.renormalize!r}"
            )


@dataclass
class QFormerConfig:
    """A BLIP-2 EVA ViT + Q-Former (transformers); output = the query tokens' last hidden state."""

    kind: ClassVar[str] = "qformer"
    name: str = "qformer"
    image_size: int = 224
    patch_size: int = 14
    vision_width: int = 1408
    vision_layers: int = 39
    vision_heads: int = 16
    vision_mlp: int = 6144
    vision_ln_eps: float = 1e-6
    qformer_width: int = 768
    qformer_layers: int = 12
    qformer_heads: int = 12
    qformer_mlp: int = 3072
    qformer_ln_eps: float = 1e-12
    cross_attention_frequency: int = 2
    num_query_tokens: int = 32
    # Views of another side (SPHINX-MoE's 512): see `ViewRule`.
    resize: str | None = None
    resize_dtype: str | None = None
    views_from_canvas: bool = False
    reference_prefix: str = "qformer"

    def __post_init__(self):
        _check_view_rule(self)


PATCH_CONFIG_KINDS: dict[str, type] = {
    cls.kind: cls for cls in (ClipViTConfig, ConvNeXtConfig, DinoV2Config)
}


PATCH_POSITIONS = ("none", "sincos-2d")


@dataclass
class EncoderConfig:
    """The whole mixed encoder: patch encoders (concatenated on channels) + a query encoder."""

    name: str
    patch_encoders: list[Any] = field(default_factory=list)
    query_encoder: QFormerConfig | None = None
    image_size: int = 224
    llm_dim: int | None = None
    # Fixed 2-D positions added to the projected patch tokens: "none" (SPHINX: the backbones'
    # own positions only) or "sincos-2d" (small demo models read where things are faster).
    patch_positions: str = "none"

    def __post_init__(self) -> None:
        if self.patch_positions not in PATCH_POSITIONS:
            raise ConfigError(
                f"encoder {self.name!r}: patch_positions {self.patch_positions!r}; expected one "
                f"of {', '.join(PATCH_POSITIONS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image_size": self.image_size,
            "llm_dim": self.llm_dim,
            "patch_positions": self.patch_positions,
            "patch_encoders": [_backbone_to_dict(c) for c in self.patch_encoders],
            "query_encoder": (
                None if self.query_encoder is None else _backbone_to_dict(self.query_encoder)
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> EncoderConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
        _reject_unknown(data, {f.name for f in dataclasses.fields(cls)}, source)
        patch = data.get("patch_encoders") or []
        if not isinstance(patch, list):
            raise ConfigError(f"{source}: 'patch_encoders' must be a list")
        patch_configs = [
            _backbone_from_dict(item, PATCH_CONFIG_KINDS, f"{source}: patch_encoders[{i}]")
            for i, item in enumerate(patch)
        ]
        query = data.get("query_encoder")
        query_config = (
            None
            if query is None
            else _backbone_from_dict(
                query, {QFormerConfig.kind: QFormerConfig}, f"{source}: query_encoder"
            )
        )
        if "name" not in data:
            raise ConfigError(f"{source}: missing key 'name'")
        hints = typing.get_type_hints(cls)
        values = {
            key: _checked(data[key], hints[key], f"{source}: {key!r}")
            for key in ("name", "image_size", "llm_dim", "patch_positions")
            if key in data
        }
        return cls(**values, patch_encoders=patch_configs, query_encoder=query_config)

    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write YAML or JSON (by suffix), staged beside `path` and renamed when complete."""
        path = Path(path)
        text = (
            json.dumps(self.to_dict(), indent=2)
            if path.suffix == ".json"
            else yaml.safe_dump(self.to_dict(), sort_keys=False)
        )
        with staged_file(path, overwrite=overwrite) as stage:
            stage.write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> EncoderConfig:
        path = Path(path)
        kind = "JSON" if path.suffix == ".json" else "YAML"
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as err:
            raise ConfigError(f"{path}: cannot read ({err.strerror})") from err
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
        try:
            data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            where = _error_position(err)
            raise ConfigError(f"{path}: not valid {kind}{where}: {_first_line(err)}") from None
        return cls.from_dict(data, source=str(path))


def _backbone_to_dict(config: Any) -> dict[str, Any]:
    data = {"kind": config.kind}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        data[f.name] = list(value) if isinstance(value, tuple) else value
    return data


def _backbone_from_dict(data: Any, kinds: dict[str, type], source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in kinds:
        raise ConfigError(f"{source}: 'kind' must be one of {sorted(kinds)}, got {kind!r}")
    config_cls = kinds[kind]
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in data.items() if k != "kind"}
    _reject_unknown(values, fields, source)
    values = {k: _checked(v, hints[k], f"{source}: {k!r}") for k, v in values.items()}
    try:
        return config_cls(**values)
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None


def _checked(value: Any, hint: Any, where: str) -> Any:
    """`value` converted to the field type `hint` (int, float, bool, str, tuples, optionals)."""
    if isinstance(hint, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (hint,) = [t for t in options if t is not type(None)]
    if typing.get_origin(hint) is tuple:
        if isinstance(value, list | tuple):
            return tuple(
                _checked(v, typing.get_args(hint)[0], f"{where}[{i}]") for i, v in enumerate(value)
            )
    elif hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif (hint is int and isinstance(value, int) and not isinstance(value, bool)) or (
        hint in (bool, str) and isinstance(value, hint)
    ):
        return value
    expected = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{where} must be {expected}, got {type(value).__name__} {value!r}")


def _optional_dtype(value: Any) -> str | None:
    return None if value is None else dtype_name(value)


def _error_position(err: Exception) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f" at line {err.lineno} column {err.colno}"
    mark = getattr(err, "problem_mark", None)
    return "" if mark is None else f" at line {mark.line + 1} column {mark.column + 1}"


def _first_line(err: Exception) -> str:
    if isinstance(err, json.JSONDecodeError):
        return err.msg
    return getattr(err, "problem", None) or str(err).splitlines()[0]


def _reject_unknown(data: dict[str, Any], known: set[str], source: str) -> None:
    unknown = sorted(set(data) - known - {"kind"})
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; expected some of {sorted(known)}")
