"""Reading weight files from local paths and copying them into modules with strict checks."""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from ._house import confined_path, unwrap_state_dict


class WeightsError(ValueError):
    """Weights that do not fit the module: missing or unexpected keys, or wrong shapes."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` / `.pth` / `.bin` file or a Hugging Face folder.

    `torch.load` runs with `weights_only=True`, memory-mapped when the file is a zip whose
    members are all stored uncompressed (a mapped deflated member would be read as its
    compressed bytes). Containers such as `{"state_dict": ...}` are unwrapped.
    """
    path = Path(path)
    if path.is_dir():
        return _read_hf_folder(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file or folder")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=_mappable(path))
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            raise WeightsError(
                f"{path}: holds non-tensor objects, which a safe load (weights_only) refuses; "
                "save a plain state dict or a .safetensors file instead"
            ) from None
        raise WeightsError(
            f"{path}: not a readable torch weights file (corrupt, or not a torch checkpoint)"
        ) from None
    except Exception as err:
        raise WeightsError(f"{path}: not a readable torch weights file ({_first(err)})") from None
    try:
        state = unwrap_state_dict(data, path)
    except ValueError as err:
        raise WeightsError(str(err)) from None
    return {_strip_ddp(k): v for k, v in state.items()}


def _mappable(path: Path) -> bool:
    """True for a torch zip file whose members are all stored (not compressed)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return all(m.compress_type == zipfile.ZIP_STORED for m in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return False  # the legacy (pre-1.6) format cannot be mapped


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: not a valid .safetensors file ({_first(err)})") from None


def _first(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _strip_ddp(key: str) -> str:
    return key.removeprefix("module.")


def _read_hf_folder(folder: Path) -> dict[str, torch.Tensor]:
    index_files = sorted(folder.glob("*.safetensors.index.json"))
    if index_files:
        files = _indexed_shards(index_files[0])
    else:
        files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise WeightsError(f"{folder}: no *.safetensors or pytorch_model*.bin files")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(read_state_dict(file))
    return state


def _indexed_shards(index_file: Path) -> list[Path]:
    """The shard files an HF index names, confined to its folder."""
    try:
        index = json.loads(index_file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{index_file}: not a valid JSON index ({_first(err)})") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise WeightsError(f"{index_file}: no 'weight_map' mapping of tensor names to shards")
    try:
        return [
            confined_path(index_file.parent, name, what=f"{index_file}: shard")
            for name in sorted({str(v) for v in weight_map.values()})
        ]
    except ValueError as err:
        raise WeightsError(str(err)) from None


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
