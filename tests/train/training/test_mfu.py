"""MFU's FLOP count: PaLM's 6 N + 12 L d S per token, against parameter counts by hand."""

from __future__ import annotations

import pytest

from sphinx_train.llm import llama_config
from sphinx_train.training.metrics import peak_flops, training_flops_per_token


def test_llama2_7b_counts_its_parameters_without_the_embedding():
    # per layer: q, k, v, o 4 x 4096 x 4096 = 67,108,864; SwiGLU 3 x 4096 x 11008 =
    # 135,266,304; 32 layers + the 32000 x 4096 head = 6,607,077,376 (norms left out)
    config = llama_config("llama2-7b", 32000)
    assert training_flops_per_token(config, 0) == 6 * 6_607_077_376
    attention = 12 * 32 * 4096 * 3072
    assert training_flops_per_token(config, 3072) == 6 * 6_607_077_376 + attention


def test_mixtral_counts_the_active_experts_only():
    """Mistral's figure for Mixtral 8x7B: 12.9B active parameters per token (of 46.7B)."""
    config = llama_config("mixtral-8x7b", 32000)
    active = training_flops_per_token(config, 0) / 6 + 32000 * 4096  # + the embedding
    assert active == pytest.approx(12.9e9, rel=0.01)


def test_peak_flops_from_the_config_or_the_device_name():
    assert peak_flops("NVIDIA H200", None) == 989e12
    assert peak_flops("NVIDIA A100-SXM4-80GB", None) == 312e12
    assert peak_flops("NVIDIA H200", 500.0) == 500e12  # the config wins
    assert peak_flops("Some GPU", None) is None
