"""Language-model shapes: the LLaMA-2 sizes SPHINX was trained on, Mixtral for SPHINX-MoE, and
tiny ones for tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM


@dataclass(frozen=True)
class LlamaShape:
    """The numbers that decide a LLaMA architecture (vocabulary size is set separately);
    ``num_local_experts`` > 0 makes it a Mixtral (sparse experts, ``intermediate_size``
    hidden units per expert, ``num_experts_per_tok`` of them per token)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None = None
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_position_embeddings: int = 4096
    num_local_experts: int = 0
    num_experts_per_tok: int = 2


LLM_SHAPES: dict[str, LlamaShape] = {
    "llama2-7b": LlamaShape(4096, 11008, 32, 32),
    "llama2-13b": LlamaShape(5120, 13824, 40, 40),
    # TinyLlama-1.1B (SPHINX-Tiny): grouped-query attention with 4 key/value heads.
    "tinyllama-1.1b": LlamaShape(2048, 5632, 22, 32, 4),
    "llama-nano": LlamaShape(64, 176, 2, 4),
    # The demo's LLM (sphinx-demo): twice as wide as nano, for grounding on CPU.
    "llama-demo": LlamaShape(128, 352, 2, 4),
    # SPHINX-MoE / SPHINX-MoE-1k (mixtral_sparse_ens*): Mixtral-8x7B, rope_theta 1e6.
    "mixtral-8x7b": LlamaShape(4096, 14336, 32, 32, 8, rope_theta=1e6, num_local_experts=8),
    "mixtral-nano": LlamaShape(64, 96, 2, 4, 2, rope_theta=1e6, num_local_experts=4),
}


def swiglu_hidden_size(
    dim: int, multiple_of: int = 256, ffn_dim_multiplier: float | None = None
) -> int:
    """Feed-forward width that Meta-style LLaMA code derives from the model width."""
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def llama_config(
    shape: str | LlamaShape,
    vocab_size: int = 32000,
    *,
    bos_token_id: int = 1,
    eos_token_id: int = 2,
    pad_token_id: int | None = 0,
) -> LlamaConfig:
    """A Hugging Face ``LlamaConfig`` for a named shape (see :data:`LLM_SHAPES`), or a
    ``MixtralConfig`` for a shape with experts."""
    if isinstance(shape, str):
        try:
            shape = LLM_SHAPES[shape]
        except KeyError:
            raise KeyError(f"unknown LLM shape {shape!r}; known: {sorted(LLM_SHAPES)}") from None
    experts = {}
    if shape.num_local_experts:
        experts = {"num_local_experts": shape.num_local_experts,
                   "num_experts_per_tok": shape.num_experts_per_tok, "sliding_window": None,
                   "head_dim": shape.hidden_size // shape.num_attention_heads}
    return (MixtralConfig if experts else LlamaConfig)(
        vocab_size=vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads or shape.num_attention_heads,
        rms_norm_eps=shape.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta},
        max_position_embeddings=shape.max_position_embeddings,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        tie_word_embeddings=False,
        **experts,
    )


def build_llm(
    config: LlamaConfig | MixtralConfig,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    attn_implementation: str = "sdpa",
) -> LlamaForCausalLM | MixtralForCausalLM:
    """Instantiate a randomly initialised causal LM from a config (``device="meta"`` for shapes only)."""
    config._attn_implementation = attn_implementation
    previous_dtype = torch.get_default_dtype()
    # Building straight in the target dtype avoids a float32 copy of a 7B/13B model.
    torch.set_default_dtype(dtype or previous_dtype)
    try:
        with torch.device(device or "cpu"):
            model = MixtralForCausalLM if isinstance(config, MixtralConfig) else LlamaForCausalLM
            return model(config)
    finally:
        torch.set_default_dtype(previous_dtype)
