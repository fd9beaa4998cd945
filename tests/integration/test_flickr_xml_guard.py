"""Flickr30k Entities annotation XML: entity bombs and external entities are refused."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sphinx_tasks.converters import ConversionError, ConvertOptions, Skip, iter_records

FIXTURE = Path(__file__).parents[1] / "tasks" / "fixtures" / "flickr30k_entities"

# Ten levels of ten references each: 10**9 copies of "lol" if a parser expanded it.
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE annotation [\n<!ENTITY lol0 "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    + "]>\n<annotation><filename>&lol9;</filename></annotation>\n"
)
EXTERNAL = (
    '<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    "<annotation><filename>&secret;</filename></annotation>"
)


def hostile_dataset(tmp_path: Path, xml: str) -> tuple[Path, Path]:
    root = tmp_path / "flickr"
    shutil.copytree(FIXTURE, root)
    target = root / "Annotations" / "1000092795.xml"
    target.write_text(xml)
    return root, target


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL], ids=["billion-laughs", "external"])
def test_declarations_refused_naming_the_file(tmp_path, xml):
    root, target = hostile_dataset(tmp_path, xml)
    start = time.perf_counter()
    with pytest.raises(ConversionError) as caught:
        list(iter_records(root, "flickr30k-entities", ConvertOptions()))
    # Refused before any expansion: far below the seconds an expansion of 10**9 would take.
    assert time.perf_counter() - start < 2
    message = str(caught.value)
    assert message.startswith(f"{target}: ") and "\n" not in message
    assert "DTD or entities" in message


def test_plain_broken_xml_is_still_a_skip(tmp_path):
    root, _ = hostile_dataset(tmp_path, "<annotation><filename>x.jpg</filename>")
    items = list(iter_records(root, "flickr30k-entities", ConvertOptions()))
    assert [item.reason for item in items if isinstance(item, Skip)] == [
        "unreadable annotation XML"
    ]


def test_cli_one_line_and_no_output(tmp_path):
    root, target = hostile_dataset(tmp_path, BILLION_LAUGHS)
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx_tasks.cli",
            "convert",
            str(root),
            "--no-progress",
            "--format",
            "flickr30k-entities",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode not in (0, 2), done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0], done.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["flickr"]
