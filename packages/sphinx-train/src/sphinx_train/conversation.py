"""Conversations to token ids and labels, with the sphinx-tasks templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sphinx_tasks import Template, get_template, token_labels
from sphinx_train.tokenizer import TextTokenizer

IGNORE_INDEX = -100

Messages = Sequence[Mapping]


@dataclass
class EncodedText:
    """Token ids starting with BOS, and labels aligned with them (``IGNORE_INDEX`` = no loss)."""

    input_ids: list[int]
    labels: list[int]


def as_messages(conversation: str | Messages) -> list[Mapping]:
    """A bare question becomes a one-turn user conversation."""
    if isinstance(conversation, str):
        return [{"role": "user", "content": conversation}]
    return list(conversation)


def encode_conversation(
    tokenizer: TextTokenizer,
    conversation: str | Messages,
    template: str | Template = "sphinx",
    *,
    add_eos: bool = True,
) -> EncodedText:
    """Training form: BOS + rendered text (+ EOS); only the template's supervised spans get labels.

    As in the reference trainer, the EOS is appended but not supervised.
    """
    rendered = get_template(template).render(as_messages(conversation))
    ids, offsets = tokenizer.encode_with_offsets(rendered.text)
    labels = token_labels(offsets, rendered.supervised_spans, ids, ignore_index=IGNORE_INDEX)
    input_ids = [tokenizer.bos_id, *ids]
    labels = [IGNORE_INDEX, *labels]
    if add_eos:
        input_ids.append(tokenizer.eos_id)
        labels.append(IGNORE_INDEX)
    return EncodedText(input_ids, labels)


def encode_prompt(
    tokenizer: TextTokenizer, conversation: str | Messages, template: str | Template = "sphinx"
) -> list[int]:
    """Generation form: BOS + rendered text ending with the open assistant turn."""
    rendered = get_template(template).render(as_messages(conversation), add_generation_prompt=True)
    return [tokenizer.bos_id, *tokenizer.encode(rendered.text)]
