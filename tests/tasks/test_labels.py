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


# The reference trainer (accessory/data/conversation/dataset.py), written out: the whole text is
# encoded with BOS and EOS; each assistant message + "\n###" is encoded alone (leading spaces
# removed, the tokenizer adding its own dummy prefix) and its tokens are supervised where they
# first occur after the previous match. Messages are "<image>"-free and stripped beforehand.
def reference_labels(encode, bos, eos, conversation):
    system = (
        "A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions."
    )
    text = system + "\n\n###"
    to_predict = []
    for role, value in conversation:
        value = value.replace("<image>", "").strip()
        text += " " + role + ": " + value + "\n" + "###"
        if role == "Assistant":
            to_predict.append(value + "\n" + "###")
    ids = [bos, *encode(text), eos]
    labels = [-100] * len(ids)
    check = 0
    for value in to_predict:
        piece = encode(value.lstrip(" "))
        at = next(i for i in range(check, len(ids)) if ids[i : i + len(piece)] == piece)
        labels[at : at + len(piece)] = piece
        check = at + len(piece)
    return text, ids, labels


CONVERSATION = [
    ("Human", "<image>\nHow many cats are there?"),
    ("Assistant", " 42 cats "),
    ("Human", "And on the mat?"),
    ("Assistant", "A cat on a mat."),
]


def sphinx_labels(encode_with_offsets, bos, eos):
    messages = [
        {"from": "human" if role == "Human" else "gpt", "value": v} for role, v in CONVERSATION
    ]
    rendered = get_template("sphinx").render(messages)
    ids, offsets = encode_with_offsets(rendered.text)
    labels = token_labels(offsets, rendered.supervised_spans, ids)
    return rendered.text, [bos, *ids, eos], [-100, *labels, -100]


class LonePieceTokenizer:
    """A stand-in for sentencepiece (used whatever is installed): a space joins the next word
    as "▁word", except before a digit, where it is a lone "▁" piece and each digit is its own
    piece; "\n###" is one piece; other characters are pieces of their own."""

    def __init__(self):
        self.vocab: dict[str, int] = {}

    def _id(self, piece):
        return self.vocab.setdefault(piece, len(self.vocab) + 3)

    def encode_with_offsets(self, text):
        text = " " + text  # the dummy prefix; offsets below are into the original text
        pieces = []
        i = 0
        while i < len(text):
            if text.startswith("\n###", i):
                pieces.append((text[i : i + 4], i, i + 4))
                i += 4
            elif text[i] == " " and i + 1 < len(text) and text[i + 1].isalpha():
                j = i + 1
                while j < len(text) and text[j].isalpha():
                    j += 1
                pieces.append(("▁" + text[i + 1 : j], i, j))
                i = j
            else:
                pieces.append(("▁" if text[i] == " " else text[i], i, i + 1))
                i += 1
        ids = [self._id(p) for p, _, _ in pieces]
        offsets = [(max(0, s - 1), max(0, e - 1)) for _, s, e in pieces]
        return ids, offsets

    def encode(self, text):
        return self.encode_with_offsets(text)[0]


def test_reference_labels_with_a_lone_piece_tokenizer():
    tok = LonePieceTokenizer()
    text, ids, labels = sphinx_labels(tok.encode_with_offsets, 1, 2)
    ref_text, ref_ids, ref_labels = reference_labels(tok.encode, 1, 2, CONVERSATION)
    assert text == ref_text
    assert ids == ref_ids
    assert labels == ref_labels
    lone = tok.vocab["▁"]
    supervised = [t for t in labels if t != -100]
    assert supervised[:3] == [lone, tok.vocab["4"], tok.vocab["2"]]  # the lone piece counts


def test_reference_labels_with_a_real_sentencepiece_model():
    spm = pytest.importorskip("sentencepiece")
    import io

    corpus = [
        " Human: How many cats are there?\n### Assistant: 42 cats\n###"
        " Human: And on the mat?\n### Assistant: A cat on a mat.\n###"
    ] * 30
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        vocab_size=300,
        model_type="bpe",
        split_digits=True,  # as LLaMA's tokenizer: digits are single pieces
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

    def encode_with_offsets(text):
        encoded = sp.encode(text, return_type="offset_mapping")
        return list(encoded["ids"]), [tuple(o) for o in encoded["offsets"]]

    text, ids, labels = sphinx_labels(encode_with_offsets, sp.bos_id(), sp.eos_id())
    ref_text, ref_ids, ref_labels = reference_labels(
        sp.encode, sp.bos_id(), sp.eos_id(), CONVERSATION
    )
    assert text == ref_text and ids == ref_ids
    assert labels == ref_labels
    assert sp.id_to_piece(next(t for t in labels if t != -100)) == "▁"  # before "42"
