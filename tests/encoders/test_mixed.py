"""Token layout, per-image grouping, channel order, gradients and dtypes of the mixed encoder."""

import pytest
import torch

from sphinx_encoders import (
    ClipViTConfig,
    ConvNeXtConfig,
    EncoderConfig,
    MixedVisualEncoder,
    create_encoder,
)


def test_view_layout_is_start_query_patches_end(tiny, views5):
    with torch.no_grad():
        tokens = tiny.encode_views(views5)
        query = tiny.qformer_proj(tiny.query_encoder(views5))
        clip = tiny.patch_encoders["clip"](views5)
        convnext = tiny.patch_encoders["convnext"](views5)
        dinov2 = tiny.patch_encoders["dinov2"](views5)
        patches = tiny.visual_proj(torch.cat([clip, convnext, dinov2], dim=-1))
        wrong_order = tiny.visual_proj(torch.cat([dinov2, convnext, clip], dim=-1))
    assert tokens.shape == (5, 1 + 32 + 257 + 1, 40)
    torch.testing.assert_close(tokens[:, 0], tiny.start_img[0].expand(5, -1))
    torch.testing.assert_close(tokens[:, 1:33], query)
    torch.testing.assert_close(tokens[:, 33:290], patches)
    torch.testing.assert_close(tokens[:, 290], tiny.end_img[0].expand(5, -1))
    assert not torch.allclose(tokens[:, 33:290], wrong_order)
    assert tiny.visual_proj[0].in_features == 32 + 48 + 48


@pytest.mark.parametrize("n_views", [1, 5, 10])
def test_one_view_per_image_by_default(tiny, make_views, n_views):
    with torch.no_grad():
        out = tiny(make_views(n_views, seed=n_views))
    assert out.embeds.shape == (n_views, 291, 40)
    assert out.mask.all()


@pytest.fixture(scope="module")
def ten_views_each_alone(tiny, make_views):
    """Ten views and their tokens, each view encoded on its own (a batch of one)."""
    views = make_views(10, seed=10)
    with torch.no_grad():
        return views, [tiny.encode_views(v[None])[0] for v in views]


@pytest.mark.parametrize("views_per_image", [[1], [5], [1, 5], [5, 1, 4]])
def test_views_grouped_per_image_left_aligned(tiny, ten_views_each_alone, views_per_image):
    pool, each = ten_views_each_alone
    n_views = sum(views_per_image)
    image_index = torch.repeat_interleave(
        torch.arange(len(views_per_image)), torch.tensor(views_per_image)
    )
    with torch.no_grad():
        out = tiny(pool[:n_views], image_index)
    longest = max(views_per_image) * 291
    assert out.embeds.shape == (len(views_per_image), longest, 40)
    assert out.lengths.tolist() == [k * 291 for k in views_per_image]
    first = 0
    for i, k in enumerate(views_per_image):
        expected = torch.cat(each[first : first + k])
        torch.testing.assert_close(out.embeds[i, : k * 291], expected, atol=1e-5, rtol=1e-4)
        assert out.mask[i, : k * 291].all() and not out.mask[i, k * 291 :].any()
        assert not out.embeds[i, k * 291 :].any()
        first += k


def test_unsorted_image_index_keeps_view_order(tiny, make_views):
    views = make_views(3, seed=3)
    with torch.no_grad():
        out = tiny(views, torch.tensor([1, 0, 1]), n_images=3)
        each = tiny.encode_views(views)
    torch.testing.assert_close(out.embeds[0, :291], each[1])
    torch.testing.assert_close(out.embeds[1, :582], torch.cat([each[0], each[2]]))
    assert out.lengths.tolist() == [291, 582, 0]


def test_only_projections_and_start_end_get_gradients(tiny, views5):
    tiny.zero_grad(set_to_none=True)
    out = tiny(views5, torch.tensor([0, 0, 1, 1, 1]))
    (out.embeds * torch.randn_like(out.embeds)).sum().backward()
    trainable = {name for name, _ in tiny.named_trainable_parameters()}
    assert trainable == {
        "start_img",
        "end_img",
        "visual_proj.0.weight",
        "visual_proj.0.bias",
        "visual_proj.1.weight",
        "visual_proj.1.bias",
        "qformer_proj.0.weight",
        "qformer_proj.0.bias",
        "qformer_proj.1.weight",
        "qformer_proj.1.bias",
    }
    for name, param in tiny.named_parameters():
        if name in trainable:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None and not param.requires_grad, name
    assert len(tiny.trainable_parameters()) == len(trainable)
    tiny.zero_grad(set_to_none=True)


def test_bfloat16_close_to_float32(tiny, views5):
    low = MixedVisualEncoder(tiny.config)
    low.load_state_dict(tiny.state_dict())
    low.to(torch.bfloat16)
    with torch.no_grad():
        reference = tiny.encode_views(views5[:2])
        result = low.encode_views(views5[:2])
    assert result.dtype == torch.bfloat16
    # LayerNorm outputs are O(1); bf16 keeps ~3 significant digits through a few layers.
    assert (result.float() - reference).abs().mean() < 0.05


def test_bad_views_are_rejected(tiny):
    with pytest.raises(ValueError, match=r"\(n_views, 3, 224, 224\)"):
        tiny(torch.zeros(2, 3, 112, 112))
    with pytest.raises(ValueError, match="image_index"):
        tiny(torch.zeros(2, 3, 224, 224), torch.tensor([0, 1, 2]))


def test_grid_mismatch_is_an_error():
    config = EncoderConfig(
        name="odd",
        patch_encoders=[
            ClipViTConfig(width=32, layers=1, head_width=16, output_dim=8),
            ConvNeXtConfig(depths=(1, 1, 1, 1), dims=(8, 8, 8, 8), output_grid=8),
        ],
    )
    with pytest.raises(ValueError, match="disagree on tokens per view"):
        MixedVisualEncoder(config, 16)
    config.patch_encoders[1] = ConvNeXtConfig(
        depths=(1, 1, 1, 1), dims=(8, 8, 8, 8), output_grid=12
    )
    with pytest.raises(ValueError, match="cannot be repeated"):
        MixedVisualEncoder(config, 16)


def test_channels_last_convnext_gives_the_same_tokens(tiny, views5):
    other = create_encoder(tiny.config, channels_last=True)
    other.load_state_dict(tiny.state_dict())
    trunk = other.patch_encoders["convnext"].trunk
    assert trunk.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(
            other.patch_encoders["convnext"](views5[:2]),
            tiny.patch_encoders["convnext"](views5[:2]),
        )


def test_a_backbone_set_to_train_gets_gradients(tiny, views5):
    """A trainer that unfreezes one backbone (``encoder.<prefix>``) must reach its weights."""
    name, backbone = next(iter(tiny.patch_encoders.items()))
    params = list(backbone.parameters())
    try:
        for param in params:
            param.requires_grad_(True)
        out = tiny(views5, torch.tensor([0, 0, 1, 1, 1]))
        (out.embeds * torch.randn_like(out.embeds)).sum().backward()
        reached = [p for p in params if p.grad is not None]  # heads the view tokens skip get none
        assert len(reached) > len(params) // 2, name
        assert sum(p.grad.abs().sum() for p in reached) > 0, name
        with torch.no_grad():  # the caller's no_grad still wins
            assert not tiny.frozen_features(views5).patch.requires_grad
    finally:
        for param in params:
            param.requires_grad_(False)
            param.grad = None
