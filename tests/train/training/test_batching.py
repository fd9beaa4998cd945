"""Token-budget micro-batches on true token counts (text + image tokens)."""

from __future__ import annotations

import pytest

from sphinx_train.batch import SphinxSample
from sphinx_train.training.config import ConfigError, load_config
from sphinx_train.training.data.encode import EncodedSample, split_to_count, token_budget_groups


def sized(*tokens: int) -> list[EncodedSample]:
    return [EncodedSample(SphinxSample([1], [1]), "s", count, 1) for count in tokens]


def lengths(groups) -> list[list[int]]:
    return [[item.tokens for item in group] for group in groups]


def test_rows_are_packed_while_rows_times_longest_fits_the_budget():
    # sorted 10 12 30 31 100 with budget 64: 2x12=24 ok, 3x30=90 no; 2x31=62 ok; 100 alone
    assert lengths(token_budget_groups(sized(31, 100, 10, 30, 12), 64)) == [
        [10, 12], [30, 31], [100]]
    # an image row counts its image tokens: 291 + 20 text tokens is one row of 311
    assert lengths(token_budget_groups(sized(311, 40, 40), 320)) == [[40, 40], [311]]


def test_groups_are_split_to_the_count_every_rank_needs():
    groups = token_budget_groups(sized(5, 6, 7, 8, 9), 100)  # one group of five
    # halve the largest each time: [5 6 | 7 8 9], then [7 8 9] -> [7 | 8 9]
    assert lengths(split_to_count(groups, 3)) == [[5, 6], [7], [8, 9]]
    assert lengths(split_to_count([sized(5)], 3)) == [[5]]  # one row cannot be split


def test_negative_budget_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"parallel\.micro_batch_tokens: expected >= 0"):
        load_config("nano-stage1", ["parallel.micro_batch_tokens=-1"])
