"""The frozen visual backbones and the mixed visual encoder of SPHINX."""

from importlib.metadata import version as _version

__version__ = _version("sphinx-encoders")

__all__ = ["__version__"]
