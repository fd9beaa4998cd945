"""Natural-frequency sampler: proportions, resumable state, elastic rank shares."""

from __future__ import annotations

from collections import Counter

from sphinx_train.training.data.sampler import NaturalSampler, rank_share


def test_proportions_match_sizes_chi_square():
    sizes = [600, 300, 100]
    sampler = NaturalSampler(sizes, seed=3)
    drawn = Counter(source for source, _ in sampler.take(500))  # half an epoch
    expected = [500 * size / sum(sizes) for size in sizes]
    chi2 = sum((drawn[i] - e) ** 2 / e for i, e in enumerate(expected))
    assert chi2 < 9.21  # chi-square, 2 degrees of freedom, p = 0.01


def test_weights_scale_the_share():
    sampler = NaturalSampler([100, 100], weights=[3.0, 1.0], seed=0)
    drawn = Counter(source for source, _ in sampler.take(sampler.epoch_length))
    assert drawn == {0: 300, 1: 100}


def test_one_epoch_visits_every_item_once_then_reshuffles():
    sampler = NaturalSampler([5, 3], seed=1)
    first = sampler.take(8)
    assert sorted(first) == [(0, i) for i in range(5)] + [(1, i) for i in range(3)]
    second = sampler.take(8)
    assert sorted(second) == sorted(first) and second != first
    assert sampler.state_dict() == {"seed": 1, "epoch": 1, "cursor": 8}


def test_resume_on_another_world_size_sees_the_same_samples():
    straight = NaturalSampler([40, 13], seed=7)
    expected = [straight.take(6) for _ in range(6)]
    run = NaturalSampler([40, 13], seed=7)
    seen = []
    for _ in range(3):  # two ranks
        step = run.take(6)
        seen.append(rank_share(step, 0, 2) + rank_share(step, 1, 2))
    resumed = NaturalSampler([40, 13], seed=7)
    resumed.load_state_dict(run.state_dict())
    for _ in range(3):  # one rank
        seen.append(rank_share(resumed.take(6), 0, 1))
    assert [sorted(step) for step in seen] == [sorted(step) for step in expected]
