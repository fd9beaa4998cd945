"""The frozen-backbone contract shared by every wrapped library model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sphinx_tiling import NORMALIZATIONS

# One source for the statistics the views were normalised with (sphinx-tiling makes them).
CLIP_MEAN, CLIP_STD = NORMALIZATIONS["clip"]
IMAGENET_MEAN, IMAGENET_STD = NORMALIZATIONS["imagenet"]


class FrozenBackbone(nn.Module):
    """A pretrained feature extractor that never trains.

    Parameters have `requires_grad=False` and the module stays in eval mode even when a
    parent calls `.train()`, so dropout / drop-path never run and optimizers never see it.
    `dropout_in_training = True` lets a parent's `.train()` through (weights still frozen):
    the reference trains SPHINX with its Q-Former in train mode, dropout active.
    Subclasses take CLIP-normalised views `(n, 3, S, S)` and return tokens `(n, T, C)`.
    """

    out_channels: int
    num_tokens: int
    reference_prefix: str
    dropout_in_training = False
    # True when `forward(views, image_index)` needs the views' image grouping (view -> image).
    uses_image_index = False

    def freeze(self) -> None:
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenBackbone:
        return super().train(mode and self.dropout_in_training)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # Checkpoint adapters: identity unless the library renamed things since the reference.
    def to_reference_keys(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Our state dict (keys local to this module) under the reference checkpoint's names."""
        return dict(state)

    def from_reference_keys(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The inverse of `to_reference_keys`."""
        return dict(state)

    def unused_reference_keys(self, keys: list[str]) -> list[str]:
        """Keys of a reference checkpoint that this backbone knows and does not use."""
        return []

    def load_pretrained(self, path: str | Path, strict: bool = True) -> list[str]:
        """Load the library's own checkpoint format from a local path."""
        raise NotImplementedError
