"""The text side of SPHINX: conversation templates, task instructions, box formats, converters, metrics."""

from importlib.metadata import version as _version

__version__ = _version("sphinx-tasks")

__all__ = ["__version__"]
