"""Named model presets and the ``create_model`` factory (built from configs, never downloaded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from sphinx_train._house import Registry
from sphinx_train.checkpoint import check_device, resolve_dtype
from sphinx_train.config import SphinxConfig
from sphinx_train.llm import build_llm, llama_config
from sphinx_train.model import SphinxModel
from sphinx_train.nano_tokenizer import NANO_VOCAB_SIZE, build_nano_tokenizer
from sphinx_train.tokenizer import TextTokenizer, load_tokenizer

# The nano vocabulary plus the 101 coordinate tokens of the grounding vocabulary, rounded up.
DEMO_VOCAB_SIZE = 640


@dataclass(frozen=True)
class ModelPreset:
    """An LLM shape, an encoder preset and a tiling preset."""

    llm_shape: str
    encoder: str | None
    tiling: str
    template: str = "sphinx"
    vocab_size: int = 32000
    # Only presets with a tokenizer of their own work without a tokenizer path.
    builds_own_tokenizer: bool = False
    grounding_vocabulary: bool = False  # the built tokenizer: build_nano_tokenizer(grounding=)
    image_token_scale: float = 1.0  # SphinxConfig.image_token_scale
    # Mixtral LLMs: weight of the load-balancing loss in training (reference ModelArgs)
    load_balancing_weight: float | None = None


_PRESETS: Registry[ModelPreset] = Registry("model preset")


def register_model_preset(
    name: str, preset: ModelPreset, *, overwrite: bool = False
) -> ModelPreset:
    """Make ``preset`` available to :func:`create_model` under ``name``."""
    if not isinstance(preset, ModelPreset):
        raise ValueError(f"model preset {name!r}: expected a ModelPreset, got {preset!r}")
    return _PRESETS.register(name, preset, overwrite=overwrite)


# The earlier name of register_model_preset.
register_model = register_model_preset


def list_models(pattern: str | None = None) -> list[str]:
    """Preset names, optionally filtered by a glob such as ``"sphinx-1k*"``."""
    return _PRESETS.names(pattern)


def get_model_preset(name: str) -> ModelPreset:
    """The preset of ``name``; an unknown name raises ``UnknownNameError`` listing the known."""
    return _PRESETS.get(name)


def build_encoder(name_or_config, llm_dim: int, *, dtype=None, device=None):
    """The mixed visual encoder from a preset name or a saved ``EncoderConfig`` dict."""
    from sphinx_encoders import create_encoder

    return create_encoder(name_or_config, llm_dim=llm_dim, dtype=dtype, device=device)


def create_model(
    name: str,
    *,
    tokenizer: TextTokenizer | str | Path | None = None,
    tiling: str | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    with_encoder: bool = True,
    decoding: str | None = None,
    generation=None,
) -> SphinxModel:
    """Build a preset with random weights.

    ``device="meta"`` builds shapes only (for the 7B/13B presets without the memory).
    ``tokenizer`` is a :class:`TextTokenizer` or a local ``tokenizer.model`` / tokenizer folder;
    ``sphinx-nano`` trains its own when none is given. ``tiling`` overrides the preset's
    view plan (for example ``sphinx-nano`` with ``"sphinx-1k"``). ``decoding`` and
    ``generation`` set the processor's image decoding and default generation preset.
    Everything is validated before the (possibly minutes-long) random init.
    """
    from sphinx_train.generation import DEFAULT_GENERATION
    from sphinx_train.processor import SphinxProcessor

    preset = get_model_preset(name)
    dtype = resolve_dtype(dtype)
    check_device(device)
    if isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)
    if tokenizer is None and preset.builds_own_tokenizer:
        tokenizer = build_nano_tokenizer(grounding=preset.grounding_vocabulary)
    vocab_size = preset.vocab_size
    if tokenizer is not None and tokenizer.vocab_size > vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but preset {name!r} embeds {vocab_size}"
        )
    processor = SphinxProcessor(
        tiling or preset.tiling,
        preset.template,
        tokenizer,
        decoding=decoding,
        generation=generation or DEFAULT_GENERATION,
    )
    llm_config = llama_config(preset.llm_shape, vocab_size)
    if preset.load_balancing_weight is not None:
        llm_config.router_aux_loss_coef = preset.load_balancing_weight
    llm = build_llm(llm_config, dtype=dtype, device=device)
    encoder = encoder_config = None
    if with_encoder and preset.encoder is not None:
        encoder = build_encoder(preset.encoder, llm.config.hidden_size, dtype=dtype, device=device)
        encoder_config = encoder.config.to_dict()
    config = SphinxConfig(
        tiling=processor.tiling.name,
        template=processor.template.name,
        encoder=preset.encoder if encoder is not None else None,
        encoder_config=encoder_config,
        image_token_scale=preset.image_token_scale,
    )
    return SphinxModel(llm, encoder, tokenizer, config, processor=processor)


for _size in ("7b", "13b"):
    for _variant, _tiling in (
        ("sphinx", "sphinx"),
        ("sphinx-1k", "sphinx-1k"),
        ("sphinx-2k", "sphinx-2k"),
    ):
        register_model_preset(
            f"{_variant}-{_size}", ModelPreset(f"llama2-{_size}", "sphinx", _tiling)
        )
# The released SPHINX checkpoints use the 13B LLM: the short names are those presets.
for _short in ("sphinx", "sphinx-1k", "sphinx-2k"):
    register_model_preset(_short, get_model_preset(f"{_short}-13b"))
# SPHINX-Tiny / SPHINX-Tiny-1k: TinyLlama with the light encoder (ConvNeXt at 512 + DINOv2;
# for 1k, DINOv2's views come from the 1024 canvas, as in llama_ens5_light).
register_model_preset("sphinx-tiny", ModelPreset("tinyllama-1.1b", "sphinx-light", "sphinx-light"))
register_model_preset(
    "sphinx-tiny-1k", ModelPreset("tinyllama-1.1b", "sphinx-light-1k", "sphinx-light-1k")
)
# SPHINX-MoE / SPHINX-MoE-1k (mixtral_sparse_ens*): Mixtral-8x7B with sphinx's four backbones
# on SPHINX-Tiny's 512 views (CLIP, DINOv2 and the Q-Former at 224).
# Load-balancing weights: the ModelArgs defaults of mixtral_sparse_ens (0.1) and _ens5 (0.01).
register_model_preset(
    "sphinx-moe", ModelPreset("mixtral-8x7b", "sphinx-moe", "sphinx-light", load_balancing_weight=0.1)
)
register_model_preset(
    "sphinx-moe-1k",
    ModelPreset("mixtral-8x7b", "sphinx-moe-1k", "sphinx-light-1k", load_balancing_weight=0.01),
)
register_model_preset(
    "sphinx-moe-nano",
    ModelPreset("mixtral-nano", "sphinx-moe-tiny", "sphinx-light", vocab_size=NANO_VOCAB_SIZE,
                builds_own_tokenizer=True, load_balancing_weight=0.1),
)
register_model_preset(
    "sphinx-nano",
    ModelPreset(
        "llama-nano", "sphinx-tiny", "sphinx", vocab_size=NANO_VOCAB_SIZE, builds_own_tokenizer=True
    ),
)
# The demo's model: a mix of two tiny frozen encoders on a 7x7 grid (49 patch tokens per view)
# with fixed 2-D positions on the patch tokens, and a tokenizer with the scene words and one
# token per box coordinate, aimed at grounding on CPU (benchmarks/results/grounding_probe.md).
register_model_preset(
    "sphinx-demo",
    ModelPreset(
        "llama-demo",
        "sphinx-demo",
        "sphinx",
        vocab_size=DEMO_VOCAB_SIZE,
        builds_own_tokenizer=True,
        grounding_vocabulary=True,
    ),
)
