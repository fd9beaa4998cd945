"""Preset registry, validation, files, and the view counts and order of every preset."""

import json

import numpy as np
import pytest
from PIL import Image

from sphinx_tiling import Preset, get_preset, list_presets, register_preset, tile

REQUIRED = {"sphinx", "sphinx-1k", "sphinx-2k", "grid", "anyres-llava", "anyres-internvl"}


def test_registry_has_the_contract_names_with_side_224():
    assert set(list_presets()) >= REQUIRED
    for name in REQUIRED:
        preset = get_preset(name)
        assert preset.name == name and preset.side == 224


def test_get_preset_passes_instances_through_and_applies_overrides():
    custom = Preset("mine", rows=1, cols=3, side=336)
    assert get_preset(custom) is custom
    changed = get_preset("grid", rows=1, cols=4)
    assert (changed.rows, changed.cols) == (1, 4)
    assert (get_preset("grid").rows, get_preset("grid").cols) == (2, 2)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown preset 'sphinx-4k'.*sphinx-1k"):
        get_preset("sphinx-4k")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rule": "magic"}, "rule='magic'"),
        ({"side": 0}, "side=0"),
        ({"rows": -1}, "rows=-1"),
        ({"min_tiles": 4, "max_tiles": 2}, "max_tiles=2"),
        ({"grids": ((0, 2),)}, "grids="),
        ({"fill": (1, 2)}, "fill="),
        ({"fill": (1, 2, 300)}, "fill="),
    ],
)
def test_invalid_fields_name_key_and_value(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        get_preset("grid").replace(**changes)


def test_register_refuses_duplicates_unless_asked():
    with pytest.raises(ValueError, match="already registered"):
        register_preset(Preset("sphinx"))


def test_preset_json_file_round_trip(tmp_path):
    preset = Preset("wide", rows=1, cols=3, side=112, fill=(0, 0, 0))
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(preset.to_dict()))
    assert Preset.from_file(path) == preset
    path.write_text(json.dumps({"name": "x", "colums": 3}))
    with pytest.raises(ValueError, match=r"unknown preset keys \['colums'\]"):
        Preset.from_file(path)


# (preset, image size) -> expected view kinds and (row, col) order.
ORDER_CASES = [
    ("sphinx", (300, 200), [("global", 0, 0)]),
    (
        "sphinx-1k",
        (300, 200),
        [("global", 0, 0), ("crop", 0, 0), ("crop", 0, 1), ("crop", 1, 0), ("crop", 1, 1)],
    ),
    (
        "sphinx-2k",
        (300, 200),
        [("global", 0, 0)] + [("crop", r, c) for r in range(3) for c in range(3)],
    ),
    ("grid", (300, 200), [("global", 0, 0)] + [("crop", r, c) for r in range(2) for c in range(2)]),
    # 1000 x 500 fits the 1 x 2 candidate exactly.
    ("anyres-llava", (1000, 500), [("global", 0, 0), ("crop", 0, 0), ("crop", 0, 1)]),
    # 200 x 200 is too small for 2 x 2 to win the aspect-ratio tie: one view, no thumbnail.
    ("anyres-internvl", (200, 200), [("global", 0, 0)]),
    (
        "anyres-internvl",
        (600, 200),
        [("global", 0, 0), ("crop", 0, 0), ("crop", 0, 1), ("crop", 0, 2)],
    ),
]


@pytest.mark.parametrize(("name", "size", "expected"), ORDER_CASES)
def test_view_counts_and_order(name, size, expected):
    tiling = tile(Image.new("RGB", size), name)
    got = [(v.kind, v.row, v.col) for v in tiling.layout.views]
    assert got == expected
    assert [v.index for v in tiling.layout.views] == list(range(len(expected)))
    assert len(tiling.views) == tiling.layout.n_views == len(expected)
    assert all(view.size == (224, 224) for view in tiling.views)


def test_grid_preset_with_other_tile_size_and_shape():
    preset = get_preset("grid", rows=1, cols=3, side=64, global_view=False)
    tiling = tile(np.zeros((10, 30, 3), np.uint8), preset)
    assert len(tiling.views) == 3
    assert all(view.size == (64, 64) for view in tiling.views)


# ---------------------------------------------------------------- preset files and the registry


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ('{"name": "x", "fill": 5}', ".json", r"fill=5, expected three integers"),
        ('{"name": "x", "side": 60000}', ".json", r"side=60000, expected at most 4096"),
        ('{"name": "x", "side": "224"}', ".json", r"side='224', expected a positive integer"),
        ('{"name": "x", "rows": true}', ".json", r"rows=True, expected a positive integer"),
        ('{"name": "x", "grids": 3}', ".json", r"grids=3, expected a non-empty list"),
        ('{"name": "x", "decoding": "exif"}', ".json", r"decoding='exif'"),
        ('{"name": "x", "view_dtype": "int8"}', ".json", r"view_dtype='int8'"),
        ('{"name": "x", "global_view": "no"}', ".json", r"global_view='no', expected true"),
        ('{"name": 5}', ".json", r"name=5, expected a non-empty string"),
        ('{"name": "x", "rows": 64, "cols": 64}', ".json", r"4096 tiles of side=224 .*at most"),
        ('{"name": "x",', ".json", r"not valid JSON"),
        ("[1, 2]", ".json", r"expected a mapping of preset fields, got list"),
        ("name: x\nfill: 5\n", ".yaml", r"fill=5"),
        ("name: [x\n", ".yaml", r"not valid YAML"),
        ("name: x\nside: 60000\n", ".yml", r"side=60000"),
    ],
)
def test_bad_preset_files_give_one_line_naming_file_and_key(tmp_path, text, suffix, message):
    if suffix != ".json":
        pytest.importorskip("yaml")
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as caught:
        Preset.from_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


def test_non_utf8_preset_file_is_named(tmp_path):
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(ValueError, match=r"latin\.json: not UTF-8"):
        Preset.from_file(path)


def test_sphinx_tile_reports_a_bad_preset_file_in_one_line(tmp_path, capsys):
    from sphinx_tiling.cli import main

    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    preset = tmp_path / "p.json"
    preset.write_text('{"name": "p", "fill": 5}')
    assert main([str(image), "--preset", str(preset), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"sphinx-tile: error: {preset}: preset 'p': fill=5, expected three integers in 0..255"
    )


def test_register_by_name_list_with_pattern_and_unknown_name_error():
    from sphinx_tiling import UnknownNameError

    stored = register_preset("test-reg-a", Preset("whatever", rows=1, cols=2))
    assert stored.name == "test-reg-a" and get_preset("test-reg-a").cols == 2
    with pytest.raises(ValueError, match="already registered"):
        register_preset("test-reg-a", Preset("x"))
    register_preset("test-reg-a", Preset("x", cols=3), overwrite=True)
    assert get_preset("test-reg-a").cols == 3
    assert list_presets("test-reg-*") == ["test-reg-a"]
    assert list_presets("sphinx-light*") == ["sphinx-light", "sphinx-light-1k"]
    with pytest.raises(UnknownNameError, match=r"unknown preset 'nope'; known: .*sphinx-light-1k"):
        get_preset("nope")
    with pytest.raises(KeyError):  # also a KeyError, like the other registries
        get_preset("nope")


def test_sphinx_light_presets_geometry():
    light, light_1k = get_preset("sphinx-light"), get_preset("sphinx-light-1k")
    assert (light.side, light.rows, light.cols) == (512, 1, 1)
    assert (light_1k.side, light_1k.rows, light_1k.cols) == (512, 2, 2)
    assert light_1k.view_dtype == "float16" and get_preset("sphinx-1k").view_dtype == "float32"
    assert len(tile(Image.new("RGB", (30, 20)), "sphinx-light-1k").views) == 5
