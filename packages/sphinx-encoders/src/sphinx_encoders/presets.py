"""Named encoder presets and the `create_encoder` factory."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ._house import Registry, UnknownNameError, dtype_name
from .config import (
    ClipViTConfig,
    ConvNeXtConfig,
    DinoV2Config,
    EncoderConfig,
    QFormerConfig,
)
from .loading import (
    assign_encoder_weights,
    check_backbone_names,
    check_encoder_weights,
    load_weights,
    read_encoder_weights,
    weights_identity,
)
from .mixed import MixedVisualEncoder
from .weights import WeightsError

__all__ = [
    "UnknownNameError",
    "create_encoder",
    "get_encoder_config",
    "list_encoders",
    "register_encoder",
]

_PRESETS: Registry[EncoderConfig | Callable[[], EncoderConfig]] = Registry("encoder preset")


def register_encoder(
    name: str,
    config: EncoderConfig | Callable[[], EncoderConfig],
    overwrite: bool = False,
) -> None:
    """Add a preset: an `EncoderConfig` (copied on each use) or a factory returning one.

    An existing name is refused unless `overwrite=True`.
    """
    if not isinstance(config, EncoderConfig) and not callable(config):
        raise TypeError(f"preset {name!r}: expected an EncoderConfig or a factory of one")
    _PRESETS.register(name, config, overwrite=overwrite)


def list_encoders(pattern: str | None = None) -> list[str]:
    """Preset names, sorted; `pattern` is a glob filter such as `"sphinx*"`."""
    return _PRESETS.names(pattern)


def get_encoder_config(name: str | Path | EncoderConfig | Mapping[str, Any]) -> EncoderConfig:
    """A preset name, a YAML/JSON config file, a config dict or an `EncoderConfig`.

    An unknown preset name raises `UnknownNameError`, listing the known ones.
    """
    if isinstance(name, EncoderConfig):
        return name
    if isinstance(name, Mapping):
        return EncoderConfig.from_dict(dict(name))
    if isinstance(name, Path) or (
        isinstance(name, str) and name not in _PRESETS and Path(name).suffix in _CONFIG_SUFFIXES
    ):
        return EncoderConfig.load(name)
    entry = _PRESETS.get(name)
    return copy.deepcopy(entry) if isinstance(entry, EncoderConfig) else entry()


_CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


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
    `dtype`: float32|fp32, bfloat16|bf16, float16|fp16|half. `device="meta"` builds the
    architecture without memory, e.g. to check shapes. The weights paths and the device
    are checked before anything is built, and a whole-encoder file's keys and shapes
    before any memory is allocated.
    """
    config = get_encoder_config(name)
    torch_dtype = None if dtype is None else getattr(torch, dtype_name(dtype))
    target = _checked_device(device)
    _check_weights_paths(config, weights)
    # A strict load of a whole-encoder file overwrites every tensor, so the (slow, for the
    # real sizes) random init is skipped: build on meta, check, then allocate and fill.
    whole_file = weights is not None and not isinstance(weights, Mapping)
    skip_init = whole_file and strict and target.type != "meta"
    with torch.device("meta" if skip_init else target):
        encoder = MixedVisualEncoder(config, llm_dim)
    if torch_dtype is not None:
        encoder.to(torch_dtype)
    if skip_init:
        read = read_encoder_weights(encoder, weights)
        check_encoder_weights(encoder, *read)
        # Sound because every tensor is in the state dict (no non-persistent buffers).
        encoder.to_empty(device=target)
        assign_encoder_weights(encoder, *read, strict=strict)
        encoder.weights_identity = weights_identity(weights)
    elif weights is not None:
        load_weights(encoder, weights, strict=strict)
    if channels_last:
        encoder.convnext_channels_last()
    if compile:
        encoder.compile_backbones()
    return encoder


def _checked_device(device: torch.device | str | None) -> torch.device:
    """The target device, refused early when this machine does not have it."""
    try:
        target = torch.device(device if device is not None else "cpu")
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r}: not a torch device ({err})") from None
    if target.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine")
        if target.index is not None and target.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA device(s)")
    elif target.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine")
    return target


def _check_weights_paths(
    config: EncoderConfig, weights: str | Path | Mapping[str, str | Path] | None
) -> None:
    """Missing paths and unknown backbone names, before a (possibly huge) build."""
    if weights is None:
        return
    if isinstance(weights, Mapping):
        names = [c.name for c in config.patch_encoders]
        if config.query_encoder is not None:
            names.append(config.query_encoder.name)
        check_backbone_names(dict.fromkeys(names), weights)
        paths = list(weights.values())
    else:
        paths = [weights]
    for path in paths:
        if not Path(path).exists():
            raise WeightsError(f"{path}: no such file or folder")


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


def _sphinx_demo() -> EncoderConfig:
    """The demo's mix: a CLIP-style ViT with 32-pixel patches and a ConvNeXt at its native
    stride 32, both on a 7x7 grid at 224, so a view is 52 tokens and CPU training is fast;
    fixed 2-D positions on the patch tokens tell the small LLM where each cell is."""
    return EncoderConfig(
        name="sphinx-demo",
        patch_encoders=[
            dataclasses.replace(_tiny_clip(), patch_size=32),
            dataclasses.replace(_tiny_convnext(), input_size=224, output_grid=7),
        ],
        patch_positions="sincos-2d",
    )


def _sphinx_light() -> EncoderConfig:
    """SPHINX-Tiny's encoder (llama_ens_light): ConvNeXt at its native 512, DINOv2 at 224."""
    return EncoderConfig(
        name="sphinx-light",
        image_size=512,
        patch_encoders=[
            ConvNeXtConfig(input_size=512, output_grid=16),
            _light_dinov2(DinoV2Config()),
        ],
    )


def _sphinx_light_tiny() -> EncoderConfig:
    return EncoderConfig(
        name="sphinx-light-tiny",
        image_size=512,
        patch_encoders=[
            ConvNeXtConfig(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48), input_size=512),
            _light_dinov2(_tiny_dinov2()),
        ],
    )


def _sphinx_light_1k() -> EncoderConfig:
    """SPHINX-Tiny-1k's encoder (llama_ens5_light): as `sphinx-light`, except that DINOv2
    takes its views from the 1024 canvas and ConvNeXt gets the views without the float16
    rounding (the reference gives it the 512 views as they are)."""
    return _light_1k(_sphinx_light(), "sphinx-light-1k")


def _sphinx_light_1k_tiny() -> EncoderConfig:
    return _light_1k(_sphinx_light_tiny(), "sphinx-light-1k-tiny")


def _light_1k(config: EncoderConfig, name: str) -> EncoderConfig:
    changes = {DinoV2Config: {"views_from_canvas": True}, ConvNeXtConfig: {"resize_dtype": None}}
    patch = [dataclasses.replace(c, **changes[type(c)]) for c in config.patch_encoders]
    return dataclasses.replace(config, name=name, patch_encoders=patch)


def _sphinx_moe() -> EncoderConfig:
    """SPHINX-MoE's encoder (mixtral_sparse_ens): `sphinx`'s four backbones on 512 views,
    ConvNeXt natively (16x16 grid), CLIP, DINOv2 and the Q-Former on a float16 bicubic
    resize to 224."""
    return _moe(_sphinx(), "sphinx-moe", canvas=False)


def _sphinx_moe_tiny() -> EncoderConfig:
    return _moe(_sphinx_tiny(), "sphinx-moe-tiny", canvas=False)


def _sphinx_moe_1k() -> EncoderConfig:
    """SPHINX-MoE-1k's encoder (mixtral_sparse_ens5): as `sphinx-moe`, except that CLIP,
    DINOv2 and the Q-Former take their views from the 1024 canvas and ConvNeXt gets the
    512 views without float16 rounding."""
    return _moe(_sphinx(), "sphinx-moe-1k", canvas=True)


def _sphinx_moe_1k_tiny() -> EncoderConfig:
    return _moe(_sphinx_tiny(), "sphinx-moe-1k-tiny", canvas=True)


def _moe(config: EncoderConfig, name: str, canvas: bool) -> EncoderConfig:
    at_224 = {"resize": "bicubic", "resize_dtype": "float16", "views_from_canvas": canvas}
    patch = [
        dataclasses.replace(c, input_size=512, resize_dtype=None if canvas else "float16")
        if isinstance(c, ConvNeXtConfig)
        else dataclasses.replace(c, **at_224)
        for c in config.patch_encoders
    ]
    query = dataclasses.replace(config.query_encoder, **at_224)
    return dataclasses.replace(
        config, name=name, image_size=512, patch_encoders=patch, query_encoder=query
    )


def _light_dinov2(config: DinoV2Config) -> DinoV2Config:
    # The reference resizes the 512 view to 224 bicubically in float16, and re-normalises
    # with one scale and one shift.
    return dataclasses.replace(
        config, resize="bicubic", resize_dtype="float16", renormalize="affine"
    )


register_encoder("sphinx", _sphinx)
register_encoder("sphinx-tiny", _sphinx_tiny)
register_encoder("sphinx-demo", _sphinx_demo)
register_encoder("sphinx-light", _sphinx_light)
register_encoder("sphinx-light-tiny", _sphinx_light_tiny)
register_encoder("sphinx-light-1k", _sphinx_light_1k)
register_encoder("sphinx-light-1k-tiny", _sphinx_light_1k_tiny)
register_encoder("sphinx-moe", _sphinx_moe)
register_encoder("sphinx-moe-tiny", _sphinx_moe_tiny)
register_encoder("sphinx-moe-1k", _sphinx_moe_1k)
register_encoder("sphinx-moe-1k-tiny", _sphinx_moe_1k_tiny)
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
