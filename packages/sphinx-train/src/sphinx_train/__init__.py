"""The SPHINX model: an LLM plus the mixed visual encoder, inference, checkpoint conversion, training."""

from importlib.metadata import version as _version

from sphinx_train.accessory import ConversionError, convert_accessory, permute_for_hf_rope
from sphinx_train.batch import SphinxBatch, SphinxSample, collate
from sphinx_train.checkpoint import load_model, save_model
from sphinx_train.config import SphinxConfig
from sphinx_train.conversation import IGNORE_INDEX, EncodedText, encode_conversation, encode_prompt
from sphinx_train.generation import (
    GeneratedTokens,
    GenerationResult,
    generate_tokens,
    sample_next_token,
)
from sphinx_train.llm import LLM_SHAPES, LlamaShape, build_llm, llama_config
from sphinx_train.model import SphinxModel, SphinxOutput
from sphinx_train.nano_tokenizer import build_nano_tokenizer
from sphinx_train.presets import ModelPreset, create_model, list_models, register_model
from sphinx_train.tokenizer import (
    HuggingFaceTokenizer,
    SentencePieceTokenizer,
    TextTokenizer,
    load_tokenizer,
)

__version__ = _version("sphinx-train")

__all__ = [
    "IGNORE_INDEX",
    "LLM_SHAPES",
    "ConversionError",
    "EncodedText",
    "GeneratedTokens",
    "GenerationResult",
    "HuggingFaceTokenizer",
    "LlamaShape",
    "ModelPreset",
    "SentencePieceTokenizer",
    "SphinxBatch",
    "SphinxConfig",
    "SphinxModel",
    "SphinxOutput",
    "SphinxSample",
    "TextTokenizer",
    "__version__",
    "build_llm",
    "build_nano_tokenizer",
    "collate",
    "convert_accessory",
    "create_model",
    "encode_conversation",
    "encode_prompt",
    "generate_tokens",
    "list_models",
    "llama_config",
    "load_model",
    "load_tokenizer",
    "permute_for_hf_rope",
    "register_model",
    "sample_next_token",
    "save_model",
]
