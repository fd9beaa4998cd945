"""Samples and batches: text ids, labels and any number of image views per sample."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sphinx_train.conversation import IGNORE_INDEX


@dataclass
class SphinxSample:
    """One training or prompt sample.

    ``input_ids`` start with BOS; ``pixel_values`` holds this sample's views
    (n_views, 3, S, S) in view order, or is None for a text-only sample.
    """

    input_ids: list[int]
    labels: list[int] | None = None
    pixel_values: torch.Tensor | None = None


@dataclass
class SphinxBatch:
    """Collated samples. Text is always right-padded here; the model decides the final padding.

    ``image_index`` maps each view to its image, ``image_owner`` each image to its sample.
    """

    input_ids: torch.Tensor
    text_mask: torch.Tensor
    labels: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    image_index: torch.Tensor | None = None
    image_owner: torch.Tensor | None = None
    # Per sample, the coordinate layout of its image (None for text-only); set by the processor.
    layouts: list | None = None

    def to(self, device: str | torch.device) -> SphinxBatch:
        moved = {
            name: (value.to(device) if isinstance(value, torch.Tensor) else value)
            for name, value in vars(self).items()
        }
        return SphinxBatch(**moved)


def collate(samples: Sequence[SphinxSample], pad_id: int = 0) -> SphinxBatch:
    """Stack samples of different lengths and view counts into one batch."""
    if not samples:
        raise ValueError("collate: no samples")
    width = max(len(sample.input_ids) for sample in samples)
    batch_size = len(samples)
    input_ids = torch.full((batch_size, width), pad_id, dtype=torch.long)
    text_mask = torch.zeros((batch_size, width), dtype=torch.bool)
    with_labels = any(sample.labels is not None for sample in samples)
    labels = (
        torch.full((batch_size, width), IGNORE_INDEX, dtype=torch.long) if with_labels else None
    )
    views, image_index, image_owner = [], [], []
    for row, sample in enumerate(samples):
        if not sample.input_ids:
            raise ValueError(f"sample {row}: empty input_ids (expected at least the BOS token)")
        length = len(sample.input_ids)
        input_ids[row, :length] = torch.as_tensor(sample.input_ids, dtype=torch.long)
        text_mask[row, :length] = True
        if sample.labels is not None:
            if len(sample.labels) != length:
                raise ValueError(
                    f"sample {row}: {len(sample.labels)} labels for {length} input ids"
                )
            labels[row, :length] = torch.as_tensor(sample.labels, dtype=torch.long)
        if sample.pixel_values is not None:
            pixels = sample.pixel_values
            if pixels.ndim == 3:
                pixels = pixels.unsqueeze(0)
            if pixels.ndim != 4 or pixels.shape[0] == 0:
                raise ValueError(
                    f"sample {row}: pixel_values must be (n_views, 3, S, S), got {tuple(pixels.shape)}"
                )
            image_index.extend([len(image_owner)] * pixels.shape[0])
            image_owner.append(row)
            views.append(pixels)
    if not views:
        return SphinxBatch(input_ids, text_mask, labels)
    return SphinxBatch(
        input_ids,
        text_mask,
        labels,
        pixel_values=torch.cat(views),
        image_index=torch.tensor(image_index, dtype=torch.long),
        image_owner=torch.tensor(image_owner, dtype=torch.long),
    )
