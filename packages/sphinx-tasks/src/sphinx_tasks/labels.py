"""Token labels from character spans, using a Hugging Face tokenizer's offset mapping."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence


def _merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in spans if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def token_labels(
    offsets: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]],
    input_ids: Sequence[int],
    ignore_index: int = -100,
) -> list[int]:
    """Label each token with its id if it overlaps a supervised span, else ``ignore_index``.

    ``offsets`` is ``return_offsets_mapping=True`` output: one (start, end) per token. Tokens with
    an empty range (BOS, EOS and other added tokens) are never supervised; a trainer that wants
    the EOS supervised sets that label itself.
    """
    if len(offsets) != len(input_ids):
        raise ValueError(f"offsets has {len(offsets)} entries but input_ids has {len(input_ids)}")
    merged = _merge(spans)
    span_ends = [end for _, end in merged]
    labels = []
    for (start, end), token_id in zip(offsets, input_ids, strict=True):
        index = bisect_right(span_ends, start)
        overlaps = end > start and index < len(merged) and merged[index][0] < end
        labels.append(int(token_id) if overlaps else ignore_index)
    return labels
