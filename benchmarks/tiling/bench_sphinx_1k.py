"""Images per second, decoded image -> normalised (5, 3, 224, 224) views, for sphinx-1k.

Compares, in one process on the same photos (scikit-image), with rounds interleaved so
that background load hits every pipeline alike:

* sphinx-tiling: `tile_tensor` one image at a time, and `tile_batch` over the set, each
  with the exact Pillow resize (default) and with `resample="torch"`;
* the reference-style pipeline: pad to square, torchvision Resize(448, bicubic), ToTensor,
  Normalize, torch bicubic interpolation to 224 for the global view, slices for the crops;
* transformers' LLaVA-NeXT image processor, slow (PIL) and fast (torchvision), set up to
  give the same views: one 448x448 candidate, a 224 global view and four 224 crops.

Run: uv run --group bench python benchmarks/tiling/bench_sphinx_1k.py [--rounds N]
Writes the markdown table to benchmarks/results/tiling.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from skimage import data
from tqdm import tqdm
from transformers.models.llava_next.image_processing_llava_next import LlavaNextImageProcessor
from transformers.models.llava_next.image_processing_pil_llava_next import (
    LlavaNextImageProcessorPil,
)

from sphinx_tiling import tile_batch, tile_tensor

PHOTOS = ("astronaut", "chelsea", "coffee", "page", "rocket")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESULTS = Path(__file__).resolve().parents[1] / "results" / "tiling.md"


def reference_style():
    """The SPHINX reference recipe with plain torchvision / torch calls."""
    fill = tuple(int(m * 255) for m in CLIP_MEAN)
    to_views = T.Compose(
        [
            T.Resize(448, interpolation=T.InterpolationMode.BICUBIC),
            T.ToTensor(),
            T.Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )

    def pad(image):
        width, height = image.size
        if width == height:
            return image
        side = max(width, height)
        square = Image.new(image.mode, (side, side), fill)
        square.paste(image, ((side - width) // 2, (side - height) // 2))
        return square

    def run(images):
        out = []
        for image in images:
            x = to_views(pad(image)).unsqueeze(0)
            views = [F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=False)]
            views += [x[..., r : r + 224, c : c + 224] for r in (0, 224) for c in (0, 224)]
            out.append(torch.cat(views))
        return out

    return run


def hf_processor(cls):
    processor = cls(
        image_grid_pinpoints=[[448, 448]],
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )

    def run(images):
        return [
            processor(images=[image], return_tensors="pt")["pixel_values"][0] for image in images
        ]

    return run


def ours_single(images):
    return [tile_tensor(image, "sphinx-1k") for image in images]


def ours_batch(images):
    return tile_batch(images, "sphinx-1k").pixel_values


def ours_single_torch_resample(images):
    return [tile_tensor(image, "sphinx-1k", resample="torch") for image in images]


def ours_batch_torch_resample(images):
    return tile_batch(images, "sphinx-1k", resample="torch").pixel_values


REFERENCE = "reference-style (torchvision + torch)"
HF_FAST = "HF LLaVA-NeXT processor, fast (torchvision)"


def measure(pipelines, images, rounds: int) -> dict[str, list[float]]:
    """Seconds per round for each pipeline, rounds interleaved across pipelines."""
    for run in pipelines.values():  # warm-up
        run(images)
    seconds: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in tqdm(range(rounds), desc=f"{torch.get_num_threads()} torch thread(s)"):
        for name, run in pipelines.items():
            start = time.perf_counter()
            run(images)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def table(seconds: dict[str, list[float]], n_images: int) -> list[str]:
    best = {name: n_images / min(times) for name, times in seconds.items()}
    median = {name: n_images / statistics.median(times) for name, times in seconds.items()}
    lines = [
        "| pipeline | images/s (best round) | images/s (median) | vs reference-style "
        "(best / median) | vs HF fast (best / median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in seconds:
        lines.append(
            f"| {name} | {best[name]:.1f} | {median[name]:.1f} "
            f"| {best[name] / best[REFERENCE]:.2f}x / {median[name] / median[REFERENCE]:.2f}x "
            f"| {best[name] / best[HF_FAST]:.2f}x / {median[name] / median[HF_FAST]:.2f}x |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per pipeline")
    parser.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        default=[torch.get_num_threads(), 1],
        help="torch intra-op thread counts to measure in turn (default: torch's own, then 1, "
        "the setting of DataLoader workers)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write")
    args = parser.parse_args()

    images = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in PHOTOS]
    pipelines = {
        "sphinx-tiling `tile_tensor`": ours_single,
        "sphinx-tiling `tile_batch`": ours_batch,
        'sphinx-tiling `tile_tensor`, `resample="torch"`': ours_single_torch_resample,
        'sphinx-tiling `tile_batch`, `resample="torch"`': ours_batch_torch_resample,
        REFERENCE: reference_style(),
        "HF LLaVA-NeXT processor, slow (PIL)": hf_processor(LlavaNextImageProcessorPil),
        HF_FAST: hf_processor(LlavaNextImageProcessor),
    }
    reference = torch.stack(pipelines[REFERENCE](images))
    identical = torch.equal(torch.stack(ours_single(images)), reference) and torch.equal(
        ours_batch(images), reference.flatten(0, 1)
    )

    machine = f"{os.cpu_count()}-core CPU, no GPU ({platform.machine()}), torch {torch.__version__}"
    lines = [
        f"sphinx-1k, {len(images)} scikit-image photos ({', '.join(PHOTOS)}), decoded PIL image "
        f"-> normalised (5, 3, 224, 224) tensor, {args.rounds} interleaved rounds. "
        f"Machine: {machine}. The CPU was shared with other jobs, so the best round is the "
        "cleaner figure and the median shows the spread.",
        "",
        f"sphinx-tiling output bit-identical to the reference-style pipeline: {identical}.",
    ]
    for threads in args.torch_threads:
        torch.set_num_threads(threads)
        lines += ["", f"{threads} torch thread(s):", ""]
        lines += table(measure(pipelines, images, args.rounds), len(images))
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temp, args.out)


if __name__ == "__main__":
    main()
