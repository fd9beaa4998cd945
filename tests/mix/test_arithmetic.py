"""The numbers: linear mixes and task arithmetic against formulas written out here."""

import pytest
import torch
from safetensors.torch import load_file

from sphinx_mix import MixError, engine, linear, task_arithmetic


def test_beta_mix_matches_hand_computed_values():
    real = {"w": torch.tensor([1.0, 2.0, 4.0], dtype=torch.bfloat16)}
    synthetic = {"w": torch.tensor([3.0, -2.0, 8.0], dtype=torch.bfloat16)}
    mixed = linear([real, synthetic], beta=0.25, progress=False)
    # 0.25 * real + 0.75 * synthetic, worked out by hand
    assert mixed["w"].dtype == torch.bfloat16
    assert mixed["w"].tolist() == [2.5, -1.0, 7.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_three_way_linear_mix_against_float64_formula(kit, dtype):
    states = [kit.tiny_state_dict(seed, dtype) for seed in range(3)]
    weights = [2.0, 1.0, 1.0]  # normalised to 0.5, 0.25, 0.25
    mixed = linear(states, weights, progress=False)
    for key, tensor in mixed.items():
        if not tensor.dtype.is_floating_point:
            assert torch.equal(tensor, states[0][key])
            continue
        expected = (
            0.5 * states[0][key].double()
            + 0.25 * states[1][key].double()
            + 0.25 * states[2][key].double()
        )
        assert tensor.dtype == dtype
        if dtype == torch.bfloat16:
            kit.assert_bf16_close(tensor, expected)
        else:
            torch.testing.assert_close(tensor.double(), expected, rtol=1e-6, atol=1e-6)


def test_equal_weights_by_default(kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    mixed = linear([a, b], progress=False)
    key = "model.norm.weight"
    torch.testing.assert_close(mixed[key], (a[key] + b[key]) / 2)


def test_unnormalised_weights_are_used_as_given_with_a_warning(kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    with pytest.warns(UserWarning, match="sum to 2"):
        mixed = linear([a, b], [1.0, 1.0], normalize=False, progress=False)
    key = "model.norm.weight"
    torch.testing.assert_close(mixed[key], a[key] + b[key])


def test_weights_summing_to_zero_cannot_be_normalised(kit):
    with pytest.raises(MixError, match="sum to 0"):
        linear([kit.tiny_state_dict(0), kit.tiny_state_dict(1)], [1.0, -1.0], progress=False)


def test_task_arithmetic_against_formula(kit):
    base, first, second = (kit.tiny_state_dict(seed) for seed in range(3))
    mixed = task_arithmetic(base, [first, second], [0.5, -0.25], progress=False)
    for key in ("model.embed_tokens.weight", "model.layers.1.mlp.up_proj.weight"):
        expected = (
            base[key].double()
            + 0.5 * (first[key].double() - base[key].double())
            - 0.25 * (second[key].double() - base[key].double())
        )
        torch.testing.assert_close(mixed[key].double(), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(mixed["model.position_ids"], base["model.position_ids"])


def test_task_arithmetic_in_bf16_with_one_scale_for_all(kit):
    base, tuned = kit.tiny_state_dict(0, torch.bfloat16), kit.tiny_state_dict(1, torch.bfloat16)
    mixed = task_arithmetic(base, [tuned], 2.0, progress=False)
    key = "model.layers.0.self_attn.q_proj.weight"
    kit.assert_bf16_close(
        mixed[key], base[key].double() + 2 * (tuned[key].double() - base[key].double())
    )


def test_dtype_rule_mixed_floats_take_first_source_dtype(kit):
    half = kit.tiny_state_dict(0, torch.float16)
    single = kit.tiny_state_dict(1, torch.float32)
    mixed = linear([half, single], beta=0.5, progress=False)
    key = "vision.proj.weight"
    assert mixed[key].dtype == torch.float16
    expected = 0.5 * half[key].double() + 0.5 * single[key].double()
    torch.testing.assert_close(mixed[key].double(), expected.half().double())


def test_out_dtype_and_compute_dtype(kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    mixed = linear([a, b], beta=0.5, out_dtype="bfloat16", compute_dtype="float64", progress=False)
    key = "model.norm.weight"
    assert mixed[key].dtype == torch.bfloat16
    kit.assert_bf16_close(mixed[key], 0.5 * a[key].double() + 0.5 * b[key].double())
    assert mixed["model.position_ids"].dtype == torch.int64


def test_large_tensor_spanning_several_arithmetic_chunks(kit):
    generator = torch.Generator().manual_seed(3)
    a = {"big": torch.randn(600_000, generator=generator).bfloat16()}
    b = {"big": torch.randn(600_000, generator=generator).bfloat16()}
    mixed = linear([a, b], beta=0.75, progress=False)
    kit.assert_bf16_close(mixed["big"], 0.75 * a["big"].double() + 0.25 * b["big"].double())


def test_beta_needs_two_sources(kit):
    with pytest.raises(MixError, match="exactly two"):
        linear([kit.tiny_state_dict(0)] * 3, beta=0.5, progress=False)


def test_weight_count_must_match_sources(kit):
    with pytest.raises(MixError, match="2 weights for 3 sources"):
        linear([kit.tiny_state_dict(0)] * 3, [0.5, 0.5], progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_arithmetic_on_cuda_matches_formula(kit):
    a, b = kit.tiny_state_dict(0, torch.bfloat16), kit.tiny_state_dict(1, torch.bfloat16)
    mixed = linear([a, b], beta=0.3, device="cuda", progress=False)
    key = "model.layers.0.mlp.up_proj.weight"
    assert mixed[key].device.type == "cpu"
    kit.assert_bf16_close(mixed[key], 0.3 * a[key].double() + 0.7 * b[key].double())


@pytest.mark.parametrize("workers", [1, 3])
def test_chunked_sums_split_over_workers_match_the_formula(workers):
    """Parts cover the tensor once, edges included (10 chunks of 1000 plus a ragged end)."""
    from sphinx_mix.arithmetic import Combiner

    generator = torch.Generator().manual_seed(0)
    base, first, second = (torch.randn(10_123, generator=generator) for _ in range(3))
    combiner = Combiner(torch.float64, torch.device("cpu"), chunk=1000, workers=workers)
    try:
        untouched = torch.full((10_123,), float("nan"))  # a part left out stays NaN
        mixed = combiner.weighted_sum([first, second], [0.7, 0.3], untouched.clone())
        task = combiner.task_sum(base, [first, second], [0.5, -2.0], untouched.clone())
    finally:
        combiner.close()
    b, x, y = base.double(), first.double(), second.double()
    # float64 arithmetic rounded once to float32: equal to within one float32 rounding
    torch.testing.assert_close(mixed, (0.7 * x + 0.3 * y).float(), rtol=1.2e-7, atol=1e-12)
    expected = (b + 0.5 * (x - b) - 2.0 * (y - b)).float()
    torch.testing.assert_close(task, expected, rtol=1.2e-7, atol=1e-12)


@pytest.mark.parametrize("output", ["memory", "safetensors", "reference"])
def test_tensors_larger_than_a_slice_are_mixed_in_parts(tmp_path, kit, monkeypatch, output):
    """Slices of 24 bytes (12 bf16 values) cut every tensor, mid-row and with a ragged end."""
    monkeypatch.setattr(engine, "SLICE_BYTES", 24)
    generator = torch.Generator().manual_seed(0)
    shapes = {"llma.a.weight": (7, 5), "llma.b.weight": (12,), "llma.c.weight": (3,)}
    states = [
        {key: torch.randn(shape, generator=generator).bfloat16() for key, shape in shapes.items()}
        for _ in range(2)
    ]
    if output == "memory":
        mixed = linear(states, [0.7, 0.3], progress=False)
    elif output == "safetensors":
        sources = [kit.save_single(tmp_path / f"{i}.safetensors", s) for i, s in enumerate(states)]
        folder = linear(sources, [0.7, 0.3], out=tmp_path / "out", progress=False)
        mixed = load_file(folder / "model.safetensors")
    else:
        sources = []
        for index, state in enumerate(states):
            (tmp_path / str(index)).mkdir()
            torch.save({"model": state}, tmp_path / str(index) / "consolidated.00-of-01.model.pth")
            sources.append(tmp_path / str(index))
        folder = linear(sources, [0.7, 0.3], out=tmp_path / "out", progress=False)
        mixed = torch.load(folder / "consolidated.00-of-01.model.pth", weights_only=True)["model"]
    assert set(mixed) == set(shapes)
    for key, shape in shapes.items():
        assert mixed[key].shape == shape
        kit.assert_bf16_close(mixed[key], 0.7 * states[0][key].double() + 0.3 * states[1][key].double())
