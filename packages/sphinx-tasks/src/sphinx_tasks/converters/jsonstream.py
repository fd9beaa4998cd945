"""Reading big JSON files piece by piece with the standard library's decoder.

Top-level members (or array items) are decoded one at a time, so a 1 GB annotation file never
needs to sit in memory as one Python object.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from os import PathLike
from pathlib import Path
from typing import Any

_WHITESPACE = " \t\r\n"
_CHUNK = 1 << 20


class JsonStreamError(ValueError):
    """The file is not the JSON shape a converter expected."""


class _Reader:
    def __init__(self, handle, path: str) -> None:
        self.handle = handle
        self.path = path
        self.buffer = ""
        self.pos = 0
        self.consumed = 0
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _fill(self, at_least: int = _CHUNK) -> None:
        data = self.handle.read(max(at_least, _CHUNK))
        if not data:
            self.eof = True
            return
        self.consumed += self.pos
        self.buffer = self.buffer[self.pos :] + data
        self.pos = 0

    def error(self, message: str) -> JsonStreamError:
        return JsonStreamError(
            f"{self.path}: {message} (near character {self.consumed + self.pos})"
        )

    def peek(self) -> str:
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buffer) or self.eof:
                return self.buffer[self.pos] if self.pos < len(self.buffer) else ""
            self._fill()

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise self.error(f"expected {char!r}, found {found or 'end of file'!r}")
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                result, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self.error(f"invalid JSON: {exc.msg}") from None
                self._fill(len(self.buffer))
                continue
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(self.buffer) and not self.eof:
                self._fill(len(self.buffer))
                continue
            self.pos = end
            return result

    def separator(self, closing: str) -> bool:
        """Consume ',' (True: more follows) or the closing bracket (False)."""
        char = self.peek()
        if char == ",":
            self.pos += 1
            return True
        if char == closing:
            self.pos += 1
            return False
        raise self.error(f"expected ',' or {closing!r}, found {char or 'end of file'!r}")

    def items(self) -> Iterator[Any]:
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if not self.separator("]"):
                return


_ARRAY_START = object()


def _iter(path: str | PathLike, stream: Collection[str]) -> Iterator[tuple[str | None, Any]]:
    name = str(path)
    with Path(path).open(encoding="utf-8") as handle:
        reader = _Reader(handle, name)
        first = reader.peek()
        if first == "[":
            for item in reader.items():
                yield None, item
            return
        if first != "{":
            raise reader.error("expected a JSON object or array")
        reader.pos += 1
        if reader.peek() == "}":
            return
        while True:
            key = reader.value()
            if not isinstance(key, str):
                raise reader.error("expected an object key")
            reader.expect(":")
            if key in stream:
                if reader.peek() != "[":
                    raise reader.error(f"expected key {key!r} to hold an array")
                yield key, _ARRAY_START
                for item in reader.items():
                    yield key, item
            else:
                yield key, reader.value()
            if not reader.separator("}"):
                return


def iter_json(
    path: str | PathLike, stream: Collection[str] = ()
) -> Iterator[tuple[str | None, Any]]:
    """Decode a JSON file piece by piece.

    A top-level array yields ``(None, item)`` per item. A top-level object yields
    ``(key, value)`` per member, except that members named in ``stream`` must be arrays and yield
    ``(key, item)`` per item.
    """
    for member, value in _iter(path, stream):
        if value is not _ARRAY_START:
            yield member, value


def iter_array(path: str | PathLike, key: str | None = None) -> Iterator[Any]:
    """Items of the top-level array, or of the array under top-level ``key``."""
    found = False
    for member, item in _iter(path, () if key is None else (key,)):
        if key is None and member is not None:
            raise JsonStreamError(f"{path}: expected a top-level JSON array")
        if key is not None and member is None:
            raise JsonStreamError(
                f"{path}: expected a JSON object with key {key!r}, found an array"
            )
        if member == key:
            found = True
            if item is not _ARRAY_START:
                yield item
    if key is not None and not found:
        raise JsonStreamError(f"{path}: no top-level key {key!r}")


def iter_object(path: str | PathLike) -> Iterator[tuple[str, Any]]:
    """(key, value) members of the top-level object."""
    for member, value in _iter(path, ()):
        if member is None:
            raise JsonStreamError(f"{path}: expected a top-level JSON object, found an array")
        yield member, value
