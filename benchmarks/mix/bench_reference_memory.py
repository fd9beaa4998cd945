"""Peak RSS of sphinx-mix on reference consolidated.*.pth shards at two model sizes.

Two sources of 2 model-parallel ranks each, mixed 0.5 / 0.5, at a small and a 4x larger
size; the same tensors saved as safetensors folders are the peer (the format that was
already streamed). Each mix runs in a fresh child; its peak RSS less the peak of a child
that only imports sphinx_mix and torch is the memory the mix itself needed. Flat across
the two sizes means streaming; held whole, a rank would cost its two inputs plus its output.

    uv run python benchmarks/mix/bench_reference_memory.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

RESULTS = Path(__file__).resolve().parents[1] / "results" / "mix_reference_memory.md"
TENSOR_ELEMENTS = 4_000_000  # 16 MB float32 per tensor and rank
RANKS = 2

_CHILD = (
    "import sys, sphinx_mix, torch\n"
    "if len(sys.argv) > 1:\n"
    "    sphinx_mix.linear(sys.argv[1:3], [0.5, 0.5], sys.argv[3], progress=False, hash_inputs=False)\n"
)
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "subprocess.run([sys.executable, '-c', sys.argv[1], *sys.argv[2:]], check=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
)


def peak_rss(*arguments: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, _CHILD, *arguments],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def make_sources(folder: Path, tensors: int, offset: float) -> tuple[Path, Path]:
    """The same rank shards as a reference folder and as a safetensors folder."""
    reference, safetensors = folder / "reference", folder / "safetensors"
    reference.mkdir(parents=True)
    safetensors.mkdir(parents=True)
    for rank in range(RANKS):
        shard = {
            f"llma.layers.{i}.w": torch.full((TENSOR_ELEMENTS,), offset + i + rank)
            for i in range(tensors)
        }
        torch.save(
            {"model": shard}, reference / f"consolidated.{rank:02d}-of-{RANKS:02d}.model.pth"
        )
        save_file(
            {f"rank{rank}.{key}": value for key, value in shard.items()},
            str(safetensors / f"model-{rank + 1:05d}-of-{RANKS:05d}.safetensors"),
        )
    weight_map = {
        f"rank{rank}.llma.layers.{i}.w": f"model-{rank + 1:05d}-of-{RANKS:05d}.safetensors"
        for rank in range(RANKS)
        for i in range(tensors)
    }
    (safetensors / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": weight_map})
    )
    return reference, safetensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sphinx_mix_reference_memory"))
    parser.add_argument("--tensors", type=int, nargs=2, default=[5, 20], help="tensors per rank")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    rows, baseline = [], 0
    try:
        baseline = peak_rss()
        for tensors in args.tensors:
            work = args.workdir / str(tensors)
            first = make_sources(work / "a", tensors, 0.0)
            second = make_sources(work / "b", tensors, 100.0)
            rank_mb = tensors * TENSOR_ELEMENTS * 4 / 1e6
            for index, layout in enumerate(("reference .pth", "safetensors")):
                out = work / f"out{index}"
                peak = peak_rss(str(first[index]), str(second[index]), str(out))
                rows.append((layout, tensors, rank_mb, peak - baseline))
                print(rows[-1], file=sys.stderr)
            shutil.rmtree(work)
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)
    lines = [
        "# sphinx-mix: peak RSS on reference shards at two model sizes",
        "",
        f"Two sources of {RANKS} ranks, float32 tensors of {TENSOR_ELEMENTS * 4 / 1e6:.0f} MB, "
        f"mixed 0.5 / 0.5 without hashing, each mix in a fresh child process. RSS over imports: "
        f"peak RSS of the mix less that of a child importing sphinx_mix and torch "
        f"({baseline / 1e6:.0f} MB). Machine: 2 shared CPU cores ({os.getloadavg()[0]:.1f} "
        "load average at the end), no GPU.",
        "",
        "| layout | tensors per rank | one rank of one source, MB | held whole: 2 inputs + output, MB | RSS over imports, MB |",
        "|---|---|---|---|---|",
        *(
            f"| {layout} | {tensors} | {rank_mb:.0f} | {3 * rank_mb:.0f} | {extra / 1e6:.0f} |"
            for layout, tensors, rank_mb, extra in rows
        ),
        "",
    ]
    for layout in ("reference .pth", "safetensors"):
        small, large = [extra for name, _, _, extra in rows if name == layout]
        lines.append(
            f"{layout}: {large / 1e6:.0f} MB at {args.tensors[1] / args.tensors[0]:.0f}x the "
            f"model against {small / 1e6:.0f} MB ({large / max(small, 1):.2f}x)."
        )
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)


if __name__ == "__main__":
    main()
