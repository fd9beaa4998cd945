"""Time per batch of the mixed encoder with and without the frozen-feature cache.

Three ways to get the same `EncodedImages` for one batch of tiled images:
- `no cache`: `encoder(pixel_values, image_index)`, the backbones run every time;
- `cache, first epoch`: `FeatureCache.encode` on an empty cache (backbones + writing a shard);
- `cache, later epochs`: every image is a hit, only the projections run.
Outputs are checked to be bit-identical. Each row is the median over the repeats; the
cold row uses a fresh cache folder per repeat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sphinx_encoders import FeatureCache, create_encoder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="example: uv run python benchmarks/encoders/bench_feature_cache.py --images 8",
    )
    parser.add_argument("--preset", default="sphinx-tiny", help="encoder preset")
    parser.add_argument("--llm-dim", type=int, default=64, help="LLM width of the projections")
    parser.add_argument("--images", type=int, default=8, help="images per batch")
    parser.add_argument("--views-per-image", type=int, default=5, help="views per image (1k: 5)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per row")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("benchmarks/results/encoders-cache.md"),
        help="markdown file to write",
    )
    args = parser.parse_args(argv)
    if min(args.images, args.views_per_image, args.repeats, args.threads) < 1:
        parser.error("--images, --views-per-image, --repeats and --threads must be positive")
    return args


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder = create_encoder(args.preset, args.llm_dim).eval()
    n_views = args.images * args.views_per_image
    side = encoder.image_size
    views = torch.randn(n_views, 3, side, side)
    image_index = torch.arange(n_views) // args.views_per_image
    keys = [f"image-{i}" for i in range(args.images)]
    expected = encoder(views, image_index)

    def cached(cache):
        features = cache.encode(encoder, views, image_index, keys, tiling="bench")
        return encoder.from_features(features, image_index)

    times = {"no cache": [], "cache, first epoch": [], "cache, later epochs": []}
    with tempfile.TemporaryDirectory() as scratch, torch.no_grad():
        warm = FeatureCache(Path(scratch) / "warm")
        assert torch.equal(cached(warm).embeds, expected.embeds)
        for repeat in range(args.repeats):
            times["no cache"].append(timed(lambda: encoder(views, image_index)))
            cold = FeatureCache(Path(scratch) / f"cold-{repeat}")
            times["cache, first epoch"].append(timed(lambda c=cold: cached(c)))
            times["cache, later epochs"].append(timed(lambda: cached(warm)))
        assert torch.equal(cached(FeatureCache(Path(scratch) / "warm")).embeds, expected.embeds)
        shard_bytes = sum(p.stat().st_size for p in (Path(scratch) / "warm").glob("shard-*"))

    base = statistics.median(times["no cache"])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    header = (
        f"Preset `{args.preset}` (random weights, fp32), {args.images} images x "
        f"{args.views_per_image} views of {side} px per batch, {args.threads} torch thread(s), "
        f"torch {torch.__version__}, median of {args.repeats}; cache on local disk, "
        f"{shard_bytes / 1e6:.2f} MB per batch of features; {os.cpu_count()} CPUs, load average "
        f"{load} at the end. Outputs bit-identical."
    )
    lines = [
        header,
        "",
        "| path | ms per batch | vs no cache |",
        "|---|---:|---:|",
    ]
    for name, samples in times.items():
        median = statistics.median(samples)
        lines.append(f"| {name} | {median * 1e3:.1f} | {base / median:.2f}x |")
    table = "\n".join(lines) + "\n"
    print(table, end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
