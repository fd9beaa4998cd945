"""Dispatch of `create_encoder(weights=...)` to the right loader."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from .mixed import MixedVisualEncoder
from .weights import WeightsError, assign_weights, check_keys, read_state_dict

_REFERENCE_SHARD_GLOB = "consolidated.*.model.pth"
_LLM_PREFIX = "llma."
_OWN_PREFIXES = ("patch_encoders.", "query_encoder.")


def load_weights(
    encoder: MixedVisualEncoder,
    weights: str | Path | Mapping[str, str | Path],
    strict: bool = True,
) -> None:
    """Load weights into `encoder` from local paths only.

    - `{backbone name: path}`: each backbone in its library's format (open_clip file,
      timm file, original DINOv2 file, Hugging Face BLIP-2 folder).
    - a folder with `consolidated.*.model.pth` or one such shard: a reference SPHINX
      checkpoint; the vision part is the same in every model-parallel shard, so the first
      shard is read (memory-mapped) and the LLM keys are skipped.
    - any other file: a state dict with this package's names (`encoder.state_dict()`) or
      with reference names.
    """
    if encoder.start_img.is_meta:
        raise WeightsError("cannot load weights into an encoder built on the meta device")
    if isinstance(weights, Mapping):
        backbones = dict(encoder.backbones())
        for name, path in weights.items():
            if name not in backbones:
                raise WeightsError(f"weights: no backbone named {name!r}; have {sorted(backbones)}")
            backbones[name].load_pretrained(path, strict=strict)
        return
    source, kind, state = read_encoder_weights(encoder, weights)
    try:
        if kind == "own":
            assign_weights(encoder, state, source, strict=strict)
        else:
            encoder.load_reference_state_dict(state, strict=strict)
    except WeightsError as err:
        raise WeightsError(
            f"{source}: {err}".replace(f"{source}: {source}: ", f"{source}: ")
        ) from None


def check_weights(encoder: MixedVisualEncoder, weights: str | Path) -> list[str]:
    """Run every key and shape check of `load_weights` without loading anything.

    Works on an encoder built on the meta device, so a real-size checkpoint can be checked
    without allocating the model. Raises `WeightsError`; returns the names it checked.
    """
    source, kind, state = read_encoder_weights(encoder, weights)
    try:
        if kind == "own":
            check_keys(encoder.state_dict(), state, source)
        else:
            encoder.check_reference_state_dict(state)
    except WeightsError as err:
        raise WeightsError(
            f"{source}: {err}".replace(f"{source}: {source}: ", f"{source}: ")
        ) from None
    return sorted(state)


def read_encoder_weights(
    encoder: MixedVisualEncoder, weights: str | Path
) -> tuple[str, str, dict[str, torch.Tensor]]:
    """(source, "own" or "reference", state dict) of a whole-encoder weights path."""
    path = Path(weights)
    if path.is_dir() and not any(path.glob("*.safetensors*")):
        shards = sorted(path.glob(_REFERENCE_SHARD_GLOB))
        if not shards:
            raise WeightsError(f"{path}: no {_REFERENCE_SHARD_GLOB} files")
        path = shards[0]
    state = read_state_dict(path)
    if any(k.startswith(_OWN_PREFIXES) for k in state):
        return str(path), "own", state
    if any(k.startswith(_LLM_PREFIX) for k in state):
        state = {k.removeprefix(_LLM_PREFIX): v for k, v in state.items()}
        vision = set(encoder.reference_state_dict())
        prefixes = tuple(f"{b.reference_prefix}." for _, b in encoder.backbones())
        state = {k: v for k, v in state.items() if k in vision or k.startswith(prefixes)}
    return str(path), "reference", state
