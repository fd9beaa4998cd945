"""Which keys are mixed, and with which coefficients.

Patterns are shell-style globs matched against the whole key (``*`` also crosses dots),
e.g. ``llma.layers.*`` or ``*.attention.*``. Keys outside ``include`` or inside
``exclude`` are copied unchanged from the first source. Rules give a key group its own
coefficients; the first rule whose pattern matches a key wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .errors import MixError


@dataclass(frozen=True)
class WeightRule:
    """Coefficients (weights or scales, one per source) for the keys matching ``pattern``."""

    pattern: str
    coefficients: tuple[float, ...]


@dataclass(frozen=True)
class Selection:
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    rules: tuple[WeightRule, ...] = field(default_factory=tuple)

    def is_mixed(self, key: str) -> bool:
        return _matches(key, self.include) and not _matches(key, self.exclude)

    def coefficients_for(self, key: str, default: tuple[float, ...]) -> tuple[float, ...] | None:
        """The first matching rule's coefficients, ``default``, or None for a copied key."""
        if not self.is_mixed(key):
            return None
        for rule in self.rules:
            if fnmatchcase(key, rule.pattern):
                return rule.coefficients
        return default


def make_selection(
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
    rules: Sequence[WeightRule | tuple[str, Sequence[float]]] | None,
    count: int,
    label: str = "weights",
) -> Selection:
    """Build a :class:`Selection`, checking every rule has one coefficient per source."""
    parsed = []
    for rule in rules or ():
        if not isinstance(rule, WeightRule):
            pattern, values = rule
            rule = WeightRule(pattern, tuple(float(value) for value in values))
        if len(rule.coefficients) != count:
            raise MixError(
                f"rule {rule.pattern!r} gives {len(rule.coefficients)} {label}, "
                f"expected {count} (one per source)"
            )
        parsed.append(rule)
    return Selection(
        include=tuple(include) if include else ("*",),
        exclude=tuple(exclude or ()),
        rules=tuple(parsed),
    )


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(key, pattern) for pattern in patterns)
