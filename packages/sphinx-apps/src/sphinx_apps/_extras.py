"""Optional dependencies, imported only when a part that needs them is built."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is absent; the message names the extra that installs it."""


def require(module: str, extra: str, needed_by: str) -> ModuleType:
    """Import `module` or fail with one line naming the sphinx-apps extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{needed_by} needs {module.split('.')[0]} ({error}); "
            f"install it with: pip install 'sphinx-apps[{extra}]'"
        ) from None
