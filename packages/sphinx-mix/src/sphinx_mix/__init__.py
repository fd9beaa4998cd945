"""Streaming weight mixing of checkpoints: linear mixes, task arithmetic, soups, and
mergekit's slerp, ties, dare_linear, dare_ties and model_stock.

Public names are imported on first use, so ``sphinx-mix --help`` does not wait for torch.
"""

from importlib import import_module
from importlib.metadata import version as _version

__version__ = _version("sphinx-mix")

_EXPORTS = {
    "GreedySoupResult": ".ops",
    "MixError": ".errors",
    "MixOptions": ".options",
    "MixRecipe": ".recipe",
    "SoupStep": ".ops",
    "WeightRule": ".selection",
    "dare_linear": ".merges",
    "dare_ties": ".merges",
    "greedy_soup": ".ops",
    "linear": ".ops",
    "load_recipe": ".recipe",
    "model_stock": ".merges",
    "open_checkpoint": ".checkpoint",
    "slerp": ".merges",
    "task_arithmetic": ".ops",
    "ties": ".merges",
    "uniform_soup": ".ops",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sphinx_mix' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
