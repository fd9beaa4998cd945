"""Reading big JSON files piece by piece with the standard library's decoder.

Top-level members (or array items) are decoded one at a time, so a 1 GB annotation file never
needs to sit in memory as one Python object. Hostile files fail early and cheaply: a syntax
error is reported where it is found (the reader buffers more text only while the value could
still be complete), and nesting too deep or integers too long for Python become one
``JsonStreamError`` naming the file and the byte offset, never a ``RecursionError``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from os import PathLike
from pathlib import Path
from typing import Any

_WHITESPACE = " \t\r\n"
_CHUNK = 1 << 20
# A value cut by the end of the buffer fails within this many characters of it
# (the longest literal is "-Infinity"); a failure further back is a real syntax error.
_TAIL = 10


class JsonStreamError(ValueError):
    """The file is not the JSON shape a converter expected."""


def _truncated(exc: json.JSONDecodeError, buffer_end: int) -> bool:
    """Whether the decoder failed only because the value goes on past the buffer."""
    if exc.msg.startswith("Unterminated string"):
        return True
    return exc.pos >= buffer_end - _TAIL


class _Reader:
    def __init__(self, handle, path: str) -> None:
        self.handle = handle
        self.path = path
        self.buffer = ""
        self.pos = 0
        self.consumed_bytes = 0
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _fill(self, at_least: int = 0) -> None:
        try:
            data = self.handle.read(max(at_least, _CHUNK))
        except UnicodeDecodeError as exc:
            raise self.error(f"not UTF-8 text ({exc.reason})") from None
        if not data:
            self.eof = True
            return
        self.consumed_bytes += len(self.buffer[: self.pos].encode("utf-8", "surrogatepass"))
        self.buffer = self.buffer[self.pos :] + data
        self.pos = 0

    def offset(self, pos: int | None = None) -> int:
        """Byte offset in the file of buffer position ``pos`` (default: the cursor)."""
        pos = self.pos if pos is None else pos
        return self.consumed_bytes + len(self.buffer[:pos].encode("utf-8", "surrogatepass"))

    def error(self, message: str, pos: int | None = None) -> JsonStreamError:
        return JsonStreamError(f"{self.path}: {message} (at byte {self.offset(pos)})")

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
                if self.eof or not _truncated(exc, len(self.buffer)):
                    raise self.error(f"invalid JSON: {exc.msg}", exc.pos) from None
                self._fill(len(self.buffer))
                continue
            except RecursionError:
                raise self.error("JSON nested too deeply for Python's decoder") from None
            except ValueError as exc:  # an integer longer than int's digit limit
                raise self.error(f"invalid JSON number: {str(exc).split(';')[0]}") from None
            # A number near the end of the buffer may continue in the next chunk ("3.5|e3").
            near_end = end == len(self.buffer) or (
                end > len(self.buffer) - _TAIL and isinstance(result, int | float)
            )
            if near_end and not self.eof:
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

    def end(self) -> None:
        if self.peek():
            raise self.error("unexpected text after the JSON value")


_ARRAY_START = object()


def _iter(path: str | PathLike, stream: Collection[str]) -> Iterator[tuple[str | None, Any]]:
    name = str(path)
    with Path(path).open(encoding="utf-8") as handle:
        reader = _Reader(handle, name)
        first = reader.peek()
        if first == "[":
            for item in reader.items():
                yield None, item
            reader.end()
            return
        if first != "{":
            raise reader.error("expected a JSON object or array")
        reader.pos += 1
        if reader.peek() == "}":
            reader.pos += 1
            reader.end()
            return
        while True:
            if reader.peek() != '"':
                raise reader.error("expected an object key")
            key = reader.value()
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
                reader.end()
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


def iter_lines(path: str | PathLike) -> Iterator[tuple[int, Any]]:
    """(line number, value) of a JSON-lines file; blank lines are passed over."""
    decoder = json.JSONDecoder()
    with Path(path).open(encoding="utf-8") as handle:
        number = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as exc:
                raise JsonStreamError(
                    f"{path}:{number + 1}: not UTF-8 text ({exc.reason})"
                ) from None
            if not line:
                return
            number += 1
            if not line.strip():
                continue
            try:
                value = decoder.decode(line)
            except json.JSONDecodeError as exc:
                raise JsonStreamError(
                    f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"
                ) from None
            except RecursionError:
                raise JsonStreamError(f"{path}:{number}: JSON nested too deeply") from None
            except ValueError as exc:
                raise JsonStreamError(
                    f"{path}:{number}: invalid JSON number: {str(exc).split(';')[0]}"
                ) from None
            yield number, value
