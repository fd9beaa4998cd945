"""sphinx-tasks benchmarks against the peers doing the same job in the same run.

1. Reading the annotations of a COCO-style file: our streaming reader vs ``json.load``
   (time and peak Python memory).
2. Image sizes from file headers: ``sphinx_tasks.imagesize.image_size`` vs ``PIL.Image.open().size``.

Run: uv run python benchmarks/tasks/bench_tasks.py  (writes benchmarks/results/tasks.md)
"""

from __future__ import annotations

import json
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from PIL import Image

from sphinx_tasks.converters import iter_array
from sphinx_tasks.imagesize import image_size

MACHINE = "2-core CPU, no GPU"
RESULTS = Path(__file__).resolve().parents[1] / "results" / "tasks.md"


def make_coco(path: Path, n_images: int, per_image: int) -> None:
    rng = random.Random(0)
    data = {
        "images": [
            {"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480}
            for i in range(n_images)
        ],
        "annotations": [
            {
                "id": i * per_image + j,
                "image_id": i,
                "category_id": rng.randint(1, 90),
                "bbox": [
                    rng.uniform(0, 500),
                    rng.uniform(0, 400),
                    rng.uniform(1, 140),
                    rng.uniform(1, 80),
                ],
                "area": 1.0,
                "iscrowd": 0,
                "segmentation": [[rng.uniform(0, 640) for _ in range(16)]],
            }
            for i in range(n_images)
            for j in range(per_image)
        ],
        "categories": [{"id": c, "name": f"c{c}"} for c in range(1, 91)],
    }
    path.write_text(json.dumps(data))


def count_with_json_load(path: Path) -> int:
    with path.open() as handle:
        return sum(1 for _ in json.load(handle)["annotations"])


def count_streaming(path: Path) -> int:
    return sum(1 for _ in iter_array(path, "annotations"))


def measure(function, *args, repeats: int = 3) -> tuple[float, float]:
    best = min(_timed(function, *args) for _ in range(repeats))
    tracemalloc.start()
    function(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def pil_sizes(paths: list[Path]) -> list[tuple[int, int]]:
    sizes = []
    for path in paths:
        with Image.open(path) as image:
            sizes.append(image.size)
    return sizes


def header_sizes(paths: list[Path]) -> list[tuple[int, int]]:
    return [image_size(path) for path in paths]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        coco = root / "instances.json"
        make_coco(coco, n_images=4000, per_image=10)
        megabytes = coco.stat().st_size / 2**20
        assert count_with_json_load(coco) == count_streaming(coco)
        peer_time, peer_memory = measure(count_with_json_load, coco)
        ours_time, ours_memory = measure(count_streaming, coco)
        task = f"read 40,000 annotations ({megabytes:.0f} MB COCO JSON)"
        rows.append(
            (
                task,
                "json.load",
                peer_time,
                ours_time,
                f"{peer_memory:.0f} MiB vs {ours_memory:.1f} MiB",
            )
        )

        paths = []
        for index in range(100):
            fmt, suffix = [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")][
                index % 4
            ]
            path = root / f"{index}.{suffix}"
            Image.new("RGB", (320 + index, 240 + index)).save(path, fmt)
            paths.append(path)
        assert pil_sizes(paths) == header_sizes(paths)
        peer_time, _ = measure(pil_sizes, paths, repeats=5)
        ours_time, _ = measure(header_sizes, paths, repeats=5)
        rows.append(
            (
                "size of 100 images (JPEG/PNG/WebP/GIF)",
                "PIL.Image.open().size",
                peer_time,
                ours_time,
                "-",
            )
        )

    lines = [
        f"sphinx-tasks benchmarks ({MACHINE}); best of several runs, peak memory by tracemalloc.",
        "",
        "| task | peer | peer time | sphinx-tasks time | speed ratio (peer / ours) | peak memory (peer vs ours) |",
        "|---|---|---|---|---|---|",
    ]
    for task, peer, peer_time, ours_time, memory in rows:
        lines.append(
            f"| {task} | {peer} | {peer_time * 1000:.1f} ms | {ours_time * 1000:.1f} ms | {peer_time / ours_time:.2f}x | {memory} |"
        )
    table = "\n".join(lines)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table + "\n")


if __name__ == "__main__":
    main()
