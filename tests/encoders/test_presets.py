"""Every preset: token counts, real-size shapes on the meta device, tiny ones on CPU."""

import pytest
import torch

from sphinx_encoders import UnknownNameError, create_encoder, list_encoders

# (preset, query tokens, patch tokens, patch channels, query channels); sizes of the
# published backbones: ViT-L/14 1024, ConvNeXt-XXL 3072, DINOv2 ViT-g/14 1536, Q-Former 768.
REAL = [
    ("sphinx", 32, 257, 1024 + 3072 + 1536, 768),
    ("clip-vit", 0, 257, 1024, None),
    ("clip-convnext", 0, 257, 3072, None),
    ("dinov2", 0, 257, 1536, None),
    ("qformer", 32, 0, None, 768),
]


def test_registry_lists_the_documented_presets():
    names = set(list_encoders())
    assert {"sphinx", "sphinx-tiny", "clip-vit", "clip-convnext", "dinov2", "qformer"} <= names
    assert {f"{name}-tiny" for name, *_ in REAL if name != "sphinx"} <= names


@pytest.mark.parametrize(("name", "queries", "patches", "patch_dim", "query_dim"), REAL)
def test_real_size_presets_on_meta(name, queries, patches, patch_dim, query_dim):
    encoder = create_encoder(name, llm_dim=5120, device="meta")
    assert encoder.tokens_per_view == 2 + queries + patches
    assert encoder.image_size == 224 and encoder.llm_dim == 5120
    if patch_dim is None:
        assert encoder.visual_proj is None
    else:
        assert encoder.visual_proj[0].weight.shape == (5120, patch_dim)
    if query_dim is None:
        assert encoder.qformer_proj is None
    else:
        assert encoder.qformer_proj[0].weight.shape == (5120, query_dim)
    assert encoder.start_img.shape == encoder.end_img.shape == (1, 1, 5120)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "queries", "patches"), [r[:3] for r in REAL])
@pytest.mark.parametrize("n_views", [1, 5, 10])
def test_real_size_meta_forward(name, queries, patches, n_views):
    encoder = create_encoder(name, llm_dim=4096, device="meta")
    out = encoder(torch.empty(n_views, 3, 224, 224, device="meta"))
    assert out.embeds.shape == (n_views, 2 + queries + patches, 4096)
    assert out.mask.shape == (n_views, 2 + queries + patches)


def test_sphinx_backbone_sizes_on_meta():
    encoder = create_encoder("sphinx", llm_dim=4096, device="meta")
    millions = {
        name: sum(p.numel() for p in b.parameters()) / 1e6 for name, b in encoder.backbones()
    }
    # Published sizes: ViT-L/14 vision tower 304M, DINOv2 ViT-g/14 1.1B, ConvNeXt-XXLarge
    # trunk ~846M, BLIP-2 EVA ViT-g (~985M) + Q-Former (~105M).
    assert 300 < millions["clip"] < 310
    assert 1100 < millions["dinov2"] < 1150
    assert 830 < millions["convnext"] < 860
    assert 1080 < millions["qformer"] < 1100


@pytest.mark.parametrize(
    "name", sorted(n for n in list_encoders("*-tiny") if not n.startswith("sphinx"))
)
@pytest.mark.parametrize("n_views", [1, 5, 10])
def test_tiny_single_backbone_presets(name, n_views, make_views):
    encoder = create_encoder(name, llm_dim=24)
    with torch.no_grad():
        out = encoder(make_views(n_views), torch.zeros(n_views, dtype=torch.long))
    per_view = 2 + (32 if name.startswith("qformer") else 257)
    assert encoder.tokens_per_view == per_view
    assert out.embeds.shape == (1, n_views * per_view, 24)
    assert out.mask.all()


def test_unknown_preset_names_the_choices():
    with pytest.raises(UnknownNameError, match="sphinx-tiny"):
        create_encoder("sphinx-huge", llm_dim=8)


def test_dtype_names_and_bad_dtype():
    encoder = create_encoder("clip-vit-tiny", llm_dim=8, dtype="bf16")
    assert all(p.dtype == torch.bfloat16 for p in encoder.parameters())
    assert create_encoder("clip-vit-tiny", llm_dim=8, dtype="half").start_img.dtype == torch.half
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        create_encoder("clip-vit-tiny", llm_dim=8, dtype="int8")
