"""Converting reference (LLaMA2-Accessory) checkpoints: two model-parallel shards, `llma.` keys.

The expectation is a Meta-style LLaMA forward written here from the reference description
(interleaved complex-pair RoPE, RMSNorm, SwiGLU), run on the unsplit random weights.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from sphinx_train import ConversionError, SphinxModel, SphinxSample, collate, convert_accessory

DIM, LAYERS, HEADS, MULTIPLE_OF, EPS = 64, 2, 4, 32, 1e-5
HIDDEN = 192  # int(2 * 4 * 64 / 3) = 170, rounded up to a multiple of 32
COLUMN_PARALLEL = (
    "attention.wq",
    "attention.wk",
    "attention.wv",
    "feed_forward.w1",
    "feed_forward.w3",
)
ROW_PARALLEL = ("attention.wo", "feed_forward.w2")


def reference_weights(vocab: int, kv_heads: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)

    def rand(*shape, scale=0.08):
        return torch.randn(*shape, generator=generator) * scale

    head_dim = DIM // HEADS
    weights = {"tok_embeddings.weight": rand(vocab, DIM, scale=1.0)}
    for i in range(LAYERS):
        weights |= {
            f"layers.{i}.attention.wq.weight": rand(HEADS * head_dim, DIM),
            f"layers.{i}.attention.wk.weight": rand(kv_heads * head_dim, DIM),
            f"layers.{i}.attention.wv.weight": rand(kv_heads * head_dim, DIM),
            f"layers.{i}.attention.wo.weight": rand(DIM, HEADS * head_dim),
            f"layers.{i}.feed_forward.w1.weight": rand(HIDDEN, DIM),
            f"layers.{i}.feed_forward.w2.weight": rand(DIM, HIDDEN),
            f"layers.{i}.feed_forward.w3.weight": rand(HIDDEN, DIM),
            f"layers.{i}.attention_norm.weight": 1 + rand(DIM, scale=0.1),
            f"layers.{i}.ffn_norm.weight": 1 + rand(DIM, scale=0.1),
        }
    weights["norm.weight"] = 1 + rand(DIM, scale=0.1)
    weights["output.weight"] = rand(vocab, DIM)
    return weights


def split_dim(key: str) -> int | None:
    """The model-parallel split rule of the reference code."""
    if key == "tok_embeddings.weight":
        return 1
    if key == "output.weight" or any(f".{name}." in key for name in COLUMN_PARALLEL):
        return 0
    if any(f".{name}." in key for name in ROW_PARALLEL):
        return 1
    return None


def write_reference_checkpoint(
    folder, llm, vision, tokenizer_file, llama_type="llama_ens5", kv_heads=None
):
    folder.mkdir()
    shards = [{}, {}]
    for key, tensor in {**llm, **vision}.items():
        dim = split_dim(key) if key in llm else None
        pieces = [tensor, tensor] if dim is None else tensor.chunk(2, dim=dim)
        for shard, piece in zip(shards, pieces, strict=True):
            shard["llma." + key] = piece.clone()
    for rank, shard in enumerate(shards):
        torch.save({"model": shard}, folder / f"consolidated.{rank:02d}-of-02.model.pth")
    args = {
        "dim": DIM,
        "n_layers": LAYERS,
        "n_heads": HEADS,
        "multiple_of": MULTIPLE_OF,
        "norm_eps": EPS,
    }
    if kv_heads is not None:
        args["n_kv_heads"] = kv_heads
    (folder / "config.json").write_text(json.dumps(args))
    (folder / "meta.json").write_text(json.dumps({"llama_type": llama_type}))
    shutil.copyfile(tokenizer_file, folder / "tokenizer.model")


def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight


def rotate_interleaved(x, positions):
    """Meta RoPE: consecutive channel pairs are complex numbers rotated by position * freq."""
    head_dim = x.shape[-1]
    freqs = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.outer(positions.float(), freqs)
    rotation = torch.polar(torch.ones_like(angles), angles)[:, None, :]
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], head_dim // 2, 2))
    return torch.view_as_real(pairs * rotation).flatten(-2)


def meta_llama_logits(w, embeds, kv_heads):
    """Logits of a Meta-style LLaMA for one sequence of input embeddings (T, DIM)."""
    length, head_dim = embeds.shape[0], DIM // HEADS
    positions = torch.arange(length)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    h = embeds
    for i in range(LAYERS):
        x = rms_norm(h, w[f"layers.{i}.attention_norm.weight"])
        q = (x @ w[f"layers.{i}.attention.wq.weight"].T).view(length, HEADS, head_dim)
        k = (x @ w[f"layers.{i}.attention.wk.weight"].T).view(length, kv_heads, head_dim)
        v = (x @ w[f"layers.{i}.attention.wv.weight"].T).view(length, kv_heads, head_dim)
        q, k = rotate_interleaved(q, positions), rotate_interleaved(k, positions)
        k = k.repeat_interleave(HEADS // kv_heads, dim=1)
        v = v.repeat_interleave(HEADS // kv_heads, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / head_dim**0.5
        attention = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        out = torch.einsum("hqk,khd->qhd", attention, v).reshape(length, DIM)
        h = h + out @ w[f"layers.{i}.attention.wo.weight"].T
        x = rms_norm(h, w[f"layers.{i}.ffn_norm.weight"])
        gate = torch.nn.functional.silu(x @ w[f"layers.{i}.feed_forward.w1.weight"].T)
        h = (
            h
            + (gate * (x @ w[f"layers.{i}.feed_forward.w3.weight"].T))
            @ w[f"layers.{i}.feed_forward.w2.weight"].T
        )
    return rms_norm(h, w["norm.weight"]) @ w["output.weight"].T


@pytest.fixture(scope="module")
def tiny_encoder():
    from sphinx_encoders import create_encoder

    torch.manual_seed(5)
    return create_encoder("sphinx-tiny", llm_dim=DIM).eval()


@pytest.fixture(scope="module")
def vocab(sentencepiece_file):
    from sphinx_train import SentencePieceTokenizer

    return SentencePieceTokenizer(sentencepiece_file).vocab_size


@pytest.mark.parametrize("kv_heads", [None, 2])
def test_converted_model_matches_the_reference_forward(
    tmp_path, sentencepiece_file, tiny_encoder, vocab, kv_heads
):
    llm = reference_weights(vocab, kv_heads or HEADS)
    source = tmp_path / "reference"
    write_reference_checkpoint(
        source, llm, tiny_encoder.reference_state_dict(), sentencepiece_file, kv_heads=kv_heads
    )
    convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")
    model = SphinxModel.from_pretrained(tmp_path / "ours")
    assert model.config.tiling == "sphinx-1k"  # llama_type llama_ens5

    tokens = model.tokenizer.encode("### Human: What is it?\n### Assistant: A cat.")
    tokens = [model.tokenizer.bos_id, *tokens]
    with torch.no_grad():
        expected = meta_llama_logits(llm, llm["tok_embeddings.weight"][tokens], kv_heads or HEADS)
        got = model.llm(torch.tensor([tokens])).logits[0]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)

    image = Image.new("RGB", (300, 180), (30, 90, 220))
    pixels = model.image_views(image)[0]
    assert pixels.shape[0] == 5
    index = torch.zeros(5, dtype=torch.long)
    with torch.no_grad():
        image_tokens = tiny_encoder(pixels, index).embeds[0]
        torch.testing.assert_close(model.encoder(pixels, index).embeds[0], image_tokens)
        embed = llm["tok_embeddings.weight"]
        sequence = torch.cat([embed[tokens[:1]], image_tokens, embed[tokens[1:]]])
        expected = meta_llama_logits(llm, sequence, kv_heads or HEADS)
        got = model(collate([SphinxSample(tokens, pixel_values=pixels)])).logits[0]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("llama_type", "tiling"), [("llama_ens", "sphinx"), ("llama_ens10", "sphinx-2k")]
)
def test_llama_type_picks_the_tiling(
    tmp_path, sentencepiece_file, tiny_encoder, vocab, llama_type, tiling
):
    source = tmp_path / "reference"
    write_reference_checkpoint(
        source,
        reference_weights(vocab, HEADS),
        tiny_encoder.reference_state_dict(),
        sentencepiece_file,
        llama_type,
    )
    out = convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")
    assert json.loads((out / "config.json").read_text())["tiling"] == tiling


def _broken_checkpoint(tmp_path, sentencepiece_file, tiny_encoder, vocab, edit):
    llm = reference_weights(vocab, HEADS)
    vision = tiny_encoder.reference_state_dict()
    changed = edit(llm, vision)
    llama_type = changed if isinstance(changed, str) else "llama_ens"
    source = tmp_path / "reference"
    write_reference_checkpoint(source, llm, vision, sentencepiece_file, llama_type)
    return source


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda llm, vision: llm.update({"layers.0.attention.wz.weight": torch.zeros(4, 4)}),
            "unknown key llma.layers.0.attention.wz",
        ),
        (
            lambda llm, vision: llm.update(
                {"layers.1.feed_forward.w1.weight": torch.zeros(160, DIM)}
            ),
            "mlp.gate_proj.weight: merged shape",
        ),
        (lambda llm, vision: llm.pop("layers.1.ffn_norm.weight"), "lacks LLM weights"),
        (lambda llm, vision: vision.pop("end_img"), "end_img"),
        (lambda llm, vision: "llama_ens_peft", "llama_type .llama_ens_peft. is not supported"),
        # a dense LLaMA under a Mixtral llama_type: its feed-forward keys are not experts
        (lambda llm, vision: "mixtral_sparse_ens", "unknown key llma.layers.0.feed_forward.w1.weight"),
    ],
    ids=["unknown-key", "wrong-shape", "missing-llm-key", "missing-vision-key", "llama-type",
         "dense-as-moe"],
)
def test_bad_checkpoints_fail_clearly_and_write_nothing(
    tmp_path, sentencepiece_file, tiny_encoder, vocab, edit, message
):
    source = _broken_checkpoint(tmp_path, sentencepiece_file, tiny_encoder, vocab, edit)
    with pytest.raises(ValueError, match=message):
        convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference"]


def test_missing_shard_is_reported(tmp_path, sentencepiece_file, tiny_encoder, vocab):
    source = _broken_checkpoint(
        tmp_path, sentencepiece_file, tiny_encoder, vocab, lambda llm, vision: None
    )
    (source / "consolidated.01-of-02.model.pth").unlink()
    with pytest.raises(ConversionError, match=r"shards \[1\] of 2 are missing"):
        convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")


def test_dtype_option_and_llm_split_into_several_files(
    tmp_path, sentencepiece_file, tiny_encoder, vocab, monkeypatch
):
    from transformers import LlamaForCausalLM

    from sphinx_train import accessory

    llm = reference_weights(vocab, HEADS)
    source = tmp_path / "reference"
    write_reference_checkpoint(source, llm, tiny_encoder.reference_state_dict(), sentencepiece_file)
    monkeypatch.setattr(accessory, "LLM_SHARD_BYTES", 40_000)
    out = convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny", dtype="bfloat16")
    files = sorted(p.name for p in (out / "llm").glob("*.safetensors"))
    assert len(files) > 3
    assert (out / "llm" / "model.safetensors.index.json").is_file()
    plain = LlamaForCausalLM.from_pretrained(out / "llm")
    assert plain.dtype == torch.bfloat16
    torch.testing.assert_close(
        plain.model.embed_tokens.weight, llm["tok_embeddings.weight"].bfloat16()
    )
    torch.testing.assert_close(plain.lm_head.weight, llm["output.weight"].bfloat16())
    model = SphinxModel.from_pretrained(out)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


# -- hardening: nothing of the user's is lost, hostile files get one line ----------------------


def _good_source(tmp_path, sentencepiece_file, tiny_encoder, vocab, name="reference"):
    source = tmp_path / name
    source.parent.mkdir(parents=True, exist_ok=True)
    write_reference_checkpoint(
        source, reference_weights(vocab, HEADS), tiny_encoder.reference_state_dict(),
        sentencepiece_file, "llama_ens",
    )  # fmt: skip
    return source


def _listing(folder):
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*"))


def test_output_equal_to_or_containing_the_source_is_refused(
    tmp_path, sentencepiece_file, tiny_encoder, vocab
):
    models = tmp_path / "models"
    source = _good_source(models, sentencepiece_file, tiny_encoder, vocab, "SPHINX")
    (models / "other-model.txt").write_text("keep me")
    before = _listing(models)
    for output in (source, models, source / "inside"):
        for overwrite in (False, True):
            with pytest.raises(ValueError, match="input") as info:
                convert_accessory(source, output, encoder="sphinx-tiny", overwrite=overwrite)
            assert "\n" not in str(info.value)
    assert _listing(models) == before


def test_existing_output_needs_overwrite_and_only_holds_model_files(
    tmp_path, sentencepiece_file, tiny_encoder, vocab
):
    source = _good_source(tmp_path, sentencepiece_file, tiny_encoder, vocab)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists"):
        convert_accessory(source, out, encoder="sphinx-tiny")
    with pytest.raises(ValueError, match=r"did not write \(notes\.txt\)"):
        convert_accessory(source, out, encoder="sphinx-tiny", overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    convert_accessory(source, out, encoder="sphinx-tiny", overwrite=True)
    convert_accessory(source, out, encoder="sphinx-tiny", overwrite=True, dtype="bf16")
    assert SphinxModel.from_pretrained(out).llm.dtype == torch.bfloat16
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _edited_source(tmp_path, sentencepiece_file, tiny_encoder, vocab, edit_args=None, edit=None):
    source = _good_source(tmp_path, sentencepiece_file, tiny_encoder, vocab)
    if edit_args is not None:
        args = json.loads((source / "config.json").read_text())
        edit_args(args)
        (source / "config.json").write_text(json.dumps(args))
    if edit is not None:
        edit(source)
    return source


def _edit_shard(rank, change):
    def edit(source):
        path = source / f"consolidated.{rank:02d}-of-02.model.pth"
        shard = torch.load(path, weights_only=True)
        change(shard["model"])
        torch.save(shard, path)

    return edit


@pytest.mark.parametrize(
    ("edit_args", "edit", "message"),
    [
        (None, lambda s: (s / "meta.json").write_text('{"llama_type": ["llama_ens"]}'),
         r"meta\.json: llama_type \['llama_ens'\] is not supported"),
        (lambda a: a.update(dim=None), None, r"config\.json: dim=None, expected a positive"),
        (lambda a: a.update(n_heads=0), None, r"config\.json: n_heads=0, expected a positive"),
        (None, _edit_shard(1, lambda m: m.update({"llma.tok_embeddings.weight": torch.zeros(7)})),
         r"01-of-02\.model\.pth: llma\.tok_embeddings\.weight has shape \(7,\), expected 2-D"),
        (None, _edit_shard(1, lambda m: m.update(
            {"llma.tok_embeddings.weight": torch.zeros(1000, DIM // 2)})),
         r"01-of-02\.model\.pth: llma\.tok_embeddings\.weight .*another model"),
        (None, _edit_shard(1, lambda m: m.update(
            {"llma.output.weight": torch.zeros(1000, DIM)})),
         r"lm_head\.weight: merged shape \(1160, 64\), expected \(320, 64\)"),
        (None, lambda s: (s / "consolidated.00-of-02.model.pth").write_bytes(b"PK\x03\x04junk"),
         r"00-of-02\.model\.pth: cannot be read"),
        (None, _edit_shard(0, lambda m: m.clear()), r"00-of-02\.model\.pth: the checkpoint holds no"),
    ],
    ids=["list-llama-type", "dim-null", "n-heads-0", "1d-embedding", "other-vocab-embedding",
         "other-vocab-output", "corrupt-shard", "empty-shard"],
)  # fmt: skip
def test_hostile_checkpoints_get_one_line_naming_file_and_key(
    tmp_path, sentencepiece_file, tiny_encoder, vocab, edit_args, edit, message
):
    source = _edited_source(tmp_path, sentencepiece_file, tiny_encoder, vocab, edit_args, edit)
    with pytest.raises(ConversionError, match=message) as info:
        convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "ours").exists()


def test_deflated_shard_is_read_correctly(tmp_path, sentencepiece_file, tiny_encoder, vocab):
    """A torch zip re-packed with deflate must give the real tensors (mmap would map the
    compressed bytes), checked against the unsplit weights."""
    import zipfile

    source = _good_source(tmp_path, sentencepiece_file, tiny_encoder, vocab)
    for path in sorted(source.glob("consolidated.*.pth")):
        packed = path.with_suffix(".tmp")
        with zipfile.ZipFile(path) as old, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as new:
            for info in old.infolist():
                new.writestr(info.filename, old.read(info), zipfile.ZIP_DEFLATED)
        packed.replace(path)
    out = convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")
    llm = reference_weights(vocab, HEADS)
    model = SphinxModel.from_pretrained(out)
    torch.testing.assert_close(model.llm.lm_head.weight, llm["output.weight"])
    torch.testing.assert_close(model.llm.model.embed_tokens.weight, llm["tok_embeddings.weight"])


def test_replicated_weights_that_differ_warn_and_take_shard_0(
    tmp_path, sentencepiece_file, tiny_encoder, vocab
):
    """The reference loads each shard into its own rank and warns; shard 0's copy is the one
    a single-process model keeps."""
    llm = reference_weights(vocab, HEADS)
    edit = _edit_shard(1, lambda m: m["llma.norm.weight"].add_(1.0))
    source = _edited_source(tmp_path, sentencepiece_file, tiny_encoder, vocab, edit=edit)
    with pytest.warns(UserWarning, match=r"1 replicated weights differ.*llma\.norm\.weight"):
        out = convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")
    model = SphinxModel.from_pretrained(out)
    torch.testing.assert_close(model.llm.model.norm.weight, llm["norm.weight"])


def test_first_release_layout_takes_llama_type_and_shape_by_hand(
    tmp_path, sentencepiece_file, tiny_encoder, vocab, monkeypatch
):
    from sphinx_train import LlamaShape, llm

    source = _good_source(tmp_path, sentencepiece_file, tiny_encoder, vocab)
    for name in ("meta.json", "config.json", "tokenizer.model"):
        (source / name).unlink()
    monkeypatch.setitem(
        llm.LLM_SHAPES, "test-64", LlamaShape(DIM, HIDDEN, LAYERS, HEADS, rms_norm_eps=EPS)
    )
    with pytest.raises(ConversionError, match=r"meta\.json: not found"):
        convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")
    out = convert_accessory(
        source, tmp_path / "ours", encoder="sphinx-tiny", llama_type="llama_ens5",
        llm_args="test-64", tokenizer=sentencepiece_file,
    )  # fmt: skip
    model = SphinxModel.from_pretrained(out)
    assert model.tiling.name == "sphinx-1k"
    weights = reference_weights(vocab, HEADS)
    tokens = [model.tokenizer.bos_id, *model.tokenizer.encode("A cat.")]
    with torch.no_grad():
        expected = meta_llama_logits(weights, weights["tok_embeddings.weight"][tokens], HEADS)
        got = model.llm(torch.tensor([tokens])).logits[0]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_load_pretrained_visual_encoder_builds_quick_gelu_clip(
    tmp_path, sentencepiece_file, tiny_encoder, vocab
):
    """SPHINX's config.json flag makes the reference call open_clip with pretrained='openai',
    which builds ViT-L-14 with QuickGELU."""
    source = _edited_source(
        tmp_path, sentencepiece_file, tiny_encoder, vocab,
        edit_args=lambda a: a.update(load_pretrained_visual_encoder=True),
    )  # fmt: skip
    out = convert_accessory(source, tmp_path / "ours", encoder="sphinx-tiny")
    config = json.loads((out / "config.json").read_text())["encoder_config"]
    clips = [b for b in config["patch_encoders"] if "quick_gelu" in b]
    assert clips and all(b["quick_gelu"] is True for b in clips)


@pytest.mark.parametrize(
    ("llama_type", "encoder", "tiling", "views"),
    [("llama_ens_light", "sphinx-light-tiny", "sphinx-light", 1),
     ("llama_ens5_light", "sphinx-light-1k-tiny", "sphinx-light-1k", 5)],
)  # fmt: skip
def test_sphinx_tiny_layout_converts_and_matches_the_reference_forward(
    tmp_path, sentencepiece_file, vocab, llama_type, encoder, tiling, views
):
    """llama_ens_light: no CLIP and no Q-Former; 259 tokens a view (start | 257 | end); the
    LLM is grouped-query (TinyLlama-like, 2 key/value heads here). The image tokens are the
    encoder's, which tests/encoders/test_light.py checks against each encode_image."""
    from sphinx_encoders import create_encoder

    torch.manual_seed(8)
    light = create_encoder(encoder, llm_dim=DIM).eval()
    vision = light.reference_state_dict()
    assert not any(key.startswith(("clip.", "qformer")) for key in vision)
    llm = reference_weights(vocab, 2)
    source = tmp_path / "reference"
    write_reference_checkpoint(
        source, llm, vision, sentencepiece_file, llama_type=llama_type, kv_heads=2
    )
    out = convert_accessory(source, tmp_path / "ours", encoder=encoder)
    model = SphinxModel.from_pretrained(out)
    assert model.tiling.name == tiling
    image = Image.new("RGB", (700, 500), (200, 120, 20))
    pixels = model.image_views(image)[0]
    assert pixels.shape == (views, 3, 512, 512)
    tokens = [model.tokenizer.bos_id, *model.tokenizer.encode("What is it?")]
    index = torch.zeros(views, dtype=torch.long)
    with torch.no_grad():
        image_tokens = light(pixels, index).embeds[0]
        assert image_tokens.shape[0] == 259 * views
        embed = llm["tok_embeddings.weight"]
        sequence = torch.cat([embed[tokens[:1]], image_tokens, embed[tokens[1:]]])
        expected = meta_llama_logits(llm, sequence, 2)
        got = model(collate([SphinxSample(tokens, pixel_values=pixels)])).logits[0]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
