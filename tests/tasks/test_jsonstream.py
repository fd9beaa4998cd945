import json

import pytest

from sphinx_tasks.converters import JsonStreamError, iter_array, iter_json, iter_object, jsonstream


@pytest.fixture
def small_chunks(monkeypatch):
    """Force values (numbers included) to straddle buffer refills."""
    monkeypatch.setattr(jsonstream, "_CHUNK", 5)


def test_members_and_streamed_arrays_match_json_load(tmp_path, small_chunks):
    data = {
        "info": {"a": [1, 2, {"b": None}]},
        "images": [{"id": i, "v": 1234.5678 * i, "s": 'é"]x' * i} for i in range(30)],
        "annotations": [],
        "count": 123456789,
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    assert list(iter_array(path, "images")) == data["images"]
    assert list(iter_array(path, "annotations")) == []
    assert dict(iter_object(path)) == data
    streamed = [(k, v) for k, v in iter_json(path, stream=("images",)) if k != "images"]
    assert streamed == [("info", data["info"]), ("annotations", []), ("count", 123456789)]


def test_top_level_array(tmp_path, small_chunks):
    path = tmp_path / "list.json"
    path.write_text('[1, 22222, 3.5e3, "x", []]')
    assert list(iter_array(path)) == [1, 22222, 3500.0, "x", []]


@pytest.mark.parametrize(
    ("text", "call", "match"),
    [
        ("[1, 2,, 3]", lambda p: list(iter_array(p)), "invalid JSON"),
        ('{"a": [1]}', lambda p: list(iter_array(p)), "expected a top-level JSON array"),
        ('{"a": [1]}', lambda p: list(iter_array(p, "b")), "no top-level key 'b'"),
        ('{"a": 3}', lambda p: list(iter_array(p, "a")), "expected key 'a' to hold an array"),
        ("[1]", lambda p: list(iter_object(p)), "expected a top-level JSON object"),
        ("hello", lambda p: list(iter_object(p)), "expected a JSON object or array"),
        ('{"a": 1 "b": 2}', lambda p: list(iter_object(p)), "expected ',' or '}'"),
    ],
)
def test_errors_name_the_file(tmp_path, text, call, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(JsonStreamError, match=match) as info:
        call(path)
    assert str(path) in str(info.value)
