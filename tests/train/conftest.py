"""Fixtures for sphinx-train tests: small tokenizers and a tiny text-only LLaMA."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def nano_tokenizer():
    from sphinx_train import build_nano_tokenizer

    return build_nano_tokenizer()


@pytest.fixture(scope="session")
def sentencepiece_file(tmp_path_factory):
    """A LLaMA-like sentencepiece BPE (identity normalisation, byte fallback) trained here."""
    import sentencepiece

    folder = tmp_path_factory.mktemp("spm")
    lines = [
        "A chat between a curious human and an artificial intelligence assistant.",
        "### Human: What is it?\n### Assistant: A cat.\n###",
        "The quick brown fox jumps over the lazy dog [0.12,0.34,0.56,0.78].",
    ] * 30
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(lines))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=320,
        model_type="bpe",
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    return folder / "tokenizer.model"


@pytest.fixture
def make_llm():
    """Factory of tiny random LLaMA models (float32, eval mode)."""
    from sphinx_train import LlamaShape, build_llm, llama_config

    def make(vocab_size: int, seed: int = 0, **shape):
        torch.manual_seed(seed)
        dims = {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        }
        dims.update(shape)
        return build_llm(llama_config(LlamaShape(**dims), vocab_size)).eval()

    return make
