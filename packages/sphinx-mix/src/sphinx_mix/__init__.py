"""Streaming weight mixing of checkpoints: linear mixes, task arithmetic, model soups."""

from importlib.metadata import version as _version

__version__ = _version("sphinx-mix")

__all__ = ["__version__"]
