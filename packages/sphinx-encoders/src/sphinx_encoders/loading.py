"""Dispatch of `create_encoder(weights=...)` to the right loader."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
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

    The files' identity (path, size, modification time) is kept in
    `encoder.weights_identity`, which `encoder_fingerprint` uses.
    """
    if encoder.start_img.is_meta:
        raise WeightsError("cannot load weights into an encoder built on the meta device")
    if isinstance(weights, Mapping):
        backbones = dict(encoder.backbones())
        check_backbone_names(backbones, weights)
        for name, path in weights.items():
            backbones[name].load_pretrained(path, strict=strict)
    else:
        assign_encoder_weights(encoder, *read_encoder_weights(encoder, weights), strict=strict)
    encoder.weights_identity = weights_identity(weights)


def check_backbone_names(backbones, weights: Mapping[str, str | Path]) -> None:
    """Refuse a `{backbone: path}` mapping naming a backbone the encoder lacks."""
    for name in weights:
        if name not in backbones:
            raise WeightsError(f"weights: no backbone named {name!r}; have {sorted(backbones)}")


def assign_encoder_weights(
    encoder: MixedVisualEncoder,
    source: str,
    kind: str,
    state: dict[str, torch.Tensor],
    strict: bool = True,
) -> None:
    """Copy what `read_encoder_weights` gave into `encoder`, all checks first."""
    with _named(source):
        if kind == "own":
            assign_weights(encoder, state, source, strict=strict)
        else:
            encoder.load_reference_state_dict(state, strict=strict)


def check_weights(encoder: MixedVisualEncoder, weights: str | Path) -> list[str]:
    """Run every key and shape check of `load_weights` without loading anything.

    Works on an encoder built on the meta device, so a real-size checkpoint can be checked
    without allocating the model. Raises `WeightsError`; returns the names it checked.
    """
    source, kind, state = read_encoder_weights(encoder, weights)
    check_encoder_weights(encoder, source, kind, state)
    return sorted(state)


def check_encoder_weights(
    encoder: MixedVisualEncoder, source: str, kind: str, state: dict[str, torch.Tensor]
) -> None:
    with _named(source):
        if kind == "own":
            check_keys(encoder.state_dict(), state, source)
        else:
            encoder.check_reference_state_dict(state)


@contextmanager
def _named(source: str):
    """Prefix a `WeightsError` with the file it is about (once)."""
    try:
        yield
    except WeightsError as err:
        raise WeightsError(
            f"{source}: {err}".replace(f"{source}: {source}: ", f"{source}: ")
        ) from None


def weights_identity(weights: str | Path | Mapping[str, str | Path]) -> list[list]:
    """[name, resolved path, size, mtime_ns] of every file under the weights paths."""
    items = weights.items() if isinstance(weights, Mapping) else [("", weights)]
    out = []
    for name, given in items:
        path = Path(given).resolve()
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            stat = file.stat()
            out.append([name, str(file), stat.st_size, stat.st_mtime_ns])
    return out


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
