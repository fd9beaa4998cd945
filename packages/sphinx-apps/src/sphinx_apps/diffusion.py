"""Prompted inpainting with a diffusers pipeline from a local folder, loaded once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ._extras import require
from .images import load_mask
from .windows import composite, mask_window


class DiffusionInpainter:
    """Stable Diffusion style inpainting that leaves the rest of the photo untouched.

    Unlike squashing the whole photo to 512 x 512, a window around the mask is cut out,
    resized (aspect kept) so its longer side is `side` and both sides are multiples of 8,
    painted with a blurred mask, resized back, and only the masked pixels are taken from
    it: every pixel outside the mask keeps its original bytes.
    """

    uses_prompt = True

    def __init__(
        self,
        folder: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        side: int = 512,
        steps: int = 30,
        guidance_scale: float = 7.5,
        blur: int = 8,
        seed: int = 0,
        negative_prompt: str | None = None,
    ) -> None:
        from ._house import dtype_name

        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder}: no such diffusion folder (expected a diffusers pipeline)"
            )
        if not (folder / "model_index.json").is_file():
            raise FileNotFoundError(
                f"{folder}: holds no model_index.json (expected a diffusers pipeline folder)"
            )
        self.torch = require("torch", "diffusion", "DiffusionInpainter")
        diffusers = require("diffusers", "diffusion", "DiffusionInpainter")
        self.device = self.torch.device(device)
        self.pipeline = diffusers.AutoPipelineForInpainting.from_pretrained(
            folder, dtype=getattr(self.torch, dtype_name(dtype))
        ).to(self.device)
        self.pipeline.set_progress_bar_config(disable=True)
        self.side, self.steps, self.guidance_scale = side, steps, guidance_scale
        self.blur, self.seed, self.negative_prompt = blur, seed, negative_prompt

    def __call__(
        self, image: Image.Image, mask: np.ndarray, prompt: str | None = None
    ) -> Image.Image:
        mask = load_mask(mask, image.size)
        pixels = np.asarray(image.convert("RGB"))
        window = mask_window(mask, self.side, multiple=8)
        crop = (
            image.convert("RGB").crop(window.box).resize(window.work_size, Image.Resampling.LANCZOS)
        )
        crop_mask = Image.fromarray(mask[window.top : window.bottom, window.left : window.right])
        crop_mask = crop_mask.convert("L").resize(window.work_size, Image.Resampling.NEAREST)
        if self.blur > 0:
            crop_mask = crop_mask.filter(ImageFilter.GaussianBlur(self.blur))
        generator = self.torch.Generator(device="cpu").manual_seed(self.seed)
        painted = self.pipeline(
            prompt=prompt or "",
            negative_prompt=self.negative_prompt,
            image=crop,
            mask_image=crop_mask,
            width=window.work_size[0],
            height=window.work_size[1],
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            strength=1.0,
            generator=generator,
        ).images[0]
        painted = painted.convert("RGB").resize(window.size, Image.Resampling.LANCZOS)
        full = pixels.copy()
        full[window.top : window.bottom, window.left : window.right] = np.asarray(painted)
        return Image.fromarray(composite(pixels, full, mask))
