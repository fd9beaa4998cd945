"""Named encoder presets and the `create_encoder` factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .config import (
    ClipViTConfig,
    ConfigError,
    ConvNeXtConfig,
    DinoV2Config,
    EncoderConfig,
    QFormerConfig,
)
from .loading import load_weights
from .mixed import MixedVisualEncoder

_REGISTRY: dict[str, Callable[[], EncoderConfig]] = {}

_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


def register_encoder(name: str, factory: Callable[[], EncoderConfig]) -> None:
    """Add a preset: `factory()` returns a fresh `EncoderConfig`."""
    _REGISTRY[name] = factory


def list_encoders() -> list[str]:
    return sorted(_REGISTRY)


def get_encoder_config(name: str | Path | EncoderConfig | Mapping[str, Any]) -> EncoderConfig:
    """A preset name, a YAML/JSON config file, a config dict or an `EncoderConfig`."""
    if isinstance(name, EncoderConfig):
        return name
    if isinstance(name, Mapping):
        return EncoderConfig.from_dict(dict(name))
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]()
    if Path(name).suffix in (".yaml", ".yml", ".json"):
        return EncoderConfig.load(name)
    raise ConfigError(f"unknown encoder {str(name)!r}; presets: {', '.join(list_encoders())}")


def create_encoder(
    name: str | Path | EncoderConfig | Mapping[str, Any],
    llm_dim: int | None = None,
    weights: str | Path | Mapping[str, str | Path] | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    *,
    strict: bool = True,
    compile: bool = False,
    channels_last: bool = False,
) -> MixedVisualEncoder:
    """Build a `MixedVisualEncoder` from a preset or config, with random or local weights.

    `weights`: a reference SPHINX checkpoint folder or shard, a file with this package's
    own keys, or `{backbone name: path}` in each library's own format (see README).
    `device="meta"` builds the architecture without memory, e.g. to check shapes.
    """
    config = get_encoder_config(name)
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        dtype = _DTYPES[dtype]
    target = torch.device(device if device is not None else "cpu")
    # A strict load of a whole-encoder file overwrites every tensor, so the (slow, for the
    # real sizes) random init is skipped: build on meta, then allocate uninitialised memory.
    skip_init = (
        weights is not None
        and strict
        and not isinstance(weights, Mapping)
        and target.type != "meta"
    )
    with torch.device("meta" if skip_init else target):
        encoder = MixedVisualEncoder(config, llm_dim)
    if dtype is not None:
        encoder.to(dtype)
    if skip_init:
        # Sound because every tensor is in the state dict (no non-persistent buffers).
        encoder.to_empty(device=target)
    if weights is not None:
        load_weights(encoder, weights, strict=strict)
    if channels_last:
        encoder.convnext_channels_last()
    if compile:
        encoder.compile_backbones()
    return encoder


# --- presets ---------------------------------------------------------------------------
def _tiny_clip() -> ClipViTConfig:
    return ClipViTConfig(width=32, layers=2, head_width=16, output_dim=16)


def _tiny_convnext() -> ConvNeXtConfig:
    return ConvNeXtConfig(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48))


def _tiny_dinov2() -> DinoV2Config:
    return DinoV2Config(embed_dim=48, depth=2, num_heads=3)


def _tiny_qformer() -> QFormerConfig:
    return QFormerConfig(
        vision_width=32,
        vision_layers=2,
        vision_heads=2,
        vision_mlp=64,
        qformer_width=32,
        qformer_layers=2,
        qformer_heads=2,
        qformer_mlp=64,
    )


def _sphinx() -> EncoderConfig:
    return EncoderConfig(
        name="sphinx",
        patch_encoders=[ClipViTConfig(), ConvNeXtConfig(), DinoV2Config()],
        query_encoder=QFormerConfig(),
    )


def _sphinx_tiny() -> EncoderConfig:
    return EncoderConfig(
        name="sphinx-tiny",
        patch_encoders=[_tiny_clip(), _tiny_convnext(), _tiny_dinov2()],
        query_encoder=_tiny_qformer(),
    )


register_encoder("sphinx", _sphinx)
register_encoder("sphinx-tiny", _sphinx_tiny)
for _name, _real, _tiny in (
    ("clip-vit", ClipViTConfig, _tiny_clip),
    ("clip-convnext", ConvNeXtConfig, _tiny_convnext),
    ("dinov2", DinoV2Config, _tiny_dinov2),
):
    register_encoder(_name, lambda n=_name, c=_real: EncoderConfig(name=n, patch_encoders=[c()]))
    register_encoder(
        f"{_name}-tiny",
        lambda n=_name, c=_tiny: EncoderConfig(name=f"{n}-tiny", patch_encoders=[c()]),
    )
register_encoder("qformer", lambda: EncoderConfig(name="qformer", query_encoder=QFormerConfig()))
register_encoder(
    "qformer-tiny", lambda: EncoderConfig(name="qformer-tiny", query_encoder=_tiny_qformer())
)
