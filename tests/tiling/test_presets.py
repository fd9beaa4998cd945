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
