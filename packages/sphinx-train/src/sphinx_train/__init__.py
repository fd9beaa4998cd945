"""The SPHINX model: an LLM plus the mixed visual encoder, inference, checkpoint conversion, training.

Public names are imported on first use (module ``__getattr__``), so that ``sphinx-train --help``
does not pay for torch and transformers.
"""

from importlib import import_module
from importlib.metadata import version as _version

__version__ = _version("sphinx-train")

_EXPORTS = {
    "ConversionError": "accessory",
    "convert_accessory": "accessory",
    "permute_for_hf_rope": "accessory",
    "SphinxBatch": "batch",
    "SphinxSample": "batch",
    "collate": "batch",
    "load_model": "checkpoint",
    "save_model": "checkpoint",
    "SphinxConfig": "config",
    "IGNORE_INDEX": "conversation",
    "EncodedText": "conversation",
    "encode_conversation": "conversation",
    "encode_prompt": "conversation",
    "GeneratedTokens": "generation",
    "GenerationPreset": "generation",
    "GenerationResult": "generation",
    "TextStreamer": "generation",
    "generate_tokens": "generation",
    "get_generation_preset": "generation",
    "list_generation_presets": "generation",
    "register_generation_preset": "generation",
    "sample_next_token": "generation",
    "truncate_prompt": "generation",
    "LLM_SHAPES": "llm",
    "LlamaShape": "llm",
    "build_llm": "llm",
    "llama_config": "llm",
    "SphinxModel": "model",
    "SphinxOutput": "model",
    "build_nano_tokenizer": "nano_tokenizer",
    "ModelPreset": "presets",
    "create_model": "presets",
    "get_model_preset": "presets",
    "list_models": "presets",
    "register_model": "presets",
    "register_model_preset": "presets",
    "SphinxProcessor": "processor",
    "HuggingFaceTokenizer": "tokenizer",
    "SentencePieceTokenizer": "tokenizer",
    "TextTokenizer": "tokenizer",
    "load_tokenizer": "tokenizer",
    "UnknownNameError": "_house",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sphinx_train' has no attribute {name!r}")
    value = getattr(import_module(f"sphinx_train.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
