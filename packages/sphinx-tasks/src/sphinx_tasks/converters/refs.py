"""The refer toolkit's refs: the original ``refs(unc).p`` pickle or a JSON export of it.

The pickle is read by an unpickler that resolves no class or function at all, so a file can
only produce builtin containers and scalars; anything else is refused before it runs.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

from .base import ConversionError
from .fields import Fields
from .jsonstream import iter_array


class _DataOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, tuples, strings and numbers; refuses every global reference."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(
            f"refuses to load {module}.{name}: only builtin containers and scalars are allowed"
        )


def load_data_pickle(path: Path) -> object:
    """The plain data in a pickle file (Python 2 strings decoded as UTF-8)."""
    try:
        with path.open("rb") as handle:
            return _DataOnlyUnpickler(handle, encoding="utf-8").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise ConversionError(f"{path}: not a plain-data pickle ({message})") from None


def _is_pickle(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(1) == b"\x80" or path.suffix in (".p", ".pkl", ".pickle")


def iter_refs(path: Path) -> Iterator[Fields]:
    """Each ref as ``Fields`` named by its position in the file."""
    if _is_pickle(path):
        refs = load_data_pickle(path)
        if not isinstance(refs, list):
            raise ConversionError(f"{path}: expected a list of refs, found {type(refs).__name__}")
    else:
        refs = iter_array(path)
    for index, ref in enumerate(refs):
        yield Fields(ref, f"{path}: refs[{index}]")
