"""Typed reads of dataset fields.

A field of the wrong type means the file is not what the converter was told it is (or is
corrupt), so it stops the conversion with one line naming the file, the record and the key,
instead of copying a list into a conversation or ending in a ``TypeError`` traceback.
"""

from __future__ import annotations

import math
from typing import Any

from .base import ConversionError

MISSING: Any = object()

_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _kind(value: object) -> str:
    if value is MISSING:
        return "nothing (the key is missing)"
    if value is None:
        return "null"
    name = _KINDS.get(type(value), "a number" if isinstance(value, int | float) else "a value")
    shown = repr(value)
    return f"{name} {shown[:40] + '...' if len(shown) > 40 else shown}"


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Fields:
    """One record of a dataset file: its keys read with the type each must have."""

    __slots__ = ("data", "where")

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ConversionError(f"{where}: expected a JSON object, found {_kind(data)}")
        self.data = data
        self.where = where

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not null."""
        return self.data.get(key) is not None

    def error(self, key: str, expected: str) -> ConversionError:
        found = _kind(self.data.get(key, MISSING))
        return ConversionError(f"{self.where}: key {key!r}: expected {expected}, found {found}")

    def _absent(self, key: str, default: Any, expected: str) -> Any:
        if default is MISSING:
            raise self.error(key, expected)
        return default

    def text(self, key: str, default: Any = MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            return self._absent(key, default, "a string")
        if not isinstance(value, str):
            raise self.error(key, "a string")
        return value

    def integer(self, key: str, default: Any = MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            return self._absent(key, default, "an integer")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "an integer")
        return value

    def identifier(self, key: str, default: Any = MISSING) -> Any:
        """An id: an integer or a string."""
        value = self.data.get(key)
        if value is None:
            return self._absent(key, default, "an integer or string id")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.error(key, "an integer or string id")
        return value

    def number(self, key: str, default: Any = MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            return self._absent(key, default, "a finite number")
        if not _finite(value):
            raise self.error(key, "a finite number")
        return float(value)

    def size(self, key: str) -> int | None:
        """An image width or height in pixels (a positive whole number), or None if absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not _finite(value) or value < 1 or value != int(value):
            raise self.error(key, "a positive whole number of pixels")
        return int(value)

    def numbers(self, key: str, length: int | None = None, default: Any = MISSING) -> Any:
        """A list of finite numbers (of ``length`` items when given)."""
        expected = f"an array of {length or 'some'} finite numbers"
        value = self.data.get(key)
        if value is None:
            return self._absent(key, default, expected)
        if not isinstance(value, list) or (length is not None and len(value) != length):
            raise self.error(key, expected)
        if not all(_finite(item) for item in value):
            raise self.error(key, expected)
        return [float(item) for item in value]

    def strings(self, key: str, default: Any = MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            return self._absent(key, default, "an array of strings")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(key, "an array of strings")
        return value

    def array(self, key: str, default: Any = MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            return self._absent(key, default, "an array")
        if not isinstance(value, list):
            raise self.error(key, "an array")
        return value
