"""Segment Anything (SAM, SAM-HQ, SAM 2 from transformers), loaded once from a local folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from sphinx_tasks import Box

from ._extras import require
from .images import check_box

SUPPORTED_MODEL_TYPES = ("sam", "sam_hq", "sam2")


def _check_folder(folder: str | Path) -> tuple[Path, str]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such SAM folder (expected a save_pretrained folder)")
    config = folder / "config.json"
    if not config.is_file():
        raise FileNotFoundError(
            f"{folder}: holds no config.json (expected a transformers SAM folder)"
        )
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{config}: model_type {model_type!r}; expected one of {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return folder, model_type


class SamSegmenter:
    """All boxes of an image in one forward; per box, the mask with the best predicted IoU.

    The processor resizes the image so its longest side is the model's input size and
    scales the boxes with it; the masks come back at the image's own size.
    """

    def __init__(self, folder: str | Path, device: str = "cpu", dtype: str = "float32") -> None:
        from ._house import dtype_name

        folder, self.model_type = _check_folder(folder)
        torch = require("torch", "sam", "SamSegmenter")
        transformers = require("transformers", "sam", "SamSegmenter")
        self.torch, self.device = torch, torch.device(device)
        self.dtype = getattr(torch, dtype_name(dtype))
        self.processor = transformers.AutoProcessor.from_pretrained(folder)
        self.model = transformers.AutoModel.from_pretrained(folder, dtype=self.dtype)
        self.model.to(self.device).eval()

    def prepare(self, image: Image.Image, boxes: Sequence[Box]) -> dict:
        """The processor's inputs: pixels in the model's frame and boxes scaled into it."""
        corners = [list(check_box(box, image.size).as_tuple()) for box in boxes]
        return self.processor(
            images=image.convert("RGB"), input_boxes=[corners], return_tensors="pt"
        )

    def __call__(self, image: Image.Image, boxes: Sequence[Box]) -> list[np.ndarray]:
        if not boxes:
            return []
        inputs = self.prepare(image, boxes)
        with self.torch.inference_mode():
            output = self.model(
                pixel_values=inputs["pixel_values"].to(self.device, self.dtype),
                input_boxes=inputs["input_boxes"].to(self.device, self.dtype),
                multimask_output=True,
            )
        sizes = [inputs["original_sizes"]]
        if "reshaped_input_sizes" in inputs:  # SAM and SAM-HQ; SAM 2 needs only the original
            sizes.append(inputs["reshaped_input_sizes"])
        masks = self.processor.post_process_masks(output.pred_masks.float().cpu(), *sizes)[0]
        best = output.iou_scores[0].float().argmax(dim=-1).cpu()  # (boxes,)
        return [masks[index, int(choice)].numpy().astype(bool) for index, choice in enumerate(best)]
