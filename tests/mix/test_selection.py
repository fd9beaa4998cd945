"""Include/exclude patterns and per-pattern weights."""

import pytest
import torch

from sphinx_mix import MixError, WeightRule, linear


def test_include_mixes_only_matching_keys_and_copies_the_rest_from_source_0(kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    mixed = linear([a, b], beta=0.5, include=["model.layers.*"], progress=False)
    key = "model.layers.1.self_attn.q_proj.weight"
    torch.testing.assert_close(mixed[key], (a[key] + b[key]) / 2)
    for copied in ("vision.proj.weight", "model.embed_tokens.weight", "model.norm.weight"):
        assert torch.equal(mixed[copied], a[copied])


def test_exclude_wins_over_include(kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    mixed = linear(
        [a, b],
        beta=0.5,
        include=["model.*"],
        exclude=["*layernorm*", "model.embed_tokens.*"],
        progress=False,
    )
    assert torch.equal(
        mixed["model.layers.0.input_layernorm.weight"], a["model.layers.0.input_layernorm.weight"]
    )
    assert torch.equal(mixed["model.embed_tokens.weight"], a["model.embed_tokens.weight"])
    assert torch.equal(mixed["vision.proj.weight"], a["vision.proj.weight"])
    key = "model.norm.weight"
    torch.testing.assert_close(mixed[key], (a[key] + b[key]) / 2)


def test_per_pattern_weights_first_matching_rule_wins(kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    rules = [("*.self_attn.*", [0.9, 0.1]), WeightRule("model.layers.*", (1.0, 3.0))]
    mixed = linear([a, b], [0.5, 0.5], rules=rules, progress=False)
    attention = "model.layers.0.self_attn.q_proj.weight"
    mlp = "model.layers.0.mlp.up_proj.weight"
    other = "model.norm.weight"
    torch.testing.assert_close(mixed[attention], 0.9 * a[attention] + 0.1 * b[attention])
    torch.testing.assert_close(mixed[mlp], 0.25 * a[mlp] + 0.75 * b[mlp])  # 1:3 normalised
    torch.testing.assert_close(mixed[other], 0.5 * a[other] + 0.5 * b[other])


def test_rule_needs_one_weight_per_source(kit):
    with pytest.raises(MixError, match=r"rule 'x\.\*' gives 1 weights, expected 2"):
        linear(
            [kit.tiny_state_dict(0), kit.tiny_state_dict(1)], rules=[("x.*", [1.0])], progress=False
        )


def test_weights_as_a_function_of_the_key(kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)

    def by_layer(key):
        return [0.2, 0.8] if ".layers.1." in key else [1.0, 1.0]

    mixed = linear([a, b], by_layer, progress=False)
    deep, shallow = "model.layers.1.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.weight"
    torch.testing.assert_close(mixed[deep], 0.2 * a[deep] + 0.8 * b[deep])
    torch.testing.assert_close(mixed[shallow], 0.5 * a[shallow] + 0.5 * b[shallow])
