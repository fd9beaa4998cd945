"""YAML recipes, ours and mergekit's linear configs."""

import pytest
import torch

from sphinx_mix import MixError, MixRecipe, load_recipe


@pytest.fixture
def pair(tmp_path, kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    paths = [
        kit.save_single(tmp_path / "a.safetensors", a),
        kit.save_sharded(tmp_path / "b", b),
    ]
    return a, b, paths


def test_own_recipe_with_patterns_rules_and_options(tmp_path, kit, pair):
    a, b, (path_a, path_b) = pair
    recipe = tmp_path / "mix.yml"
    recipe.write_text(
        f"""
operation: linear
sources: [{path_a}, {path_b}]
beta: 0.25
exclude: ["vision.*"]
rules:
  - pattern: "*.mlp.*"
    beta: 0.5
output: {tmp_path / "out"}
out_dtype: bfloat16
shard_size: 1KB
progress: false
"""
    )
    out = load_recipe(recipe).run()
    mixed = kit.read_folder(out)
    assert torch.equal(mixed["vision.proj.weight"], a["vision.proj.weight"].bfloat16())
    mlp, norm = "model.layers.0.mlp.up_proj.weight", "model.norm.weight"
    kit.assert_bf16_close(mixed[mlp], 0.5 * a[mlp].double() + 0.5 * b[mlp].double())
    kit.assert_bf16_close(mixed[norm], 0.25 * a[norm].double() + 0.75 * b[norm].double())


def test_task_arithmetic_recipe_from_json(tmp_path, kit, pair):
    a, b, (path_a, path_b) = pair
    recipe = tmp_path / "task.json"
    recipe.write_text(
        f'{{"operation": "task_arithmetic", "base": "{path_a}", "sources": ["{path_b}"], '
        f'"scales": [0.5], "progress": false}}'
    )
    out = load_recipe(recipe).run(tmp_path / "task_out")
    key = "model.embed_tokens.weight"
    torch.testing.assert_close(kit.read_folder(out)[key], a[key] + 0.5 * (b[key] - a[key]))


def test_mergekit_linear_config(tmp_path, kit, pair):
    a, b, (path_a, path_b) = pair
    recipe = tmp_path / "mergekit.yml"
    recipe.write_text(
        f"""
models:
  - model: {path_a}
    parameters:
      weight:
        - filter: self_attn
          value: 3.0
        - value: 1.0
  - model: {path_b}
    parameters:
      weight: 1.0
merge_method: linear
parameters:
  normalize: true
dtype: bfloat16
"""
    )
    out = load_recipe(recipe).run(tmp_path / "out", progress=False)
    mixed = kit.read_folder(out)
    attention, mlp = "model.layers.1.self_attn.q_proj.weight", "model.layers.1.mlp.up_proj.weight"
    # mergekit: sum(w_i * x_i) / sum(w_i) per tensor, result in `dtype`
    kit.assert_bf16_close(mixed[attention], (3 * a[attention].double() + b[attention].double()) / 4)
    kit.assert_bf16_close(mixed[mlp], (a[mlp].double() + b[mlp].double()) / 2)


def test_mergekit_without_normalize(tmp_path, pair):
    _, _, (path_a, path_b) = pair
    data = {
        "merge_method": "linear",
        "models": [
            {"model": str(path_a), "parameters": {"weight": 0.5}},
            {"model": str(path_b), "parameters": {"weight": 0.5}},
        ],
        "parameters": {"normalize": False},
    }
    mixed = MixRecipe.from_dict(data).run(tmp_path / "out", progress=False)
    assert mixed.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"merge_method": "nuslerp", "models": []}, "merge_method 'nuslerp' is not supported"),
        ({"merge_method": "linear", "slices": []}, "only one slice covering every layer"),
        ({"merge_method": "linear", "tokenizer": {}}, "mergekit keys ['tokenizer'] are not"),
        (
            {
                "merge_method": "linear",
                "models": [{"model": "x", "parameters": {"weight": {"colour": 1}}}],
            },
            "expected a number, a gradient",
        ),
        ({"merge_method": "linear", "models": [{"model": "x"}]}, "has no parameters.weight"),
        (
            {"merge_method": "ties", "models": [{"model": "x"}], "parameters": {"t": 0.5}},
            "parameters.t: not a parameter of merge_method 'ties'",
        ),
        ({"merge_method": "ties", "models": [{"model": "x"}]}, "needs a base_model"),
        (
            {"merge_method": "slerp", "base_model": "a", "models": [{"model": "a"}]},
            "exactly one other model",
        ),
        (
            {
                "merge_method": "model_stock",
                "base_model": "a",
                "models": [{"model": "b"}, {"model": "c"}],
                "tokenizer_source": "union",
            },
            "tokenizer_source 'union'",
        ),
        ({"sources": ["a"], "operation": "breadcrumbs"}, "operation 'breadcrumbs' is not one of"),
        ({"sources": ["a"], "colour": "red"}, "unknown keys ['colour']"),
        ({"weights": [1.0]}, "missing 'sources'"),
    ],
)
def test_recipe_errors(data, message):
    with pytest.raises(MixError) as caught:
        MixRecipe.from_dict(data, "recipe.yml")
    assert message in str(caught.value)


def test_unreadable_or_invalid_recipe_files(tmp_path):
    with pytest.raises(MixError, match=r"missing.yml: cannot read recipe"):
        load_recipe(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("sources: [a, b\n")
    with pytest.raises(MixError, match=r"broken.yml: not valid yml"):
        load_recipe(broken)


def test_a_binary_recipe_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"models:\n  - \xff\xfe\x00bad\n")  # the bad byte is at offset 12
    with pytest.raises(MixError, match=r"recipe\.yaml: not a UTF-8 text recipe \(byte 12\)"):
        load_recipe(path)
