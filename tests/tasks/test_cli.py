import json
from pathlib import Path

import pytest

from sphinx_tasks.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def test_convert_writes_records_and_summary(tmp_path, capsys):
    out = tmp_path / "gqa.jsonl"
    code = main(
        [
            "convert",
            str(FIXTURES / "gqa/val_balanced_questions.json"),
            "--format",
            "gqa",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["image"] for line in lines] == ["2354786.jpg"]
    err = capsys.readouterr().err
    assert "1 records written, 1 skipped (question without imageId, question or answer: 1)" in err
    assert list(tmp_path.iterdir()) == [out]


def test_bad_input_is_one_line_and_leaves_no_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": [1, 2,, 3]}')
    out = tmp_path / "out.jsonl"
    code = main(["convert", str(bad), "--format", "gqa", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("sphinx-tasks: error: ") and str(bad) in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [bad]


def test_progress_bar_runs(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    assert (
        main(
            [
                "convert",
                str(FIXTURES / "aokvqa/aokvqa_v1p0_val.json"),
                "--format",
                "aokvqa",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "x.json", "--format", "nope", "--out", "o.jsonl"],
        ["convert", "x.json", "--format", "gqa"],
        ["convert", "x.json", "--format", "gqa", "--out", "o.jsonl", "--max-turns", "0"],
        [],
    ],
)
def test_bad_usage_exits_2(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_formats_lists_converters(capsys):
    assert main(["formats"]) == 0
    assert "coco-detection" in capsys.readouterr().out.split()
