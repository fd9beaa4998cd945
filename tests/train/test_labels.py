"""Label masking: only the assistant messages plus their "\\n###" are supervised."""

from __future__ import annotations

import pytest

from sphinx_train import (
    IGNORE_INDEX,
    HuggingFaceTokenizer,
    SentencePieceTokenizer,
    encode_conversation,
)

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is it?"},
    {"role": "assistant", "content": "A cat."},
    {"role": "user", "content": "How many?"},
    {"role": "assistant", "content": "Two cats."},
]
# The sphinx template renders CONVERSATION as this text (written out by hand).
RENDERED = (
    "Be brief.\n\n### Human: What is it?\n### Assistant: A cat.\n###"
    " Human: How many?\n### Assistant: Two cats.\n###"
)
WORDS = [
    "Be",
    "brief",
    ".",
    "###",
    "Human",
    ":",
    "What",
    "is",
    "it",
    "?",
    "###",
    "Assistant",
    ":",
    "A",
    "cat",
    ".",
    "###",
    "Human",
    ":",
    "How",
    "many",
    "?",
    "###",
    "Assistant",
    ":",
    "Two",
    "cats",
    ".",
    "###",
]
# Indices (in WORDS) of the supervised tokens: "A cat . ###" and "Two cats . ###".
SUPERVISED = {13, 14, 15, 16, 25, 26, 27, 28}


@pytest.fixture(scope="module")
def word_tokenizer():
    """One token per word, punctuation mark or "###", so token positions can be counted by hand."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\s+"), behavior="removed"),
            pre_tokenizers.Split(Regex(r"###|[.?:]"), behavior="isolated"),
        ]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    return HuggingFaceTokenizer(wrapped), vocab


def test_two_turn_labels_match_hand_counted_positions(word_tokenizer):
    tokenizer, vocab = word_tokenizer
    encoded = encode_conversation(tokenizer, CONVERSATION)
    word_ids = [vocab[word] for word in WORDS]
    assert encoded.input_ids == [1, *word_ids, 2]
    expected = [IGNORE_INDEX]
    expected += [word_ids[i] if i in SUPERVISED else IGNORE_INDEX for i in range(len(WORDS))]
    expected += [IGNORE_INDEX]  # EOS is appended but, as in the reference, not supervised
    assert encoded.labels == expected


def _supervised_runs(encoded):
    runs, current = [], []
    for token, label in zip(encoded.input_ids, encoded.labels, strict=True):
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    return runs + ([current] if current else [])


def test_sentencepiece_labels_cover_exactly_the_answers(sentencepiece_file):
    tokenizer = SentencePieceTokenizer(sentencepiece_file)
    encoded = encode_conversation(tokenizer, CONVERSATION)
    assert tokenizer.decode(encoded.input_ids[1:-1]) == RENDERED
    runs = [tokenizer.decode(run) for run in _supervised_runs(encoded)]
    assert runs == ["A cat.\n###", "Two cats.\n###"]


def test_byte_level_labels_cover_exactly_the_answers(nano_tokenizer):
    conversation = [
        *CONVERSATION[:3],
        {"role": "user", "content": "Où?"},
        {"role": "assistant", "content": "Là-bas, 北京."},
    ]
    encoded = encode_conversation(nano_tokenizer, conversation)
    runs = [nano_tokenizer.decode(run) for run in _supervised_runs(encoded)]
    # Byte-level BPE may glue the template's space to the first word; multi-byte characters
    # stay whole.
    assert [run.removeprefix(" ") for run in runs] == ["A cat.\n###", "Là-bas, 北京.\n###"]
