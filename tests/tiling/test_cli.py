"""The sphinx-tile command: files written, exit codes, one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sphinx_tiling.cli import main


@pytest.fixture
def photo_file(tmp_path, photos):
    path = tmp_path / "coffee.jpg"
    photos["coffee"].save(path)
    return path


def test_writes_views_and_layout(photo_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(photo_file), "--preset", "sphinx-1k", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["layout.json", *[f"view_{i:02d}.png" for i in range(5)]]
    layout = json.loads((out / "layout.json").read_text())
    # coffee is 600 x 400: square 600, image at y = 100.
    assert (layout["width"], layout["height"], layout["square_side"]) == (600, 400, 600)
    assert layout["offset"] == [0, 100] and layout["n_views"] == 5
    for i in range(5):
        with Image.open(out / f"view_{i:02d}.png") as view:
            assert view.size == (224, 224) and view.mode == "RGB"
    assert "wrote 6 files" in capsys.readouterr().out


def test_show_draws_the_grid_on_the_padded_square(photo_file, tmp_path):
    out = tmp_path / "out"
    assert main([str(photo_file), "--preset", "sphinx-2k", "--out", str(out), "--show"]) == 0
    with Image.open(out / "grid.png") as grid:
        assert grid.size == (600, 600)
        pixels = np.asarray(grid.convert("RGB")).astype(int)
    original = np.asarray(Image.open(photo_file).convert("RGB")).astype(int)
    # Away from the lines the picture is the padded photo; on a crop border it is not.
    assert np.abs(pixels[100 + 50, 100] - original[50, 100]).max() < 40
    assert (pixels[30, 60] == (122, 116, 104)).all()
    assert np.abs(pixels[150, 199:201] - original[50, 199:201]).max() > 0


def test_preset_from_json_file(photo_file, tmp_path):
    preset_path = tmp_path / "wide.json"
    preset_path.write_text(json.dumps({"name": "wide", "rows": 1, "cols": 3, "side": 64}))
    out = tmp_path / "out"
    assert main([str(photo_file), "--preset", str(preset_path), "--out", str(out)]) == 0
    assert json.loads((out / "layout.json").read_text())["n_views"] == 4


def test_bad_input_gives_one_line_error_and_no_partial_files(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    assert main([str(broken), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("sphinx-tile: error:") and "broken.png" in err
    assert not out.exists() or not any(out.iterdir())


def test_unknown_preset_and_too_large_image(photo_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(photo_file), "--preset", "nope", "--out", str(out)]) == 1
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main([str(photo_file), "--max-pixels", "1000", "--out", str(out)]) == 1
    assert "exceeds max_pixels=1000" in capsys.readouterr().err
    assert not out.exists()


def test_bad_usage_exits_2_and_help_explains_options():
    result = subprocess.run(
        [sys.executable, "-m", "sphinx_tiling.cli"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "--out" in result.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "sphinx_tiling.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for option in ("--preset", "--out", "--show", "--max-pixels", "--overwrite", "--decoding",
                   "--version", "sphinx-2k", "sphinx-light-1k", "examples:"):  # fmt: skip
        assert option in help_text
