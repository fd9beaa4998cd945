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


def _error(path, call=lambda p: list(iter_array(p))):
    with pytest.raises(JsonStreamError) as info:
        call(path)
    return str(info.value)


def test_deep_nesting_is_one_error_with_the_byte_offset(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" + "[" * 100_000 + "]" * 100_000 + "]")
    # the outer array starts at byte 0; its first item (the deep one) at byte 1
    assert _error(path) == f"{path}: JSON nested too deeply for Python's decoder (at byte 1)"


def test_huge_integer_is_one_error(tmp_path):
    path = tmp_path / "big.json"
    path.write_text('{"a": 1, "b": ' + "9" * 5000 + "}")
    message = _error(path, lambda p: list(iter_object(p)))
    assert message.startswith(f"{path}: invalid JSON number: Exceeds the limit (4300 digits)")
    assert message.endswith("(at byte 14)")


def test_byte_offsets_count_utf8_bytes(tmp_path):
    path = tmp_path / "utf8.json"
    path.write_text('["éé", 1,, 2]', encoding="utf-8")
    # '["éé", 1,' is 11 bytes (each é is two): the stray comma is byte 11
    assert _error(path) == f"{path}: invalid JSON: Expecting value (at byte 11)"


def test_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'["caf\xe9"]')
    assert _error(path).startswith(f"{path}: not UTF-8 text")


def test_early_syntax_error_is_found_without_reading_the_file(tmp_path, monkeypatch):
    import tracemalloc

    monkeypatch.setattr(jsonstream, "_CHUNK", 1 << 16)
    path = tmp_path / "broken.json"
    item = json.dumps({"id": 1, "caption": "x" * 200}) + ",\n"
    path.write_text('[{"id": 0,, "x": 1},\n' + item * 40_000 + "{}]")  # ~9 MB after the error
    tracemalloc.start()
    try:
        message = _error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (
        message
        == f"{path}: invalid JSON: Expecting property name enclosed in double quotes (at byte 10)"
    )
    assert path.stat().st_size > 8_000_000
    assert peak < 2_000_000  # a few 64 KiB chunks, not the 9 MB file


def test_long_string_split_across_chunks_still_decodes(tmp_path, small_chunks):
    path = tmp_path / "long.json"
    data = [{"s": "ab\\u00e9" * 50}, "tru" * 3, None, -1.5e-3]
    path.write_text(json.dumps(data))
    assert list(iter_array(path)) == data


def test_trailing_garbage_is_refused(tmp_path):
    path = tmp_path / "two.json"
    path.write_text("[1] [2]")
    assert _error(path) == f"{path}: unexpected text after the JSON value (at byte 4)"


def test_json_lines_errors_name_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,}\n')
    with pytest.raises(JsonStreamError) as info:
        list(jsonstream.iter_lines(path))
    assert str(info.value) == (
        f"{path}:3: invalid JSON: Expecting property name enclosed in double quotes (column 9)"
    )
