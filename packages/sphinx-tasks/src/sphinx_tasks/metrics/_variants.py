"""The scorer variants: ``official`` (default), ``accessory`` (the reference), ``lmms-eval``."""

from __future__ import annotations

from collections.abc import Sequence


def check_variant(variant: str, known: Sequence[str]) -> str:
    if variant not in known:
        raise ValueError(f"unknown scorer variant {variant!r}; expected one of {', '.join(known)}")
    return variant
