"""Each frozen wrapper against the wrapped library, called by hand with the same weights."""

import timm
import torch
import torch.nn.functional as F
from open_clip.transformer import VisionTransformer
from torch import nn

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def test_clip_tokens_match_open_clip_forward(tiny, views5):
    backbone = tiny.patch_encoders["clip"]
    cfg = backbone.config
    peer = VisionTransformer(
        image_size=224,
        patch_size=cfg.patch_size,
        width=cfg.width,
        layers=cfg.layers,
        heads=cfg.width // cfg.head_width,
        mlp_ratio=cfg.mlp_ratio,
        output_dim=cfg.output_dim,
        output_tokens=True,
    ).eval()
    peer.load_state_dict(backbone.visual.state_dict())
    ours = backbone(views5)
    with torch.no_grad():
        pooled, patch_tokens = peer(views5)
    assert ours.shape == (5, 257, cfg.width)
    torch.testing.assert_close(ours[:, 1:], patch_tokens)
    # open_clip projects the normed CLS token; we keep it unprojected.
    torch.testing.assert_close(ours[:, 0] @ peer.proj, pooled)


def test_clip_tokens_match_the_reference_formula(tiny, views5):
    visual = tiny.patch_encoders["clip"].visual
    with torch.no_grad():
        x = visual.conv1(views5).flatten(2).transpose(1, 2)
        cls = visual.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding
        x = visual.ln_post(visual.transformer(visual.ln_pre(x)))
    torch.testing.assert_close(tiny.patch_encoders["clip"](views5), x)


def test_convnext_resize_trunk_repeat_mean(tiny, views5):
    backbone = tiny.patch_encoders["convnext"]
    cfg = backbone.config
    trunk = timm.create_model(
        "convnext_xxlarge", pretrained=False, depths=cfg.depths, dims=cfg.dims, num_classes=0
    ).eval()
    trunk.load_state_dict(backbone.trunk.state_dict())
    with torch.no_grad():
        x = F.interpolate(views5.half().float(), size=(256, 256))  # nearest is the default
        fmap = trunk.head.norm(trunk.forward_features(x))  # (5, C, 8, 8)
        fmap = fmap.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)
        tokens = fmap.flatten(-2).permute(0, 2, 1)
        expected = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
    ours = backbone(views5)
    assert ours.shape == (5, 257, cfg.dims[-1])
    torch.testing.assert_close(ours, expected)
    # each 8x8 cell covers a 2x2 block of the 16x16 grid
    grid = ours[:, 1:].reshape(5, 16, 16, -1)
    torch.testing.assert_close(grid[:, 4, 6], grid[:, 5, 7])


def test_dinov2_renormalisation_and_interpolated_positions(tiny, views5, clip_stats, dinov2_pos):
    clip_mean, clip_std = clip_stats
    backbone = tiny.patch_encoders["dinov2"]
    cfg = backbone.config
    peer = timm.create_model(
        "vit_giant_patch14_dinov2",
        pretrained=False,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        img_size=224,
        num_classes=0,
    ).eval()
    state = backbone.vit.state_dict()
    assert state["pos_embed"].shape == (1, 37 * 37 + 1, cfg.embed_dim)
    state["pos_embed"] = dinov2_pos(state["pos_embed"], 16)
    peer.load_state_dict(state)
    with torch.no_grad():
        imagenet = (views5 * clip_std + clip_mean - IMAGENET_MEAN) / IMAGENET_STD
        expected = peer.forward_features(imagenet)
    ours = backbone(views5)
    assert ours.shape == (5, 257, cfg.embed_dim)
    torch.testing.assert_close(ours, expected)


def test_qformer_matches_blip2_get_qformer_features(tiny, views5, make_blip2):
    backbone = tiny.query_encoder
    cfg = backbone.config
    blip2 = make_blip2(cfg)
    result = blip2.load_state_dict(backbone.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(k.startswith(("language_", "lm_")) for k in result.missing_keys)
    with torch.no_grad():
        expected = blip2.get_qformer_features(pixel_values=views5)
    ours = backbone(views5)
    assert ours.shape == (5, 32, cfg.qformer_width)
    torch.testing.assert_close(ours, expected)


def test_backbones_stay_frozen_in_train_mode(tiny):
    tiny.train()
    try:
        for name, backbone in tiny.backbones():
            assert not any(m.training for m in backbone.modules()), name
            assert not any(p.requires_grad for p in backbone.parameters()), name
        assert tiny.visual_proj.training and tiny.qformer_proj.training
    finally:
        tiny.eval()


def test_dropout_never_runs_in_frozen_backbones(tiny, views5):
    tiny.train()
    try:
        first = tiny.query_encoder(views5[:2])
        second = tiny.query_encoder(views5[:2])
    finally:
        tiny.eval()
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert isinstance(tiny.query_encoder.qformer.dropout, nn.Dropout)


def test_qformer_train_mode_runs_blip2_dropout_with_frozen_weights(tiny, views5):
    """The reference trains with the Q-Former in train mode: BLIP-2's dropout (0.1 on hidden
    states and attention probabilities) is active, the weights still frozen."""
    qformer = tiny.query_encoder
    with torch.no_grad():
        plain = qformer(views5[:2])
    qformer.dropout_in_training = True
    tiny.train()
    try:
        rates = {m.p for m in qformer.qformer.modules() if isinstance(m, nn.Dropout)}
        assert rates == {0.1}
        assert qformer.qformer.training and not any(p.requires_grad for p in qformer.parameters())
        with torch.no_grad():
            first, second = qformer(views5[:2]), qformer(views5[:2])
        assert not torch.equal(first, second) and not torch.equal(first, plain)
        tiny.eval()
        with torch.no_grad():
            torch.testing.assert_close(qformer(views5[:2]), plain, rtol=0, atol=0)
    finally:
        qformer.dropout_in_training = False
        tiny.eval()
