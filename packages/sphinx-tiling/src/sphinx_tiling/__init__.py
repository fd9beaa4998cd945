"""Cut images of any size into encoder-sized views, the SPHINX way and beyond."""

from importlib.metadata import version as _version

__version__ = _version("sphinx-tiling")

__all__ = ["__version__"]
