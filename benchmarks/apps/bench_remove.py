"""`remove` against the same job done the way the peer scripts do it, in one process.

    uv run python benchmarks/apps/bench_remove.py [--images 4] [--side 1024] [--threads 1]

Photos: scikit-image's astronaut, coffee, chelsea and rocket, resized so the longer side is
`--side`, each with a box around its main object (grounding excluded: the boxes are given).
Per image and stage (segment, dilate, inpaint) the seconds, and the fidelity outside the
painted mask: the share of those pixels that keep their bytes and their mean absolute error.

Rows, ours against the peer way:
- GrabCut + Telea: ours inpaints at full size and leaves every unmasked pixel alone;
  Grounded-SAM's way squashes image and mask to 512 x 512, inpaints, and the caller resizes
  the 512 x 512 result back (nothing composites the unmasked pixels).
- tiny SAM + tiny LaMa stand-ins (random weights, same call shapes as the real models):
  ours loads each model once and runs LaMa on a window around the mask at 512; the
  Inpaint-Anything way builds SAM and loads the LaMa file inside every call and runs LaMa on
  the whole (8-padded) photo. Real SAM / big-lama files are 100s of MB, so their load time,
  which the stand-ins cannot show, adds to the peer column per image.
Prints a markdown table and writes benchmarks/results/apps.md with the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import transformers
from PIL import Image
from skimage import data

from sphinx_apps import BoxesGrounder, GrabCutSegmenter, LamaInpainter, SamSegmenter, remove
from sphinx_apps.lama import pad_to_multiple

RESULTS = Path(__file__).resolve().parents[1] / "results" / "apps.md"

# (photo, box around its main object in the photo's own pixels)
PHOTOS = (
    (data.astronaut, (150, 30, 330, 260)),  # the face and helmet
    (data.coffee, (170, 20, 420, 310)),  # the cup
    (data.chelsea, (120, 30, 340, 290)),  # the cat's head
    (data.rocket, (295, 120, 350, 410)),  # the rocket
)


def photos(count: int, side: int):
    for index in range(count):
        load, box = PHOTOS[index % len(PHOTOS)]
        image = Image.fromarray(load())
        scale = side / max(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        yield image.resize(size, Image.Resampling.BICUBIC), tuple(v * scale for v in box)


class TinyLama(torch.nn.Module):
    """A LaMa-shaped stand-in: (image, mask) -> image, blending its guess into the holes."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(4, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 32, 3, padding=2, dilation=2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 3, 3, padding=1),
            torch.nn.Sigmoid(),
        )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        guess = self.net(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * guess + (1 - mask) * image


def tiny_sam(folder: Path) -> Path:
    from transformers import (
        SamConfig,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    side, hidden = 256, 64
    vision = SamVisionConfig(hidden_size=64, output_channels=hidden, num_hidden_layers=2,
                             num_attention_heads=2, image_size=side, patch_size=16,
                             window_size=4, global_attn_indexes=[1],
                             num_pos_feats=hidden // 2, mlp_dim=128)  # fmt: skip
    prompt = SamPromptEncoderConfig(hidden_size=hidden, image_size=side, patch_size=16)
    decoder = SamMaskDecoderConfig(hidden_size=hidden, mlp_dim=128, num_hidden_layers=2,
                                   num_attention_heads=2, iou_head_hidden_dim=64)  # fmt: skip
    config = SamConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(),
                       mask_decoder_config=decoder.to_dict())  # fmt: skip
    torch.manual_seed(0)
    SamModel(config).save_pretrained(folder)
    processor = SamImageProcessorPil(
        size={"longest_edge": side}, pad_size={"height": side, "width": side}
    )
    SamProcessor(image_processor=processor).save_pretrained(folder)
    return folder


def fidelity(
    original: Image.Image, result: Image.Image, painted: np.ndarray
) -> tuple[float, float]:
    """(share of unmasked pixels with their original bytes, their mean absolute error)."""
    before = np.asarray(original).astype(np.int16)[~painted]
    after = np.asarray(result.convert("RGB")).astype(np.int16)[~painted]
    return float((before == after).all(axis=1).mean()), float(np.abs(before - after).mean())


def squashed_telea(image: Image.Image, painted: np.ndarray) -> Image.Image:
    """Grounded-SAM's way: image and mask squashed to 512 x 512, painted, resized back."""
    small = np.asarray(image.resize((512, 512), Image.Resampling.BICUBIC))
    hole = cv2.resize(painted.astype(np.uint8) * 255, (512, 512), interpolation=cv2.INTER_NEAREST)
    filled = cv2.inpaint(small, hole, 5, cv2.INPAINT_TELEA)
    return Image.fromarray(filled).resize(image.size, Image.Resampling.BICUBIC)


def inpaint_anything(image: Image.Image, box, sam_folder: Path, lama_file: Path):
    """Inpaint-Anything's way: build SAM and load LaMa in the call, LaMa on the whole photo."""
    times = {}
    start = time.perf_counter()
    (mask,) = SamSegmenter(sam_folder)(image, [box])
    times["segment"] = time.perf_counter() - start
    start = time.perf_counter()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (31, 31))
    mask = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    times["dilate"] = time.perf_counter() - start
    start = time.perf_counter()
    model = torch.jit.load(str(lama_file)).eval()
    pixels = np.asarray(image)
    height, width = mask.shape
    tensor = torch.from_numpy(pad_to_multiple(pixels).astype(np.float32) / 255).permute(2, 0, 1)
    holes = torch.from_numpy(pad_to_multiple(mask.astype(np.float32)))
    with torch.inference_mode():
        out = model(tensor[None], holes[None, None])[0, :, :height, :width]
    out = (out.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
    times["inpaint"] = time.perf_counter() - start
    return Image.fromarray(out), mask, times


def mean(rows, key):
    return sum(row[key] for row in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4, help="how many photos (default 4)")
    parser.add_argument("--side", type=int, default=1024, help="longer side in px (default 1024)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit's deprecation note
    transformers.utils.logging.disable_progress_bar()
    cv2.setNumThreads(args.threads)
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-apps-"))
    lama_file = work / "tiny-lama.pt"
    torch.manual_seed(0)
    torch.jit.script(TinyLama()).save(str(lama_file))
    sam_folder = tiny_sam(work / "sam")
    start = time.perf_counter()
    sam, lama = SamSegmenter(sam_folder), LamaInpainter(lama_file)
    load_once = time.perf_counter() - start

    rows = {name: [] for name in ("ours-classical", "peer-classical", "ours-models", "peer-models")}
    for image, box in photos(args.images, args.side):
        grounder = BoxesGrounder([box])
        ours = remove(image, "object", grounder, GrabCutSegmenter(), dilation=15)
        painted = ours.painted_mask
        t = ours.timings
        rows["ours-classical"].append(
            {"segment": t["segment"], "dilate": t["dilate"], "inpaint": t["inpaint"],
             "fid": fidelity(image, ours.result, painted)})  # fmt: skip
        start = time.perf_counter()
        peer = squashed_telea(image, painted)
        rows["peer-classical"].append(
            {"segment": t["segment"], "dilate": t["dilate"],
             "inpaint": time.perf_counter() - start, "fid": fidelity(image, peer, painted)})  # fmt: skip
        ours = remove(image, "object", grounder, sam, lama, dilation=15)
        t = ours.timings
        rows["ours-models"].append(
            {"segment": t["segment"], "dilate": t["dilate"], "inpaint": t["inpaint"],
             "fid": fidelity(image, ours.result, ours.painted_mask)})  # fmt: skip
        result, mask, t = inpaint_anything(image, box, sam_folder, lama_file)
        rows["peer-models"].append({**t, "fid": fidelity(image, result, mask)})

    lines = [
        f"# sphinx-apps `remove`: {args.images} photos, longer side {args.side} px, CPU",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {args.threads}; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (shared machine). Grounding excluded (boxes given). "
        f"Stand-in models: SAM and LaMa loaded once in {load_once:.2f} s.",
        "",
        "| chain | segment s | dilate s | inpaint s | total s/image | unmasked pixels kept | "
        "unmasked mean abs error | peer / ours time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ours_key, peer_key, label in (
        ("ours-classical", "peer-classical", "GrabCut + Telea"),
        ("ours-models", "peer-models", "tiny SAM + tiny LaMa"),
    ):
        totals = {}
        for key in (ours_key, peer_key):
            totals[key] = sum(mean(rows[key], stage) for stage in ("segment", "dilate", "inpaint"))
        for key, who in ((ours_key, "sphinx-apps"), (peer_key, "peer way")):
            kept = sum(row["fid"][0] for row in rows[key]) / len(rows[key])
            error = sum(row["fid"][1] for row in rows[key]) / len(rows[key])
            ratio = totals[key] / totals[ours_key]
            lines.append(
                f"| {label}, {who} | {mean(rows[key], 'segment'):.3f} | "
                f"{mean(rows[key], 'dilate'):.4f} | {mean(rows[key], 'inpaint'):.3f} | "
                f"{totals[key]:.3f} | {100 * kept:.2f}% | {error:.2f} | {ratio:.2f}x |"
            )
    lines += [
        "",
        "Peer classical: Telea on the image squashed to 512 x 512, resized back (Grounded-SAM's "
        "way; its segmentation column is ours, only painting differs). Peer models: SAM built "
        "and LaMa loaded inside every call, LaMa on the whole padded photo (Inpaint-Anything's "
        "way). The stand-ins blend their guess into the holes as big-lama does, so both keep "
        "the unmasked bytes; the peer's extra time is the per-call build and load plus LaMa "
        "on the whole photo, and real SAM / big-lama files (100s of MB) add their load time.",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)


if __name__ == "__main__":
    main()
