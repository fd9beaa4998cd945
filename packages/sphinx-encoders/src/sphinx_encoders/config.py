"""Config dataclasses of the mixed visual encoder, loadable from dicts, YAML and JSON.

A config names the architecture only (no weights), so a saved config rebuilds the same
modules with `create_encoder(config, ...)`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml


class ConfigError(ValueError):
    """A config file or dict that does not describe a valid encoder."""


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
    reference_prefix: str = "clip"


@dataclass
class ConvNeXtConfig:
    """A timm ConvNeXt trunk (as inside open_clip's `convnext_*` towers), pooling removed."""

    kind: ClassVar[str] = "convnext"
    name: str = "convnext"
    depths: tuple[int, ...] = (3, 4, 30, 3)
    dims: tuple[int, ...] = (384, 768, 1536, 3072)
    norm_eps: float = 1e-5
    # The view is resized (nearest) to this side before the trunk.
    input_size: int = 256
    # Feature maps are resampled to this grid by repeating rows and columns.
    output_grid: int = 16
    resample: str = "repeat"
    # The reference casts the view to float16 before resizing; keeps fp32 runs bit-faithful.
    round_input_to_fp16: bool = True
    reference_prefix: str = "openclip_convnext_xxl"


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
    image_size: int = 224
    reference_prefix: str = "dinov2_vitg14"


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
    reference_prefix: str = "qformer"


PATCH_CONFIG_KINDS: dict[str, type] = {
    cls.kind: cls for cls in (ClipViTConfig, ConvNeXtConfig, DinoV2Config)
}


@dataclass
class EncoderConfig:
    """The whole mixed encoder: patch encoders (concatenated on channels) + a query encoder."""

    name: str
    patch_encoders: list[Any] = field(default_factory=list)
    query_encoder: QFormerConfig | None = None
    image_size: int = 224
    llm_dim: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image_size": self.image_size,
            "llm_dim": self.llm_dim,
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
        return cls(
            name=data["name"],
            patch_encoders=patch_configs,
            query_encoder=query_config,
            image_size=int(data.get("image_size", 224)),
            llm_dim=data.get("llm_dim"),
        )

    def save(self, path: str | Path) -> None:
        """Write YAML or JSON (by suffix) through a temporary name, renamed when complete."""
        path = Path(path)
        text = (
            json.dumps(self.to_dict(), indent=2)
            if path.suffix == ".json"
            else yaml.safe_dump(self.to_dict(), sort_keys=False)
        )
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> EncoderConfig:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise ConfigError(f"{path}: cannot read ({err.strerror})") from err
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise ConfigError(
                f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {err}"
            ) from err
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
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in data.items() if k != "kind"}
    _reject_unknown(values, set(fields), source)
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    return config_cls(**values)


def _reject_unknown(data: dict[str, Any], known: set[str], source: str) -> None:
    unknown = sorted(set(data) - known - {"kind"})
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; expected some of {sorted(known)}")
