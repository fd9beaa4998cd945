"""Two gloo ranks under torchrun: rows of different kinds on each rank, always under a hard
timeout that kills the whole process group."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from .conftest import run_guarded

pytestmark = [pytest.mark.dist, pytest.mark.slow]


def test_image_rows_on_one_rank_text_rows_on_the_other_complete(tmp_path):
    worker = Path(__file__).with_name("mixed_rows_worker.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(worker), str(tmp_path / "run")]
    result = run_guarded(command, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["images"] == 2  # both image rows were on rank 0
    assert report["sources"] == ["scenes-real", "text"]
    assert math.isfinite(report["loss"])
    # the text-only rank still applied the (averaged) projection update, identically
    assert report["projection_moved"] and report["projection_equal_on_ranks"]
