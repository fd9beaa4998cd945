"""The hostile-input census (benchmarks/hardening/census.py): its classifier on children whose
behaviour is known, and a fast subset of the real census that must come out clean."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "hardening" / "census.py"


@pytest.fixture(scope="module")
def census():
    spec = importlib.util.spec_from_file_location("census", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["census"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def outcome(census, tmp_path, body, *, protected=(), timeout=20.0):
    (tmp_path / "in.txt").write_text("input")
    before = census.listing(tmp_path)
    code, stderr = census.run_child(body, timeout=timeout)
    after = census.listing(tmp_path)
    return census.classify(code, stderr, before, after, should_fail=True, protected=protected)


def test_one_error_line_and_nothing_written_is_clean(census, tmp_path):
    def body():
        print("tool: error: in.txt: not an image", file=sys.stderr)
        return 1

    result = outcome(census, tmp_path, body)
    assert (result.status, result.detail) == ("clean", "tool: error: in.txt: not an image")


def test_an_escaped_exception_is_a_traceback(census, tmp_path):
    def body():
        raise KeyError("width")

    assert outcome(census, tmp_path, body).status == "traceback"


def test_a_child_past_the_limit_is_a_hang_and_is_killed(census, tmp_path):
    start = time.monotonic()
    result = outcome(census, tmp_path, lambda: time.sleep(60), timeout=1.0)
    assert result.status == "hang" and time.monotonic() - start < 10


def test_a_failure_that_leaves_a_file_is_partial(census, tmp_path):
    def body():
        (tmp_path / ".out.partial").write_text("half")
        return 1

    result = outcome(census, tmp_path, body)
    assert (result.status, result.detail) == ("partial", "left .out.partial")


def test_success_on_hostile_input_or_a_touched_input_is_silent_wrong(census, tmp_path):
    assert outcome(census, tmp_path, lambda: 0).detail == "succeeded"

    def clobber():
        (tmp_path / "in.txt").write_text("gone")
        return 1

    result = outcome(census, tmp_path, clobber, protected=("in.txt",))
    assert (result.status, result.detail) == ("silent wrong", "changed in.txt")


def test_an_executed_pickle_payload_is_silent_wrong(census, tmp_path):
    def body():
        import os
        import pickle

        os.chdir(tmp_path)
        pickle.loads(census.pickle_payload())  # what an unsafe loader would do
        return 1

    assert outcome(census, tmp_path, body).detail == "pickle payload executed"


@pytest.mark.slow  # a subprocess importing tiling and tasks: ~15 s idle, longer on a busy box
def test_fast_subset_of_the_census_is_clean(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "sphinx-tasks,iter_records,load_image",
         "--no-write", "--timeout", "60"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # 10 CLI cases (5 hostile inputs, 3 output rules, SIGINT, SIGTERM) + 5 and 5 loader cases.
    # All clean, and every error line names the input (the last column).
    assert "| **all** | 20 | 20 | 0 | 0 | 0 | 0 | 0 |" in done.stdout, done.stdout
