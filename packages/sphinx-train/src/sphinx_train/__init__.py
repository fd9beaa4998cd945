"""The SPHINX model: an LLM plus the mixed visual encoder, inference, checkpoint conversion, training."""

from importlib.metadata import version as _version

__version__ = _version("sphinx-train")

__all__ = ["__version__"]
