"""SamSegmenter on a tiny random SAM saved to a local folder (no hub)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sphinx_apps import SamSegmenter
from sphinx_tasks import Box

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SIDE = 64  # the tiny model's input size (longest edge)


@pytest.fixture(scope="module")
def sam_folder(tmp_path_factory):
    from transformers import (
        SamConfig,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    hidden = 32  # prompt encoder width; the vision tower's num_pos_feats must be hidden / 2
    vision = SamVisionConfig(
        hidden_size=32,
        output_channels=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=SIDE,
        patch_size=16,
        window_size=2,
        global_attn_indexes=[1],
        num_pos_feats=hidden // 2,
        mlp_dim=64,
    )
    prompt = SamPromptEncoderConfig(
        hidden_size=hidden, image_size=SIDE, patch_size=16, mask_input_channels=4
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=hidden,
        mlp_dim=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        iou_head_hidden_dim=32,
    )
    config = SamConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sam")
    SamModel(config).save_pretrained(folder)
    processor = SamImageProcessorPil(
        size={"longest_edge": SIDE}, pad_size={"height": SIDE, "width": SIDE}
    )
    SamProcessor(image_processor=processor).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def segmenter(sam_folder):
    return SamSegmenter(sam_folder)


def _image(width=120, height=80):
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_boxes_are_scaled_to_the_processor_frame(segmenter):
    inputs = segmenter.prepare(_image(), [Box(10, 10, 50, 60), Box(60, 20, 110, 70)])
    # 120 x 80 resized so the longest edge is 64: width 64, height round(80 * 64 / 120) = 43
    sx, sy = 64 / 120, 43 / 80
    expected = [[10 * sx, 10 * sy, 50 * sx, 60 * sy], [60 * sx, 20 * sy, 110 * sx, 70 * sy]]
    assert inputs["input_boxes"].shape == (1, 2, 4)
    np.testing.assert_allclose(inputs["input_boxes"][0].numpy(), expected, rtol=1e-6)
    assert tuple(inputs["pixel_values"].shape) == (1, 3, SIDE, SIDE)


def test_masks_come_back_at_image_size_one_per_box_in_one_forward(segmenter):
    calls = []
    hook = segmenter.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        boxes = [Box(5, 5, 40, 40), Box(30, 10, 100, 70), Box(0, 0, 120, 80)]
        masks = segmenter(_image(), boxes)
    finally:
        hook.remove()
    assert len(calls) == 1
    assert len(masks) == 3
    assert all(mask.shape == (80, 120) and mask.dtype == bool for mask in masks)


def test_the_mask_with_the_best_predicted_iou_is_kept(segmenter):
    image, boxes = _image(), [Box(5, 5, 40, 40), Box(30, 10, 100, 70)]
    inputs = segmenter.prepare(image, boxes)
    with torch.no_grad():
        output = segmenter.model(
            pixel_values=inputs["pixel_values"], input_boxes=inputs["input_boxes"].float()
        )
    candidates = segmenter.processor.post_process_masks(
        output.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
    )[0]
    best = [int(torch.argmax(scores)) for scores in output.iou_scores[0]]
    for mask, row, choice in zip(segmenter(image, boxes), candidates, best, strict=True):
        assert np.array_equal(mask, row[choice].numpy())


def test_missing_or_wrong_folder_is_one_clear_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such SAM folder"):
        SamSegmenter(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"holds no config\.json"):
        SamSegmenter(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert'; expected one of sam, sam_hq, sam2"):
        SamSegmenter(tmp_path)


@pytest.fixture(scope="module")
def hq_folder(tmp_path_factory):
    """A tiny random SAM-HQ (its mask decoder also reads the vision tower's early features)."""
    from transformers import (
        SamHQConfig,
        SamHQMaskDecoderConfig,
        SamHQModel,
        SamHQProcessor,
        SamHQPromptEncoderConfig,
        SamHQVisionConfig,
    )
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    hidden = 32
    vision = SamHQVisionConfig(hidden_size=32, output_channels=hidden, num_hidden_layers=2,
                               num_attention_heads=2, image_size=SIDE, patch_size=16,
                               window_size=2, global_attn_indexes=[1],
                               num_pos_feats=hidden // 2, mlp_dim=64)  # fmt: skip
    prompt = SamHQPromptEncoderConfig(
        hidden_size=hidden, image_size=SIDE, patch_size=16, mask_input_channels=4
    )
    decoder = SamHQMaskDecoderConfig(hidden_size=hidden, mlp_dim=64, num_hidden_layers=2,
                                     num_attention_heads=2, iou_head_hidden_dim=32,
                                     vit_dim=32)  # fmt: skip
    config = SamHQConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(),
                         mask_decoder_config=decoder.to_dict())  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sam-hq")
    SamHQModel(config).save_pretrained(folder)
    processor = SamImageProcessorPil(
        size={"longest_edge": SIDE}, pad_size={"height": SIDE, "width": SIDE}
    )
    SamHQProcessor(image_processor=processor).save_pretrained(folder)
    return folder


def test_sam_hq_folder_gives_one_mask_per_box_with_the_best_predicted_iou(hq_folder):
    segmenter = SamSegmenter(hq_folder)
    assert type(segmenter.model).__name__ == "SamHQModel"
    image, boxes = _image(), [Box(5, 5, 40, 40), Box(30, 10, 100, 70)]
    outputs = []
    hook = segmenter.model.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    try:
        masks = segmenter(image, boxes)
    finally:
        hook.remove()
    (output,) = outputs  # one forward for both boxes
    inputs = segmenter.prepare(image, boxes)
    candidates = segmenter.processor.post_process_masks(
        output.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
    )[0]
    for mask, row, scores in zip(masks, candidates, output.iou_scores[0], strict=True):
        assert mask.shape == (80, 120) and mask.dtype == bool
        assert np.array_equal(mask, row[int(torch.argmax(scores))].numpy())


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory):
    """A tiny random SAM 2 (Hiera backbone, 64 px); its processor squashes to a square."""
    pytest.importorskip("torchvision")  # transformers' SAM 2 image processor needs it
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2MaskDecoderConfig,
        Sam2Model,
        Sam2Processor,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    hidden = 32
    # stride 4 patches, then three 2x poolings: 16, 8, 4 (and 2) cells a side; no global
    # attention block may start a stage (its window would be 0 after the pooling)
    backbone = Sam2HieraDetConfig(hidden_size=16, num_attention_heads=1, image_size=[SIDE, SIDE],
                                  patch_kernel_size=[7, 7], patch_stride=[4, 4],
                                  patch_padding=[3, 3], query_stride=[2, 2],
                                  window_positional_embedding_background_size=[2, 2],
                                  blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
                                  num_attention_heads_per_stage=[1, 1, 1, 1],
                                  window_size_per_stage=[4, 4, 2, 2], global_attention_blocks=[3],
                                  mlp_ratio=2.0)  # fmt: skip
    vision = Sam2VisionConfig(backbone_config=backbone.to_dict(),
                              backbone_channel_list=[128, 64, 32, 16],
                              backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
                              fpn_hidden_size=hidden)  # fmt: skip
    prompt = Sam2PromptEncoderConfig(
        hidden_size=hidden, image_size=SIDE, patch_size=16, mask_input_channels=4
    )
    decoder = Sam2MaskDecoderConfig(hidden_size=hidden, mlp_dim=64, num_hidden_layers=2,
                                    num_attention_heads=2, iou_head_hidden_dim=32)  # fmt: skip
    config = Sam2Config(vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(),
                        mask_decoder_config=decoder.to_dict())  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sam2")
    Sam2Model(config).save_pretrained(folder)
    processor = Sam2ImageProcessor(
        size={"height": SIDE, "width": SIDE}, mask_size={"height": 16, "width": 16}
    )
    Sam2Processor(image_processor=processor).save_pretrained(folder)
    return folder


def test_sam2_scales_boxes_per_axis_and_gives_masks_at_image_size(sam2_folder):
    segmenter = SamSegmenter(sam2_folder)
    assert segmenter.model_type == "sam2"
    image, boxes = _image(), [Box(5, 5, 40, 40), Box(30, 10, 100, 70)]
    # SAM 2 resizes the 120 x 80 picture to 64 x 64: x scales by 64/120, y by 64/80
    expected = [[5 * 64 / 120, 5 * 0.8, 40 * 64 / 120, 40 * 0.8],
                [30 * 64 / 120, 10 * 0.8, 100 * 64 / 120, 70 * 0.8]]  # fmt: skip
    inputs = segmenter.prepare(image, boxes)
    np.testing.assert_allclose(inputs["input_boxes"][0].numpy(), expected, rtol=1e-6)
    calls = []
    hook = segmenter.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        masks = segmenter(image, boxes)
    finally:
        hook.remove()
    assert len(calls) == 1
    assert [(mask.shape, mask.dtype) for mask in masks] == [((80, 120), np.dtype(bool))] * 2
