"""Views per second of MixedVisualEncoder against the same backbones called by hand.

The "plain" side runs the very same modules (same weights) one after another as plain
library calls, the way the reference code does: open_clip ViT blocks, the timm ConvNeXt
trunk, the timm DINOv2 ViT, transformers' BLIP-2 vision model + Q-Former, then the
projections and a Python loop that builds each image's sequence. Both sides get the same
views; outputs are compared. Tested on CPU only; the GPU flags
(`--device cuda --preset sphinx --dtype bf16 --views 40`) have not been run yet.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sphinx_encoders import MixedVisualEncoder, create_encoder, list_encoders

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def plain_forward(enc: MixedVisualEncoder, views: torch.Tensor, image_index: torch.Tensor):
    """The same computation written as direct library calls (reference style)."""
    clip = enc.patch_encoders["clip"].visual
    convnext = enc.patch_encoders["convnext"].trunk
    dinov2 = enc.patch_encoders["dinov2"].vit
    blip2 = enc.query_encoder
    x = views.to(enc.start_img.dtype)
    with torch.no_grad():
        image_embeds = blip2.vision_model(pixel_values=x).last_hidden_state
        ones = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=x.device)
        queries = blip2.query_tokens.expand(x.shape[0], -1, -1)
        query = blip2.qformer(
            query_embeds=queries, encoder_hidden_states=image_embeds, encoder_attention_mask=ones
        ).last_hidden_state

        t = clip.conv1(x).flatten(2).transpose(1, 2)
        t = torch.cat([clip.class_embedding.to(t.dtype).expand(t.shape[0], 1, -1), t], 1)
        t = clip.ln_post(clip.transformer(clip.ln_pre(t + clip.positional_embedding.to(t.dtype))))

        c = convnext.head.norm(
            convnext.forward_features(F.interpolate(x.half(), size=(256, 256)).to(x))
        )
        c = c.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2).flatten(-2).permute(0, 2, 1)
        c = torch.cat([c.mean(dim=1, keepdim=True), c], dim=1)

        def stat(values):
            return torch.tensor(values, dtype=x.dtype, device=x.device).view(3, 1, 1)

        d = dinov2.forward_features(
            (x * stat(CLIP_STD) + stat(CLIP_MEAN) - stat(IMAGENET_MEAN)) / stat(IMAGENET_STD)
        )
        patches = torch.cat([t, c, d], dim=2)
    tokens = torch.cat([enc.qformer_proj(query), enc.visual_proj(patches)], dim=1)
    sequences = []
    for image in range(int(image_index.max()) + 1):
        rows = [
            torch.cat([enc.start_img[0], tokens[v], enc.end_img[0]])
            for v in (image_index == image).nonzero().flatten().tolist()
        ]
        sequences.append(torch.cat(rows))
    return torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True)


def timed(fn, device: str) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds of one call.

    On a busy shared CPU the CPU time is the steadier measure of the work done.
    """
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def machine(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()}"
    return f"{os.cpu_count()}-core CPU, no GPU"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset",
        default="sphinx-tiny",
        help="encoder preset with all four backbones (default sphinx-tiny)",
    )
    parser.add_argument(
        "--views", type=int, nargs="+", default=[10, 40], help="views per batch (default 10 40)"
    )
    parser.add_argument(
        "--views-per-image", type=int, default=5, help="views of one image (5 = SPHINX-1k)"
    )
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default="fp32", help="backbone and projection dtype"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run")
    parser.add_argument(
        "--llm-dim", type=int, default=64, help="projection width (5120 for LLaMA-2-13B)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per side; the median is reported"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per side first")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: steady timings on a shared CPU)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the backbones (ours only)"
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="ConvNeXt in channels-last (both sides)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("benchmarks/results/encoders.md"),
        help="markdown file to write",
    )
    args = parser.parse_args(argv)
    if args.preset not in list_encoders():
        parser.error(f"unknown preset {args.preset!r}; choose from {', '.join(list_encoders())}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda given but CUDA is not available")
    if min(args.views) < 1 or args.views_per_image < 1 or args.repeats < 1:
        parser.error("--views, --views-per-image and --repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from tqdm import tqdm
    except ImportError:

        def tqdm(iterable, **_):
            return iterable

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    build = functools.partial(
        create_encoder,
        args.preset,
        args.llm_dim,
        dtype=DTYPES[args.dtype],
        device=args.device,
        channels_last=args.channels_last,
    )
    encoder = build().eval()
    four = set(encoder.patch_encoders) == {"clip", "convnext", "dinov2"} and encoder.query_encoder
    if not four:
        print(
            f"error: preset {args.preset!r} lacks one of the four SPHINX backbones", file=sys.stderr
        )
        return 2
    ours = encoder
    if args.compile:
        ours = build(compile=True).eval()
        ours.load_state_dict(encoder.state_dict())
    rows = []
    for n_views in args.views:
        views = torch.randn(n_views, 3, 224, 224, device=args.device)
        image_index = torch.arange(n_views, device=args.device) // args.views_per_image
        run_ours = functools.partial(ours, views, image_index)
        run_plain = functools.partial(plain_forward, encoder, views, image_index)
        with torch.no_grad():
            for _ in range(args.warmup):
                run_ours(), run_plain()
            ours_t, plain_t = [], []
            for repeat in tqdm(range(args.repeats), desc=f"{n_views} views", leave=False):
                # Alternate which side goes first, so neither always runs on a warmer cache.
                if repeat % 2:
                    plain_t.append(timed(run_plain, args.device))
                ours_t.append(timed(run_ours, args.device))
                if not repeat % 2:
                    plain_t.append(timed(run_plain, args.device))
            result, expected = run_ours(), run_plain()
        diff = (result.embeds.float() - expected.float()).abs().max().item()
        rates = [
            n_views / statistics.median(t[clock] for t in side)
            for clock in (0, 1)
            for side in (ours_t, plain_t)
        ]
        rows.append((n_views, *rates, diff))
    table = render(args, rows)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(table + "\n")
    tmp.replace(args.output)
    return 0


def render(args: argparse.Namespace, rows) -> str:
    flags = " ".join(
        f for f, on in (("compile", args.compile), ("channels-last", args.channels_last)) if on
    )
    lines = [
        f"Machine: {machine(args.device)}; torch {torch.__version__}; preset `{args.preset}`, "
        f"{args.dtype}, random weights, {args.views_per_image} views per image, "
        f"{args.threads} torch thread(s)"
        + (f", {flags}" if flags else "")
        + f"; median of {args.repeats} runs. Rates per wall second and per CPU second "
        "of this process.",
        "",
        "| views | ours (views/s) | plain (views/s) | ratio | ours (views/CPU-s) "
        "| plain (views/CPU-s) | ratio | max abs diff |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n_views, ours, plain, ours_cpu, plain_cpu, diff in rows:
        lines.append(
            f"| {n_views} | {ours:.1f} | {plain:.1f} | {ours / plain:.2f}x | {ours_cpu:.1f} "
            f"| {plain_cpu:.1f} | {ours_cpu / plain_cpu:.2f}x | {diff:.2e} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
