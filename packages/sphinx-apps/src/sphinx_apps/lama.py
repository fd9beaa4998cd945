"""LaMa removal from a big-lama TorchScript file (as released for lama-cleaner), loaded once."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ._extras import require
from .images import load_mask
from .windows import composite, mask_window


def pad_to_multiple(array: np.ndarray, multiple: int = 8) -> np.ndarray:
    """Mirror-pad an H x W (x C) array at the bottom and right to multiples of `multiple`."""
    height, width = array.shape[:2]
    extra = ((-height) % multiple, (-width) % multiple)
    widths = [(0, extra[0]), (0, extra[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="symmetric")


class LamaInpainter:
    """Run big-lama on a window around the mask, at most `side` pixels (its training scale).

    The model takes an image in [0, 1] and a {0, 1} mask, both N x C x H x W with H and W
    multiples of 8; inputs are mirror-padded to that and the padding is cut off again.
    Only the masked pixels are taken from the model.
    """

    uses_prompt = False

    def __init__(self, path: str | Path, device: str = "cpu", side: int = 512) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such LaMa file (expected a big-lama TorchScript .pt)"
            )
        self.torch = require("torch", "lama", "LamaInpainter")
        self.device, self.side = self.torch.device(device), side
        try:
            with warnings.catch_warnings():  # big-lama ships as TorchScript; nothing to switch to
                warnings.simplefilter("ignore", FutureWarning)
                self.model = self.torch.jit.load(str(path), map_location=self.device).eval()
        except RuntimeError as error:
            raise ValueError(f"{path}: not a TorchScript model ({error})") from None

    def __call__(
        self, image: Image.Image, mask: np.ndarray, prompt: str | None = None
    ) -> Image.Image:
        mask = load_mask(mask, image.size)
        pixels = np.asarray(image.convert("RGB"))
        window = mask_window(mask, self.side)
        crop = image.crop(window.box)
        crop_mask = Image.fromarray(mask[window.top : window.bottom, window.left : window.right])
        if window.work_size != window.size:
            crop = crop.resize(window.work_size, Image.Resampling.BICUBIC)
            crop_mask = crop_mask.resize(window.work_size, Image.Resampling.NEAREST)
        painted = self.paint(np.asarray(crop), np.asarray(crop_mask))
        if window.work_size != window.size:
            painted = np.asarray(
                Image.fromarray(painted).resize(window.size, Image.Resampling.BICUBIC)
            )
        full = pixels.copy()
        full[window.top : window.bottom, window.left : window.right] = painted
        return Image.fromarray(composite(pixels, full, mask))

    def paint(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The model on one H x W x 3 uint8 crop and its boolean mask; same size back."""
        torch = self.torch
        height, width = mask.shape
        image = torch.from_numpy(pad_to_multiple(pixels).astype(np.float32) / 255.0)
        holes = torch.from_numpy(pad_to_multiple(mask.astype(np.float32)))
        image = image.permute(2, 0, 1)[None].to(self.device)
        holes = holes[None, None].to(self.device)
        with torch.inference_mode():
            output = self.model(image, holes)
        output = output[0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy()
        return np.clip(output * 255.0 + 0.5, 0, 255).astype(np.uint8)
