"""Benchmark files that are empty, binary or absurdly nested: one line naming the data,
never a traceback and never a score computed over nothing (the hardening census' finds)."""

from __future__ import annotations

import pytest

from sphinx_train.evaluation.registry import get_task
from sphinx_train.evaluation.runner import EvalOptions, load_samples


def _options(data, tmp_path):
    return EvalOptions(task="pope", data=data, images=None, out=tmp_path / "out",
                       splits=["random"], progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "no pope samples for split 'random'"),
        (b"\n\n", "no pope samples for split 'random'"),
        (b"\x89PNG\r\n\x1a\n", r"not UTF-8 text \(byte 0\)"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
    ],
)
def test_bad_pope_file_is_one_line_naming_the_data(tmp_path, content, expected):
    data = tmp_path / "pope"
    data.mkdir()
    (data / "coco_pope_random.json").write_bytes(content)
    with pytest.raises(ValueError, match=expected) as error:
        load_samples(get_task("pope"), _options(data, tmp_path), "random")
    assert str(error.value).startswith(str(data)) and "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()
