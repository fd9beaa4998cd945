"""Reference SPHINX checkpoints, library weight files, and clear errors on bad weights."""

import open_clip
import pytest
import timm
import torch
from safetensors.torch import save_file
from transformers import Dinov2Config, Dinov2Model

from sphinx_encoders import WeightsError, create_encoder

# Names as the reference repo stores them (llama_ens.py builds open_clip / timm / hub / HF
# modules under these attributes); written out here, not derived from our code.
REFERENCE_NAMES = [
    "clip.visual.conv1.weight",
    "clip.visual.class_embedding",
    "clip.visual.positional_embedding",
    "clip.visual.transformer.resblocks.0.attn.in_proj_weight",
    "clip.visual.ln_post.weight",
    "clip.visual.proj",
    "openclip_convnext_xxl.stem.0.weight",
    "openclip_convnext_xxl.stages.3.blocks.0.conv_dw.weight",
    "openclip_convnext_xxl.head.norm.weight",
    "dinov2_vitg14.cls_token",
    "dinov2_vitg14.pos_embed",
    "dinov2_vitg14.patch_embed.proj.weight",
    "dinov2_vitg14.blocks.0.mlp.w12.weight",
    "dinov2_vitg14.blocks.0.mlp.w3.weight",
    "dinov2_vitg14.blocks.1.ls2.gamma",
    "dinov2_vitg14.norm.bias",
    "qformer.query_tokens",
    "qformer.vision_model.embeddings.class_embedding",
    "qformer.vision_model.encoder.layers.0.self_attn.qkv.weight",
    "qformer.vision_model.encoder.layers.0.self_attn.q_bias",
    "qformer.vision_model.encoder.layers.0.self_attn.v_bias",
    "qformer.vision_model.post_layernorm.weight",
    "qformer.qformer.layernorm.weight",
    "qformer.qformer.encoder.layer.0.crossattention.attention.key.weight",
    "qformer.qformer.encoder.layer.1.output_query.dense.weight",
    "qformer_proj.0.weight",
    "qformer_proj.1.bias",
    "visual_proj.0.weight",
    "visual_proj.1.weight",
    "start_img",
    "end_img",
]

# Stored by the reference (CLIP text tower, DINOv2 mask token, Q-Former text FFN), never used.
UNUSED_REFERENCE_KEYS = {
    "clip.token_embedding.weight": (10, 8),
    "clip.ln_final.weight": (8,),
    "clip.logit_scale": (),
    "dinov2_vitg14.mask_token": (1, 48),
    "qformer.qformer.encoder.layer.0.intermediate.dense.weight": (64, 32),
    "qformer.qformer.encoder.layer.0.output.LayerNorm.bias": (32,),
}


@pytest.fixture(scope="module")
def reference(tiny):
    return {k: v.clone() for k, v in tiny.reference_state_dict().items()}


def test_reference_names(tiny, reference):
    assert set(REFERENCE_NAMES) <= set(reference)
    assert not any(k.startswith(("patch_encoders", "query_encoder")) for k in reference)
    assert reference["qformer.vision_model.encoder.layers.0.self_attn.q_bias"].shape == (32,)


def test_reference_shard_round_trip(tiny, reference, tmp_path, views5):
    shard = {f"llma.{k}": v for k, v in reference.items()}
    shard["llma.tok_embeddings.weight"] = torch.zeros(10, 40)
    shard["llma.layers.0.attention.wq.weight"] = torch.zeros(40, 40)
    shard.update({f"llma.{k}": torch.zeros(s) for k, s in UNUSED_REFERENCE_KEYS.items()})
    torch.save({"model": shard}, tmp_path / "consolidated.00-of-01.model.pth")
    loaded = create_encoder("sphinx-tiny", llm_dim=40, weights=tmp_path)
    for key, value in tiny.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, msg=key)
    with torch.no_grad():
        torch.testing.assert_close(loaded(views5).embeds, tiny(views5).embeds)


def test_split_attention_bias_is_fused_with_zero_key_bias(tiny, reference):
    loaded = create_encoder("sphinx-tiny", llm_dim=40)
    loaded.load_reference_state_dict(reference)
    fused = loaded.query_encoder.vision_model.encoder.layers[1].self_attn.qkv.bias
    q_bias = reference["qformer.vision_model.encoder.layers.1.self_attn.q_bias"]
    v_bias = reference["qformer.vision_model.encoder.layers.1.self_attn.v_bias"]
    torch.testing.assert_close(fused, torch.cat([q_bias, torch.zeros(32), v_bias]))


def test_missing_unexpected_and_misshaped_keys_are_all_listed(reference):
    broken = dict(reference)
    del broken["dinov2_vitg14.blocks.0.mlp.w12.weight"]
    broken["clip.visual.extra_thing"] = torch.zeros(3)
    broken["visual_proj.0.weight"] = torch.zeros(40, 7)
    encoder = create_encoder("sphinx-tiny", llm_dim=40)
    with pytest.raises(WeightsError) as info:
        encoder.load_reference_state_dict(broken)
    message = str(info.value)
    assert "1 missing keys: dinov2_vitg14.blocks.0.mlp.w12.weight" in message
    assert "1 unexpected keys: clip.visual.extra_thing" in message
    assert "visual_proj.0.weight: file (40, 7), model (40, 128)" in message


def test_non_strict_load_reports_missing_and_keeps_the_rest(tiny, reference):
    partial = {k: v for k, v in reference.items() if not k.startswith("openclip_convnext_xxl.")}
    encoder = create_encoder("sphinx-tiny", llm_dim=40)
    missing = encoder.load_reference_state_dict(partial, strict=False)
    assert missing and all(k.startswith("openclip_convnext_xxl.") for k in missing)
    torch.testing.assert_close(encoder.start_img, tiny.start_img)


def test_wrong_llm_width_fails_with_shapes(reference, tmp_path):
    torch.save({"model": {f"llma.{k}": v for k, v in reference.items()}}, tmp_path / "w.pth")
    with pytest.raises(
        WeightsError, match=r"w\.pth: .*start_img: file \(1, 1, 40\), model \(1, 1, 64\)"
    ):
        create_encoder("sphinx-tiny", llm_dim=64, weights=tmp_path / "w.pth")


def test_own_state_dict_file(tiny, tmp_path):
    save_file(
        {k: v.contiguous() for k, v in tiny.state_dict().items()}, tmp_path / "enc.safetensors"
    )
    loaded = create_encoder("sphinx-tiny", llm_dim=40, weights=tmp_path / "enc.safetensors")
    torch.testing.assert_close(loaded.end_img, tiny.end_img)


def test_unreadable_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"junk\.pth: not a readable torch weights file"):
        create_encoder("sphinx-tiny", llm_dim=8, weights=tmp_path / "junk.pth")
    with pytest.raises(WeightsError, match="no such file"):
        create_encoder("sphinx-tiny", llm_dim=8, weights=tmp_path / "absent.pth")
    with pytest.raises(WeightsError, match="no consolidated"):
        create_encoder("sphinx-tiny", llm_dim=8, weights=tmp_path)
    with pytest.raises(WeightsError, match="no backbone named 'eva'"):
        create_encoder("sphinx-tiny", llm_dim=8, weights={"eva": tmp_path / "junk.pth"})


# --- each backbone from its own library's files ----------------------------------------
def test_open_clip_checkpoint(tmp_path, views5):
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg=dict(image_size=224, patch_size=14, width=32, layers=2, head_width=16),
        text_cfg=dict(context_length=8, vocab_size=50, width=16, heads=2, layers=1),
    ).eval()
    torch.save({"state_dict": model.state_dict()}, tmp_path / "open_clip.pt")
    encoder = create_encoder(
        "clip-vit-tiny", llm_dim=8, weights={"clip": tmp_path / "open_clip.pt"}
    )
    model.visual.output_tokens = True
    with torch.no_grad():
        _, patch_tokens = model.visual(views5)
    torch.testing.assert_close(encoder.patch_encoders["clip"](views5)[:, 1:], patch_tokens)


def test_timm_convnext_file_drops_the_classifier(tmp_path):
    trunk = timm.create_model("convnext_xxlarge", depths=(1, 1, 1, 1), dims=(16, 24, 32, 48))
    assert "head.fc.weight" in trunk.state_dict()
    save_file(trunk.state_dict(), tmp_path / "convnext.safetensors")
    encoder = create_encoder(
        "clip-convnext-tiny", llm_dim=8, weights={"convnext": tmp_path / "convnext.safetensors"}
    )
    torch.testing.assert_close(
        encoder.patch_encoders["convnext"].trunk.stem[0].weight, trunk.stem[0].weight
    )


def test_original_dinov2_file_and_bad_shapes(tmp_path):
    source = create_encoder("dinov2-tiny", llm_dim=8).patch_encoders["dinov2"].vit.state_dict()
    original = {
        k.replace(".mlp.fc1.", ".mlp.w12.").replace(".mlp.fc2.", ".mlp.w3."): v
        for k, v in source.items()
    }
    original["mask_token"] = torch.zeros(1, 48)
    torch.save(original, tmp_path / "dinov2.pth")
    encoder = create_encoder("dinov2-tiny", llm_dim=8, weights={"dinov2": tmp_path / "dinov2.pth"})
    torch.testing.assert_close(
        encoder.patch_encoders["dinov2"].vit.blocks[1].mlp.fc1.weight,
        source["blocks.1.mlp.fc1.weight"],
    )
    original["pos_embed"] = torch.zeros(1, 257, 48)
    torch.save(original, tmp_path / "dinov2_224.pth")
    with pytest.raises(
        WeightsError,
        match=r"dinov2_224\.pth: 1 wrong shapes: vit\.pos_embed: file \(1, 257, 48\), model \(1, 1370, 48\)",
    ):
        create_encoder("dinov2-tiny", llm_dim=8, weights={"dinov2": tmp_path / "dinov2_224.pth"})


def test_hugging_face_blip2_folder(tmp_path, views5, make_blip2):
    encoder = create_encoder("qformer-tiny", llm_dim=8)
    cfg = encoder.query_encoder.config
    blip2 = make_blip2(cfg)
    with torch.no_grad():
        blip2.query_tokens.normal_()
    blip2.save_pretrained(tmp_path / "blip2")
    encoder = create_encoder("qformer-tiny", llm_dim=8, weights={"qformer": tmp_path / "blip2"})
    with torch.no_grad():
        expected = blip2.get_qformer_features(pixel_values=views5[:2])
        torch.testing.assert_close(encoder.query_encoder(views5[:2]), expected)


def test_hugging_face_dinov2_folder(tmp_path, clip_stats):
    clip_mean, clip_std = clip_stats
    hf = Dinov2Model(
        Dinov2Config(
            hidden_size=48,
            num_hidden_layers=2,
            num_attention_heads=3,
            image_size=518,
            patch_size=14,
            use_swiglu_ffn=True,
        )
    ).eval()
    hf.save_pretrained(tmp_path / "dinov2")
    encoder = create_encoder("dinov2-tiny", llm_dim=8, weights={"dinov2": tmp_path / "dinov2"})
    # At 518 px both keep the stored 37x37 positions (no interpolation on either side).
    views = torch.randn(2, 3, 518, 518, generator=torch.Generator().manual_seed(0))
    imagenet = (
        views * clip_std + clip_mean - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    ) / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    with torch.no_grad():
        expected = hf(pixel_values=imagenet).last_hidden_state
        torch.testing.assert_close(encoder.patch_encoders["dinov2"](views), expected)


def test_meta_encoders_refuse_weights(tmp_path):
    torch.save(create_encoder("clip-vit-tiny", llm_dim=8).state_dict(), tmp_path / "x.pth")
    with pytest.raises(WeightsError, match="meta device"):
        create_encoder("clip-vit-tiny", llm_dim=8, device="meta", weights=tmp_path / "x.pth")


@pytest.mark.parametrize("name", ["sphinx", "sphinx-tiny"])
def test_every_tensor_is_in_the_state_dict(name):
    # create_encoder skips the random init before a strict whole-file load; that is only
    # sound while no module keeps tensors outside its state dict.
    encoder = create_encoder(name, llm_dim=8, device="meta")
    buffers = dict(encoder.named_buffers())
    assert set(buffers) <= set(encoder.state_dict())
