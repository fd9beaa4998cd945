"""``sphinx-train eval`` under ``torchrun --nproc_per_node 2`` (CPU): each rank answers its own
slice, rank 0 merges, and OUT equals a one-process run. A hard timeout kills the whole process
group, so a hung rank fails the test instead of CI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from sphinx_train.evaluation import EvalOptions, run_eval

pytestmark = [pytest.mark.dist, pytest.mark.slow]
TIMEOUT = 300


def run_guarded(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        pytest.fail(f"torchrun eval ran past {TIMEOUT} s; process group killed:\n{stderr[-2000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_two_ranks_under_torchrun_equal_one_process(nano, nano_folder, pope_data, tmp_path):
    data, images = pope_data
    out = tmp_path / "two"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "sphinx_train.cli", "eval",
               "--model", str(nano_folder), "--task", "pope", "--split", "random",
               "--data", str(data), "--images", str(images), "--batch-size", "2",
               "--out", str(out)]  # fmt: skip
    result = run_guarded(command)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wrote ") == 1  # only rank 0 writes and reports

    # the ranks answered disjoint slices, i % 2 == rank, of the 6 questions (ids 1..6)
    cache = tmp_path / "two.cache"
    by_rank = [[json.loads(line)["id"] for line in
                (cache / f"responses-rank{rank}.jsonl").read_text().splitlines()]
               for rank in (0, 1)]  # fmt: skip
    assert by_rank == [["1", "3", "5"], ["2", "4", "6"]]

    single = tmp_path / "one"
    run_eval(nano, EvalOptions(task="pope", data=data, images=images, out=single,
                               splits=["random"], batch_size=8, progress=False))  # fmt: skip
    for name in ("results.json", "samples.jsonl"):
        assert (out / name).read_text() == (single / name).read_text()
