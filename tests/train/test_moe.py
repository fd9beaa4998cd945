"""SPHINX-MoE (mixtral_sparse_ens*) conversion against a forward written from the reference:
the LLM alone (``convert_mixtral_llm``) and the whole model (``convert_accessory``).

The checkpoint is built in the reference layout (accessory/model/LLM/mixtral_sparse_ens.py):
``feed_forward.w1/w2/w3`` are bare parameters of shape (experts * hidden, dim) that shards
split per expert along the hidden units, ``feed_forward.gate`` a replicated Linear, attention
as in LLaMA with Meta's interleaved RoPE at theta 1e6 (the ModelArgs default).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from sphinx_train.accessory import ConversionError
from sphinx_train.model import SphinxModel
from sphinx_train.moe import convert_mixtral_llm

DIM, HEADS, KV_HEADS, LAYERS, EXPERTS, TOP_K, HIDDEN, VOCAB = 32, 4, 2, 2, 4, 2, 24, 50
EPS, THETA = 1e-5, 1e6


def reference_weights(vocab: int = VOCAB) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)

    def rand(*shape, scale=0.1):
        return torch.randn(*shape, generator=generator) * scale

    head_dim = DIM // HEADS
    weights = {"tok_embeddings.weight": rand(vocab, DIM, scale=1.0)}
    for i in range(LAYERS):
        weights |= {
            f"layers.{i}.attention.wq.weight": rand(HEADS * head_dim, DIM),
            f"layers.{i}.attention.wk.weight": rand(KV_HEADS * head_dim, DIM),
            f"layers.{i}.attention.wv.weight": rand(KV_HEADS * head_dim, DIM),
            f"layers.{i}.attention.wo.weight": rand(DIM, HEADS * head_dim),
            f"layers.{i}.feed_forward.w1": rand(EXPERTS * HIDDEN, DIM),
            f"layers.{i}.feed_forward.w2": rand(EXPERTS * HIDDEN, DIM),
            f"layers.{i}.feed_forward.w3": rand(EXPERTS * HIDDEN, DIM),
            f"layers.{i}.feed_forward.gate.weight": rand(EXPERTS, DIM, scale=1.0),
            f"layers.{i}.attention_norm.weight": 1 + rand(DIM),
            f"layers.{i}.ffn_norm.weight": 1 + rand(DIM),
        }
    weights["norm.weight"] = 1 + rand(DIM)
    weights["output.weight"] = rand(vocab, DIM)
    return weights


def reference_split(key: str, tensor: torch.Tensor, shards: int) -> list[torch.Tensor]:
    """The reference's model-parallel rule for each key."""
    if key.endswith(("feed_forward.w1", "feed_forward.w2", "feed_forward.w3")):
        # _sparse_expert_split: (E, H, dim) chunked on H, each rank's slice flattened back.
        per_expert = tensor.view(EXPERTS, HIDDEN, DIM).chunk(shards, dim=1)
        return [piece.reshape(-1, DIM) for piece in per_expert]
    if key == "tok_embeddings.weight" or key.endswith("attention.wo.weight"):
        return list(tensor.chunk(shards, dim=1))
    if key == "output.weight" or key.endswith(("wq.weight", "wk.weight", "wv.weight")):
        return list(tensor.chunk(shards, dim=0))
    return [tensor] * shards


def write_checkpoint(folder, weights, args=None, shards=2, vision=None):
    folder.mkdir()
    states = [{} for _ in range(shards)]
    for key, tensor in weights.items():
        for state, piece in zip(states, reference_split(key, tensor, shards), strict=True):
            state["llma." + key] = piece.clone()
    for key, tensor in (vision or {}).items():
        for state in states:
            state["llma." + key] = tensor.clone()
    for rank, state in enumerate(states):
        torch.save({"model": state}, folder / f"consolidated.{rank:02d}-of-{shards:02d}.model.pth")
    args = args or {"dim": DIM, "n_layers": LAYERS, "n_heads": HEADS, "n_kv_heads": KV_HEADS,
                    "hidden_dim": HIDDEN, "moe": {"num_experts": EXPERTS,
                                                  "num_experts_per_tok": TOP_K}}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(args))
    return folder


def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight


def rotate_interleaved(x, positions):
    """precompute_freqs_cis / apply_rotary_emb: channel pairs as complex numbers."""
    head_dim = x.shape[-1]
    freqs = 1.0 / (THETA ** (torch.arange(0, head_dim, 2).float() / head_dim))
    rotation = torch.polar(
        torch.ones(len(positions), head_dim // 2), torch.outer(positions.float(), freqs)
    )
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], head_dim // 2, 2))
    return torch.view_as_real(pairs * rotation[:, None, :]).flatten(-2)


def reference_moe(x, w, i):
    """MoE.forward without megablocks: each token through its top-k experts, weights renormalised."""
    probs = torch.softmax(x @ w[f"layers.{i}.feed_forward.gate.weight"].T, dim=1, dtype=torch.float)
    weights, chosen = torch.topk(probs, TOP_K, dim=-1)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    w1, w2, w3 = (
        w[f"layers.{i}.feed_forward.{n}"].view(EXPERTS, HIDDEN, DIM) for n in ("w1", "w2", "w3")
    )
    out = torch.zeros_like(x)
    for token in range(x.shape[0]):
        for weight, expert in zip(weights[token], chosen[token], strict=True):
            hidden = torch.nn.functional.silu(x[token] @ w1[expert].T) * (x[token] @ w3[expert].T)
            out[token] += weight * (hidden @ w2[expert])  # w2 is used without a transpose
    return out


def reference_logits(w, h):
    """Logits of the reference Mixtral for one sequence of input embeddings (T, DIM)."""
    length, head_dim = len(h), DIM // HEADS
    positions, causal = torch.arange(length), torch.ones(length, length, dtype=torch.bool).tril()
    for i in range(LAYERS):
        x = rms_norm(h, w[f"layers.{i}.attention_norm.weight"])
        q = (x @ w[f"layers.{i}.attention.wq.weight"].T).view(length, HEADS, head_dim)
        k = (x @ w[f"layers.{i}.attention.wk.weight"].T).view(length, KV_HEADS, head_dim)
        v = (x @ w[f"layers.{i}.attention.wv.weight"].T).view(length, KV_HEADS, head_dim)
        q, k = rotate_interleaved(q, positions), rotate_interleaved(k, positions)
        k, v = (t.repeat_interleave(HEADS // KV_HEADS, dim=1) for t in (k, v))
        scores = torch.einsum("qhd,khd->hqk", q, k) / head_dim**0.5
        attention = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        out = torch.einsum("hqk,khd->qhd", attention, v).reshape(length, DIM)
        h = h + out @ w[f"layers.{i}.attention.wo.weight"].T
        h = h + reference_moe(rms_norm(h, w[f"layers.{i}.ffn_norm.weight"]), w, i)
    return rms_norm(h, w["norm.weight"]) @ w["output.weight"].T


TOKENS = torch.tensor([1, 7, 42, 3, 19, 19, 5, 30, 11, 2])


@pytest.mark.parametrize("shards", [1, 2])
def test_converted_mixtral_matches_the_reference_forward(tmp_path, shards):
    from transformers import MixtralForCausalLM

    weights = reference_weights()
    vision = {"visual_proj.0.weight": torch.ones(DIM, 8), "start_img": torch.zeros(1, 1, DIM)}
    source = write_checkpoint(tmp_path / "ref", weights, shards=shards, vision=vision)
    out = convert_mixtral_llm(source, tmp_path / "llm")
    llm = MixtralForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert llm.config.rope_parameters["rope_theta"] == THETA  # the reference default
    assert llm.config.num_local_experts == EXPERTS and llm.config.num_experts_per_tok == TOP_K
    with torch.no_grad():
        logits = llm(TOKENS[None]).logits[0]
    expected = reference_logits(weights, weights["tok_embeddings.weight"][TOKENS])
    # Several experts are really used (else the routing would not be checked).
    probs = torch.softmax(
        weights["tok_embeddings.weight"][TOKENS] @ weights["layers.0.feed_forward.gate.weight"].T,
        -1,
    )
    assert len(set(probs.topk(TOP_K).indices.flatten().tolist())) == EXPERTS
    assert (logits - expected).abs().max() < 1e-5


def test_bad_checkpoints_fail_in_one_line_and_write_nothing(tmp_path):
    weights = reference_weights()
    cases = {
        "experts": ({"moe": {"num_experts": 5}}, None, "not a multiple of moe.num_experts=5"),
        "hidden": ({"hidden_dim": 99}, None, "hidden_dim=99 but the expert weights hold 24"),
        "top-k": (
            {"moe": {"num_experts": 4, "num_experts_per_tok": 9}},
            None,
            "exceeds num_experts",
        ),
        "missing-w3": ({}, "layers.1.feed_forward.w3", "layer 1 has experts ['w1', 'w2']"),
    }
    for name, (edit, drop, message) in cases.items():
        args = {"dim": DIM, "n_layers": LAYERS, "n_heads": HEADS, "n_kv_heads": KV_HEADS,
                "hidden_dim": HIDDEN, "moe": {"num_experts": EXPERTS}} | edit  # fmt: skip
        kept = {k: v for k, v in weights.items() if k != drop}
        source = write_checkpoint(tmp_path / name, kept, args)
        with pytest.raises(ConversionError, match=message.replace("[", r"\[")) as caught:
            convert_mixtral_llm(source, tmp_path / f"{name}-out")
        assert "\n" not in str(caught.value)
        assert not (tmp_path / f"{name}-out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(cases)


def test_existing_output_and_output_inside_the_source_are_refused(tmp_path):
    from sphinx_train._house import OutputError

    source = write_checkpoint(tmp_path / "ref", reference_weights(), shards=1)
    keep = tmp_path / "taken"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="already exists"):
        convert_mixtral_llm(source, keep)
    with pytest.raises(OutputError, match="holds files this tool did not write"):
        convert_mixtral_llm(source, keep, overwrite=True)
    with pytest.raises(OutputError, match="inside the input"):
        convert_mixtral_llm(source, source / "llm")
    assert (keep / "notes.txt").read_text() == "mine" and sorted(
        p.name for p in keep.iterdir()
    ) == ["notes.txt"]


@pytest.mark.parametrize(
    ("llama_type", "encoder", "tiling", "views"),
    [("mixtral_sparse_ens", "sphinx-moe-tiny", "sphinx-light", 1),
     ("mixtral_sparse_ens5", "sphinx-moe-1k-tiny", "sphinx-light-1k", 5)],
)  # fmt: skip
def test_whole_sphinx_moe_converts_and_matches_the_reference_forward(
    tmp_path, sentencepiece_file, llama_type, encoder, tiling, views
):
    """[BOS | start | 32 query | 257 patch | end (per view) | text] through the Mixtral LLM,
    the image tokens from the same encoder architecture (its own fidelity is tested in
    tests/encoders), the LLM forward written out above."""
    from sphinx_encoders import create_encoder
    from sphinx_train import (
        SentencePieceTokenizer,
        SphinxModel,
        SphinxSample,
        collate,
        convert_accessory,
    )

    weights = reference_weights(SentencePieceTokenizer(sentencepiece_file).vocab_size)
    torch.manual_seed(9)
    vision = create_encoder(encoder, llm_dim=DIM).eval()
    source = write_checkpoint(tmp_path / "ref", weights, vision=vision.reference_state_dict())
    (source / "meta.json").write_text(json.dumps({"llama_type": llama_type}))
    shutil.copyfile(sentencepiece_file, source / "tokenizer.model")
    model = SphinxModel.from_pretrained(convert_accessory(source, tmp_path / "ours",
                                                          encoder=encoder))
    assert type(model.llm).__name__ == "MixtralForCausalLM"
    assert model.tiling.name == tiling and model.config.encoder == encoder
    pixels = model.image_views(Image.effect_noise((300, 200), 60).convert("RGB"))[0]
    assert pixels.shape == (views, 3, 512, 512)
    tokens = [model.tokenizer.bos_id, *model.tokenizer.encode("What is it?")]
    with torch.no_grad():
        image_tokens = vision(pixels, torch.zeros(views, dtype=torch.long)).embeds[0]
        assert image_tokens.shape == (291 * views, DIM)
        embed = weights["tok_embeddings.weight"]
        expected = reference_logits(
            weights, torch.cat([embed[tokens[:1]], image_tokens, embed[tokens[1:]]])
        )
        got = model(collate([SphinxSample(tokens, pixel_values=pixels)])).logits[0]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_load_balancing_loss_is_the_reference_formula_by_hand():
    """E / (n k) * sum_e tokens_e * mean_prob_e per layer, real positions only, mean over
    layers (MoE._load_balancing_loss). Layer 1, E=2, k=1, three real tokens with
    probabilities (.25, .75), (.75, .25), (.25, .75): tokens (1, 2), mean probabilities
    (5/12, 7/12), loss 2/3 * (5/12 + 14/12) = 19/18. Layer 2, uniform: every token to expert
    0, loss 2/3 * (3 * 1/2) = 1. Mean 37/36."""
    from sphinx_train.model import load_balancing_loss

    odds = torch.log(torch.tensor(3.0))
    layer_1 = torch.tensor([[0.0, odds], [odds, 0.0], [0.0, odds], [50.0, 0.0]])
    layer_2 = torch.zeros(4, 2)
    mask = torch.tensor([[1, 1, 1, 0]])  # the fourth position is padding
    loss = load_balancing_loss((layer_1, layer_2), mask, experts_per_token=1)
    assert loss.item() == pytest.approx(37 / 36, abs=1e-6)


def test_fit_trains_moe_with_the_weighted_load_balancing_loss(tmp_path):
    """The nano MoE under fit: the balancing loss is logged, and its weight changes the
    update (same first-step language loss, other routers after two steps)."""
    import torch.distributed as dist

    from sphinx_train.presets import ModelPreset, get_model_preset, register_model_preset
    from sphinx_train.training.config import load_config
    from sphinx_train.training.loop import Trainer

    unweighted = dict(vars(get_model_preset("sphinx-moe-nano")), load_balancing_weight=0.0)
    register_model_preset("test-moe-unweighted", ModelPreset(**unweighted), overwrite=True)
    runs = {}
    for preset in ("sphinx-moe-nano", "test-moe-unweighted"):
        config = load_config("nano-stage1", [
            f"model.preset={preset}", "model.tiling=sphinx-light", "logging.progress=false",
            "data.preflight_samples=0", "schedule.total_steps=2", "logging.every=1",
            "data.streams.0.per_step=2", "data.streams.1.per_step=2"])
        try:
            out = Trainer(config, tmp_path / preset).run()
        finally:
            dist.destroy_process_group()
        metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                   if '"loss"' in line]
        gate = SphinxModel.from_pretrained(out / "final").llm.model.layers[0].mlp.gate.weight
        runs[preset] = metrics, gate.float()
    (weighted, weighted_gate), (plain, plain_gate) = runs.values()
    assert all(0.5 < m["loss/load_balancing"] < 2.0 for m in weighted + plain)
    assert weighted[0]["loss"] == pytest.approx(plain[0]["loss"], abs=1e-6)
    assert not torch.equal(weighted_gate, plain_gate)
