"""Hostile inputs and outputs: stale views, protected inputs, interrupts, memory bombs."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from sphinx_tiling import ImageLoadError, tile
from sphinx_tiling.cli import draw_grid, main


@pytest.fixture
def photo_file(tmp_path, photos):
    path = tmp_path / "coffee.png"
    photos["coffee"].save(path)
    return path


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_rerun_with_fewer_views_leaves_no_stale_view(photo_file, tmp_path):
    out = tmp_path / "views"
    assert main([str(photo_file), "--preset", "sphinx-2k", "--out", str(out)]) == 0
    assert len(names(out)) == 11
    # Without --overwrite the earlier run is kept; with it the folder is replaced whole.
    assert main([str(photo_file), "--preset", "sphinx-1k", "--out", str(out)]) == 1
    assert len(names(out)) == 11
    assert main([str(photo_file), "--preset", "sphinx-1k", "--out", str(out), "--overwrite"]) == 0
    assert names(out) == ["layout.json", *[f"view_{i:02d}.png" for i in range(5)]]
    assert json.loads((out / "layout.json").read_text())["n_views"] == 5
    assert names(tmp_path) == ["coffee.png", "views"]  # no staging left beside it


def test_overwrite_refuses_a_folder_with_foreign_files(photo_file, tmp_path, capsys):
    out = tmp_path / "views"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main([str(photo_file), "--out", str(out), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "notes.txt" in err
    assert names(out) == ["notes.txt"]


@pytest.mark.parametrize("where", ["equal", "inside", "containing"])
def test_output_never_touches_the_input(tmp_path, photos, capsys, where):
    folder = tmp_path / "photos"
    folder.mkdir()
    image = folder / "cat.png"
    photos["chelsea"].save(image)
    before = image.read_bytes()
    out = {"equal": image, "inside": image / "views", "containing": folder}[where]
    assert main([str(image), "--out", str(out), "--overwrite"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sphinx-tile: error:") and "input" in err and len(err.splitlines()) == 1
    assert image.read_bytes() == before and names(folder) == ["cat.png"]


def test_sigterm_mid_run_exits_130_and_leaves_nothing(tmp_path):
    # A large noise PNG keeps the run busy decoding after the staging folder exists.
    image = tmp_path / "noise.png"
    pixels = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image, compress_level=0)
    out = tmp_path / "views"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sphinx_tiling.cli", str(image), "--out", str(out), "--show",
         "--preset", "sphinx-2k"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".views.staging-") for p in tmp_path.iterdir()):
        assert proc.poll() is None, "finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    # Past the staging folder's creation (_house's staged_dir has a window of a few
    # instructions between mkdir and its cleanup handler), well inside the decoding.
    time.sleep(0.2)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "sphinx-tile: interrupted"
    assert names(tmp_path) == ["noise.png"]


def test_version_and_help_do_not_import_torch():
    for flag in ("--version", "--help"):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "sphinx_tiling.cli", flag],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0
        imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
        assert "torch" not in imported and "sphinx_tiling.tensor" not in imported
    assert result.stdout  # help text
    version = subprocess.run(
        [sys.executable, "-m", "sphinx_tiling.cli", "--version"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert version.stdout.strip() == "sphinx-tile 0.1.0"


def test_a_tall_strip_is_refused_naming_it_not_padded_to_40_gb():
    with pytest.raises(ImageLoadError, match=r"1x100000 image pads to 100000x100000 .*max_pixels"):
        tile(Image.new("RGB", (1, 100000)), "sphinx-1k")


def run_limited(code: str, memory_mb: int) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter whose address space is capped at `memory_mb`."""
    prelude = f"""
        import resource
        limit = {memory_mb} * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    """
    script = textwrap.dedent(prelude) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="RLIMIT_AS")
def test_tiny_gif_declaring_a_tall_image_fails_fast_within_a_memory_cap(tmp_path):
    gif = tmp_path / "tall.gif"
    Image.new("P", (32, 61720)).save(gif)
    assert gif.stat().st_size < 20_000
    out = tmp_path / "views"
    result = run_limited(
        f"""
        import sys
        from sphinx_tiling.cli import main
        sys.exit(main([{str(gif)!r}, "--preset", "sphinx-1k", "--out", {str(out)!r}, "--show"]))
        """,
        memory_mb=1024,
    )
    assert result.returncode == 1, result.stderr
    assert "tall.gif" in result.stderr and "32x61720" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_grid_picture_costs_what_it_shows():
    # A 300 x 20000 strip pads to 20000^2 (1.6 GB as RGBA); its picture is 1024^2 and must
    # be drawable within 600 MB. The strip lands in columns 504..518 (300 * 1024 / 20000).
    result = run_limited(
        """
        from PIL import Image
        from sphinx_tiling import Layout, plan_canvas, get_preset
        from sphinx_tiling.cli import draw_grid
        strip = Image.new("RGB", (300, 20000), (255, 0, 0))
        layout = Layout.from_plan(plan_canvas(300, 20000, "sphinx-1k"), "sphinx-1k")
        picture = draw_grid(strip, layout)
        assert picture.size == (1024, 1024), picture.size
        assert picture.getpixel((506, 300)) == (255, 0, 0), picture.getpixel((506, 300))
        assert picture.getpixel((500, 300)) == (122, 116, 104), picture.getpixel((500, 300))
        """,
        memory_mb=600,
    )
    assert result.returncode == 0, result.stderr


def test_grid_picture_is_the_padded_square_scaled(photos):
    image = photos["coffee"].convert("RGB").resize((3000, 2000))
    layout = tile(image, "sphinx-1k").layout
    picture = np.asarray(draw_grid(image, layout)).astype(int)
    # 3000 x 2000 -> square 3000 -> picture 1024: the image spans rows 171..853.
    assert tuple(picture[100, 500]) == (122, 116, 104)
    expected = np.asarray(image.resize((1024, 683), Image.Resampling.BICUBIC)).astype(int)
    assert np.abs(picture[171 + 300, 300] - expected[300, 300]).max() <= 2
