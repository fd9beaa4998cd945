"""CLIP ConvNeXt (open_clip's timm trunk): head norm kept, pooling removed, grid repeated."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from timm.models.convnext import ConvNeXt

from ..config import ConvNeXtConfig
from ..weights import WeightsError, assign_weights, read_state_dict
from .frozen import FrozenBackbone

_OPEN_CLIP_TRUNK = "visual.trunk."


class ConvNeXtBackbone(FrozenBackbone):
    """Tokens = [mean of the grid tokens | grid tokens], the grid repeated up to `output_grid`."""

    def __init__(self, config: ConvNeXtConfig):
        super().__init__()
        if config.resample != "repeat":
            raise ValueError(f"ConvNeXt resample rule must be 'repeat', got {config.resample!r}")
        native = config.input_size // 32
        if config.output_grid % native:
            raise ValueError(
                f"ConvNeXt grid {native}x{native} (input {config.input_size}) cannot be repeated "
                f"up to {config.output_grid}x{config.output_grid}"
            )
        self.config = config
        self.trunk = ConvNeXt(
            depths=config.depths, dims=config.dims, norm_eps=config.norm_eps, num_classes=0
        )
        self.repeat = config.output_grid // native
        self.num_tokens = config.output_grid**2 + 1
        self.out_channels = config.dims[-1]
        self.reference_prefix = config.reference_prefix
        self._channels_last = False
        self.freeze()

    def channels_last(self) -> None:
        """Convolutions run faster in NHWC on GPUs; inputs follow in `forward`."""
        self.trunk.to(memory_format=torch.channels_last)
        self._channels_last = True

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        x = views.to(self.dtype)
        if self.config.resize_dtype is not None:
            # Nearest resizing copies pixels, so rounding first and resizing in the weights'
            # dtype gives the values of a resize computed in `resize_dtype`.
            x = x.to(getattr(torch, self.config.resize_dtype)).to(self.dtype)
        side = self.config.input_size
        if x.shape[-2:] != (side, side):
            x = F.interpolate(x, size=(side, side), mode="nearest")
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        fmap = self.trunk.head.norm(self.trunk.forward_features(x))
        fmap = fmap.repeat_interleave(self.repeat, dim=2).repeat_interleave(self.repeat, dim=3)
        tokens = fmap.flatten(2).transpose(1, 2)
        return torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)

    def to_reference_keys(self, state):
        return {k.removeprefix("trunk."): v for k, v in state.items()}

    def from_reference_keys(self, state):
        return {f"trunk.{k}": v for k, v in state.items()}

    def load_pretrained(self, path: str | Path, strict: bool = True) -> list[str]:
        """An open_clip ConvNeXt checkpoint (`visual.trunk.*`) or a timm ConvNeXt file."""
        state = read_state_dict(path)
        if any(k.startswith(_OPEN_CLIP_TRUNK) for k in state):
            state = {
                k.removeprefix(_OPEN_CLIP_TRUNK): v
                for k, v in state.items()
                if k.startswith(_OPEN_CLIP_TRUNK)
            }
        state = self.from_reference_keys(
            {k: v for k, v in state.items() if not k.startswith("head.fc.")}
        )
        if not state:
            raise WeightsError(f"{path}: no ConvNeXt weights found")
        return assign_weights(self, state, str(path), strict=strict)
