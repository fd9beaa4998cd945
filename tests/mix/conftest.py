"""Tiny checkpoints and readers for the sphinx-mix tests.

Outputs are read back with the safetensors library itself, not with sphinx_mix's reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file


def tiny_state_dict(seed: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """A two-layer LLaMA-like state dict with an integer buffer."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(dtype)

    state = {"model.embed_tokens.weight": randn(16, 8)}
    for layer in range(2):
        prefix = f"model.layers.{layer}"
        state[f"{prefix}.self_attn.q_proj.weight"] = randn(8, 8)
        state[f"{prefix}.mlp.up_proj.weight"] = randn(12, 8)
        state[f"{prefix}.input_layernorm.weight"] = randn(8)
    state["model.norm.weight"] = randn(8)
    state["vision.proj.weight"] = randn(4, 8)
    state["model.position_ids"] = torch.arange(6)
    return state


def save_sharded(folder: Path, state: dict[str, torch.Tensor], per_shard: int = 3) -> Path:
    """Hugging Face style: model-XXXXX-of-YYYYY.safetensors files plus an index."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = list(state)
    groups = [keys[i : i + per_shard] for i in range(0, len(keys), per_shard)]
    weight_map = {}
    for number, group in enumerate(groups, start=1):
        name = f"model-{number:05d}-of-{len(groups):05d}.safetensors"
        save_file({key: state[key] for key in group}, str(folder / name))
        weight_map.update(dict.fromkeys(group, name))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def save_single(path: Path, state: dict[str, torch.Tensor]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def read_folder(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of an output folder, via its index and the safetensors library."""
    index = json.loads((Path(folder) / "model.safetensors.index.json").read_text())
    state = {}
    for name in sorted(set(index["weight_map"].values())):
        with safe_open(str(Path(folder) / name), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                state[key] = handle.get_tensor(key)
    assert set(state) == set(index["weight_map"])
    return state


def output_metadata(folder: Path) -> dict:
    index = json.loads((Path(folder) / "model.safetensors.index.json").read_text())
    return index["metadata"]["sphinx_mix"]


def assert_bf16_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Within one bf16 ulp of a float64 expectation (rounding in float32 first may differ)."""
    assert actual.dtype == torch.bfloat16
    expected = expected.double()
    ulp = torch.exp2(torch.floor(torch.log2(expected.abs().clamp_min(1e-30))) - 7)
    assert bool(((actual.double() - expected).abs() <= ulp).all())


class Kit:
    """The helpers above, handed to tests as the ``kit`` fixture."""

    tiny_state_dict = staticmethod(tiny_state_dict)
    save_sharded = staticmethod(save_sharded)
    save_single = staticmethod(save_single)
    read_folder = staticmethod(read_folder)
    output_metadata = staticmethod(output_metadata)
    assert_bf16_close = staticmethod(assert_bf16_close)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
