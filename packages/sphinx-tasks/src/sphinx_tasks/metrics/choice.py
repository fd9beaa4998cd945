"""Multiple choice (MMBench, SEED, ScienceQA): the chosen letter, accuracy, circular accuracy.

``variant="official"`` reads a letter the way the benchmarks' own scripts accept one, without
their false positives: a leading letter must stand alone ("B", "(B)", "B.", "B: dog") or be
followed by its own option's text ("B dog"), so the article in "A dog" is not read as
option A; then "the answer is B"; then "(B)" anywhere; then an answer equal to one option's
text (articles and a final period ignored). Letters beyond the number of options are
rejected (as LLaVA's ScienceQA script does). ``variant="accessory"`` is the reference's rule:
the text before the first "." must be one of A-E, whatever the number of options (the
reference then draws a random letter for an unreadable answer; here it is None, a miss).
All patterns use possessive quantifiers, so reading is linear in the answer's length.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Sequence

from ._variants import check_variant

CHOICE_VARIANTS = ("official", "accessory")
_REFERENCE_LETTERS = ("A", "B", "C", "D", "E")
_ALONE = re.compile(r"\s*+(?:\(([A-Z])\)|([A-Z])(?=$|[.:),]))")
_WITH_TEXT = re.compile(r"\s*+([A-Z])\s++(\S.*+)", re.DOTALL)
_STATED = re.compile(
    r"(?i:answer|option|choice)(?:\s++is)?\s*+:?\s*+\(?([A-Z])\)?(?![A-Za-z])"
)
_BRACKETED = re.compile(r"\(([A-Z])\)")
_LEADING_ARTICLE = re.compile(r"(?:a|an|the)\s++")


def _plain(text: str) -> str:
    """Lower-case, trimmed, final period and a leading article dropped (for text matching)."""
    text = text.strip().rstrip(".").strip().lower()
    return _LEADING_ARTICLE.sub("", text, count=1) if _LEADING_ARTICLE.match(text) else text


def extract_choice(
    answer: str, options: Sequence[str] | None = None, variant: str = "official"
) -> str | None:
    """The option letter an answer picks, or None (see the module docstring for the rules)."""
    check_variant(variant, CHOICE_VARIANTS)
    if not isinstance(answer, str):
        return None
    if variant == "accessory":
        head = answer.split(".")[0]
        return head if head in _REFERENCE_LETTERS else None
    count = len(options) if options is not None else 26
    letters = [chr(ord("A") + i) for i in range(count)]

    def allowed(letter: str) -> bool:
        return letter in letters

    alone = _ALONE.match(answer)
    if alone and allowed(letter := alone.group(1) or alone.group(2)):
        return letter
    with_text = _WITH_TEXT.match(answer)
    if (
        with_text
        and options is not None
        and allowed(letter := with_text.group(1))
        and _plain(with_text.group(2)) == _plain(options[letters.index(letter)])
    ):
        return letter
    for pattern in (_STATED, _BRACKETED):
        for match in pattern.finditer(answer):
            if allowed(match.group(1)):
                return match.group(1)
    if options:
        wanted = _plain(answer)
        for letter, option in zip(letters, options, strict=True):
            if _plain(option) == wanted:
                return letter
    return None


def choice_accuracy(
    answers: Sequence[str],
    correct: Sequence[str],
    options: Sequence[Sequence[str]] | None = None,
    variant: str = "official",
) -> float:
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} correct letters")
    if not answers:
        return 0.0
    per_item = options if options is not None else [None] * len(answers)
    hits = sum(
        extract_choice(a, o, variant) == c.strip().upper()
        for a, c, o in zip(answers, correct, per_item, strict=True)
    )
    return hits / len(answers)


def circular_accuracy(groups: Sequence[Hashable], correct: Sequence[bool]) -> float:
    """MMBench's circular evaluation: a question counts only if every rotation of its options
    (the items sharing its group, e.g. ``index % 1_000_000``) was answered right."""
    if len(groups) != len(correct):
        raise ValueError(f"{len(groups)} groups but {len(correct)} results")
    outcome: dict[Hashable, bool] = defaultdict(lambda: True)
    for group, right in zip(groups, correct, strict=True):
        outcome[group] = outcome[group] and bool(right)
    return sum(outcome.values()) / len(outcome) if outcome else 0.0
