"""mergekit YAML configs for slerp, ties, dare_* and model_stock: parameters, gradients,
filters and slices reach the right keys (values checked by hand)."""

import math

import pytest
import torch
import yaml

from sphinx_mix import MixError, MixRecipe

LAYERS = ("model.layers.0.self_attn.w", "model.layers.1.self_attn.w", "model.layers.1.mlp.w")


@pytest.fixture
def models(tmp_path, kit):
    """base, a, b, c: every key holds base + its model's delta (4 entries, float32)."""
    deltas = {
        "a": [4.0, -1.0, 2.0, 0.5],
        "b": [-3.0, 2.0, 1.0, -0.1],
        "c": [-2.0, -1.0, 3.0, 1.0],
        "base": [0.0, 0.0, 0.0, 0.0],
    }
    paths = {}
    for name, delta in deltas.items():
        state = {key: torch.tensor(delta) + 1.0 for key in (*LAYERS, "model.norm.weight")}
        paths[name] = str(kit.save_single(tmp_path / f"{name}.safetensors", state))
    return paths


def run(tmp_path, kit, config: str):
    recipe = MixRecipe.from_dict(yaml.safe_load(config), "merge.yml")
    return kit.read_folder(recipe.run(tmp_path / "out", progress=False))


def close(actual, expected):
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float32))


def test_ties_config_with_density_weights_and_lambda(tmp_path, kit, models):
    merged = run(
        tmp_path,
        kit,
        f"""
merge_method: ties
base_model: {models["base"]}
models:
  - model: {models["base"]}
  - model: {models["a"]}
    parameters: {{weight: 1e-1, density: 0.5}}
  - model: {models["b"]}
    parameters: {{weight: 0.1, density: 0.5}}
  - model: {models["c"]}
    parameters: {{weight: 0.1, density: 0.5}}
parameters: {{lambda: 2.0}}
dtype: float32
""",
    )
    # trimmed means by hand (tests/mix/test_methods.py): [-2.5, 2, 2.5, 0], times lambda 2
    close(merged["model.norm.weight"], [1 - 5.0, 1 + 4.0, 1 + 5.0, 1.0])


def test_dare_linear_weight_gradient_over_layers(tmp_path, kit, models):
    merged = run(
        tmp_path,
        kit,
        f"""
merge_method: dare_linear
base_model: {models["base"]}
models:
  - model: {models["a"]}
    parameters:
      weight: [0.0, 1.0]     # layer 0 at t=0, layer 1 at t=1, others at 0
      density: 1.0
""",
    )
    close(merged[LAYERS[0]], [1.0] * 4)
    close(merged[LAYERS[1]], [5.0, 0.0, 3.0, 1.5])
    close(merged["model.norm.weight"], [1.0] * 4)


def test_slerp_config_with_filters_gradients_and_a_slice(tmp_path, kit, models):
    merged = run(
        tmp_path,
        kit,
        f"""
slices:
  - sources:
      - model: {models["base"]}
        layer_range: [0, 2]
      - model: {models["a"]}
        layer_range: [0, 2]
merge_method: slerp
base_model: {models["base"]}
parameters:
  t:
    - filter: self_attn
      value: [1.0, 0.0]
    - value: 0.5
dtype: float32
""",
    )
    base, other = torch.ones(4, dtype=torch.float64), torch.tensor([5.0, 0.0, 3.0, 1.5]).double()
    close(merged[LAYERS[0]], other.tolist())  # self_attn of layer 0: t = 1
    close(merged[LAYERS[1]], base.tolist())  # self_attn of layer 1: t = 0
    angle = math.acos(float(base @ other) / float(base.norm() * other.norm()))
    expected = (math.sin(angle / 2) * base + math.sin(angle / 2) * other) / math.sin(angle)
    torch.testing.assert_close(merged[LAYERS[2]].double(), expected)  # t = 0.5 elsewhere


def test_model_stock_config(tmp_path, kit, models):
    merged = run(
        tmp_path,
        kit,
        f"""
merge_method: model_stock
base_model: {models["base"]}
models:
  - model: {models["a"]}
  - model: {models["b"]}
""",
    )
    first, second = torch.tensor([4.0, -1.0, 2.0, 0.5]), torch.tensor([-3.0, 2.0, 1.0, -0.1])
    cos = float(first @ second / (first.norm() * second.norm()))
    t = 2 * cos / (1 + cos)
    expected = 1 + t * (first + second) / 2
    torch.testing.assert_close(merged["model.norm.weight"], expected)


def test_dare_seed_is_taken_from_the_run(tmp_path, kit, models):
    config = yaml.safe_load(
        f"""
merge_method: dare_ties
base_model: {models["base"]}
models:
  - model: {models["a"]}
    parameters: {{weight: 1.0, density: 0.5}}
"""
    )
    recipe = MixRecipe.from_dict(config, "merge.yml")
    outputs = [
        kit.read_folder(recipe.run(tmp_path / f"out{run}", progress=False, seed=seed))
        for run, seed in enumerate((0, 0, 5))
    ]
    key = LAYERS[2]
    assert torch.equal(outputs[0][key], outputs[1][key])
    assert any(not torch.equal(outputs[0][k], outputs[2][k]) for k in outputs[0])


def test_partial_slices_are_refused(tmp_path, models):
    config = {
        "merge_method": "slerp",
        "base_model": models["base"],
        "slices": [
            {
                "sources": [
                    {"model": models["base"], "layer_range": [0, 1]},
                    {"model": models["a"], "layer_range": [0, 1]},
                ]
            }
        ],
    }
    with pytest.raises(MixError, match=r"layer_range \[0, 1\].*only the whole stack \[0, 2\]"):
        MixRecipe.from_dict(config, "merge.yml")
