"""Benchmarks from local files: task registry, official-layout loaders, batched and cached
generation sharded by rank, results tables (the scorers live in ``sphinx_tasks.metrics``)."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EvalOptions": "runner",
    "EvalSample": "registry",
    "EvalTask": "registry",
    "Prompt": "registry",
    "DecodeSettings": "decoding",
    "decode": "decoding",
    "get_task": "registry",
    "list_tasks": "registry",
    "model_fingerprint": "runner",
    "register_task": "registry",
    "run_eval": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    importlib.import_module(f"{__name__}.tasks")  # the built-in tasks are always registered
    return getattr(module, name)
