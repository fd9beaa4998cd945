"""SPHINX-MoE's encoders (`mixtral_sparse_ens`, `mixtral_sparse_ens5`) against the input
rules of the reference's `encode_image`, transcribed here:

- MoE: `local_image_224 = F.interpolate(x.half(), (224, 224), mode="bicubic").to(x)` feeds
  the Q-Former, CLIP and DINOv2 (re-normalised as `(v * clip_std + clip_mean - mean) / std`);
  ConvNeXt gets `F.interpolate(x.half(), (512, 512)).to(x)` (nearest at the same size, so a
  float16 rounding).
- MoE-1k, on the 1024 canvas: the 224 views are the canvas' bicubic 224 resize and the
  quarters of its bicubic 448 resize (all float16); ConvNeXt gets the 512 views as they are.

Each backbone's own maths is checked against its library elsewhere (test_backbones.py); here
the same weights run at 224 on the views the reference would give them.
"""

import pytest
import torch
import torch.nn.functional as F

from sphinx_encoders import create_encoder


def quarters(x, half):
    return [x[..., :half, :half], x[..., :half, half:], x[..., half:, :half], x[..., half:, half:]]


@pytest.fixture(scope="module")
def moe_and_plain():
    """The tiny MoE encoder and a `sphinx-tiny` (every backbone at its native 224, no
    resize rule) holding the same backbone weights."""
    torch.manual_seed(0)
    moe = create_encoder("sphinx-moe-tiny", llm_dim=24).eval()
    plain = create_encoder("sphinx-tiny", llm_dim=24).eval()
    plain.load_state_dict(moe.state_dict())
    return moe, plain


def expected_features(plain, views_224, conv_in):
    """[CLIP | ConvNeXt | DINOv2] patch features and the Q-Former's, on the given inputs."""
    encoders = plain.patch_encoders
    with torch.no_grad():
        convnext = encoders["convnext"]
        trunk_out = convnext.trunk.head.norm(convnext.trunk.forward_features(conv_in))
        assert trunk_out.shape[2:] == (16, 16)  # 512 natively: the 16 x 16 grid, no resample
        conv = trunk_out.flatten(-2).permute(0, 2, 1)
        conv = torch.cat([conv.mean(dim=1, keepdim=True), conv], dim=1)
        patch = torch.cat([encoders["clip"](views_224), conv, encoders["dinov2"](views_224)], 2)
        return patch, plain.query_encoder(views_224)


def test_moe_encoder_follows_the_reference_input_rules(moe_and_plain, make_views):
    moe, plain = moe_and_plain
    views = make_views(2, side=512)
    views_224 = F.interpolate(views.half(), size=(224, 224), mode="bicubic").to(views)
    conv_in = F.interpolate(views.half(), size=(512, 512)).to(views)
    assert not torch.equal(conv_in, views)  # the float16 rounding is really there
    patch, query = expected_features(plain, views_224, conv_in)
    with torch.no_grad():
        features = moe.frozen_features(views)
    assert features.patch.shape == (2, 257, 32 + 48 + 48) and features.query.shape == (2, 32, 32)
    torch.testing.assert_close(features.patch, patch, rtol=0, atol=1e-6)
    torch.testing.assert_close(features.query, query, rtol=0, atol=1e-6)
    assert moe.tokens_per_view == 291  # start | 32 query | 257 patch | end


def test_moe_1k_encoder_takes_its_224_views_from_the_canvas(moe_and_plain, make_views):
    _, plain = moe_and_plain
    torch.manual_seed(0)
    moe_1k = create_encoder("sphinx-moe-1k-tiny", llm_dim=24).eval()
    moe_1k.load_state_dict(plain.state_dict())
    crops = make_views(4, side=512)
    canvas = torch.cat(
        [torch.cat([crops[0], crops[1]], -1), torch.cat([crops[2], crops[3]], -1)], -2
    )[None]
    global_512 = F.interpolate(canvas.half(), size=(512, 512), mode="bicubic").to(canvas)
    views = torch.cat([global_512, crops])  # what the sphinx-light-1k tiling gives
    local_224 = F.interpolate(canvas.half(), size=(224, 224), mode="bicubic").to(canvas)
    local_448 = F.interpolate(canvas.half(), size=(448, 448), mode="bicubic").to(canvas)
    views_224 = torch.cat([local_224, *quarters(local_448, 224)])
    patch, query = expected_features(plain, views_224, views)
    with torch.no_grad():
        features = moe_1k.frozen_features(views, torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(features.patch, patch, rtol=0, atol=1e-6)
    torch.testing.assert_close(features.query, query, rtol=0, atol=1e-6)


def test_moe_real_size_has_the_reference_module_names_on_meta():
    encoder = create_encoder("sphinx-moe", llm_dim=4096, device="meta")
    assert encoder.image_size == 512 and encoder.tokens_per_view == 291
    assert encoder.visual_proj[0].weight.shape == (4096, 1024 + 3072 + 1536)  # 5632 -> d
    assert encoder.qformer_proj[0].weight.shape == (4096, 768)
    names = set(encoder.reference_state_dict())
    # module names of mixtral_sparse_ens.Transformer, written out
    for key in ("clip.visual.conv1.weight", "openclip_convnext_xxl.stem.0.weight",
                "dinov2_vitg14.blocks.39.mlp.w12.weight", "qformer.query_tokens",
                "qformer_proj.0.weight", "visual_proj.1.bias", "start_img", "end_img"):
        assert key in names, key
    sphinx = create_encoder("sphinx", llm_dim=4096, device="meta")
    shapes = {k: v.shape for k, v in sphinx.reference_state_dict().items()}
    assert {k: v.shape for k, v in encoder.reference_state_dict().items()} == shapes
