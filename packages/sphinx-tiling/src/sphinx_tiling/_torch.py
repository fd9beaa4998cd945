"""Lazy access to torch, which sphinx-tiling only needs behind its `torch` extra."""

from __future__ import annotations

from types import ModuleType


def require_torch(feature: str) -> ModuleType:
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"{feature} needs torch: pip install 'sphinx-tiling[torch]'") from err
    return torch
