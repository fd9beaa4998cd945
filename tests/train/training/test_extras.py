"""Optional extras: TensorBoard metrics and parquet text sources (skipped when missing)."""

from __future__ import annotations

import sys

import pytest

from sphinx_train.training.config import SourceConfig
from sphinx_train.training.data.sources import open_source
from sphinx_train.training.metrics import MetricsLog, tensorboard_writer


def parquet_source(tmp_path, table: dict, row_group_size: int = 2):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "text.parquet"
    pq.write_table(pa.table(table), path, row_group_size=row_group_size)
    return open_source(SourceConfig(name="web", kind="text-parquet", path=str(path)))


def test_parquet_rows_across_row_groups(tmp_path):
    source = parquet_source(tmp_path, {"text": ["one", "two", "three", "", "five"],
                                       "url": ["u"] * 5})
    assert len(source) == 5
    assert [source.record(i).text for i in (4, 0, 2, 1)] == ["five", "one", "three", "two"]
    assert source.record(3) is None  # an empty row counts as unreadable
    assert source.record(1).image is None and source.record(1).source == "web"


def test_parquet_without_a_text_column_names_the_columns(tmp_path):
    with pytest.raises(ValueError, match=r"no 'text' column \(columns: body, url\)"):
        parquet_source(tmp_path, {"body": ["x"], "url": ["u"]})


def test_missing_parquet_extra_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "t.parquet").write_bytes(b"")
    with pytest.raises(ImportError, match=r"sphinx-train\[parquet\]"):
        open_source(SourceConfig(name="web", kind="text-parquet", path=str(tmp_path / "t.parquet")))


def test_tensorboard_scalars_read_back_by_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = MetricsLog(tmp_path / "metrics.jsonl", None, tensorboard_writer(tmp_path / "tb"))
    log.write({"step": 1, "loss": 2.5, "loss/text": 3.0, "note": "skipped"})
    log.write({"step": 2, "loss": 1.25, "loss/text": 1.5})
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["loss", "loss/text"]
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 2.5), (2, 1.25)]
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2


def test_tensorboard_resume_drops_the_killed_runs_later_steps(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    killed = MetricsLog(tmp_path / "metrics.jsonl", None, tensorboard_writer(tmp_path / "tb"))
    for step in range(1, 7):
        killed.write({"step": step, "loss": float(step)})
    killed.writer.close()
    resumed = MetricsLog(tmp_path / "metrics.jsonl", 3, tensorboard_writer(tmp_path / "tb", 3))
    resumed.write({"step": 4, "loss": 40.0})
    resumed.write({"step": 5, "loss": 50.0})
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [
        (1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0)]


def test_missing_tensorboard_extra_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"sphinx-train\[tensorboard\]"):
        tensorboard_writer(tmp_path / "tb")
