"""Reading weight files from local paths and copying them into modules with strict checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

_CONTAINER_KEYS = ("state_dict", "model", "module")


class WeightsError(ValueError):
    """Weights that do not fit the module: missing or unexpected keys, or wrong shapes."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` / `.pth` / `.bin` file or a Hugging Face folder.

    `torch.load` runs with `weights_only=True` and `mmap=True`, so a large shard is not read
    into memory as a whole. Containers such as `{"state_dict": ...}` are unwrapped.
    """
    path = Path(path)
    if path.is_dir():
        return _read_hf_folder(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file or folder")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise WeightsError(f"{path}: not a readable torch weights file ({err})") from err
    while isinstance(data, Mapping) and not _is_flat(data):
        inner = next((data[k] for k in _CONTAINER_KEYS if isinstance(data.get(k), Mapping)), None)
        if inner is None:
            raise WeightsError(f"{path}: holds no state dict (top-level keys {sorted(data)[:8]})")
        data = inner
    if not isinstance(data, Mapping):
        raise WeightsError(f"{path}: expected a state dict, got {type(data).__name__}")
    return {_strip_ddp(k): v for k, v in data.items()}


def _is_flat(data: Mapping) -> bool:
    return bool(data) and all(isinstance(v, torch.Tensor) for v in data.values())


def _strip_ddp(key: str) -> str:
    return key.removeprefix("module.")


def _read_hf_folder(folder: Path) -> dict[str, torch.Tensor]:
    index_files = sorted(folder.glob("*.safetensors.index.json"))
    if index_files:
        index = json.loads(index_files[0].read_text())
        shards = sorted(set(index["weight_map"].values()))
        files = [folder / s for s in shards]
    else:
        files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise WeightsError(f"{folder}: no *.safetensors or pytorch_model*.bin files")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(read_state_dict(file))
    return state


def assign_weights(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source: str,
    *,
    strict: bool = True,
    ignored: Iterable[str] = (),
) -> list[str]:
    """Copy tensors into `module` by name, checking every key and shape first.

    Keys in `ignored` are known to be present in some files and unused here; they are
    dropped. With `strict`, any missing or unexpected key or wrong shape raises one
    `WeightsError` that lists them all. Returns the names that were not loaded.
    """
    own = module.state_dict()
    skip = set(ignored)
    given = {k: v for k, v in state_dict.items() if k not in skip}
    missing = check_keys(own, given, source, strict=strict)
    loadable = {k: v for k, v in given.items() if k in own}
    with torch.no_grad():
        for key, value in loadable.items():
            own[key].copy_(value)
    return missing


def check_keys(
    expected: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    source: str,
    *,
    strict: bool = True,
) -> list[str]:
    """Raise one `WeightsError` listing wrong shapes (always) and, with `strict`, missing and
    unexpected keys. Returns the missing keys."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong_shape = [
        f"{k}: file {tuple(given[k].shape)}, model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(given))
        if tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    problems = [describe_keys("wrong shapes", wrong_shape)] if wrong_shape else []
    if strict and missing:
        problems.append(describe_keys("missing keys", missing))
    if strict and unexpected:
        problems.append(describe_keys("unexpected keys", unexpected))
    if problems:
        raise WeightsError(f"{source}: " + "; ".join(problems))
    return missing


def describe_keys(what: str, items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {what}: {shown}{more}"
