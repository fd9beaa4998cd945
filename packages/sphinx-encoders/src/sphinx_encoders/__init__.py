"""The frozen visual backbones and the mixed visual encoder of SPHINX.

Public names are imported on first use (module `__getattr__`), so `import sphinx_encoders`
and `sphinx-encoders --help` do not pay for torch, timm, open_clip and transformers.
"""

from importlib import import_module
from importlib.metadata import version as _version

__version__ = _version("sphinx-encoders")

# public name -> submodule that defines it
_EXPORTS = {
    "ClipViTBackbone": ".backbones",
    "ConvNeXtBackbone": ".backbones",
    "DinoV2Backbone": ".backbones",
    "FrozenBackbone": ".backbones",
    "QFormerBackbone": ".backbones",
    "ClipViTConfig": ".config",
    "ConfigError": ".config",
    "ConvNeXtConfig": ".config",
    "DinoV2Config": ".config",
    "EncoderConfig": ".config",
    "QFormerConfig": ".config",
    "FeatureCache": ".cache",
    "FeatureCacheError": ".cache",
    "encoder_fingerprint": ".cache",
    "check_weights": ".loading",
    "load_weights": ".loading",
    "EncodedImages": ".mixed",
    "MixedVisualEncoder": ".mixed",
    "ViewFeatures": ".mixed",
    "gather_views": ".mixed",
    "UnknownNameError": ".presets",
    "create_encoder": ".presets",
    "get_encoder_config": ".presets",
    "list_encoders": ".presets",
    "register_encoder": ".presets",
    "WeightsError": ".weights",
    "read_state_dict": ".weights",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

