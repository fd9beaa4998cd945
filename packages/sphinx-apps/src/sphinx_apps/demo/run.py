"""``run_demo``: every stage into a staged folder that becomes OUT only when complete."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .._house import staged_dir
from .pipeline import Run, run_stages, tidy
from .recipe import FULL, QUICK, Recipe
from .report import build_results, write_pictures, write_report

OUTPUTS = ("report.md", "report.html", "results.json", "pictures/*", "data/*", "runs/*",
           "eval/*")


def run_demo(out: str | Path, *, quick: bool = False, seed: int = 0, threads: int = 2,
             overwrite: bool = False, recipe: Recipe | None = None,
             announce: Callable[[str], None] = print) -> dict:
    """Run the whole recipe and write OUT; returns what results.json holds.

    A run killed or failing midway leaves no OUT (and no half-written one in its place).
    """
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    recipe = recipe or (QUICK if quick else FULL)
    started = time.perf_counter()
    try:
        with staged_dir(out, overwrite=overwrite, owns=OUTPUTS) as folder:
            run = Run(folder, recipe, seed, announce)
            run_stages(run)
            with run.stage("report", "pictures/, results.json, report.md, report.html"):
                tidy(run, Path(out).absolute())
                write_pictures(run, folder / "pictures")
                results = build_results(run, time.perf_counter() - started, quick, threads)
                write_report(run, results)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return results
