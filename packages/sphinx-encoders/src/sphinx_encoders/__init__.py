"""The frozen visual backbones and the mixed visual encoder of SPHINX."""

from importlib.metadata import version as _version

from .backbones import (
    ClipViTBackbone,
    ConvNeXtBackbone,
    DinoV2Backbone,
    FrozenBackbone,
    QFormerBackbone,
)
from .config import (
    ClipViTConfig,
    ConfigError,
    ConvNeXtConfig,
    DinoV2Config,
    EncoderConfig,
    QFormerConfig,
)
from .loading import check_weights, load_weights
from .mixed import EncodedImages, MixedVisualEncoder, gather_views
from .presets import create_encoder, get_encoder_config, list_encoders, register_encoder
from .weights import WeightsError, read_state_dict

__version__ = _version("sphinx-encoders")

__all__ = [
    "ClipViTBackbone",
    "ClipViTConfig",
    "ConfigError",
    "ConvNeXtBackbone",
    "ConvNeXtConfig",
    "DinoV2Backbone",
    "DinoV2Config",
    "EncodedImages",
    "EncoderConfig",
    "FrozenBackbone",
    "MixedVisualEncoder",
    "QFormerBackbone",
    "QFormerConfig",
    "WeightsError",
    "__version__",
    "check_weights",
    "create_encoder",
    "gather_views",
    "get_encoder_config",
    "list_encoders",
    "load_weights",
    "read_state_dict",
    "register_encoder",
]
