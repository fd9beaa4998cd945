"""LamaInpainter on tiny TorchScript modules saved by the test: padding, unpadding, windows."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sphinx_apps import LamaInpainter

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


class Identity(torch.nn.Module):
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return image


class ReportsShape(torch.nn.Module):
    """White where the input was a multiple of 8 on both sides and the mask in {0, 1}."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ok = image.shape[-1] % 8 == 0 and image.shape[-2] % 8 == 0
        binary = bool(((mask == 0) | (mask == 1)).all())
        value = 1.0 if ok and binary and mask.shape[1] == 1 else 0.0
        return torch.full_like(image, value)


def _save(module, path):
    torch.jit.script(module).save(str(path))
    return path


def _photo(width, height, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_padding_and_unpadding_are_exact(tmp_path):
    inpainter = LamaInpainter(_save(Identity(), tmp_path / "identity.pt"))
    image = _photo(53, 37)  # neither side a multiple of 8
    mask = np.zeros((37, 53), dtype=bool)
    mask[5:30, 3:50] = True
    out = inpainter(image, mask)
    assert out.size == (53, 37)
    # a model returning its input must give the input back, pixel for pixel: the padding
    # went on the side it was cut from
    assert np.array_equal(np.asarray(out), np.asarray(image))


def test_model_sees_multiples_of_8_and_only_the_mask_changes(tmp_path):
    inpainter = LamaInpainter(_save(ReportsShape(), tmp_path / "shape.pt"))
    image = _photo(61, 45, seed=1)
    mask = np.zeros((45, 61), dtype=bool)
    mask[10:20, 12:40] = True
    out = np.asarray(inpainter(image, mask))
    assert (out[mask] == 255).all()
    assert np.array_equal(out[~mask], np.asarray(image)[~mask])


def test_large_image_is_worked_on_in_a_window_at_the_model_scale(tmp_path):
    seen = []
    inpainter = LamaInpainter(_save(Identity(), tmp_path / "identity.pt"), side=64)
    original = inpainter.paint
    inpainter.paint = lambda pixels, mask: seen.append(pixels.shape) or original(pixels, mask)
    mask = np.zeros((300, 400), dtype=bool)
    mask[100:120, 200:260] = True  # 60 x 20, plus half of 60 on each side: a 120 x 80 window
    image = _photo(400, 300)
    out = inpainter(image, mask)
    assert seen == [(43, 64, 3)]  # 120 x 80 scaled by 64 / 120: 64 x round(42.67)
    assert out.size == (400, 300)
    assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])


def test_missing_or_invalid_file_is_one_clear_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such LaMa file"):
        LamaInpainter(tmp_path / "big-lama.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk\.pt: not a TorchScript model"):
        LamaInpainter(tmp_path / "junk.pt")
