"""Streaming weight mixing of checkpoints: linear mixes, task arithmetic, model soups."""

from importlib.metadata import version as _version

from .checkpoint import open_checkpoint
from .errors import MixError
from .ops import GreedySoupResult, SoupStep, greedy_soup, linear, task_arithmetic, uniform_soup
from .options import MixOptions
from .recipe import MixRecipe, load_recipe
from .selection import WeightRule

__version__ = _version("sphinx-mix")

__all__ = [
    "GreedySoupResult",
    "MixError",
    "MixOptions",
    "MixRecipe",
    "SoupStep",
    "WeightRule",
    "__version__",
    "greedy_soup",
    "linear",
    "load_recipe",
    "open_checkpoint",
    "task_arithmetic",
    "uniform_soup",
]
