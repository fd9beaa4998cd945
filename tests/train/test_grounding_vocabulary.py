"""The nano tokenizer's grounding vocabulary: scene words and box coordinates as single tokens."""

from __future__ import annotations

import pytest

from sphinx_train import build_nano_tokenizer
from sphinx_train.nano_tokenizer import NANO_VOCAB_SIZE


@pytest.fixture(scope="module")
def grounding():
    return build_nano_tokenizer(grounding=True)


def pieces(tokenizer, text):
    return [tokenizer.decode([i]) for i in tokenizer.encode(text)]


def test_a_box_is_nine_tokens_one_per_coordinate(grounding):
    assert pieces(grounding, "[0.12,0.34,0.56,1.00]") == [
        "[", "0.12", ",", "0.34", ",", "0.56", ",", "1.00", "]",
    ]


def test_every_coordinate_has_its_own_id_after_the_plain_vocabulary(grounding, nano_tokenizer):
    ids = [grounding.encode(f"{h / 100:.2f}") for h in range(101)]
    assert all(len(one) == 1 for one in ids)
    flat = [one[0] for one in ids]
    assert len(set(flat)) == 101 and min(flat) >= nano_tokenizer.vocab_size
    assert grounding.vocab_size == nano_tokenizer.vocab_size + 101


def test_scene_phrases_are_one_token_per_word(grounding):
    assert pieces(grounding, " the small red circle") == [" the", " small", " red", " circle"]
    assert pieces(grounding, " the large purple triangle") == [
        " the", " large", " purple", " triangle",
    ]


@pytest.mark.parametrize(
    "text", ["[0.05,0.61,0.29,0.93] <p>square</p>", "0.123 and 10.50", "Ünïcode 🙂 ### x"]
)
def test_text_round_trips(grounding, text):
    assert grounding.decode(grounding.encode(text)) == text


def test_the_plain_nano_vocabulary_is_unchanged(nano_tokenizer):
    # Without the option, coordinates are still spelled out (the sphinx-nano preset's format).
    assert "0.12" not in pieces(nano_tokenizer, "[0.12,0.34,0.56,0.78]")
    assert nano_tokenizer.vocab_size < NANO_VOCAB_SIZE
