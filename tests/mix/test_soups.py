"""Uniform and greedy soups with a hand-made evaluate."""

import pytest
import torch

from sphinx_mix import MixError, greedy_soup, uniform_soup


def _candidate(value):
    return {"w": torch.full((3,), float(value)), "step": torch.tensor(7)}


def test_uniform_soup_is_the_plain_average():
    soup = uniform_soup([_candidate(1), _candidate(2), _candidate(6)], progress=False)
    assert soup["w"].tolist() == [3.0, 3.0, 3.0]
    assert soup["step"].item() == 7


def test_greedy_soup_keeps_candidates_that_do_not_lower_the_score(tmp_path):
    # The held-out "score" is best when w is close to 2.
    def evaluate(state):
        return -abs(state["w"].mean().item() - 2.0)

    candidates = [_candidate(5), _candidate(2.5), _candidate(1), _candidate(0)]
    result = greedy_soup(candidates, evaluate, progress=False)
    # Individual scores: 5 -> -3, 2.5 -> -0.5, 1 -> -1, 0 -> -2; tried in that best-first order:
    # {2.5} = -0.5; + 1 -> mean 1.75 -> -0.25 kept; + 0 -> mean 1.1667 -> -0.833 dropped;
    # + 5 -> mean (2.5 + 1 + 5) / 3 = 2.8333 -> -0.833 dropped.
    assert result.individual_scores == {
        "<state dict 0>": -3.0,
        "<state dict 1>": -0.5,
        "<state dict 2>": -1.0,
        "<state dict 3>": -2.0,
    }
    assert result.kept == ["<state dict 1>", "<state dict 2>"]
    assert [(step.candidate, step.kept) for step in result.steps] == [
        ("<state dict 1>", True),
        ("<state dict 2>", True),
        ("<state dict 3>", False),
        ("<state dict 0>", False),
    ]
    assert result.steps[2].score == pytest.approx(-(2 - 3.5 / 3))
    assert result.score == pytest.approx(-0.25)
    assert result.soup["w"].tolist() == [1.75] * 3


def test_greedy_soup_keeps_ties_and_writes_the_soup(tmp_path, kit):
    paths = [kit.save_single(tmp_path / f"c{i}.safetensors", _candidate(i)) for i in (1, 3)]
    result = greedy_soup(paths, lambda state: 0.0, out=tmp_path / "soup", progress=False)
    assert result.kept == [str(paths[0]), str(paths[1])]
    assert result.soup == tmp_path / "soup"
    assert kit.read_folder(result.soup)["w"].tolist() == [2.0] * 3


def test_greedy_soup_rejects_nan_scores():
    with pytest.raises(MixError, match="NaN"):
        greedy_soup([_candidate(1)], lambda state: float("nan"), progress=False)
