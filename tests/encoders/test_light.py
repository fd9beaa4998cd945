"""SPHINX-Tiny's encoder (`llama_ens_light`) against the library calls its reference makes."""

import pytest
import timm
import torch
import torch.nn.functional as F

from sphinx_encoders import create_encoder

# Statistics as llama_ens_light.encode_image writes them (float32 tensors, cast to the views).
CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
DINO_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
DINO_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _reference_modules(encoder, dinov2_pos):
    """timm's ConvNeXt trunk and DINOv2 ViT, loaded with the encoder's weights."""
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
    return trunk, dino


def _ensemble(trunk, dino, conv_in, local_224):
    """The reference's ConvNeXt tokens (GAP first as CLS) beside DINOv2's, on channels."""
    fmap = trunk.head.norm(trunk.forward_features(conv_in))
    assert fmap.shape[2:] == (16, 16)
    conv = fmap.flatten(-2).permute(0, 2, 1)
    conv = torch.cat([conv.mean(dim=1, keepdim=True), conv], dim=1)
    dino_in = local_224 * (CLIP_STD / DINO_STD) + (CLIP_MEAN - DINO_MEAN) / DINO_STD
    return torch.cat([conv, dino.forward_features(dino_in)], dim=2)


def _reference_light_features(encoder, views, dinov2_pos):
    """encode_image of llama_ens_light, on timm modules loaded with the encoder's weights."""
    trunk, dino = _reference_modules(encoder, dinov2_pos)
    with torch.no_grad():
        views_224 = F.interpolate(views.half(), size=(224, 224), mode="bicubic").to(views)
        conv_in = F.interpolate(views.half(), size=(512, 512)).to(views)
        return _ensemble(trunk, dino, conv_in, views_224)


def _reference_light_1k_features(encoder, image, dinov2_pos):
    """encode_image of llama_ens5_light on a (1, 3, 1024, 1024) image: ConvNeXt gets the
    global 512 resize and the 512 quarters as they are, DINOv2 the 224 resize and the
    quarters of the 448 resize."""
    trunk, dino = _reference_modules(encoder, dinov2_pos)

    def quarters(x, half):
        return [
            x[..., :half, :half],
            x[..., :half, half:],
            x[..., half:, :half],
            x[..., half:, half:],
        ]

    with torch.no_grad():
        local_224 = F.interpolate(image.half(), size=(224, 224), mode="bicubic").to(image)
        local_448 = F.interpolate(image.half(), size=(448, 448), mode="bicubic").to(image)
        local_512 = F.interpolate(image.half(), size=(512, 512), mode="bicubic").to(image)
        dino_in = torch.cat([local_224, *quarters(local_448, 224)])
        conv_in = torch.cat([local_512, *quarters(image, 512)])
        return conv_in, _ensemble(trunk, dino, conv_in, dino_in)


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


def test_light_1k_real_size_has_the_light_checkpoint_layout():
    light = create_encoder("sphinx-light", llm_dim=2048, device="meta")
    light_1k = create_encoder("sphinx-light-1k", llm_dim=2048, device="meta")
    assert light_1k.tokens_per_view == 259
    shapes = {k: v.shape for k, v in light.reference_state_dict().items()}
    assert {k: v.shape for k, v in light_1k.reference_state_dict().items()} == shapes


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


def test_light_1k_tiny_matches_the_reference_encode_image(dinov2_pos):
    torch.manual_seed(0)
    encoder = create_encoder("sphinx-light-1k-tiny", llm_dim=24)
    image = torch.randn(1, 3, 1024, 1024)
    views, expected = _reference_light_1k_features(encoder, image, dinov2_pos)
    features = encoder.frozen_features(views, torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(features.patch, expected, rtol=0, atol=1e-6)
    out = encoder(views, torch.zeros(5, dtype=torch.long))
    with torch.no_grad():
        projected = encoder.visual_proj(expected)
    assert out.embeds.shape == (1, 5 * 259, 24)
    torch.testing.assert_close(out.embeds.view(5, 259, 24)[:, 1:-1], projected, rtol=0, atol=1e-5)


def test_light_1k_groups_views_by_image(make_views, dinov2_pos):
    """Two five-view images, interleaved, and a one-view image (its own canvas, as in
    llama_ens_light) in one batch: each image as if encoded alone."""
    torch.manual_seed(0)
    encoder = create_encoder("sphinx-light-1k-tiny", llm_dim=24)
    first, second = (_reference_light_1k_features(encoder, torch.randn(1, 3, 1024, 1024),
                                                  dinov2_pos) for _ in range(2))  # fmt: skip
    single = make_views(1, side=512)
    views = torch.cat([first[0], second[0], single])
    order = torch.tensor([0, 5, 10, 1, 6, 2, 7, 3, 8, 4, 9])  # the images' views interleaved
    index = torch.tensor([0] * 5 + [2] * 5 + [1])[order]
    features = encoder.frozen_features(views[order], index)
    _, dino = _reference_modules(encoder, dinov2_pos)
    with torch.no_grad():
        single_224 = F.interpolate(single.half(), size=(224, 224), mode="bicubic").to(single)
        single_dino = dino.forward_features(
            single_224 * (CLIP_STD / DINO_STD) + (CLIP_MEAN - DINO_MEAN) / DINO_STD
        )
    dino_channels = encoder.patch_encoders["dinov2"].out_channels
    expected = torch.cat([first[1], second[1]])[:, :, -dino_channels:]
    expected = torch.cat([expected, single_dino])[order]
    torch.testing.assert_close(features.patch[:, :, -dino_channels:], expected, rtol=0, atol=1e-6)


def test_light_1k_refuses_other_view_counts_and_without_grouping_keeps_the_per_view_rule(
    make_views,
):
    torch.manual_seed(0)
    encoder = create_encoder("sphinx-light-1k-tiny", llm_dim=24)
    views = make_views(3, side=512)
    with pytest.raises(ValueError, match=r"^image 4 has 3 views; views_from_canvas expects 1 or 5"):
        encoder(views, torch.tensor([4, 4, 4]))
    dinov2 = encoder.patch_encoders["dinov2"]
    per_view = F.interpolate(views.half(), size=(224, 224), mode="bicubic").float()
    assert torch.equal(dinov2.resize(views), per_view)  # None: one view per image
    assert torch.equal(dinov2.resize(views, torch.arange(3)), per_view)
