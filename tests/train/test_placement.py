"""Multi-device placement: the device_map planner on CPU, and the real spread on GPUs."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from sphinx_train.checkpoint import plan_device_map
from sphinx_train.llm import LlamaShape, build_llm, llama_config

# hidden 16, intermediate 32, 4 layers, 2 heads, vocab 64, float32 (4 bytes a value):
#   embedding 64*16*4 = 4096 B, head the same;
#   a layer: q, k, v, o 4*16*16 = 1024 + gate, up, down 3*16*32 = 1536 + two norms 32
#            = 2592 values = 10368 B;  final norm 16*4 = 64 B.  The rotary table (a few
#            inverse frequencies, no weights) goes with the embedding, uncounted.
EMBED, LAYER, NORM, HEAD = 4096, 10368, 64, 4096
SHAPE = LlamaShape(16, 32, 4, 2)


@pytest.fixture
def meta_llm():
    return build_llm(llama_config(SHAPE, vocab_size=64), device="meta", dtype=torch.float32)


def test_layers_fill_the_devices_in_order(meta_llm):
    # Device 0 holds the embedding and two layers (4096 + 2 * 10368 = 24832 <= 24900),
    # not a third; device 1 gets the rest.
    plan = plan_device_map(meta_llm, {0: 24_900, 1: 10**6})
    assert plan == {
        "model.embed_tokens": 0,
        "model.rotary_emb": 0,
        "model.layers.0": 0,
        "model.layers.1": 0,
        "model.layers.2": 1,
        "model.layers.3": 1,
        "model.norm": 1,
        "lm_head": 1,
    }


def test_reserve_keeps_room_for_the_encoder(meta_llm):
    # 10368 reserved on device 0 leaves 14532: the embedding and one layer.
    plan = plan_device_map(meta_llm, {0: 24_900, 1: 10**6}, reserve={0: LAYER})
    assert [plan[f"model.layers.{i}"] for i in range(4)] == [0, 1, 1, 1]


def test_exact_fit_and_too_little_memory(meta_llm):
    total = EMBED + 4 * LAYER + NORM + HEAD
    assert set(plan_device_map(meta_llm, {"cpu": total}).values()) == {"cpu"}
    with pytest.raises(ValueError, match="lm_head needs 4096 bytes"):
        plan_device_map(meta_llm, {"cpu": total - 1})
    with pytest.raises(ValueError, match="lm_head needs 4096 bytes"):
        plan_device_map(meta_llm, {0: EMBED + 16, 1: 4 * LAYER + NORM})


@pytest.mark.gpu
@pytest.mark.skipif(
    torch.cuda.device_count() < 2 or importlib.util.find_spec("accelerate") is None,
    reason="needs two CUDA devices and accelerate",
)
def test_planned_spread_over_two_gpus_gives_the_single_device_logits(tmp_path):
    from sphinx_train.checkpoint import load_llm

    llm = build_llm(llama_config(SHAPE, vocab_size=64), dtype=torch.float32).eval()
    llm.save_pretrained(tmp_path)
    ids = torch.tensor([[1, 5, 9, 3, 7, 2]])
    with torch.no_grad():
        expected = llm(ids).logits
    plan = plan_device_map(llm, {0: 24_900, 1: 10**6})
    spread = load_llm(tmp_path, dtype=torch.float32, device_map=plan)
    assert {p.device.index for p in spread.parameters()} == {0, 1}
    with torch.no_grad():
        logits = spread(ids.to("cuda:0")).logits.cpu()
    assert (logits - expected).abs().max() < 1e-5
