"""A disk cache of frozen-backbone features, reused across epochs and runs.

The backbones never train, so the features of a fixed image set depend only on the image,
its tiling and the frozen weights. They are stored *before* the projections
(`MixedVisualEncoder.frozen_features`), so a cache stays valid while the projections train.

Layout of the cache folder: `index.json` (entry -> shard, view count; shard -> byte size)
and `shard-NNNNNN.safetensors` files, one per `put`. Every file is written under a hidden
staging name and renamed when complete (the house `staged_file`), the shard before the
index: a killed run leaves at most an unindexed shard or a staging file, which the next
`put` replaces. One writer at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ._house import confined_path, staged_file
from .mixed import MixedVisualEncoder, ViewFeatures

_INDEX = "index.json"
_VERSION = 1


class FeatureCacheError(ValueError):
    """A cache folder whose index or shards are unreadable, truncated or inconsistent."""


def encoder_fingerprint(encoder: MixedVisualEncoder) -> str:
    """A hash of what the frozen features depend on: backbone configs, dtype and weights.

    The weights are identified by the files they were loaded from (path, size, mtime);
    an encoder with random or in-memory weights is identified by its tensors' bytes.
    The LLM width and the projections do not enter: cached features precede them.
    """
    config = encoder.config.to_dict()
    config.pop("llm_dim")
    config.pop("name")
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    backbones = list(encoder.backbones())
    digest.update(str(backbones[0][1].dtype).encode())
    if encoder.weights_identity is not None:
        digest.update(json.dumps(encoder.weights_identity).encode())
        return digest.hexdigest()[:16]
    for name, backbone in backbones:
        for key, tensor in sorted(backbone.state_dict().items()):
            if tensor.is_meta:
                raise FeatureCacheError("an encoder on the meta device has no features to cache")
            digest.update(f"{name}.{key}{tuple(tensor.shape)}".encode())
            digest.update(
                tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            )
    return digest.hexdigest()[:16]


class FeatureCache:
    """Frozen features per (image key, tiling preset name, encoder fingerprint).

    ```
    cache = FeatureCache("cache/")
    features = cache.encode(encoder, batch.pixel_values, batch.image_index, keys, tiling="sphinx-1k")
    out = encoder.from_features(features, batch.image_index)  # == encoder(pixel_values, ...)
    ```
    `encoder` arguments take a `MixedVisualEncoder` or a fingerprint string.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._index = self._read_index()
        self._fingerprints: dict[int, str] = {}

    # --- public API ----------------------------------------------------------------------
    def get(
        self, keys: Sequence[str], *, tiling: str, encoder: MixedVisualEncoder | str
    ) -> list[ViewFeatures | None]:
        """Each image's cached features (all its views), or None where it is not cached."""
        fingerprint = self._fingerprint(encoder)
        entries = [self._index["entries"].get(_entry(fingerprint, tiling, k)) for k in keys]
        by_shard: dict[str, list[int]] = {}
        for position, entry in enumerate(entries):
            if entry is not None:
                by_shard.setdefault(entry["shard"], []).append(position)
        out: list[ViewFeatures | None] = [None] * len(keys)
        for shard, positions in by_shard.items():
            tensors = self._read_shard(shard)
            for position in positions:
                name = entries[position]["name"]
                out[position] = ViewFeatures(
                    tensors.get(f"{name}.patch"), tensors.get(f"{name}.query")
                )
        return out

    def missing(
        self, keys: Sequence[str], *, tiling: str, encoder: MixedVisualEncoder | str
    ) -> list[str]:
        """The keys that have no entry (from the index alone: nothing is read)."""
        fingerprint = self._fingerprint(encoder)
        entries = self._index["entries"]
        return [k for k in keys if _entry(fingerprint, tiling, k) not in entries]

    def put(
        self,
        keys: Sequence[str],
        features: Sequence[ViewFeatures],
        *,
        tiling: str,
        encoder: MixedVisualEncoder | str,
    ) -> None:
        """Store each image's features as one new shard; existing entries are replaced."""
        if len(keys) != len(features):
            raise ValueError(f"{len(keys)} keys for {len(features)} feature sets")
        if not keys:
            return
        fingerprint = self._fingerprint(encoder)
        shard = f"shard-{self._index['next_shard']:06d}.safetensors"
        tensors, names = {}, {}
        for i, (key, feats) in enumerate(zip(keys, features, strict=True)):
            _check_key(key)
            for part in ("patch", "query"):
                value = getattr(feats, part)
                if value is not None:
                    tensors[f"{i}.{part}"] = value.detach().cpu().contiguous()
            names[_entry(fingerprint, tiling, key)] = {"shard": shard, "name": str(i)}
        from safetensors.torch import save_file

        target = self.root / shard
        # An unindexed shard of this number can only be a killed run's: replace it.
        with staged_file(target, overwrite=True) as stage:
            save_file(tensors, str(stage))
        index = json.loads(json.dumps(self._index))
        index["entries"].update(names)
        index["shards"][shard] = target.stat().st_size
        index["next_shard"] += 1
        used = {entry["shard"] for entry in index["entries"].values()}
        index["shards"] = {s: size for s, size in index["shards"].items() if s in used}
        with staged_file(self.root / _INDEX, overwrite=True) as stage:
            stage.write_text(json.dumps(index, sort_keys=True), encoding="utf-8")
        self._index = index

    def encode(
        self,
        encoder: MixedVisualEncoder,
        pixel_values: torch.Tensor,
        image_index: torch.Tensor | None,
        keys: Sequence[str],
        *,
        tiling: str,
    ) -> ViewFeatures:
        """Frozen features of every view (in `pixel_values` order), computing only the
        images not yet cached; the new ones are stored. `keys[i]` names image i."""
        n_views = pixel_values.shape[0]
        image_index = (
            torch.arange(n_views) if image_index is None else torch.as_tensor(image_index).cpu()
        )
        if image_index.shape != (n_views,) or (n_views and int(image_index.max()) >= len(keys)):
            raise ValueError(f"image_index must map {n_views} views to the {len(keys)} keys")
        if len(set(keys)) != len(keys):
            raise ValueError("keys must be unique, one per image")
        cached = self.get(keys, tiling=tiling, encoder=encoder)
        views_of = [torch.nonzero(image_index == i).flatten() for i in range(len(keys))]
        for i, hit in enumerate(cached):
            if hit is not None and hit.n_views != len(views_of[i]):
                raise FeatureCacheError(
                    f"{self.root}: {keys[i]!r} has {hit.n_views} cached views, the batch "
                    f"{len(views_of[i])}; was it tiled with another preset than {tiling!r}?"
                )
        missing = [i for i, hit in enumerate(cached) if hit is None and len(views_of[i])]
        if missing:
            rows = torch.cat([views_of[i] for i in missing])
            fresh = encoder.frozen_features(pixel_values[rows], image_index[rows])
            start, computed = 0, []
            for i in missing:
                count = len(views_of[i])
                computed.append(fresh.select(torch.arange(start, start + count)))
                start += count
            self.put([keys[i] for i in missing], computed, tiling=tiling, encoder=encoder)
            for i, feats in zip(missing, computed, strict=True):
                cached[i] = feats
        parts, order = [], []
        for i, feats in enumerate(cached):
            if feats is not None and len(views_of[i]):
                parts.append(feats)
                order.append(views_of[i])
        stacked = ViewFeatures.cat(parts)
        # back to the views' own order
        inverse = torch.empty(n_views, dtype=torch.long)
        inverse[torch.cat(order)] = torch.arange(n_views)
        device = encoder.start_img.device
        return ViewFeatures(
            *(None if t is None else t[inverse].to(device) for t in (stacked.patch, stacked.query))
        )

    def __len__(self) -> int:
        return len(self._index["entries"])

    # --- internals -----------------------------------------------------------------------
    def _fingerprint(self, encoder: MixedVisualEncoder | str) -> str:
        if isinstance(encoder, str):
            return encoder
        if id(encoder) not in self._fingerprints:
            self._fingerprints[id(encoder)] = encoder_fingerprint(encoder)
        return self._fingerprints[id(encoder)]

    def _read_index(self) -> dict:
        path = self.root / _INDEX
        if not path.exists():
            return {"version": _VERSION, "entries": {}, "shards": {}, "next_shard": 0}
        try:
            index = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FeatureCacheError(f"{path}: unreadable cache index ({err})") from None
        if not isinstance(index, dict) or index.get("version") != _VERSION:
            raise FeatureCacheError(f"{path}: not a version-{_VERSION} feature cache index")
        return index

    def _read_shard(self, shard: str) -> dict[str, torch.Tensor]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = confined_path(self.root, shard, what="cache shard")
        expected = self._index["shards"].get(shard)
        size = path.stat().st_size if path.is_file() else None
        if size != expected:
            found = "missing" if size is None else f"{size} bytes"
            raise FeatureCacheError(
                f"{path}: cache shard is {found}, the index says {expected} bytes (truncated "
                f"or replaced); delete {self.root} to rebuild the cache"
            )
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise FeatureCacheError(f"{path}: corrupt cache shard ({err})") from None


def _entry(fingerprint: str, tiling: str, key: str) -> str:
    return json.dumps([fingerprint, tiling, key])


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"cache key {key!r}: expected a non-empty string")
