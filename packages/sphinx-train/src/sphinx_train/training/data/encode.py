"""Records to training samples with true token counts, and length-grouped micro-batches."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sphinx_train.batch import SphinxSample
from sphinx_train.conversation import IGNORE_INDEX, encode_conversation
from sphinx_train.training.data.sources import Record


@dataclass
class EncodedSample:
    sample: SphinxSample
    source: str
    tokens: int  # text + image tokens, what the LLM sees
    supervised: int  # tokens with a loss (after the one-token shift)
    truncated: bool = False
    image_key: str | None = None  # names the image in a feature cache (set by the trainer)


class Dropped(ValueError):
    """A sample that cannot be trained on; the message says why."""


def _as_conversation(text, template):
    from sphinx_tasks import instructions

    if template is None or not isinstance(text, str):
        return text
    return [
        {"role": "user", "content": instructions.detailed_caption_instruction()},
        {"role": "assistant", "content": text},
    ]


def encode_record(record: Record, model, template: str | None, max_length: int) -> EncodedSample:
    """Tokenise (template or raw text), tile the image, cut the text to fit ``max_length``."""
    tokenizer = model.require_tokenizer()
    pixels, image_tokens = None, 0
    if record.image is not None:
        pixels = model.image_views(record.image, record.tiling)[0]
        image_tokens = pixels.shape[0] * model.encoder.tokens_per_view
    if template is None and isinstance(record.text, str):
        ids = tokenizer.encode(record.text)
        input_ids = [tokenizer.bos_id, *ids, tokenizer.eos_id]
        labels = [IGNORE_INDEX, *ids, tokenizer.eos_id]
    else:
        encoded = encode_conversation(tokenizer, _as_conversation(record.text, template),
                                      template or "sphinx")
        input_ids, labels = encoded.input_ids, encoded.labels
    budget = max_length - image_tokens
    if budget < 2:
        raise Dropped(f"its {image_tokens} image tokens alone exceed max_length {max_length}")
    truncated = len(input_ids) > budget
    input_ids, labels = input_ids[:budget], labels[:budget]
    supervised = sum(label != IGNORE_INDEX for label in labels[1:])
    if not supervised:
        raise Dropped(
            "no supervised token left after truncation" if truncated else "no supervised token"
        )
    return EncodedSample(
        SphinxSample(input_ids, labels, pixels), record.source, len(input_ids) + image_tokens,
        supervised, truncated,
    )


def length_groups(samples: list[EncodedSample], count: int) -> list[list[EncodedSample]]:
    """Split into ``count`` micro-batches of similar true lengths (less padding per batch)."""
    if len(samples) < count:
        raise ValueError(
            f"{len(samples)} samples on this rank for {count} micro-batches; raise per_step "
            "or lower parallel.micro_batches"
        )
    ordered = sorted(samples, key=lambda item: item.tokens)
    size, extra = divmod(len(ordered), count)
    groups, start = [], 0
    for index in range(count):
        end = start + size + (index < extra)
        groups.append(ordered[start:end])
        start = end
    return groups


def token_budget_groups(samples: list[EncodedSample], budget: int) -> list[list[EncodedSample]]:
    """Micro-batches of length-sorted samples whose padded size (rows x longest true length)
    stays within ``budget`` tokens; a sample longer than the budget is a batch of its own."""
    groups: list[list[EncodedSample]] = []
    for item in sorted(samples, key=lambda item: item.tokens):
        if groups and (len(groups[-1]) + 1) * item.tokens <= budget:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def split_to_count(groups: list[list[EncodedSample]], count: int) -> list[list[EncodedSample]]:
    """Halve the largest micro-batches until there are ``count`` of them (every rank must run
    the same number of forward passes under FSDP); past one sample per batch, stop short."""
    groups = [list(group) for group in groups]
    while len(groups) < count:
        largest = max(range(len(groups)), key=lambda index: len(groups[index]))
        group = groups[largest]
        if len(group) < 2:
            break
        half = len(group) // 2
        groups[largest : largest + 1] = [group[:half], group[half:]]
    return groups


def preflight(source, model, template: str | None, max_length: int, limit: int = 2000) -> dict:
    """Count samples that would be truncated or dropped (and why) among the first ``limit``."""
    report: Counter = Counter()
    for index in range(min(len(source), limit)):
        record = source.record(index)
        if record is None:
            report["unreadable"] += 1
            continue
        try:
            encoded = encode_record(record, model, template, max_length)
        except Dropped as why:
            report[f"dropped: {why}"] += 1
            continue
        report["truncated to max_length" if encoded.truncated else "kept whole"] += 1
    return dict(report)
