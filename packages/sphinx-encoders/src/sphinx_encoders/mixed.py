"""The mixed visual encoder: frozen backbones -> projections -> per-image token sequences."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .backbones import (
    ClipViTBackbone,
    ConvNeXtBackbone,
    DinoV2Backbone,
    FrozenBackbone,
    QFormerBackbone,
)
from .config import ClipViTConfig, ConvNeXtConfig, DinoV2Config, EncoderConfig, QFormerConfig
from .weights import assign_weights, check_keys

_BACKBONE_CLASSES = {
    ClipViTConfig: ClipViTBackbone,
    ConvNeXtConfig: ConvNeXtBackbone,
    DinoV2Config: DinoV2Backbone,
    QFormerConfig: QFormerBackbone,
}
_OWN_REFERENCE_PREFIXES = ("qformer_proj.", "visual_proj.")
_OWN_REFERENCE_KEYS = ("start_img", "end_img")


@dataclass
class EncodedImages:
    """Image token sequences ready to splice into an LLM input.

    `embeds[i, :mask[i].sum()]` are image i's tokens; the rest of the row is padding.
    """

    embeds: torch.Tensor
    mask: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(dim=1)


@dataclass
class ViewFeatures:
    """Frozen backbone outputs per view, before the projections.

    `patch`: `(n_views, patch_tokens, channels)`, the patch encoders concatenated on
    channels; `query`: `(n_views, query_tokens, channels)`. None when the encoder has none.
    """

    patch: torch.Tensor | None
    query: torch.Tensor | None

    @property
    def n_views(self) -> int:
        present = [t for t in (self.patch, self.query) if t is not None]
        if not present or len({t.shape[0] for t in present}) != 1:
            raise ValueError("ViewFeatures needs patch and/or query tensors with equal view counts")
        return present[0].shape[0]

    def select(self, index: torch.Tensor) -> ViewFeatures:
        """The features of the views `index` (a view index tensor), in that order."""
        return ViewFeatures(*(None if t is None else t[index] for t in (self.patch, self.query)))

    @staticmethod
    def cat(parts: list[ViewFeatures]) -> ViewFeatures:
        """The views of `parts` one after another."""

        def join(name):
            tensors = [getattr(p, name) for p in parts]
            return None if tensors[0] is None else torch.cat(tensors)

        return ViewFeatures(join("patch"), join("query"))


def build_backbone(config) -> FrozenBackbone:
    try:
        return _BACKBONE_CLASSES[type(config)](config)
    except KeyError:
        raise TypeError(f"no backbone for config type {type(config).__name__}") from None


def sincos_2d_positions(grid: int, dim: int) -> torch.Tensor:
    """(grid * grid, dim) fixed positions of a row-major grid of cells.

    A quarter of the channels each for sin(x), cos(x), sin(y), cos(y), where x, y are cell
    centres times pi/2 and the frequencies fall geometrically by a factor 100 across the
    quarter: the fastest turns a quarter circle per cell, the slowest is nearly linear, so
    both fine and coarse positions are a linear read-out away.
    """
    if dim % 4:
        raise ValueError(f"sincos-2d positions need a width divisible by 4, got {dim}")
    quarter = dim // 4
    frequencies = 100.0 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    centres = (torch.arange(grid, dtype=torch.float64) + 0.5) * (torch.pi / 2)
    angles = centres[:, None] * frequencies  # (grid, quarter)
    along = torch.cat([angles.sin(), angles.cos()], dim=1)  # (grid, dim / 2)
    rows = along[:, None, :].expand(grid, grid, -1)  # y of cell (row, column)
    columns = along[None, :, :].expand(grid, grid, -1)  # x of cell (row, column)
    return torch.cat([columns, rows], dim=-1).reshape(grid * grid, dim).float()


def _projection(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim))


class MixedVisualEncoder(nn.Module):
    """SPHINX's mixture of frozen visual backbones with trainable projections.

    Patch encoders (e.g. CLIP ViT, CLIP ConvNeXt, DINOv2) give one token per grid cell plus
    a CLS token each; their tokens are concatenated on channels and projected by
    `visual_proj`. The query encoder (BLIP-2 Q-Former) gives a fixed number of tokens,
    projected by `qformer_proj`. Each view becomes `[start_img | query | patch | end_img]`;
    the views of one image follow each other in view order.
    """

    def __init__(self, config: EncoderConfig, llm_dim: int | None = None):
        super().__init__()
        llm_dim = llm_dim if llm_dim is not None else config.llm_dim
        if not isinstance(llm_dim, int) or llm_dim <= 0:
            raise ValueError(f"llm_dim must be a positive int, got {llm_dim!r}")
        if not config.patch_encoders and config.query_encoder is None:
            raise ValueError(f"encoder {config.name!r} has no patch encoder and no query encoder")
        self.config = dataclasses.replace(config, llm_dim=llm_dim)
        self.patch_encoders = nn.ModuleDict(
            {c.name: build_backbone(c) for c in config.patch_encoders}
        )
        self._check_patch_grids()
        self.query_encoder = (
            None if config.query_encoder is None else build_backbone(config.query_encoder)
        )
        patch_channels = sum(e.out_channels for e in self.patch_encoders.values())
        self.visual_proj = _projection(patch_channels, llm_dim) if self.patch_encoders else None
        self.qformer_proj = (
            None
            if self.query_encoder is None
            else _projection(self.query_encoder.out_channels, llm_dim)
        )
        self._position_table()  # a grid that cannot be placed fails here, not in forward
        self.start_img = nn.Parameter(torch.rand(1, 1, llm_dim))
        self.end_img = nn.Parameter(torch.rand(1, 1, llm_dim))
        # Which files the weights came from (set by `load_weights`); None: random or in-memory.
        self.weights_identity: list | None = None

    def _check_patch_grids(self) -> None:
        counts = {name: e.num_tokens for name, e in self.patch_encoders.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(
                f"patch encoders disagree on tokens per view {counts}; give the odd ones a "
                "resampling rule (e.g. ConvNeXt output_grid) so that the grids match"
            )

    def _position_table(self) -> torch.Tensor | None:
        """Rows for [CLS | grid cells] of the patch tokens (CLS gets none), or None.

        Computed on use (microseconds), not held as a buffer: a model built on the meta
        device and filled from a checkpoint would otherwise hold uninitialised positions.
        """
        kind = self.config.patch_positions
        if kind == "none":
            return None
        cells = self.patch_tokens - 1
        grid = math.isqrt(max(cells, 0))
        if cells < 1 or grid * grid != cells:
            raise ValueError(
                f"encoder {self.config.name!r}: patch_positions {kind!r} needs patch tokens "
                f"of a CLS token and a square grid, got {self.patch_tokens}"
            )
        table = sincos_2d_positions(grid, self.config.llm_dim)
        return torch.cat([table.new_zeros(1, table.shape[1]), table])

    @property
    def llm_dim(self) -> int:
        return self.config.llm_dim

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def query_tokens(self) -> int:
        return 0 if self.query_encoder is None else self.query_encoder.num_tokens

    @property
    def patch_tokens(self) -> int:
        return next(iter(self.patch_encoders.values())).num_tokens if self.patch_encoders else 0

    @property
    def tokens_per_view(self) -> int:
        return 2 + self.query_tokens + self.patch_tokens

    def backbones(self) -> Iterator[tuple[str, FrozenBackbone]]:
        yield from self.patch_encoders.items()
        if self.query_encoder is not None:
            yield self.query_encoder.config.name, self.query_encoder

    def named_trainable_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        for name, param in self.named_parameters():
            if not name.startswith(("patch_encoders.", "query_encoder.")):
                yield name, param

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The projections and the start/end vectors; the backbones are frozen."""
        return [p for _, p in self.named_trainable_parameters()]

    def compile_backbones(self, **kwargs) -> None:
        """`torch.compile` each backbone in place (kwargs go to `nn.Module.compile`)."""
        for _, backbone in self.backbones():
            backbone.compile(**kwargs)

    def convnext_channels_last(self) -> None:
        for _, backbone in self.backbones():
            if isinstance(backbone, ConvNeXtBackbone):
                backbone.channels_last()

    # --- forward -------------------------------------------------------------------------
    def frozen_features(
        self, pixel_values: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> ViewFeatures:
        """What the backbones give for every view, before the projections.

        With frozen backbones this depends only on each image's views, so it can be cached
        (`FeatureCache`) while the projections train; it runs without autograd unless a
        backbone parameter has been set to train (e.g. a trainer's ``encoder.<prefix>``).
        `image_index` (view -> image; None: one view per image) reaches the backbones that
        build their inputs from all of an image's views (`views_from_canvas`).
        """
        self._check_views(pixel_values)
        views = pixel_values.to(self.start_img.device)
        backbones = [*self.patch_encoders.values(), self.query_encoder]
        trains = torch.is_grad_enabled() and any(
            p.requires_grad for b in backbones if b is not None for p in b.parameters()
        )
        def run(backbone):
            return backbone(views, image_index) if backbone.uses_image_index else backbone(views)

        with torch.set_grad_enabled(trains):
            patch = (
                torch.cat([run(e) for e in self.patch_encoders.values()], dim=-1)
                if self.patch_encoders
                else None
            )
            query = None if self.query_encoder is None else run(self.query_encoder)
        return ViewFeatures(patch=patch, query=query)

    def project(self, features: ViewFeatures) -> torch.Tensor:
        """The trainable step: `(n_views, tokens_per_view, llm_dim)` from frozen features."""
        self._check_features(features)
        dtype = self.start_img.dtype
        n_views = features.n_views
        parts = [self.start_img.expand(n_views, -1, -1)]
        if features.query is not None:
            parts.append(self.qformer_proj(features.query.to(self.start_img.device, dtype)))
        if features.patch is not None:
            patch = self.visual_proj(features.patch.to(self.start_img.device, dtype))
            table = self._position_table()
            if table is not None:
                patch = patch + table.to(patch.device, dtype)
            parts.append(patch)
        parts.append(self.end_img.expand(n_views, -1, -1))
        return torch.cat(parts, dim=1)

    def encode_views(
        self, pixel_values: torch.Tensor, image_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Tokens of every view, `(n_views, tokens_per_view, llm_dim)`, all views in one batch
        (`image_index` as in `frozen_features`)."""
        return self.project(self.frozen_features(pixel_values, image_index))

    def forward(
        self,
        pixel_values: torch.Tensor,
        image_index: torch.Tensor | None = None,
        n_images: int | None = None,
    ) -> EncodedImages:
        """Encode CLIP-normalised views and gather them per image.

        `image_index[v]` is the image of view v (as `sphinx_tiling.tile_batch` gives it);
        None means one view per image. `n_images` adds trailing images with no views.
        """
        tokens = self.encode_views(pixel_values, image_index)
        return gather_views(tokens, image_index, n_images)

    def from_features(
        self,
        features: ViewFeatures,
        image_index: torch.Tensor | None = None,
        n_images: int | None = None,
    ) -> EncodedImages:
        """`forward` from precomputed (e.g. cached) frozen features: projections only."""
        return gather_views(self.project(features), image_index, n_images)

    def _check_features(self, features: ViewFeatures) -> None:
        expected = {
            "patch": None
            if self.visual_proj is None
            else (self.patch_tokens, self.visual_proj[0].in_features),
            "query": None
            if self.qformer_proj is None
            else (self.query_tokens, self.qformer_proj[0].in_features),
        }
        for name, shape in expected.items():
            value = getattr(features, name)
            got = None if value is None else tuple(value.shape[1:])
            if got != shape:
                raise ValueError(
                    f"{name} features: expected (n_views, *{shape}) for encoder "
                    f"{self.config.name!r}, got {None if value is None else tuple(value.shape)}"
                )

    def _check_views(self, pixel_values: torch.Tensor) -> None:
        side = self.image_size
        if (
            not isinstance(pixel_values, torch.Tensor)
            or pixel_values.ndim != 4
            or tuple(pixel_values.shape[1:]) != (3, side, side)
        ):
            got = (
                tuple(pixel_values.shape)
                if isinstance(pixel_values, torch.Tensor)
                else pixel_values
            )
            raise ValueError(f"pixel_values must be (n_views, 3, {side}, {side}), got {got}")

    # --- reference checkpoints -----------------------------------------------------------
    def reference_state_dict(self) -> dict[str, torch.Tensor]:
        """Our weights under the reference SPHINX names (without the `llma.` prefix)."""
        out: dict[str, torch.Tensor] = {}
        for module_prefix, backbone in self._backbone_prefixes():
            local = {
                k.removeprefix(module_prefix): v
                for k, v in self.state_dict().items()
                if k.startswith(module_prefix)
            }
            for key, value in backbone.to_reference_keys(local).items():
                out[f"{backbone.reference_prefix}.{key}"] = value
        for key, value in self.state_dict().items():
            if not key.startswith(("patch_encoders.", "query_encoder.")):
                out[key] = value
        return out

    def load_reference_state_dict(
        self, state_dict: Mapping[str, torch.Tensor], strict: bool = True
    ) -> list[str]:
        """Load the vision part of a reference SPHINX checkpoint (keys without `llma.`).

        Keys that the reference stores but never uses (CLIP's text tower, DINOv2's
        mask token, the Q-Former's text feed-forward) are skipped. Missing or unexpected
        keys (with `strict`) and wrong shapes raise one `WeightsError` listing them in
        reference names. Returns the reference keys that were not found.
        """
        usable, missing = self.check_reference_state_dict(state_dict, strict=strict)
        assign_weights(self, self._from_reference(usable), "reference state dict", strict=False)
        return missing

    def check_reference_state_dict(
        self, state_dict: Mapping[str, torch.Tensor], strict: bool = True
    ) -> tuple[dict[str, torch.Tensor], list[str]]:
        """The checks of `load_reference_state_dict` without loading (works on meta too).

        Returns the entries that would be loaded and the missing reference keys.
        """
        expected = self.reference_state_dict()
        unused = set(self._unused_reference_keys(state_dict))
        given = {k: v for k, v in state_dict.items() if k not in unused}
        missing = check_keys(expected, given, "reference state dict", strict=strict)
        return {k: v for k, v in given.items() if k in expected}, missing

    def _backbone_prefixes(self) -> list[tuple[str, FrozenBackbone]]:
        pairs = [(f"patch_encoders.{n}.", e) for n, e in self.patch_encoders.items()]
        if self.query_encoder is not None:
            pairs.append(("query_encoder.", self.query_encoder))
        return pairs

    def _unused_reference_keys(self, state: Mapping[str, torch.Tensor]) -> list[str]:
        unused = []
        for _, backbone in self._backbone_prefixes():
            prefix = backbone.reference_prefix + "."
            local = [k.removeprefix(prefix) for k in state if k.startswith(prefix)]
            unused += [prefix + k for k in backbone.unused_reference_keys(local)]
        return unused

    def _from_reference(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for module_prefix, backbone in self._backbone_prefixes():
            prefix = backbone.reference_prefix + "."
            local = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            for key, value in backbone.from_reference_keys(local).items():
                out[module_prefix + key] = value
        for key, value in state.items():
            if key.startswith(_OWN_REFERENCE_PREFIXES) or key in _OWN_REFERENCE_KEYS:
                out[key] = value
        return out


def gather_views(
    tokens: torch.Tensor, image_index: torch.Tensor | None, n_images: int | None = None
) -> EncodedImages:
    """Scatter per-view tokens `(n_views, T, d)` into left-aligned per-image rows.

    One indexed copy places every view; views of an image keep their relative order.
    """
    n_views, per_view, dim = tokens.shape
    if image_index is None:
        mask = torch.ones(n_views, per_view, dtype=torch.bool, device=tokens.device)
        return EncodedImages(tokens, mask)
    image_index = torch.as_tensor(image_index, device=tokens.device)
    if image_index.shape != (n_views,) or image_index.dtype.is_floating_point:
        raise ValueError(
            f"image_index must be an integer tensor of shape ({n_views},), "
            f"got {image_index.dtype} {tuple(image_index.shape)}"
        )
    image_index = image_index.long()
    if n_views and int(image_index.min()) < 0:
        raise ValueError("image_index has negative entries")
    count = int(image_index.max()) + 1 if n_views else 0
    n_images = count if n_images is None else n_images
    if n_images < count:
        raise ValueError(f"image_index refers to image {count - 1} but n_images is {n_images}")
    counts = torch.bincount(image_index, minlength=n_images)
    max_views = int(counts.max()) if n_images else 0
    order = torch.argsort(image_index, stable=True)
    image_of = image_index[order]
    first_view = torch.cumsum(counts, 0) - counts
    slot = torch.arange(n_views, device=tokens.device) - first_view[image_of]
    embeds = tokens.new_zeros(n_images, max_views, per_view, dim)
    embeds[image_of, slot] = tokens[order]
    mask = torch.zeros(n_images, max_views, per_view, dtype=torch.bool, device=tokens.device)
    mask[image_of, slot] = True
    return EncodedImages(embeds.flatten(1, 2), mask.flatten(1))
