"""slerp, ties, dare_linear, dare_ties and model_stock against their papers' formulas.

Every expectation is computed by hand (or by the paper's closed form with Python floats)
on vectors of a few entries.
"""

import math

import pytest
import torch

from sphinx_mix import MixError, dare_linear, dare_ties, model_stock, slerp, ties

QUIET = {"progress": False}


def sd(**tensors):
    return {key: torch.tensor(values, dtype=torch.float32) for key, values in tensors.items()}


def close(actual, expected):
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float32))


# SLERP (Shoemake 1985): sin((1-t)W)/sin W * v0 + sin(tW)/sin W * v1, cos W = <v0,v1>/|v0||v1|
@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0.5, [math.sqrt(0.5), math.sqrt(0.5)]),
        (1 / 3, [math.cos(math.pi / 6), math.sin(math.pi / 6)]),  # 30 degrees of 90
        (0.0, [1.0, 0.0]),
        (1.0, [0.0, 1.0]),
    ],
)
def test_slerp_on_a_quarter_circle(t, expected):
    merged = slerp(sd(w=[1.0, 0.0]), sd(w=[0.0, 1.0]), t, **QUIET)
    close(merged["w"], expected)


def test_slerp_keeps_the_lengths_of_unnormalised_tensors():
    # angle 90 degrees, t = 1/2: both coefficients sin(45)/sin(90) = sqrt(1/2)
    merged = slerp(sd(w=[[2.0, 0.0]]), sd(w=[[0.0, 1.0]]), 0.5, **QUIET)
    close(merged["w"], [[2 * math.sqrt(0.5), math.sqrt(0.5)]])


def test_slerp_falls_back_to_lerp_for_parallel_tensors():
    merged = slerp(sd(w=[1.0, 2.0]), sd(w=[2.0, 4.0]), 0.25, **QUIET)
    close(merged["w"], [0.75 * 1 + 0.25 * 2, 0.75 * 2 + 0.25 * 4])


def test_slerp_per_key_factor_and_excluded_keys():
    base = sd(**{"a.w": [1.0, 0.0], "b.w": [1.0, 0.0], "c.w": [1.0, 0.0]})
    other = sd(**{"a.w": [0.0, 1.0], "b.w": [0.0, 1.0], "c.w": [0.0, 1.0]})
    merged = slerp(base, other, lambda key: 1.0 if key == "b.w" else 0.5, exclude=["c.*"], **QUIET)
    close(merged["a.w"], [math.sqrt(0.5), math.sqrt(0.5)])
    close(merged["b.w"], [0.0, 1.0])
    close(merged["c.w"], [1.0, 0.0])  # copied from the base


# TIES (Yadav et al. 2023): trim to the top-k magnitudes, elect the sign of the summed
# trimmed vectors, average only the agreeing entries: tau = sum_{p in A} tau_p / |A|.
BASE = [1.0, 1.0, 1.0, 1.0]
DELTAS = ([4.0, -1.0, 2.0, 0.5], [-3.0, 2.0, 1.0, -0.1], [-2.0, -1.0, 3.0, 1.0])


def fine_tuned(delta):
    return sd(w=[b + d for b, d in zip(BASE, delta, strict=True)])


def test_ties_trim_elect_disjoint_merge_by_hand():
    # density 0.5 keeps 2 of 4: [4,0,2,0], [-3,2,0,0], [-2,0,3,0]
    # signs of the sums: -1 -> -, 2 -> +, 5 -> +, 0 -> + (ties go to +)
    # agreeing means: (-3-2)/2, 2/1, (2+3)/2, nothing -> 0
    merged = ties(sd(w=BASE), [fine_tuned(d) for d in DELTAS], 1.0, 0.5, **QUIET)
    close(merged["w"], [1 - 2.5, 1 + 2.0, 1 + 2.5, 1.0])


def test_ties_weights_scale_and_no_normalize():
    sources = [fine_tuned(d) for d in DELTAS]
    # with normalize the weights cancel out where all agreeing entries share one weight
    halved = ties(sd(w=BASE), sources, [0.5, 0.5, 0.5], 0.5, scale=0.5, **QUIET)
    close(halved["w"], [1 - 1.25, 1 + 1.0, 1 + 1.25, 1.0])
    # without normalize: weighted sums of the agreeing entries, weights (1, 2, 1)
    # weighted trimmed: [4,0,2,0], [-6,4,0,0], [-2,0,3,0]; signs -, +, +, +
    summed = ties(sd(w=BASE), sources, [1, 2, 1], 0.5, normalize=False, **QUIET)
    close(summed["w"], [1 - 8.0, 1 + 4.0, 1 + 5.0, 1.0])


def test_ties_density_one_keeps_everything():
    # no trim: sums 4-3-2=-1 (-), 0 (+), 6 (+), 1.4 (+)
    merged = ties(sd(w=BASE), [fine_tuned(d) for d in DELTAS], 1.0, 1.0, **QUIET)
    close(merged["w"], [1 - 2.5, 1 + 2.0, 1 + 2.0, 1 + 0.75])


# DARE (Yu et al. 2023): m ~ Bernoulli(density), delta' = m * delta / density.
def big_pair(delta=1.0, size=20_000):
    return sd(w=[0.5] * size), sd(w=[0.5 + delta] * size)


def test_dare_linear_drops_and_rescales_by_the_density():
    base, other = big_pair()
    merged = dare_linear(base, [other], 1.0, 0.25, seed=3, **QUIET)["w"]
    values = set(merged.tolist())
    assert values == {0.5, 0.5 + 4.0}  # dropped, or kept and rescaled by 1/0.25
    kept = float((merged > 1).double().mean())
    assert abs(kept - 0.25) < 0.02  # 20 000 draws: 4.6 standard deviations


def test_dare_is_seeded_and_does_not_depend_on_other_keys():
    base, other = big_pair(size=2000)
    base2 = {"a": base["w"], "z": base["w"].clone()}
    other2 = {"a": other["w"], "z": other["w"].clone()}
    first = dare_linear(base2, [other2], 1.0, 0.5, seed=1, **QUIET)
    again = dare_linear(base2, [other2], 1.0, 0.5, seed=1, exclude=["a"], **QUIET)
    other_seed = dare_linear(base2, [other2], 1.0, 0.5, seed=2, **QUIET)
    assert torch.equal(first["z"], again["z"])
    assert not torch.equal(first["z"], other_seed["z"])
    assert not torch.equal(first["a"], first["z"])  # each key draws its own mask


def test_dare_l1_rescale_restores_the_l1_norm():
    base, other = big_pair(size=1000)
    merged = dare_linear(base, [other], 1.0, 0.5, rescale="l1", **QUIET)["w"]
    delta = merged - 0.5
    kept = int((delta != 0).sum())
    torch.testing.assert_close(delta.abs().sum(), torch.tensor(1000.0))
    torch.testing.assert_close(delta[delta != 0], torch.full((kept,), 1000.0 / kept))


def test_dare_with_density_one_is_task_arithmetic_and_ties():
    base = sd(w=[1.0, 1.0])
    first, second = sd(w=[2.0, 3.0]), sd(w=[4.0, 0.0])  # deltas [1, 2] and [3, -1]
    linear_result = dare_linear(base, [first, second], [0.5, 0.25], 1.0, **QUIET)
    close(linear_result["w"], [1 + 0.5 + 0.75, 1 + 1.0 - 0.25])
    # signs of the sums 4 (+) and 1 (+); without normalize the agreeing entries add up
    ties_result = dare_ties(base, [first, second], 1.0, 1.0, **QUIET)
    close(ties_result["w"], [1 + 4.0, 1 + 2.0])


# Model Stock (Jang et al. 2024): t = N cos / (1 + (N - 1) cos), w = t * avg + (1 - t) * w0
def stock(cos, count):
    return count * cos / (1 + (count - 1) * cos)


def test_model_stock_two_models():
    base = sd(w=[1.0, 1.0])
    orthogonal = model_stock(base, [sd(w=[2.0, 1.0]), sd(w=[1.0, 2.0])], **QUIET)
    close(orthogonal["w"], [1.0, 1.0])  # cos 0: t = 0, the base
    t = stock(1 / math.sqrt(2), 2)  # offsets (1, 0) and (1, 1)
    merged = model_stock(base, [sd(w=[2.0, 1.0]), sd(w=[2.0, 2.0])], **QUIET)
    close(merged["w"], [1 + t * 1.0, 1 + t * 0.5])


def test_model_stock_three_models_average_the_pairwise_cosines():
    base = sd(w=[1.0, 1.0])
    others = [sd(w=[2.0, 1.0]), sd(w=[1.0, 2.0]), sd(w=[2.0, 2.0])]
    t = stock((0 + 2 / math.sqrt(2)) / 3, 3)  # cosines 0, 1/sqrt2, 1/sqrt2
    merged = model_stock(base, others, **QUIET)
    close(merged["w"], [1 + t * 2 / 3, 1 + t * 2 / 3])


def test_model_stock_filter_wise_takes_one_ratio_per_row():
    base = sd(w=[[1.0, 1.0], [0.0, 0.0]])
    others = [sd(w=[[2.0, 1.0], [1.0, 0.0]]), sd(w=[[1.0, 2.0], [1.0, 0.0]])]
    merged = model_stock(base, others, filter_wise=True, **QUIET)
    # row 0: orthogonal offsets, t = 0; row 1: parallel offsets, cos 1, t = 1
    close(merged["w"], [[1.0, 1.0], [1.0, 0.0]])


def test_model_stock_needs_two_fine_tuned_models():
    with pytest.raises(MixError, match="at least two sources besides the base"):
        model_stock(sd(w=[1.0]), [sd(w=[2.0])], **QUIET)


def test_integer_tensors_are_copied_from_the_base():
    base = {"w": torch.tensor([1.0, 0.0]), "ids": torch.arange(3)}
    other = {"w": torch.tensor([0.0, 1.0]), "ids": torch.arange(3) + 5}
    merged = slerp(base, other, 0.5, **QUIET)
    assert torch.equal(merged["ids"], torch.arange(3))


def test_bad_coefficients_name_what_is_wrong():
    with pytest.raises(MixError, match="got 1 weights for 2 sources"):
        ties(sd(w=[1.0]), [sd(w=[2.0]), sd(w=[3.0])], [1.0], **QUIET)
    with pytest.raises(MixError, match="density: nan is not a finite number"):
        dare_ties(sd(w=[1.0]), [sd(w=[2.0])], 1.0, float("nan"), **QUIET)
    with pytest.raises(MixError, match="rescale='l2'"):
        dare_linear(sd(w=[1.0]), [sd(w=[2.0])], rescale="l2", **QUIET)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_whole_tensor_methods_on_cuda_give_the_hand_values():
    cuda = {"device": "cuda", **QUIET}
    close(slerp(sd(w=[1.0, 0.0]), sd(w=[0.0, 1.0]), 0.5, **cuda)["w"], [math.sqrt(0.5)] * 2)
    merged = ties(sd(w=BASE), [fine_tuned(d) for d in DELTAS], 1.0, 0.5, **cuda)
    close(merged["w"], [1 - 2.5, 1 + 2.0, 1 + 2.5, 1.0])
    base, other = big_pair(size=4000)
    dropped = dare_linear(base, [other], 1.0, 0.25, seed=3, **cuda)["w"]
    assert torch.equal(dropped, dare_linear(base, [other], 1.0, 0.25, seed=3, **QUIET)["w"])
    t = stock(1 / math.sqrt(2), 2)
    stocked = model_stock(sd(w=[1.0, 1.0]), [sd(w=[2.0, 1.0]), sd(w=[2.0, 2.0])], **cuda)
    close(stocked["w"], [1 + t * 1.0, 1 + t * 0.5])
