"""A tiny stage-1 run on disk: webdataset shards of synthetic scenes and a text JSONL file."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

RUN_TIMEOUT = 240


def write_shard(path: Path, samples: list[tuple[str, bytes, str]]) -> None:
    with tarfile.open(path, "w") as archive:
        for name, data, _ in samples:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def scene_members(start: int, count: int) -> list[tuple[str, bytes, str]]:
    from sphinx_train.training.synthetic import make_scene, real_caption

    members = []
    for index in range(start, start + count):
        scene = make_scene(index)
        buffer = io.BytesIO()
        scene.image.save(buffer, format="PNG")
        caption = real_caption(scene)
        members += [(f"{index:05d}.png", buffer.getvalue(), ""),
                    (f"{index:05d}.txt", caption.encode(), "")]
    return members


@pytest.fixture(scope="session")
def stage1_config(tmp_path_factory) -> Path:
    from sphinx_train.training.synthetic import synthetic_text

    folder = tmp_path_factory.mktemp("stage1-data")
    shards = folder / "shards"
    shards.mkdir()
    write_shard(shards / "000000.tar", scene_members(0, 12))
    write_shard(shards / "000001.tar", scene_members(12, 12))
    (folder / "text.jsonl").write_text(
        "".join(json.dumps({"text": synthetic_text(i)}) + "\n" for i in range(32))
    )
    config = {
        "name": "tiny-stage1",
        "seed": 0,
        "model": {"preset": "sphinx-nano", "tiling": "sphinx"},
        "data": {
            "max_length": 400,
            "streams": [
                {"name": "captions", "per_step": 4, "sources": [
                    {"name": "shards", "kind": "webdataset", "path": str(shards)}]},
                {"name": "text", "per_step": 4, "sources": [
                    {"name": "text", "kind": "text-jsonl", "path": str(folder / "text.jsonl")}]},
            ],
        },
        "optimizer": {"lr": 3.0e-3, "min_lr": 3.0e-4},
        "schedule": {"total_steps": 10, "warmup_steps": 2},
        "parallel": {"micro_batches": 2},
        "checkpoint": {"every": 5, "keep_latest_k": 3},
        "logging": {"progress": False, "samples": True},
    }
    path = folder / "tiny-stage1.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def environment() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def fit_command(config, out, *extra, ranks: int = 1) -> list[str]:
    if ranks == 1:
        launcher = [sys.executable, "-m", "sphinx_train.cli"]
    else:
        # --standalone picks a free port; "--master_port 0" would reach the workers as port 0
        # and block them in rendezvous forever.
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", str(ranks), "-m", "sphinx_train.cli"]
    return [*launcher, "fit", str(config), "--out", str(out), *extra]


def run_guarded(command: list[str], timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """Run in a new process group and SIGKILL the whole group on timeout (never hang CI)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment(), start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command[:6])} ... ran past {timeout} s; killed. stderr tail:\n"
                    f"{stderr[-2000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def run_fit(config, out, *extra, ranks: int = 1) -> subprocess.CompletedProcess:
    return run_guarded(fit_command(config, out, *extra, ranks=ranks))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def straight_run(stage1_config, tmp_path_factory) -> Path:
    """10 uninterrupted steps in one process (the reference of the resume tests)."""
    out = tmp_path_factory.mktemp("straight") / "run"
    result = run_fit(stage1_config, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out
