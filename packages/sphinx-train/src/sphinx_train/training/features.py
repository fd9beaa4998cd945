"""Frozen image features for ``fit`` from a disk cache (``data.feature_cache``).

The backbones are frozen, so an image's features depend only on the image, its tiling and
the backbone weights: computed in the first epoch, read back in later epochs and later runs
(`sphinx_encoders.FeatureCache`, which also keys by the encoder's fingerprint). Each rank
writes its own folder, the cache having one writer at a time; the folders of other ranks
(e.g. of a run on another number of ranks) are read too, their entries copied over when
this rank needs them, so resuming on another world size recomputes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path

import torch

from sphinx_train.training.config import ConfigError, SourceConfig

# FeatureCache namespaces entries by tiling name; fit's keys carry each sample's own tiling.
NAMESPACE = "sphinx-train-fit"


def source_identity(config: SourceConfig, seed: int) -> str:
    """What a source's images depend on: its config entry, the seed (synthetic scenes) and
    its file's size and modification time, so an edited data file gets new keys."""
    parts: dict = {"source": dataclasses.asdict(config), "seed": seed}
    if config.path and Path(config.path).exists():
        stat = Path(config.path).stat()
        parts["file"] = [stat.st_size, stat.st_mtime_ns]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


class TrainingFeatures:
    """The cache of one rank, and the keys of the images it is asked about."""

    def __init__(self, root: str | Path, model, rank: int, world_size: int):
        from sphinx_encoders import FeatureCache

        trains = [f"encoder.{name}.{key}" for name, backbone in model.encoder.backbones()
                  for key, param in backbone.named_parameters() if param.requires_grad]
        if trains:
            raise ConfigError(f"data.feature_cache: backbone parameter {trains[0]} trains, so "
                              "its features change every step; drop the cache or freeze it")
        if any(backbone.dropout_in_training for _, backbone in model.encoder.backbones()):
            raise ConfigError("data.feature_cache: model.qformer_train_mode runs the Q-Former "
                              "with dropout, so its features change every step; drop one")
        self.encoder = model.encoder
        self.default_tiling = model.tiling.name
        own = Path(root) / f"rank-{rank}-of-{world_size}"
        self.cache = FeatureCache(own)
        # snapshots: entries their owners add later are not seen (they hold other samples)
        self.others = [FeatureCache(folder) for folder in sorted(Path(root).glob("rank-*-of-*"))
                       if folder != own and (folder / "index.json").is_file()]

    def key(self, source_id: str, index: int, tiling: str | None) -> str:
        return f"{source_id}:{index}:{tiling or self.default_tiling}"

    def features(self, keys: list[str], batch):
        """The frozen features of the batch's views (None without images); images not
        cached yet are encoded and stored."""
        if batch.pixel_values is None:
            return None
        seen: Counter = Counter()
        unique = []
        for key in keys:  # the same image twice in a step (a source smaller than a step)
            seen[key] += 1
            unique.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
        self._copy_from_others(unique)
        dtype = next(backbone for _, backbone in self.encoder.backbones()).dtype
        with torch.no_grad():
            return self.cache.encode(self.encoder, batch.pixel_values.to(dtype),
                                     batch.image_index, unique, tiling=NAMESPACE)

    def _copy_from_others(self, keys: list[str]) -> None:
        """Entries this rank lacks and another rank's folder holds, stored here too."""
        if not self.others:
            return
        missing = self.cache.missing(keys, tiling=NAMESPACE, encoder=self.encoder)
        for other in self.others:
            if not missing:
                return
            absent = set(other.missing(missing, tiling=NAMESPACE, encoder=self.encoder))
            present = [key for key in missing if key not in absent]
            if present:
                hits = other.get(present, tiling=NAMESPACE, encoder=self.encoder)
                self.cache.put(present, hits, tiling=NAMESPACE, encoder=self.encoder)
                missing = [key for key in missing if key in absent]
