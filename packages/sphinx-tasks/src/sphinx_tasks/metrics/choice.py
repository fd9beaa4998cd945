"""Reading the chosen option letter out of a multiple-choice answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

_PATTERNS = (
    re.compile(r"^\s*\(?([A-Z])\)?\s*(?:$|[.:)\s,])"),
    re.compile(
        r"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Z])\)?(?:$|[^A-Za-z])", re.IGNORECASE
    ),
    re.compile(r"\(([A-Z])\)"),
)


def extract_choice(answer: str, options: Sequence[str] | None = None) -> str | None:
    """The option letter an answer picks, or None.

    Tries, in order: a leading letter ("B", "(B)", "B. cat"), "the answer is B", a bracketed
    "(B)" anywhere, then (with ``options``) an answer equal to one option's text.
    """
    if not isinstance(answer, str):
        return None
    letters = [chr(ord("A") + i) for i in range(len(options))] if options is not None else None
    for pattern in _PATTERNS:
        for match in pattern.finditer(answer):
            letter = match.group(1).upper()
            if letters is None or letter in letters:
                return letter
    if options:
        wanted = answer.strip().rstrip(".").lower()
        for letter, option in zip(letters or [], options, strict=True):
            if option.strip().lower() == wanted:
                return letter
    return None


def choice_accuracy(
    answers: Sequence[str], correct: Sequence[str], options: Sequence[Sequence[str]] | None = None
) -> float:
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} correct letters")
    if not answers:
        return 0.0
    per_item = options if options is not None else [None] * len(answers)
    hits = sum(
        extract_choice(a, o) == c.strip().upper()
        for a, c, o in zip(answers, correct, per_item, strict=True)
    )
    return hits / len(answers)
