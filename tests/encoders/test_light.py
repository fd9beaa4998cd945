"""SPHINX-Tiny's encoder (`llama_ens_light`) against the library calls its reference makes."""

import timm
import torch
import torch.nn.functional as F

from sphinx_encoders import create_encoder

# Statistics as llama_ens_light.encode_image writes them (float32 tensors, cast to the views).
CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
DINO_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
DINO_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _reference_light_features(encoder, views, dinov2_pos):
    """encode_image of llama_ens_light, on timm modules loaded with the encoder's weights."""
    conv_cfg = encoder.patch_encoders["convnext"].config
    trunk = timm.create_model(
        "convnext_xxlarge", pretrained=False, depths=conv_cfg.depths, dims=conv_cfg.dims
    ).eval()
    trunk.load_state_dict(encoder.patch_encoders["convnext"].trunk.state_dict(), strict=False)
    dino_cfg = encoder.patch_encoders["dinov2"].config
    dino = timm.create_model(
        "vit_giant_patch14_dinov2",
        pretrained=False,
        embed_dim=dino_cfg.embed_dim,
        depth=dino_cfg.depth,
        num_heads=dino_cfg.num_heads,
        img_size=224,
        num_classes=0,
    ).eval()
    state = encoder.patch_encoders["dinov2"].vit.state_dict()
    state["pos_embed"] = dinov2_pos(state["pos_embed"], 16)
    dino.load_state_dict(state)
    with torch.no_grad():
        views_224 = F.interpolate(views.half(), size=(224, 224), mode="bicubic").to(views)
        conv_in = F.interpolate(views.half(), size=(512, 512)).to(views)
        fmap = trunk.head.norm(trunk.forward_features(conv_in))
        assert fmap.shape[1:] == (conv_cfg.dims[-1], 16, 16)
        conv = fmap.flatten(-2).permute(0, 2, 1)
        conv = torch.cat([conv.mean(dim=1, keepdim=True), conv], dim=1)
        dino_in = views_224 * (CLIP_STD / DINO_STD) + (CLIP_MEAN - DINO_MEAN) / DINO_STD
        dino_out = dino.forward_features(dino_in)
        return torch.cat([conv, dino_out], dim=2)


def test_light_tiny_matches_the_reference_encode_image(make_views, dinov2_pos):
    torch.manual_seed(0)
    encoder = create_encoder("sphinx-light-tiny", llm_dim=24)
    views = make_views(2, side=512)
    expected = _reference_light_features(encoder, views, dinov2_pos)
    features = encoder.frozen_features(views)
    assert features.query is None and features.patch.shape == (2, 257, 48 + 48)
    torch.testing.assert_close(features.patch, expected, rtol=0, atol=1e-6)
    out = encoder(views)
    assert encoder.tokens_per_view == 259 and out.embeds.shape == (2, 259, 24)
    with torch.no_grad():
        projected = encoder.visual_proj(expected)
    torch.testing.assert_close(out.embeds[:, 1:-1], projected, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.embeds[:, 0], encoder.start_img[0].expand(2, -1))


def test_light_real_size_on_meta():
    encoder = create_encoder("sphinx-light", llm_dim=2048, device="meta")
    assert encoder.image_size == 512 and encoder.tokens_per_view == 259
    assert encoder.qformer_proj is None and encoder.query_encoder is None
    assert encoder.visual_proj[0].weight.shape == (2048, 3072 + 1536)
    names = set(encoder.reference_state_dict())
    # module names of llama_ens_light.Transformer, written out
    for key in (
        "openclip_convnext_xxl.stem.0.weight",
        "openclip_convnext_xxl.head.norm.weight",
        "dinov2_vitg14.blocks.39.mlp.w12.weight",
        "dinov2_vitg14.pos_embed",
        "visual_proj.0.weight",
        "visual_proj.1.bias",
        "start_img",
        "end_img",
    ):
        assert key in names, key
    assert not any(k.startswith(("clip.", "qformer")) for k in names)


def test_reference_layout_light_checkpoint_loads(tmp_path, make_views):
    torch.manual_seed(1)
    source = create_encoder("sphinx-light-tiny", llm_dim=24)
    shard = {f"llma.{k}": v for k, v in source.reference_state_dict().items()}
    shard["llma.dinov2_vitg14.mask_token"] = torch.zeros(1, 48)  # stored, unused
    shard["llma.tok_embeddings.weight"] = torch.zeros(10, 24)  # the LLM part is skipped
    torch.save({"model": shard}, tmp_path / "consolidated.00-of-01.model.pth")
    loaded = create_encoder("sphinx-light-tiny", llm_dim=24, weights=tmp_path)
    views = make_views(1, side=512)
    torch.testing.assert_close(loaded(views).embeds, source(views).embeds, rtol=0, atol=0)


def test_convnext_fp16_resize_option_against_the_reference_maths(tiny, views5):
    """Reference: F.interpolate(x.half(), size=256).to(x), nearest; the option off is fp32."""
    backbone = tiny.patch_encoders["convnext"]
    trunk = backbone.trunk
    with torch.no_grad():
        x16 = F.interpolate(views5.half(), size=(256, 256)).to(views5)
        x32 = F.interpolate(views5, size=(256, 256))
        ref16 = trunk.head.norm(trunk.forward_features(x16))
        ref32 = trunk.head.norm(trunk.forward_features(x32))
    assert backbone.config.resize_dtype == "float16"  # the reference presets' default
    grid16 = backbone(views5)[:, 1:].reshape(5, 16, 16, -1)[:, ::2, ::2]
    torch.testing.assert_close(grid16, ref16.permute(0, 2, 3, 1), rtol=0, atol=0)
    backbone.config.resize_dtype = None
    try:
        grid32 = backbone(views5)[:, 1:].reshape(5, 16, 16, -1)[:, ::2, ::2]
    finally:
        backbone.config.resize_dtype = "float16"
    torch.testing.assert_close(grid32, ref32.permute(0, 2, 3, 1), rtol=0, atol=0)
    # the rounding is visible in fp32 outputs (reported in the CHANGELOG)
    assert not torch.equal(grid16, grid32)
