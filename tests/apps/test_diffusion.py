"""DiffusionInpainter on a tiny random Stable Diffusion inpainting pipeline built from configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sphinx_apps import DiffusionInpainter

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")


def _tiny_tokenizer(folder):
    """A byte-level CLIP tokenizer with no merges: every character is a token."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    shifted = [256 + n for n in range(256 - len(printable))]  # GPT-2's stand-ins for the rest
    characters = [chr(c) for c in printable + shifted]
    tokens = characters + [c + "</w>" for c in characters] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        model_max_length=16,
    )
    return tokenizer, len(tokens)


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory):
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = tmp_path_factory.mktemp("sd-inpaint")
    tokenizer, vocab = _tiny_tokenizer(folder)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=9,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=8,
        sample_size=16,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=vocab - 2,
            eos_token_id=vocab - 1,
            pad_token_id=vocab - 1,
        )
    )
    pipeline = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def _photo(width, height):
    rng = np.random.default_rng(2)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_output_keeps_the_size_and_every_pixel_outside_the_mask(pipeline_folder):
    inpainter = DiffusionInpainter(pipeline_folder, steps=2, side=32, blur=2)
    image = _photo(90, 50)  # not a multiple of 8, not square
    mask = np.zeros((50, 90), dtype=bool)
    mask[10:30, 20:45] = True
    out = inpainter(image, mask, "a red fox")
    assert out.size == (90, 50)
    before, after = np.asarray(image), np.asarray(out)
    assert np.array_equal(after[~mask], before[~mask])
    assert not np.array_equal(after[mask], before[mask])


def test_the_pipeline_sees_a_window_in_multiples_of_8(pipeline_folder):
    inpainter = DiffusionInpainter(pipeline_folder, steps=1, side=32, blur=0)
    seen = []
    real = inpainter.pipeline

    class Spy:
        def __call__(self, **kwargs):
            seen.append((kwargs["image"].size, kwargs["width"], kwargs["height"]))
            return real(**kwargs)

    inpainter.pipeline = Spy()
    mask = np.zeros((50, 90), dtype=bool)
    mask[10:30, 20:45] = True
    inpainter(_photo(90, 50), mask, "grass")
    # mask 25 x 20, context 12 each side -> window 49 x 44 (at least 32), longer side to 32:
    # 32 x round(44 * 32 / 49 / 8) * 8 = 32 x 32 (28.7 rounds to the multiple 32)
    assert seen == [((32, 32), 32, 32)]


def test_missing_folder_is_one_clear_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such diffusion folder"):
        DiffusionInpainter(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"holds no model_index\.json"):
        DiffusionInpainter(tmp_path)


@pytest.mark.slow
def test_edit_end_to_end_from_python_and_the_cli(pipeline_folder, scene, tmp_path):
    from sphinx_apps import BoxesGrounder, edit
    from sphinx_apps.cli import main

    image = scene[0]
    inpainter = DiffusionInpainter(pipeline_folder, steps=1, side=32, blur=2)
    result = edit(image, "the ellipse", "a red fox", BoxesGrounder([(28, 19, 88, 75)]), inpainter)
    outside = ~result.painted_mask
    assert result.result.size == image.size
    assert np.array_equal(np.asarray(result.result)[outside], np.asarray(image)[outside])
    source = tmp_path / "scene.png"
    image.save(source)
    argv = ["edit", str(source), "the ellipse", "--box", "28,19,88,75", "--prompt", "a fox"]
    argv += ["--diffusion", str(pipeline_folder), "--steps", "1", "--background"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert (data["prompt"], data["kept"]) == ("a fox", "object")
    painted = np.asarray(Image.open(tmp_path / "out" / "mask.png")) > 127
    kept = ~painted
    after = np.asarray(Image.open(tmp_path / "out" / "result.png"))
    assert np.array_equal(after[kept], np.asarray(image)[kept])  # the object, bit-identical
