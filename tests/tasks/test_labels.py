import pytest

from sphinx_tasks import get_template, token_labels


def test_overlap_rule_with_hand_made_offsets():
    # text "ab cd" ; span covers "cd" (3..5); the token " cd" (2..5) carries a leading space
    offsets = [(0, 0), (0, 2), (2, 5), (0, 0)]
    assert token_labels(offsets, [(3, 5)], [1, 10, 11, 2]) == [-100, -100, 11, -100]


def test_unsorted_overlapping_spans_and_custom_ignore():
    offsets = [(0, 1), (1, 2), (2, 3), (3, 4)]
    labels = token_labels(offsets, [(2, 4), (0, 1), (2, 3)], [5, 6, 7, 8], ignore_index=-1)
    assert labels == [5, -1, 7, 8]


def test_length_mismatch():
    with pytest.raises(ValueError, match="offsets has 1"):
        token_labels([(0, 1)], [], [1, 2])


def test_with_a_real_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    rendered = get_template("sphinx").render(
        [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Yo dog"}]
    )
    words = sorted(
        set(
            rendered.text.replace("\n", " ")
            .replace(":", " : ")
            .replace("'", " ' ")
            .replace(",", " , ")
            .replace(".", " . ")
            .split()
        )
    )
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    encoding = tokenizer.encode(rendered.text)
    labels = token_labels(encoding.offsets, rendered.supervised_spans, encoding.ids)
    # By hand: the text ends "... ### Human : Hi there ### Assistant : Yo dog ###"; only the
    # last three tokens ("Yo", "dog", "###") belong to the assistant message + "\n###".
    expected = [-100] * (len(encoding.ids) - 3) + [vocab["Yo"], vocab["dog"], vocab["###"]]
    assert encoding.tokens[-3:] == ["Yo", "dog", "###"]
    assert labels == expected
